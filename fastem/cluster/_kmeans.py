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

from .._validation import check_sample_weight, check_X
from ._lloyd import lloyd
from ._seeding import kmeans_plusplus

#: rows at a time for the feature moments (no (N, D) temporary)
_MOMENT_BLOCK_ROWS = 65536


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
    X = check_X(X)
    sample_weight = check_sample_weight(sample_weight, X.shape[0])
    if X.shape[0] < n_clusters:
        raise ValueError(f"n_samples={X.shape[0]} should be >= n_clusters={n_clusters}.")
    return fit_kmeans(X, n_clusters, sample_weight, check_random_state(random_state), max_iter=max_iter, tol=tol,
                      compute_inertia=compute_inertia, backend=backend, n_threads=n_threads)


def fit_kmeans(X: np.ndarray, n_clusters: int, sample_weight: np.ndarray | None,
               random_state: np.random.RandomState, *, max_iter: int, tol: float, compute_inertia: bool,
               backend: str, n_threads: int | None) -> KMeansFit:
    """:func:`kmeans` on validated input (X C-contiguous finite float32/float64,
    sample_weight float64 or None)."""
    mean, variances = feature_moments(X)
    x_mean = mean.astype(X.dtype)  # the centre scikit-learn subtracts (X.mean(axis=0), to rounding)
    centers, _ = kmeans_plusplus(X, x_mean, n_clusters, sample_weight, random_state, backend=backend,
                                 n_threads=n_threads)
    # scikit-learn's _tolerance: tol times the mean of the feature variances
    result = lloyd(X, x_mean, sample_weight, centers, max_iter=max_iter, tol=float(np.mean(variances) * tol),
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


def feature_moments(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(D,) float64 mean and (biased) variance of every feature in one pass over X.

    Sums of ``x - x_0`` and their squares, blocks of rows at a time, as matrix-vector
    products: numpy's column reductions (``X.mean(axis=0)``) run at a third of the read
    bandwidth, and two of them (mean, then variance) were a large part of a fast
    initialisation. Shifting by the first row keeps the one-pass variance free of
    cancellation for data far from the origin (the shift is a sample, not the mean)."""
    n_samples = X.shape[0]
    shift = X[0].astype(np.float64)
    sums, squares = np.zeros(X.shape[1]), np.zeros(X.shape[1])
    for start in range(0, n_samples, _MOMENT_BLOCK_ROWS):
        centred = X[start:start + _MOMENT_BLOCK_ROWS] - shift
        sums += np.ones(centred.shape[0]) @ centred
        squares += np.einsum("ij,ij->j", centred, centred)
    offset = sums / n_samples
    return shift + offset, np.maximum(squares / n_samples - offset**2, 0.0)
