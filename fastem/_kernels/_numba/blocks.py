"""Per-block Numba helpers: one block of rows, serial, no allocation.

A block is held transposed, ``xT`` (Dp, nb) float64, so that inner loops run over the
block's rows: contiguous, independent lanes that LLVM vectorises. Per-component
quantities are (K, nb) arrays for the same reason. For full/tied the features are
zero-padded to ``Dp``, a multiple of 4 (``means``, ``shift`` and the precision factors
too), so that the triangular products run in 4 x 4 and 2 x 4 register tiles without
edge cases; the padding adds exact zeros.

``fastmath={"contract"}`` only lets LLVM fuse ``a * b + c`` into one FMA (one rounding
instead of two; no reassociation, no finite-math or signed-zero assumptions). It is
decided at compile time, so results stay bit-identical across thread counts. Row sums
live in :mod:`.vector`.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .vector import JIT, exp_neg, moments, row_dot, row_sum, weighted_dot2x4

LOG_2PI = np.log(2 * np.pi)


@njit(**JIT)
def n_features_of(X_bytes, single):
    """D of the (N, D) float32 (``single``) or float64 array viewed as ``X_bytes``."""
    return X_bytes.shape[1] // (4 if single else 8)


@njit(**JIT)
def load_transposed(X_bytes, single, r0, nb, xT):
    """``xT[i, b] = X[r0 + b, i]`` in float64, X the (N, D) float32 (``single``) or
    float64 array viewed as bytes ``X_bytes`` (rows of ``xT`` past D are left alone).
    One compiled kernel then serves both dtypes."""
    if single:
        _transpose(X_bytes.view(np.float32), r0, nb, xT)
    else:
        _transpose(X_bytes.view(np.float64), r0, nb, xT)


@njit(**JIT)
def _transpose(X, r0, nb, xT):
    for i in range(X.shape[1]):
        x = xT[i]
        for b in range(nb):
            x[b] = X[r0 + b, i]


@njit(**JIT)
def load_weights(sample_weight, r0, nb, w):
    """``w[b]`` = the sample weight of row ``r0 + b`` (1 when ``sample_weight`` is empty)."""
    if sample_weight.shape[0] == 0:
        w[:nb] = 1.0
    else:
        w[:nb] = sample_weight[r0:r0 + nb]


@njit(**JIT)
def centre(xT, nb, c, dT):
    """``dT[i, b] = xT[i, b] - c[i]``."""
    for i in range(xT.shape[0]):
        ci = c[i]
        for b in range(nb):
            dT[i, b] = xT[i, b] - ci


@njit(**JIT)
def _finish_log_prob(row, nb, n_features, offset):
    """``row[b]`` (a squared Mahalanobis distance) -> log density + offset."""
    const = n_features * LOG_2PI
    for b in range(nb):
        row[b] = -0.5 * (const + row[b]) + offset


@njit(**JIT)
def _project_tile(dT, P, j, nb, y0, y1, y2, y3):
    """``y_q[:nb] = sum_{i <= j+q} dT[i] P[i, j+q]`` for q < 4: four columns of ``dT^T P``
    (P upper triangular, padded to Dp) in one 4 x 4-tiled pass over the rows of ``dT``."""
    y0[:nb] = 0.0
    y1[:nb] = 0.0
    y2[:nb] = 0.0
    y3[:nb] = 0.0
    for i in range(0, j + 4, 4):
        e0, e1, e2, e3 = dT[i], dT[i + 1], dT[i + 2], dT[i + 3]
        p00, p01, p02, p03 = P[i, j], P[i, j + 1], P[i, j + 2], P[i, j + 3]
        p10, p11, p12, p13 = P[i + 1, j], P[i + 1, j + 1], P[i + 1, j + 2], P[i + 1, j + 3]
        p20, p21, p22, p23 = P[i + 2, j], P[i + 2, j + 1], P[i + 2, j + 2], P[i + 2, j + 3]
        p30, p31, p32, p33 = P[i + 3, j], P[i + 3, j + 1], P[i + 3, j + 2], P[i + 3, j + 3]
        for b in range(nb):
            a0, a1, a2, a3 = e0[b], e1[b], e2[b], e3[b]
            y0[b] += a0 * p00 + a1 * p10 + a2 * p20 + a3 * p30
            y1[b] += a0 * p01 + a1 * p11 + a2 * p21 + a3 * p31
            y2[b] += a0 * p02 + a1 * p12 + a2 * p22 + a3 * p32
            y3[b] += a0 * p03 + a1 * p13 + a2 * p23 + a3 * p33


@njit(**JIT)
def log_prob_full(xT, nb, n_features, means, prec, offset, dT, Y, logp):
    """``logp[k, :nb]`` = log N(x | means[k], P_k) + offset[k], P_k = ``prec[k]`` upper
    triangular, all padded to Dp; ``Y`` (4, >= nb) scratch."""
    n_padded = xT.shape[0]
    y0, y1, y2, y3 = Y[0], Y[1], Y[2], Y[3]
    for k in range(means.shape[0]):
        centre(xT, nb, means[k], dT)
        row = logp[k]
        row[:nb] = 0.0
        for j in range(0, n_padded, 4):
            _project_tile(dT, prec[k], j, nb, y0, y1, y2, y3)
            for b in range(nb):
                row[b] += (y0[b] * y0[b] + y1[b] * y1[b]) + (y2[b] * y2[b] + y3[b] * y3[b])
        _finish_log_prob(row, nb, n_features, offset[k])


@njit(**JIT)
def log_prob_tied(xT, nb, n_features, means, prec, center, offset, dT, YT, logp):
    """Tied: ``logp[k, :nb]`` = log N(x | m_k, P) + offset[k] from ``Y = (x - center) P``,
    projected once for the block into ``YT`` (Dp, >= nb), and ``means[k] = (m_k - center) P``;
    P = ``prec[0]`` upper triangular, all padded to Dp."""
    centre(xT, nb, center, dT)
    for j in range(0, xT.shape[0], 4):
        _project_tile(dT, prec[0], j, nb, YT[j], YT[j + 1], YT[j + 2], YT[j + 3])
    for k in range(means.shape[0]):
        m = means[k]
        row = logp[k]
        row[:nb] = 0.0
        for j in range(0, xT.shape[0], 4):
            y0, y1, y2, y3 = YT[j], YT[j + 1], YT[j + 2], YT[j + 3]
            m0, m1, m2, m3 = m[j], m[j + 1], m[j + 2], m[j + 3]
            for b in range(nb):
                z0 = y0[b] - m0
                z1 = y1[b] - m1
                z2 = y2[b] - m2
                z3 = y3[b] - m3
                row[b] += (z0 * z0 + z1 * z1) + (z2 * z2 + z3 * z3)
        _finish_log_prob(row, nb, n_features, offset[k])


@njit(**JIT)
def log_prob_diag(xT, nb, means, prec, offset, logp):
    """``logp[k, :nb]`` = log N(x | means[k], diag(prec[k])**-2) + offset[k]."""
    n_features = xT.shape[0]
    for k in range(means.shape[0]):
        m = means[k]
        p = prec[k]
        row = logp[k]
        row[:nb] = 0.0
        i = 0
        while i + 4 <= n_features:  # four features per pass over the row
            x0, x1, x2, x3 = xT[i], xT[i + 1], xT[i + 2], xT[i + 3]
            m0, m1, m2, m3 = m[i], m[i + 1], m[i + 2], m[i + 3]
            p0, p1, p2, p3 = p[i], p[i + 1], p[i + 2], p[i + 3]
            for b in range(nb):
                z0 = (x0[b] - m0) * p0
                z1 = (x1[b] - m1) * p1
                z2 = (x2[b] - m2) * p2
                z3 = (x3[b] - m3) * p3
                row[b] += (z0 * z0 + z1 * z1) + (z2 * z2 + z3 * z3)
            i += 4
        for i in range(i, n_features):
            x = xT[i]
            mi = m[i]
            pi = p[i]
            for b in range(nb):
                z = (x[b] - mi) * pi
                row[b] += z * z
        _finish_log_prob(row, nb, n_features, offset[k])


@njit(**JIT)
def normalise(logp, nb, w, amax, total):
    """Turn weighted log-probs ``logp`` (K, nb) into ``w``-weighted responsibilities in
    place; return ``sum_b w[b] * log p(x_b)`` (rows of weight 0 contribute 0; a row
    whose log-probs are all -inf has log p = -inf and responsibilities 0)."""
    n_components = logp.shape[0]
    amax[:nb] = logp[0, :nb]
    for k in range(1, n_components):
        for b in range(nb):
            amax[b] = max(amax[b], logp[k, b])
    for b in range(nb):
        amax[b] = 0.0 if amax[b] == -np.inf else amax[b]
    total[:nb] = 0.0
    for k in range(n_components):
        for b in range(nb):
            e = exp_neg(logp[k, b] - amax[b])
            logp[k, b] = e
            total[b] += e
    for b in range(nb):
        wb = w[b]
        amax[b] = wb * (np.log(total[b]) + amax[b]) if wb != 0.0 else 0.0  # now w log p(x)
        total[b] = wb / total[b] if total[b] > 0.0 else 0.0  # now the scale of row b
    for k in range(n_components):
        for b in range(nb):
            logp[k, b] *= total[b]
    return row_sum(amax, nb)


@njit(**JIT)
def load_resp(resp, r0, nb, w, wr):
    """``wr[k, b] = w[b] * resp[r0 + b, k]``."""
    for b in range(nb):
        wb = w[b]
        for k in range(resp.shape[1]):
            wr[k, b] = wb * resp[r0 + b, k]


@njit(**JIT)
def _add_upper(r, dT, nb, S):
    """``S[i, j] += sum_b r[b] dT[i, b] dT[j, b]`` for ``j >= i`` (plus a few entries
    below the diagonal, in 2 x 4 tiles; Dp a multiple of 4)."""
    n_padded = S.shape[0]
    for i in range(0, n_padded, 2):
        for j in range(i - i % 4, n_padded, 4):
            s = weighted_dot2x4(r, dT[i], dT[i + 1], dT[j], dT[j + 1], dT[j + 2], dT[j + 3], nb)
            S[i, j] += s[0]
            S[i, j + 1] += s[1]
            S[i, j + 2] += s[2]
            S[i, j + 3] += s[3]
            S[i + 1, j] += s[4]
            S[i + 1, j + 1] += s[5]
            S[i + 1, j + 2] += s[6]
            S[i + 1, j + 3] += s[7]


@njit(**JIT)
def fold_full(xT, nb, wr, w, shift, tied, dT, nk, sum_x, sum_xx):
    """Add a block's statistics: ``nk[k] += sum_b wr[k, b]``, ``sum_x[k] += sum_b wr[k, b]
    (x_b - c_k)``, upper triangle of ``sum_xx[k] += sum_b wr[k, b] (x_b - c_k)(x_b - c_k)^T``;
    tied: one shift ``c = shift[0]`` and ``sum_xx[0] += sum_b w[b] (x_b - c)(x_b - c)^T``."""
    if tied:
        centre(xT, nb, shift[0], dT)
        _add_upper(w, dT, nb, sum_xx[0])
    for k in range(wr.shape[0]):
        r = wr[k]
        nk[k] += row_sum(r, nb)
        if not tied:
            centre(xT, nb, shift[k], dT)
            _add_upper(r, dT, nb, sum_xx[k])
        for i in range(xT.shape[0]):
            sum_x[k, i] += row_dot(r, dT[i], nb)


@njit(**JIT)
def fold_diag(xT, nb, wr, shift, nk, sum_x, sum_xx):
    """Diagonal statistics: ``nk``, ``sum_x`` as :func:`fold_full`,
    ``sum_xx[k, i] += sum_b wr[k, b] (x_bi - c_ki)**2``."""
    for k in range(wr.shape[0]):
        r = wr[k]
        nk[k] += row_sum(r, nb)
        for i in range(xT.shape[0]):
            s1, s2 = moments(r, xT[i], shift[k, i], nb)
            sum_x[k, i] += s1
            sum_xx[k, i] += s2
