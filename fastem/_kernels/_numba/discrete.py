"""Numba kernels of the independent-feature families (Bernoulli, Poisson, categorical).

Two log-densities, two parallel passes:

- *table* (categorical, and Bernoulli as two categories): ``log p(x | k) = sum_d
  T[(d * C1 + x_d) * Kp + k]``, ``T`` flat (D * C1 * Kp,) with ``C1 = C + 1`` rows of
  Kp per feature: one per category and a last row of zeros (row ``C``) that missing
  entries (NaN) point to, so that nothing branches on missingness and ``-inf`` is never
  multiplied by 0. A block's entries are decoded once into ``codes[b, d] = x * Kp``
  (int32). The statistics are the same gather turned into a scatter, ``counts[(d * C1 +
  x_d) * Kp + k] += w r_k`` (the missing rows collect the missing mass; the caller
  drops them). Bernoulli: row 0 ``offset``, row 1 ``coef + offset``.
- *poisson*: ``log p(x | k) = S_k - sum_d log(x_d!) + sum_d x_d coef[d, k] - sum_{d
  missing} offset[d, k]`` with ``S_k = sum_d offset[d, k]`` and x_d = 0 where missing;
  the statistics are ``sum_x[d, k] += w r_k x_d`` and only the missing mass ``miss[d, k]
  += w r_k`` (from per-row lists of the missing features, built only for blocks that
  have some): ``n_obs = nk - miss``, with ``nk`` added up row by row in the order of
  ``miss``, so a feature missing wherever a row has weight gets ``n_obs`` exactly 0.
  ``log(x!)`` comes from a table below its length, ``lgamma`` above.

Components are padded to ``Kp``, a multiple of TILE (zero parameters, log weight
``-inf``: responsibility exactly 0). The loops over a row's features run TILE
components at a time in explicit ``<TILE x double>`` vectors (the intrinsics below:
Numba leaves SLP vectorisation off, and the loop vectoriser has nothing to work with in a
loop over so few components), with four interleaved accumulators in a fixed order. The
caller aligns ``T`` and the slot buffers on 64 bytes, so no vector straddles two lines.

Per block of rows: decode X (one function per dtype, the domain check fused in), the
log-densities into ``lp`` (Kp, nb), :func:`.blocks.normalise` into weighted
responsibilities in place, then the scatter. A row with no observed feature gets weight
0 (it contributes nothing; its log-density is exactly 0). A block with an invalid entry
stops its slot before any of it is used as an index; the slot records the flat index of
the block's first invalid entry and the caller raises for the smallest.

Determinism as in :mod:`.drivers`: blocks of ``block_size`` rows, ``n_slots`` contiguous
runs of blocks, ``prange`` over slots, per-slot buffers summed by the caller in order.
X arrives as bytes with the float32 flag ``single``; ``sample_weight`` is (N,) or empty.
A non-empty ``out`` (N, K) receives the log-densities instead of any statistics.
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from . import blocks as bk
from .drivers import PARALLEL_JIT, slot_blocks
from .vector import JIT, row_sum

#: components per vector (one AVX-512 or two AVX2 registers of float64)
TILE = 8
#: log(x!) is tabulated for x below this
N_LOG_FACTORIAL = 1024
LOG_FACTORIAL = np.array([math.lgamma(i + 1.0) for i in range(N_LOG_FACTORIAL)])

# ----------------------------------------------------------------- vector intrinsics
# TILE consecutive float64 of a C-contiguous table, as one LLVM vector, per feature of a
# row: gathered into a TILE-tuple, or scattered (added) into a buffer. Offsets are in
# elements; the callers keep every one in bounds.
_VEC = ir.VectorType(ir.DoubleType(), TILE)
_TUPLE = types.UniTuple(types.float64, TILE)
_CONTRACT = ("contract",)


def _array(context, builder, ty, value):
    """Data pointer and shape (LLVM values) of a Numba array argument."""
    a = context.make_array(ty)(context, builder, value)
    return a.data, cgutils.unpack_tuple(builder, a.shape, ty.ndim)


def _intp(context, builder, ty, value):
    return context.cast(builder, value, ty, types.intp)


def _vector_at(builder, data, offset):
    """Pointer to the TILE doubles at ``data + offset``."""
    return builder.bitcast(builder.gep(data, [offset]), _VEC.as_pointer())


def _load(builder, data, offset):
    return builder.load(_vector_at(builder, data, offset), align=8)


def _broadcast(builder, value):
    v = builder.insert_element(ir.Constant(_VEC, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(v, ir.Constant(_VEC, ir.Undefined), ir.Constant(ir.VectorType(ir.IntType(32), TILE),
                                                                                   [0] * TILE))


def _from_tuple(builder, values):
    v = ir.Constant(_VEC, ir.Undefined)
    for j in range(TILE):
        v = builder.insert_element(v, builder.extract_value(values, j), ir.Constant(ir.IntType(32), j))
    return v


def _to_tuple(context, builder, vector):
    return context.make_tuple(builder, _TUPLE, [builder.extract_element(vector, ir.Constant(ir.IntType(32), j))
                                                for j in range(TILE)])


def _sum_loop(builder, count, term, flags=()):
    """``sum_{j < count} term(j)`` in four accumulators (j mod 4), then ``(a0 + a1) + (a2 + a3)``."""
    zero = ir.Constant(_VEC, [0.0] * TILE)
    accs = [cgutils.alloca_once_value(builder, zero) for _ in range(4)]
    n_quads = builder.ashr(count, count.type(2))
    with cgutils.for_range(builder, n_quads) as loop:
        j0 = builder.shl(loop.index, loop.index.type(2))
        for q, acc in enumerate(accs):
            builder.store(builder.fadd(builder.load(acc), term(builder.add(j0, j0.type(q))), flags=flags), acc)
    with cgutils.for_range(builder, count, start=builder.shl(n_quads, n_quads.type(2))) as loop:
        builder.store(builder.fadd(builder.load(accs[0]), term(loop.index), flags=flags), accs[0])
    a0, a1, a2, a3 = (builder.load(acc) for acc in accs)
    return builder.fadd(builder.fadd(a0, a1), builder.fadd(a2, a3))


def _c_arrays(*arrays):
    """Whether the intrinsics below may address these as C-contiguous arrays."""
    return all(isinstance(a, types.Array) and a.layout == "C" for a in arrays)


def _rows(context, builder, signature, args):
    """Data pointers of the first two (array) arguments, with the second's row
    ``args[2]`` and its column count, and the first's size."""
    a_ty, o_ty, r_ty = signature.args[:3]
    a_data, (a_size,) = _array(context, builder, a_ty, args[0])
    o_data, (_, n_cols) = _array(context, builder, o_ty, args[1])
    row_ptr = builder.gep(o_data, [builder.mul(_intp(context, builder, r_ty, args[2]), n_cols)])
    return a_data, a_size, row_ptr, n_cols


def _offset(builder, row_ptr, j, stride):
    """``row[j]`` (sign-extended to intp), plus ``j * stride`` unless ``stride`` is None."""
    o = builder.load(builder.gep(row_ptr, [j]))
    if o.type.width < 64:
        o = builder.sext(o, ir.IntType(64))
    return o if stride is None else builder.add(o, builder.mul(j, stride))


def _gather_codegen(relative):
    def codegen(context, builder, signature, args):
        data, size, row_ptr, n_cols = _rows(context, builder, signature, args)
        if relative:  # (table, codes, row, k0): count = n_cols, stride = size // n_cols
            k_ty, count, stride = signature.args[3], n_cols, builder.sdiv(size, n_cols)
        else:  # (table, offsets, row, count, k0)
            k_ty, count, stride = signature.args[4], _intp(context, builder, signature.args[3], args[3]), None
        base = builder.gep(data, [_intp(context, builder, k_ty, args[-1])])
        total = _sum_loop(builder, count, lambda j: _load(builder, base, _offset(builder, row_ptr, j, stride)))
        return _to_tuple(context, builder, total)

    return codegen


def _scatter_codegen(relative):
    def codegen(context, builder, signature, args):
        data, size, row_ptr, n_cols = _rows(context, builder, signature, args)
        if relative:  # (buffer, codes, row, k0, values)
            k_ty, count, stride = signature.args[3], n_cols, builder.sdiv(size, n_cols)
        else:  # (buffer, offsets, row, count, k0, values)
            k_ty, count, stride = signature.args[4], _intp(context, builder, signature.args[3], args[3]), None
        base = builder.gep(data, [_intp(context, builder, k_ty, args[-2])])
        v = _from_tuple(builder, args[-1])
        with cgutils.for_range(builder, count) as loop:
            ptr = _vector_at(builder, base, _offset(builder, row_ptr, loop.index, stride))
            builder.store(builder.fadd(builder.load(ptr, align=8), v), ptr, align=8)
        return context.get_dummy_value()

    return codegen


@intrinsic
def table_sum(typingctx, table, codes, row, k0):
    """``sum_d table[d * S + codes[row, d] + k0 : ... + TILE]`` over the D columns of the
    2-d ``codes`` (S = ``table.size // D``), a TILE-tuple; ``table`` 1-d C-contiguous."""
    if _c_arrays(table, codes):
        return _TUPLE(table, codes, row, k0), _gather_codegen(relative=True)


@intrinsic
def table_scatter(typingctx, buffer, codes, row, k0, values):
    """``buffer[d * S + codes[row, d] + k0 : ... + TILE] += values`` for every column d."""
    if _c_arrays(buffer, codes):
        return types.void(buffer, codes, row, k0, values), _scatter_codegen(relative=True)


@intrinsic
def gather_sum(typingctx, table, offsets, row, count, k0):
    """``sum_{j < count} table[offsets[row, j] + k0 : ... + TILE]``, a TILE-tuple."""
    if _c_arrays(table, offsets):
        return _TUPLE(table, offsets, row, count, k0), _gather_codegen(relative=False)


@intrinsic
def scatter_add(typingctx, buffer, offsets, row, count, k0, values):
    """``buffer[offsets[row, j] + k0 : ... + TILE] += values`` for ``j < count``."""
    if _c_arrays(buffer, offsets):
        return types.void(buffer, offsets, row, count, k0, values), _scatter_codegen(relative=False)


@intrinsic
def fma_sum(typingctx, table, x, row, k0):
    """``sum_d x[row, d] * table[d * S + k0 : ... + TILE]`` over the D columns of the 2-d
    ``x`` (S = ``table.size // D``), a TILE-tuple."""
    if not _c_arrays(table, x):
        return None
    sig = _TUPLE(table, x, row, k0)

    def codegen(context, builder, signature, args):
        data, size, row_ptr, n_cols = _rows(context, builder, signature, args)
        stride = builder.sdiv(size, n_cols)
        base = builder.gep(data, [_intp(context, builder, signature.args[3], args[3])])

        def term(d):
            xv = _broadcast(builder, builder.load(builder.gep(row_ptr, [d])))
            return builder.fmul(xv, _load(builder, base, builder.mul(d, stride)), flags=_CONTRACT)

        return _to_tuple(context, builder, _sum_loop(builder, n_cols, term, _CONTRACT))

    return sig, codegen


@intrinsic
def fma_scatter(typingctx, buffer, x, row, k0, values):
    """``buffer[d * S + k0 : ... + TILE] += x[row, d] * values`` for every column d of ``x``."""
    if not _c_arrays(buffer, x):
        return None
    sig = types.void(buffer, x, row, k0, values)

    def codegen(context, builder, signature, args):
        data, size, row_ptr, n_cols = _rows(context, builder, signature, args)
        stride = builder.sdiv(size, n_cols)
        base = builder.gep(data, [_intp(context, builder, signature.args[3], args[3])])
        v = _from_tuple(builder, args[4])
        with cgutils.for_range(builder, n_cols) as loop:
            xv = _broadcast(builder, builder.load(builder.gep(row_ptr, [loop.index])))
            ptr = _vector_at(builder, base, builder.mul(loop.index, stride))
            product = builder.fmul(xv, v, flags=_CONTRACT)
            builder.store(builder.fadd(builder.load(ptr, align=8), product, flags=_CONTRACT), ptr, align=8)
        return context.get_dummy_value()

    return sig, codegen


# ----------------------------------------------------------------- decoding (per dtype)
# Rows are indexed as X[r, d], never through row views (a view costs an atomic reference
# count); the loops over d vectorise, with block-wide reductions only.

@njit(**JIT)
def _decode_table(X, r0, nb, ncat, n_padded, missing_code, codes):
    """``codes[b, d] = x * n_padded`` (``missing_code`` where missing or invalid); returns
    the block's count of missing entries and whether one is invalid (not an integer in
    [0, ncat[d]))."""
    n_features = X.shape[1]
    bad = False
    n_missing = 0
    for b in range(nb):
        r = r0 + b
        for d in range(n_features):
            v = np.float64(X[r, d])
            in_range = (v >= 0.0) & (v < ncat[d])  # False for NaN
            i = np.int64(v if in_range else 0.0)
            good = in_range & (np.float64(i) == v)
            observed = v == v
            bad |= observed != good  # good implies observed
            codes[b, d] = np.int32(i * n_padded) if good else missing_code
            n_missing += not observed
    return n_missing, bad


@njit(**JIT)
def _first_invalid_table(X, r0, nb, ncat):
    """Flat index in X of the first entry of the block that is not NaN nor an integer
    in [0, ncat[d]) (-1 if none)."""
    for r in range(r0, r0 + nb):
        for d in range(X.shape[1]):
            v = np.float64(X[r, d])
            if v == v and not (v >= 0.0 and v < ncat[d] and np.floor(v) == v):
                return r * X.shape[1] + d
    return -1


@njit(**JIT)
def _decode_poisson(X, r0, nb, top, x0):
    """``x0[b, d]`` = x (0 where missing or invalid); returns the block's count of missing
    entries, of entries above ``top``, and whether one is invalid (not a finite
    non-negative integer)."""
    n_features = X.shape[1]
    bad = False
    n_missing = 0
    n_large = 0
    for b in range(nb):
        r = r0 + b
        for d in range(n_features):
            v = np.float64(X[r, d])
            observed = v == v
            good = (v >= 0.0) & (v < np.inf) & (np.floor(v) == v)
            bad |= observed != good
            xv = v if good else 0.0
            x0[b, d] = xv
            n_large += xv > top
            n_missing += not observed
    return n_missing, n_large, bad


@njit(**JIT)
def _first_invalid_poisson(X, r0, nb):
    """Flat index in X of the block's first entry that is not NaN nor a finite
    non-negative integer (-1 if none)."""
    for r in range(r0, r0 + nb):
        for d in range(X.shape[1]):
            v = np.float64(X[r, d])
            if v == v and not (v >= 0.0 and v < np.inf and np.floor(v) == v):
                return r * X.shape[1] + d
    return -1


@njit(**JIT)
def _missing_lists(X, r0, nb, n_padded, missing, n_missing):
    """``missing[b, :n_missing[b]]``: row ``r0 + b``'s missing features times ``n_padded``."""
    for b in range(nb):
        m = 0
        for d in range(X.shape[1]):
            missing[b, m] = d * n_padded
            m += X[r0 + b, d] != X[r0 + b, d]
        n_missing[b] = m


@njit(**JIT)
def _log_factorials(x0, nb, log_factorial, large, log_h):
    """``log_h[b] = sum_d log(x0[b, d]!)`` in two interleaved partial sums; ``large``: some
    x0 are past the table (``lgamma`` there)."""
    n_features = x0.shape[1]
    top = np.float64(log_factorial.shape[0] - 1)
    for b in range(nb):
        s0 = s1 = 0.0
        if large:
            for d in range(n_features):
                xv = x0[b, d]
                f = log_factorial[np.int64(xv)] if xv <= top else math.lgamma(xv + 1.0)
                if d % 2:
                    s1 += f
                else:
                    s0 += f
        else:
            for d in range(0, n_features - 1, 2):
                s0 += log_factorial[np.int64(x0[b, d])]
                s1 += log_factorial[np.int64(x0[b, d + 1])]
            if n_features % 2:
                s0 += log_factorial[np.int64(x0[b, n_features - 1])]
        log_h[b] = s0 + s1


# ----------------------------------------------------------------- per-block passes
@njit(**JIT)
def _table_block(X, r0, nb, ncat, n_padded, missing_code, codes, n_obs):
    """Decode a block for the table pass: ``codes`` and ``n_obs[b]``, row ``r0 + b``'s
    count of observed features (counted only in blocks with missing entries); returns
    the flat index of the block's first invalid entry, or -1."""
    n_features = X.shape[1]
    n_missing, bad = _decode_table(X, r0, nb, ncat, n_padded, missing_code, codes)
    if bad:
        return _first_invalid_table(X, r0, nb, ncat)
    n_obs[:nb] = n_features
    if n_missing:
        for b in range(nb):
            count = 0
            for d in range(n_features):
                count += codes[b, d] != missing_code
            n_obs[b] = count
    return -1


@njit(**JIT)
def _poisson_block(X, r0, nb, log_factorial, n_padded, x0, missing, n_missing, log_h):
    """Decode a block for the Poisson pass: ``x0``, ``log_h``, the missing lists; returns
    the flat index of its first invalid entry, or -1."""
    n_miss, n_large, bad = _decode_poisson(X, r0, nb, np.float64(log_factorial.shape[0] - 1), x0)
    if bad:
        return _first_invalid_poisson(X, r0, nb)
    _log_factorials(x0, nb, log_factorial, n_large > 0, log_h)
    if n_miss:
        _missing_lists(X, r0, nb, n_padded, missing, n_missing)
    else:
        n_missing[:nb] = 0
    return -1


# ----------------------------------------------------------------- per-block passes
@njit(**JIT)
def _table_log_prob(codes, nb, T, init, lp):
    """``lp[k, b] = init[k] + sum_d T[d * S + codes[b, d] + k]``."""
    for k0 in range(0, init.shape[0], TILE):
        i0, i1, i2, i3 = init[k0], init[k0 + 1], init[k0 + 2], init[k0 + 3]
        i4, i5, i6, i7 = init[k0 + 4], init[k0 + 5], init[k0 + 6], init[k0 + 7]
        for b in range(nb):
            s0, s1, s2, s3, s4, s5, s6, s7 = table_sum(T, codes, b, k0)
            lp[k0, b], lp[k0 + 1, b], lp[k0 + 2, b], lp[k0 + 3, b] = i0 + s0, i1 + s1, i2 + s2, i3 + s3
            lp[k0 + 4, b], lp[k0 + 5, b], lp[k0 + 6, b], lp[k0 + 7, b] = i4 + s4, i5 + s5, i6 + s6, i7 + s7


@njit(**JIT)
def _poisson_log_prob(x0, missing, n_missing, log_h, nb, coef, offset, init, lp):
    """``lp[k, b] = (init[k] - log_h[b]) + (sum_d x0[b, d] coef[d, k] - sum_{d missing}
    offset[d, k])``; exactly 0 for a row with no observed feature."""
    n_features = x0.shape[1]
    for k0 in range(0, init.shape[0], TILE):
        i0, i1, i2, i3 = init[k0], init[k0 + 1], init[k0 + 2], init[k0 + 3]
        i4, i5, i6, i7 = init[k0 + 4], init[k0 + 5], init[k0 + 6], init[k0 + 7]
        for b in range(nb):
            n_miss = n_missing[b]
            if n_miss == n_features:
                s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
            else:
                s0, s1, s2, s3, s4, s5, s6, s7 = fma_sum(coef, x0, b, k0)
                if n_miss:
                    m0, m1, m2, m3, m4, m5, m6, m7 = gather_sum(offset, missing, b, n_miss, k0)
                    s0, s1, s2, s3 = s0 - m0, s1 - m1, s2 - m2, s3 - m3
                    s4, s5, s6, s7 = s4 - m4, s5 - m5, s6 - m6, s7 - m7
                g = log_h[b]
                s0, s1, s2, s3 = (i0 - g) + s0, (i1 - g) + s1, (i2 - g) + s2, (i3 - g) + s3
                s4, s5, s6, s7 = (i4 - g) + s4, (i5 - g) + s5, (i6 - g) + s6, (i7 - g) + s7
            lp[k0, b], lp[k0 + 1, b], lp[k0 + 2, b], lp[k0 + 3, b] = s0, s1, s2, s3
            lp[k0 + 4, b], lp[k0 + 5, b], lp[k0 + 6, b], lp[k0 + 7, b] = s4, s5, s6, s7


@njit(**JIT)
def _table_fold(codes, nb, wr, counts):
    """``counts[d * S + codes[b, d] + k] += wr[k, b]``."""
    for k0 in range(0, wr.shape[0], TILE):
        for b in range(nb):
            w = (wr[k0, b], wr[k0 + 1, b], wr[k0 + 2, b], wr[k0 + 3, b],
                 wr[k0 + 4, b], wr[k0 + 5, b], wr[k0 + 6, b], wr[k0 + 7, b])
            table_scatter(counts, codes, b, k0, w)


@njit(**JIT)
def _poisson_fold(x0, missing, n_missing, nb, wr, nk, sum_x, miss):
    """Row by row: ``nk[k] += wr[k, b]``, ``sum_x[d, k] += x0[b, d] wr[k, b]``,
    ``miss[d, k] += wr[k, b]`` for the row's missing d."""
    for k0 in range(0, wr.shape[0], TILE):
        a0, a1, a2, a3 = nk[k0], nk[k0 + 1], nk[k0 + 2], nk[k0 + 3]
        a4, a5, a6, a7 = nk[k0 + 4], nk[k0 + 5], nk[k0 + 6], nk[k0 + 7]
        for b in range(nb):
            w0, w1, w2, w3 = wr[k0, b], wr[k0 + 1, b], wr[k0 + 2, b], wr[k0 + 3, b]
            w4, w5, w6, w7 = wr[k0 + 4, b], wr[k0 + 5, b], wr[k0 + 6, b], wr[k0 + 7, b]
            a0, a1, a2, a3 = a0 + w0, a1 + w1, a2 + w2, a3 + w3
            a4, a5, a6, a7 = a4 + w4, a5 + w5, a6 + w6, a7 + w7
            w = (w0, w1, w2, w3, w4, w5, w6, w7)
            fma_scatter(sum_x, x0, b, k0, w)
            if n_missing[b]:
                scatter_add(miss, missing, b, n_missing[b], k0, w)
        nk[k0], nk[k0 + 1], nk[k0 + 2], nk[k0 + 3] = a0, a1, a2, a3
        nk[k0 + 4], nk[k0 + 5], nk[k0 + 6], nk[k0 + 7] = a4, a5, a6, a7


@njit(**JIT)
def _row_weights(sample_weight, r0, nb, n_observed, w):
    """``w[b]``: the sample weight of row ``r0 + b``, 0 where it has no observed feature."""
    bk.load_weights(sample_weight, r0, nb, w)
    for b in range(nb):
        if n_observed[b] == 0:
            w[b] = 0.0


@njit(**JIT)
def _store(lp, nb, r0, out):
    """``out[r0 + b, k] = lp[k, b]`` for the K <= Kp columns of ``out``."""
    for b in range(nb):
        for k in range(out.shape[1]):
            out[r0 + b, k] = lp[k, b]


@njit(**JIT)
def _responsibilities(lp, nb, sample_weight, r0, n_obs, w, amax, total, slot, add_nk, nk, loglik, n):
    """Block statistics shared by both passes: ``lp`` becomes the weighted
    responsibilities; the slot's ``n``, ``loglik`` (and ``nk`` if ``add_nk``) grow."""
    _row_weights(sample_weight, r0, nb, n_obs, w)
    n[slot] += row_sum(w, nb)
    loglik[slot] += bk.normalise(lp, nb, w, amax, total)
    if add_nk:
        for k in range(lp.shape[0]):
            nk[slot, k] += row_sum(lp[k], nb)


# ----------------------------------------------------------------- parallel passes
@njit(**JIT)
def _table_slot(X_bytes, single, ncat, T, init, sample_weight, block_size, slot, out, nk, counts, loglik, n, bad):
    n_samples, n_features = X_bytes.shape[0], ncat.shape[0]
    n_padded = init.shape[0]
    missing_code = np.int32((T.shape[0] // (n_features * n_padded) - 1) * n_padded)
    width = min(block_size, n_samples)
    codes = np.empty((width, n_features), dtype=np.int32)
    n_obs = np.empty(width, dtype=np.int64)
    lp = np.empty((n_padded, width))
    w = np.empty(width)
    amax = np.empty(width)
    total = np.empty(width)
    log_prob_only = out.shape[0] > 0
    first, end = slot_blocks(slot, bad.shape[0], n_samples, block_size)
    for blk in range(first, end):
        r0 = blk * block_size
        nb = min(block_size, n_samples - r0)
        if single:
            e = _table_block(X_bytes.view(np.float32), r0, nb, ncat, n_padded, missing_code, codes, n_obs)
        else:
            e = _table_block(X_bytes.view(np.float64), r0, nb, ncat, n_padded, missing_code, codes, n_obs)
        if e >= 0:
            bad[slot] = e
            return
        _table_log_prob(codes, nb, T, init, lp)
        if log_prob_only:
            _store(lp, nb, r0, out)
            continue
        _responsibilities(lp, nb, sample_weight, r0, n_obs, w, amax, total, slot, True, nk, loglik, n)
        _table_fold(codes, nb, lp, counts[slot])


@njit(**PARALLEL_JIT)
def table_pass(X_bytes, single, ncat, T, init, sample_weight, block_size, out, nk, counts, loglik, n, bad):
    """Table family (categorical, Bernoulli): ``ncat`` (D,) float64 category counts, ``T``
    flat (D * C1 * Kp,): feature d, category c (c = C1 - 1: missing, zeros), component k
    at ``(d * C1 + c) * Kp + k``; ``init`` (Kp,) is added to every log-density (log
    weights, ``-inf`` for the padding). Zeroed slot buffers (S = ``bad.shape[0]``):
    ``nk`` (S, Kp), ``counts`` (S, D * C1 * Kp) laid out as ``T``, ``loglik``, ``n``
    (S,); ``bad`` (S,) int64 -1."""
    for slot in prange(bad.shape[0]):
        _table_slot(X_bytes, single, ncat, T, init, sample_weight, block_size, slot, out, nk, counts, loglik, n, bad)


@njit(**JIT)
def _poisson_slot(X_bytes, single, log_factorial, coef, offset, init, sample_weight, block_size, slot, out, nk,
                  sum_x, miss, loglik, n, bad):
    n_samples = X_bytes.shape[0]
    n_padded = init.shape[0]
    n_features = coef.shape[0] // n_padded
    width = min(block_size, n_samples)
    x0 = np.empty((width, n_features))
    missing = np.empty((width, n_features), dtype=np.int32)
    n_missing = np.empty(width, dtype=np.int64)
    n_obs = np.empty(width, dtype=np.int64)
    log_h = np.empty(width)
    lp = np.empty((n_padded, width))
    w = np.empty(width)
    amax = np.empty(width)
    total = np.empty(width)
    log_prob_only = out.shape[0] > 0
    first, end = slot_blocks(slot, bad.shape[0], n_samples, block_size)
    for blk in range(first, end):
        r0 = blk * block_size
        nb = min(block_size, n_samples - r0)
        if single:
            e = _poisson_block(X_bytes.view(np.float32), r0, nb, log_factorial, n_padded, x0, missing, n_missing,
                               log_h)
        else:
            e = _poisson_block(X_bytes.view(np.float64), r0, nb, log_factorial, n_padded, x0, missing, n_missing,
                               log_h)
        if e >= 0:
            bad[slot] = e
            return
        _poisson_log_prob(x0, missing, n_missing, log_h, nb, coef, offset, init, lp)
        if log_prob_only:
            _store(lp, nb, r0, out)
            continue
        for b in range(nb):
            n_obs[b] = n_features - n_missing[b]
        # nk is added up in the fold, row by row in the order of miss
        _responsibilities(lp, nb, sample_weight, r0, n_obs, w, amax, total, slot, False, nk, loglik, n)
        _poisson_fold(x0, missing, n_missing, nb, lp, nk[slot], sum_x[slot], miss[slot])


@njit(**PARALLEL_JIT)
def poisson_pass(X_bytes, single, log_factorial, coef, offset, init, sample_weight, block_size, out, nk, sum_x, miss,
                 loglik, n, bad):
    """Poisson family: ``coef``, ``offset`` flat (D * Kp,) (zero padding), ``init`` (Kp,) =
    ``S`` + log weights (``-inf`` for the padding). Zeroed slot buffers (S =
    ``bad.shape[0]``): ``nk`` (S, Kp), ``sum_x``, ``miss`` (S, D * Kp), ``loglik``, ``n``
    (S,); ``bad`` (S,) -1."""
    for slot in prange(bad.shape[0]):
        _poisson_slot(X_bytes, single, log_factorial, coef, offset, init, sample_weight, block_size, slot, out, nk,
                      sum_x, miss, loglik, n, bad)
