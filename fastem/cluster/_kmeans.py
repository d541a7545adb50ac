"""k-means as scikit-learn's ``KMeans(n_clusters, n_init=1, random_state)`` computes it,
on fastem's compiled kernels: k-means++ seeding, then Lloyd's iterations with exact
(Hamerly) bounds.

Same data preparation as scikit-learn 1.9: X is centred on its mean (here row by row
inside the kernels, without a copy of X), the tolerance is ``tol`` times the mean
feature variance, ``max_iter=300``; so from the same ``random_state`` the labels and
centres are scikit-learn's, except where two distances tie to rounding (the kernels sum
``(x - c) ** 2`` directly, scikit-learn expands it; float32 data: scikit-learn also
accumulates the centres in float32, fastem in float64).
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from .. import kernels
from .._threads import effective_n_threads
from .._validation import check_finite, check_sample_weight, check_X
from ._lloyd import lloyd
from ._seeding import kmeans_plusplus

class KMeansFit(NamedTuple):
    """labels (N,) int32, cluster_centers (K, D) float64, inertia (NaN when not
    computed), n_iter, and label_means (K, D) float64: the weighted mean of each
    cluster's rows under the final labels (its centre when it has no weight). They differ
    from the centres when the last step stopped on the tolerance: the labels then belong
    to the final centres, and the centres to the labels before them."""

    labels: np.ndarray
    cluster_centers: np.ndarray
    inertia: float
    n_iter: int
    label_means: np.ndarray


def kmeans(X, n_clusters: int, *, sample_weight=None, random_state=None, max_iter: int = 300, tol: float = 1e-4,
           compute_inertia: bool = True, backend: str = "auto", n_threads: int | None = None) -> KMeansFit:
    """One k-means run (k-means++ seeding, Lloyd with exact bounds) on X (N, D); the
    result of ``sklearn.cluster.KMeans(n_clusters, n_init=1, random_state=random_state,
    max_iter=max_iter, tol=tol).fit(X, sample_weight=sample_weight)``.

    Warns ``ConvergenceWarning`` as scikit-learn does when fewer than ``n_clusters``
    distinct clusters are found (duplicate rows).
    """
    X = check_X(X, finite=False)  # fit_kmeans' first pass tells whether X is finite
    sample_weight = check_sample_weight(sample_weight, X.shape[0])
    if X.shape[0] < n_clusters:
        raise ValueError(f"n_samples={X.shape[0]} should be >= n_clusters={n_clusters}.")
    return fit_kmeans(X, n_clusters, sample_weight, check_random_state(random_state), max_iter=max_iter, tol=tol,
                      compute_inertia=compute_inertia, backend=backend, n_threads=n_threads, finite_checked=False)


def fit_kmeans(X: np.ndarray, n_clusters: int, sample_weight: np.ndarray | None,
               random_state: np.random.RandomState, *, max_iter: int, tol: float, compute_inertia: bool,
               backend: str, n_threads: int | None, finite_checked: bool = True) -> KMeansFit:
    """:func:`kmeans` on validated input (X C-contiguous float32/float64, finite unless
    ``finite_checked`` is False; sample_weight float64 or None)."""
    with np.errstate(invalid="ignore", over="ignore"):  # X may not be known finite yet: reported below
        mean, mean_variance = feature_moments(X, backend=backend, n_threads=n_threads)
    if not finite_checked and not (np.isfinite(mean).all() and np.isfinite(mean_variance)):
        # a non-finite entry makes the moments non-finite (so does an overflow of the
        # squares, which this lets through): the scan that names the entry only then,
        # not a pass over every X beforehand (1e6 x 16: 4.7 of the 91 ms of a k-means)
        check_finite(X, "X")
    x_mean = mean.astype(X.dtype)  # the centre scikit-learn subtracts (X.mean(axis=0), to rounding)
    centers, _ = kmeans_plusplus(X, x_mean, n_clusters, sample_weight, random_state, backend=backend,
                                 n_threads=n_threads)
    # scikit-learn's _tolerance: tol times the mean of the feature variances
    result = lloyd(X, x_mean, sample_weight, centers, max_iter=max_iter, tol=mean_variance * tol,
                   compute_inertia=compute_inertia, backend=backend, n_threads=n_threads)
    distinct = np.count_nonzero(np.bincount(result.labels, minlength=n_clusters))
    if distinct < n_clusters:
        warnings.warn(
            f"Number of distinct clusters ({distinct}) found smaller than n_clusters ({n_clusters}). "
            "Possibly due to duplicate points in X.",
            ConvergenceWarning,
            stacklevel=3,
        )
    filled = result.nk > 0
    label_means = np.where(filled[:, np.newaxis], result.sum_x / np.where(filled, result.nk, 1.0)[:, np.newaxis],
                           result.centers) + x_mean
    return KMeansFit(result.labels, result.centers + x_mean, result.inertia, result.n_iter, label_means)


def feature_moments(X: np.ndarray, *, backend: str = "auto", n_threads: int | None = None) -> tuple[np.ndarray, float]:
    """(D,) float64 mean of the features and the mean of their (biased) variances, the
    two moments scikit-learn's KMeans takes of X (unweighted, whatever the sample
    weights), in one compiled pass over X.

    The pass is the assignment to one centre at the first row: it sums the rows
    ``x - x_0`` and their squared norms (the inertia) in float64, and the mean of the
    variances is the trace of the covariance over D. Shifting by a row keeps the one-pass
    moments free of cancellation for data far from the origin. (numpy's column
    reductions ran at a third of the read bandwidth, single-threaded.)"""
    n_samples, n_features = X.shape
    module = kernels.get_kmeans_backend(backend)
    labels = np.zeros(n_samples, dtype=np.int32)
    one = module.kmeans_assign(X, X[0].copy(), None, np.zeros((1, n_features)), labels,
                               n_threads=effective_n_threads(n_threads), block_size=kernels.DEFAULT_BLOCK_SIZE)
    offset = one.sum_x[0] / n_samples
    return X[0] + offset, max(one.inertia / n_samples - float(offset @ offset), 0.0) / n_features
