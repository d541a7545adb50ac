# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Gaussian mixture kernels: Cython + OpenMP, BLAS from scipy (nogil).

One source for float32 and float64 ``X`` (fused type); parameters and accumulators
are float64 (for float32 ``X`` the responsibilities' exps are float32, and the expanded
form's whole block within its float32 rounding bound: see Model.single_blocks). Rows
are cut into blocks of ``block_size``, and each block takes one of two forms:

- expanded (diag, spherical, and full when cython_backend allows it): the block becomes
  the row-major (rows x F) matrix ``A = [q(x - c0), x - c0]``, with q the quadratic
  features (z**2, ||z||**2, or the lower triangle of z z^T), and both steps are one
  product with it for all components: log-probs ``cst + A @ W`` and moments ``R^T A``
  around ``c0`` (recentred by the caller), register-tiled loops for small products and
  GEMM for large ones (see _small_gemm);
- direct (full, tied): the block is copied, transposed and converted to float64 (``XT``,
  D x block_size) so that the inner loops run over contiguous rows, and BLAS sees it as a
  column-major (rows x D) matrix: log-probs from ``(X - c0) P_k`` (one GEMM per group of
  components), moments around each component's shift (one GEMM per component); plain
  loops instead of GEMM for a few features (see SMALL_DIRECT_MAX_FEATURES).

Determinism: blocks are grouped into ``n_slots`` contiguous runs (``n_slots`` depends
only on N and block_size, chosen by the caller); each slot accumulates its blocks in
order into its own row of the output buffers; ``prange`` runs over slots and the
caller sums the slots in order. So the result does not depend on the thread count.

Called only through :mod:`fastem._kernels.cython_backend`, which precomputes the
per-component constants. Shapes are checked here (cheaply, before releasing the GIL)
so that the compiled loops never read out of bounds.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.math cimport INFINITY, exp, isfinite, log, sqrt
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport dgemm, sgemm
from scipy.linalg.cython_lapack cimport dpotrf, dtrtrs

cdef extern from *:
    """
    #include "_vector4.h"
    #if defined(__GNUC__) || defined(__clang__)
    #define FASTEM_PREFETCH(p) __builtin_prefetch(p)
    #else
    #define FASTEM_PREFETCH(p) ((void) 0)
    #endif
    /* the F x K the expanded form's register tiles take (see _small_log_prob_gemm) */
    #define FASTEM_SMALL_GEMM_MAX_COEFFICIENTS 65536
    #if defined(__AVX512F__)
    #define FASTEM_SMALL_GEMM_MIN_COEFFICIENTS 4096
    #else
    #define FASTEM_SMALL_GEMM_MIN_COEFFICIENTS 0
    #endif

    /* exp(x) is normal from these x on (ln of the smallest normal, rounded up): from
       them on, _exp_nonpos's polynomial times 2**n never underflows */
    #define FASTEM_EXP_MIN_FLOAT64 (-708.39)
    #define FASTEM_EXP_MIN_FLOAT32 (-87.33f)

    /* the expanded form's register tiles: moments, and log-probs into float64 or float32 */
    #include "_expanded_moments.h"
    #define FASTEM_LP double
    #define FASTEM_TILE(name) name
    #include "_expanded_log_prob.h"
    #define FASTEM_LP float
    #define FASTEM_TILE(name) name##_single
    #include "_expanded_log_prob.h"
    #include "_transpose.h"
    """
    void FASTEM_PREFETCH(const void* p) noexcept nogil
    void _transpose_f64 "fastem_transpose_f64"(const double* x, Py_ssize_t n, Py_ssize_t D, const double* c,
                                               double* out, Py_ssize_t ld) noexcept nogil
    void _transpose_f32 "fastem_transpose_f32"(const float* x, Py_ssize_t n, Py_ssize_t D, const double* c,
                                               double* out, Py_ssize_t ld) noexcept nogil
    void _transpose_f32_f32 "fastem_transpose_f32_f32"(const float* x, Py_ssize_t n, Py_ssize_t D, const double* c,
                                                       float* out, Py_ssize_t ld) noexcept nogil
    const Py_ssize_t SMALL_GEMM_MAX_COEFFICIENTS "FASTEM_SMALL_GEMM_MAX_COEFFICIENTS"
    const Py_ssize_t SMALL_GEMM_MIN_COEFFICIENTS "FASTEM_SMALL_GEMM_MIN_COEFFICIENTS"
    const double EXP_MIN_FLOAT64 "FASTEM_EXP_MIN_FLOAT64"
    const float EXP_MIN_FLOAT32 "FASTEM_EXP_MIN_FLOAT32"
    void _small_log_prob "fastem_expanded_log_prob"(const double* A, Py_ssize_t n, Py_ssize_t F, const double* W,
                                                    Py_ssize_t K, const double* cst, double* lp,
                                                    Py_ssize_t ld) noexcept nogil
    void _small_moments "fastem_expanded_moments"(const double* A, Py_ssize_t n, Py_ssize_t F, const double* R,
                                                  Py_ssize_t ld, Py_ssize_t K, double* mom) noexcept nogil
    void _small_log_prob_single "fastem_expanded_log_prob_single"(
        const double* A, Py_ssize_t n, Py_ssize_t F, const double* W, Py_ssize_t K, const double* cst, float* lp,
        Py_ssize_t ld) noexcept nogil


ctypedef fused block_float:
    # the expanded form's block A and its products: float64, or float32 for float32 X
    # within its rounding bound (see Model.single_blocks)
    float
    double


# covariance type codes (the Python entry points take the names)
cdef enum:
    FULL = 0
    TIED = 1
    DIAG = 2
    SPHERICAL = 3


cdef union _Float64Bits:
    double d
    unsigned long long u


cdef union _Float32Bits:
    float f
    unsigned int u


cdef inline floating _exp_nonpos(floating x) noexcept nogil:
    """exp(x) for x <= 0 (including -inf), written so that loops over it vectorise.

    Cody-Waite reduction x = n ln2 + r, |r| <= ln2 / 2, a Taylor polynomial (float64:
    degree 13, truncation < 1e-17; float32: degree 7, < 6e-9), and 2**n built from the
    bits of the rounding constant. About 2 ulp of the type; 0 where exp(x) is subnormal,
    below EXP_MIN_FLOAT64 (float32: EXP_MIN_FLOAT32): an Intel core takes a microcode
    assist for every vector that makes or reads a subnormal (float32 responsibilities of
    well-separated blobs took twice float64's time on an AVX-512 Xeon), and such a
    responsibility is below any sum's rounding.
    """
    cdef _Float64Bits rounded, scale
    cdef _Float32Bits rounded_f, scale_f
    cdef double x_d, n, r, p
    cdef float x_f, n_f, r_f, p_f
    if floating is float:  # every constant cast, so that C computes in float
        x_f = x if x > EXP_MIN_FLOAT32 else EXP_MIN_FLOAT32
        rounded_f.f = x_f * <float> 1.4426950408889634 + <float> 12582912.0  # 1.5 * 2**23: round to integer
        n_f = rounded_f.f - <float> 12582912.0
        r_f = (x_f - n_f * <float> 0.693145751953125) - n_f * <float> 1.4286068202862268e-06  # ln 2 = hi + lo
        p_f = <float> (1.0 / 5040.0)
        p_f = p_f * r_f + <float> (1.0 / 720.0)
        p_f = p_f * r_f + <float> (1.0 / 120.0)
        p_f = p_f * r_f + <float> (1.0 / 24.0)
        p_f = p_f * r_f + <float> (1.0 / 6.0)
        p_f = p_f * r_f + <float> 0.5
        p_f = p_f * r_f + <float> 1.0
        p_f = p_f * r_f + <float> 1.0
        scale_f.u = (rounded_f.u + 127) << 23  # 2**n: the low bits of rounded hold n
        return p_f * scale_f.f if x >= EXP_MIN_FLOAT32 else <float> 0.0
    else:
        x_d = x if x > EXP_MIN_FLOAT64 else EXP_MIN_FLOAT64
        rounded.d = x_d * 1.4426950408889634 + 6755399441055744.0  # 1.5 * 2**52: round to integer
        n = rounded.d - 6755399441055744.0
        r = (x_d - n * 0.6931471803691238) - n * 1.9082149292705877e-10  # ln 2 = hi + lo, hi * n exact
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        scale.u = (rounded.u + 1023) << 52  # 2**n: the low bits of rounded hold n
        return p * scale.d if x >= EXP_MIN_FLOAT64 else 0.0


cdef inline double _log_pos(double x) noexcept nogil:
    """log(x) for x >= 0 (0 gives -inf, NaN stays NaN), written so that loops over it
    vectorise (glibc's log is one scalar call per row).

    x = 2**e m with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s), s = (m - 1) / (m + 1),
    |s| < 0.1716, by its odd series to s**23 (truncation < 1e-18); e ln 2 in two parts.
    At most 2 ulp for normal x (tested); subnormal x (never a sum of exps with a term of 1)
    are not handled.
    """
    cdef _Float64Bits bits, exponent
    cdef double e, m, s, s2, p
    bits.d = x
    # the biased exponent as a double through the bits of 2**52 (AVX2 has no vector int64 -> double)
    exponent.u = (bits.u >> 52) | 0x4330000000000000ULL
    e = exponent.d - (4503599627370496.0 + 1023.0)
    bits.u = (bits.u & 0x000FFFFFFFFFFFFFULL) | 0x3FF0000000000000ULL  # m in [1, 2)
    m = bits.d
    e = e + 1.0 if m > 1.4142135623730951 else e
    m = m * 0.5 if m > 1.4142135623730951 else m
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    p = 1.0 / 23.0
    p = p * s2 + 1.0 / 21.0
    p = p * s2 + 1.0 / 19.0
    p = p * s2 + 1.0 / 17.0
    p = p * s2 + 1.0 / 15.0
    p = p * s2 + 1.0 / 13.0
    p = p * s2 + 1.0 / 11.0
    p = p * s2 + 1.0 / 9.0
    p = p * s2 + 1.0 / 7.0
    p = p * s2 + 1.0 / 5.0
    p = p * s2 + 1.0 / 3.0
    m = (e * 0.6931471803691238 + 2.0 * s) + (e * 1.9082149292705877e-10 + 2.0 * s * s2 * p)
    return m if x > 0.0 else (-INFINITY if x == 0.0 else x - x)


cdef struct Model:
    # log-prob parameters (see cython_backend._log_prob_params)
    Py_ssize_t n_features, n_components
    int cov
    Py_ssize_t n_quad        # expanded form (see _load_expanded): quadratic features per row; 0 otherwise
    const double* means      # (K, D); full/tied: (means - center) @ P; unused by the expanded form
    const double* prec       # full (K, D, D), tied (D, D); expanded: W (n_quad + D, K), see _log_prob_block
    const double* center     # (D,) the data's centring c0 (all types)
    const double* cst        # (K,) log weight + log det - D/2 log(2 pi) (expanded: + W's constant)
    const float* prec_single # expanded, float32 X: W as float32, or NULL
    bint single_blocks       # A, its log-probs, responsibilities and moments' products in float32 (see stats)
    # statistics
    const double* shift      # (K, D); tied (D,); unused by diag/spherical (moments around center)
    const double* sample_weight  # (N,) or NULL


cdef struct Scratch:
    # per-thread buffers; ld = leading dimension (>= rows per block, padded to 64 bytes)
    Py_ssize_t ld
    void* base       # the allocation the buffers below are carved from (see _scratch_alloc)
    double* xt       # (D, ld) transposed block
    double* work     # (D, ld) centred block; full statistics: (ld, D + 1) row-major; expanded: A (ld, F)
    double* y        # (G D, ld) projected block (direct full/tied)
    double* lp       # (K, ld) log-probs, then weighted responsibilities
    float* lp_single # expanded: (K, ld) float32 log-probs (float32 X, see _slot)
    double* row_a    # (ld,)
    double* row_b    # (ld,)
    double* sq       # (ld,)
    double* mom      # the slot's moments: expanded (K, F) [quadratic, linear] around center;
                     # full (K, D + 1, D) [sum_xx_k, sum_x_k] around shift_k (see _mom_size)
    float* mom_single  # single_blocks: (K, F) one block's moments, added to mom
    int* idx         # (ld,)


cdef Scratch _scratch_alloc(const Model* m, Py_ssize_t ld) noexcept nogil:
    """Per-thread buffers (returned by value so that each thread's copy is private
    in a parallel block); ``xt`` is NULL when allocation failed.

    One allocation, its buffers aligned to 64 bytes (cache lines, AVX-512 vectors) and
    padded by a cache line at both ends, so that no line is shared with another thread's
    scratch (the threads' allocations may be neighbours on the heap)."""
    cdef Scratch s
    s.ld = ld
    cdef Py_ssize_t D = m.n_features, K = m.n_components
    cdef Py_ssize_t GD = 0 if _is_expanded(m) else _group_size(m) * D  # rows of y
    cdef Py_ssize_t W = _n_expanded(m) if _is_expanded(m) else D + 1  # columns of work
    cdef Py_ssize_t L = (K + 1) // 2 if _is_expanded(m) else 0  # rows of doubles holding lp_single
    cdef Py_ssize_t M = (K * W + 1) // 2 if m.single_blocks else 0  # doubles holding mom_single
    cdef size_t n_bytes = ((D + W + GD + K + L + 3) * ld + _mom_size(m) + M) * sizeof(double)
    s.work = s.y = s.lp = s.row_a = s.row_b = s.sq = s.mom = NULL
    s.lp_single = s.mom_single = NULL
    s.base = malloc(n_bytes + 3 * 64)
    s.idx = <int*> malloc(ld * sizeof(int))
    if s.base == NULL or s.idx == NULL:
        free(s.base)
        free(s.idx)
        s.base = s.xt = NULL
        s.idx = NULL
        return s
    s.xt = <double*> ((<size_t> s.base + 127) & ~(<size_t> 63))
    s.work = s.xt + D * ld
    s.y = s.work + W * ld
    s.lp = s.y + GD * ld
    s.row_a = s.lp + K * ld
    s.row_b = s.row_a + ld
    s.sq = s.row_b + ld
    s.lp_single = <float*> (s.sq + ld)
    s.mom = s.sq + (L + 1) * ld
    s.mom_single = <float*> (s.mom + _mom_size(m))
    return s


cdef inline Py_ssize_t _mom_size(const Model* m) noexcept nogil:
    """Doubles in Scratch.mom: expanded (K, F), full (K, D + 1, D), tied none."""
    cdef Py_ssize_t D = m.n_features, K = m.n_components
    if _is_expanded(m):
        return K * _n_expanded(m)
    return K * (D + 1) * D if m.cov == FULL else 0


cdef void _scratch_free(Scratch* s) noexcept nogil:
    free(s.base)
    free(s.idx)


cdef inline void _transpose(const floating* X, Py_ssize_t n, Py_ssize_t D, const double* c, block_float* out,
                            Py_ssize_t ld) noexcept nogil:
    """out[d * ld + i] = X[i, d] - c[d] (c NULL: X[i, d]) for the n rows of the block, in
    float64 and rounded to out's type (see _transpose.h); ld is padded against set
    conflicts between the D write streams."""
    cdef Py_ssize_t i, d
    if floating is double and block_float is double:
        _transpose_f64(X, n, D, c, out, ld)
    elif floating is float and block_float is double:
        _transpose_f32(X, n, D, c, out, ld)
    elif floating is float and block_float is float:
        _transpose_f32_f32(X, n, D, c, out, ld)
    else:  # float64 X, float32 block: not a combination the kernels use (float32 blocks need float32 X)
        for i in range(n):
            for d in range(D):
                out[d * ld + i] = <block_float> (X[i * D + d] - (0.0 if c == NULL else c[d]))


cdef void _load_block(const floating* X, Py_ssize_t n, Py_ssize_t D, double* xt, Py_ssize_t ld) noexcept nogil:
    """xt[d, i] = X[i, d] for the n rows of the block, as float64."""
    _transpose(X, n, D, <const double*> NULL, xt, ld)


cdef inline double _sum_squares(const block_float* z, Py_ssize_t n) noexcept nogil:
    cdef double total = 0.0
    cdef Py_ssize_t i
    for i in range(n):
        total += z[i] * z[i]
    return total


cdef void _load_expanded(const floating* X, Py_ssize_t n, const Model* m, block_float* a) noexcept nogil:
    """a (n, F) row-major = [q(z_i), z_i] with z_i = x_i - center for the n rows of the block;
    the quadratic features q(z) are z**2 (diag), ||z||**2 (spherical), and the lower
    triangle z_d z_e (e <= d) row by row (full). z is formed in float64 and rounded once
    to a's type, q(z) from the rounded z."""
    cdef Py_ssize_t i, d, e, D = m.n_features, F = _n_expanded(m), Q = m.n_quad
    cdef const floating* row
    cdef block_float* q
    cdef block_float* z
    cdef block_float c
    cdef double centre_d
    if D <= 4:  # short rows: one pass per column (per-row loops this short cost more than their work)
        for d in range(D):
            centre_d = m.center[d]
            for i in range(n):
                a[i * F + Q + d] = X[i * D + d] - centre_d
        z = a + Q
        if m.cov == SPHERICAL:
            for i in range(n):
                a[i * F] = 0.0
            for d in range(D):
                for i in range(n):
                    a[i * F] += z[i * F + d] * z[i * F + d]
            return
        q = a  # diag: column d holds z_d z_d; full: the lower triangle's (d, e) row by row
        for d in range(D):
            for e in range(d + 1):
                if m.cov == DIAG and e != d:
                    continue
                for i in range(n):
                    q[i * F] = z[i * F + d] * z[i * F + e]
                q += 1
        return
    for i in range(n):
        row = X + i * D
        q = a + i * F
        z = q + Q
        if m.cov == DIAG:
            for d in range(D):
                c = row[d] - m.center[d]
                q[d] = c * c
                z[d] = c
            continue
        for d in range(D):
            z[d] = row[d] - m.center[d]
        if m.cov == SPHERICAL:
            q[0] = _sum_squares(z, D)
            continue
        for d in range(D):
            c = z[d]
            for e in range(d + 1):
                q[e] = c * z[e]
            q += d + 1


# Where BLAS takes the expanded form's products, spherical and float32 full blocks keep
# A column-major: the row-major squared norm's and triangle's short per-row loops ran
# scalar. But the moments A^T R then take OpenBLAS's TN kernels, slow for small ones
# and packing A for the others, which loses for diag and float64 full. Measured 1e6 rows,
# 2 threads, AVX-512 Xeon, em_stats row-major -> column-major: float32 16 x 8 spherical
# 19.0 -> 13.7 ms, full 61 -> 55, diag 15.6 -> 19.1; float32 64 x 16 full 2.29 -> 1.51 s,
# diag 56 -> 82 ms; float64 16 x 8 spherical 21.2 -> 17.5, full 76 -> 88, 64 x 16
# spherical 81 -> 72, full 2.26 -> 2.24 s. The register tiles read a row-major A.
cdef inline bint _columns(const Model* m) noexcept nogil:
    """Whether the expanded block A is column-major (else row-major, as _load_expanded's)."""
    return (m.cov == SPHERICAL or (m.cov == FULL and m.single_blocks)) and not _small_log_prob_gemm(m)


cdef inline int _lda(const Model* m, Py_ssize_t ld) noexcept nogil:
    """The leading dimension of the expanded block A as the GEMMs see it (see _columns)."""
    return <int> ld if _columns(m) else <int> _n_expanded(m)


cdef void _load_expanded_columns(const floating* X, Py_ssize_t n, const Model* m, block_float* a, Py_ssize_t ld,
                                 double* total) noexcept nogil:
    """The expanded form's block column-major: a[f * ld + i] = A[i, f] (see _load_expanded),
    every feature one vector loop over the block's rows (the row-major triangle's short
    loops ran scalar). z = x - center is formed in float64 and rounded once to a's type;
    q(z) from the rounded z, ||z||**2 summed in float64 in total (n,)."""
    cdef Py_ssize_t i, d, e, D = m.n_features, Q = m.n_quad
    cdef block_float* z = a + Q * ld
    cdef block_float* q = a
    cdef block_float* zd
    cdef block_float* ze
    _transpose(X, n, D, m.center, z, ld)
    if m.cov == SPHERICAL:
        for i in range(n):
            total[i] = 0.0
        for d in range(D):
            zd = z + d * ld
            for i in range(n):
                total[i] += <double> zd[i] * zd[i]
        for i in range(n):
            q[i] = <block_float> total[i]
        return
    for d in range(D):  # diag: column d holds z_d z_d; full: the lower triangle's (d, e) row by row
        zd = z + d * ld
        for e in range(d + 1):
            if m.cov == DIAG and e != d:
                continue
            ze = z + e * ld
            for i in range(n):
                q[i] = zd[i] * ze[i]
            q += ld


cdef void _centre_columns(const double* xt, Py_ssize_t n, Py_ssize_t D, Py_ssize_t ld, const double* c,
                          double* out) noexcept nogil:
    """out[d * ld + i] = xt[d * ld + i] - c[d] for the n rows of a transposed (D x ld) block."""
    cdef Py_ssize_t i, d
    cdef const double* x
    cdef double* z
    for d in range(D):
        x = xt + d * ld
        z = out + d * ld
        for i in range(n):
            z[i] = x[i] - c[d]


cdef void _prefetch(const void* p, Py_ssize_t n_bytes) noexcept nogil:
    """Ask for [p, p + n_bytes) in cache: the next block streams in while this one computes."""
    cdef const char* c = <const char*> p
    cdef Py_ssize_t off
    for off in range(0, n_bytes, 64):
        FASTEM_PREFETCH(c + off)


cdef inline bint _is_expanded(const Model* m) noexcept nogil:
    """Expanded form: log-probs and moments are GEMMs with the block's A (see _load_expanded)."""
    return m.n_quad > 0


cdef inline Py_ssize_t _n_expanded(const Model* m) noexcept nogil:
    """F: columns of the expanded form's A (0 when not expanded)."""
    return m.n_quad + m.n_features if m.n_quad > 0 else 0


# The expanded form's products run in fastem_expanded_log_prob and
# fastem_expanded_moments, not BLAS, up to SMALL_GEMM_MAX_COEFFICIENTS (F x K; beyond,
# each tile would stream the block from far caches); the moments only from
# SMALL_GEMM_MIN_FEATURES features (below, their strided sums lose). Measured, 1e6 rows,
# 2-vCPU AVX2 EPYC, em_stats BLAS -> loops: 16 x 8 diag 45 -> 34 ms, full 148 -> 95 ms,
# 64 x 16 diag 177 -> 144 ms, full 2.53 -> 2.20 s; spherical 2 x 8 (F = 3) moments
# 19 -> 26 ms (and at minimum F = 3, 35 -> 54 ms, 2026-12-03), its log-prob tile on 2 threads
# 27.7 -> 21.5 ms (float64), 18.8 -> 16.8 (float32; one thread 34.9 -> 37.1, 30.4 -> 27.3).
# The AVX-512 build takes the tiles (8-double vectors there, the moments' tile over 16
# components) only from SMALL_GEMM_MIN_COEFFICIENTS: there OpenBLAS's two packing copies
# of each block's A cost a quarter of the pass (64 x 16 full), below its calls win.
# 2-vCPU AMD EPYC with AVX-512 (Zen 4), 2026-12-07, em_stats float64 BLAS -> tiles, same
# runs: 64 x 16 full 2.25-2.41 -> 1.52-1.59 s, 32 x 16 full 575 -> 400 ms, 16 x 32 full
# 278 -> 225, 64 x 32 diag 235-247 -> 201-205; below 4096 coefficients 64 x 16 diag 108 ->
# 113, 16 x 32 diag 65 -> 70, spherical 64 x 16 85 -> 97, 16 x 32 50 -> 68, 24 x 32 63 ->
# 81, 16 x 8 full 80-100 either way. The 4-double tiles lost to BLAS at every size on the
# 2-vCPU AVX-512 Xeon (2026-12-04, float64 loops -> BLAS: 2 x 8 full 16.2 -> 11.3 ms,
# 16 x 8 full 94 -> 78, 16 x 32 diag 76 -> 56, 64 x 16 diag 139 -> 95, full 3.50 -> 2.38 s);
# the 8-double ones are not yet measured there.
cdef enum:
    SMALL_GEMM_MIN_FEATURES = 4


cdef inline bint _small_log_prob_gemm(const Model* m) noexcept nogil:
    """Whether the expanded form's log-prob product is the register-tiled loop."""
    cdef Py_ssize_t coefficients = _n_expanded(m) * m.n_components
    return SMALL_GEMM_MIN_COEFFICIENTS <= coefficients <= SMALL_GEMM_MAX_COEFFICIENTS


cdef inline bint _small_gemm(const Model* m) noexcept nogil:
    """Whether the expanded form's moments product is the register-tiled loop too."""
    return _n_expanded(m) >= SMALL_GEMM_MIN_FEATURES and _small_log_prob_gemm(m)


# The direct form's products (full and tied) run in plain loops, not BLAS, up to
# SMALL_DIRECT_MAX_FEATURES features: for a few features a GEMM call and its packing cost
# more than its flops. Measured, 1e6 rows, K = 8, 2-vCPU AVX2 EPYC, tied em_stats BLAS ->
# loops: D = 2 18.4 -> 14.4 ms, 4 22.7 -> 18.7, 8 32.6 -> 29.1; at 16 loops lose (58 -> 66).
cdef enum:
    SMALL_DIRECT_MAX_FEATURES = 8

#: for cython_backend: the direct form of full/tied calls BLAS only above this many features
small_direct_max_features = SMALL_DIRECT_MAX_FEATURES


cdef void _project(const double* work, Py_ssize_t n, Py_ssize_t D, Py_ssize_t ld, const double* b,
                   Py_ssize_t cols, double* y) noexcept nogil:
    """y[c * ld + i] = sum_d work[d * ld + i] b[c * D + d], d in order: the direct form's
    GEMM (column-major y (n x cols) = work (n x D) @ b (D x cols)) for small D."""
    cdef Py_ssize_t c, d, i
    cdef double* yc
    cdef const double* w
    cdef double bd
    for c in range(cols):
        yc = y + c * ld
        bd = b[c * D]
        for i in range(n):
            yc[i] = work[i] * bd
        for d in range(1, D):
            w = work + d * ld
            bd = b[c * D + d]
            for i in range(n):
                yc[i] += w[i] * bd


cdef void _load(const Model* m, const floating* X, Py_ssize_t n, Scratch* s) noexcept nogil:
    """The block's rows as the log-prob and statistics steps read them (s.xt or s.work)."""
    if floating is float and m.single_blocks and _columns(m):
        _load_expanded_columns(X, n, m, <float*> s.work, s.ld, s.row_a)
    elif floating is float and m.single_blocks:
        _load_expanded(X, n, m, <float*> s.work)
    elif _is_expanded(m) and _columns(m):
        _load_expanded_columns(X, n, m, s.work, s.ld, s.row_a)
    elif _is_expanded(m):
        _load_expanded(X, n, m, s.work)
    else:
        _load_block(X, n, m.n_features, s.xt, s.ld)


cdef inline Py_ssize_t _group_size(const Model* m) noexcept nogil:
    """Full covariance: components per GEMM (about 128 output columns)."""
    return max(1, min(m.n_components, 128 // m.n_features))


cdef void _log_prob_block(const Model* m, Py_ssize_t n, Scratch* s) noexcept nogil:
    """s.lp[k, i] = cst[k] - 0.5 * ||(x_i - mean_k) P_k||^2 for the block (see _load).

    Full/tied: Y = (X - center) [P_k0 .. P_k1] is one GEMM per group of components,
    then ||Y_k - (mean_k - center) P_k||^2 (m.means holds the latter). Direct diag and
    spherical: sum_d ((x_d - mean_kd) P_kd)**2 (m.prec holds P as (K, D)). Expanded
    form: cst + A W for the block's A (s.work), with W[:, k] the coefficients of
    -||(x - mean_k) P_k||**2 / 2 on the features of A and its constant term in cst
    (cython_backend._log_prob_params).
    """
    cdef Py_ssize_t D = m.n_features, K = m.n_components, ld = s.ld
    cdef Py_ssize_t i, d, k, k0, k1, g
    cdef Py_ssize_t G = _group_size(m) if m.cov == FULL else 1
    cdef Py_ssize_t n_mats = K if m.cov == FULL else 1
    cdef double mu, y, c
    cdef double* acc
    cdef double* w
    cdef const double* x
    cdef int n_ = <int> n, D_ = <int> D, K_ = <int> K, ld_ = <int> ld, F = <int> _n_expanded(m), cols, lda
    cdef double one = 1.0, zero = 0.0
    cdef char notrans = b'N', trans = b'T'
    if _is_expanded(m):
        if _small_log_prob_gemm(m):
            _small_log_prob(s.work, n, F, m.prec, K, m.cst, s.lp, ld)
            return
        _fill_rows(s.lp, ld, n, m.cst, K)
        # column-major lp (n x K, ld) += A (n x F) @ W (K x F column-major)^T
        lda = _lda(m, ld)
        dgemm(&notrans if _columns(m) else &trans, &trans, &n_, &K_, &F, &one, s.work, &lda, <double*> m.prec, &K_,
              &one, s.lp, &ld_)
        return
    for k in range(K):
        acc = s.lp + k * ld
        for i in range(n):
            acc[i] = 0.0
    if m.cov == DIAG or m.cov == SPHERICAL:
        for k in range(K):
            acc = s.lp + k * ld
            for d in range(D):
                mu = m.means[k * D + d]
                c = m.prec[k * D + d]
                x = s.xt + d * ld
                for i in range(n):
                    y = (x[i] - mu) * c
                    acc[i] += y * y
        n_mats = 0
    else:
        _centre_columns(s.xt, n, D, ld, m.center, s.work)
    k0 = 0
    while k0 < n_mats:
        g = min(G, n_mats - k0)
        cols = <int> (g * D)
        # column-major: y (n x g D) = work (n x D) @ prec_t[k0:k0+g] (D x g D)
        if D <= SMALL_DIRECT_MAX_FEATURES:
            _project(s.work, n, D, ld, m.prec + k0 * D * D, cols, s.y)
        else:
            dgemm(&notrans, &notrans, &n_, &cols, &D_, &one, s.work, &ld_, <double*> (m.prec + k0 * D * D), &D_,
                  &zero, s.y, &ld_)
        k1 = k0 + g if m.cov == FULL else K
        for k in range(k0, k1):
            acc = s.lp + k * ld
            for d in range(D):
                mu = m.means[k * D + d]
                w = s.y + ((k - k0) * D + d) * ld if m.cov == FULL else s.y + d * ld
                for i in range(n):
                    y = w[i] - mu
                    acc[i] += y * y
        k0 += g
    for k in range(K):
        acc = s.lp + k * ld
        c = m.cst[k]
        for i in range(n):
            acc[i] = c - 0.5 * acc[i]


cdef void _fill_rows(block_float* lp, Py_ssize_t ld, Py_ssize_t n, const double* cst, Py_ssize_t K) noexcept nogil:
    """lp[k * ld + i] = cst[k] (in lp's type) for the n rows: the expanded form's GEMMs add A W to it."""
    cdef Py_ssize_t i, k
    cdef block_float c
    for k in range(K):
        c = <block_float> cst[k]
        for i in range(n):
            lp[k * ld + i] = c


cdef void _log_prob_block_single(const Model* m, Py_ssize_t n, Scratch* s) noexcept nogil:
    """s.lp_single (K, ld) = cst + A W in float32 (SGEMM) for the block's float32 A
    (single_blocks; see _columns for its layout and _log_prob_block's expanded form)."""
    cdef Py_ssize_t K = m.n_components, ld = s.ld
    cdef int n_ = <int> n, K_ = <int> K, ld_ = <int> ld, F = <int> _n_expanded(m)
    cdef int lda = _lda(m, ld)
    cdef float one = 1.0
    cdef char trans = b'T', notrans = b'N'
    _fill_rows(s.lp_single, ld, n, m.cst, K)
    # column-major lp (n x K, ld) += A (n x F) @ W (K x F column-major)^T
    sgemm(&notrans if _columns(m) else &trans, &trans, &n_, &K_, &F, &one, <float*> s.work, &lda,
          <float*> m.prec_single, &K_, &one, s.lp_single, &ld_)


cdef double _responsibilities(const Model* m, Py_ssize_t row0, Py_ssize_t n, floating* lp, Py_ssize_t ld,
                              floating* amax, floating* total, block_float* resp, double* nk,
                              bint single) noexcept nogil:
    """resp (K, ld) = w_i r_ik from lp (K, ld), the weighted log-probs (overwritten; resp
    may be lp itself), added to nk; returns sum_i w_i log p(x_i) of the block; amax,
    total (n,) are scratch rows. ``single``: X is float32, and the responsibilities need
    only its precision (exps in float32, relative error ~1e-7); a float32 lp (always
    single) keeps every pass in float32 but the sums (and resp, when float32 too)."""
    cdef Py_ssize_t K = m.n_components
    cdef Py_ssize_t i, k
    cdef floating* r
    cdef block_float* out
    cdef const double* w
    cdef floating v, e
    for i in range(n):
        amax[i] = lp[i]
    for k in range(1, K):
        r = lp + k * ld
        for i in range(n):
            v = r[i]
            amax[i] = v if v > amax[i] else amax[i]
    for i in range(n):
        if amax[i] == -INFINITY:  # every component has weight 0 here: log p = -inf, r = 0
            amax[i] = 0.0
        total[i] = 0.0
    for k in range(K):
        r = lp + k * ld
        if single:  # float32 X: the exps in float32 (twice the vector lanes, half the polynomial)
            for i in range(n):
                e = _exp_nonpos(<float> (r[i] - amax[i]))
                r[i] = e
                total[i] += e
        else:
            for i in range(n):
                e = _exp_nonpos(r[i] - amax[i])
                r[i] = e
                total[i] += e
    for i in range(n):  # amax becomes log p(x_i)
        amax[i] = _log_pos(total[i]) + amax[i]
    if m.sample_weight == NULL:
        for i in range(n):
            total[i] = 1.0 / total[i] if total[i] > 0.0 else 0.0
    else:
        w = m.sample_weight + row0
        for i in range(n):
            amax[i] = w[i] * amax[i]
            total[i] = w[i] / total[i] if total[i] > 0.0 else 0.0
    for k in range(K):
        r = lp + k * ld
        out = resp + k * ld
        for i in range(n):
            out[i] = r[i] * total[i]
        nk[k] += _sum(out, n)
    return _sum(amax, n)


cdef inline double _sum(const floating* a, Py_ssize_t n) noexcept nogil:
    """a[0] + ... + a[n - 1] in float64, in a fixed order that vectorises (8 interleaved
    partial sums)."""
    cdef double p[8]
    cdef Py_ssize_t i, j, n8 = n - n % 8
    for j in range(8):
        p[j] = 0.0
    for i in range(0, n8, 8):
        for j in range(8):
            p[j] += a[i + j]
    for i in range(n8, n):
        p[i - n8] += a[i]
    return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]))


cdef inline double _dot(const double* a, const double* b, Py_ssize_t n) noexcept nogil:
    """a[0] b[0] + ... + a[n - 1] b[n - 1] in _sum's fixed order (its own loop: products
    stored to a row for _sum made the tied 1e6 x 8 x 8 pass 19 % slower, 29 -> 35 ms)."""
    cdef double p[8]
    cdef Py_ssize_t i, j, n8 = n - n % 8
    for j in range(8):
        p[j] = 0.0
    for i in range(0, n8, 8):
        for j in range(8):
            p[j] += a[i + j] * b[i + j]
    for i in range(n8, n):
        p[i - n8] += a[i] * b[i]
    return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]))


cdef Py_ssize_t _nonzero_rows(const double* r, Py_ssize_t n, int* idx) noexcept nogil:
    """The number nz of rows with r != 0 among n, with their indices in idx[:nz] when
    at most half of the rows are nonzero; n otherwise (idx untouched: take every row,
    those with r = 0 add exact zeros). Hard responsibilities (an initialisation's
    labels, well-separated components) are mostly zeros: the gather saves K-fold work."""
    cdef Py_ssize_t i, nz = 0
    for i in range(n):
        nz += r[i] != 0.0
    if 2 * nz > n:
        return n
    nz = 0
    for i in range(n):
        if r[i] != 0.0:
            idx[nz] = <int> i
            nz += 1
    return nz


cdef Py_ssize_t _full_moment_rows(const double* r, const floating* X, Py_ssize_t n, Py_ssize_t D,
                                  const double* shift, Scratch* s) noexcept nogil:
    """s.work (row-major nz x (D + 1)) = sqrt(r) [x - shift, 1] for one component over
    the block's rows X (n x D) with r > 0 (see _nonzero_rows); returns nz."""
    cdef Py_ssize_t i, j, d, D1 = D + 1
    cdef Py_ssize_t nz = _nonzero_rows(r, n, s.idx)
    cdef const floating* x
    cdef double* z
    cdef double w
    if nz == n:
        for i in range(n):
            s.idx[i] = <int> i
    for j in range(nz):
        i = s.idx[j]
        w = sqrt(r[i])
        x = X + i * D
        z = s.work + j * D1
        for d in range(D):
            z[d] = w * (x[d] - shift[d])
        z[D] = w
    return nz


cdef void _small_full_moments(const double* Z, Py_ssize_t nz, Py_ssize_t D, double* mom) noexcept nogil:
    """mom[c * D + d] += sum_j Z[j, d] Z[j, c] (j in order) for d < D and c = D, or d <= c
    < D (the lower triangle of sum_xx's row-major view, which stats keeps): the full
    moments' GEMM for small D. Z row-major (nz x (D + 1)), see _full_moment_rows."""
    cdef Py_ssize_t j, c, d, D1 = D + 1
    cdef const double* z
    for j in range(nz):
        z = Z + j * D1
        for c in range(D):
            for d in range(c + 1):
                mom[c * D + d] += z[d] * z[c]
        for d in range(D):
            mom[D * D + d] += z[d] * z[D]


cdef void _stats_block(const Model* m, const floating* X, Py_ssize_t row0, Py_ssize_t n, Scratch* s,
                       double* sum_x, double* sum_xx) noexcept nogil:
    """Fold the block's weighted responsibilities s.lp (K, ld) into sum_x and sum_xx.

    Layouts: sum_x (K, D); sum_xx expanded (K, n_quad) (the quadratic features),
    tied (D, D), full (K, D, D); full/tied come from dgemm, symmetric up to rounding
    (``stats`` keeps the lower triangle). Expanded form: one GEMM with the block's A into
    s.mom, around m.center; full: one GEMM per component into s.mom, around m.shift
    (_slot moves s.mom to sum_xx and sum_x); tied: around m.shift; direct diag and
    spherical: sum_xx (K, D) around m.shift, with plain loops.
    """
    cdef Py_ssize_t D = m.n_features, K = m.n_components, ld = s.ld
    cdef Py_ssize_t i, j, k, d, nz
    cdef double* z
    cdef const double* r
    cdef const double* x
    cdef double c, dev
    cdef int n_ = <int> n, D_ = <int> D, K_ = <int> K, ld_ = <int> ld, nz_
    cdef double one = 1.0
    cdef float one_single = 1.0, zero_single = 0.0
    cdef char trans = b'T', notrans = b'N'
    cdef int D1 = <int> (D + 1), F = <int> _n_expanded(m), lda
    if m.single_blocks:
        # the block's moments in float32 (column-major F x K = A^T R), then summed in float64
        lda = _lda(m, ld)
        sgemm(&trans if _columns(m) else &notrans, &notrans, &F, &K_, &n_, &one_single, <float*> s.work, &lda,
              s.lp_single, &ld_, &zero_single, s.mom_single, &F)
        for i in range(K * F):
            s.mom[i] += s.mom_single[i]
    elif _is_expanded(m) and _small_gemm(m):
        _small_moments(s.work, n, F, s.lp, ld, K, s.mom)
    elif _is_expanded(m):
        # column-major mom (F x K) += A^T (F x n) @ R (n x K)
        lda = _lda(m, ld)
        dgemm(&trans if _columns(m) else &notrans, &notrans, &F, &K_, &n_, &one, s.work, &lda, s.lp, &ld_, &one,
              s.mom, &F)
    elif m.cov == FULL:
        for k in range(K):
            nz = _full_moment_rows(s.lp + k * ld, X, n, D, m.shift + k * D, s)
            if nz == 0:
                continue
            nz_ = <int> nz
            # column-major Z^T ((D + 1) x nz): mom_k (D x (D + 1)) += Z[:, :D]^T Z,
            # whose last column is sum_k sqrt(w r) z = sum_k w r (x - shift_k)
            if D <= SMALL_DIRECT_MAX_FEATURES:
                _small_full_moments(s.work, nz, D, s.mom + k * (D + 1) * D)
            else:
                dgemm(&notrans, &trans, &D_, &D1, &nz_, &one, s.work, &D1, s.work, &D1, &one,
                      s.mom + k * (D + 1) * D, &D_)
    elif m.cov == DIAG or m.cov == SPHERICAL:
        for k in range(K):
            r = s.lp + k * ld
            nz = _nonzero_rows(r, n, s.idx)
            for d in range(D):
                x = s.xt + d * ld
                c = m.shift[k * D + d]
                if nz == n:
                    for i in range(n):
                        dev = x[i] - c
                        s.row_a[i] = r[i] * dev
                        s.row_b[i] = s.row_a[i] * dev
                else:
                    for j in range(nz):
                        i = s.idx[j]
                        dev = x[i] - c
                        s.row_a[j] = r[i] * dev
                        s.row_b[j] = s.row_a[j] * dev
                sum_x[k * D + d] += _sum(s.row_a, nz)
                sum_xx[k * D + d] += _sum(s.row_b, nz)
    else:  # tied
        _centre_columns(s.xt, n, D, ld, m.shift, s.work)
        # sum_x (column-major D x K) += (X - c)^T R
        if D <= SMALL_DIRECT_MAX_FEATURES:
            for k in range(K):
                for d in range(D):
                    sum_x[k * D + d] += _dot(s.work + d * ld, s.lp + k * ld, n)
        else:
            dgemm(&trans, &notrans, &D_, &K_, &n_, &one, s.work, &ld_, s.lp, &ld_, &one, sum_x, &D_)
        if m.sample_weight != NULL:
            for i in range(n):
                s.sq[i] = sqrt(m.sample_weight[row0 + i])
            for d in range(D):
                z = s.work + d * ld
                for i in range(n):
                    z[i] = z[i] * s.sq[i]
        if D <= SMALL_DIRECT_MAX_FEATURES:  # the lower triangle (row-major view), which stats keeps
            for j in range(D):
                for d in range(j + 1):
                    sum_xx[j * D + d] += _dot(s.work + d * ld, s.work + j * ld, n)
        else:
            dgemm(&trans, &notrans, &D_, &D_, &n_, &one, s.work, &ld_, s.work, &ld_, &one, sum_xx, &D_)


cdef void _slot(const Model* m, const floating* X, const double* resp, Py_ssize_t n_samples,
                Py_ssize_t block0, Py_ssize_t block1, Py_ssize_t block_size, Scratch* s,
                double* nk, double* sum_x, double* sum_xx, double* loglik) noexcept nogil:
    """Accumulate blocks [block0, block1) in order: the E-step under the model's
    parameters (resp NULL), or the given responsibilities (N, K) otherwise.

    float32 X through the register tiles (``single``): the log-probs are stored, and
    the responsibilities computed, in float32 (8-float vectors); the products and sums
    stay float64. ``m.single_blocks``: the whole block in float32, sums in float64."""
    cdef Py_ssize_t D = m.n_features, K = m.n_components, ld = s.ld, F = _n_expanded(m)
    cdef bint single = floating is float and resp == NULL and _is_expanded(m) and _small_log_prob_gemm(m)
    cdef Py_ssize_t b, row0, n, i, k, d
    cdef double wi, nk_k
    cdef const double* mom
    for i in range(_mom_size(m)):
        s.mom[i] = 0.0
    for b in range(block0, block1):
        row0 = b * block_size
        n = min(block_size, n_samples - row0)
        if b + 1 < block1:
            _prefetch(X + (row0 + n) * D, min(block_size, n_samples - row0 - n) * D * sizeof(floating))
        _load(m, X + row0 * D, n, s)
        if m.single_blocks:
            _log_prob_block_single(m, n, s)
            loglik[0] += _responsibilities(m, row0, n, s.lp_single, ld, <float*> s.row_a, <float*> s.row_b,
                                           s.lp_single, nk, True)
        elif single:
            _small_log_prob_single(s.work, n, F, m.prec, K, m.cst, s.lp_single, ld)
            loglik[0] += _responsibilities(m, row0, n, s.lp_single, ld, <float*> s.row_a, <float*> s.row_b, s.lp,
                                           nk, True)
        elif resp == NULL:
            _log_prob_block(m, n, s)
            loglik[0] += _responsibilities(m, row0, n, s.lp, ld, s.row_a, s.row_b, s.lp, nk, floating is float)
        else:
            for i in range(n):
                wi = 1.0 if m.sample_weight == NULL else m.sample_weight[row0 + i]
                for k in range(K):
                    s.lp[k * ld + i] = resp[(row0 + i) * K + k] * wi
            for k in range(K):
                nk_k = 0.0
                for i in range(n):
                    nk_k += s.lp[k * ld + i]
                nk[k] += nk_k
        _stats_block(m, X + row0 * m.n_features, row0, n, s, sum_x, sum_xx)
    if _is_expanded(m):
        for k in range(K):
            mom = s.mom + k * (m.n_quad + D)
            for i in range(m.n_quad):
                sum_xx[k * m.n_quad + i] += mom[i]
            for d in range(D):
                sum_x[k * D + d] += mom[m.n_quad + d]
    elif m.cov == FULL:
        for k in range(K):
            mom = s.mom + k * (D + 1) * D
            for i in range(D * D):
                sum_xx[k * D * D + i] += mom[i]
            for d in range(D):
                sum_x[k * D + d] += mom[D * D + d]


cdef int _cov_code(str covariance_type) except -1:
    codes = {"full": FULL, "tied": TIED, "diag": DIAG, "spherical": SPHERICAL}
    if covariance_type not in codes:
        raise ValueError(f"unknown covariance_type {covariance_type!r}")
    return codes[covariance_type]


cdef Model _model(const double[:, ::1] means, const double[::1] prec, const double[::1] center,
                  const double[::1] cst, str covariance_type, bint expanded) except *:
    """Check the log-prob parameters' shapes and point a Model at them. ``expanded``:
    the expanded form (any covariance type but tied) rather than the direct one."""
    cdef Model m
    cdef Py_ssize_t K = means.shape[0], D = means.shape[1]
    m.cov = _cov_code(covariance_type)
    if expanded and m.cov == TIED:
        raise ValueError("'tied' has no expanded form")
    m.n_quad = {FULL: D * (D + 1) // 2, TIED: 0, DIAG: D, SPHERICAL: 1}[m.cov] if expanded else 0
    expected = K * (m.n_quad + D) if expanded else {FULL: K * D * D, TIED: D * D}.get(m.cov, K * D)
    if D < 1 or K < 1 or prec.shape[0] != expected or center.shape[0] != D or cst.shape[0] != K:
        raise ValueError("inconsistent parameter shapes")
    m.n_features = D
    m.n_components = K
    m.means = &means[0, 0]
    m.prec = &prec[0]
    m.center = &center[0]
    m.cst = &cst[0]
    m.shift = NULL
    m.sample_weight = NULL
    m.prec_single = NULL
    m.single_blocks = False
    return m


cdef Py_ssize_t _leading_dim(Py_ssize_t n_samples, Py_ssize_t block_size) except -1:
    if n_samples < 1 or block_size < 1:
        raise ValueError("need at least one sample and a positive block_size")
    if min(block_size, n_samples) > 2 ** 30:
        raise ValueError(f"block_size {block_size} too large for BLAS (32-bit ints)")
    # pad rows of the (D, ld) scratch so that they do not all map to the same cache sets
    return (min(block_size, n_samples) + 7) // 8 * 8 + 8


def gaussian_log_prob(const floating[:, ::1] X, const double[:, ::1] means, const double[::1] prec,
                      const double[::1] center, const double[::1] cst, str covariance_type, bint expanded,
                      double[:, ::1] out, int n_threads, Py_ssize_t block_size):
    """out (N, K) = log N(x_i | mean_k, P_k) + cst[k] - cst-free part; see cython_backend."""
    cdef Model m = _model(means, prec, center, cst, covariance_type, expanded)
    cdef Py_ssize_t N = X.shape[0], D = m.n_features, K = m.n_components
    cdef Py_ssize_t ld = _leading_dim(N, block_size)
    if X.shape[1] != D or out.shape[0] != N or out.shape[1] != K:
        raise ValueError("inconsistent shapes of X, parameters and out")
    cdef Py_ssize_t n_blocks = (N + block_size - 1) // block_size
    cdef Py_ssize_t b, i, k, row0, n
    cdef int failed = 0
    cdef int* failed_p = &failed
    cdef Scratch s
    cdef const floating* Xp = &X[0, 0]
    cdef double* outp = &out[0, 0]
    with nogil, parallel(num_threads=n_threads):
        s = _scratch_alloc(&m, ld)
        if s.xt == NULL:
            failed_p[0] = 1
        for b in prange(n_blocks, schedule="dynamic"):
            if s.xt != NULL:
                row0 = b * block_size
                n = min(block_size, N - row0)
                _load(&m, Xp + row0 * D, n, &s)
                _log_prob_block(&m, n, &s)
                for i in range(n):
                    for k in range(K):
                        outp[(row0 + i) * K + k] = s.lp[k * ld + i]
        _scratch_free(&s)
    if failed:
        raise MemoryError("fastem: could not allocate kernel scratch buffers")


cdef _check_slot_buffers(Py_ssize_t n_slots, const Model* m, double[:, ::1] nk,
                        double[:, ::1] sum_x, double[:, ::1] sum_xx, double[::1] loglik):
    cdef Py_ssize_t K = m.n_components, D = m.n_features
    size_xx = K * m.n_quad if _is_expanded(m) else {FULL: K * D * D, TIED: D * D}.get(m.cov, K * D)
    if (n_slots < 1 or nk.shape[0] != n_slots or nk.shape[1] != K or sum_x.shape[0] != n_slots
            or sum_x.shape[1] != K * D or sum_xx.shape[0] != n_slots or sum_xx.shape[1] != size_xx
            or loglik.shape[0] != n_slots):
        raise ValueError("inconsistent slot buffer shapes")


def stats(const floating[:, ::1] X, const double[:, ::1] resp, const double[:, ::1] means,
          const double[::1] prec, const double[::1] center, const double[::1] cst, str covariance_type,
          bint expanded, const double[::1] sample_weight, const double[::1] shift,
          double[:, ::1] nk, double[:, ::1] sum_x, double[:, ::1] sum_xx, double[::1] loglik,
          int n_threads, Py_ssize_t block_size, const float[::1] prec_single=None):
    """Per-slot statistics (zero-filled buffers, one row per slot, summed by the caller).

    resp None: fused E-step under (means, prec, center, cst) (em_stats); otherwise the
    given responsibilities (N, K) (suff_stats; the log-prob parameters then only give
    K and D). sample_weight (N,) or None; shift flattened (K * D,), tied (D,).
    expanded: the expanded form (see _model). Buffers: nk (S, K); sum_x (S, K * D);
    sum_xx (S, size) with size K * n_quad expanded, else K * D * D full, D * D tied (exactly
    symmetric matrices) and K * D diag/spherical; loglik (S,). prec_single (float32 X,
    expanded, E-step only): W rounded to float32, to run the blocks in float32 where their
    products are BLAS's (the register tiles, taken for the F x K of _small_log_prob_gemm,
    keep a float64 A); None: float64 blocks.
    """
    cdef Model m = _model(means, prec, center, cst, covariance_type, expanded)
    cdef Py_ssize_t N = X.shape[0], D = m.n_features, K = m.n_components
    cdef Py_ssize_t ld = _leading_dim(N, block_size)
    if X.shape[1] != D:
        raise ValueError("X and the parameters disagree on n_features")
    if resp is not None and (resp.shape[0] != N or resp.shape[1] != K):
        raise ValueError("resp must have shape (n_samples, n_components)")
    if sample_weight is not None and sample_weight.shape[0] != N:
        raise ValueError("sample_weight must have shape (n_samples,)")
    if shift.shape[0] != (D if m.cov == TIED else K * D):
        raise ValueError("shift has the wrong size")
    cdef Py_ssize_t n_slots = nk.shape[0]
    _check_slot_buffers(n_slots, &m, nk, sum_x, sum_xx, loglik)
    m.shift = &shift[0]
    m.sample_weight = NULL if sample_weight is None else &sample_weight[0]
    if prec_single is not None:
        if floating is double or resp is not None or not expanded or prec_single.shape[0] != prec.shape[0]:
            raise ValueError("prec_single needs float32 X, the expanded form's E-step and W's shape")
        m.prec_single = &prec_single[0]
        m.single_blocks = not _small_log_prob_gemm(&m)
    cdef const double* resp_p = NULL if resp is None else &resp[0, 0]
    cdef Py_ssize_t n_blocks = (N + block_size - 1) // block_size
    cdef Py_ssize_t slot
    cdef int failed = 0
    cdef int* failed_p = &failed
    cdef Scratch s
    cdef const floating* Xp = &X[0, 0]
    with nogil, parallel(num_threads=n_threads):
        s = _scratch_alloc(&m, ld)
        if s.xt == NULL:
            failed_p[0] = 1
        for slot in prange(n_slots, schedule="dynamic"):
            if s.xt != NULL:
                _slot(&m, Xp, resp_p, N, slot * n_blocks // n_slots, (slot + 1) * n_blocks // n_slots,
                      block_size, &s, &nk[slot, 0], &sum_x[slot, 0], &sum_xx[slot, 0], &loglik[slot])
        _scratch_free(&s)
    if failed:
        raise MemoryError("fastem: could not allocate kernel scratch buffers")
    if not expanded and (m.cov == FULL or m.cov == TIED):
        _mirror_lower(&sum_xx[0, 0], n_slots * (K if m.cov == FULL else 1), D)


cdef enum:
    OUTER_ROWS = 4  # rows of one component that label_stats folds into its second moments together


cdef void _fold_outer(double* mat, const double* rows, const double* weights, Py_ssize_t n,
                      Py_ssize_t D) noexcept nogil:
    """The lower triangle of mat (D, D) += sum_j weights[j] z_j z_j^T over n <= OUTER_ROWS
    rows z_j (n x D): each element of mat is loaded and stored once for n rows (one at a
    time, the updates of a 64 x 64 matrix ran at the speed of its loads and stores)."""
    cdef Py_ssize_t c, d, j
    cdef double a0, a1, a2, a3, t
    cdef const double* z0 = rows
    cdef const double* z1 = rows + D
    cdef const double* z2 = rows + 2 * D
    cdef const double* z3 = rows + 3 * D
    cdef double* row
    for c in range(D):
        row = mat + c * D
        if n == OUTER_ROWS:
            a0 = weights[0] * z0[c]
            a1 = weights[1] * z1[c]
            a2 = weights[2] * z2[c]
            a3 = weights[3] * z3[c]
            for d in range(c + 1):
                row[d] += (a0 * z0[d] + a1 * z1[d]) + (a2 * z2[d] + a3 * z3[d])
        else:
            for d in range(c + 1):
                t = 0.0
                for j in range(n):
                    t += (weights[j] * rows[j * D + c]) * rows[j * D + d]
                row[d] += t


cdef void _label_rows(const floating* X, const int* labels, const double* sample_weight, const double* shift,
                      int cov, Py_ssize_t D, Py_ssize_t K, Py_ssize_t start, Py_ssize_t stop, double* nk,
                      double* sum_x, double* sum_xx, double* z, Py_ssize_t* n_pending, int* bad) noexcept nogil:
    """Fold rows [start, stop) into their components' sums in row order: see label_stats.
    z: D values, then (full/tied) OUTER_ROWS pending rows and their weights per matrix
    (K full, 1 tied), n_pending of them: a matrix takes its rows OUTER_ROWS at a time,
    and what is pending at the end. A label outside [-1, K) sets bad and is skipped."""
    cdef Py_ssize_t i, k, d, mat
    cdef Py_ssize_t n_mats = K if cov == FULL else 1
    cdef double w
    cdef const double* centre
    cdef double* pending = z + D
    cdef double* pending_w = pending + n_mats * OUTER_ROWS * D
    cdef double* zi
    if cov == FULL or cov == TIED:
        for mat in range(n_mats):
            n_pending[mat] = 0
    for i in range(start, stop):
        k = labels[i]
        if k >= K or k < -1:
            bad[0] = 1
            continue
        if k < 0 and cov != TIED:
            continue
        w = 1.0 if sample_weight == NULL else sample_weight[i]
        centre = shift if cov == TIED else shift + k * D
        mat = k if cov == FULL else 0
        zi = z if cov == DIAG or cov == SPHERICAL else pending + (mat * OUTER_ROWS + n_pending[mat]) * D
        for d in range(D):
            zi[d] = <double> X[i * D + d] - centre[d]
        if k >= 0:
            nk[k] += w
            for d in range(D):
                sum_x[k * D + d] += w * zi[d]
        if cov == DIAG or cov == SPHERICAL:
            for d in range(D):
                sum_xx[k * D + d] += (w * zi[d]) * zi[d]
        else:
            pending_w[mat * OUTER_ROWS + n_pending[mat]] = w
            n_pending[mat] += 1
            if n_pending[mat] == OUTER_ROWS:
                _fold_outer(sum_xx + mat * D * D, pending + mat * OUTER_ROWS * D, pending_w + mat * OUTER_ROWS,
                            OUTER_ROWS, D)
                n_pending[mat] = 0
    if cov == FULL or cov == TIED:
        for mat in range(n_mats):
            if n_pending[mat] > 0:
                _fold_outer(sum_xx + mat * D * D, pending + mat * OUTER_ROWS * D, pending_w + mat * OUTER_ROWS,
                            n_pending[mat], D)


def label_stats(const floating[:, ::1] X, const int[::1] labels, const double[::1] sample_weight,
                const double[::1] shift, str covariance_type, double[:, ::1] nk, double[:, ::1] sum_x,
                double[:, ::1] sum_xx, int n_threads, Py_ssize_t block_size) -> bool:
    """Per-slot statistics of hard responsibilities: row i in component labels[i] (N,)
    (-1: in none) with weight sample_weight[i] (None: 1), around shift (K * D,; tied D,),
    into zero-filled buffers nk (S, K), sum_x (S, K * D) and sum_xx (S, K * D diag and
    spherical, K * D * D full, D * D tied: over every row, as suff_stats's; exactly
    symmetric). The (N, K) one-hot
    responsibilities are never formed: a row costs D (diag) or D (D + 1) / 2 (full,
    tied) products, not K times that. Slots are runs of blocks (as in stats), summed by
    the caller in order. Returns whether some label was outside [-1, K)."""
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1], K = nk.shape[1], S = nk.shape[0]
    cdef int cov = _cov_code(covariance_type)
    cdef Py_ssize_t size_xx = K * D * D if cov == FULL else (D * D if cov == TIED else K * D)
    if labels.shape[0] != N or (sample_weight is not None and sample_weight.shape[0] != N):
        raise ValueError("labels and sample_weight must have shape (n_samples,)")
    if shift.shape[0] != (D if cov == TIED else K * D):
        raise ValueError("shift has the wrong size")
    if S < 1 or sum_x.shape[0] != S or sum_xx.shape[0] != S or sum_x.shape[1] != K * D or sum_xx.shape[1] != size_xx:
        raise ValueError("the slot buffers disagree with the problem's shape")
    cdef Py_ssize_t n_blocks = (N + block_size - 1) // block_size, slot, start, stop
    cdef Py_ssize_t n_acc = K + K * D + size_xx
    cdef Py_ssize_t n_mats = K if cov == FULL else (1 if cov == TIED else 0)
    cdef const double* weight_p = NULL if sample_weight is None else &sample_weight[0]
    cdef const floating* Xp = &X[0, 0] if N > 0 else NULL
    cdef double* acc
    cdef Py_ssize_t* n_pending
    cdef int bad = 0, failed = 0
    cdef int* bad_p = &bad  # writes to shared variables in a parallel block go through pointers
    cdef int* failed_p = &failed
    with nogil, parallel(num_threads=n_threads):
        # this thread's sums (nk, sum_x, sum_xx), copied to the slot's rows at its end
        # (neighbouring slots' rows share cache lines), then _label_rows's scratch
        acc = <double*> malloc((n_acc + D + n_mats * OUTER_ROWS * (D + 1)) * sizeof(double))
        n_pending = <Py_ssize_t*> malloc((n_mats + 1) * sizeof(Py_ssize_t))  # + 1: never malloc(0)
        if acc == NULL or n_pending == NULL:
            failed_p[0] = 1
        for slot in prange(S, schedule="dynamic"):
            if acc != NULL and n_pending != NULL:
                start = min((slot * n_blocks // S) * block_size, N)
                stop = min(((slot + 1) * n_blocks // S) * block_size, N)
                memset(acc, 0, n_acc * sizeof(double))
                _label_rows(Xp, &labels[0], weight_p, &shift[0], cov, D, K, start, stop, acc, acc + K,
                            acc + K + K * D, acc + n_acc, n_pending, bad_p)
                memcpy(&nk[slot, 0], acc, K * sizeof(double))
                memcpy(&sum_x[slot, 0], acc + K, K * D * sizeof(double))
                memcpy(&sum_xx[slot, 0], acc + K + K * D, size_xx * sizeof(double))
        free(acc)
        free(n_pending)
    if failed:
        raise MemoryError("fastem: could not allocate kernel scratch buffers")
    if cov == FULL or cov == TIED:
        _mirror_lower(&sum_xx[0, 0], S * (K if cov == FULL else 1), D)
    return bad != 0


cdef void _mirror_lower(double* mats, Py_ssize_t n_mats, Py_ssize_t D) noexcept nogil:
    """Make the n_mats row-major (D, D) matrices exactly symmetric from their lower
    triangles (GEMM's two triangles may differ by rounding)."""
    cdef Py_ssize_t t, i, j
    cdef double* a
    for t in range(n_mats):
        a = mats + t * D * D
        for i in range(D):
            for j in range(i + 1, D):
                a[i * D + j] = a[j * D + i]


cdef double _logsumexp_row(const double* a, Py_ssize_t K) noexcept nogil:
    cdef Py_ssize_t k
    cdef double amax = a[0], total = 0.0
    for k in range(1, K):
        if a[k] > amax:
            amax = a[k]
    if amax == -INFINITY:
        return -INFINITY
    for k in range(K):
        total += exp(a[k] - amax)
    return log(total) + amax


def _exp_nonpos_array(const floating[::1] x, floating[::1] out):
    """out = exp(x) with the kernels' exp of x's dtype (x <= 0); for tests."""
    cdef Py_ssize_t i
    for i in range(x.shape[0]):
        out[i] = _exp_nonpos(x[i])


def _log_pos_array(const double[::1] x, double[::1] out):
    """out = log(x) with the kernels' log (x >= 0); for tests."""
    cdef Py_ssize_t i
    for i in range(x.shape[0]):
        out[i] = _log_pos(x[i])


def exp_probe(const floating[::1] x, floating[:, ::1] out, Py_ssize_t n_rounds, int n_threads):
    """The exp-rate probe of :mod:`fastem.bench.roofline`: ``n_rounds`` passes of
    ``out[t] = exp(x)`` with the kernels' exp of x's dtype (x <= 0), the rounds split over
    ``n_threads`` OpenMP threads, t the thread's number. ``x`` and a row of ``out`` small
    enough for the cache (as the kernels' blocks are) time the exp, not the memory."""
    cdef Py_ssize_t L = x.shape[0], rnd, i
    if out.shape[1] != L or out.shape[0] < n_threads or n_threads < 1:
        raise ValueError("out must have shape (>= n_threads, len(x)) and n_threads >= 1")
    if L == 0:
        return
    cdef const floating* xp = &x[0]
    cdef floating* outp = &out[0, 0]
    cdef floating* row
    for rnd in prange(n_rounds, nogil=True, num_threads=n_threads, schedule="static"):
        row = outp + threadid() * L
        for i in range(L):
            row[i] = _exp_nonpos(xp[i])


def logsumexp(const double[:, ::1] a, double[::1] out, int n_threads):
    """out[i] = log(sum_k exp(a[i, k])), max-shifted; all -inf rows give -inf."""
    cdef Py_ssize_t N = a.shape[0], K = a.shape[1], i
    if out.shape[0] != N:
        raise ValueError("out must have shape (n_rows,)")
    if N == 0:
        return
    if K == 0:
        out[:] = -INFINITY
        return
    cdef const double* ap = &a[0, 0]
    cdef double* outp = &out[0]
    for i in prange(N, nogil=True, num_threads=n_threads, schedule="static"):
        outp[i] = _logsumexp_row(ap + i * K, K)


def precisions_cholesky(const double[:, :, ::1] covariances, double[:, :, ::1] out) -> int:
    """``out[k] = inv(L_k).T`` with ``L_k`` the lower Cholesky factor of ``covariances[k]``
    (K, D, D): LAPACK's dpotrf then dtrtrs on a column-major copy, the calls (and so the
    numbers) of scipy.linalg.cholesky(lower=True) and solve_triangular(lower=True) that
    scikit-learn makes, without a Python loop over the components. Returns the first
    component that is not positive definite or whose inverse overflows, -1 when none."""
    cdef int K = covariances.shape[0], D = covariances.shape[1], k, i, j, info = 0, bad = -1
    if covariances.shape[2] != D or out.shape[0] != K or out.shape[1] != D or out.shape[2] != D:
        raise ValueError("covariances and out must have the same shape (n_components, D, D)")
    cdef char lower = b"L", no_transpose = b"N", non_unit = b"N"
    cdef double* factor = <double*> malloc(D * D * sizeof(double) + 1)  # + 1: never malloc(0)
    if factor == NULL:
        raise MemoryError("fastem: could not allocate the Cholesky scratch")
    with nogil:
        for k in range(K):
            for i in range(D):
                for j in range(D):
                    factor[i + j * D] = covariances[k, i, j]  # column-major, as f2py hands it to LAPACK
            dpotrf(&lower, &D, factor, &D, &info)
            if info == 0:
                # solve L X = I in place of the identity; the column-major X read row-major is X.T
                for i in range(D):
                    for j in range(D):
                        out[k, i, j] = 1.0 if i == j else 0.0
                dtrtrs(&lower, &no_transpose, &non_unit, &D, &D, factor, &D, &out[k, 0, 0], &D, &info)
            if info == 0:
                for i in range(D):
                    for j in range(D):
                        if not isfinite(out[k, i, j]):
                            info = 1
            if info != 0:
                bad = k
                break
    free(factor)
    return bad
