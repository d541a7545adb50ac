"""The ``"numba"`` k-means backend: slot buffers and transposed centres around the
parallel kernels of :mod:`fastem._kernels._numba.kmeans`.

Same functions and signatures as :mod:`fastem.reference_kmeans`; inputs arrive
validated by :mod:`fastem.kernels`. Per-slot statistics are summed here in slot order,
so results are bit-identical for any ``n_threads``.
"""
from __future__ import annotations

import numpy as np

from ..reference_kmeans import KMeansStats
from ._numba import kmeans as _kmeans
from .numba_backend import _NO_WEIGHTS, _as_bytes, _n_slots, _numba_threads, _readonly

_NO_CLOSEST = np.empty((0, 0))  # plusplus_pots' new_closest when the caller keeps none
_NO_BOUNDS = np.empty(0)  # assign's upper and lower when the caller wants none


def _buffers(n_samples: int, n_features: int, n_components: int, block_size: int):
    """Zeroed slot buffers nk, members (S, K), sum_x (S, K, D), n_changed (S,)."""
    n_slots = _n_slots(n_samples, block_size, 8 * (n_components * (n_features + 2) + 2))
    return (np.zeros((n_slots, n_components)), np.zeros((n_slots, n_components), dtype=np.int64),
            np.zeros((n_slots, n_components, n_features)), np.zeros(n_slots, dtype=np.int64))


def _inputs(X, x_mean, sample_weight, centers) -> tuple:
    """What every kernel takes first: ``X_bytes``, ``mean_bytes``, ``single``, read-only
    ``sample_weight`` (empty: all ones) and ``centers`` transposed to (D, K)."""
    X_bytes, single = _as_bytes(X)
    weights = _NO_WEIGHTS if sample_weight is None else sample_weight
    centers_t = np.ascontiguousarray(centers.T, dtype=np.float64)
    return (X_bytes, _as_bytes(x_mean)[0], single, *_readonly(weights, centers_t))


def kmeans_assign(X, x_mean, sample_weight, centers, labels, upper=None, lower=None, *, n_threads: int,
                  block_size: int) -> KMeansStats:
    """Lloyd's assignment (see :func:`fastem.reference_kmeans.kmeans_assign`)."""
    nk, members, sum_x, n_changed = _buffers(*X.shape, centers.shape[0], block_size)
    inertia = np.zeros(nk.shape[0])
    if upper is None:
        upper = lower = _NO_BOUNDS
    with _numba_threads(min(n_threads, nk.shape[0])):
        _kmeans.assign(*_inputs(X, x_mean, sample_weight, centers), labels, upper, lower, block_size, nk, members,
                       sum_x, inertia, n_changed)
    return KMeansStats.from_slots(nk, members, sum_x, float(inertia.sum()), n_changed)


def kmeans_bounded_assign(X, x_mean, sample_weight, centers, half_gap, drift, max_drift: float, margin: float,
                          labels, upper, lower, *, n_threads: int, block_size: int) -> KMeansStats:
    """Hamerly's assignment (see :func:`fastem.reference_kmeans.kmeans_bounded_assign`)."""
    nk, members, sum_x, n_changed = _buffers(*X.shape, centers.shape[0], block_size)
    with _numba_threads(min(n_threads, nk.shape[0])):
        _kmeans.bounded_assign(*_inputs(X, x_mean, sample_weight, centers), *_readonly(half_gap, drift),
                               float(max_drift), margin, labels, upper, lower, block_size, nk, members, sum_x,
                               n_changed)
    return KMeansStats.from_slots(nk, members, sum_x, float("nan"), n_changed)


def kmeans_plusplus_pots(X, x_mean, sample_weight, closest_sq, candidates, new_closest=None, *, n_threads: int,
                         block_size: int) -> np.ndarray:
    """(L,) potentials after adding each candidate (see :mod:`fastem.reference_kmeans`)."""
    X_bytes, mean_bytes, single, weights, candidates_t = _inputs(X, x_mean, sample_weight, candidates)
    n_slots = _n_slots(X.shape[0], block_size, 8 * candidates.shape[0])
    pots = np.zeros((n_slots, candidates.shape[0]))
    with _numba_threads(min(n_threads, n_slots)):
        _kmeans.plusplus_pots(X_bytes, mean_bytes, single, weights, *_readonly(closest_sq), candidates_t, block_size,
                              pots, _NO_CLOSEST if new_closest is None else new_closest)
    return pots.sum(axis=0)


def kmeans_update_closest(X, x_mean, closest_sq, center, *, n_threads: int, block_size: int) -> None:
    """closest_sq (in/out) = min(closest_sq, squared distance to ``center``)."""
    X_bytes, mean_bytes, single, _, center_t = _inputs(X, x_mean, None, center[np.newaxis])
    n_slots = _n_slots(X.shape[0], block_size)
    with _numba_threads(min(n_threads, n_slots)):
        _kmeans.update_closest(X_bytes, mean_bytes, single, closest_sq, center_t, block_size, n_slots)
