"""The Gaussian mixture as a model family for :func:`fastem.em.run_em`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from .. import gaussian
from ..suff_stats import SuffStats


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


@dataclass(frozen=True)
class GaussianFamily:
    """Gaussian mixture with ``covariance_type`` and ``reg_covar``; statistics on ``backend``
    with ``n_threads``; ``init(source, random_state) -> GaussianParams`` initialises."""

    covariance_type: str
    reg_covar: float
    backend: str
    n_threads: int | None
    init: Callable[[object, np.random.RandomState], GaussianParams]

    def initialize(self, source, random_state) -> GaussianParams:
        return self.init(source, random_state)

    def stats(self, source, params: GaussianParams) -> SuffStats:
        # Kernels take normalised weights; a common factor c on all weights (scikit-learn's
        # initial weights) leaves the responsibilities unchanged and adds n log c.
        total = params.weights.sum()
        stats = source.em_stats(params.weights / total, params.means, params.precisions_cholesky,
                                self.covariance_type, backend=self.backend, n_threads=self.n_threads,
                                check_parameters=not isinstance(params, CheckedGaussianParams))
        if total != 1.0:
            stats.loglik += stats.n * np.log(total)
        return stats

    def m_step(self, stats: SuffStats) -> GaussianParams:
        weights, means, covariances = gaussian.m_step(stats, self.reg_covar)
        return params_from_covariances(weights, means, covariances, self.covariance_type, self.reg_covar)

    def lower_bound_slack(self, params: GaussianParams) -> float:
        """``reg_covar / 2 * max_k trace(precision_k)``.

        Adding ``reg_covar`` to the covariance makes the M-step exact EM for the
        log-likelihood with each component density scaled by
        ``exp(-reg_covar / 2 * trace(precision_k))``; so the plain log-likelihood per unit
        weight can fall by at most this much in one iteration.
        """
        squares = params.precisions_cholesky**2
        traces = {
            "full": lambda: squares.sum(axis=(1, 2)),
            "tied": lambda: squares.sum(),
            "diag": lambda: squares.sum(axis=1),
            "spherical": lambda: params.means.shape[1] * squares,
        }[self.covariance_type]()
        return 0.5 * self.reg_covar * float(np.max(traces))
