"""Mergeable sufficient statistics of a Gaussian mixture: the result of one map step of EM."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def sum_xx_shape(covariance_type: str, n_components: int, n_features: int) -> tuple:
    """Shape of the shifted second moment that ``covariance_type`` needs."""
    return {
        "full": (n_components, n_features, n_features),
        "tied": (n_features, n_features),
        "diag": (n_components, n_features),
        "spherical": (n_components,),
    }[covariance_type]


def shift_shape(covariance_type: str, n_components: int, n_features: int) -> tuple:
    """Shape of the shift the moments are taken around: one per component, one for tied."""
    return (n_features,) if covariance_type == "tied" else (n_components, n_features)


@dataclass(eq=False)
class SuffStats:
    """Weighted sufficient statistics of a Gaussian mixture over a set of samples.

    With responsibilities ``r[i, k]``, sample weights ``w[i]`` and shift ``c``
    (``c[k]`` per component, one ``c`` for tied):

    - ``nk`` (K,) float64: ``sum_i w_i r_ik``
    - ``sum_x`` (K, D) float64: ``sum_i w_i r_ik (x_i - c_k)``
    - ``sum_xx`` float64, shape by ``covariance_type``:
      full (K, D, D) ``sum_i w_i r_ik (x_i - c_k)(x_i - c_k)^T``;
      tied (D, D) ``sum_i w_i (x_i - c)(x_i - c)^T``;
      diag (K, D) ``sum_i w_i r_ik (x_i - c_k)**2``;
      spherical (K,) ``sum_i w_i r_ik ||x_i - c_k||**2``
    - ``shift`` float64, (K, D), or (D,) for tied
    - ``loglik`` float: ``sum_i w_i log p(x_i)`` under the parameters the responsibilities
      came from (0.0 when the responsibilities were given rather than computed)
    - ``n`` float: ``sum_i w_i``

    Statistics over disjoint sets of samples add up with ``+`` when their shifts agree,
    so any split of the data (blocks, chunks, dask partitions) reduces to the same result.
    """

    covariance_type: str
    nk: np.ndarray
    sum_x: np.ndarray
    sum_xx: np.ndarray
    shift: np.ndarray
    loglik: float
    n: float

    @property
    def n_components(self) -> int:
        return self.nk.shape[0]

    @property
    def n_features(self) -> int:
        return self.sum_x.shape[1]

    def __add__(self, other: SuffStats) -> SuffStats:
        if not isinstance(other, SuffStats):
            return NotImplemented
        if other.covariance_type != self.covariance_type:
            raise ValueError(
                f"cannot add SuffStats of covariance_type {self.covariance_type!r} "
                f"and {other.covariance_type!r}"
            )
        if other.sum_x.shape != self.sum_x.shape:
            raise ValueError(
                f"cannot add SuffStats of (n_components, n_features) {self.sum_x.shape} "
                f"and {other.sum_x.shape}"
            )
        if not np.array_equal(self.shift, other.shift):
            raise ValueError(
                "cannot add SuffStats taken around different shifts; compute every chunk's "
                "statistics with the same `shift` (by default the same parameters)"
            )
        return SuffStats(
            self.covariance_type,
            self.nk + other.nk,
            self.sum_x + other.sum_x,
            self.sum_xx + other.sum_xx,
            self.shift,
            self.loglik + other.loglik,
            self.n + other.n,
        )

    def scaled(self, factor: float) -> SuffStats:
        """Every additive field (``nk``, ``sum_x``, ``sum_xx``, ``loglik``, ``n``) times ``factor``."""
        return SuffStats(self.covariance_type, self.nk * factor, self.sum_x * factor, self.sum_xx * factor,
                         self.shift, self.loglik * factor, self.n * factor)

    def __radd__(self, other):
        # lets the builtin ``sum`` start from 0
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented


def recentre(stats: SuffStats, shift) -> SuffStats:
    """The same statistics taken around ``shift`` ((K, D); (D,) for tied) instead of
    ``stats.shift``: exact algebra on K x D x D arrays (``x - c' = (x - c) + delta``)."""
    shift = np.array(shift, dtype=np.float64)
    if shift.shape != stats.shift.shape:
        raise ValueError(f"shift must have shape {stats.shift.shape}, got {shift.shape}")
    delta = stats.shift - shift
    nk, sum_x, sum_xx = stats.nk, stats.sum_x, stats.sum_xx
    new_sum_x = sum_x + nk[:, None] * delta
    ct = stats.covariance_type
    if ct == "full":
        cross = sum_x[:, :, None] * delta[:, None, :]
        new_sum_xx = sum_xx + cross + cross.transpose(0, 2, 1) + nk[:, None, None] * delta[:, :, None] * delta[:, None, :]
    elif ct == "tied":
        # sum_xx is over all samples: sum_i w_i (x_i - c)(x_i - c)^T, with sum_i w_i (x_i - c)
        # = sum_k sum_x[k] (responsibilities sum to one) and sum_i w_i = sum_k nk
        cross = np.outer(sum_x.sum(axis=0), delta)
        new_sum_xx = sum_xx + cross + cross.T + nk.sum() * np.outer(delta, delta)
    elif ct == "diag":
        new_sum_xx = sum_xx + 2 * delta * sum_x + nk[:, None] * delta**2
    else:
        new_sum_xx = sum_xx + 2 * np.einsum("kd,kd->k", delta, sum_x) + nk * np.einsum("kd,kd->k", delta, delta)
    return SuffStats(ct, nk.copy(), new_sum_x, new_sum_xx, shift, stats.loglik, stats.n)
