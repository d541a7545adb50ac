"""The ``"cython"`` k-means backend: slot buffers and transposed centres around the
nogil OpenMP kernels of :mod:`fastem._kernels._cython._kmeans`.

Same functions and signatures as :mod:`fastem.reference_kmeans`; inputs arrive
validated by :mod:`fastem.kernels`. Per-slot statistics are summed here in slot order,
so results are bit-identical for any ``n_threads``.
"""
from __future__ import annotations

import numpy as np

from ..reference_kmeans import KMeansStats
from ._isa import import_kernels
from .cython_backend import _n_slots, _threads_for

_kmeans, ISA = import_kernels("_kmeans")


def _buffers(n_samples: int, n_features: int, n_components: int, block_size: int):
    n_slots = _n_slots(n_samples, block_size, n_components * (n_features + 2) + 2)
    return (np.zeros((n_slots, n_components)), np.zeros((n_slots, n_components), dtype=np.int64),
            np.zeros((n_slots, n_components * n_features)), np.zeros(n_slots, dtype=np.int64))


def _transposed(centers: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(centers.T, dtype=np.float64)


def kmeans_assign(X, x_mean, sample_weight, centers, labels, upper=None, lower=None, *, n_threads: int,
                  block_size: int) -> KMeansStats:
    """Lloyd's assignment (see :func:`fastem.reference_kmeans.kmeans_assign`)."""
    nk, members, sum_x, n_changed = _buffers(*X.shape, centers.shape[0], block_size)
    inertia = np.zeros(nk.shape[0])
    _kmeans.assign(X, x_mean, sample_weight, _transposed(centers), labels, upper, lower, nk, members, sum_x, inertia,
                   n_changed, _threads_for(n_threads, nk.shape[0]), block_size)
    return KMeansStats.from_slots(nk, members, sum_x, float(inertia.sum()), n_changed)


def kmeans_bounded_assign(X, x_mean, sample_weight, centers, half_gap, drift, max_drift: float, margin: float,
                          labels, upper, lower, *, n_threads: int, block_size: int) -> KMeansStats:
    """Hamerly's assignment (see :func:`fastem.reference_kmeans.kmeans_bounded_assign`)."""
    nk, members, sum_x, n_changed = _buffers(*X.shape, centers.shape[0], block_size)
    _kmeans.bounded_assign(X, x_mean, sample_weight, _transposed(centers), half_gap, drift, max_drift, margin, labels,
                           upper, lower, nk, members, sum_x, n_changed, _threads_for(n_threads, nk.shape[0]),
                           block_size)
    return KMeansStats.from_slots(nk, members, sum_x, float("nan"), n_changed)


def kmeans_plusplus_pots(X, x_mean, sample_weight, closest_sq, candidates, new_closest=None, *, n_threads: int,
                         block_size: int) -> np.ndarray:
    """(L,) potentials after adding each candidate (see :mod:`fastem.reference_kmeans`)."""
    n_slots = _n_slots(X.shape[0], block_size, candidates.shape[0])
    pots = np.zeros((n_slots, candidates.shape[0]))
    _kmeans.plusplus_pots(X, x_mean, sample_weight, closest_sq, _transposed(candidates), pots, new_closest,
                          _threads_for(n_threads, n_slots), block_size)
    return pots.sum(axis=0)


def kmeans_update_closest(X, x_mean, closest_sq, center, *, n_threads: int, block_size: int) -> None:
    """closest_sq (in/out) = min(closest_sq, squared distance to ``center``)."""
    _kmeans.update_closest(X, x_mean, closest_sq, _transposed(center[np.newaxis]),
                           _threads_for(n_threads, -(-X.shape[0] // block_size)), block_size)
