"""The ``"cython"`` backend of the independent-feature families (Bernoulli, Poisson,
categorical): transposed, component-padded tables and slot buffers around the nogil
OpenMP kernels of :mod:`fastem._kernels._cython._discrete`.

Same functions and signatures as :mod:`fastem.reference_discrete` (without the
``*_suff_stats``); inputs arrive validated by :mod:`fastem.kernels`. The kernels find
the first entry of X outside the distribution's values during their pass, and it is
raised here. Per-slot statistics are summed here in slot order, so results are
bit-identical for any ``n_threads``.
"""
from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from .._validation import invalid_value_error
from ..discrete_stats import CategoricalStats, IndependentStats
from ._isa import import_kernels
from .cython_backend import _n_slots, _threads_for

_discrete, ISA = import_kernels("_discrete")

#: components are padded to a multiple of this (one vector of doubles)
LANES = 8
_LINEAR_CODES = {"bernoulli": 0, "poisson": 1}
#: log(x!) for the small counts (the kernel uses Stirling's series from 1024 on)
_LOG_FACTORIAL = gammaln(np.arange(1024, dtype=np.float64) + 1.0)
_LOG_FACTORIAL.flags.writeable = False
#: chunk scratch targets (rows per chunk, at most 256 and at most a block), so that a
#: chunk's scratch stays in L1: the linear chunk's float64 copy of X 16 KiB, the
#: categorical chunk's table offsets 8 KiB (with the per-entry n_categories and feature
#: bases, 32 KiB; measured at D = 20: ~100-row chunks 20% faster than 256-row ones)
_LINEAR_CHUNK_DOUBLES = 2048
_CATEGORICAL_CHUNK_INTS = 2048
#: categorical: counts go straight to the slot's row when the two per-chunk partial
#: tables (zeroed and added once per chunk) outgrow 64 KiB each, or cost more than the
#: chunk's own updates
_DIRECT_COUNTS_ABOVE = 1 << 13


def _padded(n_components: int) -> int:
    return -(-n_components // LANES) * LANES


def _chunk(per_row: int, budget: int, block_size: int) -> int:
    rows = max(4, min(256, budget // max(per_row, 1)))
    return max(1, min(rows - rows % 4, block_size))


def _transposed(a: np.ndarray, padded: int) -> np.ndarray:
    """(K, D) -> (D, KP) float64, zero-padded components."""
    out = np.zeros((a.shape[1], padded))
    out[:, : a.shape[0]] = a.T
    return out


def _log_weights(weights: np.ndarray, padded: int) -> np.ndarray:
    out = np.full(padded, -np.inf)
    with np.errstate(divide="ignore"):  # weight 0: log weight -inf, responsibility 0
        out[: weights.shape[0]] = np.log(weights)
    return out


def _raise_first_invalid(X, first_bad: np.ndarray, distribution: str) -> None:
    bad = first_bad[first_bad >= 0]
    if bad.size:
        raise invalid_value_error(X, int(bad.min()), distribution)


def _linear(X, coef, offset, distribution, weights, sample_weight, n_threads, block_size, stats: bool):
    n_samples, n_features = X.shape
    n_components = coef.shape[0]
    padded = _padded(n_components)
    cst = np.full(padded, -np.inf)
    cst[:n_components] = offset.sum(axis=1)
    if stats:
        cst += _log_weights(weights, padded)
    size = 2 + padded * (1 + 2 * n_features)
    stride = -(-size // 8) * 8  # whole cache lines per slot
    n_slots = _n_slots(n_samples, block_size, stride if stats else 1)
    acc = np.zeros((n_slots, stride)) if stats else None
    out = None if stats else np.empty((n_samples, n_components))
    first_bad = np.full(n_slots, -1, dtype=np.int64)
    _discrete.linear(X, _transposed(coef, padded), _transposed(offset, padded), cst, _LINEAR_CODES[distribution],
                     _LOG_FACTORIAL, sample_weight if stats else None, acc, out, first_bad, n_components,
                     _threads_for(n_threads, n_slots), block_size, _chunk(n_features, _LINEAR_CHUNK_DOUBLES, block_size))
    _raise_first_invalid(X, first_bad, distribution)
    if not stats:
        return out
    total = acc.sum(axis=0)  # slots summed in slot order (numpy reduces axis 0 row by row)
    table = padded * n_features
    sum_x = total[padded: padded + table].reshape(n_features, padded)[:, :n_components].T.copy()
    n_obs = total[padded + table: padded + 2 * table].reshape(n_features, padded)[:, :n_components].T.copy()
    return IndependentStats(total[:n_components].copy(), sum_x, n_obs, float(total[size - 2]), float(total[size - 1]))


def linear_log_prob(X, coef, offset, distribution: str, *, n_threads: int, block_size: int) -> np.ndarray:
    """(N, K) float64 ``log p(x_i | k)`` of the linear log-densities (weights not included)."""
    return _linear(X, coef, offset, distribution, None, None, n_threads, block_size, stats=False)


def linear_em_stats(X, weights, coef, offset, distribution: str, sample_weight=None, *, n_threads: int,
                    block_size: int) -> IndependentStats:
    """One fused EM pass of a linear family (see :func:`fastem.reference_discrete.linear_em_stats`)."""
    return _linear(X, coef, offset, distribution, weights, sample_weight, n_threads, block_size, stats=True)


def _categorical(X, log_probs, n_categories, weights, sample_weight, n_threads, block_size, stats: bool):
    n_samples, n_features = X.shape
    n_components, _, n_codes = log_probs.shape
    padded = _padded(n_components)
    c1 = n_codes + 1  # the last category: the missing entries' (zeros)
    table = np.zeros((n_features, c1, padded))
    table[:, :n_codes, :n_components] = np.transpose(log_probs, (1, 2, 0))
    cst = _log_weights(weights, padded) if stats else np.where(np.arange(padded) < n_components, 0.0, -np.inf)
    table_size = n_features * c1 * padded
    size = 2 + padded + table_size
    stride = -(-size // 8) * 8
    n_slots = _n_slots(n_samples, block_size, stride if stats else 1)
    acc = np.zeros((n_slots, stride)) if stats else None
    out = None if stats else np.empty((n_samples, n_components))
    first_bad = np.full(n_slots, -1, dtype=np.int64)
    chunk = _chunk(n_features, _CATEGORICAL_CHUNK_INTS, block_size)
    direct = table_size > _DIRECT_COUNTS_ABOVE or 4 * table_size > chunk * n_features * padded
    _discrete.categorical(X, table, n_categories.astype(np.float64), cst, sample_weight if stats else None, acc, out,
                          first_bad, n_components, _threads_for(n_threads, n_slots), block_size, chunk, direct)
    _raise_first_invalid(X, first_bad, "categorical")
    if not stats:
        return out
    total = acc.sum(axis=0)
    counts = total[padded: padded + table_size].reshape(n_features, c1, padded)[:, :n_codes, :n_components]
    return CategoricalStats(total[:n_components].copy(), np.ascontiguousarray(np.transpose(counts, (2, 0, 1))),
                            float(total[size - 2]), float(total[size - 1]))


def categorical_log_prob(X, log_probs, n_categories, *, n_threads: int, block_size: int) -> np.ndarray:
    """(N, K) float64 ``log p(x_i | k) = sum_d o_id log_probs[k, d, x_id]``."""
    return _categorical(X, log_probs, n_categories, None, None, n_threads, block_size, stats=False)


def categorical_em_stats(X, weights, log_probs, n_categories, sample_weight=None, *, n_threads: int,
                         block_size: int) -> CategoricalStats:
    """One fused EM pass of the categorical family (see :func:`linear_em_stats`)."""
    return _categorical(X, log_probs, n_categories, weights, sample_weight, n_threads, block_size, stats=True)
