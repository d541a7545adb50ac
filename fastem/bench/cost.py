"""Cost model: the bytes, flops and exps one call of a benchmarked operation cannot avoid.

Counts are for an ideal implementation of the operation, not for any particular one:
a multiply-add is 2 flops; parameters, statistics and other O(K D^2) terms are ignored.
Quadratic forms are counted expanded: ``||(x - m_k) P_k||^2`` is a dot product of the
D (D + 1) / 2 products x_d x_e (formed once per sample, ignored here) and of x with
each component's coefficients, half the flops of the direct ``(x - m_k) P_k``.
``s`` = bytes per element of X (4 or 8); N samples, D features, K components.

Per sample, E-step (log N(x | k) for every k):

====================  ===========================  ====================================
covariance_type       flops                        how
====================  ===========================  ====================================
full                  K (D^2 + 3 D)                [x_d x_e, x] . coefficients_k (expanded)
tied                  2 D^2 + 3 K D                x P once, then ||x P - m_k P||^2
diag                  4 K D                        [x^2, x] . coefficients_k (expanded)
spherical             2 K (D + 1)                  [||x||^2, x] . coefficients_k (expanded)
====================  ===========================  ====================================

Per sample, statistics (M-step input, given responsibilities r):

====================  ===========================  ====================================
full                  K (D^2 + 3 D)                sum r [x_d x_e, x] (products reused from the E-step)
tied                  2 D^2 + 2 K D                sum r x, x x^T once
diag                  4 K D                        sum r x, sum r x^2 (x^2 reused from the E-step)
spherical             2 K D + 2 K                  sum r x, sum r ||x||^2 (norm reused)
====================  ===========================  ====================================

Operations (bytes moved to/from memory; exps = exp + log calls):

- ``logsumexp`` of an (N, K) float64 array: bytes 8 N K + 8 N; flops 3 N K (max, subtract, add);
  exps N (K + 1).
- ``gaussian_log_prob``: bytes s N D (read X) + 8 N K (write the result); flops N x E-step; exps 0.
- ``em_stats`` (fused E + M pass): bytes s N D (X read once, nothing of size N written);
  flops N x (E-step + 4 K for the log-sum-exp and normalisation + statistics); exps N (K + 1).
- ``iteration`` / ``fit`` (estimator, ``max_iter`` iterations): ``max_iter`` x em_stats.
"""
from __future__ import annotations

from dataclasses import dataclass

from .problems import Config


@dataclass(frozen=True)
class Cost:
    bytes: float
    flops: float
    exps: float

    def __mul__(self, factor: float) -> Cost:
        return Cost(self.bytes * factor, self.flops * factor, self.exps * factor)


def e_step_flops(covariance_type: str, n_features: int, n_components: int) -> int:
    """Flops per sample of log N(x | k) for every component."""
    d, k = n_features, n_components
    return {"full": k * (d * d + 3 * d), "tied": 2 * d * d + 3 * k * d,
            "diag": 4 * k * d, "spherical": 2 * k * (d + 1)}[covariance_type]


def stats_flops(covariance_type: str, n_features: int, n_components: int) -> int:
    """Flops per sample of folding responsibilities into the sufficient statistics."""
    d, k = n_features, n_components
    return {"full": k * (d * d + 3 * d), "tied": 2 * d * d + 2 * k * d,
            "diag": 4 * k * d, "spherical": 2 * k * d + 2 * k}[covariance_type]


def cost(op: str, config: Config, max_iter: int = 1) -> Cost:
    """The :class:`Cost` of one call of ``op`` on ``config`` (``max_iter`` for estimator ops)."""
    n, d, k, ct = config.n_samples, config.n_features, config.n_components, config.covariance_type
    if op == "logsumexp":
        return Cost(8 * n * k + 8 * n, 3 * n * k, n * (k + 1))
    if op == "gaussian_log_prob":
        return Cost(config.itemsize * n * d + 8 * n * k, n * e_step_flops(ct, d, k), 0)
    em = Cost(config.itemsize * n * d, n * (e_step_flops(ct, d, k) + 4 * k + stats_flops(ct, d, k)), n * (k + 1))
    if op == "em_stats":
        return em
    if op in ("iteration", "fit"):
        return em * max_iter
    if op in ("init", "default_fit", "random_fit", "kmeans"):
        # their number of passes is the data's: the floor is the one pass no fit can skip
        return Cost(config.itemsize * n * d, 0, 0)
    raise ValueError(f"unknown benchmark operation {op!r}")
