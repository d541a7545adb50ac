/* The expanded form's two products where BLAS's call and packing cost more than the
   flops (measured: OpenBLAS spent a third of the pass copying 256 x 32 operands; at
   64 x 16 full, a quarter). Register tiles of 4-double
   vectors, and 8-double ones in the AVX-512 build (_vector4.h); each sum runs in
   a fixed order, and every row takes the same path, so no result depends on the
   thread count or on where the block boundaries fall. This file: the moments; the
   log-probs' tile is the template _expanded_log_prob.h. */
#ifndef FASTEM_EXPANDED_MOMENTS_H
#define FASTEM_EXPANDED_MOMENTS_H
#include "_vector4.h"

/* mom[(k0 + q) * F + f] += sum_i R[(k0 + q) * ld + i] A[i * F + f] for the nk components
   from k0 and the features from f0, one scalar sum each */
static inline void fastem_moments_scalar(const double* A, Py_ssize_t n, Py_ssize_t F, const double* R,
                                         Py_ssize_t ld, Py_ssize_t k0, Py_ssize_t nk, Py_ssize_t f0, double* mom) {
    for (Py_ssize_t q = 0; q < nk; q++) {
        const double* rq = R + (k0 + q) * ld;
        double* mq = mom + (k0 + q) * F;
        for (Py_ssize_t f = f0; f < F; f++) {
            double acc = mq[f];
            for (Py_ssize_t i = 0; i < n; i++) acc += rq[i] * A[i * F + f];
            mq[f] = acc;
        }
    }
}

/* mom[k * F + f] += sum_i R[k * ld + i] A[i * F + f], i in order, over the n rows of A
   (row-major n x F); R (K x ld) the weighted responsibilities. Tiles stay in registers
   over the rows: in the AVX-512 build first 16 components x 8 features (each row's
   features are read once for 16 components: A outgrows the L2 cache where these tiles
   run), then 4 components x 8 and 4 features. */
static void fastem_expanded_moments(const double* A, Py_ssize_t n, Py_ssize_t F, const double* R,
                                    Py_ssize_t ld, Py_ssize_t K, double* mom) {
    Py_ssize_t k0 = 0;
#if FASTEM_VECTORS8
    for (; k0 + 16 <= K; k0 += 16) {
        const double* r = R + k0 * ld;
        Py_ssize_t f0 = 0;
        for (; f0 + 8 <= F; f0 += 8) {
            fastem_v8d acc[16];
            for (int q = 0; q < 16; q++) acc[q] = fastem_load8(mom + (k0 + q) * F + f0);
            for (Py_ssize_t i = 0; i < n; i++) {
                const fastem_v8d av = fastem_load8(A + i * F + f0);
                for (int q = 0; q < 16; q++) acc[q] += fastem_splat8(r[q * ld + i]) * av;
            }
            for (int q = 0; q < 16; q++) fastem_store8(mom + (k0 + q) * F + f0, acc[q]);
        }
        fastem_moments_scalar(A, n, F, R, ld, k0, 16, f0, mom);
    }
#endif
    for (; k0 < K; k0 += 4) {
        const Py_ssize_t nk = K - k0 < 4 ? K - k0 : 4;
        Py_ssize_t f0 = 0;
#if FASTEM_VECTORS
        if (nk == 4) {
            const double* r[4] = {R + k0 * ld, R + (k0 + 1) * ld, R + (k0 + 2) * ld, R + (k0 + 3) * ld};
            for (; f0 + 8 <= F; f0 += 8) {
                fastem_v4d lo[4], hi[4];
                for (int q = 0; q < 4; q++) {
                    lo[q] = fastem_load4(mom + (k0 + q) * F + f0);
                    hi[q] = fastem_load4(mom + (k0 + q) * F + f0 + 4);
                }
                for (Py_ssize_t i = 0; i < n; i++) {
                    const fastem_v4d al = fastem_load4(A + i * F + f0), ah = fastem_load4(A + i * F + f0 + 4);
                    for (int q = 0; q < 4; q++) {
                        const fastem_v4d x = fastem_splat(r[q][i]);
                        lo[q] += x * al;
                        hi[q] += x * ah;
                    }
                }
                for (int q = 0; q < 4; q++) {
                    fastem_store4(mom + (k0 + q) * F + f0, lo[q]);
                    fastem_store4(mom + (k0 + q) * F + f0 + 4, hi[q]);
                }
            }
            for (; f0 + 4 <= F; f0 += 4) {
                fastem_v4d acc[4];
                for (int q = 0; q < 4; q++) acc[q] = fastem_load4(mom + (k0 + q) * F + f0);
                for (Py_ssize_t i = 0; i < n; i++) {
                    const fastem_v4d av = fastem_load4(A + i * F + f0);
                    for (int q = 0; q < 4; q++) acc[q] += fastem_splat(r[q][i]) * av;
                }
                for (int q = 0; q < 4; q++) fastem_store4(mom + (k0 + q) * F + f0, acc[q]);
            }
        }
#endif
        /* the features left, and every feature of a last group of fewer than 4 components */
        fastem_moments_scalar(A, n, F, R, ld, k0, nk, f0, mom);
    }
}

#endif
