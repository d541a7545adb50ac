"""k-means++ seeding (Arthur & Vassilvitskii 2007, greedy with ``2 + ln K`` local trials),
drawing exactly as scikit-learn 1.9's ``_kmeans_plusplus`` draws.

With the same ``random_state`` the same random numbers are consumed in the same order
(one ``choice`` for the first centre, then ``n_local_trials`` uniforms per centre), so
the same rows are picked unless two candidates' potentials tie to rounding. The
distances are one compiled pass over X per centre: the candidates' potentials, whose
per-row minima (L, N) are kept when they fit :data:`NEW_CLOSEST_MAX_FRACTION` and
:data:`NEW_CLOSEST_MAX_BYTES`, so that the winner's row is the next closest squared
distances (otherwise a second pass recomputes them, to the same bits).
"""
from __future__ import annotations

import numpy as np

from .. import kernels
from .._threads import effective_n_threads

#: the kept (L, N) minima may take this fraction of X's bytes ...
NEW_CLOSEST_MAX_FRACTION = 0.25
#: ... and at most this many bytes
NEW_CLOSEST_MAX_BYTES = 256 * 2**20
#: values per block of the cumulative sums that pick the candidates
SEARCH_BLOCK = 4096


def kmeans_plusplus(X: np.ndarray, x_mean: np.ndarray, n_clusters: int, sample_weight: np.ndarray | None,
                    random_state: np.random.RandomState, *, n_local_trials: int | None = None,
                    backend: str = "auto", n_threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(centres (n_clusters, D) float64 in the coordinates ``X - x_mean``, their row
    indices (n_clusters,) int64). X validated (N, D) float32/float64, x_mean (D,) in X's
    dtype, sample_weight (N,) float64 or None (all ones)."""
    module = kernels.get_kmeans_backend(backend)
    options = {"n_threads": effective_n_threads(n_threads), "block_size": kernels.DEFAULT_BLOCK_SIZE}
    n_samples = X.shape[0]
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))
    weights = None if sample_weight is None else sample_weight.astype(X.dtype)
    # scikit-learn's first draw, random_state.choice(n_samples, p=weights / weights.sum())
    # with its probabilities in X's dtype: numpy draws one uniform and takes the first
    # row whose cumulative probability, divided by their sum, exceeds it
    probabilities = _first_draw_probabilities(weights, n_samples, X.dtype)
    first = int(_search_cumsum(probabilities, random_state.random_sample() * probabilities.sum(), "right"))
    indices = np.full(n_clusters, -1, dtype=np.int64)
    indices[0] = first
    closest_sq = np.full(n_samples, np.inf)
    module.kmeans_update_closest(X, x_mean, closest_sq, _centred(X, x_mean, first), **options)
    weighted_sq = None if sample_weight is None else np.empty(n_samples)
    # scikit-learn's closest_sq @ weights summed by numpy, not by BLAS: a BLAS ddot over N
    # values wakes BLAS's worker threads, whose spinning then takes a core from the passes
    # that follow (1e6 x 16, K = 8, 2 vCPUs: the whole k-means 226 -> 189 ms)
    potential = float(closest_sq.sum() if sample_weight is None
                      else np.multiply(closest_sq, weights, out=weighted_sq).sum())
    kept = n_local_trials * n_samples * 8
    new_closest = (np.empty((n_local_trials, n_samples))
                   if kept <= min(NEW_CLOSEST_MAX_FRACTION * X.nbytes, NEW_CLOSEST_MAX_BYTES) else None)
    for c in range(1, n_clusters):
        rand_vals = random_state.uniform(size=n_local_trials) * potential
        if sample_weight is None:  # weights of one: the products are closest_sq itself
            candidate_ids = _search_cumsum(closest_sq, rand_vals, "left")
        else:
            candidate_ids = _search_cumsum(np.multiply(closest_sq, weights, out=weighted_sq), rand_vals, "left")
        pots = module.kmeans_plusplus_pots(X, x_mean, sample_weight, closest_sq,
                                           _centred(X, x_mean, candidate_ids), new_closest, **options)
        best = int(np.argmin(pots))
        potential = pots[best]
        indices[c] = candidate_ids[best]
        if c == n_clusters - 1:  # the last centre's distances are never used
            break
        if new_closest is None:
            module.kmeans_update_closest(X, x_mean, closest_sq, _centred(X, x_mean, indices[c]), **options)
        else:
            np.copyto(closest_sq, new_closest[best])
    return _centred(X, x_mean, indices), indices


def _first_draw_probabilities(weights: np.ndarray | None, n_samples: int, dtype: np.dtype) -> np.ndarray:
    """(N,) float64 ``weights / weights.sum()`` computed in ``dtype``; weights None: all
    ones, whose quotient is the one value 1 / N (the sum of N ones is N exactly: in float64,
    and in float32 up to 2**24 rows), filled without the arrays of ones and quotients
    (three N-value passes and their fresh pages, 3-15 ms at N = 1e6)."""
    dtype = np.dtype(dtype)
    if weights is None and (dtype == np.float64 or n_samples <= 2**24):
        return np.full(n_samples, np.float64(dtype.type(1) / dtype.type(n_samples)))
    if weights is None:
        weights = np.ones(n_samples, dtype=dtype)
    return (weights / weights.sum()).astype(np.float64)


def _search_cumsum(values: np.ndarray, targets, side: str) -> np.ndarray:
    """``np.searchsorted(np.cumsum(values), targets, side)`` clipped to the last row, for
    values (N,) float64 >= 0, without the cumulative sum of all N values (a sequential
    pass at a quarter of the read bandwidth, once per centre): the sums of blocks of
    :data:`SEARCH_BLOCK` values locate each target's block, and only that block is
    summed row by row. The running sums differ from ``np.cumsum``'s in the last bits, so
    a target within rounding of a running sum can land one row over (a tie)."""
    n_samples = values.shape[0]
    block_ends = np.cumsum(np.add.reduceat(values, np.arange(0, n_samples, SEARCH_BLOCK)))
    targets = np.asarray(targets, dtype=np.float64)
    blocks = np.minimum(np.searchsorted(block_ends, targets, side), block_ends.shape[0] - 1)
    found = np.empty(targets.shape, dtype=np.int64)
    for at, (target, block) in enumerate(zip(targets.flat, blocks.flat)):
        start = block * SEARCH_BLOCK
        running = np.cumsum(values[start:start + SEARCH_BLOCK])
        running += block_ends[block - 1] if block > 0 else 0.0
        found.flat[at] = start + np.searchsorted(running, target, side)
    return np.minimum(found, n_samples - 1)


def _centred(X: np.ndarray, x_mean: np.ndarray, rows) -> np.ndarray:
    """Rows of ``X - x_mean`` (formed in X's dtype, as the kernels do) as float64."""
    return (X[rows] - x_mean).astype(np.float64)
