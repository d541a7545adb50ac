"""The Gaussian mixture as a model family for :func:`fastem.em.run_em`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from ... import _validation as v
from ... import gaussian
from ...reference import default_shift
from ...suff_stats import SuffStats, recentre
from ._pass import em_stats


class GaussianParams(NamedTuple):
    """weights (K,), means (K, D), covariances and precisions_cholesky (shape by
    covariance_type), all float64. Initial weights may not sum to 1 exactly (scikit-learn
    divides the initial ``nk`` by the number of samples, not by their sum)."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray


class CheckedGaussianParams(GaussianParams):
    """Parameters fastem's own code made (M-step, initialisation): C-contiguous float64 of
    consistent shapes, so a pass need not check them again (parameters set by hand, for a
    warm start, are plain :class:`GaussianParams` and are checked)."""

    __slots__ = ()


def params_from_covariances(weights, means, covariances, covariance_type: str, reg_covar: float) -> GaussianParams:
    """Complete the parameters with the precision Cholesky factor; a covariance that is
    not positive definite raises a ValueError naming the component and ``reg_covar``."""
    precisions_cholesky = gaussian.precisions_cholesky_from_covariances(covariances, covariance_type, reg_covar)
    return CheckedGaussianParams(*(np.ascontiguousarray(p, dtype=np.float64)
                                   for p in (weights, means, covariances, precisions_cholesky)))


def stats_from_params(weights, means, covariances, covariance_type: str) -> SuffStats:
    """Statistics per unit weight (``n = 1``) whose M-step without ``reg_covar`` gives back
    the parameters: the expected statistics of the mixture itself. ``loglik`` is 0.0."""
    v.check_covariance_type(covariance_type)
    weights = np.asarray(weights, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    covariances = np.asarray(covariances, dtype=np.float64)
    n_components, n_features = means.shape
    shift = np.array(default_shift(weights, means, covariance_type), dtype=np.float64)
    sum_x = weights[:, None] * (means - shift)  # zero unless tied
    if covariance_type == "full":
        sum_xx = weights[:, None, None] * covariances
    elif covariance_type == "tied":
        sum_xx = covariances + (weights[:, None] * (means - shift)).T @ (means - shift)
    elif covariance_type == "diag":
        sum_xx = weights[:, None] * covariances
    else:
        sum_xx = weights * n_features * covariances
    return SuffStats(covariance_type, weights.copy(), sum_x, sum_xx, shift, 0.0, float(weights.sum()))


@dataclass(frozen=True)
class GaussianFamily:
    """Gaussian mixture with ``covariance_type`` and ``reg_covar``; statistics on ``backend``
    with ``n_threads``; ``init(source, random_state) -> GaussianParams`` initialises."""

    covariance_type: str
    reg_covar: float
    backend: str
    n_threads: int | None
    init: Callable[[object, np.random.RandomState], GaussianParams]

    allow_nan = False  # no missing values

    def initialize(self, source, random_state) -> GaussianParams:
        return self.init(source, random_state)

    def stats(self, source, params: GaussianParams) -> SuffStats:
        # Kernels take normalised weights; a common factor c on all weights (scikit-learn's
        # initial weights) leaves the responsibilities unchanged and adds n log c.
        total = params.weights.sum()
        stats = em_stats(source, params.weights / total, params.means, params.precisions_cholesky,
                         self.covariance_type, backend=self.backend, n_threads=self.n_threads,
                         check_parameters=not isinstance(params, CheckedGaussianParams))
        if total != 1.0:
            stats.loglik += stats.n * np.log(total)
        return stats

    def m_step(self, stats: SuffStats) -> GaussianParams:
        return params_from_covariances(*gaussian.m_step(stats, self.reg_covar), self.covariance_type, self.reg_covar)

    def expected_stats(self, params: GaussianParams) -> SuffStats:
        """Online EM's start (:mod:`fastem.online`): the mixture's own statistics per unit weight."""
        return stats_from_params(params.weights, params.means, params.covariances, self.covariance_type)

    def align(self, running: SuffStats, batch: SuffStats) -> SuffStats:
        """``running`` re-expressed around ``batch``'s shift (exact), so the two add up."""
        return recentre(running, batch.shift)

    def lower_bound_slack(self, params: GaussianParams) -> float:
        """``reg_covar / 2 * max_k trace(precision_k)``.

        Adding ``reg_covar`` to the covariance makes the M-step exact EM for the
        log-likelihood with each component density scaled by
        ``exp(-reg_covar / 2 * trace(precision_k))``; so the plain log-likelihood per unit
        weight can fall by at most this much in one iteration.
        """
        squares = params.precisions_cholesky**2
        if self.covariance_type == "full":
            traces = squares.sum(axis=(1, 2))
        elif self.covariance_type == "tied":
            traces = squares.sum()
        elif self.covariance_type == "diag":
            traces = squares.sum(axis=1)
        else:
            traces = params.means.shape[1] * squares
        return 0.5 * self.reg_covar * float(traces.max())
