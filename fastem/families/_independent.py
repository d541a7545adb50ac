"""What the mixtures of independent features share (:mod:`fastem.families.bernoulli`,
``.poisson``, ``.categorical``): the chunk functions of their two kernels, the family
object the EM driver runs, and the initialisation.

A family here is a small object with the hooks :func:`fastem.em.run_em` and
:class:`fastem.online.OnlineEM` call; the per-distribution part is four functions of
its parameters (:class:`Distribution`): the kernel's table, the M-step, the log-prior
and the expected statistics. Missing values (NaN) are marginalised out (see
:mod:`fastem.discrete_stats`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, NamedTuple

import numpy as np

from .. import kernels, reference_discrete
from .._threads import effective_n_threads
from ..data import INIT_SAMPLE_ROWS, initialisation_rows
from ..discrete_stats import CategoricalStats, IndependentStats

#: probabilities are kept in [PROB_EPS, 1 - PROB_EPS] and rates above RATE_MIN, so every
#: log-probability the kernels see is finite (as stepmix clips them)
PROB_EPS = 1e-15
RATE_MIN = 1e-15


@dataclass(frozen=True, eq=False)
class LinearPass:
    """The chunk function of a linear family (Bernoulli, Poisson): validated float64
    weights (K,), coef and offset (K, D), the concrete backend and thread count."""

    weights: np.ndarray
    coef: np.ndarray
    offset: np.ndarray
    distribution: str
    backend: str
    n_threads: int
    block_size: int = kernels.DEFAULT_BLOCK_SIZE

    def with_threads(self, n_threads: int) -> LinearPass:
        return replace(self, n_threads=n_threads)

    def __call__(self, X: np.ndarray, sample_weight: np.ndarray | None) -> IndependentStats:
        return kernels.get_discrete_backend(self.backend).linear_em_stats(
            X, self.weights, self.coef, self.offset, self.distribution, sample_weight, n_threads=self.n_threads,
            block_size=self.block_size)

    def log_prob(self, X: np.ndarray) -> np.ndarray:
        """(n, K) float64 ``log p(x | k)`` of validated rows (predictions)."""
        return kernels.get_discrete_backend(self.backend).linear_log_prob(
            X, self.coef, self.offset, self.distribution, n_threads=self.n_threads, block_size=self.block_size)


@dataclass(frozen=True, eq=False)
class CategoricalPass:
    """The chunk function of the categorical family: weights (K,), log_probs (K, D, C),
    n_categories (D,) int64, the concrete backend and thread count."""

    weights: np.ndarray
    log_probs: np.ndarray
    n_categories: np.ndarray
    backend: str
    n_threads: int
    block_size: int = kernels.DEFAULT_BLOCK_SIZE

    def with_threads(self, n_threads: int) -> CategoricalPass:
        return replace(self, n_threads=n_threads)

    def __call__(self, X: np.ndarray, sample_weight: np.ndarray | None) -> CategoricalStats:
        return kernels.get_discrete_backend(self.backend).categorical_em_stats(
            X, self.weights, self.log_probs, self.n_categories, sample_weight, n_threads=self.n_threads,
            block_size=self.block_size)

    def log_prob(self, X: np.ndarray) -> np.ndarray:
        """(n, K) float64 ``log p(x | k)`` of validated rows (predictions)."""
        return kernels.get_discrete_backend(self.backend).categorical_log_prob(
            X, self.log_probs, self.n_categories, n_threads=self.n_threads, block_size=self.block_size)


class Distribution(NamedTuple):
    """The per-distribution part of a family, as functions of ``(params, family)``:

    - ``chunk_function(weights, params, family)``: the pass's chunk function
    - ``m_step(stats, family)``: parameters from statistics
    - ``log_prior(params, family)``: the log-density of the smoothing prior (0 when alpha = 0)
    - ``expected_stats(params, family)``: statistics per unit weight whose M-step (alpha = 0)
      gives the parameters back (online EM's start)
    - ``resp_stats(X, resp, sample_weight, family)``: statistics of given responsibilities
      (an initialisation: the numpy reference, which holds the (N, K) array anyway)
    - ``sample(params, labels, random_state)``: (n, D) rows drawn from the components ``labels``
    - ``n_parameters(params, family)``: free parameters, for BIC and AIC
    """

    chunk_function: Callable
    m_step: Callable
    log_prior: Callable
    expected_stats: Callable
    resp_stats: Callable
    sample: Callable
    n_parameters: Callable


@dataclass(frozen=True)
class IndependentFamily:
    """A mixture of independent features for :func:`fastem.em.run_em`: ``distribution``
    its maths, ``alpha`` >= 0 the smoothing pseudo-count, ``n_categories`` (D,) for the
    categorical family (else None), statistics on ``backend`` (a concrete name) with
    ``n_threads``; ``init(source, random_state)`` initialises."""

    distribution: Distribution
    alpha: float
    backend: str
    n_threads: int | None
    init: IndependentInit | None
    n_categories: np.ndarray | None = None

    allow_nan = True  # missing values are marginalised out

    def initialize(self, source, random_state):
        return self.init(source, random_state, self)

    def stats(self, source, params):
        # A common factor c on all weights (scikit-learn's initial weights need not sum to
        # one) leaves the responsibilities unchanged and adds n log c.
        total = params.weights.sum()
        stats = source.map_reduce(self.distribution.chunk_function(params.weights / total, params, self))
        if total != 1.0:
            stats.loglik += stats.n * np.log(total)
        return stats

    def m_step(self, stats):
        if not stats.n > 0:
            raise ValueError("nothing to fit: the sample weights are all zero, or no row has an observed value")
        return self.distribution.m_step(stats, self)

    def lower_bound(self, stats, params, new_params) -> tuple[float, float]:
        """The average log-likelihood of ``params``, and how far the next may fall below
        it: the smoothed M-step maximises log-likelihood + log-prior, so the log-likelihood
        alone can fall by at most the rise of the log-prior."""
        rise = self.distribution.log_prior(new_params, self) - self.distribution.log_prior(params, self)
        return stats.loglik / stats.n, max(0.0, rise / stats.n)

    def expected_stats(self, params):
        return self.distribution.expected_stats(params, self)

    def align(self, running, batch):
        return running  # no shift: the statistics add up as they are

    def threads(self) -> int:
        return effective_n_threads(self.n_threads)


def smoothed_ratio(counts: np.ndarray, n_obs: np.ndarray, alpha: float, n_values) -> np.ndarray:
    """``(counts + alpha) / (n_obs + n_values * alpha)``; where the denominator is 0 (an
    empty component, or a feature it never observed) the estimate pooled over components."""
    numerator, denominator = counts + alpha, n_obs + n_values * alpha
    pooled = (counts.sum(axis=0) + alpha) / np.maximum(n_obs.sum(axis=0) + n_values * alpha, np.finfo(float).tiny)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = numerator / denominator
    return np.where(denominator > 0, ratio, pooled)


@dataclass(frozen=True)
class IndependentInit:
    """How to initialise: ``init_params`` ("random": uniform random responsibilities, as
    scikit-learn draws them; "random_from_data": K distinct rows, one per component),
    then one M-step. User-given parameters replace the drawn ones: ``params_init`` (a
    whole parameter tuple) skips the draw, ``weights_init`` (K,) replaces the weights.
    ``init_size``: initialise on a uniform sample of that many rows (None: at most
    ``INIT_SAMPLE_ROWS``, from every kind of source alike: the random responsibilities are
    an (n, K) array, and a larger sample only costs more)."""

    n_components: int
    init_params: str
    params_init: Any = None
    weights_init: np.ndarray | None = None
    init_size: int | None = None

    def __call__(self, source, random_state: np.random.RandomState, family: IndependentFamily):
        if self.params_init is not None:
            return self.params_init
        params = self.draw(source, random_state, family)
        return params if self.weights_init is None else params._replace(weights=self.weights_init)

    def draw(self, source, random_state: np.random.RandomState, family: IndependentFamily):
        X, sample_weight = initialisation_rows(source, random_state, self.init_size or INIT_SAMPLE_ROWS)
        n_samples = X.shape[0]
        if self.init_params == "random":
            resp = random_state.uniform(size=(n_samples, self.n_components))
            resp /= resp.sum(axis=1)[:, np.newaxis]
        else:  # random_from_data
            resp = np.zeros((n_samples, self.n_components))
            resp[random_state.choice(n_samples, size=self.n_components, replace=False),
                 np.arange(self.n_components)] = 1.0
        stats = family.distribution.resp_stats(X, resp, sample_weight, family)
        return family.m_step(stats)


def linear_expected_stats(params, family) -> IndependentStats:
    """``expected_stats`` of a linear family: every feature observed, ``sum_x`` the
    weighted means (``params[1]``: the (K, D) probabilities or rates)."""
    weights = params.weights / params.weights.sum()
    n_obs = np.repeat(weights[:, np.newaxis], params[1].shape[1], axis=1)
    return IndependentStats(weights, n_obs * params[1], n_obs, 0.0, 1.0)


def linear_n_parameters(params, family) -> int:
    """``n_parameters`` of a linear family: K x D means and K - 1 free weights."""
    return params[1].size + params.weights.shape[0] - 1


def resp_linear_stats(distribution: str):
    """``resp_stats`` of a linear family: the numpy reference (an initialisation holds the
    (N, K) responsibilities anyway)."""
    return lambda X, resp, sample_weight, family: reference_discrete.linear_suff_stats(X, resp, distribution,
                                                                                      sample_weight)


__all__ = ["CategoricalPass", "Distribution", "IndependentFamily", "IndependentInit", "LinearPass", "PROB_EPS",
           "RATE_MIN", "linear_expected_stats", "linear_n_parameters", "resp_linear_stats",
           "smoothed_ratio"]
