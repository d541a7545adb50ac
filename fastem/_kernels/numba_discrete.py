"""The ``"numba"`` backend of the independent-feature families (Bernoulli, Poisson,
categorical): parameter tables, slot buffers and the error of the first invalid entry
around the parallel passes of :mod:`fastem._kernels._numba.discrete`.

Same functions and signatures as :mod:`fastem.reference_discrete` (the ``*_suff_stats``
excepted); inputs arrive validated by :mod:`fastem.kernels`. Categorical and Bernoulli
share the table pass (Bernoulli is two categories), Poisson has its own. Components are
padded to a multiple of the kernels' tile with log weight ``-inf``; per-slot statistics
are summed here in slot order, so results are bit-identical for any ``n_threads``.
"""
from __future__ import annotations

import numpy as np

from .._validation import invalid_value_error
from ..discrete_stats import CategoricalStats, IndependentStats
from ._numba import discrete as _dk
from .numba_backend import _NO_WEIGHTS, _as_bytes, _n_slots, _numba_threads, _readonly

_LOG_FACTORIAL = _readonly(_dk.LOG_FACTORIAL)[0]


def _n_padded(n_components: int) -> int:
    return -(-n_components // _dk.TILE) * _dk.TILE


def _aligned_zeros(shape) -> np.ndarray:
    """Zeros starting on a 64-byte boundary: with rows of Kp float64 (a multiple of 64
    bytes), no vector of the kernels then straddles two cache lines."""
    size = int(np.prod(shape))
    buf = np.zeros(size + 8)
    start = (-buf.ctypes.data % 64) // 8
    return buf[start:start + size].reshape(shape)


def _init(weights, n_components: int) -> np.ndarray:
    """(Kp,) log weights (``-inf`` for the padding, and where a weight is 0); zeros where
    ``weights`` is None (log-densities alone) except the padding."""
    init = np.full(_n_padded(n_components), -np.inf)
    if weights is None:
        init[:n_components] = 0.0
    else:
        with np.errstate(divide="ignore"):
            init[:n_components] = np.log(weights)
    return init


def _raise_first_invalid(X, bad, distribution: str) -> None:
    found = bad[bad >= 0]
    if found.size:
        raise invalid_value_error(X, int(found.min()), distribution)


# ------------------------------------------------------------------ table pass
def _bernoulli_table(coef, offset):
    """(D, 3, Kp): rows x = 0 (offset), x = 1 (coef + offset), missing (zeros) per feature."""
    n_components, n_features = coef.shape
    T = _aligned_zeros((n_features, 3, _n_padded(n_components)))
    T[:, 0, :n_components] = offset.T
    T[:, 1, :n_components] = (coef + offset).T
    return T, np.full(n_features, 2.0)


def _categorical_table(log_probs, n_categories):
    """(D, C + 1, Kp): ``log_probs[k, d, c]`` at ``[d, c, k]``, then a zero row per feature."""
    n_components, n_features, n_cat = log_probs.shape
    T = _aligned_zeros((n_features, n_cat + 1, _n_padded(n_components)))
    T[:, :n_cat, :n_components] = log_probs.transpose(1, 2, 0)
    return T, n_categories.astype(np.float64)


def _table_pass(X, T, ncat, init, sample_weight, distribution, log_prob_only, n_components, n_threads,
                block_size):
    """The table pass over T (D, C1, Kp): (N, K) log-densities, or nk (K,), counts (D, C1,
    Kp), loglik, n."""
    n_samples = X.shape[0]
    n_features, n_rows, n_padded = T.shape
    n_slots = _n_slots(n_samples, block_size, 8 * (T.size + n_padded + 3))
    nk = np.zeros((n_slots, n_padded))
    counts = _aligned_zeros((1 if log_prob_only else n_slots, T.size))
    loglik, n = np.zeros(n_slots), np.zeros(n_slots)
    bad = np.full(n_slots, -1, dtype=np.int64)
    out = np.empty((n_samples, n_components) if log_prob_only else (0, n_components))
    inputs = _readonly(ncat, T.reshape(-1), init, _NO_WEIGHTS if sample_weight is None else sample_weight)
    with _numba_threads(min(n_threads, n_slots)):
        _dk.table_pass(*_as_bytes(X), *inputs, block_size, out, nk, counts, loglik, n, bad)
    _raise_first_invalid(X, bad, distribution)
    if log_prob_only:
        return out
    return nk.sum(axis=0)[:n_components], counts.sum(axis=0).reshape(T.shape), float(loglik.sum()), float(n.sum())


# ------------------------------------------------------------------ poisson pass
def _poisson_pass(X, coef, offset, weights, sample_weight, log_prob_only, n_threads, block_size):
    n_samples, n_features = X.shape
    n_components = coef.shape[0]
    n_padded = _n_padded(n_components)
    coef_t = _aligned_zeros((n_features, n_padded))
    coef_t[:, :n_components] = coef.T
    offset_t = _aligned_zeros((n_features, n_padded))
    offset_t[:, :n_components] = offset.T
    init = _init(None if log_prob_only else weights, n_components)
    init[:n_components] += offset.sum(axis=1)
    n_slots = _n_slots(n_samples, block_size, 8 * (2 * n_features * n_padded + n_padded + 3))
    n_buffers = 1 if log_prob_only else n_slots
    nk = np.zeros((n_slots, n_padded))
    sum_x = _aligned_zeros((n_buffers, n_features * n_padded))
    miss = _aligned_zeros((n_buffers, n_features * n_padded))
    loglik, n = np.zeros(n_slots), np.zeros(n_slots)
    bad = np.full(n_slots, -1, dtype=np.int64)
    out = np.empty((n_samples, n_components) if log_prob_only else (0, n_components))
    inputs = _readonly(coef_t.reshape(-1), offset_t.reshape(-1), init,
                       _NO_WEIGHTS if sample_weight is None else sample_weight)
    with _numba_threads(min(n_threads, n_slots)):
        _dk.poisson_pass(*_as_bytes(X), _LOG_FACTORIAL, *inputs, block_size, out, nk, sum_x, miss, loglik, n, bad)
    _raise_first_invalid(X, bad, "poisson")
    if log_prob_only:
        return out
    nk = nk.sum(axis=0)[:n_components]
    sum_x = sum_x.sum(axis=0).reshape(n_features, n_padded)[:, :n_components].T
    miss = miss.sum(axis=0).reshape(n_features, n_padded)[:, :n_components].T
    n_obs = np.ascontiguousarray(np.maximum(nk[:, None] - miss, 0.0))
    return IndependentStats(nk, np.ascontiguousarray(sum_x), n_obs, float(loglik.sum()), float(n.sum()))


# ------------------------------------------------------------------ public functions
def linear_log_prob(X, coef, offset, distribution: str, *, n_threads: int, block_size: int) -> np.ndarray:
    """(N, K) float64 ``log p(x_i | k)`` of the linear log-densities (weights not included)."""
    if distribution == "poisson":
        return _poisson_pass(X, coef, offset, None, None, True, n_threads, block_size)
    T, ncat = _bernoulli_table(coef, offset)
    return _table_pass(X, T, ncat, _init(None, coef.shape[0]), None, distribution, True, coef.shape[0], n_threads,
                       block_size)


def linear_em_stats(X, weights, coef, offset, distribution: str, sample_weight=None, *, n_threads: int,
                    block_size: int) -> IndependentStats:
    """One fused EM pass of a linear family (see :func:`fastem.reference_discrete.linear_em_stats`)."""
    if distribution == "poisson":
        return _poisson_pass(X, coef, offset, weights, sample_weight, False, n_threads, block_size)
    n_components = coef.shape[0]
    T, ncat = _bernoulli_table(coef, offset)
    nk, counts, loglik, n = _table_pass(X, T, ncat, _init(weights, n_components), sample_weight, distribution,
                                        False, n_components, n_threads, block_size)
    counts = counts[:, :, :n_components]  # (D, 3, K)
    sum_x = np.ascontiguousarray(counts[:, 1].T)
    n_obs = np.ascontiguousarray((counts[:, 0] + counts[:, 1]).T)
    return IndependentStats(nk, sum_x, n_obs, loglik, n)


def categorical_log_prob(X, log_probs, n_categories, *, n_threads: int, block_size: int) -> np.ndarray:
    """(N, K) float64 ``log p(x_i | k)`` (see :func:`fastem.reference_discrete.categorical_log_prob`)."""
    T, ncat = _categorical_table(log_probs, n_categories)
    n_components = log_probs.shape[0]
    return _table_pass(X, T, ncat, _init(None, n_components), None, "categorical", True, n_components, n_threads,
                       block_size)


def categorical_em_stats(X, weights, log_probs, n_categories, sample_weight=None, *, n_threads: int,
                         block_size: int) -> CategoricalStats:
    """One fused EM pass of the categorical family (see :func:`fastem.reference_discrete.categorical_em_stats`)."""
    n_components, _, n_cat = log_probs.shape
    T, ncat = _categorical_table(log_probs, n_categories)
    nk, counts, loglik, n = _table_pass(X, T, ncat, _init(weights, n_components), sample_weight, "categorical",
                                        False, n_components, n_threads, block_size)
    counts = np.ascontiguousarray(counts[:, :n_cat, :n_components].transpose(2, 0, 1))
    return CategoricalStats(nk, counts, loglik, n)
