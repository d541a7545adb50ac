"""Pure-numpy k-means kernels: the test oracle of the compiled ones and the ``"numpy"``
backend of :mod:`fastem.kernels`' k-means functions.

A Lloyd step is hard-assignment EM: each row goes to its nearest centre and the
centres' statistics (weights, member counts, weighted sums) are folded in one pass.
Distances are computed directly, ``sum_d ((x_d - mean_d) - c_d) ** 2``, never by the
expansion ``||x||^2 - 2 x.c + ||c||^2`` (which cancels badly); ``x - mean`` is formed in
X's dtype, as scikit-learn centres X. Ties go to the lowest centre index (first minimum),
as in scikit-learn. Inputs arrive validated (see :mod:`fastem.kernels`): X (N, D) C-contiguous
float32/float64, ``x_mean`` (D,) in X's dtype, centres (K, D) float64 in the centred
coordinates, ``sample_weight`` (N,) float64 or None (all ones), ``labels`` (N,) int32.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: rows at a time: the reference holds a (rows, K, D) difference array
_BLOCK_ROWS = 2048


class KMeansStats(NamedTuple):
    """One assignment pass: per-centre weight ``nk`` (K,) float64, ``n_members`` (K,)
    int64 rows of positive weight, weighted sums ``sum_x`` (K, D) float64 of the centred
    rows, the ``inertia`` (sum of weighted squared distances to the assigned centre;
    NaN for the bounded pass, which does not compute every distance) and ``n_changed``,
    the rows whose label changed. The bounded pass returns changes (deltas) of
    ``nk``, ``n_members`` and ``sum_x``."""

    nk: np.ndarray
    n_members: np.ndarray
    sum_x: np.ndarray
    inertia: float
    n_changed: int

    @classmethod
    def from_slots(cls, nk, n_members, sum_x, inertia: float, n_changed) -> KMeansStats:
        """The statistics of a compiled pass from its per-slot buffers (one row per slot;
        sum_x (S, K * D) or (S, K, D)), summed in slot order (numpy reduces axis 0 row by
        row), so the result does not depend on the thread count."""
        return cls(nk.sum(axis=0), n_members.sum(axis=0), sum_x.sum(axis=0).reshape(nk.shape[1], -1), inertia,
                   int(n_changed.sum()))


def _blocks(n_samples: int):
    return (slice(start, min(start + _BLOCK_ROWS, n_samples)) for start in range(0, n_samples, _BLOCK_ROWS))


def _centred(X: np.ndarray, x_mean: np.ndarray, rows: slice) -> np.ndarray:
    """(rows, D) float64 ``X[rows] - x_mean``, the subtraction in X's dtype."""
    return (X[rows] - x_mean).astype(np.float64)


def _sq_distances(z: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """(n, K) squared distances of the centred rows ``z`` to ``centers``."""
    return ((z[:, np.newaxis, :] - centers[np.newaxis]) ** 2).sum(axis=2)


def _weights(sample_weight, rows: slice, n: int) -> np.ndarray:
    return np.ones(n) if sample_weight is None else sample_weight[rows]


def _fold(z, w, labels_new, labels_old, n_components) -> tuple:
    """Changes of (nk, n_members, sum_x) when the rows ``z`` move from ``labels_old``
    (-1: nowhere) to ``labels_new``."""
    nk = np.zeros(n_components)
    members = np.zeros(n_components, dtype=np.int64)
    sum_x = np.zeros((n_components, z.shape[1]))
    moved = labels_new != labels_old
    for sign, labels in ((1.0, labels_new), (-1.0, labels_old)):
        rows = moved & (labels >= 0)
        np.add.at(nk, labels[rows], sign * w[rows])
        np.add.at(members, labels[rows], int(sign) * (w[rows] > 0))
        np.add.at(sum_x, labels[rows], sign * w[rows, np.newaxis] * z[rows])
    return nk, members, sum_x


def _nearest_two(d2: np.ndarray, nearest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distances (not squared) of each row of d2 (n, K) to its nearest centre and to
    the runner-up (inf when K = 1); d2 is overwritten."""
    rows = np.arange(d2.shape[0])
    first = np.sqrt(d2[rows, nearest])
    d2[rows, nearest] = np.inf
    return first, np.sqrt(d2.min(axis=1))


def kmeans_assign(X, x_mean, sample_weight, centers, labels, upper=None, lower=None, *, n_threads: int,
                  block_size: int) -> KMeansStats:
    """Lloyd's assignment: ``labels`` (in/out) become each row's nearest centre; the
    statistics are those of the new assignment (not changes). ``upper``, ``lower`` (N,)
    or None: receive the distances to the nearest and to the runner-up (inf when K = 1),
    the bounds :func:`kmeans_bounded_assign` gives rows without a label before any
    centre has moved."""
    n_components = centers.shape[0]
    nk = np.zeros(n_components)
    members = np.zeros(n_components, dtype=np.int64)
    sum_x = np.zeros_like(centers)
    inertia, n_changed = 0.0, 0
    for rows in _blocks(X.shape[0]):
        z = _centred(X, x_mean, rows)
        w = _weights(sample_weight, rows, z.shape[0])
        d2 = _sq_distances(z, centers)
        new = d2.argmin(axis=1).astype(np.int32)
        n_changed += int(np.count_nonzero(new != labels[rows]))
        labels[rows] = new
        inertia += float(w @ d2[np.arange(len(new)), new])
        if upper is not None:
            upper[rows], lower[rows] = _nearest_two(d2, new)
        np.add.at(nk, new, w)
        np.add.at(members, new, w > 0)
        np.add.at(sum_x, new, w[:, np.newaxis] * z)
    return KMeansStats(nk, members, sum_x, inertia, n_changed)


def kmeans_bounded_assign(X, x_mean, sample_weight, centers, half_gap, drift, max_drift: float, margin: float,
                          labels, upper, lower, *, n_threads: int, block_size: int) -> KMeansStats:
    """Hamerly's exact assignment: the same labels as :func:`kmeans_assign`, computing all
    K distances only for rows whose bounds do not prove their centre is still nearest.

    State per row (in/out): ``labels`` (-1: not yet assigned) and the bounds, stored
    relative to the centres' drifts so that a row the bounds settle is only read:
    ``upper + drift[label]`` >= the distance to its centre, ``lower - max_drift`` <= the
    distance to every other centre. ``drift`` (K,) is how far each centre has moved in
    all (the sum of its shifts), ``max_drift`` the sum of the largest shift of every
    move; ``half_gap`` (K,) is half the distance from each centre to its nearest other
    centre. A row keeps its label when ``upper + drift[label] + margin <
    max(lower - max_drift, half_gap[label])``: ``margin`` covers the bounds' rounding
    (relative to the scale of the distances plus ``max_drift``), so a bound never
    decides a near-tie. Every other row is scanned over all K centres, which refreshes
    both of its bounds. Returns the changes of the statistics (rows moving in minus
    rows moving out) and NaN inertia.
    """
    n_components = centers.shape[0]
    nk = np.zeros(n_components)
    members = np.zeros(n_components, dtype=np.int64)
    sum_x = np.zeros_like(centers)
    n_changed = 0
    for rows in _blocks(X.shape[0]):
        old = labels[rows].copy()
        known = old >= 0
        own = np.maximum(old, 0)
        up, low = upper[rows], lower[rows]
        bound = np.where(known, np.maximum(low - max_drift, half_gap[own]), -np.inf)
        scan = np.flatnonzero(~(up + drift[own] + margin < bound))
        new = old.copy()
        if scan.size:
            z = _centred(X, x_mean, slice(rows.start, rows.stop))[scan]
            d2 = _sq_distances(z, centers)
            nearest = d2.argmin(axis=1)
            new[scan] = nearest
            first, second = _nearest_two(d2, nearest)
            up[scan] = first - drift[nearest]
            low[scan] = second + max_drift
        labels[rows] = new
        n_changed += int(np.count_nonzero(new != old))
        z = _centred(X, x_mean, rows)
        d_nk, d_members, d_sum = _fold(z, _weights(sample_weight, rows, z.shape[0]), new, old, n_components)
        nk += d_nk
        members += d_members
        sum_x += d_sum
    return KMeansStats(nk, members, sum_x, float("nan"), n_changed)


def kmeans_plusplus_pots(X, x_mean, sample_weight, closest_sq, candidates, new_closest=None, *, n_threads: int,
                         block_size: int) -> np.ndarray:
    """(L,) ``sum_i w_i min(closest_sq_i, ||z_i - candidates_l||^2)``: the potential
    k-means++ would have after adding each candidate centre (L, D) float64 (centred).
    ``new_closest`` (L, N) float64 or None: receives those minima, row l being exactly
    what :func:`kmeans_update_closest` makes of ``closest_sq`` for candidate l."""
    pots = np.zeros(candidates.shape[0])
    for rows in _blocks(X.shape[0]):
        z = _centred(X, x_mean, rows)
        d2 = np.minimum(_sq_distances(z, candidates), closest_sq[rows, np.newaxis])
        if new_closest is not None:
            new_closest[:, rows] = d2.T
        pots += _weights(sample_weight, rows, z.shape[0]) @ d2
    return pots


def kmeans_update_closest(X, x_mean, closest_sq, center, *, n_threads: int, block_size: int) -> None:
    """``closest_sq`` (N,) float64 (in/out) becomes ``min(closest_sq, ||z - center||^2)``
    for a new centre (D,) float64 (centred)."""
    for rows in _blocks(X.shape[0]):
        d2 = _sq_distances(_centred(X, x_mean, rows), center[np.newaxis])[:, 0]
        np.minimum(closest_sq[rows], d2, out=closest_sq[rows])
