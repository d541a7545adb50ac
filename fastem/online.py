"""Stepwise (online) EM for any model family, after Cappé & Moulines (2009).

Each minibatch is seen once. With running statistics ``s`` normalised per unit of sample
weight, step ``t`` (t = 1, 2, ...) on a minibatch ``B`` is

    s_B   = stats(B; theta_{t-1}) / n_B          (E-step on the minibatch only)
    s     = (1 - gamma_t) * s + gamma_t * s_B
    theta_t = m_step(s)

with the step size ``gamma_t = (t + t0) ** -alpha``. ``alpha`` in (0.5, 1] makes
``sum gamma_t`` diverge and ``sum gamma_t**2`` converge, the Robbins-Monro conditions under
which the iterates converge to a stationary point of the likelihood; smaller ``alpha``
forgets the start faster, ``alpha = 1`` weighs all batches alike (a running mean).
``t0 >= 0`` delays the decay: the statistics start as the expected statistics of the
initial parameters, which keep weight ``prod (1 - gamma_t)``; ``t0 = 0`` forgets them at
the first step. Defaults ``alpha=0.6, t0=2`` (measured in ``tests/test_online.py``: within
1% of batch EM's average log-likelihood after one pass).

A family takes part through four hooks besides ``stats`` and ``m_step``:
``expected_stats(params)`` (statistics per unit weight whose M-step gives ``params``
back), ``align(running, batch)`` (the running statistics in the batch's terms, e.g.
re-expressed around its shift), ``allow_nan`` (whether minibatches may hold missing
values), and statistics with ``+`` and ``scaled(factor)``.
"""
from __future__ import annotations

import numbers
from typing import Any

from .data import as_source

__all__ = ["OnlineEM", "step_size"]


def step_size(t: int, alpha: float = 0.6, t0: float = 2.0) -> float:
    """``gamma_t = (t + t0) ** -alpha`` for step ``t >= 1``."""
    return float((t + t0) ** -alpha)


def _check_schedule(alpha, t0) -> tuple[float, float]:
    if not isinstance(alpha, numbers.Real) or not 0.5 < alpha <= 1:
        raise ValueError(f"alpha must lie in (0.5, 1] (Robbins-Monro step sizes), got {alpha!r}")
    if not isinstance(t0, numbers.Real) or not t0 >= 0:
        raise ValueError(f"t0 must be a non-negative number, got {t0!r}")
    return float(alpha), float(t0)


class OnlineEM:
    """Online EM state of ``family`` from ``params``: call :meth:`partial_fit` once per
    minibatch. Attributes: ``params``, ``stats`` (running statistics per unit weight),
    ``n_steps``, ``loglik`` (mean log-likelihood of the last minibatch under the parameters
    before its step: a progressive validation score)."""

    def __init__(self, family, params, *, alpha: float = 0.6, t0: float = 2.0):
        self.family = family
        self.alpha, self.t0 = _check_schedule(alpha, t0)
        self.params = params
        self.stats = family.expected_stats(params)
        self.n_steps = 0
        self.loglik = None

    def partial_fit(self, X, sample_weight=None) -> Any:
        """One stepwise-EM step on the minibatch ``X`` (an (n, D) array, or any data source)."""
        source = as_source(X, sample_weight, allow_nan=self.family.allow_nan)
        batch = self.family.stats(source, self.params)
        if not batch.n > 0:
            raise ValueError("the minibatch has zero total sample_weight; it carries no information")
        gamma = step_size(self.n_steps + 1, self.alpha, self.t0)
        running = self.family.align(self.stats, batch).scaled(1.0 - gamma)
        self.stats = running + batch.scaled(gamma / batch.n)
        self.params = self.family.m_step(self.stats)
        self.n_steps += 1
        self.loglik = batch.loglik / batch.n
        return self
