"""Variational Bayesian Gaussian mixture: the posterior updates, the E-step constants and
the variational lower bound, on K x D x D arrays (no loops over samples).

The model is scikit-learn 1.9's ``BayesianGaussianMixture`` (Bishop 2006, ch. 10.2; Blei &
Jordan 2006 for the Dirichlet process): a Dirichlet (or stick-breaking Beta) posterior on
the weights, a Gaussian on each mean and a Wishart on each precision. As in scikit-learn,
``covariances`` are the Wishart scale divided by the degrees of freedom, so that
``precisions_cholesky`` is the Cholesky factor of the *expected* precision and the E-step
is the plain Gaussian log-density plus one constant per component.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.special import betaln, digamma, gammaln

from ... import gaussian
from ...suff_stats import SuffStats

PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")


@dataclass(frozen=True)
class VariationalPriors:
    """Validated priors with the defaults filled in (scikit-learn's ``*_prior_`` attributes).

    weight_concentration_prior_type in :data:`PRIOR_TYPES`; weight_concentration,
    mean_precision, degrees_of_freedom floats; mean (D,) float64; covariance float64,
    (D, D) full/tied, (D,) diag, float spherical.
    """

    weight_concentration_prior_type: str
    weight_concentration: float
    mean_precision: float
    mean: np.ndarray
    degrees_of_freedom: float
    covariance: np.ndarray | float


class VariationalParams(NamedTuple):
    """The posterior, in the order of scikit-learn's ``_get_parameters``.

    weight_concentration: (K,) Dirichlet concentrations, or for the Dirichlet process a
    pair of (K,) Beta parameters; mean_precision (K,); means (K, D); degrees_of_freedom
    (K,), a float for tied; covariances and precisions_cholesky by covariance type.
    """

    weight_concentration: np.ndarray | tuple[np.ndarray, np.ndarray]
    mean_precision: np.ndarray
    means: np.ndarray
    degrees_of_freedom: np.ndarray | float
    covariances: np.ndarray
    precisions_cholesky: np.ndarray


def update(nk: np.ndarray, xk: np.ndarray, sk: np.ndarray, priors: VariationalPriors, covariance_type: str,
           reg_covar: float) -> VariationalParams:
    """The posterior given the responsibilities' weights ``nk`` (K,), means ``xk`` (K, D)
    and covariances ``sk`` (by covariance type, ``reg_covar`` added): the variational
    M-step. A covariance that is not positive definite raises a ValueError naming the
    component and ``reg_covar``.
    """
    ct = covariance_type
    n_components = nk.shape[0]
    if priors.weight_concentration_prior_type == "dirichlet_process":
        # stick-breaking: component k's Beta(1 + nk, prior + the weight of the components after k)
        after = np.concatenate([np.cumsum(nk[::-1])[-2::-1], [0.0]])
        weight_concentration = (1.0 + nk, priors.weight_concentration + after)
    else:
        weight_concentration = priors.weight_concentration + nk
    mean_precision = priors.mean_precision + nk
    means = (priors.mean_precision * priors.mean + nk[:, None] * xk) / mean_precision[:, None]
    # the Wishart scale: the prior's, the responsibilities' scatter, and the spread of
    # their means around the prior mean, shrunk by the mean's prior precision
    diff = xk - priors.mean
    shrink = nk * priors.mean_precision / mean_precision
    if ct == "full":
        degrees_of_freedom = priors.degrees_of_freedom + nk
        covariances = (priors.covariance + nk[:, None, None] * sk
                       + shrink[:, None, None] * diff[:, :, None] * diff[:, None, :])
        covariances /= degrees_of_freedom[:, None, None]
    elif ct == "tied":
        # one Wishart shared by the components, each holding 1 / n_components of it
        degrees_of_freedom = priors.degrees_of_freedom + nk.sum() / n_components
        covariances = priors.covariance + (nk.sum() * sk + (shrink[:, None] * diff).T @ diff) / n_components
        covariances /= degrees_of_freedom
    elif ct == "diag":
        degrees_of_freedom = priors.degrees_of_freedom + nk
        covariances = priors.covariance + nk[:, None] * sk + shrink[:, None] * diff**2
        covariances /= degrees_of_freedom[:, None]
    else:
        degrees_of_freedom = priors.degrees_of_freedom + nk
        covariances = priors.covariance + nk * sk + shrink * np.mean(diff**2, axis=1)
        covariances /= degrees_of_freedom
    precisions_cholesky = gaussian.precisions_cholesky_from_covariances(covariances, ct, reg_covar)
    return VariationalParams(weight_concentration, mean_precision, means, degrees_of_freedom, covariances,
                             precisions_cholesky)


def moments(stats: SuffStats, reg_covar: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``nk`` (K,), means (K, D) and covariances (``reg_covar`` added) of the
    responsibilities behind ``stats``: the maximum-likelihood M-step's."""
    _, xk, sk = gaussian.m_step(stats, reg_covar)
    return stats.nk + gaussian.NK_EPS, xk, sk


def expected_log_weights(weight_concentration, prior_type: str) -> np.ndarray:
    """(K,) ``E[log weight_k]`` under the weights' posterior."""
    if prior_type == "dirichlet_process":
        a, b = weight_concentration
        log_total = digamma(a + b)
        # E[log v_k] plus the E[log (1 - v_j)] of every stick broken before k
        broken = np.concatenate([[0.0], np.cumsum(digamma(b) - log_total)[:-1]])
        return digamma(a) - log_total + broken
    return digamma(weight_concentration) - digamma(np.sum(weight_concentration))


def log_prob_offsets(params: VariationalParams, prior_type: str, n_features: int) -> np.ndarray:
    """(K,) constants ``c_k``: the E-step's log-probability of component k is the Gaussian
    log-density with ``means`` and ``precisions_cholesky`` plus ``c_k`` =
    ``E[log weight_k]`` + :func:`log_density_offsets`."""
    return (expected_log_weights(params.weight_concentration, prior_type)
            + log_density_offsets(params.degrees_of_freedom, params.mean_precision, n_features))


def log_density_offsets(degrees_of_freedom, mean_precision: np.ndarray, n_features: int) -> np.ndarray:
    """(K,) ``(E[log det precision_k] - log det E[precision_k]) / 2 - n_features / (2 mean_precision_k)``:
    what the expected log-density adds to the Gaussian log-density at the expected
    precision (the last term is the posterior spread of the mean)."""
    dof = degrees_of_freedom
    expected_log_det = n_features * math.log(2.0) + np.sum(
        digamma(0.5 * (np.asarray(dof)[..., None] - np.arange(n_features))), axis=-1)
    return 0.5 * (expected_log_det - n_features * np.log(dof) - n_features / mean_precision)


def responsibility_entropy(stats: SuffStats, params: VariationalParams, offsets: np.ndarray) -> float:
    """``-sum_i w_i sum_k r_ik log r_ik`` of the responsibilities that ``params`` (with
    E-step ``offsets``) gave ``stats``, from the statistics alone:
    ``log r_ik = log p_ik - log sum_j p_ij``, so the entropy is the log-likelihood minus
    ``sum_k (nk_k (c_k + log-density constant_k)) - mahalanobis_sum / 2``."""
    ct = stats.covariance_type
    n_components, n_features = stats.n_components, stats.n_features
    constants = offsets + gaussian.log_det_cholesky(params.precisions_cholesky, ct, n_components, n_features) \
        - 0.5 * n_features * math.log(2 * math.pi)
    expected = stats.nk @ constants - 0.5 * gaussian.mahalanobis_sum(stats, params.means, params.precisions_cholesky)
    return stats.loglik - expected


def lower_bound(entropy: float, params: VariationalParams, prior_type: str, covariance_type: str) -> float:
    """The variational lower bound up to a constant, as scikit-learn 1.9 reports it: the
    responsibilities' ``entropy`` plus the log-normalisers of the posterior (which, right
    after :func:`update`, stand for every other term of the bound)."""
    n_components, n_features = params.means.shape
    dof = params.degrees_of_freedom
    log_det = gaussian.log_det_cholesky(params.precisions_cholesky, covariance_type, n_components, n_features)
    log_det -= 0.5 * n_features * np.log(dof)  # of the Wishart scale, not of the expected precision
    # log normaliser of each Wishart, without its pi term (a constant); tied: K shares of one
    log_wishart = -(dof * log_det + 0.5 * n_features * math.log(2.0) * dof
                    + np.sum(gammaln(0.5 * (np.asarray(dof)[..., None] - np.arange(n_features))), axis=-1))
    if prior_type == "dirichlet_process":
        log_weight_norm = -np.sum(betaln(*params.weight_concentration))
    else:
        alpha = params.weight_concentration
        log_weight_norm = gammaln(np.sum(alpha)) - np.sum(gammaln(alpha))
    return float(entropy - np.sum(log_wishart) - log_weight_norm
                 - 0.5 * n_features * np.sum(np.log(params.mean_precision)))
