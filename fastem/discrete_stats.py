"""Mergeable statistics of the mixtures of independent features (Bernoulli, Poisson,
categorical): the result of one map step of EM, added up with ``+`` over any split of
the data.

A row contributes only its observed features (NaN is missing): ``n_obs[k, d]`` is the
responsibility mass that observed feature ``d``, so the M-step of a feature divides by
its own count (full-information maximum likelihood). A row with no observed feature
contributes nothing at all, not even to ``nk`` or ``n``: its likelihood is 1 under every
parameter.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


@dataclass(eq=False)
class AdditiveStats:
    """Statistics whose every field adds up over disjoint sets of rows."""

    def __add__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        values = {}
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if np.shape(a) != np.shape(b):
                raise ValueError(f"cannot add {type(self).__name__} with {f.name} of shapes "
                                 f"{np.shape(a)} and {np.shape(b)}")
            values[f.name] = a + b
        return type(self)(**values)

    def __radd__(self, other):
        # lets the builtin ``sum`` start from 0
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented

    def scaled(self, factor: float):
        """Every field times ``factor`` (online EM's running average)."""
        return type(self)(**{f.name: getattr(self, f.name) * factor for f in fields(self)})


@dataclass(eq=False)
class IndependentStats(AdditiveStats):
    """Statistics of a mixture whose features are independent given the component and
    whose log-density is linear in ``x`` (Bernoulli, Poisson). With responsibilities
    ``r[i, k]``, sample weights ``w[i]`` and ``o[i, d] = 1`` where ``x[i, d]`` is observed:

    - ``nk`` (K,) float64: ``sum_i w_i r_ik`` over rows with an observed feature
    - ``sum_x`` (K, D) float64: ``sum_i w_i r_ik o_id x_id``
    - ``n_obs`` (K, D) float64: ``sum_i w_i r_ik o_id``
    - ``loglik`` float: ``sum_i w_i log p(x_i)`` of the parameters the responsibilities came from
    - ``n`` float: ``sum_i w_i`` over rows with an observed feature
    """

    nk: np.ndarray
    sum_x: np.ndarray
    n_obs: np.ndarray
    loglik: float
    n: float


@dataclass(eq=False)
class CategoricalStats(AdditiveStats):
    """Statistics of a mixture of independent categorical features (latent class
    analysis): ``counts`` (K, D, C) float64 ``sum_i w_i r_ik [x_id = c]`` (C the largest
    number of categories; missing values count nowhere), and ``nk``, ``loglik``, ``n`` as in
    :class:`IndependentStats`. ``n_obs`` is ``counts.sum(axis=2)``."""

    nk: np.ndarray
    counts: np.ndarray
    loglik: float
    n: float

    @property
    def n_obs(self) -> np.ndarray:
        return self.counts.sum(axis=2)
