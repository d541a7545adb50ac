# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Kernels of the mixtures of independent features (Bernoulli, Poisson, categorical):
Cython + OpenMP around C loops, one source for float32 and float64 ``X``.

The contract is :mod:`fastem.reference_discrete`'s. X is read in its own dtype and
converted to float64; NaN is missing; every sum is taken in float64. Components are
padded to ``KP``, a multiple of FD_W = 8: a vector of 8 doubles (GCC/Clang vector
extensions: one AVX-512 register, two AVX2 ones, four SSE2 ones; plain C elsewhere)
holds 8 components, and the padded components have log weight -inf, so that their
responsibilities are exact zeros and every inner loop runs over whole vectors.

Work unit: rows are cut into blocks of ``block_size``, blocks into ``n_slots``
contiguous slots (a function of N and block_size only, chosen by the caller), and each
block into chunks of at most ``chunk`` rows (so that a chunk's scratch stays in L1).
A chunk is first scanned in one flat pass: X to float64 (categorical: straight to table
offsets), the domain check and the missing entries. The first invalid entry in
row-major order ends the slot before any value of its chunk is used as an index (the
caller raises the smallest over the slots). The next chunk is prefetched while this one
computes. Then, with the tables transposed so that the loops over components are
contiguous:

- linear: ``lp = cst + x0 @ coef_t`` (x0: the chunk with missing entries 0; coef_t
  (D, KP); four rows share each load of the table) minus ``offset_t[d]`` for each
  missing (i, d), with ``cst = log w + sum_d offset``; Poisson's ``-sum_d log(x_d!)``
  from a table (Stirling's series past it). Statistics: ``sum_x += x0^T R`` in register
  tiles of features, and ``n_obs = nk - (mass of the rows missing d)`` per chunk: a
  sub-sum of the same terms in the same order, so it is exact where d is never or
  always missing, and never negative;
- Bernoulli, AVX-512 builds (FD_BITS), chunks whose entries are all 0 or 1: the scan
  reads X with mask compares straight into offsets of nibble tables (no float64 copy),
  ``lp = cst + sum_g lpt[g, nibble_g]`` (lpt: coef summed over each nibble value's set
  bits, built per thread) and the statistics add each row's ``w_i r_i`` once per nibble
  into the slot's table of nibble values, expanded into sum_x at the slot's end
  (``n_obs = nk`` there, copied once); a chunk with a missing or invalid entry takes the
  general path (whose scan finds the first invalid entry);
- categorical: the table is (D, C + 1, KP), its category C zeros and the missing
  entries' code, so both ``lp += table[d, x_d]`` and ``counts[d, x_d] += r`` run without
  a branch (the dummy category's counts are dropped by the caller).

Responsibilities: a max-shifted softmax, 8 rows at a time transposed (each vector one
component of 8 rows, so no horizontal operation per row), with the Gaussian kernels'
exp and a vectorised log. A row with no observed feature contributes nothing at all,
nor does a row of sample weight 0.

Determinism: each slot accumulates its chunks in order into its own row of the
accumulators (chunk partial sums first); ``prange`` runs over slots; the caller sums the
slots in order. So the results do not depend on the thread count.

Called only through :mod:`fastem._kernels.cython_discrete`; shapes are checked here,
before the GIL is released, so that the loops never read out of bounds.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange

cdef extern from *:
    """
    #include <math.h>
    #include <stdlib.h>
    #include <string.h>

    #define FD_W 8                  /* doubles per vector: components are padded to a multiple */
    #define FD_LOGFACT_SIZE 1024    /* log(x!) is tabulated for x < FD_LOGFACT_SIZE */
    #define FD_BERNOULLI 0
    #define FD_POISSON 1
    #define FD_CATEGORICAL 2
    #define FD_TWO52 4503599627370496.0

    /* FD_BITS: Bernoulli chunks without missing or invalid entries take the bit path
       (AVX-512 mask compares): each row is coded as bytes of 8 features' bits, the
       log-density is cst plus one table vector per nibble (the sums of coef over the
       nibble's set bits, (G4, 16, KP)), and sum_x is accumulated per nibble value over
       the slot ((G4, 16, KP)), then expanded to the features at the slot's end */
    #if defined(__AVX512F__) && defined(__AVX512VL__) && (defined(__GNUC__) || defined(__clang__)) && !defined(FD_PORTABLE)
    #define FD_BITS 1
    /* the bit path's tables (each 2 G8P 16 KP doubles) at most 256 KiB: beyond, the
       general path */
    #define FD_USE_BITS(p) ((p)->dist == FD_BERNOULLI && ((p)->n_features + 63) / 64 * 8 * (p)->kp <= 1024)
    #ifndef FD_BITS_AHEAD
    #define FD_BITS_AHEAD 64   /* rows: the scan prefetches X this far ahead */
    #endif
    #include <immintrin.h>
    #endif

    /* FD_PORTABLE: the plain-C vectors below (for compilers without GCC's vector
       extensions) even where the extensions exist */
    #if (defined(__GNUC__) || defined(__clang__)) && !defined(FD_PORTABLE)
    #if defined(__GNUC__) && !defined(__clang__)
    /* fd_v is passed by value only to always-inline helpers: no call ever uses the ABI
       that GCC warns about (64-byte vectors without AVX-512) */
    #pragma GCC diagnostic ignored "-Wpsabi"
    #endif
    #define FD_INLINE static inline __attribute__((always_inline))
    /* the phases of a chunk: each its own function (its own register allocation) */
    #define FD_PHASE static __attribute__((noinline))
    #if defined(__AVX512F__)
    /* 8 doubles: one AVX-512 register (GCC/Clang vector extensions); a * b + c is fused
       by the compiler where the target has an FMA */
    typedef double fd_v __attribute__((vector_size(64)));
    typedef long long fd_vl __attribute__((vector_size(64)));
    FD_INLINE fd_v fd_load(const double* p) { fd_v v; memcpy(&v, p, sizeof v); return v; }
    FD_INLINE void fd_store(double* p, fd_v v) { memcpy(p, &v, sizeof v); }
    FD_INLINE fd_v fd_set1(double a) { const fd_v v = {a, a, a, a, a, a, a, a}; return v; }
    FD_INLINE fd_v fd_add(fd_v a, fd_v b) { return a + b; }
    FD_INLINE fd_v fd_sub(fd_v a, fd_v b) { return a - b; }
    FD_INLINE fd_v fd_mul(fd_v a, fd_v b) { return a * b; }
    FD_INLINE fd_v fd_madd(fd_v a, fd_v b, fd_v c) { return a * b + c; }
    /* per lane a > b ? a : b (b where a is NaN) */
    FD_INLINE fd_v fd_max(fd_v a, fd_v b) {
        const fd_vl gt = a > b;
        return (fd_v) ((gt & (fd_vl) a) | (~gt & (fd_vl) b));
    }
    FD_INLINE double fd_lane(fd_v a, int j) { return a[j]; }
    /* 2**(n + 512) from the rounding constant's bits, whose low bits hold n */
    FD_INLINE fd_v fd_scale_bits(fd_v rounded) { return (fd_v) (((fd_vl) rounded + 1023) << 52); }
    FD_INLINE fd_v fd_div(fd_v a, fd_v b) { return a / b; }
    FD_INLINE fd_v fd_select(fd_vl mask, fd_v a, fd_v b) { return (fd_v) ((mask & (fd_vl) a) | (~mask & (fd_vl) b)); }
    FD_INLINE fd_v fd_zero_where_neg_inf(fd_v a) { return fd_select(a == fd_set1(-HUGE_VAL), fd_set1(0.0), a); }
    FD_INLINE fd_v fd_keep_where_nonzero(fd_v w, fd_v a) { return fd_select(w != fd_set1(0.0), a, fd_set1(0.0)); }
    FD_INLINE fd_v fd_keep_where_positive(fd_v w, fd_v a) { return fd_select(w > fd_set1(0.0), a, fd_set1(0.0)); }
    FD_INLINE fd_v fd_log_zero(fd_v x, fd_v a) { return fd_select(x == fd_set1(0.0), fd_set1(-HUGE_VAL), a); }
    /* x (> 0, normal) = 2**e m with m in [sqrt(1/2), sqrt(2)); e as a double */
    FD_INLINE void fd_v_bits(fd_v x, fd_v* m, fd_v* e) {
        const fd_vl bits = (fd_vl) x;
        fd_vl ex = (bits >> 52) - 1023;
        fd_v mm = (fd_v) ((bits & 0x000FFFFFFFFFFFFFLL) | 0x3FF0000000000000LL);
        const fd_vl big = mm > fd_set1(1.4142135623730951);
        mm = fd_select(big, mm * 0.5, mm);
        ex = ex - big;  /* big is -1 where true */
        *m = mm;
        *e = (fd_v) (ex + 0x4338000000000000LL) - 6755399441055744.0;  /* exact for |e| < 2**51 */
    }
    #if defined(__clang__) || __GNUC__ >= 12
    #define FD_SHUF(a, b, i0, i1, i2, i3, i4, i5, i6, i7) __builtin_shufflevector(a, b, i0, i1, i2, i3, i4, i5, i6, i7)
    #else
    #define FD_SHUF(a, b, i0, i1, i2, i3, i4, i5, i6, i7) __builtin_shuffle(a, b, (fd_vl) {i0, i1, i2, i3, i4, i5, i6, i7})
    #endif
    /* r[j][k] -> r[k][j]: three rounds of two-input shuffles (pairs, quads, halves) */
    FD_INLINE void fd_transpose8(fd_v* r) {
        const fd_v t0 = FD_SHUF(r[0], r[1], 0, 8, 2, 10, 4, 12, 6, 14), t1 = FD_SHUF(r[0], r[1], 1, 9, 3, 11, 5, 13, 7, 15);
        const fd_v t2 = FD_SHUF(r[2], r[3], 0, 8, 2, 10, 4, 12, 6, 14), t3 = FD_SHUF(r[2], r[3], 1, 9, 3, 11, 5, 13, 7, 15);
        const fd_v t4 = FD_SHUF(r[4], r[5], 0, 8, 2, 10, 4, 12, 6, 14), t5 = FD_SHUF(r[4], r[5], 1, 9, 3, 11, 5, 13, 7, 15);
        const fd_v t6 = FD_SHUF(r[6], r[7], 0, 8, 2, 10, 4, 12, 6, 14), t7 = FD_SHUF(r[6], r[7], 1, 9, 3, 11, 5, 13, 7, 15);
        const fd_v u0 = FD_SHUF(t0, t2, 0, 1, 8, 9, 4, 5, 12, 13), u2 = FD_SHUF(t0, t2, 2, 3, 10, 11, 6, 7, 14, 15);
        const fd_v u1 = FD_SHUF(t1, t3, 0, 1, 8, 9, 4, 5, 12, 13), u3 = FD_SHUF(t1, t3, 2, 3, 10, 11, 6, 7, 14, 15);
        const fd_v u4 = FD_SHUF(t4, t6, 0, 1, 8, 9, 4, 5, 12, 13), u6 = FD_SHUF(t4, t6, 2, 3, 10, 11, 6, 7, 14, 15);
        const fd_v u5 = FD_SHUF(t5, t7, 0, 1, 8, 9, 4, 5, 12, 13), u7 = FD_SHUF(t5, t7, 2, 3, 10, 11, 6, 7, 14, 15);
        r[0] = FD_SHUF(u0, u4, 0, 1, 2, 3, 8, 9, 10, 11); r[4] = FD_SHUF(u0, u4, 4, 5, 6, 7, 12, 13, 14, 15);
        r[1] = FD_SHUF(u1, u5, 0, 1, 2, 3, 8, 9, 10, 11); r[5] = FD_SHUF(u1, u5, 4, 5, 6, 7, 12, 13, 14, 15);
        r[2] = FD_SHUF(u2, u6, 0, 1, 2, 3, 8, 9, 10, 11); r[6] = FD_SHUF(u2, u6, 4, 5, 6, 7, 12, 13, 14, 15);
        r[3] = FD_SHUF(u3, u7, 0, 1, 2, 3, 8, 9, 10, 11); r[7] = FD_SHUF(u3, u7, 4, 5, 6, 7, 12, 13, 14, 15);
    }
    #else
    /* 8 doubles as FD_PARTS native vectors of FD_NW doubles (named members, so that GCC
       keeps them in registers): two AVX2 registers, or four SSE2 ones. GCC lowers wider
       vectors poorly: 64-byte ones were 4 to 7 times slower in the AVX2 build. */
    #if defined(__AVX__)
    #define FD_NW 4
    #define FD_FOR_PARTS(X) X(p0, 0) X(p1, 1)
    #else
    #define FD_NW 2
    #define FD_FOR_PARTS(X) X(p0, 0) X(p1, 1) X(p2, 2) X(p3, 3)
    #endif
    #define FD_PARTS (FD_W / FD_NW)
    typedef double fd_n __attribute__((vector_size(FD_NW * 8)));
    typedef long long fd_nl __attribute__((vector_size(FD_NW * 8)));
    #define FD_DECL(m, q) fd_n m;
    typedef struct { FD_FOR_PARTS(FD_DECL) } fd_v;
    FD_INLINE fd_n fd_nset1(double a) { fd_n v; int j; for (j = 0; j < FD_NW; j++) v[j] = a; return v; }
    FD_INLINE fd_n fd_nselect(fd_nl mask, fd_n a, fd_n b) { return (fd_n) ((mask & (fd_nl) a) | (~mask & (fd_nl) b)); }
    #define FD_LOAD_M(m, q) memcpy(&v.m, p + (q) * FD_NW, sizeof(fd_n));
    #define FD_STORE_M(m, q) memcpy(p + (q) * FD_NW, &v.m, sizeof(fd_n));
    FD_INLINE fd_v fd_load(const double* p) { fd_v v; FD_FOR_PARTS(FD_LOAD_M) return v; }
    FD_INLINE void fd_store(double* p, fd_v v) { FD_FOR_PARTS(FD_STORE_M) }
    #define FD_SET_M(m, q) v.m = h;
    FD_INLINE fd_v fd_set1(double a) { const fd_n h = fd_nset1(a); fd_v v; FD_FOR_PARTS(FD_SET_M) return v; }
    #define FD_ADD_M(m, q) a.m = a.m + b.m;
    #define FD_SUB_M(m, q) a.m = a.m - b.m;
    #define FD_MUL_M(m, q) a.m = a.m * b.m;
    #define FD_DIV_M(m, q) a.m = a.m / b.m;
    #define FD_MADD_M(m, q) c.m = a.m * b.m + c.m;
    #define FD_MAX_M(m, q) a.m = fd_nselect(a.m > b.m, a.m, b.m);
    FD_INLINE fd_v fd_add(fd_v a, fd_v b) { FD_FOR_PARTS(FD_ADD_M) return a; }
    FD_INLINE fd_v fd_sub(fd_v a, fd_v b) { FD_FOR_PARTS(FD_SUB_M) return a; }
    FD_INLINE fd_v fd_mul(fd_v a, fd_v b) { FD_FOR_PARTS(FD_MUL_M) return a; }
    FD_INLINE fd_v fd_div(fd_v a, fd_v b) { FD_FOR_PARTS(FD_DIV_M) return a; }
    FD_INLINE fd_v fd_madd(fd_v a, fd_v b, fd_v c) { FD_FOR_PARTS(FD_MADD_M) return c; }
    FD_INLINE fd_v fd_max(fd_v a, fd_v b) { FD_FOR_PARTS(FD_MAX_M) return a; }
    FD_INLINE double fd_lane(fd_v a, int j) { double t[FD_W]; fd_store(t, a); return t[j]; }
    #define FD_SCALE_M(m, q) r.m = (fd_n) (((fd_nl) r.m + 1023) << 52);
    FD_INLINE fd_v fd_scale_bits(fd_v r) { FD_FOR_PARTS(FD_SCALE_M) return r; }
    #define FD_ZNI_M(m, q) a.m = fd_nselect(a.m == fd_nset1(-HUGE_VAL), fd_nset1(0.0), a.m);
    #define FD_KNZ_M(m, q) a.m = fd_nselect(w.m != fd_nset1(0.0), a.m, fd_nset1(0.0));
    #define FD_KPOS_M(m, q) a.m = fd_nselect(w.m > fd_nset1(0.0), a.m, fd_nset1(0.0));
    #define FD_LZ_M(m, q) a.m = fd_nselect(x.m == fd_nset1(0.0), fd_nset1(-HUGE_VAL), a.m);
    FD_INLINE fd_v fd_zero_where_neg_inf(fd_v a) { FD_FOR_PARTS(FD_ZNI_M) return a; }
    FD_INLINE fd_v fd_keep_where_nonzero(fd_v w, fd_v a) { FD_FOR_PARTS(FD_KNZ_M) return a; }
    FD_INLINE fd_v fd_keep_where_positive(fd_v w, fd_v a) { FD_FOR_PARTS(FD_KPOS_M) return a; }
    FD_INLINE fd_v fd_log_zero(fd_v x, fd_v a) { FD_FOR_PARTS(FD_LZ_M) return a; }
    FD_INLINE void fd_n_bits(fd_n x, fd_n* m, fd_n* e) {
        const fd_nl bits = (fd_nl) x;
        fd_nl ex = (bits >> 52) - 1023;
        fd_n mm = (fd_n) ((bits & 0x000FFFFFFFFFFFFFLL) | 0x3FF0000000000000LL);
        const fd_nl big = mm > fd_nset1(1.4142135623730951);
        mm = fd_nselect(big, mm * 0.5, mm);
        ex = ex - big;  /* big is -1 where true */
        *m = mm;
        *e = (fd_n) (ex + 0x4338000000000000LL) - 6755399441055744.0;  /* exact for |e| < 2**51 */
    }
    #define FD_BITS_M(mb, q) fd_n_bits(x.mb, &m->mb, &e->mb);
    FD_INLINE void fd_v_bits(fd_v x, fd_v* m, fd_v* e) { FD_FOR_PARTS(FD_BITS_M) }
    #if FD_NW == 4
    #if defined(__clang__) || __GNUC__ >= 12
    #define FD_SHUFN(a, b, i0, i1, i2, i3) __builtin_shufflevector(a, b, i0, i1, i2, i3)
    #else
    #define FD_SHUFN(a, b, i0, i1, i2, i3) __builtin_shuffle(a, b, (fd_nl) {i0, i1, i2, i3})
    #endif
    /* the 4 x 4 transpose of a0 .. a3 into c[0 .. 3] */
    FD_INLINE void fd_transpose_n(fd_n a0, fd_n a1, fd_n a2, fd_n a3, fd_n* c) {
        const fd_n t0 = FD_SHUFN(a0, a1, 0, 4, 2, 6), t1 = FD_SHUFN(a0, a1, 1, 5, 3, 7);
        const fd_n t2 = FD_SHUFN(a2, a3, 0, 4, 2, 6), t3 = FD_SHUFN(a2, a3, 1, 5, 3, 7);
        c[0] = FD_SHUFN(t0, t2, 0, 1, 4, 5); c[2] = FD_SHUFN(t0, t2, 2, 3, 6, 7);
        c[1] = FD_SHUFN(t1, t3, 0, 1, 4, 5); c[3] = FD_SHUFN(t1, t3, 2, 3, 6, 7);
    }
    /* r[j][k] -> r[k][j] by 4 x 4 blocks: [A B; C D] -> [A' C'; B' D'] */
    FD_INLINE void fd_transpose8(fd_v* r) {
        fd_n a[4], b[4], c[4], d[4];
        int j;
        fd_transpose_n(r[0].p0, r[1].p0, r[2].p0, r[3].p0, a);
        fd_transpose_n(r[0].p1, r[1].p1, r[2].p1, r[3].p1, b);
        fd_transpose_n(r[4].p0, r[5].p0, r[6].p0, r[7].p0, c);
        fd_transpose_n(r[4].p1, r[5].p1, r[6].p1, r[7].p1, d);
        for (j = 0; j < 4; j++) { r[j].p0 = a[j]; r[j].p1 = c[j]; r[j + 4].p0 = b[j]; r[j + 4].p1 = d[j]; }
    }
    #else
    #if defined(__clang__) || __GNUC__ >= 12
    #define FD_SHUFN(a, b, i0, i1) __builtin_shufflevector(a, b, i0, i1)
    #else
    #define FD_SHUFN(a, b, i0, i1) __builtin_shuffle(a, b, (fd_nl) {i0, i1})
    #endif
    /* r[j][k] -> r[k][j] through memory (SSE2 has 16 registers for the 32 parts) */
    FD_INLINE void fd_transpose8(fd_v* r) {
        double t[FD_W * FD_W], u[FD_W * FD_W];
        int j, k;
        for (j = 0; j < FD_W; j++) fd_store(t + j * FD_W, r[j]);
        for (j = 0; j < FD_W; j++) for (k = 0; k < FD_W; k++) u[k * FD_W + j] = t[j * FD_W + k];
        for (k = 0; k < FD_W; k++) r[k] = fd_load(u + k * FD_W);
    }
    #endif
    #endif
    #else
    #define FD_INLINE static __inline
    #define FD_PHASE static
    typedef struct { double v[FD_W]; } fd_v;
    FD_INLINE fd_v fd_load(const double* p) { fd_v r; memcpy(r.v, p, sizeof r.v); return r; }
    FD_INLINE void fd_store(double* p, fd_v a) { memcpy(p, a.v, sizeof a.v); }
    FD_INLINE fd_v fd_set1(double a) { fd_v r; int j; for (j = 0; j < FD_W; j++) r.v[j] = a; return r; }
    FD_INLINE fd_v fd_add(fd_v a, fd_v b) { int j; for (j = 0; j < FD_W; j++) a.v[j] += b.v[j]; return a; }
    FD_INLINE fd_v fd_sub(fd_v a, fd_v b) { int j; for (j = 0; j < FD_W; j++) a.v[j] -= b.v[j]; return a; }
    FD_INLINE fd_v fd_mul(fd_v a, fd_v b) { int j; for (j = 0; j < FD_W; j++) a.v[j] *= b.v[j]; return a; }
    FD_INLINE fd_v fd_madd(fd_v a, fd_v b, fd_v c) {
        int j; for (j = 0; j < FD_W; j++) c.v[j] += a.v[j] * b.v[j]; return c;
    }
    FD_INLINE fd_v fd_max(fd_v a, fd_v b) {
        int j; for (j = 0; j < FD_W; j++) a.v[j] = a.v[j] > b.v[j] ? a.v[j] : b.v[j]; return a;
    }
    FD_INLINE double fd_lane(fd_v a, int j) { return a.v[j]; }
    FD_INLINE fd_v fd_scale_bits(fd_v rounded) {
        int j;
        for (j = 0; j < FD_W; j++) {
            unsigned long long u;
            memcpy(&u, &rounded.v[j], sizeof u);
            u = (u + 1023) << 52;
            memcpy(&rounded.v[j], &u, sizeof u);
        }
        return rounded;
    }
    FD_INLINE fd_v fd_div(fd_v a, fd_v b) { int j; for (j = 0; j < FD_W; j++) a.v[j] /= b.v[j]; return a; }
    FD_INLINE fd_v fd_zero_where_neg_inf(fd_v a) {
        int j; for (j = 0; j < FD_W; j++) if (a.v[j] == -HUGE_VAL) a.v[j] = 0.0; return a;
    }
    FD_INLINE fd_v fd_keep_where_nonzero(fd_v w, fd_v a) {
        int j; for (j = 0; j < FD_W; j++) if (!(w.v[j] != 0.0)) a.v[j] = 0.0; return a;
    }
    FD_INLINE fd_v fd_keep_where_positive(fd_v w, fd_v a) {
        int j; for (j = 0; j < FD_W; j++) if (!(w.v[j] > 0.0)) a.v[j] = 0.0; return a;
    }
    FD_INLINE fd_v fd_log_zero(fd_v x, fd_v a) {
        int j; for (j = 0; j < FD_W; j++) if (x.v[j] == 0.0) a.v[j] = -HUGE_VAL; return a;
    }
    FD_INLINE void fd_v_bits(fd_v x, fd_v* m, fd_v* e) {
        int j;
        for (j = 0; j < FD_W; j++) {
            int ex;
            double mm = frexp(x.v[j], &ex) * 2.0;  /* [1, 2) */
            ex -= 1;
            if (mm > 1.4142135623730951) { mm *= 0.5; ex += 1; }
            m->v[j] = mm;
            e->v[j] = (double) ex;
        }
    }
    FD_INLINE void fd_transpose8(fd_v* r) {
        fd_v t[FD_W];
        int j, k;
        for (j = 0; j < FD_W; j++) for (k = 0; k < FD_W; k++) t[k].v[j] = r[j].v[k];
        for (k = 0; k < FD_W; k++) r[k] = t[k];
    }
    #endif

    FD_INLINE double fd_hmax(fd_v a) {
        const double m01 = fd_lane(a, 0) > fd_lane(a, 1) ? fd_lane(a, 0) : fd_lane(a, 1);
        const double m23 = fd_lane(a, 2) > fd_lane(a, 3) ? fd_lane(a, 2) : fd_lane(a, 3);
        const double m45 = fd_lane(a, 4) > fd_lane(a, 5) ? fd_lane(a, 4) : fd_lane(a, 5);
        const double m67 = fd_lane(a, 6) > fd_lane(a, 7) ? fd_lane(a, 6) : fd_lane(a, 7);
        const double lo = m01 > m23 ? m01 : m23, hi = m45 > m67 ? m45 : m67;
        return lo > hi ? lo : hi;
    }

    FD_INLINE double fd_hsum(fd_v a) {
        return ((fd_lane(a, 0) + fd_lane(a, 1)) + (fd_lane(a, 2) + fd_lane(a, 3)))
             + ((fd_lane(a, 4) + fd_lane(a, 5)) + (fd_lane(a, 6) + fd_lane(a, 7)));
    }

    /* log(x) per lane for x >= 0 (-inf at 0), x finite: x = 2**e m with m in
       [sqrt(1/2), sqrt(2)), log m = 2 atanh((m - 1) / (m + 1)) to the f**19 term (relative
       error below 1e-16; |f| <= 0.1716); subnormal x are not reduced (never used here:
       the sums of the softmax are 0 or >= 1). */
    FD_INLINE fd_v fd_log_nonneg(fd_v x) {
        const fd_v one = fd_set1(1.0);
        fd_v m, f, f2, poly, e;
        fd_v_bits(x, &m, &e);
        f = fd_div(fd_sub(m, one), fd_add(m, one));
        f2 = fd_mul(f, f);
        poly = fd_set1(1.0 / 19.0);
        poly = fd_madd(poly, f2, fd_set1(1.0 / 17.0));
        poly = fd_madd(poly, f2, fd_set1(1.0 / 15.0));
        poly = fd_madd(poly, f2, fd_set1(1.0 / 13.0));
        poly = fd_madd(poly, f2, fd_set1(1.0 / 11.0));
        poly = fd_madd(poly, f2, fd_set1(1.0 / 9.0));
        poly = fd_madd(poly, f2, fd_set1(1.0 / 7.0));
        poly = fd_madd(poly, f2, fd_set1(1.0 / 5.0));
        poly = fd_madd(poly, f2, fd_set1(1.0 / 3.0));
        poly = fd_mul(fd_mul(poly, f2), f);           /* f**3 (1/3 + ...) */
        poly = fd_add(fd_add(f, f), fd_add(poly, poly));  /* 2 f + 2 f**3 (...) */
        /* e ln2 (hi + lo: e ln2_hi exact for |e| < 2**11) */
        return fd_log_zero(x, fd_add(fd_mul(e, fd_set1(0.6931471803691238)), fd_madd(e, fd_set1(1.9082149292705877e-10), poly)));
    }

    /* exp(x) for x <= 0 (including -inf), per lane: the Gaussian kernels' _exp_nonpos
       (Cody-Waite reduction, degree-13 Taylor polynomial, 2**n from the bits of the
       rounding constant); about 2 ulp; exactly 0 from FD_EXP_MIN down, where exp(x) is
       subnormal (each vector making one would cost an Intel core a microcode assist). */
    #define FD_EXP_MIN (-708.39)
    FD_INLINE fd_v fd_exp_nonpos(fd_v x) {
        const fd_v shifter = fd_set1(6755399441055744.0);  /* 1.5 * 2**52 */
        const fd_v above_min = fd_sub(x, fd_set1(FD_EXP_MIN));
        fd_v rounded, n, r, p;
        x = fd_max(x, fd_set1(FD_EXP_MIN));
        rounded = fd_madd(x, fd_set1(1.4426950408889634), shifter);
        n = fd_sub(rounded, shifter);
        r = fd_sub(fd_sub(x, fd_mul(n, fd_set1(0.6931471803691238))), fd_mul(n, fd_set1(1.9082149292705877e-10)));
        p = fd_set1(1.0 / 6227020800.0);
        p = fd_madd(p, r, fd_set1(1.0 / 479001600.0));
        p = fd_madd(p, r, fd_set1(1.0 / 39916800.0));
        p = fd_madd(p, r, fd_set1(1.0 / 3628800.0));
        p = fd_madd(p, r, fd_set1(1.0 / 362880.0));
        p = fd_madd(p, r, fd_set1(1.0 / 40320.0));
        p = fd_madd(p, r, fd_set1(1.0 / 5040.0));
        p = fd_madd(p, r, fd_set1(1.0 / 720.0));
        p = fd_madd(p, r, fd_set1(1.0 / 120.0));
        p = fd_madd(p, r, fd_set1(1.0 / 24.0));
        p = fd_madd(p, r, fd_set1(1.0 / 6.0));
        p = fd_madd(p, r, fd_set1(0.5));
        p = fd_madd(p, r, fd_set1(1.0));
        p = fd_madd(p, r, fd_set1(1.0));
        return fd_keep_where_positive(above_min, fd_mul(p, fd_scale_bits(rounded)));
    }

    /* log(x!) for x >= FD_LOGFACT_SIZE: Stirling's series of log Gamma(x + 1), whose
       next term (1 / (1680 z**7)) is below 1e-23 there. */
    static double fd_logfact_large(double x) {
        const double z = x + 1.0, iz = 1.0 / z, iz2 = iz * iz;
        return (z - 0.5) * log(z) - z + 0.91893853320467274178
               + iz * (1.0 / 12.0 - iz2 * (1.0 / 360.0 - iz2 * (1.0 / 1260.0)));
    }

    typedef struct {
        Py_ssize_t n_samples, n_features, n_components, kp, block_size, chunk;
        int dist;                    /* FD_BERNOULLI, FD_POISSON, FD_CATEGORICAL */
        int f32;                     /* X is float32 */
        int direct_counts;           /* categorical: counts go straight to the slot (large tables) */
        const void* X;               /* (N, D) */
        const double* cst;           /* (KP,) see the module docstring; -inf in the padding */
        const double* coef_t;        /* linear (D, KP) */
        const double* offset_t;      /* linear (D, KP) */
        const double* logfact;       /* poisson (FD_LOGFACT_SIZE,) log(x!) */
        const double* table;         /* categorical (D, C1, KP), row C1 - 1 zeros */
        const double* n_cat;         /* categorical (D,) n_categories as doubles */
        Py_ssize_t c1;               /* categorical: max n_categories + 1 */
        const double* sample_weight; /* (N,) or NULL */
        double* out;                 /* log_prob (N, K); NULL for the statistics */
    } fd_problem;

    typedef struct {
        void* base;
        double* x0;      /* (chunk, D) the chunk in float64, missing entries 0 */
        double* lp;      /* (chunk, KP) log-probs, then weighted responsibilities */
        double* logh;    /* (chunk,) sum_d log h(x_d) (poisson) */
        double* w;       /* (chunk,) the rows' weights, 0 for a row with nothing observed */
        double* tot;     /* (KP,) the chunk's responsibility mass */
        double* group;   /* (KP, 8) the softmax's transposed group of 8 rows */
        double* part;    /* linear: (D, KP) mass of the rows missing d; categorical: 2 (D, C1, KP) counts */
        int* idx;        /* linear: features of the missing entries, row by row; categorical: (chunk, D)
                            offsets (d C1 + code) KP into the table */
        int* row_start;  /* linear (chunk + 1,): row i's missing entries are idx[row_start[i]:row_start[i+1]];
                            categorical: the rows' numbers of missing entries */
        double* tmp;     /* poisson (chunk, D) log(x!) per entry */
        unsigned char* missing;  /* linear (chunk, D): 1 where missing */
        double* n_cat_rep;  /* categorical (chunk, D): n_categories[d] per entry */
        int* base_rep;   /* categorical (chunk, D): d C1 KP per entry */
        double* lpt;     /* bernoulli bit path (G4, 16, KP): sum of coef_t over the nibble's set bits */
        double* st;      /* bernoulli bit path (G4, 16, KP): the slot's mass per nibble value */
        unsigned char* codes;  /* bernoulli bit path (chunk, G8P): bit t of [i, g]: x[i, 8 g + t] == 1 (G8P:
                                  G8 rounded up to a multiple of 8, the padding zeros) */
        int* off;        /* bernoulli bit path (chunk, G4P = 2 G8P): (g 16 + nibble g of row i) KP */
    } fd_scratch;

    /* Per-thread scratch, its buffers 64-byte aligned (and padded at both ends against
       sharing a cache line with another thread's); NULL when allocation fails. */
    static fd_scratch* fd_scratch_new(const fd_problem* p) {
        const Py_ssize_t D = p->n_features, KP = p->kp, CH = p->chunk;
        const int categorical = p->dist == FD_CATEGORICAL;
        const Py_ssize_t part = categorical ? (p->direct_counts ? 0 : 2 * D * p->c1 * KP) : D * KP;
        Py_ssize_t sizes[13], n_doubles = 0, j, i, d;
        double* at[13];
        const Py_ssize_t G8P = (D + 63) / 64 * 8;
    #if defined(FD_BITS)
        const int bits = FD_USE_BITS(p);
    #else
        const int bits = 0;
    #endif
        double* cursor;
        fd_scratch* s = (fd_scratch*) malloc(sizeof(fd_scratch));
        if (s == NULL) return NULL;
        sizes[0] = categorical ? 0 : CH * D;                 /* x0 */
        sizes[1] = CH * KP;                                  /* lp */
        sizes[2] = CH;                                       /* logh */
        sizes[3] = CH;                                       /* w */
        sizes[4] = KP;                                       /* tot */
        sizes[5] = KP * FD_W;                                /* group */
        sizes[6] = part;                                     /* part */
        sizes[7] = p->dist == FD_POISSON ? CH * D : 0;       /* tmp */
        sizes[8] = categorical ? CH * D : 0;                 /* n_cat_rep */
        sizes[9] = categorical ? 0 : (CH * D + 7) / 8;       /* missing (bytes) */
        sizes[10] = bits ? 2 * G8P * 16 * KP : 0;            /* lpt */
        sizes[11] = bits ? 2 * G8P * 16 * KP : 0;            /* st */
        sizes[12] = bits ? (CH * G8P + 7) / 8 + CH * G8P : 0;  /* codes (bytes), off (2 G8P ints per row) */
        for (j = 0; j < 13; j++) n_doubles += (sizes[j] + 7) / 8 * 8;
        n_doubles += (CH * D * (categorical ? 2 : 1) + 8 + CH + 1 + 1) / 2 + 8;  /* the ints */
        s->base = malloc(n_doubles * sizeof(double) + 3 * 64);
        if (s->base == NULL) { free(s); return NULL; }
        cursor = (double*) (((size_t) s->base + 127) & ~(size_t) 63);
        for (j = 0; j < 13; j++) { at[j] = cursor; cursor += (sizes[j] + 7) / 8 * 8; }
        s->x0 = at[0]; s->lp = at[1]; s->logh = at[2]; s->w = at[3]; s->tot = at[4]; s->group = at[5];
        s->part = at[6]; s->tmp = at[7]; s->n_cat_rep = at[8]; s->missing = (unsigned char*) at[9];
        s->lpt = at[10]; s->st = at[11]; s->codes = (unsigned char*) at[12];
        s->off = (int*) (at[12] + (CH * G8P + 7) / 8);
        if (bits) {  /* lpt[g, c] = sum of coef_t[4 g + b] over the set bits b of c, in order of b */
            Py_ssize_t g, kv;
            int c, b;
            for (g = 0; g < 2 * G8P; g++)
                for (c = 0; c < 16; c++)
                    for (kv = 0; kv < KP; kv++) {
                        double t = 0.0;
                        for (b = 0; b < 4; b++)
                            if ((c >> b) & 1 && 4 * g + b < D) t += p->coef_t[(4 * g + b) * KP + kv];
                        s->lpt[(g * 16 + c) * KP + kv] = t;
                    }
        }
        s->idx = (int*) cursor;
        s->base_rep = s->idx + CH * D + 8;  /* idx: 8 of slack (fd_missing_list) */
        s->row_start = s->base_rep + (categorical ? CH * D : 0);
        if (categorical)
            for (i = 0; i < CH; i++)
                for (d = 0; d < D; d++) {
                    s->n_cat_rep[i * D + d] = p->n_cat[d];
                    s->base_rep[i * D + d] = (int) (d * p->c1 * KP);
                }
        return s;
    }

    static void fd_scratch_free(fd_scratch* s) {
        if (s != NULL) { free(s->base); free(s); }
    }

    /* Ask for the cache lines of [p, p + n_bytes) ahead of their use. */
    static void fd_prefetch(const char* p, Py_ssize_t n_bytes) {
    #if defined(__GNUC__) || defined(__clang__)
        Py_ssize_t b;
        for (b = 0; b < n_bytes; b += 64) __builtin_prefetch(p + b, 0, 2);  /* to L2 */
    #else
        (void) p; (void) n_bytes;
    #endif
    }

    /* ---- scan: X -> x0 in float64 with the domain check ------------------------------ */
    #define FD_INTEGRAL(v) (((v) >= FD_TWO52) | (((v) + FD_TWO52) - FD_TWO52 == (v)))
    #define FD_BAD_BERNOULLI(v) (((v) != 0.0) & ((v) != 1.0))
    #define FD_BAD_POISSON(v) (!(((v) >= 0.0) & ((v) < HUGE_VAL) & FD_INTEGRAL(v)))

    /* m values from xs to x0, missing ones 0 (flat: the linear checks do not depend on the
       feature) */
    #define FD_SCAN_FLAT(T, BAD) do {                                                          \
            const T* xs = (const T*) p->X + row0 * D;                                          \
            for (j = 0; j < m; j++) {                                                          \
                const double v = xs[j];                                                        \
                x0[j] = v == v ? v : 0.0;                                                      \
                mb[j] = (unsigned char) (v != v);                                              \
                nan_any |= v != v;                                                             \
                bad_any |= (v == v) & BAD(v);                                                  \
            }                                                                                  \
        } while (0)

    /* linear: the chunk's n rows from row0 into s->x0 (float64, missing entries 0) and
       s->missing (1 where missing); returns the flat index of its first entry outside the
       distribution's values, or -1; *has_nan: whether it has a missing entry. */
    FD_PHASE Py_ssize_t fd_scan(const fd_problem* p, Py_ssize_t row0, Py_ssize_t n, fd_scratch* s, int* has_nan) {
        const Py_ssize_t D = p->n_features, m = n * D;
        double* x0 = s->x0;
        unsigned char* mb = s->missing;
        Py_ssize_t j;
        int nan_any = 0, bad_any = 0;
        if (p->dist == FD_BERNOULLI) {
            if (p->f32) FD_SCAN_FLAT(float, FD_BAD_BERNOULLI); else FD_SCAN_FLAT(double, FD_BAD_BERNOULLI);
        } else {
            if (p->f32) FD_SCAN_FLAT(float, FD_BAD_POISSON); else FD_SCAN_FLAT(double, FD_BAD_POISSON);
        }
        *has_nan = nan_any;
        if (bad_any) {  /* the first, in row-major order (a missing entry is 0 in x0: valid) */
            for (j = 0; j < m; j++) {
                const double v = x0[j];
                int bad;
                if (p->dist == FD_BERNOULLI) bad = FD_BAD_BERNOULLI(v);
                else bad = FD_BAD_POISSON(v);
                if (bad) return row0 * D + j;
            }
        }
        return -1;
    }

    /* s->w[i]: row i's sample weight (1 without), 0 when none of its D features is
       observed (n_missing[i] == D); n_missing NULL: none is missing */
    FD_PHASE void fd_row_weights(const fd_problem* p, Py_ssize_t row0, Py_ssize_t n, const int* n_missing,
                               fd_scratch* s) {
        Py_ssize_t i;
        const double* sw = p->sample_weight;
        for (i = 0; i < n; i++) {
            const double wi = sw == NULL ? 1.0 : sw[row0 + i];
            s->w[i] = (n_missing != NULL && n_missing[i] == p->n_features) ? 0.0 : wi;
        }
    }

    /* fd_set_bits[m][t]: the position of the t-th set bit of the byte m (t < fd_n_set[m]);
       filled once, at import (fd_init_tables) */
    static unsigned char fd_set_bits[256][8];
    static unsigned char fd_n_set[256];

    static void fd_init_tables(void) {
        int m, t;
        for (m = 0; m < 256; m++) {
            int c = 0;
            for (t = 0; t < 8; t++) fd_set_bits[m][t] = 0;
            for (t = 0; t < 8; t++)
                if (m & (1 << t)) fd_set_bits[m][c++] = (unsigned char) t;
            fd_n_set[m] = (unsigned char) c;
        }
    }

    /* linear, has_nan: the features of the chunk's missing entries into idx, row by row
       (row_start), from s->missing. Branch-free: the bytes (0 or 1) of 8 entries are
       packed into the bits of one byte by a multiplication, the 8 candidate features are
       written from fd_set_bits and the count advances by its number of set bits (idx has
       8 entries of slack). */
    FD_PHASE void fd_missing_list(const fd_problem* p, Py_ssize_t n, fd_scratch* s) {
        const Py_ssize_t D = p->n_features;
        Py_ssize_t i, d0;
        int nm = 0, t;
        int* idx = s->idx;
        for (i = 0; i < n; i++) {
            const unsigned char* b = s->missing + i * D;
            s->row_start[i] = nm;
            for (d0 = 0; d0 < D; d0 += 8) {
                unsigned long long w = 0;
                unsigned bits;
                unsigned char pos[8];  /* a local copy: idx cannot alias it */
                const unsigned char* q = b + d0;
                if (d0 + 8 <= D)  /* one 8-byte load, whatever the byte order */
                    w = (unsigned long long) q[0] | (unsigned long long) q[1] << 8 | (unsigned long long) q[2] << 16
                        | (unsigned long long) q[3] << 24 | (unsigned long long) q[4] << 32
                        | (unsigned long long) q[5] << 40 | (unsigned long long) q[6] << 48
                        | (unsigned long long) q[7] << 56;
                else
                    for (t = 0; t < D - d0; t++) w |= (unsigned long long) q[t] << (8 * t);
                bits = (unsigned) ((w * 0x0102040810204080ULL) >> 56);  /* bit t: byte t */
                memcpy(pos, fd_set_bits[bits], 8);
                for (t = 0; t < 8; t++) idx[nm + t] = (int) d0 + pos[t];
                nm += fd_n_set[bits];
            }
        }
        s->row_start[n] = nm;
    }

    /* linear: s->w from the missing lists (has_nan) */
    FD_PHASE void fd_linear_row_weights(const fd_problem* p, Py_ssize_t row0, Py_ssize_t n, int has_nan,
                                      fd_scratch* s) {
        Py_ssize_t i;
        const double* sw = p->sample_weight;
        for (i = 0; i < n; i++) {
            const double wi = sw == NULL ? 1.0 : sw[row0 + i];
            s->w[i] = (has_nan && s->row_start[i + 1] - s->row_start[i] == p->n_features) ? 0.0 : wi;
        }
    }

    /* poisson: s->logh[i] = -sum_d log(x_d!) (missing entries are 0 in x0: log 0! = 0).
       The table lookups are one flat loop (a gather: the index is clamped to the table),
       counts past the table are then replaced by Stirling's series; each row's sum is in
       a fixed order (8 lanes, then the tail). */
    FD_PHASE void fd_log_h(const fd_problem* p, Py_ssize_t n, fd_scratch* s) {
        const Py_ssize_t D = p->n_features, m = n * D;
        const double* lf = p->logfact;
        const double* x0 = s->x0;
        const double top = (double) (FD_LOGFACT_SIZE - 1);
        double* t = s->tmp;
        Py_ssize_t i, d, j;
        int large = 0;
        for (j = 0; j < m; j++) {
            const double v = x0[j];
            large |= v > top;
            t[j] = lf[(int) (v < top ? v : top)];
        }
        if (large)
            for (j = 0; j < m; j++)
                if (x0[j] > top) t[j] = fd_logfact_large(x0[j]);
        for (i = 0; i < n; i++) {
            const double* r = t + i * D;
            fd_v acc = fd_set1(0.0);
            double tail = 0.0;
            for (d = 0; d + FD_W <= D; d += FD_W) acc = fd_add(acc, fd_load(r + d));
            for (; d < D; d++) tail += r[d];
            s->logh[i] = -(fd_hsum(acc) + tail);
        }
    }

    /* linear: lp (n, KP) = cst + x0 @ coef_t, minus offset_t[d] for each missing (i, d);
       every row is cst plus its terms in the order of d */
    FD_PHASE void fd_linear_lp(const fd_problem* p, Py_ssize_t n, int has_nan, fd_scratch* s) {
        const Py_ssize_t D = p->n_features, KP = p->kp;
        const double* x0 = s->x0;
        double* lp = s->lp;
        Py_ssize_t kv, i, d;
        for (kv = 0; kv < KP; kv += FD_W) {
            const fd_v c0 = fd_load(p->cst + kv);
            const double* ct = p->coef_t + kv;
            for (i = 0; i + 4 <= n; i += 4) {
                const double *x_0 = x0 + i * D, *x_1 = x_0 + D, *x_2 = x_1 + D, *x_3 = x_2 + D;
                fd_v a0 = c0, a1 = c0, a2 = c0, a3 = c0;
                for (d = 0; d < D; d++) {
                    const fd_v c = fd_load(ct + d * KP);
                    a0 = fd_madd(fd_set1(x_0[d]), c, a0);
                    a1 = fd_madd(fd_set1(x_1[d]), c, a1);
                    a2 = fd_madd(fd_set1(x_2[d]), c, a2);
                    a3 = fd_madd(fd_set1(x_3[d]), c, a3);
                }
                fd_store(lp + i * KP + kv, a0);
                fd_store(lp + (i + 1) * KP + kv, a1);
                fd_store(lp + (i + 2) * KP + kv, a2);
                fd_store(lp + (i + 3) * KP + kv, a3);
            }
            for (; i < n; i++) {
                const double* x = x0 + i * D;
                fd_v a = c0;
                for (d = 0; d < D; d++) a = fd_madd(fd_set1(x[d]), fd_load(ct + d * KP), a);
                fd_store(lp + i * KP + kv, a);
            }
        }
        if (has_nan) {  /* each row's vector stays in a register while its entries are subtracted */
            for (i = 0; i < n; i++) {
                const int e0 = s->row_start[i], e1 = s->row_start[i + 1];
                int e;
                if (e0 == e1) continue;
                for (kv = 0; kv < KP; kv += FD_W) {
                    const double* off = p->offset_t + kv;
                    fd_v a = fd_load(lp + i * KP + kv);
                    for (e = e0; e < e1; e++) a = fd_sub(a, fd_load(off + (Py_ssize_t) s->idx[e] * KP));
                    fd_store(lp + i * KP + kv, a);
                }
            }
        }
    }

    #define FD_SCAN_CAT(T) do {                                                                \
            const T* xs = (const T*) p->X + row0 * D;                                          \
            for (j = 0; j < m; j++) {                                                          \
                const double v = xs[j];                                                        \
                const int ok = (v >= 0.0) & (v < nc[j]) & FD_INTEGRAL(v);  /* 0 for NaN */    \
                const int missing = v != v;                                                    \
                nan_any |= missing;                                                            \
                bad_any |= !(ok | missing);                                                    \
                o[j] = base[j] + (int) (ok ? v : dummy) * (int) KP;  /* in the table always */ \
            }                                                                                  \
            if (bad_any)                                                                       \
                for (j = 0; j < m; j++) {                                                      \
                    const double v = xs[j];                                                    \
                    if (v == v && !((v >= 0.0) & (v < nc[j]) & FD_INTEGRAL(v))) return row0 * D + j; \
                }                                                                              \
        } while (0)

    /* categorical: the chunk's n rows from row0 straight into table offsets, s->idx[i, d]
       = (d C1 + x_id) KP, the dummy category C1 - 1 where x_id is missing (and, never
       used, where it is invalid); one flat pass (s->n_cat_rep, s->base_rep: n_categories
       and d C1 KP per entry of a chunk). Returns the flat index of the first invalid
       entry or -1; *has_nan as fd_scan; n_missing (n,): the rows' missing entries. */
    FD_PHASE Py_ssize_t fd_scan_cat(const fd_problem* p, Py_ssize_t row0, Py_ssize_t n, fd_scratch* s,
                                    int* has_nan, int* n_missing) {
        const Py_ssize_t D = p->n_features, m = n * D, KP = p->kp;
        const double dummy = (double) (p->c1 - 1);
        const double* nc = s->n_cat_rep;
        const int* base = s->base_rep;
        int* o = s->idx;
        Py_ssize_t i, d, j;
        int nan_any = 0, bad_any = 0;
        if (p->f32) FD_SCAN_CAT(float); else FD_SCAN_CAT(double);
        *has_nan = nan_any;
        if (nan_any) {
            const int dummy_off = (int) ((p->c1 - 1) * KP);
            for (i = 0; i < n; i++) {
                int nm = 0;
                for (d = 0; d < D; d++) nm += o[i * D + d] - base[i * D + d] == dummy_off;
                n_missing[i] = nm;
            }
        }
        return -1;
    }

    /* categorical: lp (n, KP) = cst + sum_d table[d, x_d] (in the order of d) */
    FD_PHASE void fd_cat_lp(const fd_problem* p, Py_ssize_t n, fd_scratch* s) {
        const Py_ssize_t D = p->n_features, KP = p->kp;
        const double* tab = p->table;
        double* lp = s->lp;
        Py_ssize_t kv, i, d;
        for (kv = 0; kv < KP; kv += FD_W) {
            const fd_v c0 = fd_load(p->cst + kv);
            const double* t = tab + kv;
            for (i = 0; i + 4 <= n; i += 4) {
                const int *o0 = s->idx + i * D, *o1 = o0 + D, *o2 = o1 + D, *o3 = o2 + D;
                fd_v a0 = c0, a1 = c0, a2 = c0, a3 = c0;
                for (d = 0; d < D; d++) {
                    a0 = fd_add(a0, fd_load(t + o0[d]));
                    a1 = fd_add(a1, fd_load(t + o1[d]));
                    a2 = fd_add(a2, fd_load(t + o2[d]));
                    a3 = fd_add(a3, fd_load(t + o3[d]));
                }
                fd_store(lp + i * KP + kv, a0);
                fd_store(lp + (i + 1) * KP + kv, a1);
                fd_store(lp + (i + 2) * KP + kv, a2);
                fd_store(lp + (i + 3) * KP + kv, a3);
            }
            for (; i < n; i++) {
                const int* o = s->idx + i * D;
                fd_v a = c0;
                for (d = 0; d < D; d++) a = fd_add(a, fd_load(t + o[d]));
                fd_store(lp + i * KP + kv, a);
            }
        }
    }

    /* log_prob: out rows [row0, row0 + n) = lp (+ log h), 0 for a row with nothing observed */
    FD_PHASE void fd_write_log_prob(const fd_problem* p, Py_ssize_t row0, Py_ssize_t n, const fd_scratch* s) {
        const Py_ssize_t K = p->n_components, KP = p->kp;
        Py_ssize_t i, k;
        for (i = 0; i < n; i++) {
            double* o = p->out + (row0 + i) * K;
            const double* lp = s->lp + i * KP;
            const double h = p->dist == FD_POISSON ? s->logh[i] : 0.0;
            if (s->w[i] == 0.0) {
                for (k = 0; k < K; k++) o[k] = 0.0;
            } else {
                for (k = 0; k < K; k++) o[k] = lp[k] + h;
            }
        }
    }

    /* lp -> w_i r_ik in place (rows of weight 0: zeros); *loglik += sum_i w_i log p(x_i)
       and *n += sum_i w_i. Rows go 8 at a time, transposed (8 x 8 tiles) so that each
       vector holds one component of 8 rows: the max, exp, sum, log and scaling of a row
       then take no horizontal operation; the sums over rows are per lane, then the
       lanes. A row of weight 0 is computed and scaled by 0 (its log-probs are finite or
       -inf, never NaN), and its log-likelihood term is dropped. */
    FD_PHASE void fd_softmax(const fd_problem* p, Py_ssize_t n, fd_scratch* s, double* loglik, double* total_w) {
        const Py_ssize_t KP = p->kp;
        const int poisson = p->dist == FD_POISSON;
        double* T = s->group;
        fd_v ll = fd_set1(0.0), tw = fd_set1(0.0);
        Py_ssize_t i0, kv, k;
        int j, q;
        for (i0 = 0; i0 < n; i0 += FD_W) {
            const int nb = n - i0 < FD_W ? (int) (n - i0) : FD_W;
            double wb[FD_W], hb[FD_W];
            fd_v r[FD_W], m, sum, wv, lg, sc;
            for (j = 0; j < FD_W; j++) {
                wb[j] = j < nb ? s->w[i0 + j] : 0.0;
                hb[j] = (j < nb && poisson) ? s->logh[i0 + j] : 0.0;
            }
            for (kv = 0; kv < KP; kv += FD_W) {
                for (j = 0; j < FD_W; j++) r[j] = j < nb ? fd_load(s->lp + (i0 + j) * KP + kv) : fd_set1(0.0);
                fd_transpose8(r);
                for (q = 0; q < FD_W; q++) fd_store(T + (kv + q) * FD_W, r[q]);
            }
            m = fd_load(T);
            for (k = 1; k < KP; k++) m = fd_max(fd_load(T + k * FD_W), m);
            m = fd_zero_where_neg_inf(m);  /* impossible under every component: r = 0, log p = -inf */
            sum = fd_set1(0.0);
            for (k = 0; k < KP; k++) {
                const fd_v e = fd_exp_nonpos(fd_sub(fd_load(T + k * FD_W), m));
                fd_store(T + k * FD_W, e);
                sum = fd_add(sum, e);
            }
            wv = fd_load(wb);
            lg = fd_add(fd_add(fd_log_nonneg(sum), m), fd_load(hb));
            ll = fd_add(ll, fd_keep_where_nonzero(wv, fd_mul(wv, lg)));
            tw = fd_add(tw, wv);
            sc = fd_keep_where_positive(sum, fd_div(wv, sum));
            for (kv = 0; kv < KP; kv += FD_W) {
                for (q = 0; q < FD_W; q++) r[q] = fd_mul(fd_load(T + (kv + q) * FD_W), sc);
                fd_transpose8(r);
                for (j = 0; j < nb; j++) fd_store(s->lp + (i0 + j) * KP + kv, r[j]);
            }
        }
        *loglik += fd_hsum(ll);
        *total_w += fd_hsum(tw);
    }

    /* s->tot = sum_i wr[i] (in row order); nk += tot */
    static void fd_mass(const fd_problem* p, Py_ssize_t n, fd_scratch* s, double* nk) {
        const Py_ssize_t KP = p->kp;
        Py_ssize_t i, kv;
        for (kv = 0; kv < KP; kv += FD_W) {
            fd_v t = fd_set1(0.0);
            for (i = 0; i < n; i++) t = fd_add(t, fd_load(s->lp + i * KP + kv));
            fd_store(s->tot + kv, t);
            fd_store(nk + kv, fd_add(fd_load(nk + kv), t));
        }
    }

    /* features per tile of the sum_x accumulation: TD x FD_W doubles of accumulators in
       registers (AVX-512: 8 of its 32; AVX2: 8 of 16; SSE2: 8 of 16) */
    #if defined(__AVX512F__)
    #define FD_TILE 8
    #elif defined(__AVX__)
    #define FD_TILE 4
    #else
    #define FD_TILE 2
    #endif

    /* sx[t * KP] += sum_i x0[i, t] r_i for the TD features of a tile (TD a constant once
       inlined: the accumulators stay in registers) */
    FD_INLINE void fd_sum_x_tile(const double* x0, Py_ssize_t D, const double* wr, Py_ssize_t KP, Py_ssize_t n,
                                 const int TD, double* sx) {
        fd_v a[8];
        Py_ssize_t i;
        int t;
        for (t = 0; t < TD; t++) a[t] = fd_set1(0.0);
        for (i = 0; i < n; i++) {
            const fd_v r = fd_load(wr + i * KP);
            const double* x = x0 + i * D;
            for (t = 0; t < TD; t++) a[t] = fd_madd(fd_set1(x[t]), r, a[t]);
        }
        for (t = 0; t < TD; t++) fd_store(sx + t * KP, fd_add(fd_load(sx + t * KP), a[t]));
    }

    /* linear statistics of the chunk's w_i r_ik (s->lp): acc = [nk (KP), sum_x (D, KP), n_obs (D, KP)] */
    FD_PHASE void fd_linear_stats(const fd_problem* p, Py_ssize_t n, int has_nan, fd_scratch* s, double* acc) {
        const Py_ssize_t D = p->n_features, KP = p->kp;
        double* nk = acc;
        double* sum_x = acc + KP;
        double* n_obs = sum_x + D * KP;
        Py_ssize_t kv, d, i;
        fd_mass(p, n, s, nk);
        for (kv = 0; kv < KP; kv += FD_W) {
            const double* wr = s->lp + kv;
            double* sx = sum_x + kv;
            d = 0;
    #if FD_TILE == 8
            for (; d + 8 <= D; d += 8) fd_sum_x_tile(s->x0 + d, D, wr, KP, n, 8, sx + d * KP);
    #endif
    #if FD_TILE >= 4
            for (; d + 4 <= D; d += 4) fd_sum_x_tile(s->x0 + d, D, wr, KP, n, 4, sx + d * KP);
    #endif
            for (; d + 2 <= D; d += 2) fd_sum_x_tile(s->x0 + d, D, wr, KP, n, 2, sx + d * KP);
            for (; d < D; d++) fd_sum_x_tile(s->x0 + d, D, wr, KP, n, 1, sx + d * KP);
        }
        if (!has_nan) {
            for (d = 0; d < D; d++)
                for (kv = 0; kv < KP; kv += FD_W)
                    fd_store(n_obs + d * KP + kv, fd_add(fd_load(n_obs + d * KP + kv), fd_load(s->tot + kv)));
            return;
        }
        /* n_obs = tot - (mass of the rows missing d): the subtrahend sums a subset of the
           same terms in the same order, so it is exact at both ends and never negative */
        memset(s->part, 0, D * KP * sizeof(double));
        for (i = 0; i < n; i++) {
            const double* r = s->lp + i * KP;
            int e;
            for (e = s->row_start[i]; e < s->row_start[i + 1]; e++) {
                double* q = s->part + (Py_ssize_t) s->idx[e] * KP;
                for (kv = 0; kv < KP; kv += FD_W) fd_store(q + kv, fd_add(fd_load(q + kv), fd_load(r + kv)));
            }
        }
        for (d = 0; d < D; d++)
            for (kv = 0; kv < KP; kv += FD_W) {
                const Py_ssize_t at = d * KP + kv;
                fd_store(n_obs + at, fd_add(fd_load(n_obs + at), fd_sub(fd_load(s->tot + kv), fd_load(s->part + at))));
            }
    }

    /* categorical statistics: acc = [nk (KP), counts (D, C1, KP)]. Through partial
       tables, even rows in one and odd rows in the other (then added to the slot's row),
       so that consecutive rows of the same code do not wait on each other's store;
       direct_counts (large tables): straight into the slot's row. */
    FD_PHASE void fd_cat_stats(const fd_problem* p, Py_ssize_t n, fd_scratch* s, double* acc) {
        const Py_ssize_t D = p->n_features, KP = p->kp, size = D * p->c1 * KP;
        double* nk = acc;
        double* dst = acc + KP;
        double* even = p->direct_counts ? dst : s->part;
        double* odd = p->direct_counts ? dst : s->part + size;
        Py_ssize_t i, d, kv, j;
        fd_mass(p, n, s, nk);
        if (!p->direct_counts) memset(s->part, 0, 2 * size * sizeof(double));
        for (i = 0; i < n; i++) {
            const int* o = s->idx + i * D;
            const double* r = s->lp + i * KP;
            double* counts = (i & 1) ? odd : even;
            if (s->w[i] == 0.0) continue;  /* zeros */
            for (kv = 0; kv < KP; kv += FD_W) {
                const fd_v rv = fd_load(r + kv);
                double* c = counts + kv;
                for (d = 0; d < D; d++) fd_store(c + o[d], fd_add(fd_load(c + o[d]), rv));
            }
        }
        if (!p->direct_counts)
            for (j = 0; j < size; j += FD_W)
                fd_store(dst + j, fd_add(fd_load(dst + j), fd_add(fd_load(even + j), fd_load(odd + j))));
    }

    #if defined(FD_BITS)
    /* bernoulli: the chunk's rows into s->codes; 0 when every entry is 0 or 1, 1 when
       some entry is missing or invalid (then the chunk takes the general path, whose scan
       finds the first invalid entry) */
    FD_PHASE int fd_scan_bits(const fd_problem* p, Py_ssize_t row0, Py_ssize_t n, fd_scratch* s) {
        const Py_ssize_t D = p->n_features, G8P = (D + 63) / 64 * 8, full = D / 8;
        const __mmask8 tail = (__mmask8) ((1u << (D % 8)) - 1);
        const __m512d one = _mm512_set1_pd(1.0), zero = _mm512_setzero_pd();
        const __m512i kpv = _mm512_set1_epi32((int) p->kp);
        const __m512i lane16 = _mm512_setr_epi32(0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240);
        const __m128i low4 = _mm_set1_epi8(15);
        const int f32 = p->f32;
        unsigned odd = 0;  /* lanes neither 0 nor 1 (NaN included) */
        Py_ssize_t i, g, q;
        for (i = 0; i < n; i++) {
            const double* xd = (const double*) p->X + (row0 + i) * D;
            const float* xf = (const float*) p->X + (row0 + i) * D;
            int* off = s->off + i * 2 * G8P;
            if (row0 + i + FD_BITS_AHEAD < p->n_samples)  /* the row FD_BITS_AHEAD on, to L2 */
                fd_prefetch((const char*) p->X + (row0 + i + FD_BITS_AHEAD) * D * (f32 ? 4 : 8), D * (f32 ? 4 : 8));
            for (q = 0; q < G8P; q += 8) {  /* 8 bytes of codes (64 features) in a register */
                unsigned long long wd = 0;
                const Py_ssize_t gend = q + 8 < full ? q + 8 : full;
                __m128i v, lo, hi;
                __m512i o16;
                if (f32) {
                    for (g = q; g < gend; g++) {
                        const __m512d x = _mm512_cvtps_pd(_mm256_loadu_ps(xf + 8 * g));
                        const __mmask8 o = _mm512_cmp_pd_mask(x, one, _CMP_EQ_OQ);
                        const __mmask8 z = _mm512_cmp_pd_mask(x, zero, _CMP_EQ_OQ);
                        odd |= (unsigned) (unsigned char) ~(o | z);
                        wd |= (unsigned long long) (unsigned char) o << (8 * (g - q));
                    }
                } else {
                    for (g = q; g < gend; g++) {
                        const __m512d x = _mm512_loadu_pd(xd + 8 * g);
                        const __mmask8 o = _mm512_cmp_pd_mask(x, one, _CMP_EQ_OQ);
                        const __mmask8 z = _mm512_cmp_pd_mask(x, zero, _CMP_EQ_OQ);
                        odd |= (unsigned) (unsigned char) ~(o | z);
                        wd |= (unsigned long long) (unsigned char) o << (8 * (g - q));
                    }
                }
                if (tail && full >= q && full < q + 8) {  /* the last, partial group (masked load) */
                    const __m512d x = f32 ? _mm512_cvtps_pd(_mm256_maskz_loadu_ps(tail, xf + 8 * full))
                                          : _mm512_maskz_loadu_pd(tail, xd + 8 * full);
                    const __mmask8 o = _mm512_mask_cmp_pd_mask(tail, x, one, _CMP_EQ_OQ);
                    const __mmask8 z = _mm512_mask_cmp_pd_mask(tail, x, zero, _CMP_EQ_OQ);
                    odd |= (unsigned) (tail & (unsigned char) ~(o | z));
                    wd |= (unsigned long long) (unsigned char) o << (8 * (full - q));
                }
                /* the 16 nibbles into offsets (g 16 + nibble) KP */
                v = _mm_cvtsi64_si128((long long) wd);
                lo = _mm_and_si128(v, low4);
                hi = _mm_and_si128(_mm_srli_epi16(v, 4), low4);
                o16 = _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi));
                o16 = _mm512_add_epi32(o16, _mm512_add_epi32(lane16, _mm512_set1_epi32((int) (q * 32))));
                _mm512_storeu_si512((void*) (off + 2 * q), _mm512_mullo_epi32(o16, kpv));
            }
        }
        return odd != 0;
    }

    /* bernoulli bit path: lp (n, KP) = cst + (sum of the low nibbles' table vectors + sum
       of the high nibbles'), 4 rows at a time */
    FD_PHASE void fd_bits_lp(const fd_problem* p, Py_ssize_t n, fd_scratch* s) {
        const Py_ssize_t D = p->n_features, KP = p->kp, G4 = 2 * ((D + 7) / 8), G4P = 2 * ((D + 63) / 64 * 8);
        double* lp = s->lp;
        Py_ssize_t kv, i, g;
        for (kv = 0; kv < KP; kv += FD_W) {
            const fd_v c0 = fd_load(p->cst + kv);
            const double* lt = s->lpt + kv;
            for (i = 0; i + 4 <= n; i += 4) {
                const int *o0 = s->off + i * G4P, *o1 = o0 + G4P, *o2 = o1 + G4P, *o3 = o2 + G4P;
                fd_v a0 = fd_set1(0.0), a1 = a0, a2 = a0, a3 = a0, h0 = a0, h1 = a0, h2 = a0, h3 = a0;
                for (g = 0; g < G4; g += 2) {  /* G4 even */
                    a0 = fd_add(a0, fd_load(lt + o0[g])); h0 = fd_add(h0, fd_load(lt + o0[g + 1]));
                    a1 = fd_add(a1, fd_load(lt + o1[g])); h1 = fd_add(h1, fd_load(lt + o1[g + 1]));
                    a2 = fd_add(a2, fd_load(lt + o2[g])); h2 = fd_add(h2, fd_load(lt + o2[g + 1]));
                    a3 = fd_add(a3, fd_load(lt + o3[g])); h3 = fd_add(h3, fd_load(lt + o3[g + 1]));
                }
                fd_store(lp + i * KP + kv, fd_add(c0, fd_add(a0, h0)));
                fd_store(lp + (i + 1) * KP + kv, fd_add(c0, fd_add(a1, h1)));
                fd_store(lp + (i + 2) * KP + kv, fd_add(c0, fd_add(a2, h2)));
                fd_store(lp + (i + 3) * KP + kv, fd_add(c0, fd_add(a3, h3)));
            }
            for (; i < n; i++) {
                const int* o0 = s->off + i * G4P;
                fd_v a0 = fd_set1(0.0), h0 = a0;
                for (g = 0; g < G4; g += 2) {
                    a0 = fd_add(a0, fd_load(lt + o0[g])); h0 = fd_add(h0, fd_load(lt + o0[g + 1]));
                }
                fd_store(lp + i * KP + kv, fd_add(c0, fd_add(a0, h0)));
            }
        }
    }

    /* bernoulli bit path statistics of the chunk's w_i r_ik (s->lp): nk as the general
       path, and n_obs (every entry observed) unless lazy (see fd_slot); the mass per
       nibble value into s->st */
    FD_PHASE void fd_bits_stats(const fd_problem* p, Py_ssize_t n, fd_scratch* s, double* acc, int lazy) {
        const Py_ssize_t D = p->n_features, KP = p->kp, G4 = 2 * ((D + 7) / 8), G4P = 2 * ((D + 63) / 64 * 8);
        double* nk = acc;
        double* n_obs = acc + KP + D * KP;
        Py_ssize_t kv, d, i, g;
        fd_mass(p, n, s, nk);
        if (!lazy)
            for (d = 0; d < D; d++)
                for (kv = 0; kv < KP; kv += FD_W)
                    fd_store(n_obs + d * KP + kv, fd_add(fd_load(n_obs + d * KP + kv), fd_load(s->tot + kv)));
        for (kv = 0; kv < KP; kv += FD_W) {
            double* st = s->st + kv;
            for (i = 0; i < n; i++) {
                const fd_v r = fd_load(s->lp + i * KP + kv);
                const int* o = s->off + i * G4P;
                for (g = 0; g < G4; g++) fd_store(st + o[g], fd_add(fd_load(st + o[g]), r));
            }
        }
    }

    /* n_obs[d] = nk for every d (the slot's chunks so far all took the bit path) */
    static void fd_bits_n_obs(const fd_problem* p, double* acc) {
        const Py_ssize_t D = p->n_features, KP = p->kp;
        Py_ssize_t d;
        for (d = 0; d < D; d++) memcpy(acc + KP + D * KP + d * KP, acc, KP * sizeof(double));
    }

    /* the slot's end: sum_x[4 g + b] += sum of s->st[g, c] over the c with bit b set */
    static void fd_bits_reduce(const fd_problem* p, fd_scratch* s, double* sum_x) {
        const Py_ssize_t D = p->n_features, KP = p->kp;
        Py_ssize_t d, kv;
        int c;
        for (d = 0; d < D; d++) {
            const double* st = s->st + (d / 4) * 16 * KP;
            const int b = (int) (d % 4);
            for (kv = 0; kv < KP; kv += FD_W) {
                fd_v t = fd_set1(0.0);
                for (c = 0; c < 16; c++)
                    if ((c >> b) & 1) t = fd_add(t, fd_load(st + c * KP + kv));
                fd_store(sum_x + d * KP + kv, fd_add(fd_load(sum_x + d * KP + kv), t));
            }
        }
    }
    #endif

    /* Rows [start, stop) of one slot (start on a block boundary), chunk by chunk in
       order: the statistics into acc (one slot's row: linear [nk, sum_x, n_obs, loglik,
       n], categorical [nk, counts, loglik, n]), or p->out. Returns the flat index of the
       first invalid entry of the slot (which ends it), or -1. */
    static Py_ssize_t fd_slot(const fd_problem* p, Py_ssize_t start, Py_ssize_t stop, fd_scratch* s, double* acc) {
        const Py_ssize_t D = p->n_features, KP = p->kp, bs = p->block_size;
        const int categorical = p->dist == FD_CATEGORICAL;
        const Py_ssize_t tail = categorical ? KP + D * p->c1 * KP : KP + 2 * D * KP;
        Py_ssize_t row0 = start;
        const Py_ssize_t elem = p->f32 ? 4 : 8;
        int* n_missing = s->row_start;  /* categorical: reused for the per-row missing counts */
    #if defined(FD_BITS)
        const int bits = FD_USE_BITS(p);
        /* lazy: every chunk of the slot so far took the bit path, so n_obs[d] (the same
           additions as nk, from the same zeros) equals nk: it is copied from nk once, when
           a chunk takes the general path or at the slot's end */
        int lazy = bits && acc != NULL;
        if (bits && acc != NULL) memset(s->st, 0, 2 * ((D + 63) / 64 * 8) * 16 * KP * sizeof(double));
    #endif
        while (row0 < stop) {
            Py_ssize_t block_end = (row0 / bs + 1) * bs, n, bad;
            int has_nan = 0;
            if (block_end > stop) block_end = stop;
            n = block_end - row0 < p->chunk ? block_end - row0 : p->chunk;
    #if defined(FD_BITS)
            if (bits && fd_scan_bits(p, row0, n, s) == 0) {
                fd_linear_row_weights(p, row0, n, 0, s);
                fd_bits_lp(p, n, s);
                if (p->out != NULL) {
                    fd_write_log_prob(p, row0, n, s);
                } else {
                    double* ll = acc + tail;
                    fd_softmax(p, n, s, ll, ll + 1);
                    fd_bits_stats(p, n, s, acc, lazy);
                }
                row0 += n;
                continue;
            }
            if (lazy) { fd_bits_n_obs(p, acc); lazy = 0; }
    #endif
            bad = categorical ? fd_scan_cat(p, row0, n, s, &has_nan, n_missing) : fd_scan(p, row0, n, s, &has_nan);
            if (bad >= 0) return bad;
            if (row0 + n < stop)  /* the next chunk streams in while this one computes */
                fd_prefetch((const char*) p->X + (row0 + n) * D * elem,
                            ((stop - row0 - n < p->chunk ? stop - row0 - n : p->chunk)) * D * elem);
            if (categorical) {
                fd_row_weights(p, row0, n, has_nan ? n_missing : NULL, s);
                fd_cat_lp(p, n, s);
            } else {
                if (has_nan) fd_missing_list(p, n, s);
                fd_linear_row_weights(p, row0, n, has_nan, s);
                if (p->dist == FD_POISSON) fd_log_h(p, n, s);
                fd_linear_lp(p, n, has_nan, s);
            }
            if (p->out != NULL) {
                fd_write_log_prob(p, row0, n, s);
            } else {
                double* ll = acc + tail;
                fd_softmax(p, n, s, ll, ll + 1);
                if (categorical) fd_cat_stats(p, n, s, acc);
                else fd_linear_stats(p, n, has_nan, s, acc);
            }
            row0 += n;
        }
    #if defined(FD_BITS)
        if (lazy) fd_bits_n_obs(p, acc);
        if (bits && acc != NULL) fd_bits_reduce(p, s, acc + KP);
    #endif
        return -1;
    }
    """
    ctypedef struct fd_problem:
        Py_ssize_t n_samples, n_features, n_components, kp, block_size, chunk
        int dist, f32, direct_counts
        const void* X
        const double* cst
        const double* coef_t
        const double* offset_t
        const double* logfact
        const double* table
        const double* n_cat
        Py_ssize_t c1
        const double* sample_weight
        double* out
    ctypedef struct fd_scratch:
        pass
    int FD_W, FD_LOGFACT_SIZE, FD_BERNOULLI, FD_POISSON, FD_CATEGORICAL
    void fd_init_tables() noexcept nogil
    fd_scratch* fd_scratch_new(const fd_problem* p) noexcept nogil
    void fd_scratch_free(fd_scratch* s) noexcept nogil
    Py_ssize_t fd_slot(const fd_problem* p, Py_ssize_t start, Py_ssize_t stop, fd_scratch* s,
                       double* acc) noexcept nogil


fd_init_tables()


cdef inline Py_ssize_t _slot_start(Py_ssize_t slot, Py_ssize_t n_slots, Py_ssize_t n_samples,
                                   Py_ssize_t block_size) noexcept nogil:
    """First row of ``slot`` (slot ``n_slots`` gives N): slots are runs of whole blocks."""
    cdef Py_ssize_t n_blocks = (n_samples + block_size - 1) // block_size
    return min((slot * n_blocks // n_slots) * block_size, n_samples)


cdef fd_problem _problem(Py_ssize_t N, Py_ssize_t D, bint f32, const void* X, Py_ssize_t n_components,
                         const double[::1] cst, const double[::1] sample_weight, double[:, ::1] acc,
                         Py_ssize_t acc_size, double[:, ::1] out, long long[::1] first_bad,
                         Py_ssize_t block_size, Py_ssize_t chunk) except *:
    """The shape checks shared by both families, and a problem pointing at the arrays."""
    cdef Py_ssize_t K = n_components, KP = cst.shape[0]
    if N < 1 or D < 1 or K < 1 or block_size < 1 or chunk < 1:
        raise ValueError("need at least one sample, feature and component, and a positive block_size and chunk")
    if KP % FD_W != 0 or KP < K or KP >= K + FD_W:
        raise ValueError(f"cst must have the padded size {(K + FD_W - 1) // FD_W * FD_W}, got {KP}")
    if sample_weight is not None and sample_weight.shape[0] != N:
        raise ValueError("sample_weight must have shape (n_samples,)")
    if (acc is None) == (out is None):
        raise ValueError("exactly one of acc (statistics) and out (log_prob) is given")
    if first_bad.shape[0] < 1:
        raise ValueError("first_bad must have one entry per slot")
    if acc is not None and (acc.shape[0] != first_bad.shape[0] or acc.shape[1] < acc_size):
        raise ValueError(f"acc must have shape (n_slots, >= {acc_size})")
    if out is not None and (out.shape[0] != N or out.shape[1] != K):
        raise ValueError("out must have shape (n_samples, n_components)")
    if <double> chunk * max(D, KP) >= 2.0 ** 30:
        raise ValueError("chunk too large")
    cdef fd_problem p
    p.n_samples, p.n_features, p.n_components, p.kp = N, D, K, KP
    p.block_size, p.chunk = block_size, chunk
    p.f32 = f32
    p.direct_counts = 0
    p.X = X
    p.cst = &cst[0]
    p.coef_t = p.offset_t = p.logfact = p.table = p.n_cat = NULL
    p.c1 = 0
    p.sample_weight = NULL
    if sample_weight is not None and out is None:
        p.sample_weight = &sample_weight[0]
    p.out = NULL if out is None else &out[0, 0]
    return p


cdef void _run(const fd_problem* p, double[:, ::1] acc, long long[::1] first_bad, int n_threads) except *:
    """Every slot of the problem, ``prange`` over slots; first_bad[slot]: the flat index of
    the slot's first invalid entry, or -1."""
    cdef Py_ssize_t n_slots = first_bad.shape[0], slot, start, stop
    cdef Py_ssize_t stride = 0 if acc is None else acc.shape[1]
    cdef double* acc_p = NULL if acc is None else &acc[0, 0]
    cdef long long* bad_p = &first_bad[0]
    cdef fd_scratch* s = NULL
    cdef int failed = 0
    cdef int* failed_p = &failed  # a write to a shared variable in a parallel block goes through a pointer
    with nogil, parallel(num_threads=n_threads):
        s = fd_scratch_new(p)
        if s == NULL:
            failed_p[0] = 1
        for slot in prange(n_slots, schedule="dynamic"):
            if s != NULL:
                start = _slot_start(slot, n_slots, p.n_samples, p.block_size)
                stop = _slot_start(slot + 1, n_slots, p.n_samples, p.block_size)
                bad_p[slot] = fd_slot(p, start, stop, s, NULL if acc_p == NULL else acc_p + slot * stride)
        fd_scratch_free(s)
    if failed:
        raise MemoryError("fastem: could not allocate kernel scratch buffers")


def linear(const floating[:, ::1] X, const double[:, ::1] coef_t, const double[:, ::1] offset_t,
           const double[::1] cst, int dist, const double[::1] logfact, const double[::1] sample_weight,
           double[:, ::1] acc, double[:, ::1] out, long long[::1] first_bad, Py_ssize_t n_components,
           int n_threads, Py_ssize_t block_size, Py_ssize_t chunk):
    """Bernoulli (dist 0) or Poisson (dist 1): per-slot statistics into ``acc`` (S, >= 2 +
    KP (1 + 2 D), zero-filled: [nk (KP), sum_x (D, KP), n_obs (D, KP), loglik, n]) or the
    log-probs into ``out`` (N, K) (acc None; sample_weight ignored). coef_t, offset_t
    (D, KP) zero-padded; cst (KP,) ``log w_k + sum_d offset[k, d]`` (log_prob: without the
    log weights), -inf in the padding; logfact (FD_LOGFACT_SIZE,) log(x!)."""
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1], KP = cst.shape[0]
    if dist != FD_BERNOULLI and dist != FD_POISSON:
        raise ValueError(f"unknown linear distribution code {dist}")
    if (coef_t.shape[0] != D or coef_t.shape[1] != KP or offset_t.shape[0] != D or offset_t.shape[1] != KP
            or logfact.shape[0] != FD_LOGFACT_SIZE):
        raise ValueError("coef_t and offset_t must have shape (n_features, padded n_components), "
                         "logfact (FD_LOGFACT_SIZE,)")
    cdef fd_problem p = _problem(N, D, sizeof(floating) == 4, &X[0, 0], n_components, cst, sample_weight, acc,
                                 2 + KP * (1 + 2 * D), out, first_bad, block_size, chunk)
    p.dist = dist
    p.coef_t = &coef_t[0, 0]
    p.offset_t = &offset_t[0, 0]
    p.logfact = &logfact[0]
    _run(&p, acc, first_bad, n_threads)


def categorical(const floating[:, ::1] X, const double[:, :, ::1] table, const double[::1] n_categories,
                const double[::1] cst, const double[::1] sample_weight, double[:, ::1] acc, double[:, ::1] out,
                long long[::1] first_bad, Py_ssize_t n_components, int n_threads, Py_ssize_t block_size,
                Py_ssize_t chunk, bint direct_counts):
    """Categorical: per-slot statistics into ``acc`` (S, >= 2 + KP (1 + D C1), zero-filled:
    [nk (KP), counts (D, C1, KP), loglik, n]) or the log-probs into ``out`` (N, K) (acc
    None). table (D, C1, KP): log_probs transposed and zero-padded, its last category
    row zeros (the missing entries'); n_categories (D,) as doubles, each <= C1 - 1; cst
    (KP,) the log weights (log_prob: zeros), -inf in the padding. direct_counts: the
    counts go straight into the slot's row rather than through a per-chunk partial."""
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1], KP = cst.shape[0], C1 = table.shape[1], d
    if table.shape[0] != D or table.shape[2] != KP or C1 < 2 or n_categories.shape[0] != D:
        raise ValueError("table must have shape (n_features, n_categories + 1, padded n_components)")
    for d in range(D):  # the kernel indexes the table with codes < n_categories[d]
        if not (1.0 <= n_categories[d] <= C1 - 1):
            raise ValueError(f"n_categories[{d}] = {n_categories[d]} outside [1, {C1 - 1}]")
    if <double> D * C1 * KP >= 2.0 ** 31:
        raise ValueError("categorical table too large for 32-bit offsets")
    cdef fd_problem p = _problem(N, D, sizeof(floating) == 4, &X[0, 0], n_components, cst, sample_weight, acc,
                                 2 + KP * (1 + D * C1), out, first_bad, block_size, chunk)
    p.dist = FD_CATEGORICAL
    p.table = &table[0, 0, 0]
    p.n_cat = &n_categories[0]
    p.c1 = C1
    p.direct_counts = direct_counts
    _run(&p, acc, first_bad, n_threads)
