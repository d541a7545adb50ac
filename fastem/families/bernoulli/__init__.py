"""Mixtures of independent Bernoulli features (binary data: 0/1, NaN missing).

``log p(x | k) = sum_d x_d log p_kd + (1 - x_d) log(1 - p_kd)`` over the observed features:
the linear kernel with ``coef = logit(p)``, ``offset = log(1 - p)``. M-step
``p_kd = (sum_x + alpha) / (n_obs + 2 alpha)`` (the MAP under a Beta(1 + alpha, 1 + alpha)
prior; alpha = 0 is maximum likelihood), kept in ``[PROB_EPS, 1 - PROB_EPS]``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _independent as ind
from ...discrete_stats import IndependentStats


class BernoulliParams(NamedTuple):
    """weights (K,) and probs (K, D): ``P(x_d = 1 | k)``, float64."""

    weights: np.ndarray
    probs: np.ndarray


def _chunk_function(weights, params: BernoulliParams, family) -> ind.LinearPass:
    log_1mp = np.log1p(-params.probs)
    return ind.LinearPass(weights, np.log(params.probs) - log_1mp, log_1mp, "bernoulli", family.backend,
                          family.threads())


def _m_step(stats: IndependentStats, family) -> BernoulliParams:
    probs = ind.smoothed_ratio(stats.sum_x, stats.n_obs, family.alpha, 2)
    return BernoulliParams(stats.nk / stats.n, np.clip(probs, ind.PROB_EPS, 1 - ind.PROB_EPS))


def _log_prior(params: BernoulliParams, family) -> float:
    return family.alpha * float(np.sum(np.log(params.probs) + np.log1p(-params.probs)))


def _sample(params: BernoulliParams, labels: np.ndarray, random_state) -> np.ndarray:
    return (random_state.uniform(size=(labels.shape[0], params.probs.shape[1])) < params.probs[labels]).astype(float)


BERNOULLI = ind.Distribution(_chunk_function, _m_step, _log_prior, ind.linear_expected_stats,
                             ind.resp_linear_stats("bernoulli"), _sample, ind.linear_n_parameters)


def check_params(weights, probs, n_components: int, n_features: int) -> BernoulliParams:
    """User-given parameters: probs (K, D) in (0, 1), with validated weights (K,)."""
    probs = np.array(probs, dtype=np.float64)
    if probs.shape != (n_components, n_features) or not ((probs > 0) & (probs < 1)).all():
        raise ValueError(f"probs_init must be ({n_components}, {n_features}) probabilities strictly between 0 "
                         f"and 1, got shape {probs.shape}")
    return BernoulliParams(weights, probs)


__all__ = ["BERNOULLI", "BernoulliParams", "check_params"]
