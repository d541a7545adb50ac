"""Stepwise (online) EM for Gaussian mixtures, after Cappé & Moulines (2009).

Each minibatch is seen once. With running statistics ``s`` normalised per unit of sample
weight, step ``t`` (t = 1, 2, ...) on a minibatch ``B`` is

    s_B   = em_stats(B; theta_{t-1}) / n_B          (E-step on the minibatch only)
    s     = (1 - gamma_t) * s + gamma_t * s_B
    theta_t = m_step(s)

with the step size ``gamma_t = (t + t0) ** -alpha``. ``alpha`` in (0.5, 1] makes
``sum gamma_t`` diverge and ``sum gamma_t**2`` converge, the Robbins-Monro conditions under
which the iterates converge to a stationary point of the likelihood; smaller ``alpha``
forgets the start faster, ``alpha = 1`` weighs all batches alike (a running mean).
``t0 >= 0`` delays the decay: the statistics start as those of the initial parameters
(:func:`stats_from_params`), which keep weight ``prod (1 - gamma_t)``; ``t0 = 0`` forgets
them at the first step. Defaults ``alpha=0.6, t0=2`` (measured in ``tests/test_online.py``:
within 1% of batch EM's average log-likelihood after one pass).

Statistics are taken around a shift (the current means), which moves at every step; the
running statistics are re-expressed exactly around the minibatch's shift
(:func:`recentre`) before they are combined.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import _validation as v
from .data import as_source
from .gaussian import m_step, precisions_cholesky_from_covariances
from .reference import default_shift
from .suff_stats import SuffStats

__all__ = ["StepwiseEM", "recentre", "scale", "stats_from_params", "step_size"]


def step_size(t: int, alpha: float = 0.6, t0: float = 2.0) -> float:
    """``gamma_t = (t + t0) ** -alpha`` for step ``t >= 1``."""
    return float((t + t0) ** -alpha)


def recentre(stats: SuffStats, shift) -> SuffStats:
    """The same statistics taken around ``shift`` ((K, D); (D,) for tied) instead of
    ``stats.shift``: exact algebra on K x D x D arrays (``x - c' = (x - c) + delta``)."""
    shift = np.array(shift, dtype=np.float64)
    if shift.shape != stats.shift.shape:
        raise ValueError(f"shift must have shape {stats.shift.shape}, got {shift.shape}")
    delta = stats.shift - shift
    nk, sum_x, sum_xx = stats.nk, stats.sum_x, stats.sum_xx
    new_sum_x = sum_x + nk[:, None] * delta
    ct = stats.covariance_type
    if ct == "full":
        cross = sum_x[:, :, None] * delta[:, None, :]
        new_sum_xx = sum_xx + cross + cross.transpose(0, 2, 1) + nk[:, None, None] * delta[:, :, None] * delta[:, None, :]
    elif ct == "tied":
        # sum_xx is over all samples: sum_i w_i (x_i - c)(x_i - c)^T, with sum_i w_i (x_i - c)
        # = sum_k sum_x[k] (responsibilities sum to one) and sum_i w_i = sum_k nk
        cross = np.outer(sum_x.sum(axis=0), delta)
        new_sum_xx = sum_xx + cross + cross.T + nk.sum() * np.outer(delta, delta)
    elif ct == "diag":
        new_sum_xx = sum_xx + 2 * delta * sum_x + nk[:, None] * delta**2
    else:
        new_sum_xx = sum_xx + 2 * np.einsum("kd,kd->k", delta, sum_x) + nk * np.einsum("kd,kd->k", delta, delta)
    return SuffStats(ct, nk.copy(), new_sum_x, new_sum_xx, shift, stats.loglik, stats.n)


def scale(stats: SuffStats, factor: float) -> SuffStats:
    """Every additive field (``nk``, ``sum_x``, ``sum_xx``, ``loglik``, ``n``) times ``factor``."""
    return SuffStats(stats.covariance_type, stats.nk * factor, stats.sum_x * factor, stats.sum_xx * factor,
                     stats.shift, stats.loglik * factor, stats.n * factor)


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


def _check_schedule(alpha, t0) -> tuple[float, float]:
    if not isinstance(alpha, numbers.Real) or not 0.5 < alpha <= 1:
        raise ValueError(f"alpha must lie in (0.5, 1] (Robbins-Monro step sizes), got {alpha!r}")
    if not isinstance(t0, numbers.Real) or not t0 >= 0:
        raise ValueError(f"t0 must be a non-negative number, got {t0!r}")
    return float(alpha), float(t0)


class StepwiseEM:
    """Online EM state: running statistics and the parameters they give.

    Start from parameters (weights (K,), means (K, D), covariances by ``covariance_type``),
    then call :meth:`partial_fit` once per minibatch. Attributes: ``weights``, ``means``,
    ``covariances``, ``precisions_cholesky`` (float64), ``stats`` (running statistics per
    unit weight), ``n_steps``, ``loglik`` (mean log-likelihood of the last minibatch under
    the parameters before its step: a progressive validation score).
    """

    def __init__(self, weights, means, covariances, covariance_type: str, *, reg_covar: float = 1e-6,
                 alpha: float = 0.6, t0: float = 2.0, backend: str = "auto", n_threads: int | None = None):
        self.covariance_type = v.check_covariance_type(covariance_type)
        self.alpha, self.t0 = _check_schedule(alpha, t0)
        self.reg_covar = reg_covar
        self.backend = backend
        self.n_threads = n_threads
        means = v.check_means(means, np.asarray(means).shape[-1])
        self.weights = v.check_weights(weights, means.shape[0])
        self.means = means
        self.covariances = np.array(covariances, dtype=np.float64)
        self.precisions_cholesky = precisions_cholesky_from_covariances(self.covariances, covariance_type,
                                                                        reg_covar)
        self.stats = stats_from_params(self.weights, self.means, self.covariances, covariance_type)
        self.n_steps = 0
        self.loglik = None

    def partial_fit(self, X, sample_weight=None) -> StepwiseEM:
        """One stepwise-EM step on the minibatch ``X`` (an (n, D) array, or any data source)."""
        source = as_source(X, sample_weight)
        batch = source.em_stats(self.weights, self.means, self.precisions_cholesky, self.covariance_type,
                                backend=self.backend, n_threads=self.n_threads)
        if not batch.n > 0:
            raise ValueError("the minibatch has zero total sample_weight; it carries no information")
        gamma = step_size(self.n_steps + 1, self.alpha, self.t0)
        running = scale(recentre(self.stats, batch.shift), 1.0 - gamma)
        stats = running + scale(batch, gamma / batch.n)
        weights, means, covariances = m_step(stats, self.reg_covar)
        self.precisions_cholesky = precisions_cholesky_from_covariances(covariances, self.covariance_type,
                                                                        self.reg_covar)
        self.weights, self.means, self.covariances, self.stats = weights, means, covariances, stats
        self.n_steps += 1
        self.loglik = batch.loglik / batch.n
        return self
