"""Stepwise (online) EM for Gaussian mixtures: :class:`fastem.online.OnlineEM` on the
Gaussian family, with the Gaussian parameters as attributes."""
from __future__ import annotations

import numpy as np

from ... import _validation as v
from ...online import OnlineEM
from ._family import GaussianFamily, params_from_covariances, stats_from_params

__all__ = ["StepwiseEM", "stats_from_params"]


class StepwiseEM(OnlineEM):
    """Online EM of a Gaussian mixture from weights (K,), means (K, D) and covariances (by
    ``covariance_type``); attributes ``weights``, ``means``, ``covariances``,
    ``precisions_cholesky`` (float64) besides :class:`~fastem.online.OnlineEM`'s."""

    def __init__(self, weights, means, covariances, covariance_type: str, *, reg_covar: float = 1e-6,
                 alpha: float = 0.6, t0: float = 2.0, backend: str = "auto", n_threads: int | None = None):
        v.check_covariance_type(covariance_type)
        means = v.check_means(means, np.asarray(means).shape[-1])
        weights = v.check_weights(weights, means.shape[0])
        family = GaussianFamily(covariance_type, reg_covar, backend, n_threads, init=None)
        super().__init__(family, params_from_covariances(weights, means, covariances, covariance_type, reg_covar),
                         alpha=alpha, t0=t0)

    weights = property(lambda self: self.params.weights)
    means = property(lambda self: self.params.means)
    covariances = property(lambda self: self.params.covariances)
    precisions_cholesky = property(lambda self: self.params.precisions_cholesky)
    covariance_type = property(lambda self: self.family.covariance_type)
    reg_covar = property(lambda self: self.family.reg_covar)
