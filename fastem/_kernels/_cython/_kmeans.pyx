# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""k-means kernels: Cython + OpenMP, one source for float32 and float64 ``X``.

The contract is :mod:`fastem.reference_kmeans`'s: rows are centred on ``x_mean`` in X's
dtype (as scikit-learn centres X), then converted to float64; squared distances are
direct sums ``sum_d (z_d - c_d) ** 2`` with the centres transposed (D, K) so that the
inner loop runs over the K centres contiguously (it vectorises without reassociating
any sum); the nearest centre is the first minimum. Statistics are accumulated in
float64.

Determinism: rows are cut into blocks of ``block_size``, blocks into ``n_slots``
contiguous slots (a function of N and block_size only, chosen by the caller); each slot
accumulates its blocks in order into its own row of the output buffers, ``prange`` runs
over slots and the caller sums the slots in order. Labels and bounds are per row, so
they do not depend on the thread count either.

Called only through :mod:`fastem._kernels.cython_kmeans`; shapes are checked here,
before the GIL is released, so that the loops never read out of bounds.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport sqrt
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset


cdef struct Problem:
    Py_ssize_t n_samples, n_features, n_centers, block_size, n_slots
    const double* centers_t   # (D, K): centre k's coordinate d at [d * K + k]
    const double* sample_weight  # (N,) or NULL (all ones)


cdef inline void _centre_row(const floating* x, const floating* x_mean, Py_ssize_t D, double* z) noexcept nogil:
    cdef Py_ssize_t d
    cdef floating centred
    for d in range(D):
        centred = x[d] - x_mean[d]  # in X's dtype, as scikit-learn's X -= X.mean(axis=0)
        z[d] = centred


cdef extern from *:
    """
    /* Squared distances of ROWS = 4 centred rows z (4 x D, row-major) to the K centres,
       given transposed (ct[d * K + k]): d2 (4 x K). Every pair is summed over d in order
       with one accumulator, in every path below, so a row's distances do not depend on
       the rows it is grouped with. Four rows share each load of the centres, and tiles
       of 8 (or 4) centres are 4-double vectors (GCC/Clang vector extensions: AVX2/AVX-512
       registers, SSE2 pairs in the baseline build): compilers left to themselves
       vectorise the loop over d instead, with gathers. */
    #include <math.h>
    #include "_vector4.h"
    #define FASTEM_ROWS 4
    /* rows of the bounded pass whose bounds are tested before the open ones are read */
    #define FASTEM_CHUNK 64
    #if defined(__GNUC__) || defined(__clang__)
    #define FASTEM_ALWAYS_INLINE static inline __attribute__((always_inline))
    #elif defined(_MSC_VER)
    #define FASTEM_ALWAYS_INLINE static __forceinline
    #else
    #define FASTEM_ALWAYS_INLINE static inline
    #endif
    /* a * b + c in the distances and the weighted sums: fused, explicitly and in every
       path, wherever the target has an FMA (the AVX2 and AVX-512 builds); elsewhere there
       is nothing to contract and it is a product then a sum. Left to the compiler (GCC's
       default -ffp-contract=fast), contraction depended on how each loop happened to be
       vectorised: the scalar path (K = 1, tails) and the vector tiles could round one
       distance differently, so update_closest disagreed with plusplus_pots' kept minima
       (measured at D = 2, 4, 5, 16 with L = 4 in the AVX-512 build). */
    #if defined(__FMA__) || defined(__FP_FAST_FMA) || defined(__ARM_FEATURE_FMA)
    #define FASTEM_FUSED 1
    #define FASTEM_MADD(a, b, c) __builtin_fma((a), (b), (c))
    #else
    #define FASTEM_FUSED 0
    static inline double fastem_madd(double a, double b, double c) { const double p = a * b; return p + c; }
    #define FASTEM_MADD(a, b, c) fastem_madd((a), (b), (c))
    #endif
    #if FASTEM_VECTORS
    #if FASTEM_FUSED && defined(__FMA__) && defined(__AVX__)
    #include <immintrin.h>
    #define FASTEM_VMADD(a, b, c) ((fastem_v4d) _mm256_fmadd_pd((__m256d) (a), (__m256d) (b), (__m256d) (c)))
    #elif FASTEM_FUSED
    static inline fastem_v4d fastem_vmadd(fastem_v4d a, fastem_v4d b, fastem_v4d c) {
        fastem_v4d r;
        for (int q = 0; q < 4; q++) r[q] = __builtin_fma(a[q], b[q], c[q]);
        return r;
    }
    #define FASTEM_VMADD(a, b, c) fastem_vmadd((a), (b), (c))
    #else
    static inline fastem_v4d fastem_vmadd(fastem_v4d a, fastem_v4d b, fastem_v4d c) {
        const fastem_v4d p = a * b;
        return p + c;
    }
    #define FASTEM_VMADD(a, b, c) fastem_vmadd((a), (b), (c))
    #endif
    #define FASTEM_SQ_ACC(acc, zd, c) do { const fastem_v4d t_ = (zd) - (c); (acc) = FASTEM_VMADD(t_, t_, (acc)); } while (0)
    #endif
    /* The AVX-512 build's tiles of 8 centres: one 8-double register each, so every
       subtraction and FMA covers twice the pairs of a 4-double one (each lane is still
       one chain over d: the same bits as the 4-wide and scalar paths). */
    #define FASTEM_TILES8 (FASTEM_VECTORS8 && FASTEM_FUSED)
    #if FASTEM_TILES8
    #include <immintrin.h>
    #define FASTEM_VMADD8(a, b, c) ((fastem_v8d) _mm512_fmadd_pd((__m512d) (a), (__m512d) (b), (__m512d) (c)))
    #define FASTEM_SQ_ACC8(acc, zd, c) do { const fastem_v8d t_ = (zd) - (c); (acc) = FASTEM_VMADD8(t_, t_, (acc)); } while (0)
    #endif
    /* The tiles of fastem_sq_distances4: 2 W (TILE2) or W (TILE1) centres over its 4 rows,
       in W-double vectors VT (LOAD, STORE, ACC: that width's load, store and FASTEM_SQ_ACC) */
    #define FASTEM_DIST_TILE2(VT, W, LOAD, STORE, ACC) \
        for (; k0 + 2 * (W) <= K; k0 += 2 * (W)) { \
            VT a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0}; \
            const double* row = ct + k0; \
            for (d = 0; d < D; d++, row += K) { \
                if (ahead != NULL) __builtin_prefetch(ahead + d * ahead_step); \
                const VT lo = LOAD(row), hi = LOAD(row + (W)); \
                ACC(a0, z0[d], lo); ACC(b0, z0[d], hi); ACC(a1, z1[d], lo); ACC(b1, z1[d], hi); \
                ACC(a2, z2[d], lo); ACC(b2, z2[d], hi); ACC(a3, z3[d], lo); ACC(b3, z3[d], hi); \
            } \
            ahead = NULL; \
            STORE(d2 + k0, a0); STORE(d2 + k0 + (W), b0); STORE(d2 + K + k0, a1); STORE(d2 + K + k0 + (W), b1); \
            STORE(d2 + 2 * K + k0, a2); STORE(d2 + 2 * K + k0 + (W), b2); \
            STORE(d2 + 3 * K + k0, a3); STORE(d2 + 3 * K + k0 + (W), b3); \
        }
    #define FASTEM_DIST_TILE1(VT, W, LOAD, STORE, ACC) \
        for (; k0 + (W) <= K; k0 += (W)) { \
            VT a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}; \
            const double* row = ct + k0; \
            for (d = 0; d < D; d++, row += K) { \
                if (ahead != NULL) __builtin_prefetch(ahead + d * ahead_step); \
                const VT c = LOAD(row); \
                ACC(a0, z0[d], c); ACC(a1, z1[d], c); ACC(a2, z2[d], c); ACC(a3, z3[d], c); \
            } \
            ahead = NULL; \
            STORE(d2 + k0, a0); STORE(d2 + K + k0, a1); STORE(d2 + 2 * K + k0, a2); STORE(d2 + 3 * K + k0, a3); \
        }
    /* ahead: NULL, or the rows the first tile prefetches at ahead + d * ahead_step (fastem_ahead) */
    FASTEM_ALWAYS_INLINE void fastem_sq_distances4(const double* z, Py_ssize_t D, const double* ct, Py_ssize_t K,
                                                  double* d2, const char* ahead, Py_ssize_t ahead_step) {
        const double *z0 = z, *z1 = z + D, *z2 = z + 2 * D, *z3 = z + 3 * D;
        Py_ssize_t k0 = 0, k, d;
    #if FASTEM_TILES8
        FASTEM_DIST_TILE2(fastem_v8d, 8, fastem_load8, fastem_store8, FASTEM_SQ_ACC8);
        /* 8 centres: 4 chains, each FMA after its subtraction, still 2 a cycle */
        FASTEM_DIST_TILE1(fastem_v8d, 8, fastem_load8, fastem_store8, FASTEM_SQ_ACC8);
    #endif
    #if FASTEM_VECTORS
        FASTEM_DIST_TILE2(fastem_v4d, 4, fastem_load4, fastem_store4, FASTEM_SQ_ACC);
        FASTEM_DIST_TILE1(fastem_v4d, 4, fastem_load4, fastem_store4, FASTEM_SQ_ACC);
    #endif
        for (k = k0; k < K; k++) {
            double t0 = 0.0, t1 = 0.0, t2 = 0.0, t3 = 0.0;
            for (d = 0; d < D; d++) {
                if (ahead != NULL) __builtin_prefetch(ahead + d * ahead_step);
                const double c = ct[d * K + k];
                const double e0 = z0[d] - c, e1 = z1[d] - c, e2 = z2[d] - c, e3 = z3[d] - c;
                t0 = FASTEM_MADD(e0, e0, t0); t1 = FASTEM_MADD(e1, e1, t1);
                t2 = FASTEM_MADD(e2, e2, t2); t3 = FASTEM_MADD(e3, e3, t3);
            }
            ahead = NULL;
            d2[k] = t0; d2[K + k] = t1; d2[2 * K + k] = t2; d2[3 * K + k] = t3;
        }
    }

    /* Ask for the cache lines of n_bytes at p ahead of their use. */
    static inline void fastem_prefetch(const void* p, Py_ssize_t n_bytes) {
        for (Py_ssize_t b = 0; b < n_bytes; b += 64) __builtin_prefetch((const char*) p + b);
        __builtin_prefetch((const char*) p + n_bytes - 1);
    }

    /* y += a * x; restrict: the sums never overlap the row, which lets the loop vectorise */
    static inline void fastem_axpy(double* restrict y, double a, const double* restrict x, Py_ssize_t n) {
        for (Py_ssize_t i = 0; i < n; i++) y[i] += a * x[i];
    }

    /* ---- Whole-slot passes (assign, plusplus_pots, update_closest) ------------------------
       One call per slot runs the row loop in C: the branches on sample_weight and on the
       output are taken once per call (the bodies are specialised on them), small D
       (1 to 4) gets bodies with D a constant (centring and distances unrolled), a group
       of ROWS rows is centred in one pass (its rows follow each other in X, and xm_rep
       holds x_mean ROWS times), and the sums of a slot stay in registers. Every distance
       is still the sum over d in order with one accumulator (FASTEM_MADD, as in
       fastem_sq_distances4), and every sum over rows is taken in row order: the results
       are those of the row-at-a-time loops. */
    #if FASTEM_VECTORS
    typedef long long fastem_v4l __attribute__((vector_size(32)));
    /* per lane: a < c ? a : c (c where a is NaN, as the scalar comparison) */
    static inline fastem_v4d fastem_vmin(fastem_v4d a, double c) {
        const fastem_v4d cv = fastem_splat(c);
        const fastem_v4l lt = a < cv;
        return (fastem_v4d) ((lt & (fastem_v4l) a) | (~lt & (fastem_v4l) cv));
    }
    #endif
    #define FASTEM_PREFETCH_ROWS 32
    #define FASTEM_ROW(x, f32, i, D) ((const void*) ((const char*) (x) + (i) * (D) * ((f32) ? 4 : 8)))
    /* The group of nr rows PREFETCH_ROWS ahead of row i0, for a tile to prefetch one
       line per d while it runs (ahead + d * FASTEM_AHEAD_STEP(nr, f32) covers the group
       over D steps); NULL where it would pass stop. Asked for at once, a group's lines
       filled the line-fill buffers and stalled the pass. */
    #define FASTEM_AHEAD_STEP(nr, f32) ((nr) * ((f32) ? 4 : 8))
    FASTEM_ALWAYS_INLINE const char* fastem_ahead(const void* x, int f32, Py_ssize_t D, Py_ssize_t i0, Py_ssize_t nr,
                                                  Py_ssize_t stop) {
        return i0 + FASTEM_PREFETCH_ROWS + nr <= stop ? (const char*) FASTEM_ROW(x, f32, i0 + FASTEM_PREFETCH_ROWS, D) : NULL;
    }

    /* z[j] = x[j] - xm_rep[j] in X's dtype, then as a double, for the n values of
       consecutive rows at x */
    FASTEM_ALWAYS_INLINE void fastem_centre_n(const void* restrict x, const void* restrict xm_rep, int f32,
                                              Py_ssize_t n, double* restrict z) {
        if (f32) {
            const float* xf = (const float*) x; const float* mf = (const float*) xm_rep;
            for (Py_ssize_t j = 0; j < n; j++) { const float t = xf[j] - mf[j]; z[j] = t; }
        } else {
            const double* xd = (const double*) x; const double* md = (const double*) xm_rep;
            for (Py_ssize_t j = 0; j < n; j++) { const double t = xd[j] - md[j]; z[j] = t; }
        }
    }

    /* rows [i0, i0 + n) centred into z (n x D); n == ROWS gets a constant trip count */
    FASTEM_ALWAYS_INLINE void fastem_centre_group(const void* x, const void* xm_rep, int f32, Py_ssize_t D,
                                                  Py_ssize_t i0, Py_ssize_t n, double* z) {
        if (n == FASTEM_ROWS) fastem_centre_n(FASTEM_ROW(x, f32, i0, D), xm_rep, f32, FASTEM_ROWS * D, z);
        else fastem_centre_n(FASTEM_ROW(x, f32, i0, D), xm_rep, f32, n * D, z);
    }

    /* The nr x 4 squared distances of the rows z (nr x D; nr is ROWS or PAIR_ROWS, a
       constant at every call) to centres k0 .. k0 + 3: a[r] holds row r's (the 4-wide
       tile of fastem_sq_distances4). Each row's sum is one chain of FMAs over d: with
       only 4 centres (plusplus_pots' candidates for K <= 20), ROWS rows left the pass
       bound by the FMA latency, and PAIR_ROWS keep twice as many in flight. */
    #define FASTEM_PAIR_ROWS (2 * FASTEM_ROWS)
    #if FASTEM_VECTORS
    FASTEM_ALWAYS_INLINE void fastem_tile4(const double* z, Py_ssize_t D, const double* ct, Py_ssize_t K,
                                           Py_ssize_t k0, int nr, fastem_v4d* a, const char* ahead,
                                           Py_ssize_t ahead_step) {
        fastem_v4d acc[FASTEM_PAIR_ROWS];
        for (int r = 0; r < nr; r++) acc[r] = fastem_splat(0.0);
        const double* row = ct + k0;
        for (Py_ssize_t d = 0; d < D; d++, row += K) {
            if (ahead != NULL) __builtin_prefetch(ahead + d * ahead_step);
            const fastem_v4d c = fastem_load4(row);
            for (int r = 0; r < nr; r++) FASTEM_SQ_ACC(acc[r], z[r * D + d], c);
        }
        for (int r = 0; r < nr; r++) a[r] = acc[r];
    }
    #endif

    /* plusplus_pots' 4 candidates in the AVX-512 build: the nr x 4 distances of
       fastem_tile4, two rows to an 8-double register. The rows come interleaved in pairs
       (zp[2 D p + 2 d + j]: row 2 p + j, from fastem_centre_pairs), each candidate's
       coordinate twice (cd[8 d + 2 l + j] = candidate l's d), so one 2-double broadcast
       from memory and one subtraction and FMA cover 8 (row, candidate) pairs; lane
       2 l + j is still one chain over d, so the bits are fastem_tile4's. */
    #if FASTEM_TILES8 && defined(__AVX512DQ__)
    #define FASTEM_PAIRS4 1
    typedef long long fastem_v8l __attribute__((vector_size(64)));
    FASTEM_ALWAYS_INLINE void fastem_tile4_pairs(const double* zp, Py_ssize_t D, const double* cd, int nr,
                                                 fastem_v4d* a, const char* ahead, Py_ssize_t ahead_step) {
        fastem_v8d acc[FASTEM_PAIR_ROWS / 2];
        const int np = nr / 2;
        for (int p = 0; p < np; p++) acc[p] = (fastem_v8d) _mm512_setzero_pd();
        for (Py_ssize_t d = 0; d < D; d++) {
            if (ahead != NULL) __builtin_prefetch(ahead + d * ahead_step);
            const fastem_v8d c = fastem_load8(cd + 8 * d);
            for (int p = 0; p < np; p++) {
                const fastem_v8d zz = (fastem_v8d) _mm512_broadcast_f64x2(_mm_loadu_pd(zp + 2 * D * p + 2 * d));
                FASTEM_SQ_ACC8(acc[p], zz, c);
            }
        }
        const fastem_v8l by_row = {0, 2, 4, 6, 1, 3, 5, 7};
        for (int p = 0; p < np; p++) {
            const fastem_v8d rows = __builtin_shuffle(acc[p], by_row);
            memcpy(&a[2 * p], &rows, sizeof rows);
        }
    }
    #else
    #define FASTEM_PAIRS4 0
    #define fastem_tile4_pairs(zp, D, cd, nr, a, ahead, step) ((void) 0)
    #endif

    /* The ROWS squared distances of the rows z to centre k (the scalar path of
       fastem_sq_distances4; ahead as there). */
    FASTEM_ALWAYS_INLINE void fastem_column4(const double* z, Py_ssize_t D, const double* ct, Py_ssize_t K,
                                             Py_ssize_t k, double* t, const char* ahead, Py_ssize_t ahead_step) {
        const double *z0 = z, *z1 = z + D, *z2 = z + 2 * D, *z3 = z + 3 * D;
        double t0 = 0.0, t1 = 0.0, t2 = 0.0, t3 = 0.0;
        for (Py_ssize_t d = 0; d < D; d++) {
            if (ahead != NULL) __builtin_prefetch(ahead + d * ahead_step);
            const double c = ct[d * K + k];
            const double e0 = z0[d] - c, e1 = z1[d] - c, e2 = z2[d] - c, e3 = z3[d] - c;
            t0 = FASTEM_MADD(e0, e0, t0); t1 = FASTEM_MADD(e1, e1, t1);
            t2 = FASTEM_MADD(e2, e2, t2); t3 = FASTEM_MADD(e3, e3, t3);
        }
        t[0] = t0; t[1] = t1; t[2] = t2; t[3] = t3;
    }

    /* Calls BODY(D) with D a constant for D = 1 .. 4 (the compiler unrolls those), as
       is otherwise. */
    #define FASTEM_BY_D(D, BODY) do { switch (D) { case 1: BODY(1); break; case 2: BODY(2); break; case 3: BODY(3); break; case 4: BODY(4); break; default: BODY(D); } } while (0)

    /* ---- plusplus_pots: pots[l] += w_i min(closest_i, d2(i, l)) over rows [start, stop) */
    /* n rows of z (at most nr = ROWS or PAIR_ROWS, a constant at every call) */
    /* pairs: L == 4, z interleaved in pairs and cd the doubled candidates (fastem_tile4_pairs) */
    FASTEM_ALWAYS_INLINE void fastem_pots_group(const double* restrict z, Py_ssize_t D, const double* ct,
                                                const double* cd, int pairs, Py_ssize_t L, Py_ssize_t i0,
                                                Py_ssize_t n, int nr, const double* restrict closest,
                                                const double* restrict w, int weighted, double* restrict out,
                                                int has_out, Py_ssize_t N, double* restrict pots,
                                                const char* ahead, Py_ssize_t ahead_step) {
        Py_ssize_t l0 = 0, r, q;
    #if FASTEM_VECTORS
        for (; l0 + 4 <= L; l0 += 4) {
            fastem_v4d a[FASTEM_PAIR_ROWS];
            if (pairs) fastem_tile4_pairs(z, D, cd, nr, a, ahead, ahead_step);
            else fastem_tile4(z, D, ct, L, l0, nr, a, ahead, ahead_step);
            ahead = NULL;
            fastem_v4d acc = fastem_load4(pots + l0);
            for (r = 0; r < n; r++) {
                const fastem_v4d m = fastem_vmin(a[r], closest[i0 + r]);
                if (weighted) { acc = FASTEM_VMADD(fastem_splat(w[i0 + r]), m, acc); }
                else acc += m;
                if (has_out) {
                    double mm[4];
                    fastem_store4(mm, m);
                    for (q = 0; q < 4; q++) out[(l0 + q) * N + i0 + r] = mm[q];
                }
            }
            fastem_store4(pots + l0, acc);
        }
    #endif
        for (; l0 < L; l0++) {
            double t[FASTEM_PAIR_ROWS], acc = pots[l0];
            for (r = 0; r < nr; r += FASTEM_ROWS) fastem_column4(z + r * D, D, ct, L, l0, t + r, ahead, ahead_step);
            ahead = NULL;
            for (r = 0; r < n; r++) {
                const double c = closest[i0 + r];
                const double m = t[r] < c ? t[r] : c;
                if (weighted) acc = FASTEM_MADD(w[i0 + r], m, acc); else acc += m;
                if (has_out) out[l0 * N + i0 + r] = m;
            }
            pots[l0] = acc;
        }
    }

    /* rows [i0, i0 + n) centred (as fastem_centre_n) into zp interleaved in pairs: row
       2 p + j's d at zp[2 D p + 2 d + j]; an odd n's last pair is completed with zeros */
    FASTEM_ALWAYS_INLINE void fastem_centre_pairs(const void* x, const void* xm_rep, int f32, Py_ssize_t D,
                                                  Py_ssize_t i0, Py_ssize_t n, double* restrict zp) {
        Py_ssize_t r = 0, d;
        for (; r + 2 <= n; r += 2, zp += 2 * D) {
            if (f32) {
                const float* x0 = (const float*) FASTEM_ROW(x, 1, i0 + r, D); const float* m = (const float*) xm_rep;
                for (d = 0; d < D; d++) {
                    const float t0 = x0[d] - m[d], t1 = x0[D + d] - m[d];
                    zp[2 * d] = t0; zp[2 * d + 1] = t1;
                }
            } else {
                const double* x0 = (const double*) FASTEM_ROW(x, 0, i0 + r, D); const double* m = (const double*) xm_rep;
                for (d = 0; d < D; d++) {
                    const double t0 = x0[d] - m[d], t1 = x0[D + d] - m[d];
                    zp[2 * d] = t0; zp[2 * d + 1] = t1;
                }
            }
        }
        if (r < n) {
            for (d = 0; d < D; d++) {
                if (f32) { const float t = ((const float*) FASTEM_ROW(x, 1, i0 + r, D))[d] - ((const float*) xm_rep)[d]; zp[2 * d] = t; }
                else { const double t = ((const double*) FASTEM_ROW(x, 0, i0 + r, D))[d] - ((const double*) xm_rep)[d]; zp[2 * d] = t; }
                zp[2 * d + 1] = 0.0;
            }
        }
    }

    FASTEM_ALWAYS_INLINE void fastem_pots_body(const void* x, const void* xm_rep, int f32, Py_ssize_t D,
                                               const double* ct, const double* cd, int pairs, Py_ssize_t L,
                                               Py_ssize_t start, Py_ssize_t stop, const double* closest,
                                               const double* w, int weighted, double* out, int has_out,
                                               Py_ssize_t N, double* pots, double* z) {
        Py_ssize_t i0 = start;
        for (; i0 + FASTEM_PAIR_ROWS <= stop; i0 += FASTEM_PAIR_ROWS) {
            if (pairs) fastem_centre_pairs(x, xm_rep, f32, D, i0, FASTEM_PAIR_ROWS, z);
            else {
                fastem_centre_group(x, xm_rep, f32, D, i0, FASTEM_ROWS, z);
                fastem_centre_group(x, xm_rep, f32, D, i0 + FASTEM_ROWS, FASTEM_ROWS, z + FASTEM_ROWS * D);
            }
            fastem_pots_group(z, D, ct, cd, pairs, L, i0, FASTEM_PAIR_ROWS, FASTEM_PAIR_ROWS, closest, w, weighted,
                              out, has_out, N, pots, fastem_ahead(x, f32, D, i0, FASTEM_PAIR_ROWS, stop),
                              FASTEM_AHEAD_STEP(FASTEM_PAIR_ROWS, f32));
        }
        for (; i0 < stop; i0 += FASTEM_ROWS) {
            const Py_ssize_t n = stop - i0 < FASTEM_ROWS ? stop - i0 : FASTEM_ROWS;
            if (pairs) fastem_centre_pairs(x, xm_rep, f32, D, i0, n, z);
            else fastem_centre_group(x, xm_rep, f32, D, i0, n, z);
            fastem_pots_group(z, D, ct, cd, pairs, L, i0, n, FASTEM_ROWS, closest, w, weighted, out, has_out, N,
                              pots, NULL, 0);
        }
    }

    /* z: scratch of PAIR_ROWS x D, zero-filled (the rows past a short last group are
       read); cd: NULL, or where FASTEM_PAIRS4 and L == 4 the candidates doubled (D x 8,
       fastem_tile4_pairs) */
    FASTEM_ALWAYS_INLINE void fastem_pots_range(const void* x, const void* xm_rep, int f32, Py_ssize_t D,
                                                const double* ct, const double* cd, Py_ssize_t L,
                                                Py_ssize_t start, Py_ssize_t stop, const double* closest,
                                                const double* w, double* out, Py_ssize_t N, double* pots,
                                                double* z) {
    #define FASTEM_POTS(DD, PAIRS, WEIGHTED, HAS_OUT) \
        fastem_pots_body(x, xm_rep, f32, DD, ct, cd, PAIRS, L, start, stop, closest, w, WEIGHTED, out, HAS_OUT, N, pots, z)
    #define FASTEM_POTS_0(DD) FASTEM_POTS(DD, 0, 0, 0)
    #define FASTEM_POTS_1(DD) FASTEM_POTS(DD, 0, 1, 0)
    #define FASTEM_POTS_PAIRS_0(DD) FASTEM_POTS(DD, 1, 0, 0)
    #define FASTEM_POTS_PAIRS_1(DD) FASTEM_POTS(DD, 1, 1, 0)
    #if FASTEM_PAIRS4
        if (cd != NULL) {
            if (out != NULL) { if (w == NULL) FASTEM_POTS(D, 1, 0, 1); else FASTEM_POTS(D, 1, 1, 1); }
            else if (w == NULL) FASTEM_BY_D(D, FASTEM_POTS_PAIRS_0);
            else FASTEM_BY_D(D, FASTEM_POTS_PAIRS_1);
            return;
        }
    #endif
        if (out != NULL) {  /* kept only when D is large next to L: no constant D */
            if (w == NULL) FASTEM_POTS(D, 0, 0, 1);
            else FASTEM_POTS(D, 0, 1, 1);
        } else if (w == NULL) FASTEM_BY_D(D, FASTEM_POTS_0);
        else FASTEM_BY_D(D, FASTEM_POTS_1);
    #undef FASTEM_POTS
    #undef FASTEM_POTS_0
    #undef FASTEM_POTS_1
    #undef FASTEM_POTS_PAIRS_0
    #undef FASTEM_POTS_PAIRS_1
    }

    /* ---- update_closest: closest_i = min(closest_i, d2(i, centre)) over rows [start, stop) */
    FASTEM_ALWAYS_INLINE void fastem_closest_body(const void* x, const void* xm_rep, int f32, Py_ssize_t D,
                                                  const double* ct, Py_ssize_t start, Py_ssize_t stop,
                                                  double* restrict closest, double* restrict z) {
        double t[FASTEM_ROWS];
        Py_ssize_t i0 = start, r;
        for (; i0 + FASTEM_ROWS <= stop; i0 += FASTEM_ROWS) {
            fastem_centre_group(x, xm_rep, f32, D, i0, FASTEM_ROWS, z);
            fastem_column4(z, D, ct, 1, 0, t, fastem_ahead(x, f32, D, i0, FASTEM_ROWS, stop),
                           FASTEM_AHEAD_STEP(FASTEM_ROWS, f32));
            for (r = 0; r < FASTEM_ROWS; r++) {
                const double c = closest[i0 + r];
                closest[i0 + r] = t[r] < c ? t[r] : c;
            }
        }
        if (i0 < stop) {
            fastem_centre_group(x, xm_rep, f32, D, i0, stop - i0, z);
            fastem_column4(z, D, ct, 1, 0, t, NULL, 0);
            for (r = 0; r < stop - i0; r++) {
                const double c = closest[i0 + r];
                closest[i0 + r] = t[r] < c ? t[r] : c;
            }
        }
    }

    FASTEM_ALWAYS_INLINE void fastem_closest_range(const void* x, const void* xm_rep, int f32, Py_ssize_t D,
                                                   const double* ct, Py_ssize_t start, Py_ssize_t stop,
                                                   double* closest, double* z) {
    #define FASTEM_CLOSEST(DD) fastem_closest_body(x, xm_rep, f32, DD, ct, start, stop, closest, z)
        FASTEM_BY_D(D, FASTEM_CLOSEST);
    #undef FASTEM_CLOSEST
    }

    /* The nearest of K centres (the first minimum of d2 (K,)) and the runner-up's
       distance (the smallest over the other centres; inf when K = 1). Selects, not
       branches: on overlapping clusters a branch per centre mispredicted about once a
       row, which cost more than the row's distances. (GCC turned part of the select back
       into a branch.) The AVX-512 build keeps each lane's smallest and second smallest
       over the 8-centre steps, then merges the lanes' pairs in three swaps (smallest =
       min of the smallest; second = min of the larger smallest and both seconds), so the
       minimum and the runner-up come out of one short chain and land in every lane; the
       first minimum is then an equality mask's first bit, so nothing depends on the
       data's order. (Two reductions, the second after the mask, were 40 % of an
       assignment at 16 x 8 on the Zen 4 EPYC.) */
    #if FASTEM_TILES8
    #define FASTEM_MERGE_PAIRS(m1, m2, p1, p2) do { \
            const __m512d lo_ = _mm512_min_pd((m1), (p1)), hi_ = _mm512_max_pd((m1), (p1)); \
            (m2) = _mm512_min_pd(hi_, _mm512_min_pd((m2), (p2))); \
            (m1) = lo_; \
        } while (0)
    #endif
    FASTEM_ALWAYS_INLINE Py_ssize_t fastem_nearest(const double* restrict d2, Py_ssize_t K, double* second) {
    #if FASTEM_TILES8
        if (K >= 8 && K <= 64) {
            #define FASTEM_LANES_LEFT(k0) (K - (k0) >= 8 ? (__mmask8) 0xFF : (__mmask8) ((1u << (K - (k0))) - 1))
            const __m512d inf = _mm512_set1_pd(__builtin_inf());
            __m512d m1 = _mm512_loadu_pd(d2), m2 = inf;
            Py_ssize_t k0;
            for (k0 = 8; k0 < K; k0 += 8) {
                const __m512d v = _mm512_mask_loadu_pd(inf, FASTEM_LANES_LEFT(k0), d2 + k0);
                FASTEM_MERGE_PAIRS(m1, m2, v, inf);
            }
            const __m512i halves = _mm512_set_epi64(3, 2, 1, 0, 7, 6, 5, 4);
            FASTEM_MERGE_PAIRS(m1, m2, _mm512_permutexvar_pd(halves, m1), _mm512_permutexvar_pd(halves, m2));
            FASTEM_MERGE_PAIRS(m1, m2, _mm512_permutex_pd(m1, 0x4E), _mm512_permutex_pd(m2, 0x4E));
            FASTEM_MERGE_PAIRS(m1, m2, _mm512_permute_pd(m1, 0x55), _mm512_permute_pd(m2, 0x55));
            unsigned long long equal = 0;
            for (k0 = 0; k0 < K; k0 += 8) {
                const __mmask8 valid = FASTEM_LANES_LEFT(k0);
                equal |= (unsigned long long) _mm512_mask_cmp_pd_mask(valid, _mm512_mask_loadu_pd(inf, valid, d2 + k0),
                                                                      m1, _CMP_EQ_OQ) << k0;
            }
            *second = _mm512_cvtsd_f64(m2);
            #undef FASTEM_LANES_LEFT
            return __builtin_ctzll(equal);
        }
    #endif
        double m1 = d2[0], m2 = __builtin_inf();
        Py_ssize_t best = 0;
        for (Py_ssize_t k = 1; k < K; k++) {
            const double v = d2[k];
            const int closer = v < m1;
            m2 = closer ? m1 : (v < m2 ? v : m2);
            m1 = closer ? v : m1;
            best = closer ? k : best;
        }
        *second = m2;
        return best;
    }

    /* ---- assign: labels, and the statistics of the new assignment, over rows [start, stop) */
    /* sum_x's rows take the group's rows in row order. Where all ROWS rows share a label
       (every row when K = 1, as in feature_moments; rows ordered by cluster) that label's
       sums take them in one sweep over d: row by row, each row's loads of the sums waited
       on the previous row's stores of them (store forwarding), which cost more than the
       row's distances. The sums are the same either way (each is the same chain of adds). */
    /* upper, lower: NULL, or (N,) to receive the distances to the nearest centre and the
       runner-up (the group's 2 ROWS square roots together, as in _settle) */
    FASTEM_ALWAYS_INLINE void fastem_assign_group(const double* restrict z, Py_ssize_t D, const double* restrict d2,
                                                  Py_ssize_t K, Py_ssize_t i0, Py_ssize_t n,
                                                  const double* restrict w, int weighted, int* restrict labels,
                                                  double* restrict nk, long long* restrict members,
                                                  double* restrict sum_x, double* inertia, long long* n_changed,
                                                  double* restrict upper, double* restrict lower) {
        Py_ssize_t best[FASTEM_ROWS], r, d;
        double roots[2 * FASTEM_ROWS] = {0};
        for (r = 0; r < n; r++) {
            const Py_ssize_t i = i0 + r;
            double second;
            best[r] = fastem_nearest(d2 + r * K, K, &second);
            const double bv = d2[r * K + best[r]];
            roots[r] = bv;
            roots[FASTEM_ROWS + r] = second;
            *n_changed += labels[i] != best[r];
            labels[i] = (int) best[r];
            if (weighted) {
                const double wi = w[i];
                *inertia = FASTEM_MADD(wi, bv, *inertia);
                nk[best[r]] += wi;
                members[best[r]] += wi > 0;
            } else {  /* a weight of one: the products are exact */
                *inertia += bv;
                nk[best[r]] += 1.0;
                members[best[r]] += 1;
            }
        }
        if (upper != NULL) {
            for (r = 0; r < 2 * FASTEM_ROWS; r++) roots[r] = sqrt(roots[r]);
            for (r = 0; r < n; r++) {
                upper[i0 + r] = roots[r];
                lower[i0 + r] = roots[FASTEM_ROWS + r];
            }
        }
        if (n == FASTEM_ROWS && best[0] == best[1] && best[1] == best[2] && best[2] == best[3]) {
            double* sx = sum_x + best[0] * D;
            const double *z0 = z, *z1 = z + D, *z2 = z + 2 * D, *z3 = z + 3 * D;
            if (weighted) {
                const double w0 = w[i0], w1 = w[i0 + 1], w2 = w[i0 + 2], w3 = w[i0 + 3];
                for (d = 0; d < D; d++)
                    sx[d] = FASTEM_MADD(w3, z3[d], FASTEM_MADD(w2, z2[d], FASTEM_MADD(w1, z1[d],
                                                                                    FASTEM_MADD(w0, z0[d], sx[d]))));
            } else {
                for (d = 0; d < D; d++) sx[d] = (((sx[d] + z0[d]) + z1[d]) + z2[d]) + z3[d];
            }
            return;
        }
        for (r = 0; r < n; r++) {
            const double* zr = z + r * D;
            double* sx = sum_x + best[r] * D;
            if (weighted) {
                const double wi = w[i0 + r];
                for (d = 0; d < D; d++) sx[d] = FASTEM_MADD(wi, zr[d], sx[d]);
            } else {
                for (d = 0; d < D; d++) sx[d] += zr[d];
            }
        }
    }

    FASTEM_ALWAYS_INLINE void fastem_assign_body(const void* x, const void* xm_rep, int f32, Py_ssize_t D,
                                                 const double* ct, Py_ssize_t K, Py_ssize_t start, Py_ssize_t stop,
                                                 const double* w, int weighted, int* labels, double* nk,
                                                 long long* members, double* sum_x, double* inertia,
                                                 long long* n_changed, double* upper, double* lower, double* z) {
        double* d2 = z + FASTEM_ROWS * D;
        double in = *inertia;
        long long changed = *n_changed;
        Py_ssize_t i0 = start;
        for (; i0 + FASTEM_ROWS <= stop; i0 += FASTEM_ROWS) {
            fastem_centre_group(x, xm_rep, f32, D, i0, FASTEM_ROWS, z);
            fastem_sq_distances4(z, D, ct, K, d2, fastem_ahead(x, f32, D, i0, FASTEM_ROWS, stop),
                                 FASTEM_AHEAD_STEP(FASTEM_ROWS, f32));
            fastem_assign_group(z, D, d2, K, i0, FASTEM_ROWS, w, weighted, labels, nk, members, sum_x, &in, &changed,
                                upper, lower);
        }
        if (i0 < stop) {
            fastem_centre_group(x, xm_rep, f32, D, i0, stop - i0, z);
            fastem_sq_distances4(z, D, ct, K, d2, NULL, 0);
            fastem_assign_group(z, D, d2, K, i0, stop - i0, w, weighted, labels, nk, members, sum_x, &in, &changed,
                                upper, lower);
        }
        *inertia = in;
        *n_changed = changed;
    }

    /* z: scratch of ROWS x (D + K), zero-filled */
    FASTEM_ALWAYS_INLINE void fastem_assign_range(const void* x, const void* xm_rep, int f32, Py_ssize_t D,
                                                  const double* ct, Py_ssize_t K, Py_ssize_t start, Py_ssize_t stop,
                                                  const double* w, int* labels, double* nk, long long* members,
                                                  double* sum_x, double* inertia, long long* n_changed,
                                                  double* upper, double* lower, double* z) {
    #define FASTEM_ASSIGN_0(DD) fastem_assign_body(x, xm_rep, f32, DD, ct, K, start, stop, w, 0, labels, nk, members, sum_x, inertia, n_changed, upper, lower, z)
    #define FASTEM_ASSIGN_1(DD) fastem_assign_body(x, xm_rep, f32, DD, ct, K, start, stop, w, 1, labels, nk, members, sum_x, inertia, n_changed, upper, lower, z)
        if (w == NULL) FASTEM_BY_D(D, FASTEM_ASSIGN_0);
        else FASTEM_BY_D(D, FASTEM_ASSIGN_1);
    #undef FASTEM_ASSIGN_0
    #undef FASTEM_ASSIGN_1
    }
    """
    enum: ROWS "FASTEM_ROWS"
    enum: PAIR_ROWS "FASTEM_PAIR_ROWS"
    enum: CHUNK "FASTEM_CHUNK"
    enum: PAIRS4 "FASTEM_PAIRS4"
    void _prefetch "fastem_prefetch"(const void* p, Py_ssize_t n_bytes) noexcept nogil
    void _axpy "fastem_axpy"(double* y, double a, const double* x, Py_ssize_t n) noexcept nogil
    Py_ssize_t _nearest_centre "fastem_nearest"(const double* d2, Py_ssize_t K, double* second) noexcept nogil
    void _sq_distances "fastem_sq_distances4"(const double* z, Py_ssize_t D, const double* centers_t, Py_ssize_t K,
                                              double* d2, const char* ahead, Py_ssize_t ahead_step) noexcept nogil
    void _pots_range "fastem_pots_range"(const void* x, const void* xm_rep, int f32, Py_ssize_t D,
                                         const double* candidates_t, const double* doubled, Py_ssize_t L,
                                         Py_ssize_t start, Py_ssize_t stop,
                                         const double* closest, const double* w, double* out, Py_ssize_t N,
                                         double* pots, double* z) noexcept nogil
    void _assign_range "fastem_assign_range"(const void* x, const void* xm_rep, int f32, Py_ssize_t D,
                                             const double* centers_t, Py_ssize_t K, Py_ssize_t start, Py_ssize_t stop,
                                             const double* w, int* labels, double* nk, long long* members,
                                             double* sum_x, double* inertia, long long* n_changed,
                                             double* upper, double* lower, double* z) noexcept nogil
    void _closest_range "fastem_closest_range"(const void* x, const void* xm_rep, int f32, Py_ssize_t D,
                                               const double* center_t, Py_ssize_t start, Py_ssize_t stop,
                                               double* closest, double* z) noexcept nogil


cdef inline Py_ssize_t _is_open(int old, double upper, double lower, const double* half_gap, const double* drift,
                                double max_drift, double margin) noexcept nogil:
    """1 when the bounds do not prove that row's label (or it has none): with the drifts
    added, ``upper + drift[old] + margin < max(lower - max_drift, half_gap[old])`` settles it."""
    cdef Py_ssize_t k = old if old > 0 else 0
    cdef double low = lower - max_drift
    cdef double bound = low if low > half_gap[k] else half_gap[k]
    return (old < 0) | (not (upper + drift[k] + margin < bound))


cdef inline Py_ssize_t _pick_open(const int* labels, const double* upper,
                                  const double* lower, const double* half_gap, const double* drift,
                                  double max_drift, double margin, Py_ssize_t c0, Py_ssize_t c1,
                                  Py_ssize_t* open_rows) noexcept nogil:
    """The rows of [c0, c1) whose bounds do not settle them into open_rows (branch-free:
    a settled row is only read); returns how many."""
    cdef Py_ssize_t i, n_open = 0
    for i in range(c0, c1):
        open_rows[n_open] = i
        n_open = n_open + _is_open(labels[i], upper[i], lower[i], half_gap, drift, max_drift, margin)
    return n_open


cdef inline void _fold(double* nk, long long* members, double* sum_x, Py_ssize_t k, const double* z,
                       Py_ssize_t D, double w, double sign) noexcept nogil:
    cdef double sw = sign * w
    nk[k] += sw
    if w > 0:
        members[k] += <long long> sign
    _axpy(sum_x + k * D, sw, z, D)


cdef inline Py_ssize_t _slot_start(const Problem* p, Py_ssize_t slot) noexcept nogil:
    """First row of ``slot`` (slot ``n_slots`` gives N). The caller assigns the result:
    Cython makes a variable thread-private in ``prange`` only when it is assigned there."""
    cdef Py_ssize_t n_blocks = (p.n_samples + p.block_size - 1) // p.block_size
    return min((slot * n_blocks // p.n_slots) * p.block_size, p.n_samples)


cdef Problem _problem(Py_ssize_t N, Py_ssize_t D, const double[:, ::1] centers_t, const double[::1] sample_weight,
                      Py_ssize_t block_size, Py_ssize_t n_slots, Py_ssize_t x_mean_size) except *:
    if N < 1 or block_size < 1 or n_slots < 1:
        raise ValueError("need at least one sample, a positive block_size and n_slots")
    if centers_t.shape[0] != D or centers_t.shape[1] < 1 or x_mean_size != D:
        raise ValueError("X, x_mean and the centres disagree on n_features")
    if sample_weight is not None and sample_weight.shape[0] != N:
        raise ValueError("sample_weight must have shape (n_samples,)")
    cdef Problem p
    p.n_samples, p.n_features, p.n_centers = N, D, centers_t.shape[1]
    p.block_size, p.n_slots = block_size, n_slots
    p.centers_t = &centers_t[0, 0]
    p.sample_weight = NULL if sample_weight is None else &sample_weight[0]
    return p


cdef void _check_stats(const Problem* p, double[:, ::1] nk, long long[:, ::1] members, double[:, ::1] sum_x,
                       long long[::1] n_changed) except *:
    cdef Py_ssize_t S = p.n_slots, K = p.n_centers
    if (nk.shape[0] != S or nk.shape[1] != K or members.shape[0] != S or members.shape[1] != K
            or sum_x.shape[0] != S or sum_x.shape[1] != K * p.n_features or n_changed.shape[0] != S):
        raise ValueError("statistics buffers have the wrong shape")


cdef floating* _tiled_mean(const floating[::1] x_mean) except NULL:
    """x_mean repeated ROWS times (ROWS x D, X's dtype), for centring a group of rows in
    one pass; the caller frees it."""
    cdef Py_ssize_t D = x_mean.shape[0], r, d
    cdef floating* rep = <floating*> malloc(ROWS * D * sizeof(floating) + 1)  # + 1: never malloc(0)
    if rep == NULL:
        raise MemoryError("fastem: could not allocate k-means scratch")
    for r in range(ROWS):
        for d in range(D):
            rep[r * D + d] = x_mean[d]
    return rep


cdef double* _scratch(Py_ssize_t D, Py_ssize_t K) noexcept nogil:
    """Per-thread scratch: ROWS centred rows (ROWS x D), then their distances (ROWS x K);
    room for PAIR_ROWS centred rows (plusplus_pots' groups). Zero-filled, so rows of a
    short last group are harmless zeros."""
    return <double*> calloc(max(ROWS * (D + K), PAIR_ROWS * D), sizeof(double))


cdef inline void _settle(const Problem* p, const double* z, const double* d2, const Py_ssize_t* queue,
                         Py_ssize_t n, int* labels, double* upper, double* lower, const double* drift,
                         double max_drift, double* nk, long long* members, double* sum_x,
                         long long* n_changed) noexcept nogil:
    """The n <= ROWS queued rows' nearest centres from their distances d2 (n x K), rows z
    (n x D): labels, both bounds (stored relative to the drifts), and the change of the
    statistics where a label changed. The 2 ROWS square roots go together, as vector
    square roots (one at a time they were a third of a pass in which every row is open)."""
    cdef Py_ssize_t K = p.n_centers, r, k, old, i
    cdef Py_ssize_t best[ROWS]
    cdef double roots[2 * ROWS]
    cdef double second, w
    for r in range(ROWS):
        if r < n:
            best[r] = _nearest_centre(d2 + r * K, K, &second)
            roots[r] = d2[r * K + best[r]]
            roots[ROWS + r] = second
        else:
            roots[r] = roots[ROWS + r] = 0.0
    for r in range(2 * ROWS):
        roots[r] = sqrt(roots[r])
    for r in range(n):
        i = queue[r]
        k = best[r]
        old = labels[i]
        upper[i] = roots[r] - drift[k]
        lower[i] = roots[ROWS + r] + max_drift
        if k != old:
            n_changed[0] += 1
            labels[i] = <int> k
            w = 1.0 if p.sample_weight == NULL else p.sample_weight[i]
            _fold(nk, members, sum_x, k, z + r * p.n_features, p.n_features, w, 1.0)
            if old >= 0:
                _fold(nk, members, sum_x, old, z + r * p.n_features, p.n_features, w, -1.0)


def assign(const floating[:, ::1] X, const floating[::1] x_mean, const double[::1] sample_weight,
           const double[:, ::1] centers_t, int[::1] labels, double[::1] upper, double[::1] lower,
           double[:, ::1] nk, long long[:, ::1] members, double[:, ::1] sum_x, double[::1] inertia,
           long long[::1] n_changed, int n_threads, Py_ssize_t block_size):
    """Lloyd's assignment into zero-filled per-slot buffers: labels (in/out, N) become the
    nearest centre; upper, lower (N,) or None receive the distances to it and to the
    runner-up; nk, members (S, K); sum_x (S, K * D) of the centred rows; inertia,
    n_changed (S,)."""
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1]
    cdef Problem p = _problem(N, D, centers_t, sample_weight, block_size, nk.shape[0], x_mean.shape[0])
    _check_stats(&p, nk, members, sum_x, n_changed)
    if labels.shape[0] != N or inertia.shape[0] != p.n_slots:
        raise ValueError("labels must have shape (n_samples,) and inertia (n_slots,)")
    if (upper is None) != (lower is None) or (upper is not None and (upper.shape[0] != N or lower.shape[0] != N)):
        raise ValueError("upper and lower must both be None or have shape (n_samples,)")
    cdef double* upper_p = NULL if upper is None else &upper[0]
    cdef double* lower_p = NULL if lower is None else &lower[0]
    cdef Py_ssize_t K = p.n_centers, slot, start, stop
    cdef floating* xm_rep = _tiled_mean(x_mean)
    cdef double* work
    cdef double* sums
    cdef long long* counts
    cdef int failed = 0
    cdef int* failed_p = &failed  # a write to a shared variable in a parallel block goes through a pointer
    with nogil, parallel(num_threads=n_threads):
        work = _scratch(D, K)
        # the slot's nk, sum_x, inertia (K + K * D + 1) and members, n_changed (K + 1) in
        # this thread's memory, stored once per slot: every row adds to them, and the
        # neighbouring slots' rows of the outputs share cache lines (measured with K = 1,
        # 2 threads: 135 ns a row at D = 16 with the sums in the outputs, the line
        # bouncing between the cores)
        sums = <double*> malloc((K + K * D + 1) * sizeof(double))
        counts = <long long*> malloc((K + 1) * sizeof(long long))
        if work == NULL or sums == NULL or counts == NULL:
            failed_p[0] = 1
        for slot in prange(p.n_slots, schedule="dynamic"):
            if work != NULL and sums != NULL and counts != NULL:
                start = _slot_start(&p, slot)
                stop = _slot_start(&p, slot + 1)
                memset(sums, 0, (K + K * D + 1) * sizeof(double))
                memset(counts, 0, (K + 1) * sizeof(long long))
                _assign_range(&X[0, 0], xm_rep, sizeof(floating) == 4, D, p.centers_t, K, start, stop,
                              p.sample_weight, &labels[0], sums, counts, sums + K, sums + K + K * D, counts + K,
                              upper_p, lower_p, work)
                memcpy(&nk[slot, 0], sums, K * sizeof(double))
                memcpy(&sum_x[slot, 0], sums + K, K * D * sizeof(double))
                memcpy(&members[slot, 0], counts, K * sizeof(long long))
                inertia[slot] = sums[K + K * D]
                n_changed[slot] = counts[K]
        free(work)
        free(sums)
        free(counts)
    free(xm_rep)
    if failed:
        raise MemoryError("fastem: could not allocate k-means scratch")


def bounded_assign(const floating[:, ::1] X, const floating[::1] x_mean, const double[::1] sample_weight,
                   const double[:, ::1] centers_t, const double[::1] half_gap, const double[::1] drift,
                   double max_drift, double margin, int[::1] labels, double[::1] upper, double[::1] lower,
                   double[:, ::1] nk, long long[:, ::1] members, double[:, ::1] sum_x, long long[::1] n_changed,
                   int n_threads, Py_ssize_t block_size):
    """Hamerly's assignment (see reference_kmeans.kmeans_bounded_assign): labels, upper,
    lower (N,) in/out; zero-filled per-slot buffers receive the changes of the
    statistics.

    Rows go CHUNK at a time: the bounds alone pick a chunk's open rows, whose x is
    prefetched while the chunk before is scanned, one row per scanned row (picked and
    prefetched in the same chunk, the lines had not arrived when its scan began; all at
    once, they filled the line-fill buffers), then the open rows are centred and
    queued, ROWS at a time, for the scan of all K centres. An open row is scanned at once,
    not first tightened to its own centre (Hamerly's second test): that refreshes its
    lower bound too, and on overlapping clusters a row settled by the tighter upper bound
    alone was open again in the next iteration (measured, 1e6 x 16 noise, K = 8: 30 % of
    the rows open with that test, 15 % without it, 1.55x faster in all)."""
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1]
    cdef Problem p = _problem(N, D, centers_t, sample_weight, block_size, nk.shape[0], x_mean.shape[0])
    _check_stats(&p, nk, members, sum_x, n_changed)
    cdef Py_ssize_t K = p.n_centers
    if labels.shape[0] != N or upper.shape[0] != N or lower.shape[0] != N:
        raise ValueError("labels, upper and lower must have shape (n_samples,)")
    if half_gap.shape[0] != K or drift.shape[0] != K:
        raise ValueError("half_gap and drift must have shape (n_centers,)")
    cdef Py_ssize_t slot, g, i, j, r, start, stop, c1, n_chunks, n_open, n_next, n_queued
    cdef Py_ssize_t* cur
    cdef Py_ssize_t* nxt
    cdef double* work
    cdef double* sums
    cdef long long* counts
    cdef Py_ssize_t* queue
    cdef Py_ssize_t* open_rows
    cdef int failed = 0
    cdef int* failed_p = &failed  # a write to a shared variable in a parallel block goes through a pointer
    with nogil, parallel(num_threads=n_threads):
        work = _scratch(D, K)
        # the slot's changes of nk and sum_x (K + K * D), of members and n_changed (K + 1),
        # gathered in this thread's memory and stored once per slot: neighbouring slots'
        # rows of the outputs share cache lines (n_changed: 8 slots to a line), and
        # writing them row by row (every row changes in the first iteration) would bounce
        # those lines between the cores
        sums = <double*> malloc((K + K * D) * sizeof(double))
        counts = <long long*> malloc((K + 1) * sizeof(long long))
        queue = <Py_ssize_t*> malloc(ROWS * sizeof(Py_ssize_t))
        open_rows = <Py_ssize_t*> malloc(2 * CHUNK * sizeof(Py_ssize_t))  # this chunk's and the next's
        if work == NULL or sums == NULL or counts == NULL or queue == NULL or open_rows == NULL:
            failed_p[0] = 1
        for slot in prange(p.n_slots, schedule="dynamic"):
            if work != NULL and sums != NULL and counts != NULL and queue != NULL and open_rows != NULL:
                start = _slot_start(&p, slot)
                stop = _slot_start(&p, slot + 1)
                memset(sums, 0, (K + K * D) * sizeof(double))
                memset(counts, 0, (K + 1) * sizeof(long long))
                n_queued = 0
                n_chunks = (stop - start + CHUNK - 1) // CHUNK
                n_next = _pick_open(&labels[0], &upper[0], &lower[0], &half_gap[0], &drift[0],
                                    max_drift, margin, start, min(start + CHUNK, stop), open_rows)
                for g in range(n_chunks):
                    c1 = min(start + (g + 1) * CHUNK, stop)
                    # this chunk's open rows were picked (and their x prefetched) while the
                    # previous chunk was scanned; pick the next chunk's now
                    cur = open_rows + (g % 2) * CHUNK
                    nxt = open_rows + ((g + 1) % 2) * CHUNK
                    n_open = n_next
                    n_next = 0
                    if g + 1 < n_chunks:
                        n_next = _pick_open(&labels[0], &upper[0], &lower[0], &half_gap[0],
                                            &drift[0], max_drift, margin, c1, min(c1 + CHUNK, stop), nxt)
                    for j in range(n_open + 1):
                        # the next chunk's open rows are prefetched one per row of this
                        # chunk (the rest at its end): all at once, they filled the line-fill
                        # buffers and stalled the scan
                        if j < n_open:
                            if j < n_next:
                                _prefetch(&X[nxt[j], 0], D * sizeof(floating))
                        else:
                            for r in range(n_open, n_next):
                                _prefetch(&X[nxt[r], 0], D * sizeof(floating))
                        if j < n_open:
                            i = cur[j]
                            _centre_row(&X[i, 0], &x_mean[0], D, work + n_queued * D)
                            queue[n_queued] = i
                            n_queued = n_queued + 1
                        # scan a full queue, and what is left at the end of the slot
                        if n_queued == ROWS or (j == n_open and c1 == stop and n_queued > 0):
                            _sq_distances(work, D, p.centers_t, K, work + ROWS * D, NULL, 0)
                            _settle(&p, work, work + ROWS * D, queue, n_queued, &labels[0], &upper[0], &lower[0],
                                    &drift[0], max_drift, sums, counts, sums + K, counts + K)
                            n_queued = 0
                memcpy(&nk[slot, 0], sums, K * sizeof(double))
                memcpy(&sum_x[slot, 0], sums + K, K * D * sizeof(double))
                memcpy(&members[slot, 0], counts, K * sizeof(long long))
                n_changed[slot] = counts[K]
        free(work)
        free(sums)
        free(counts)
        free(queue)
        free(open_rows)
    if failed:
        raise MemoryError("fastem: could not allocate k-means scratch")


def plusplus_pots(const floating[:, ::1] X, const floating[::1] x_mean, const double[::1] sample_weight,
                  const double[::1] closest_sq, const double[:, ::1] candidates_t, double[:, ::1] pots,
                  double[:, ::1] new_closest, int n_threads, Py_ssize_t block_size):
    """pots (S, L) zero-filled: per slot, sum_i w_i min(closest_sq_i, ||z_i - cand_l||^2);
    new_closest (L, N) or None receives those minima."""
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1]
    cdef Problem p = _problem(N, D, candidates_t, sample_weight, block_size, pots.shape[0], x_mean.shape[0])
    cdef Py_ssize_t L = p.n_centers, slot, start, stop
    if closest_sq.shape[0] != N or pots.shape[1] != L:
        raise ValueError("closest_sq must have shape (n_samples,) and pots (n_slots, n_candidates)")
    if new_closest is not None and (new_closest.shape[0] != L or new_closest.shape[1] != N):
        raise ValueError("new_closest must have shape (n_candidates, n_samples)")
    cdef double* out = NULL if new_closest is None else &new_closest[0, 0]
    cdef floating* xm_rep = _tiled_mean(x_mean)
    cdef double* doubled = NULL  # the candidates doubled, for the AVX-512 pair tiles (L == 4)
    cdef Py_ssize_t d, c
    if PAIRS4 and L == 4:
        doubled = <double*> malloc(8 * D * sizeof(double))
        if doubled == NULL:
            free(xm_rep)
            raise MemoryError("fastem: could not allocate k-means scratch")
        for d in range(D):
            for c in range(8):
                doubled[8 * d + c] = candidates_t[d, c // 2]
    cdef double* work
    cdef double* sums
    cdef int failed = 0
    cdef int* failed_p = &failed  # a write to a shared variable in a parallel block goes through a pointer
    with nogil, parallel(num_threads=n_threads):
        work = _scratch(D, L)
        sums = <double*> malloc(L * sizeof(double))  # the slot's potentials, in this thread's memory (see assign)
        if work == NULL or sums == NULL:
            failed_p[0] = 1
        for slot in prange(p.n_slots, schedule="dynamic"):
            if work != NULL and sums != NULL:
                start = _slot_start(&p, slot)
                stop = _slot_start(&p, slot + 1)
                memset(sums, 0, L * sizeof(double))
                _pots_range(&X[0, 0], xm_rep, sizeof(floating) == 4, D, p.centers_t, doubled, L, start, stop,
                            &closest_sq[0], p.sample_weight, out, N, sums, work)
                memcpy(&pots[slot, 0], sums, L * sizeof(double))
        free(work)
        free(sums)
    free(xm_rep)
    free(doubled)
    if failed:
        raise MemoryError("fastem: could not allocate k-means scratch")


def update_closest(const floating[:, ::1] X, const floating[::1] x_mean, double[::1] closest_sq,
                   const double[:, ::1] center_t, int n_threads, Py_ssize_t block_size):
    """closest_sq (N,) in/out: min(closest_sq, ||z - center||^2); center_t (D, 1)."""
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1]
    cdef Py_ssize_t n_blocks = (N + block_size - 1) // block_size
    cdef Problem p = _problem(N, D, center_t, None, block_size, n_blocks, x_mean.shape[0])
    if closest_sq.shape[0] != N or center_t.shape[1] != 1:
        raise ValueError("closest_sq must have shape (n_samples,) and center_t (n_features, 1)")
    cdef Py_ssize_t slot, start, stop
    cdef floating* xm_rep = _tiled_mean(x_mean)
    cdef double* work
    cdef int failed = 0
    cdef int* failed_p = &failed  # a write to a shared variable in a parallel block goes through a pointer
    with nogil, parallel(num_threads=n_threads):
        work = _scratch(D, 1)
        if work == NULL:
            failed_p[0] = 1
        for slot in prange(p.n_slots, schedule="static"):
            if work != NULL:
                start = _slot_start(&p, slot)
                stop = _slot_start(&p, slot + 1)
                _closest_range(&X[0, 0], xm_rep, sizeof(floating) == 4, D, p.centers_t, start, stop, &closest_sq[0],
                               work)
        free(work)
    free(xm_rep)
    if failed:
        raise MemoryError("fastem: could not allocate k-means scratch")
