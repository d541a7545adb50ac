"""k-means Numba kernels: the algorithm of :mod:`fastem._kernels._cython._kmeans`.

Rows are centred on ``x_mean`` in X's dtype (as scikit-learn centres X), then converted
to float64; squared distances are direct sums ``sum_d (z_d - c_d) ** 2`` with the
centres transposed, ``centers_t`` (D, K), so that the inner loop runs over the K centres
contiguously (it vectorises without reassociating any sum); the nearest centre is the
first minimum. Statistics are accumulated in float64.

Determinism as in :mod:`.drivers`: rows -> blocks of ``block_size`` -> ``n_slots``
contiguous runs of blocks; ``prange`` runs over slots, each slot adds into its own row
of the buffers and the caller sums the slots in order. Labels and bounds are per row.
X and ``x_mean`` arrive as bytes (``X_bytes`` (N, D * itemsize), ``mean_bytes``
(D * itemsize,) uint8) with the float32 flag ``single``: one compiled kernel serves
both dtypes. ``sample_weight`` is (N,) float64 or empty (all ones).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .drivers import PARALLEL_JIT, slot_blocks
from .vector import JIT


@njit(**JIT)
def _slot_rows(slot, n_slots, n_samples, block_size):
    """First and end row of ``slot``."""
    first, end = slot_blocks(slot, n_slots, n_samples, block_size)
    return first * block_size, min(end * block_size, n_samples)


@njit(**JIT)
def _centre(X, x_mean, r0, nb, Z):
    for b in range(nb):
        x = X[r0 + b]
        z = Z[b]
        for d in range(x.shape[0]):
            z[d] = x[d] - x_mean[d]  # in X's dtype, then stored as float64


@njit(**JIT)
def centre_rows(X_bytes, mean_bytes, single, r0, nb, Z):
    """``Z[b] = X[r0 + b] - x_mean`` (subtracted in X's dtype) for ``b < nb``; Z (>= nb, D)."""
    if single:
        _centre(X_bytes.view(np.float32), mean_bytes.view(np.float32), r0, nb, Z)
    else:
        _centre(X_bytes.view(np.float64), mean_bytes.view(np.float64), r0, nb, Z)


@njit(**JIT)
def sq_distances(z, centers_t, d2):
    """``d2[k] = sum_d (z[d] - c[k, d]) ** 2``, summed over d in order."""
    d2[:] = 0.0
    for d in range(z.shape[0]):
        zd = z[d]
        row = centers_t[d]
        for k in range(d2.shape[0]):
            diff = zd - row[k]
            d2[k] += diff * diff


@njit(**JIT)
def sq_distance_to(z, centers_t, k):
    """One centre's squared distance, summed in the order of :func:`sq_distances`."""
    total = 0.0
    for d in range(z.shape[0]):
        diff = z[d] - centers_t[d, k]
        total += diff * diff
    return total


@njit(**JIT)
def _argmin(d2):
    best = 0
    for k in range(1, d2.shape[0]):
        if d2[k] < d2[best]:
            best = k
    return best


@njit(**JIT)
def _weight(sample_weight, i):
    return 1.0 if sample_weight.shape[0] == 0 else sample_weight[i]


@njit(**JIT)
def _fold(nk, members, sum_x, k, z, w, sign):
    """Add (``sign`` +1) or remove (-1) the centred row ``z`` of weight ``w`` at centre k."""
    sw = sign * w
    nk[k] += sw
    if w > 0:
        members[k] += sign
    for d in range(z.shape[0]):
        sum_x[k, d] += sw * z[d]


@njit(**JIT)
def _assign_slot(X_bytes, mean_bytes, single, sample_weight, centers_t, labels, block_size, slot, nk, members,
                 sum_x, inertia, n_changed):
    n_samples = X_bytes.shape[0]
    n_features, n_centers = centers_t.shape
    Z = np.empty((min(block_size, n_samples), n_features))
    d2 = np.empty(n_centers)
    start, stop = _slot_rows(slot, nk.shape[0], n_samples, block_size)
    for r0 in range(start, stop, block_size):
        nb = min(block_size, stop - r0)
        centre_rows(X_bytes, mean_bytes, single, r0, nb, Z)
        for b in range(nb):
            z = Z[b]
            sq_distances(z, centers_t, d2)
            k = _argmin(d2)
            i = r0 + b
            if labels[i] != k:
                n_changed[slot] += 1
                labels[i] = k
            w = _weight(sample_weight, i)
            inertia[slot] += w * d2[k]
            _fold(nk[slot], members[slot], sum_x[slot], k, z, w, 1)


@njit(**PARALLEL_JIT)
def assign(X_bytes, mean_bytes, single, sample_weight, centers_t, labels, block_size, nk, members, sum_x, inertia,
           n_changed):
    """Lloyd's assignment: ``labels`` (N,) int32 (in/out) become the nearest centre; the
    zeroed slot buffers ``nk``, ``members`` (S, K) float64 / int64, ``sum_x`` (S, K, D),
    ``inertia`` (S,) float64 and ``n_changed`` (S,) int64 receive the slots' statistics."""
    for slot in prange(nk.shape[0]):
        _assign_slot(X_bytes, mean_bytes, single, sample_weight, centers_t, labels, block_size, slot, nk, members,
                     sum_x, inertia, n_changed)


@njit(**JIT)
def _bounded_slot(X_bytes, mean_bytes, single, sample_weight, centers_t, half_gap, shifts, max_shift, margin,
                  labels, upper, lower, block_size, slot, nk, members, sum_x, n_changed):
    n_features, n_centers = centers_t.shape
    Z = np.empty((1, n_features))  # one row: a row is centred only when its bounds fail
    z = Z[0]
    d2 = np.empty(n_centers)
    start, stop = _slot_rows(slot, nk.shape[0], X_bytes.shape[0], block_size)
    for i in range(start, stop):
        old = labels[i]
        if old >= 0:
            upper[i] += shifts[old]
            lower[i] -= max_shift
            bound = lower[i] if lower[i] > half_gap[old] else half_gap[old]
            if upper[i] + margin < bound:
                continue
            centre_rows(X_bytes, mean_bytes, single, i, 1, Z)
            upper[i] = np.sqrt(sq_distance_to(z, centers_t, old))
            if upper[i] + margin < bound:
                continue
        else:
            centre_rows(X_bytes, mean_bytes, single, i, 1, Z)
        sq_distances(z, centers_t, d2)
        k = _argmin(d2)
        best = d2[k]
        d2[k] = np.inf
        second = np.inf  # stays inf when K == 1
        for j in range(n_centers):
            if d2[j] < second:
                second = d2[j]
        upper[i] = np.sqrt(best)
        lower[i] = np.sqrt(second)
        if k != old:
            n_changed[slot] += 1
            labels[i] = k
            w = _weight(sample_weight, i)
            _fold(nk[slot], members[slot], sum_x[slot], k, z, w, 1)
            if old >= 0:
                _fold(nk[slot], members[slot], sum_x[slot], old, z, w, -1)


@njit(**PARALLEL_JIT)
def bounded_assign(X_bytes, mean_bytes, single, sample_weight, centers_t, half_gap, shifts, max_shift, margin,
                   labels, upper, lower, block_size, nk, members, sum_x, n_changed):
    """Hamerly's assignment (see :func:`fastem.reference_kmeans.kmeans_bounded_assign`):
    ``labels``, ``upper``, ``lower`` (N,) in/out; ``half_gap``, ``shifts`` (K,) and
    ``max_shift = max(shifts)``; the zeroed slot buffers (as :func:`assign`'s, without
    inertia) receive the changes of the statistics."""
    for slot in prange(nk.shape[0]):
        _bounded_slot(X_bytes, mean_bytes, single, sample_weight, centers_t, half_gap, shifts, max_shift, margin,
                      labels, upper, lower, block_size, slot, nk, members, sum_x, n_changed)


@njit(**JIT)
def _pots_slot(X_bytes, mean_bytes, single, sample_weight, closest_sq, candidates_t, block_size, slot, pots):
    n_samples = X_bytes.shape[0]
    n_features, n_candidates = candidates_t.shape
    Z = np.empty((min(block_size, n_samples), n_features))
    d2 = np.empty(n_candidates)
    out = pots[slot]
    start, stop = _slot_rows(slot, pots.shape[0], n_samples, block_size)
    for r0 in range(start, stop, block_size):
        nb = min(block_size, stop - r0)
        centre_rows(X_bytes, mean_bytes, single, r0, nb, Z)
        for b in range(nb):
            sq_distances(Z[b], candidates_t, d2)
            w = _weight(sample_weight, r0 + b)
            c = closest_sq[r0 + b]
            for j in range(n_candidates):
                out[j] += w * (d2[j] if d2[j] < c else c)


@njit(**PARALLEL_JIT)
def plusplus_pots(X_bytes, mean_bytes, single, sample_weight, closest_sq, candidates_t, block_size, pots):
    """``pots`` (S, L) zeroed: per slot, ``sum_i w_i min(closest_sq_i, ||z_i - cand_l||^2)``;
    ``candidates_t`` (D, L)."""
    for slot in prange(pots.shape[0]):
        _pots_slot(X_bytes, mean_bytes, single, sample_weight, closest_sq, candidates_t, block_size, slot, pots)


@njit(**JIT)
def _closest_slot(X_bytes, mean_bytes, single, closest_sq, center_t, block_size, slot, n_slots):
    n_samples = X_bytes.shape[0]
    Z = np.empty((min(block_size, n_samples), center_t.shape[0]))
    start, stop = _slot_rows(slot, n_slots, n_samples, block_size)
    for r0 in range(start, stop, block_size):
        nb = min(block_size, stop - r0)
        centre_rows(X_bytes, mean_bytes, single, r0, nb, Z)
        for b in range(nb):
            d2 = sq_distance_to(Z[b], center_t, 0)
            if d2 < closest_sq[r0 + b]:
                closest_sq[r0 + b] = d2


@njit(**PARALLEL_JIT)
def update_closest(X_bytes, mean_bytes, single, closest_sq, center_t, block_size, n_slots):
    """``closest_sq`` (N,) in/out: ``min(closest_sq, ||z - center||^2)``; ``center_t`` (D, 1)."""
    for slot in prange(n_slots):
        _closest_slot(X_bytes, mean_bytes, single, closest_sq, center_t, block_size, slot, n_slots)
