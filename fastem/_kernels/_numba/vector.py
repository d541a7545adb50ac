"""Vectorisable scalar pieces: an ``exp`` for non-positive arguments and row sums.

Numba's ``np.exp`` calls libm one element at a time (no SVML here); :func:`exp_neg` is
branch-free arithmetic that LLVM vectorises, accurate to 1 ulp.

The row sums (:func:`row_sum`, :func:`row_dot`, :func:`moments`, :func:`weighted_dot2x4`) carry
``fastmath={"contract", "reassoc"}``: reassociation lets LLVM keep several vector
accumulators instead of one serial chain (a reduction cannot be vectorised otherwise).
The order it picks is fixed at compile time, so results are still bit-identical for any
thread count (they may differ in the last bits between CPUs of different vector widths),
and the rounding error is that of a blocked sum, no worse than a serial one. The flag is
limited to these loops over one block's rows.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

JIT = {"nogil": True, "cache": True, "fastmath": {"contract"}}
SUM_JIT = {"nogil": True, "cache": True, "fastmath": {"contract", "reassoc"}}

_LOG2E = 1.4426950408889634
# fdlibm's split of ln 2: _LN2_HI has trailing zero bits, so n * _LN2_HI is exact
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_C = [1.0 / np.prod(np.arange(1.0, i + 1.0)) for i in range(14)]  # 1 / i!
_C2, _C3, _C4, _C5, _C6, _C7, _C8, _C9, _C10, _C11, _C12, _C13 = _C[2:]
#: below this exp(x) is subnormal; exp_neg returns 0 there
_EXP_MIN = -708.0


@intrinsic
def _int64_as_float64(typingctx, bits):
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@njit(inline="always", **JIT)
def exp_neg(x):
    """``exp(x)`` for ``x <= 0`` (``-inf`` included) to 1 ulp; 0 below -708."""
    xc = max(x, _EXP_MIN)
    n = np.floor(xc * _LOG2E + 0.5)
    r = (xc - n * _LN2_HI) - n * _LN2_LO  # |r| <= ln(2) / 2: Taylor to r**13 is < 1 ulp
    p = _C13 * r + _C12
    p = p * r + _C11
    p = p * r + _C10
    p = p * r + _C9
    p = p * r + _C8
    p = p * r + _C7
    p = p * r + _C6
    p = p * r + _C5
    p = p * r + _C4
    p = p * r + _C3
    p = p * r + _C2
    p = p * r + 1.0
    p = p * r + 1.0
    scale = _int64_as_float64((np.int64(n) + 1023) << 52)  # 2**n
    return p * scale if x >= _EXP_MIN else 0.0


@njit(**SUM_JIT)
def row_sum(a, n):
    """``sum(a[:n])``."""
    s = 0.0
    for b in range(n):
        s += a[b]
    return s


@njit(**SUM_JIT)
def moments(r, x, c, n):
    """``sum(r * (x - c))`` and ``sum(r * (x - c)**2)`` over ``[:n]``."""
    s1 = 0.0
    s2 = 0.0
    for b in range(n):
        d = x[b] - c
        t = r[b] * d
        s1 += t
        s2 += t * d
    return s1, s2


@njit(**SUM_JIT)
def row_dot(a, c, n):
    """``a[:n] @ c[:n]``."""
    s = 0.0
    for b in range(n):
        s += a[b] * c[b]
    return s


@njit(**SUM_JIT)
def weighted_dot2x4(r, a0, a1, c0, c1, c2, c3, n):
    """The 2 x 4 sums ``sum(r * a_p * c_q)`` over ``[:n]`` (row-major), sharing every load."""
    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = 0.0
    for b in range(n):
        x0 = r[b] * a0[b]
        x1 = r[b] * a1[b]
        z0 = c0[b]
        z1 = c1[b]
        z2 = c2[b]
        z3 = c3[b]
        s00 += x0 * z0
        s01 += x0 * z1
        s02 += x0 * z2
        s03 += x0 * z3
        s10 += x1 * z0
        s11 += x1 * z1
        s12 += x1 * z2
        s13 += x1 * z3
    return s00, s01, s02, s03, s10, s11, s12, s13
