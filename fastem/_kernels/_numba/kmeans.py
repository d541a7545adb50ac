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


@njit(inline="always", **JIT)
def sq_distance_to(Z, b, centers_t, k):
    """One centre's squared distance to row ``Z[b]``, summed in the order of :func:`sq_distances`."""
    total = 0.0
    for d in range(Z.shape[1]):
        diff = Z[b, d] - centers_t[d, k]
        total += diff * diff
    return total


#: centres per register tile of :func:`sq_distances` (one AVX-512 or two AVX2 registers)
TILE = 8


@njit(inline="always", **JIT)
def sq_distances(Z, b, centers_t, d2):
    """``d2[k] = sum_d (Z[b, d] - c[k, d]) ** 2``, summed over d in order.

    Full tiles of TILE centres accumulate in scalars, which LLVM packs into registers
    (``d2`` may alias the centres as far as it knows, so summing into ``d2`` itself would
    go through memory on every d); the remaining centres one by one."""
    n_centers = d2.shape[0]
    n_tiled = n_centers - n_centers % TILE
    for k in range(0, n_tiled, TILE):
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
        for d in range(Z.shape[1]):
            zd = Z[b, d]
            c = centers_t[d]
            t0, t1, t2, t3 = zd - c[k], zd - c[k + 1], zd - c[k + 2], zd - c[k + 3]
            t4, t5, t6, t7 = zd - c[k + 4], zd - c[k + 5], zd - c[k + 6], zd - c[k + 7]
            s0 += t0 * t0
            s1 += t1 * t1
            s2 += t2 * t2
            s3 += t3 * t3
            s4 += t4 * t4
            s5 += t5 * t5
            s6 += t6 * t6
            s7 += t7 * t7
        d2[k], d2[k + 1], d2[k + 2], d2[k + 3] = s0, s1, s2, s3
        d2[k + 4], d2[k + 5], d2[k + 6], d2[k + 7] = s4, s5, s6, s7
    for k in range(n_tiled, n_centers):
        d2[k] = sq_distance_to(Z, b, centers_t, k)


@njit(inline="always", **JIT)
def _nearest(d2):
    """The nearest centre (the first minimum of d2 (K,)) and the runner-up's squared
    distance (inf when K = 1), by selects: a branch per centre mispredicts about once a
    row on overlapping clusters."""
    best, first, second = 0, d2[0], np.inf
    for k in range(1, d2.shape[0]):
        v = d2[k]
        closer = v < first
        second = first if closer else min(v, second)
        first = v if closer else first
        best = k if closer else best
    return best, second


@njit(inline="always", **JIT)
def _weight(sample_weight, i):
    return 1.0 if sample_weight.shape[0] == 0 else sample_weight[i]


@njit(inline="always", **JIT)
def _fold(nk, members, sum_x, k, Z, b, w, sign):
    """Add (``sign`` +1) or remove (-1) the centred row ``Z[b]`` of weight ``w`` at centre k
    of one slot's ``nk``, ``members`` (K,) and ``sum_x`` (K, D)."""
    sw = sign * w
    nk[k] += sw
    if w > 0:
        members[k] += sign
    for d in range(Z.shape[1]):
        sum_x[k, d] += sw * Z[b, d]


# The kernels pass rows as (Z, b), never as views Z[b]: a view handed to a call costs an
# atomic reference count increment and decrement, per row. Slot views are made once, and
# the per-row helpers are inlined (a numba call passes every array field separately).


@njit(**JIT)
def _assign_slot(X_bytes, mean_bytes, single, sample_weight, centers_t, labels, upper, lower, block_size, slot, nk,
                 members, sum_x, inertia, n_changed):
    n_samples = X_bytes.shape[0]
    n_features, n_centers = centers_t.shape
    Z = np.empty((min(block_size, n_samples), n_features))
    d2 = np.empty(n_centers)
    start, stop = _slot_rows(slot, n_changed.shape[0], n_samples, block_size)
    nk, members, sum_x = nk[slot], members[slot], sum_x[slot]
    for r0 in range(start, stop, block_size):
        nb = min(block_size, stop - r0)
        centre_rows(X_bytes, mean_bytes, single, r0, nb, Z)
        for b in range(nb):
            sq_distances(Z, b, centers_t, d2)
            k, second = _nearest(d2)
            i = r0 + b
            if upper.shape[0] > 0:
                upper[i] = np.sqrt(d2[k])
                lower[i] = np.sqrt(second)
            if labels[i] != k:
                n_changed[slot] += 1
                labels[i] = k
            w = _weight(sample_weight, i)
            inertia[slot] += w * d2[k]
            _fold(nk, members, sum_x, k, Z, b, w, 1)


@njit(**PARALLEL_JIT)
def assign(X_bytes, mean_bytes, single, sample_weight, centers_t, labels, upper, lower, block_size, nk, members,
           sum_x, inertia, n_changed):
    """Lloyd's assignment: ``labels`` (N,) int32 (in/out) become the nearest centre;
    ``upper``, ``lower`` (N,) the distances to it and to the runner-up, or (0,): none; the
    zeroed slot buffers ``nk``, ``members`` (S, K) float64 / int64, ``sum_x`` (S, K, D),
    ``inertia`` (S,) float64 and ``n_changed`` (S,) int64 receive the slots' statistics."""
    for slot in prange(nk.shape[0]):
        _assign_slot(X_bytes, mean_bytes, single, sample_weight, centers_t, labels, upper, lower, block_size, slot,
                     nk, members, sum_x, inertia, n_changed)


#: rows of the bounded pass whose bounds are tested before the open ones are read
CHUNK = 64


@njit(**JIT)
def _bounded_slot(X_bytes, mean_bytes, single, sample_weight, centers_t, half_gap, drift, max_drift, margin,
                  labels, upper, lower, block_size, slot, nk, members, sum_x, n_changed):
    """CHUNK rows at a time: the bounds alone (branch-free, a settled row is only read)
    pick the open rows, then those are read, which lets their misses on x overlap."""
    n_features, n_centers = centers_t.shape
    Z = np.empty((1, n_features))  # one row: a row is centred only when its bounds fail
    d2 = np.empty(n_centers)
    open_rows = np.empty(CHUNK, dtype=np.int64)
    start, stop = _slot_rows(slot, n_changed.shape[0], X_bytes.shape[0], block_size)
    nk, members, sum_x = nk[slot], members[slot], sum_x[slot]
    for c0 in range(start, stop, CHUNK):
        n_open = 0
        for i in range(c0, min(c0 + CHUNK, stop)):
            old = labels[i]
            own = max(old, 0)
            bound = max(lower[i] - max_drift, half_gap[own])
            open_rows[n_open] = i
            n_open += (old < 0) | (not (upper[i] + drift[own] + margin < bound))
        for j in range(n_open):
            i = open_rows[j]
            old = labels[i]
            centre_rows(X_bytes, mean_bytes, single, i, 1, Z)
            sq_distances(Z, 0, centers_t, d2)
            k, second = _nearest(d2)
            upper[i] = np.sqrt(d2[k]) - drift[k]
            lower[i] = np.sqrt(second) + max_drift
            if k != old:
                n_changed[slot] += 1
                labels[i] = k
                w = _weight(sample_weight, i)
                _fold(nk, members, sum_x, k, Z, 0, w, 1)
                if old >= 0:
                    _fold(nk, members, sum_x, old, Z, 0, w, -1)


@njit(**PARALLEL_JIT)
def bounded_assign(X_bytes, mean_bytes, single, sample_weight, centers_t, half_gap, drift, max_drift, margin,
                   labels, upper, lower, block_size, nk, members, sum_x, n_changed):
    """Hamerly's assignment (see :func:`fastem.reference_kmeans.kmeans_bounded_assign`):
    ``labels``, ``upper``, ``lower`` (N,) in/out, the bounds relative to ``drift`` (K,)
    and ``max_drift``; ``half_gap`` (K,); the zeroed slot buffers (as :func:`assign`'s,
    without inertia) receive the changes of the statistics."""
    for slot in prange(nk.shape[0]):
        _bounded_slot(X_bytes, mean_bytes, single, sample_weight, centers_t, half_gap, drift, max_drift, margin,
                      labels, upper, lower, block_size, slot, nk, members, sum_x, n_changed)


@njit(**JIT)
def _pots_slot(X_bytes, mean_bytes, single, sample_weight, closest_sq, candidates_t, block_size, slot, pots,
               new_closest):
    n_samples = X_bytes.shape[0]
    keep = new_closest.shape[0] > 0
    n_features, n_candidates = candidates_t.shape
    Z = np.empty((min(block_size, n_samples), n_features))
    d2 = np.empty(n_candidates)
    out = pots[slot]
    start, stop = _slot_rows(slot, pots.shape[0], n_samples, block_size)
    for r0 in range(start, stop, block_size):
        nb = min(block_size, stop - r0)
        centre_rows(X_bytes, mean_bytes, single, r0, nb, Z)
        for b in range(nb):
            sq_distances(Z, b, candidates_t, d2)
            w = _weight(sample_weight, r0 + b)
            c = closest_sq[r0 + b]
            for j in range(n_candidates):
                m = d2[j] if d2[j] < c else c
                out[j] += w * m
                if keep:
                    new_closest[j, r0 + b] = m


@njit(**PARALLEL_JIT)
def plusplus_pots(X_bytes, mean_bytes, single, sample_weight, closest_sq, candidates_t, block_size, pots,
                  new_closest):
    """``pots`` (S, L) zeroed: per slot, ``sum_i w_i min(closest_sq_i, ||z_i - cand_l||^2)``;
    ``candidates_t`` (D, L); ``new_closest`` (L, N) receives those minima, or is (0, 0)."""
    for slot in prange(pots.shape[0]):
        _pots_slot(X_bytes, mean_bytes, single, sample_weight, closest_sq, candidates_t, block_size, slot, pots,
                   new_closest)


@njit(**JIT)
def _closest_slot(X_bytes, mean_bytes, single, closest_sq, center_t, block_size, slot, n_slots):
    n_samples = X_bytes.shape[0]
    Z = np.empty((min(block_size, n_samples), center_t.shape[0]))
    start, stop = _slot_rows(slot, n_slots, n_samples, block_size)
    for r0 in range(start, stop, block_size):
        nb = min(block_size, stop - r0)
        centre_rows(X_bytes, mean_bytes, single, r0, nb, Z)
        for b in range(nb):
            d2 = sq_distance_to(Z, b, center_t, 0)
            if d2 < closest_sq[r0 + b]:
                closest_sq[r0 + b] = d2


@njit(**PARALLEL_JIT)
def update_closest(X_bytes, mean_bytes, single, closest_sq, center_t, block_size, n_slots):
    """``closest_sq`` (N,) in/out: ``min(closest_sq, ||z - center||^2)``; ``center_t`` (D, 1)."""
    for slot in prange(n_slots):
        _closest_slot(X_bytes, mean_bytes, single, closest_sq, center_t, block_size, slot, n_slots)
