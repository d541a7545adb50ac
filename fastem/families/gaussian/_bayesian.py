"""The variational Bayesian Gaussian mixture as a model family for :func:`fastem.em.run_em`.

Each iteration is one fused pass of the Gaussian family's kernel: the E-step's
per-component constants (:func:`._variational.log_prob_offsets`) are folded into the
kernel's mixture weights, so the pass returns the statistics of the M-step and the
log-normaliser of the responsibilities, and the lower bound follows from those and the
updated posterior without an (n_samples, n_components) array.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...data import ArraySource, initialisation_rows
from ...suff_stats import SuffStats
from . import _variational as vb
from ._family import GaussianFamily, GaussianParams
from ._init import GaussianInit, _tied_over_all_rows
from ._pass import em_stats


@dataclass(frozen=True)
class VariationalGaussianFamily:
    """The variational posterior under ``priors``; statistics through ``gaussian`` (its
    covariance type, reg_covar, backend, threads); ``init`` draws the initial
    responsibilities (its ``resp_stats``, as scikit-learn draws them); ``total_weight``:
    ``sum_i w_i`` over the source, to which an initialisation on a sample is scaled."""

    gaussian: GaussianFamily
    priors: vb.VariationalPriors
    init: GaussianInit
    total_weight: float

    @property
    def prior_type(self) -> str:
        return self.priors.weight_concentration_prior_type

    def initialize(self, source, random_state) -> vb.VariationalParams:
        """The posterior after one update from the initial responsibilities."""
        X, sample_weight = initialisation_rows(source, random_state, self.init.init_size)
        stats, labels = self.init.resp_stats(X, sample_weight, random_state)
        nk, xk, sk = vb.moments(stats, self.gaussian.reg_covar)
        if self.gaussian.covariance_type == "tied" and labels is not None and (labels < 0).any():
            # scikit-learn's tied formula runs over every row even where no component starts
            # (k-means++, random_from_data): start where it does
            sk = _tied_over_all_rows(X, sample_weight, nk, xk, self.gaussian.reg_covar)
        if not (isinstance(source, ArraySource) and X is source.X):
            # initialised on a sample of the rows: the posterior weighs it as the whole data
            nk = nk * (self.total_weight / stats.n)
        return self._update(nk, xk, sk)

    def _update(self, nk, xk, sk) -> vb.VariationalParams:
        return vb.update(nk, xk, sk, self.priors, self.gaussian.covariance_type, self.gaussian.reg_covar)

    def _kernel_params(self, params: vb.VariationalParams, n_features: int) -> tuple[GaussianParams, float]:
        """The Gaussian parameters whose weights carry the E-step constants ``exp(c_k)``,
        scaled by ``exp(-max c)`` so that none overflows, and that ``max c``."""
        offsets = vb.log_prob_offsets(params, self.prior_type, n_features)
        top = float(np.max(offsets))
        return GaussianParams(np.exp(offsets - top), params.means, params.covariances, params.precisions_cholesky), top

    def stats(self, source, params: vb.VariationalParams) -> SuffStats:
        """One fused pass: the responsibilities' statistics and ``loglik`` =
        ``sum_i w_i log sum_k exp(log-prob_ik)`` of the E-step's log-probabilities."""
        kernel_params, top = self._kernel_params(params, source.n_features)
        stats = self.gaussian.stats(source, kernel_params)
        stats.loglik += stats.n * top
        return stats

    def m_step(self, stats: SuffStats) -> vb.VariationalParams:
        return self._update(*vb.moments(stats, self.gaussian.reg_covar))

    def lower_bound(self, stats: SuffStats, params: vb.VariationalParams,
                    new_params: vb.VariationalParams) -> tuple[float, float]:
        """The variational bound after the update (scikit-learn's ``lower_bound_``, a total
        over the samples), and how far the next one may fall below it.

        ``reg_covar`` makes the update exact coordinate ascent for the bound with each
        component's density scaled by ``exp(-reg_covar / 2 * trace(E[precision_k]))``, so
        the next bound may fall by at most ``n * reg_covar / 2 * max_k trace`` (of the
        updated posterior, which the next E-step uses).
        """
        offsets = vb.log_prob_offsets(params, self.prior_type, stats.n_features)
        entropy = vb.responsibility_entropy(stats, params, offsets)
        bound = vb.lower_bound(entropy, new_params, self.prior_type, self.gaussian.covariance_type)
        expected = GaussianParams(None, new_params.means, new_params.covariances, new_params.precisions_cholesky)
        return bound, stats.n * self.gaussian.lower_bound_slack(expected)



def data_moments(source, covariance_type: str, backend: str, n_threads: int | None) -> tuple[float, np.ndarray, np.ndarray]:
    """``sum_i w_i``, the weighted mean (D,) and covariance of the data (ddof=1, a weight
    of 2 counting as two rows; (D, D) for full/tied, its diagonal (D,) otherwise), float64.

    One pass of the one-component kernel, with the moments taken around the data's first
    row (moments around the origin would cancel for data far from it).
    """
    ct = "full" if covariance_type in ("full", "tied") else "diag"
    n_features = source.n_features
    first_row = next(chunk[:1] for chunk, _ in source.iter_chunks() if len(chunk))
    unit = np.eye(n_features)[None] if ct == "full" else np.ones((1, n_features))
    stats = em_stats(source, np.ones(1), np.asarray(first_row, dtype=np.float64), unit, ct,
                     backend=backend, n_threads=n_threads)
    total = stats.n
    if not total > 1.0:
        raise ValueError(f"the sample weights sum to {total!r}; the default covariance_prior (the data's "
                         "covariance, ddof=1) needs more than 1: pass covariance_prior or larger weights")
    centre = stats.sum_x[0] / total
    mean = stats.shift[0] + centre
    if ct == "full":
        covariance = (stats.sum_xx[0] - total * np.outer(centre, centre)) / (total - 1.0)
    else:
        covariance = (stats.sum_xx[0] - total * centre**2) / (total - 1.0)
    return total, mean, covariance
