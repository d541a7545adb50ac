"""Parallel Numba kernels: rows -> blocks -> slots, ``prange`` over slots.

Rows are cut into blocks of ``block_size``; consecutive blocks are grouped into
``n_slots`` contiguous slots (a function of N and block_size only). Each slot folds its
blocks in order into its own buffers and the caller sums the slots in order, so the
result does not depend on the number of threads. The parallel functions hold nothing
but the ``prange`` loop: any array expression there would become a parallel region of
its own, launched on every call. X arrives as ``X_bytes``, its (N, D) float32
(``single``) or float64 array viewed as uint8, so that one compiled kernel serves both
dtypes; everything else is float64. ``sample_weight`` is (N,) or empty (all ones).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import blocks as bk
from .vector import exp_neg

PARALLEL_JIT = dict(bk.JIT, parallel=True)


@njit(**bk.JIT)
def slot_blocks(slot, n_slots, n_samples, block_size):
    """First and end block of ``slot``."""
    n_blocks = (n_samples + block_size - 1) // block_size
    return slot * n_blocks // n_slots, (slot + 1) * n_blocks // n_slots


@njit(**bk.JIT)
def block_scratch(n_padded, n_samples, block_size, tied):
    """Scratch columns ``width`` and the transposed block ``xT`` (zero padding rows),
    its centred copy ``dT`` and the projections ``Y`` the log-prob kernels use (a
    4-row tile; tied: the whole projected block, Dp rows)."""
    width = min(block_size, n_samples)
    return (width, np.zeros((n_padded, width)), np.empty((n_padded, width)),
            np.empty((n_padded if tied else 4, width)))


@njit(**bk.JIT)
def log_probs(xT, nb, n_features, means, prec, center, offset, full, tied, dT, Y, out):
    """``out[k, :nb]`` = log N(x | component k) + offset[k] for the loaded block."""
    if tied:
        bk.log_prob_tied(xT, nb, n_features, means, prec, center, offset, dT, Y, out)
    elif full:
        bk.log_prob_full(xT, nb, n_features, means, prec, offset, dT, Y, out)
    else:
        bk.log_prob_diag(xT, nb, means, prec[0], offset, out)


@njit(**bk.JIT)
def _log_prob_slot(X_bytes, single, means, prec, center, offset, full, tied, block_size, slot, n_slots, out):
    n_samples, n_features = X_bytes.shape[0], bk.n_features_of(X_bytes, single)
    n_components, n_padded = means.shape
    width, xT, dT, Y = block_scratch(n_padded, n_samples, block_size, tied)
    logp = np.empty((n_components, width))
    first, end = slot_blocks(slot, n_slots, n_samples, block_size)
    for blk in range(first, end):
        r0 = blk * block_size
        nb = min(block_size, n_samples - r0)
        bk.load_transposed(X_bytes, single, r0, nb, xT)
        log_probs(xT, nb, n_features, means, prec, center, offset, full, tied, dT, Y, logp)
        for b in range(nb):
            for k in range(n_components):
                out[r0 + b, k] = logp[k, b]


@njit(**PARALLEL_JIT)
def log_prob(X_bytes, single, means, prec, center, offset, full, tied, block_size, n_slots):
    """(N, K) ``log N(x | mean_k, P_k) + offset[k]``. ``full``: ``means`` (K, Dp) and
    ``prec`` (K, Dp, Dp) upper triangular, zero-padded to Dp, a multiple of 4; ``tied``:
    ``means`` (K, Dp) = (mean_k - center) P, ``prec`` (1, Dp, Dp) and ``center`` (Dp,);
    else ``means`` (K, D) and ``prec`` (1, K, D) diagonal factors. ``center`` is unused
    unless ``tied``."""
    out = np.empty((X_bytes.shape[0], means.shape[0]))
    for slot in prange(n_slots):
        _log_prob_slot(X_bytes, single, means, prec, center, offset, full, tied, block_size, slot, n_slots, out)
    return out


@njit(**bk.JIT)
def _stats_slot(X_bytes, single, resp, log_weights, means, prec, center, log_det, sample_weight, shift, full, tied,
                block_size, slot, n_slots, nk, sum_x, sum_xx, loglik):
    """Fold one slot's blocks into its buffers. ``resp`` (N, K) given -> weighted
    responsibilities from it; ``resp`` empty -> computed from the parameters (E-step)."""
    n_samples, n_features = X_bytes.shape[0], bk.n_features_of(X_bytes, single)
    n_components, n_padded = means.shape
    width, xT, dT, Y = block_scratch(n_padded, n_samples, block_size, tied)
    w = np.empty(width)
    total = np.empty(width)
    wr = np.empty((n_components, width))
    offset = log_det + log_weights
    first, end = slot_blocks(slot, n_slots, n_samples, block_size)
    for blk in range(first, end):
        r0 = blk * block_size
        nb = min(block_size, n_samples - r0)
        bk.load_transposed(X_bytes, single, r0, nb, xT)
        bk.load_weights(sample_weight, r0, nb, w)
        if resp.shape[0] == 0:
            log_probs(xT, nb, n_features, means, prec, center, offset, full, tied, dT, Y, wr)
            loglik[slot] += bk.normalise(wr, nb, w, Y[0], total)
        else:
            bk.load_resp(resp, r0, nb, w, wr)
        if full:
            bk.fold_full(xT, nb, wr, w, shift, tied, dT, nk[slot], sum_x[slot], sum_xx[slot])
        else:
            bk.fold_diag(xT, nb, wr, shift, nk[slot], sum_x[slot], sum_xx[slot, :, :, 0])


@njit(**PARALLEL_JIT)
def stats(X_bytes, single, resp, log_weights, means, prec, center, log_det, sample_weight, shift, full, tied,
          block_size, nk, sum_x, sum_xx, loglik):
    """Per-slot sufficient statistics, added into the zeroed slot buffers ``nk`` (S, K),
    ``sum_x`` (S, K, Dp), ``sum_xx`` (S, K or 1 when ``tied``, Dp, Dp full / D, 1 diag)
    and ``loglik`` (S,), S = ``n_slots``; the caller sums the slots in order.

    ``resp`` (N, K): given responsibilities (``loglik`` stays 0); empty (0, K): E-step
    under ``log_weights``, ``means``, ``prec``, ``center``, ``log_det`` (as in
    :func:`log_prob`). ``full``: ``shift`` (K or 1 when ``tied``, Dp) zero-padded to Dp
    (a multiple of 4); only the upper triangle of ``sum_xx`` is filled. Otherwise
    ``shift`` (K, D).
    """
    n_slots = nk.shape[0]
    for slot in prange(n_slots):
        _stats_slot(X_bytes, single, resp, log_weights, means, prec, center, log_det, sample_weight, shift, full,
                    tied, block_size, slot, n_slots, nk, sum_x, sum_xx, loglik)


@njit(**bk.JIT)
def _logsumexp_slot(a, block_size, slot, n_slots, out):
    first, end = slot_blocks(slot, n_slots, a.shape[0], block_size)
    for n in range(first * block_size, min(end * block_size, a.shape[0])):
        row = a[n]
        amax = row[0]
        for k in range(1, row.shape[0]):
            amax = max(amax, row[k])
        if amax == -np.inf:
            amax = 0.0
        total = 0.0
        for k in range(row.shape[0]):
            total += exp_neg(row[k] - amax)
        out[n] = np.log(total) + amax


@njit(**PARALLEL_JIT)
def logsumexp(a, block_size, n_slots):
    """Row-wise max-shifted log-sum-exp of ``a`` (N, K) float64."""
    out = np.empty(a.shape[0])
    for slot in prange(n_slots):
        _logsumexp_slot(a, block_size, slot, n_slots, out)
    return out
