"""Lloyd's k-means with Hamerly's exact bounds, stopping as scikit-learn 1.9's
``_kmeans_single_lloyd`` stops.

Each iteration is one compiled pass (:func:`fastem.kernels.kmeans_bounded_assign`):
a row whose distance bounds prove its centre is still the nearest is not looked at
again, so late iterations touch few rows; the labels are those of plain Lloyd (the
bounds keep a rounding margin, so they never decide a near-tie). The centres' weighted
sums are kept up to date from the rows that changed label, in the coordinates
``X - x_mean`` (scikit-learn centres X on its mean too).

The stopping rule is scikit-learn's: stop when no label changes ("strict
convergence") or when the squared centre shifts sum to at most ``tol``; otherwise the
labels are recomputed for the final centres. Empty clusters are relocated to the
farthest rows as scikit-learn does it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kernels
from .._threads import effective_n_threads

#: The bounds' rounding margin relative to the data's scale: their error after T
#: iterations is ~ T * D * eps of that scale (1e-13 for T = 300, D = 64); a margin
#: far above it costs nothing measurable (it only re-examines rows within 1e-9 of a tie).
#: The bounds are stored relative to the drifts (the sums of the shifts), which adds
#: ~ eps * max_drift per use; the margin grows by BOUND_MARGIN * the largest shift of
#: every move, i.e. it holds BOUND_MARGIN * max_drift, far above that too.
BOUND_MARGIN = 1e-9


@dataclass
class LloydResult:
    """labels (N,) int32; centres (K, D) float64 in the coordinates ``X - x_mean``;
    inertia (NaN unless asked for); n_iter; strict (no label changed at the end); nk (K,)
    and sum_x (K, D) float64: the weights and weighted sums (around x_mean) of the rows
    of each label."""

    labels: np.ndarray
    centers: np.ndarray
    inertia: float
    n_iter: int
    strict: bool
    nk: np.ndarray
    sum_x: np.ndarray


def lloyd(X: np.ndarray, x_mean: np.ndarray, sample_weight: np.ndarray | None, centers: np.ndarray, *,
          max_iter: int = 300, tol: float = 0.0, compute_inertia: bool = True, backend: str = "auto",
          n_threads: int | None = None) -> LloydResult:
    """k-means from the initial ``centers`` (K, D) float64 (coordinates ``X - x_mean``).

    X validated (N, D) float32/float64; x_mean (D,) in X's dtype; sample_weight (N,)
    float64 or None; ``tol`` is absolute (scikit-learn's ``_tolerance``).
    """
    module = kernels.get_kmeans_backend(backend)
    options = {"n_threads": effective_n_threads(n_threads), "block_size": kernels.DEFAULT_BLOCK_SIZE}
    n_samples, n_clusters = X.shape[0], centers.shape[0]
    labels = np.full(n_samples, -1, dtype=np.int32)
    upper, lower = np.zeros(n_samples), np.zeros(n_samples)
    nk, members, sum_x = np.zeros(n_clusters), np.zeros(n_clusters, dtype=np.int64), np.zeros_like(centers)
    drift, max_drift = np.zeros(n_clusters), 0.0
    margin = 0.0
    strict = False

    def bounded_assign():  # labels, bounds and the changes of the statistics, for the current centres
        return module.kmeans_bounded_assign(X, x_mean, sample_weight, centers, _half_gaps(centers), drift,
                                            max_drift, margin, labels, upper, lower, **options)

    for n_iter in range(1, max_iter + 1):
        # no row has a label yet: the plain assignment, which gives the bounds too (every
        # row is open, and the bounded pass's per-row bookkeeping cost ~20 % more)
        delta = (module.kmeans_assign(X, x_mean, sample_weight, centers, labels, upper, lower, **options)
                 if n_iter == 1 else bounded_assign())
        nk += delta.nk
        members += delta.n_members
        sum_x += delta.sum_x
        if n_iter == 1:
            margin = BOUND_MARGIN * (upper.max() + _finite_max(lower))
        new_centers = _centres(X, x_mean, sample_weight, centers, labels, nk, members, sum_x)
        shifts = np.sqrt(((new_centers - centers) ** 2).sum(axis=1))
        drift += shifts
        max_drift += shifts.max()
        margin += BOUND_MARGIN * shifts.max()
        centers = new_centers
        if delta.n_changed == 0:
            strict = True
            break
        if (shifts**2).sum() <= tol:
            break
    inertia = float("nan")
    if compute_inertia:
        # the labels of the final centres (scikit-learn's closing E-step) and the inertia
        final = module.kmeans_assign(X, x_mean, sample_weight, centers, labels, **options)
        inertia, nk, sum_x = final.inertia, final.nk, final.sum_x
    elif not strict:
        # the closing E-step alone: the bounds hold for the final centres, so only the
        # rows they leave open are looked at (1e6 x 64, K = 16: 2 ms, not a 65 ms pass)
        delta = bounded_assign()
        nk, sum_x = nk + delta.nk, sum_x + delta.sum_x
    return LloydResult(labels, centers, inertia, n_iter, strict, nk, sum_x)


def _half_gaps(centers: np.ndarray) -> np.ndarray:
    """(K,) half the distance from each centre to its nearest other centre (inf: K = 1)."""
    if centers.shape[0] == 1:
        return np.full(1, np.inf)
    gaps = np.sqrt(((centers[:, np.newaxis] - centers[np.newaxis]) ** 2).sum(axis=2))
    np.fill_diagonal(gaps, np.inf)
    return 0.5 * gaps.min(axis=1)


def _finite_max(a: np.ndarray) -> float:
    largest = float(a.max())
    if np.isfinite(largest):  # the usual case: no masked copy of the N values
        return largest
    finite = a[np.isfinite(a)]
    return float(finite.max()) if finite.size else 0.0


def _centres(X, x_mean, sample_weight, centers_old, labels, nk, members, sum_x) -> np.ndarray:
    """The new centres: weighted means of their rows, after scikit-learn's relocation of
    empty clusters (``_relocate_empty_clusters_dense`` then ``_average_centers``). The
    running ``nk`` and ``sum_x`` describe the labels and are not changed: a relocation
    moves a centre, not a label."""
    empty = np.flatnonzero(members == 0)
    nk = np.where(members == 0, 0.0, nk)  # exactly 0, as scikit-learn's weight sums
    sums = sum_x.copy()
    if empty.size:
        _relocate(X, x_mean, sample_weight, centers_old, labels, empty, nk, sums)
    centers = sums
    biggest = int(np.argmax(nk))
    for k in range(centers.shape[0]):  # in order: an empty centre copies the biggest one as it is then
        if nk[k] > 0:
            centers[k] /= nk[k]
        else:
            centers[k] = centers[biggest]
    return centers


def _relocate(X, x_mean, sample_weight, centers_old, labels, empty, nk, sums) -> None:
    """Move each empty centre onto one of the rows farthest from their centres."""
    distances = np.concatenate([
        (((X[rows] - x_mean).astype(np.float64) - centers_old[labels[rows]]) ** 2).sum(axis=1)
        for rows in _row_blocks(X.shape[0])
    ])
    if distances.max() == 0:  # more clusters than distinct rows: nowhere to go
        return
    far = np.argpartition(distances, -empty.size)[:-empty.size - 1:-1]
    for new, row in zip(empty, far):
        weight = 1.0 if sample_weight is None else sample_weight[row]
        x = (X[row] - x_mean).astype(np.float64)
        old = labels[row]
        sums[old] -= x * weight
        sums[new] = x * weight
        nk[new] = weight
        nk[old] -= weight


def _row_blocks(n_samples: int, rows: int = 65536):
    return (slice(start, min(start + rows, n_samples)) for start in range(0, n_samples, rows))
