"""The ``"cython"`` backend: allocation, per-component constants and BLAS pinning
around the nogil OpenMP kernels of :mod:`fastem._kernels._cython._gaussian`.

Same functions and signatures as :mod:`fastem.reference`; inputs arrive validated by
:mod:`fastem.kernels`. Statistics are accumulated per *slot* (a fixed run of blocks
that depends only on N and ``block_size``) and the slots are summed here in order, so
results are bit-identical for any ``n_threads``.
"""
from __future__ import annotations

from contextlib import nullcontext
from functools import lru_cache

import numpy as np

from .._threads import blas_single_threaded
from ..gaussian import log_det_cholesky
from ..suff_stats import SuffStats, recentre
from ._isa import import_kernels

_gaussian, ISA = import_kernels("_gaussian")

LOG_2PI = np.log(2 * np.pi)
#: Upper bound on the number of slots (units of deterministic reduction, each with its
#: own accumulators: slots x (K x D x D) floats for full covariances) ...
MAX_SLOTS = 64
#: ... and on the accumulators' total size, which lowers the slot count (and so the
#: usable threads) only for very large K x D x D.
MAX_SLOT_BYTES = 256 * 2**20


def _n_slots(n_samples: int, block_size: int, floats_per_slot: int) -> int:
    """Depends on the problem's shape only, never on the thread count."""
    by_memory = max(1, MAX_SLOT_BYTES // (8 * floats_per_slot))
    return min(-(-n_samples // block_size), MAX_SLOTS, by_memory)


#: Tasks (slots or blocks) each thread of a team needs before a team pays: a team's start
#: and barrier cost more than a few blocks of work, and on a busy machine a barrier can
#: wait a whole scheduler time slice for a descheduled thread (measured: 11 ms per call at
#: N = 300 on 2 loaded cores, against 0.1 ms with one thread).
MIN_TASKS_PER_THREAD = 4


def _threads_for(n_threads: int, n_tasks: int) -> int:
    return max(1, min(n_threads, n_tasks // MIN_TASKS_PER_THREAD))


#: The expanded form (one GEMM over the quadratic features of ``x - c0`` for all
#: components: for full covariances about half the flops of the direct form) runs when
#: its rounding is small: relative errors in the moments grow like eps * kappa, with
#: ``kappa = max_k ||(m_k - c0) P_k||**2`` over the means m_k and the shift the moments
#: are taken around (measured: 1.1e-12 at kappa = 1e4). Beyond this bound the direct
#: form runs (per-component centring: exact to ~1e-15 however far apart the components).
EXPANDED_MAX_KAPPA = 1e4
#: float32 X: the expanded form's blocks (A, both products, the responsibilities) run in
#: float32, summed in float64, up to this kappa; float64 blocks beyond. The covariances'
#: relative error grows like eps32 * kappa, less as the blocks' roundings average out:
#: measured at most 2.3e-8 kappa (full, the fewest rows the expanded form takes: two
#: blocks of 256; 1.1e-8 kappa over 80 blocks, 4e-9 kappa over 4000), so at most about
#: 5e-6 here, within float32's tolerance (1e-5) of the float64 result on the same data;
#: nk and loglik err far less (test_float32_covariances_accurate_at_the_float32_bound).
#: float64 blocks: 1e-10 and better.
EXPANDED_MAX_KAPPA_FLOAT32 = 200.0
#: Full covariances: the expanded A holds D (D + 3) / 2 floats per row (2144 at D = 64).
EXPANDED_MAX_FEATURES = 64
#: Below this many rows the direct form runs: the expanded form's set-up (its rounding
#: bound, the quadratic coefficients, recentring the moments: some 65 us of numpy calls)
#: costs more than the flops it saves. Measured crossovers (2-vCPU AMD EPYC, 2026-12-03,
#: em_stats): full 16 x 8 about 500 rows, full 2 x 8 2500, diag and spherical 16 x 8
#: 4700; diag 2 x 8 never (the two forms take the same time at N = 1e6).
EXPANDED_MIN_SAMPLES = {"full": 512, "diag": 4096, "spherical": 4096}


def _kappa(centres: np.ndarray, precisions_cholesky: np.ndarray, covariance_type: str, center: np.ndarray) -> float:
    """``max_k ||(centres_k - center) P_k||**2``: how far (in its own standard deviations,
    squared) a component sits from the centre of the expansion."""
    delta = centres - center
    if covariance_type == "full":
        whitened = np.einsum("kd,kde->ke", delta, precisions_cholesky)
    else:
        whitened = delta * np.reshape(precisions_cholesky, (len(delta), -1))
    return float(np.max(np.einsum("ke,ke->k", whitened, whitened)))


def _expansion_kappa(covariance_type: str, means, precisions_cholesky, center, shift=None) -> float:
    """The expanded form's kappa over the means and ``shift``; inf where it has no
    expanded form (tied, or full beyond EXPANDED_MAX_FEATURES)."""
    if covariance_type == "tied" or (covariance_type == "full" and means.shape[1] > EXPANDED_MAX_FEATURES):
        return np.inf
    centres = means if shift is None else np.concatenate([means, shift])
    factors = precisions_cholesky if shift is None else np.concatenate([precisions_cholesky] * 2)
    return _kappa(centres, factors, covariance_type, center)


def _precision_forms(precisions_cholesky, covariance_type: str, n_components: int, n_features: int):
    """(quadratic coefficients (K, n_quad), precision as a linear map on x - mean) for the
    expanded form: ``-||(x - m) P||**2 / 2 = q(x - c0) . coef - (d . prec(d)) / 2 + (x - c0) . prec(d)``
    with ``d = m - c0`` and q the kernel's quadratic features (z**2, ||z||**2 or the
    lower triangle of z z^T, row by row)."""
    if covariance_type == "full":
        precisions = np.einsum("kde,kfe->kdf", precisions_cholesky, precisions_cholesky)
        rows, cols = _tril_indices(n_features)
        coef = -0.5 * precisions[:, rows, cols] * np.where(rows == cols, 1.0, 2.0)
        return coef, lambda delta: np.einsum("kde,ke->kd", precisions, delta)
    precisions = np.reshape(precisions_cholesky, (n_components, -1)) ** 2
    return -0.5 * precisions, lambda delta: delta * precisions


def _log_prob_params(means, precisions_cholesky, covariance_type, n_samples: int, log_weights=None, shift=None,
                     dtype=np.float64):
    """((means, flat precisions, center, cst), expanded, prec_single) as the kernels take them.

    ``cst[k] = log_weights[k] + log det P_k - D/2 log(2 pi)``; ``center`` is the mean of
    the means, on which the kernels centre the data. Direct form, full/tied: the kernel
    computes ``(X - center) P_k`` with one GEMM for many components, so it gets the
    transposed factors and ``(means_k - center) @ P_k`` as means; diag/spherical: the
    means and P as (K, D). Expanded form (when ``_uses_expanded_form``): ``log N = A W + cst`` with
    ``A = [q(x - center), x - center]``, ``W`` (n_quad + D, K) from ``_precision_forms``
    and the constant term of the expanded square added to ``cst``. Rounding grows with a
    component's distance from the center in units of its standard deviation, as in
    scikit-learn's expansions but from the centre of the model rather than from the origin.
    ``prec_single``: W as float32 where X's ``dtype`` is float32 and kappa allows float32
    blocks (EXPANDED_MAX_KAPPA_FLOAT32); None otherwise.
    """
    n_components, n_features = means.shape
    cst = log_det_cholesky(precisions_cholesky, covariance_type, n_components, n_features) - 0.5 * n_features * LOG_2PI
    if log_weights is not None:
        cst = cst + log_weights
    center = means.sum(axis=0) / n_components  # means.mean, without its Python wrapper's cost
    kappa = np.inf
    if n_samples >= EXPANDED_MIN_SAMPLES.get(covariance_type, 0):
        kappa = _expansion_kappa(covariance_type, means, precisions_cholesky, center, shift)
    expanded = kappa <= EXPANDED_MAX_KAPPA
    prec_single = None
    if expanded:
        coef, apply_precision = _precision_forms(precisions_cholesky, covariance_type, n_components, n_features)
        delta = means - center
        linear = apply_precision(delta)
        cst = cst - 0.5 * np.einsum("kd,kd->k", delta, linear)
        prec = np.concatenate([coef, linear], axis=1).T
        if dtype == np.float32 and kappa <= EXPANDED_MAX_KAPPA_FLOAT32:
            prec_single = np.ascontiguousarray(prec, dtype=np.float32).ravel()
    elif covariance_type == "diag":
        prec = precisions_cholesky
    elif covariance_type == "spherical":
        prec = np.repeat(precisions_cholesky, n_features)  # (K, D) flat
    else:
        means = np.einsum("kd,...de->ke", means - center, precisions_cholesky) if covariance_type == "tied" \
            else np.einsum("kd,kde->ke", means - center, precisions_cholesky)
        prec = np.swapaxes(precisions_cholesky, -1, -2)
    params = (np.ascontiguousarray(means, dtype=np.float64), np.ascontiguousarray(prec).ravel(),
              np.ascontiguousarray(center, dtype=np.float64), np.ascontiguousarray(cst, dtype=np.float64))
    return params, expanded, prec_single


def _blas_pin(covariance_type: str, expanded: bool, n_features: int):
    """BLAS pinned to one thread (see blas_single_threaded) when the kernel may call it
    from its own threads: the expanded form, and the direct full/tied form beyond a few
    features; the other forms are plain loops and need no pin."""
    if expanded or (covariance_type in ("full", "tied") and n_features > _gaussian.small_direct_max_features):
        return blas_single_threaded()
    return nullcontext()


def logsumexp(a: np.ndarray, axis: int = -1, *, n_threads: int, block_size: int) -> np.ndarray:
    """Row-wise max-shifted log-sum-exp of a C-contiguous (N, K) float64 array."""
    assert a.ndim == 2 and axis in (-1, 1), "the wrapper passes (N, K) rows and axis=-1"
    a = np.ascontiguousarray(a, dtype=np.float64)
    out = np.empty(a.shape[0])
    _gaussian.logsumexp(a, out, _threads_for(n_threads, a.shape[0] // 1024))
    return out


def exp_probe(x: np.ndarray, out: np.ndarray, n_rounds: int, n_threads: int) -> None:
    """``n_rounds`` passes of the kernels' exp (``_exp_nonpos``) over ``x`` (float64 or
    float32, <= 0) into ``out`` (n_threads, len(x), x's dtype), the rounds split over ``n_threads`` OpenMP threads:
    the exp-rate probe of :mod:`fastem.bench.roofline`."""
    _gaussian.exp_probe(x, out, n_rounds, n_threads)


def gaussian_log_prob(X, means, precisions_cholesky, covariance_type: str, *, n_threads: int,
                      block_size: int) -> np.ndarray:
    """(N, K) float64 ``log N(x_i | mean_k, precision_k)``."""
    out = np.empty((X.shape[0], means.shape[0]))
    params, expanded, _ = _log_prob_params(means, precisions_cholesky, covariance_type, X.shape[0])
    with _blas_pin(covariance_type, expanded, means.shape[1]):
        _gaussian.gaussian_log_prob(X, *params, covariance_type, expanded, out,
                                    _threads_for(n_threads, -(-X.shape[0] // block_size)), block_size)
    return out


@lru_cache(maxsize=16)
def _tril_indices(n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.tril_indices`` made once per D (it costs more than a small pass's kernel)."""
    rows, cols = np.tril_indices(n_features)
    rows.flags.writeable = cols.flags.writeable = False
    return rows, cols


def _sum_slots(buffer: np.ndarray) -> np.ndarray:
    """The slots' rows summed in slot order (numpy reduces axis 0 row by row); a single
    slot is its own sum (a small pass's reductions cost more than its kernel)."""
    return buffer[0] if len(buffer) == 1 else buffer.sum(axis=0)


def _stats(X, resp, params, covariance_type, expanded, sample_weight, shift, n_threads, block_size,
           prec_single=None) -> SuffStats:
    """Expanded form: the kernel's moments are the quadratic features around ``params``'
    center, turned into ``sum_xx`` and recentred on ``shift`` here."""
    n_samples, n_features = X.shape
    n_components = params[0].shape[0]
    n_quad = params[1].size // n_components - n_features  # W is (n_quad + D, K) when expanded
    size_xx = n_components * n_quad if expanded else _direct_size(covariance_type, n_components, n_features)
    n_slots = _n_slots(n_samples, block_size, size_xx + n_components * (n_features + 1) + 1)
    nk = np.zeros((n_slots, n_components))
    sum_x = np.zeros((n_slots, n_components * n_features))
    sum_xx = np.zeros((n_slots, size_xx))
    loglik = np.zeros(n_slots)
    shift = np.array(shift, dtype=np.float64)
    with _blas_pin(covariance_type, expanded, n_features):
        _gaussian.stats(X, resp, *params, covariance_type, expanded, sample_weight, shift.ravel(), nk, sum_x,
                        sum_xx, loglik, _threads_for(n_threads, n_slots), block_size, prec_single)
    nk, sum_x, sum_xx, loglik = _sum_slots(nk), _sum_slots(sum_x).reshape(n_components, n_features), \
        _sum_slots(sum_xx), float(_sum_slots(loglik))
    n = float(n_samples) if sample_weight is None else float(sample_weight.sum())
    if not expanded:
        return _direct_stats(covariance_type, nk, sum_x, sum_xx, shift, loglik, n)
    sum_xx = sum_xx.reshape(n_components, n_quad)
    if covariance_type == "full":
        rows, cols = _tril_indices(n_features)
        features = sum_xx
        sum_xx = np.empty((n_components, n_features, n_features))
        sum_xx[:, rows, cols] = features  # both triangles from the same features: exactly symmetric
        sum_xx[:, cols, rows] = features
    elif covariance_type == "spherical":
        sum_xx = sum_xx[:, 0]
    center = np.broadcast_to(params[2], shift.shape)
    return recentre(SuffStats(covariance_type, nk, sum_x, sum_xx, center, loglik, n), shift)


def _direct_size(covariance_type: str, n_components: int, n_features: int) -> int:
    """Floats of a direct-form matrix set (the precisions' factors, the second moments):
    K * D * D full, D * D tied, K * D diag and spherical."""
    return {"full": n_components * n_features**2, "tied": n_features**2}.get(covariance_type,
                                                                             n_components * n_features)


def _direct_stats(covariance_type: str, nk, sum_x, sum_xx, shift, loglik: float, n: float) -> SuffStats:
    """SuffStats from the kernels' direct-form sums: sum_x (K, D); sum_xx flat, K * D * D
    full, D * D tied, K * D diag and spherical (whose squares are summed over D here)."""
    n_components, n_features = sum_x.shape
    if covariance_type == "full":
        sum_xx = sum_xx.reshape(n_components, n_features, n_features)
    elif covariance_type == "tied":
        sum_xx = sum_xx.reshape(n_features, n_features)
    else:
        sum_xx = sum_xx.reshape(n_components, n_features)
        sum_xx = sum_xx if covariance_type == "diag" else sum_xx.sum(axis=1)
    return SuffStats(covariance_type, nk, sum_x, sum_xx, shift, loglik, n)


def label_stats(X, labels, n_components: int, covariance_type: str, sample_weight, shift, *, n_threads: int,
                block_size: int) -> SuffStats:
    """Sufficient statistics of hard responsibilities, row i in component ``labels[i]``
    (N,) int (-1: in none), around ``shift``; ``loglik`` is 0.0. One pass, no (N, K) array."""
    n_samples, n_features = X.shape
    size_xx = _direct_size(covariance_type, n_components, n_features)
    n_slots = _n_slots(n_samples, block_size, size_xx + n_components * (n_features + 1))
    nk = np.zeros((n_slots, n_components))
    sum_x = np.zeros((n_slots, n_components * n_features))
    sum_xx = np.zeros((n_slots, size_xx))
    shift = np.array(shift, dtype=np.float64)
    if _gaussian.label_stats(X, np.ascontiguousarray(labels, dtype=np.int32), sample_weight, shift.ravel(),
                             covariance_type, nk, sum_x, sum_xx, _threads_for(n_threads, n_slots), block_size):
        raise ValueError(f"labels must be -1 (in no component) or in [0, {n_components})")
    n = float(n_samples) if sample_weight is None else float(sample_weight.sum())
    return _direct_stats(covariance_type, _sum_slots(nk), _sum_slots(sum_x).reshape(n_components, n_features),
                         _sum_slots(sum_xx), shift, 0.0, n)


def suff_stats(X, resp, covariance_type: str, sample_weight, shift, *, n_threads: int,
               block_size: int) -> SuffStats:
    """Sufficient statistics of given responsibilities ``resp`` (N, K); ``loglik`` is 0.0."""
    n_components, n_features = resp.shape[1], X.shape[1]
    # the direct form (moments exact around ``shift``; the expanded form's rounding bound
    # needs the precisions), which reads only the shapes of the log-prob parameters here
    params = (np.zeros((n_components, n_features)), np.zeros(_direct_size(covariance_type, n_components, n_features)),
              np.zeros(n_features), np.zeros(n_components))
    return _stats(X, resp, params, covariance_type, False, sample_weight, shift, n_threads, block_size)


def em_stats(X, weights, means, precisions_cholesky, covariance_type: str, sample_weight, shift, *,
             n_threads: int, block_size: int) -> SuffStats:
    """One fused pass: E-step under the given parameters folded into the statistics,
    plus ``loglik = sum_i w_i log p(x_i)``. Never allocates an (N, K) array."""
    with np.errstate(divide="ignore"):  # weight 0: log weight -inf, responsibility 0
        log_weights = np.log(weights)
    shift = np.asarray(shift, dtype=np.float64)
    params, expanded, prec_single = _log_prob_params(means, precisions_cholesky, covariance_type, X.shape[0],
                                                     log_weights, None if covariance_type == "tied" else shift,
                                                     X.dtype)
    return _stats(X, None, params, covariance_type, expanded, sample_weight, shift, n_threads, block_size,
                  prec_single)
