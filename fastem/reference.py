"""Pure-numpy reference kernels: the test oracle and the benchmark baseline.

Readable rather than fast, but exact in the ways that matter: log-sum-exp is
max-shifted, log-probabilities are computed on centred data (``x - mean_k``), and
second moments are accumulated around a shift. Inputs are assumed validated
(:mod:`fastem.kernels` validates and then dispatches here for ``backend="numpy"``).
Every function accepts ``n_threads`` and ``block_size`` for signature compatibility
with the compiled backends and ignores them. Everything is computed in float64.
"""
from __future__ import annotations

import numpy as np

from .gaussian import log_det_cholesky
from .suff_stats import SuffStats

LOG_2PI = np.log(2 * np.pi)


def logsumexp(a: np.ndarray, axis: int = -1, *, n_threads=None, block_size=None) -> np.ndarray:
    """``log(sum(exp(a), axis))``, shifted by the max; all ``-inf`` slices give ``-inf``."""
    a = np.asarray(a, dtype=np.float64)
    # the max over a copy with ``axis`` first: numpy reduces a short contiguous axis one
    # slice at a time, which costs more than the copy (and a max is exact in any order)
    amax = np.ascontiguousarray(a.swapaxes(axis, 0)).max(axis=0, keepdims=True).swapaxes(0, axis)
    finite = np.isfinite(amax)
    if finite.all():  # each slice's largest term is exp(0) = 1: the sum is >= 1
        return _shifted_logsumexp(a, amax, axis)
    with np.errstate(divide="ignore"):  # log(0) = -inf for all -inf slices
        return _shifted_logsumexp(a, np.where(finite, amax, 0.0), axis)


def _shifted_logsumexp(a: np.ndarray, shift: np.ndarray, axis: int) -> np.ndarray:
    return (np.log(np.exp(a - shift).sum(axis=axis, keepdims=True)) + shift).squeeze(axis=axis)


def _mahalanobis_sq(X: np.ndarray, means: np.ndarray, precisions_cholesky: np.ndarray, covariance_type: str) -> np.ndarray:
    """(N, K) squared Mahalanobis distances ``||(x - mean_k) P_k||**2``."""
    X = X.astype(np.float64, copy=False)
    n_components = means.shape[0]
    out = np.empty((X.shape[0], n_components))
    for k in range(n_components):
        diff = X - means[k]
        if covariance_type == "full":
            y = diff @ precisions_cholesky[k]
        elif covariance_type == "tied":
            y = diff @ precisions_cholesky
        else:  # diag (D,) or spherical scalar
            y = diff * precisions_cholesky[k]
        np.einsum("ij,ij->i", y, y, out=out[:, k])
    return out


def gaussian_log_prob(X, means, precisions_cholesky, covariance_type: str, *, n_threads=None, block_size=None) -> np.ndarray:
    """(N, K) float64 ``log N(x_i | mean_k, precision_k)`` (mixture weights not included)."""
    n_components, n_features = means.shape
    log_det = log_det_cholesky(precisions_cholesky, covariance_type, n_components, n_features)
    maha = _mahalanobis_sq(X, means, precisions_cholesky, covariance_type)
    return -0.5 * (n_features * LOG_2PI + maha) + log_det


def e_step(X, weights, means, precisions_cholesky, covariance_type: str, *, n_threads=None, block_size=None):
    """Responsibilities of the current parameters.

    Returns ``log_resp`` (N, K) float64 and the per-sample log-likelihood
    ``log p(x_i)`` (N,) float64.
    """
    with np.errstate(divide="ignore"):  # a zero weight gives log weight -inf
        weighted = gaussian_log_prob(X, means, precisions_cholesky, covariance_type) + np.log(weights)
    log_prob_norm = logsumexp(weighted, axis=1)
    return weighted - log_prob_norm[:, None], log_prob_norm


def suff_stats(X, resp, covariance_type: str, sample_weight=None, shift=None, *, n_threads=None, block_size=None) -> SuffStats:
    """Sufficient statistics of given responsibilities ``resp`` (N, K).

    ``shift`` defaults to the weighted mean of X (for every component); the returned
    ``loglik`` is 0.0 since no likelihood is computed.
    """
    X = X.astype(np.float64, copy=False)
    n_samples, n_features = X.shape
    n_components = resp.shape[1]
    if shift is None:
        shift = data_shift(X, sample_weight, covariance_type, n_components)
    wr = resp if sample_weight is None else resp * sample_weight[:, None]  # unit weights change nothing
    nk = wr.sum(axis=0)
    sum_x = np.empty((n_components, n_features))
    sum_xx = np.zeros({"full": (n_components, n_features, n_features), "tied": (n_features, n_features),
                       "diag": (n_components, n_features), "spherical": (n_components,)}[covariance_type])
    for k in range(n_components):
        diff = X - (shift if covariance_type == "tied" else shift[k])
        sum_x[k] = wr[:, k] @ diff
        if covariance_type == "full":
            sum_xx[k] = (wr[:, k, None] * diff).T @ diff
        elif covariance_type == "diag":
            sum_xx[k] = wr[:, k] @ diff**2
        elif covariance_type == "spherical":
            sum_xx[k] = wr[:, k] @ (diff**2).sum(axis=1)
    if covariance_type == "tied":
        diff = X - shift
        # the weighted rows are a new array even without weights: numpy would take
        # diff.T @ diff to syrk, whose rounding differs from this product's gemm
        weighted = diff.copy() if sample_weight is None else sample_weight[:, None] * diff
        sum_xx = weighted.T @ diff
    n = float(n_samples if sample_weight is None else sample_weight.sum())
    return SuffStats(covariance_type, nk, sum_x, sum_xx, np.array(shift, dtype=np.float64), 0.0, n)


#: rows of one-hot responsibilities one_hot_stats makes at a time
ONE_HOT_BLOCK_ROWS = 65536


def one_hot_stats(backend_suff_stats, X, labels, n_components: int, covariance_type: str, sample_weight, shift,
                  **options) -> SuffStats:
    """``label_stats`` through a backend's ``suff_stats``: the one-hot responsibilities
    of ``labels`` made :data:`ONE_HOT_BLOCK_ROWS` rows at a time."""
    if labels.size and (labels.min() < -1 or labels.max() >= n_components):
        raise ValueError(f"labels must be -1 (in no component) or in [0, {n_components})")

    def block_stats(rows: slice) -> SuffStats:
        block = labels[rows]
        resp = np.zeros((block.shape[0], n_components))
        hit = np.flatnonzero(block >= 0)
        resp[hit, block[hit]] = 1.0
        return backend_suff_stats(X[rows], resp, covariance_type,
                                  None if sample_weight is None else sample_weight[rows], shift, **options)

    n_samples = X.shape[0]
    return sum(block_stats(slice(start, min(start + ONE_HOT_BLOCK_ROWS, n_samples)))
               for start in range(0, n_samples, ONE_HOT_BLOCK_ROWS))


def label_stats(X, labels, n_components: int, covariance_type: str, sample_weight, shift, *, n_threads=None,
                block_size=None) -> SuffStats:
    """Sufficient statistics of hard responsibilities: row i in component ``labels[i]``
    ((N,) int, -1: in none), around ``shift`` ((K, D); tied (D,)); ``loglik`` is 0.0."""
    return one_hot_stats(suff_stats, X, labels, n_components, covariance_type, sample_weight, shift)


def data_shift(X, sample_weight, covariance_type: str, n_components: int) -> np.ndarray:
    """The shift :func:`suff_stats` uses by default: the weighted mean of X, per component."""
    if sample_weight is None:
        # X.mean(axis=0) without its Python wrapper (a small fit's pass costs as much): the
        # same numbers below 2**24 rows (a float32 N rounds beyond)
        centre = (np.add.reduce(X, axis=0) / X.dtype.type(X.shape[0])).astype(np.float64)
    elif not sample_weight.sum() > 0:
        centre = np.zeros(X.shape[1])
    else:
        centre = np.average(X, axis=0, weights=sample_weight).astype(np.float64)
    return centre if covariance_type == "tied" else np.repeat(centre[np.newaxis], n_components, axis=0)


def default_shift(weights, means, covariance_type: str) -> np.ndarray:
    """The shift :func:`em_stats` uses by default: the current means (tied: their weighted mean)."""
    return weights @ means if covariance_type == "tied" else means


def em_stats(X, weights, means, precisions_cholesky, covariance_type: str, sample_weight=None, shift=None,
             *, n_threads=None, block_size=None) -> SuffStats:
    """One fused EM pass: E-step under the given parameters folded into the statistics
    the M-step needs, plus the total weighted log-likelihood."""
    log_resp, log_prob_norm = e_step(X, weights, means, precisions_cholesky, covariance_type)
    if shift is None:
        shift = default_shift(weights, means, covariance_type)
    stats = suff_stats(X, np.exp(log_resp), covariance_type, sample_weight, shift)
    w = np.ones(X.shape[0]) if sample_weight is None else sample_weight
    stats.loglik = float(w @ log_prob_norm)
    return stats
