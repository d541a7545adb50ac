"""Mixtures of independent categorical features: latent class analysis (integer category
codes ``0 .. n_categories[d] - 1`` per feature, NaN missing).

``log p(x | k) = sum_d log p_kd[x_d]`` over the observed features (the categorical
kernel, with ``log_probs = log p``, -inf past each feature's categories). M-step
``p_kdc = (counts + alpha) / (n_obs + n_categories[d] alpha)`` (the MAP under a symmetric
Dirichlet(1 + alpha) prior; alpha = 0 is maximum likelihood), kept above ``PROB_EPS``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ... import reference_discrete as reference
from .. import _independent as ind
from ...discrete_stats import CategoricalStats


class CategoricalParams(NamedTuple):
    """weights (K,) and probs (K, D, C): ``P(x_d = c | k)``, 0 for ``c >= n_categories[d]``."""

    weights: np.ndarray
    probs: np.ndarray


def valid_categories(n_categories: np.ndarray) -> np.ndarray:
    """(D, C) bool: which (feature, category) cells exist."""
    return np.arange(int(n_categories.max()))[np.newaxis, :] < n_categories[:, np.newaxis]


def _chunk_function(weights, params: CategoricalParams, family) -> ind.CategoricalPass:
    with np.errstate(divide="ignore"):  # categories past n_categories[d]: log 0 = -inf, never read
        log_probs = np.log(params.probs)
    return ind.CategoricalPass(weights, log_probs, family.n_categories, family.backend, family.threads())


def _m_step(stats: CategoricalStats, family) -> CategoricalParams:
    valid = valid_categories(family.n_categories)
    probs = ind.smoothed_ratio(stats.counts, stats.n_obs[:, :, np.newaxis], family.alpha,
                               family.n_categories[np.newaxis, :, np.newaxis])
    return CategoricalParams(stats.nk / stats.n, np.where(valid, np.maximum(probs, ind.PROB_EPS), 0.0))


def _log_prior(params: CategoricalParams, family) -> float:
    valid = valid_categories(family.n_categories)
    return family.alpha * float(np.sum(np.log(params.probs[:, valid])))


def _expected_stats(params: CategoricalParams, family) -> CategoricalStats:
    weights = params.weights / params.weights.sum()
    return CategoricalStats(weights, weights[:, np.newaxis, np.newaxis] * params.probs, 0.0, 1.0)


def _resp_stats(X, resp, sample_weight, family) -> CategoricalStats:
    return reference.categorical_suff_stats(X, resp, family.n_categories, sample_weight)


def _sample(params: CategoricalParams, labels: np.ndarray, random_state) -> np.ndarray:
    cumulative = np.cumsum(params.probs[labels], axis=2)  # (n, D, C)
    u = random_state.uniform(size=cumulative.shape[:2])
    codes = (u[:, :, np.newaxis] >= cumulative).sum(axis=2)
    return np.minimum(codes, (params.probs[labels] > 0).sum(axis=2) - 1).astype(float)


def _n_parameters(params: CategoricalParams, family) -> int:
    return params.weights.shape[0] * int(np.sum(family.n_categories - 1)) + params.weights.shape[0] - 1


CATEGORICAL = ind.Distribution(_chunk_function, _m_step, _log_prior, _expected_stats, _resp_stats, _sample,
                               _n_parameters)


def check_params(weights, probs, n_categories: np.ndarray, n_components: int) -> CategoricalParams:
    """User-given parameters: probs (K, D, C >= max n_categories) positive for each
    feature's categories, summing to 1 over them (cells past them ignored), with validated
    weights (K,)."""
    probs = np.array(probs, dtype=np.float64)
    n_features, n_cells = n_categories.shape[0], int(n_categories.max())
    if probs.ndim != 3 or probs.shape[:2] != (n_components, n_features) or probs.shape[2] < n_cells:
        raise ValueError(f"probs_init must have shape ({n_components}, {n_features}, >= {n_cells}), "
                         f"got {probs.shape}")
    valid = valid_categories(n_categories)
    probs = np.where(valid, probs[:, :, :n_cells], 0.0)
    if not (probs[:, valid] > 0).all() or not np.allclose(probs.sum(axis=2), 1.0, rtol=0, atol=1e-6):
        raise ValueError("probs_init must be positive on each feature's categories and sum to 1 over them")
    return CategoricalParams(weights, probs)


__all__ = ["CATEGORICAL", "CategoricalParams", "check_params", "valid_categories"]
