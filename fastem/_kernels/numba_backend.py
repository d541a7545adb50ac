"""Numba backend: the kernel contract of :mod:`fastem.kernels` on JIT-compiled loops.

Inputs arrive validated (see :mod:`fastem.kernels`). Covariance types share two code
paths: full/tied (triangular precision factors; tied is one factor for every
component) and diag/spherical (spherical factors broadcast to (K, D)). Each of the three
parallel kernels (log-prob, statistics, log-sum-exp) is compiled once for both X dtypes
(X is passed as bytes plus a float32 flag) and cached on disk.
"""
from __future__ import annotations

from contextlib import contextmanager

import numba
import numpy as np

from ..gaussian import log_det_cholesky
from ..reference import one_hot_stats
from ..suff_stats import SuffStats
from ._numba import drivers

#: Upper bound on the slots of the deterministic reduction (a slot is a run of blocks).
MAX_SLOTS = 64
#: Upper bound on the bytes of all slots' statistics buffers together (large K x D x D).
MAX_SLOT_BYTES = 1 << 28
_NO_WEIGHTS = np.empty(0)


def is_compiled() -> bool:
    """Whether this process has the fused pass and log-prob kernels compiled (or loaded
    from numba's cache): ``backend="auto"`` takes Numba only then, never paying a JIT
    compile for the caller."""
    return bool(drivers.stats.signatures and drivers.log_prob.signatures)


@contextmanager
def _numba_threads(n_threads: int):
    """Run numba's parallel loops on ``n_threads`` (clamped to numba's pool) threads."""
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n_threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def _n_slots(n_samples: int, block_size: int, slot_bytes: int = 0) -> int:
    """Slots of the reduction: a function of the problem's size, never of the thread count."""
    n_blocks = -(-n_samples // block_size)
    return max(1, min(n_blocks, MAX_SLOTS, MAX_SLOT_BYTES // max(slot_bytes, 1)))


def _readonly(*arrays: np.ndarray) -> list[np.ndarray]:
    """Read-only views of the kernels' inputs: numba compiles a separate kernel per
    writeable flag, so passing every input read-only keeps it to one (memmaps and
    other read-only inputs then cost no extra compilation)."""
    views = []
    for a in arrays:
        view = a.view()
        view.flags.writeable = False
        views.append(view)
    return views


def _as_bytes(X: np.ndarray) -> tuple[np.ndarray, bool]:
    """X (C-contiguous float32/float64) as the kernels take it: a read-only uint8 view
    and a float32 flag (one compiled kernel for both dtypes)."""
    return _readonly(X.view(np.uint8))[0], X.dtype == np.float32


def _is_full(covariance_type: str) -> bool:
    return covariance_type in ("full", "tied")


def _pad(a: np.ndarray, axes: tuple, n_padded: int) -> np.ndarray:
    """``a`` zero-padded along ``axes`` to length ``n_padded``."""
    width = [(0, n_padded - a.shape[ax] if ax in axes else 0) for ax in range(a.ndim)]
    return np.ascontiguousarray(np.pad(a, width))


def _padded(n_features: int, covariance_type: str) -> int:
    """Feature count the kernels see: full/tied round up to a multiple of 4 (tiles)."""
    return -(-n_features // 4) * 4 if _is_full(covariance_type) else n_features


def _kernel_params(means, precisions_cholesky, covariance_type):
    """``means`` (K, Dp), precision factors as a 3-d float64 array ((K, Dp, Dp) full,
    (1, Dp, Dp) tied, (1, K, D) diag/spherical) and ``center`` (Dp,). Tied: the kernel
    projects ``x - center`` once per block, so ``means`` are ``(means - center) P`` and
    ``center`` the mean of the means; zeros (unused) otherwise."""
    n_features = means.shape[1]
    n_padded = _padded(n_features, covariance_type)
    center = np.zeros(n_padded)
    if covariance_type == "spherical":
        precisions_cholesky = np.repeat(precisions_cholesky[:, None], n_features, axis=1)
    if covariance_type == "full":
        prec = _pad(precisions_cholesky, (1, 2), n_padded)
    elif covariance_type == "tied":
        prec = _pad(precisions_cholesky[None], (1, 2), n_padded)
        center = _pad(means.mean(axis=0), (0,), n_padded)
        means = (means - center[:n_features]) @ precisions_cholesky
    else:
        prec = np.ascontiguousarray(precisions_cholesky[None])
    return _pad(means, (1,), n_padded), prec, center


def _log_det(precisions_cholesky, covariance_type, means):
    return log_det_cholesky(precisions_cholesky, covariance_type, *means.shape)


def logsumexp(a: np.ndarray, axis: int = -1, *, n_threads: int, block_size: int) -> np.ndarray:
    """(N,) float64 max-shifted log-sum-exp of the rows of ``a`` (N, K) float64."""
    if axis not in (-1, a.ndim - 1):
        raise ValueError(f"the numba backend reduces over the last axis only, got axis={axis}")
    a = np.ascontiguousarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] == 0:
        raise ValueError(f"logsumexp needs a 2-d array with at least one column, got shape {a.shape}")
    n_slots = _n_slots(a.shape[0], block_size)
    with _numba_threads(min(n_threads, n_slots)):
        return drivers.logsumexp(*_readonly(a), block_size, n_slots)


def gaussian_log_prob(X: np.ndarray, means: np.ndarray, precisions_cholesky: np.ndarray, covariance_type: str,
                      *, n_threads: int, block_size: int) -> np.ndarray:
    """(N, K) float64 ``log N(x_i | mean_k, precision_k)``."""
    log_det = _log_det(precisions_cholesky, covariance_type, means)
    params = _kernel_params(means, precisions_cholesky, covariance_type)
    n_slots = _n_slots(X.shape[0], block_size)
    with _numba_threads(min(n_threads, n_slots)):
        return drivers.log_prob(*_as_bytes(X), *_readonly(*params, log_det), _is_full(covariance_type),
                                covariance_type == "tied", block_size, n_slots)


def _stats(X, resp, log_weights, means, prec, center, log_det, covariance_type, sample_weight, shift,
           n_threads, block_size) -> SuffStats:
    full = _is_full(covariance_type)
    tied = covariance_type == "tied"
    n_features = X.shape[1]
    kernel_shift = _pad(shift[None] if tied else shift, (1,), means.shape[1])
    n_components, n_padded = means.shape
    sum_xx_shape = (1 if tied else n_components, n_padded, n_padded if full else 1)
    n_slots = _n_slots(X.shape[0], block_size, 8 * (np.prod(sum_xx_shape) + n_components * (n_padded + 1)))
    nk = np.zeros((n_slots, n_components))
    sum_x = np.zeros((n_slots, n_components, n_padded))
    sum_xx = np.zeros((n_slots, *sum_xx_shape))
    loglik = np.zeros(n_slots)
    with _numba_threads(min(n_threads, n_slots)):
        drivers.stats(*_as_bytes(X), *_readonly(resp, log_weights, means, prec, center, log_det,
                                                _NO_WEIGHTS if sample_weight is None else sample_weight,
                                                kernel_shift),
                      full, tied, block_size, nk, sum_x, sum_xx, loglik)
    # a fixed reduction over the slots: the slot buffers do not depend on the thread count
    nk, sum_x, sum_xx, loglik = nk.sum(axis=0), sum_x.sum(axis=0), sum_xx.sum(axis=0), loglik.sum()
    sum_x = sum_x[:, :n_features]
    if full:
        sum_xx = sum_xx[:, :n_features, :n_features]
        sum_xx = np.triu(sum_xx) + np.triu(sum_xx, 1).transpose(0, 2, 1)
        if tied:
            sum_xx = sum_xx[0]
    else:
        sum_xx = sum_xx[:, :, 0]
        if covariance_type == "spherical":
            sum_xx = sum_xx.sum(axis=1)
    n = float(X.shape[0]) if sample_weight is None else float(sample_weight.sum())
    return SuffStats(covariance_type, nk, sum_x, sum_xx, np.array(shift, dtype=np.float64), float(loglik), n)


def suff_stats(X: np.ndarray, resp: np.ndarray, covariance_type: str, sample_weight, shift, *,
               n_threads: int, block_size: int) -> SuffStats:
    """Sufficient statistics of given responsibilities ``resp`` (N, K); ``loglik`` is 0.0."""
    n_components = resp.shape[1]
    n_padded = _padded(X.shape[1], covariance_type)
    unused = np.zeros((1, 1, 1)) if _is_full(covariance_type) else np.zeros((1, n_components, 1))
    return _stats(X, np.ascontiguousarray(resp, dtype=np.float64), np.zeros(n_components),
                  np.zeros((n_components, n_padded)), unused, np.zeros(n_padded), np.zeros(n_components),
                  covariance_type, sample_weight, shift, n_threads, block_size)


def label_stats(X: np.ndarray, labels: np.ndarray, n_components: int, covariance_type: str, sample_weight, shift,
                *, n_threads: int, block_size: int) -> SuffStats:
    """Sufficient statistics of hard responsibilities through this backend's suff_stats."""
    return one_hot_stats(suff_stats, X, labels, n_components, covariance_type, sample_weight, shift,
                         n_threads=n_threads, block_size=block_size)


def em_stats(X: np.ndarray, weights: np.ndarray, means: np.ndarray, precisions_cholesky: np.ndarray,
             covariance_type: str, sample_weight, shift, *, n_threads: int, block_size: int) -> SuffStats:
    """One fused pass: E-step under the parameters folded into the M-step statistics."""
    with np.errstate(divide="ignore"):  # a zero weight gives log weight -inf
        log_weights = np.log(weights)
    log_det = _log_det(precisions_cholesky, covariance_type, means)
    means, prec, center = _kernel_params(means, precisions_cholesky, covariance_type)
    return _stats(X, np.empty((0, means.shape[0])), log_weights, means, prec, center, log_det,
                  covariance_type, sample_weight, shift, n_threads, block_size)
