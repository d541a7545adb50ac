/* 4-double vectors (and 8-double ones in the AVX-512 build) for the Cython kernels'
   register tiles: GCC/Clang vector extensions, AVX2/AVX-512 registers in those builds
   and SSE2 pairs in the baseline one.
   FASTEM_VECTORS is 0 where the extensions are missing (the kernels' scalar paths run). */
#ifndef FASTEM_VECTOR4_H
#define FASTEM_VECTOR4_H
#include <string.h>
#if defined(__GNUC__) || defined(__clang__)
#define FASTEM_VECTORS 1
typedef double fastem_v4d __attribute__((vector_size(32)));
static inline fastem_v4d fastem_load4(const double* p) { fastem_v4d v; memcpy(&v, p, sizeof v); return v; }
static inline void fastem_store4(double* p, fastem_v4d v) { memcpy(p, &v, sizeof v); }
static inline fastem_v4d fastem_splat(double x) { const fastem_v4d v = {x, x, x, x}; return v; }
#if defined(__AVX512F__)
/* 8-double vectors (one AVX-512 register) where the build has them */
#define FASTEM_VECTORS8 1
typedef double fastem_v8d __attribute__((vector_size(64)));
static inline fastem_v8d fastem_load8(const double* p) { fastem_v8d v; memcpy(&v, p, sizeof v); return v; }
static inline void fastem_store8(double* p, fastem_v8d v) { memcpy(p, &v, sizeof v); }
static inline fastem_v8d fastem_splat8(double x) { const fastem_v8d v = {x, x, x, x, x, x, x, x}; return v; }
#else
#define FASTEM_VECTORS8 0
#endif
#else
#define FASTEM_VECTORS 0
#define FASTEM_VECTORS8 0
#endif
#endif
