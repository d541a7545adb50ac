/* The expanded form's log-prob tile (see _expanded_moments.h for the products' design).

   A template, included once per type of the log-prob buffer: define FASTEM_LP (double
   or float) and FASTEM_TILE(name) (the function's name) first. The sums are float64
   either way; a float buffer (float32 X) only rounds the stored log-probs, so that the
   responsibilities' passes over it run on 8-float vectors. */

#include "_vector4.h"

#ifndef FASTEM_LP_TILE2
/* The tile of 2 WIDTH components over the 4 rows a[] (in fastem_expanded_log_prob's loop),
   in WIDTH-double vectors VT (LOAD, SPLAT: that width's load and broadcast) */
#define FASTEM_LP_TILE2(VT, WIDTH, LOAD, SPLAT) \
        for (; k0 + 2 * (WIDTH) <= K; k0 += 2 * (WIDTH)) { \
            VT lo[4], hi[4]; \
            for (int r = 0; r < 4; r++) { lo[r] = LOAD(cst + k0); hi[r] = LOAD(cst + k0 + (WIDTH)); } \
            const double* w = W + k0; \
            for (Py_ssize_t f = 0; f < F; f++, w += K) { \
                const VT wl = LOAD(w), wh = LOAD(w + (WIDTH)); \
                for (int r = 0; r < 4; r++) { \
                    const VT x = SPLAT(a[r][f]); \
                    lo[r] += x * wl; \
                    hi[r] += x * wh; \
                } \
            } \
            for (Py_ssize_t r = 0; r < nr; r++) \
                for (int q = 0; q < (WIDTH); q++) { \
                    lp[(k0 + q) * ld + i0 + r] = (FASTEM_LP) lo[r][q]; \
                    lp[(k0 + (WIDTH) + q) * ld + i0 + r] = (FASTEM_LP) hi[r][q]; \
                } \
        }
#endif

/* lp[k * ld + i] = cst[k] + sum_f A[i * F + f] W[f * K + k], f in order, for the n rows
   of A (row-major n x F); W row-major (F x K). Four rows share each load of W, and 16
   (AVX-512), 8, then 4 components are the vector lanes; a short last group repeats its last row
   and stores only its own rows. */
static void FASTEM_TILE(fastem_expanded_log_prob)(const double* A, Py_ssize_t n, Py_ssize_t F, const double* W,
                                                   Py_ssize_t K, const double* cst, FASTEM_LP* lp, Py_ssize_t ld) {
    for (Py_ssize_t i0 = 0; i0 < n; i0 += 4) {
        const Py_ssize_t nr = n - i0 < 4 ? n - i0 : 4;
        const double* a[4];
        for (Py_ssize_t r = 0; r < 4; r++) a[r] = A + (i0 + (r < nr ? r : nr - 1)) * F;
        Py_ssize_t k0 = 0;
#if FASTEM_VECTORS8
        FASTEM_LP_TILE2(fastem_v8d, 8, fastem_load8, fastem_splat8);
#endif
#if FASTEM_VECTORS
        FASTEM_LP_TILE2(fastem_v4d, 4, fastem_load4, fastem_splat);
        for (; k0 + 4 <= K; k0 += 4) {
            fastem_v4d acc[4];
            for (int r = 0; r < 4; r++) acc[r] = fastem_load4(cst + k0);
            const double* w = W + k0;
            for (Py_ssize_t f = 0; f < F; f++, w += K) {
                const fastem_v4d wv = fastem_load4(w);
                for (int r = 0; r < 4; r++) acc[r] += fastem_splat(a[r][f]) * wv;
            }
            for (Py_ssize_t r = 0; r < nr; r++)
                for (int q = 0; q < 4; q++) lp[(k0 + q) * ld + i0 + r] = (FASTEM_LP) acc[r][q];
        }
#endif
        for (; k0 < K; k0++) {
            double acc[4];
            for (int r = 0; r < 4; r++) acc[r] = cst[k0];
            for (Py_ssize_t f = 0; f < F; f++) {
                const double w = W[f * K + k0];
                for (int r = 0; r < 4; r++) acc[r] += a[r][f] * w;
            }
            for (Py_ssize_t r = 0; r < nr; r++) lp[k0 * ld + i0 + r] = (FASTEM_LP) acc[r];
        }
    }
}

#undef FASTEM_LP
#undef FASTEM_TILE
