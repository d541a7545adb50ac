"""Mixtures of independent Poisson features (non-negative integer counts, NaN missing).

``log p(x | k) = sum_d x_d log r_kd - r_kd - log(x_d!)`` over the observed features: the
linear kernel with ``coef = log r``, ``offset = -r``. M-step ``r_kd = (sum_x + alpha) /
(n_obs + alpha)`` (the MAP under a Gamma(1 + alpha, alpha) prior on each rate; alpha = 0 is
maximum likelihood), kept above ``RATE_MIN``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _independent as ind
from ...discrete_stats import IndependentStats


class PoissonParams(NamedTuple):
    """weights (K,) and rates (K, D): the mean count of each feature, float64."""

    weights: np.ndarray
    rates: np.ndarray


def _chunk_function(weights, params: PoissonParams, family) -> ind.LinearPass:
    return ind.LinearPass(weights, np.log(params.rates), -params.rates, "poisson", family.backend, family.threads())


def _m_step(stats: IndependentStats, family) -> PoissonParams:
    rates = ind.smoothed_ratio(stats.sum_x, stats.n_obs, family.alpha, 1)
    return PoissonParams(stats.nk / stats.n, np.maximum(rates, ind.RATE_MIN))


def _log_prior(params: PoissonParams, family) -> float:
    return family.alpha * float(np.sum(np.log(params.rates) - params.rates))


def _sample(params: PoissonParams, labels: np.ndarray, random_state) -> np.ndarray:
    return random_state.poisson(params.rates[labels]).astype(float)


POISSON = ind.Distribution(_chunk_function, _m_step, _log_prior, ind.linear_expected_stats,
                           ind.resp_linear_stats("poisson"), _sample, ind.linear_n_parameters)


def check_params(weights, rates, n_components: int, n_features: int) -> PoissonParams:
    """User-given parameters: rates (K, D) positive and finite, with validated weights (K,)."""
    rates = np.array(rates, dtype=np.float64)
    if rates.shape != (n_components, n_features) or not (np.isfinite(rates) & (rates > 0)).all():
        raise ValueError(f"rates_init must be ({n_components}, {n_features}) positive finite rates, "
                         f"got shape {rates.shape}")
    return PoissonParams(weights, rates)


__all__ = ["POISSON", "PoissonParams", "check_params"]
