/* Transposed, centred copies of a block of rows, for the Cython kernels' column loops:
   out[d * ld + i] = x[i * D + d] - c[d] (c NULL: no centring) for the n rows of the
   row-major block x, the subtraction in float64, then rounded to out's type.

   4 x 4 tiles are transposed in vector registers, so that every store is a 4-value
   vector: element by element, one scalar store per value into D streams, this copy was
   30 % of a 1e6 x 16, K = 8 spherical em_stats pass on the 2-vCPU Zen 4 EPYC. Each value
   is the scalar loop's one subtraction and one rounding, so the bits are the same. */
#ifndef FASTEM_TRANSPOSE_H
#define FASTEM_TRANSPOSE_H
#include <stddef.h>
#include "_vector4.h"

#if FASTEM_VECTORS
typedef float fastem_v4f __attribute__((vector_size(16)));
#if defined(__clang__)
#define FASTEM_SHUFFLE4(a, b, i, j, k, l) __builtin_shufflevector((a), (b), i, j, k, l)
#else
typedef long long fastem_v4i64 __attribute__((vector_size(32)));
#define FASTEM_SHUFFLE4(a, b, i, j, k, l) __builtin_shuffle((a), (b), (fastem_v4i64) {i, j, k, l})
#endif
#define FASTEM_CONVERT(v, T) __builtin_convertvector((v), T)
static inline fastem_v4d fastem_load4_f32(const float* p) {
    fastem_v4f v;
    memcpy(&v, p, sizeof v);
    return FASTEM_CONVERT(v, fastem_v4d);
}
static inline void fastem_store4_f32(float* p, fastem_v4d v) {
    const fastem_v4f f = FASTEM_CONVERT(v, fastem_v4f);
    memcpy(p, &f, sizeof f);
}
#endif

/* The body for X's type XT and out's type OT; LOAD4 / STORE4 move 4 values between
   memory of that type and a 4-double vector; FASTEM_TRANSPOSED_AT is one value the
   scalar way (the rows and columns after the last whole tile). */
#define FASTEM_TRANSPOSED_AT(OT, i, d) out[(d) * ld + (i)] = (OT) ((double) x[(i) * D + (d)] - (c ? c[d] : 0.0))
#define FASTEM_TRANSPOSE_BODY(XT, OT, LOAD4, STORE4) \
    Py_ssize_t i0 = 0, d; \
    FASTEM_TRANSPOSE_TILES(XT, OT, LOAD4, STORE4) \
    for (; i0 < n; i0++) { \
        for (d = 0; d < D; d++) FASTEM_TRANSPOSED_AT(OT, i0, d); \
    }

#if FASTEM_VECTORS
#define FASTEM_TRANSPOSE_TILES(XT, OT, LOAD4, STORE4) \
    const Py_ssize_t D4 = D - D % 4; \
    for (; i0 + 4 <= n; i0 += 4) { \
        const XT* r = x + i0 * D; \
        for (d = 0; d < D4; d += 4) { \
            const fastem_v4d cv = c ? fastem_load4(c + d) : fastem_splat(0.0); \
            const fastem_v4d r0 = LOAD4(r + d) - cv, r1 = LOAD4(r + D + d) - cv; \
            const fastem_v4d r2 = LOAD4(r + 2 * D + d) - cv, r3 = LOAD4(r + 3 * D + d) - cv; \
            const fastem_v4d t0 = FASTEM_SHUFFLE4(r0, r1, 0, 4, 2, 6), t1 = FASTEM_SHUFFLE4(r0, r1, 1, 5, 3, 7); \
            const fastem_v4d t2 = FASTEM_SHUFFLE4(r2, r3, 0, 4, 2, 6), t3 = FASTEM_SHUFFLE4(r2, r3, 1, 5, 3, 7); \
            STORE4(out + d * ld + i0, FASTEM_SHUFFLE4(t0, t2, 0, 1, 4, 5)); \
            STORE4(out + (d + 1) * ld + i0, FASTEM_SHUFFLE4(t1, t3, 0, 1, 4, 5)); \
            STORE4(out + (d + 2) * ld + i0, FASTEM_SHUFFLE4(t0, t2, 2, 3, 6, 7)); \
            STORE4(out + (d + 3) * ld + i0, FASTEM_SHUFFLE4(t1, t3, 2, 3, 6, 7)); \
        } \
        for (d = D4; d < D; d++) { \
            for (Py_ssize_t i = i0; i < i0 + 4; i++) FASTEM_TRANSPOSED_AT(OT, i, d); \
        } \
    }
#else
#define FASTEM_TRANSPOSE_TILES(XT, OT, LOAD4, STORE4)
#endif

static inline void fastem_transpose_f64(const double* x, Py_ssize_t n, Py_ssize_t D, const double* c, double* out,
                                        Py_ssize_t ld) {
    FASTEM_TRANSPOSE_BODY(double, double, fastem_load4, fastem_store4)
}

static inline void fastem_transpose_f32(const float* x, Py_ssize_t n, Py_ssize_t D, const double* c, double* out,
                                        Py_ssize_t ld) {
    FASTEM_TRANSPOSE_BODY(float, double, fastem_load4_f32, fastem_store4)
}

static inline void fastem_transpose_f32_f32(const float* x, Py_ssize_t n, Py_ssize_t D, const double* c, float* out,
                                            Py_ssize_t ld) {
    FASTEM_TRANSPOSE_BODY(float, float, fastem_load4_f32, fastem_store4_f32)
}

#undef FASTEM_TRANSPOSE_TILES
#undef FASTEM_TRANSPOSE_BODY
#undef FASTEM_TRANSPOSED_AT
#endif
