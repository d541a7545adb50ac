# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Gaussian mixture kernels: Cython + OpenMP, BLAS from scipy (nogil).

One source for float32 and float64 ``X`` (fused type); parameters and accumulators
are float64. Rows are cut into blocks of ``block_size``. Full/tied: a block is first
copied, transposed and converted to float64 (``XT``, D x block_size) so that the inner
loops run over contiguous rows (vectorisable without re-association), and BLAS sees the
block as a column-major (rows x D) matrix. Diag/spherical: a block becomes the row-major
(rows x 2D) matrix ``A = [(x - c0)**2, x - c0]``, and both steps are GEMMs with it:
log-probs ``A @ W + cst`` and moments ``R^T A`` around ``c0`` (recentred by the caller).

Determinism: blocks are grouped into ``n_slots`` contiguous runs (``n_slots`` depends
only on N and block_size, chosen by the caller); each slot accumulates its blocks in
order into its own row of the output buffers; ``prange`` runs over slots and the
caller sums the slots in order. So the result does not depend on the thread count.

Called only through :mod:`fastem._kernels.cython_backend`, which precomputes the
per-component constants. Shapes are checked here (cheaply, before releasing the GIL)
so that the compiled loops never read out of bounds.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY, exp, log, sqrt
from libc.stdlib cimport free, malloc
from scipy.linalg.cython_blas cimport dgemm, dgemv

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define FASTEM_PREFETCH(p) __builtin_prefetch(p)
    #else
    #define FASTEM_PREFETCH(p) ((void) 0)
    #endif
    """
    void FASTEM_PREFETCH(const void* p) noexcept nogil

# covariance type codes (the Python entry points take the names)
cdef enum:
    FULL = 0
    TIED = 1
    DIAG = 2
    SPHERICAL = 3


cdef union _Float64Bits:
    double d
    unsigned long long u


cdef inline double _exp_nonpos(double x) noexcept nogil:
    """exp(x) for x <= 0 (including -inf), written so that loops over it vectorise.

    Cody-Waite reduction x = n ln2 + r, |r| <= ln2 / 2, degree-13 Taylor polynomial
    (truncation < 1e-17), and 2**n built from the bits of the rounding constant, in two
    steps so that subnormal results are rounded once. About 2 ulp; 0 below -745.2.
    """
    cdef _Float64Bits rounded, scale
    cdef double n, r, p
    x = x if x > -746.0 else -746.0
    rounded.d = x * 1.4426950408889634 + 6755399441055744.0  # 1.5 * 2**52: round to integer
    n = rounded.d - 6755399441055744.0
    r = (x - n * 0.6931471803691238) - n * 1.9082149292705877e-10  # ln 2 = hi + lo, hi * n exact
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
    scale.u = (rounded.u + 1535) << 52  # 2**(n + 512): the low bits of rounded hold n
    return (p * scale.d) * 7.458340731200207e-155  # * 2**-512


cdef struct Model:
    # log-prob parameters (see cython_backend._log_prob_params)
    Py_ssize_t n_features, n_components
    int cov
    const double* means      # (K, D); full/tied: (means - center) @ P; unused by diag/spherical
    const double* prec       # full (K, D, D), tied (D, D); diag/spherical W (2D, K), see _log_prob_rows
    const double* center     # (D,) the data's centring c0 (all types)
    const double* cst        # (K,) log weight + log det - D/2 log(2 pi) (diag/spherical: + W's constant)
    # statistics
    const double* shift      # (K, D); tied (D,); unused by diag/spherical (moments around center)
    const double* sample_weight  # (N,) or NULL


cdef struct Scratch:
    # per-thread buffers; ld = leading dimension (>= rows per block, padded)
    Py_ssize_t ld
    double* xt       # (D, ld) transposed block
    double* work     # (D, ld) centred block; full statistics: (ld, D) row-major; diag/spherical A (ld, 2D)
    double* y        # (G D, ld) projected block (full/tied); (ld, K) row-major log-probs (diag/spherical)
    double* lp       # (K, ld) log-probs, then weighted responsibilities
    double* row_a    # (ld,)
    double* row_b    # (ld,)
    double* sq       # (ld,)
    double* mom      # (K, 2D) diag/spherical moments of the slot: [sum_xx_k, sum_x_k] around center
    int* idx         # (ld,)


cdef Scratch _scratch_alloc(const Model* m, Py_ssize_t ld) noexcept nogil:
    """Per-thread buffers (returned by value so that each thread's copy is private
    in a parallel block); ``xt`` is NULL when allocation failed."""
    cdef Scratch s
    s.ld = ld
    # y: full/tied projections (G D, ld); diag/spherical row-major log-probs (ld, K)
    cdef Py_ssize_t D = m.n_features, K = m.n_components, GD = max(_group_size(m) * D, K)
    s.work = s.y = s.lp = s.row_a = s.row_b = s.sq = s.mom = NULL
    s.xt = <double*> malloc(((3 * D + GD + K + 3) * ld + 2 * K * D) * sizeof(double))
    s.idx = <int*> malloc(ld * sizeof(int))
    if s.xt == NULL or s.idx == NULL:
        free(s.xt)
        free(s.idx)
        s.xt = NULL
        s.idx = NULL
        return s
    s.work = s.xt + D * ld
    s.y = s.work + 2 * D * ld
    s.lp = s.y + GD * ld
    s.row_a = s.lp + K * ld
    s.row_b = s.row_a + ld
    s.sq = s.row_b + ld
    s.mom = s.sq + ld
    return s


cdef void _scratch_free(Scratch* s) noexcept nogil:
    free(s.xt)
    free(s.idx)


cdef void _load_block(const floating* X, Py_ssize_t n, Py_ssize_t D, double* xt, Py_ssize_t ld) noexcept nogil:
    """xt[d, i] = X[i, d] for the n rows of the block, as float64."""
    cdef Py_ssize_t i, d
    cdef const floating* row
    for i in range(n):  # one sequential read; D write streams (ld is padded against set conflicts)
        row = X + i * D
        for d in range(D):
            xt[d * ld + i] = row[d]


cdef void _load_centred(const floating* X, Py_ssize_t n, Py_ssize_t D, const double* center,
                        double* a) noexcept nogil:
    """a (n, 2D) row-major = [(x_i - center)**2, x_i - center] for the n rows of the block."""
    cdef Py_ssize_t i, d
    cdef const floating* row
    cdef double* out
    cdef double c
    for i in range(n):
        row = X + i * D
        out = a + i * 2 * D
        for d in range(D):
            c = row[d] - center[d]
            out[d] = c * c
            out[D + d] = c


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


cdef inline bint _is_separable(const Model* m) noexcept nogil:
    """Diag/spherical: log-probs and moments are GEMMs with the block's A = [(x - c0)**2, x - c0]."""
    return m.cov == DIAG or m.cov == SPHERICAL


cdef void _load(const Model* m, const floating* X, Py_ssize_t n, Scratch* s) noexcept nogil:
    """The block's rows as the log-prob and statistics steps read them (s.xt or s.work)."""
    if _is_separable(m):
        _load_centred(X, n, m.n_features, m.center, s.work)
    else:
        _load_block(X, n, m.n_features, s.xt, s.ld)


cdef inline Py_ssize_t _group_size(const Model* m) noexcept nogil:
    """Full covariance: components per GEMM (about 128 output columns)."""
    return max(1, min(m.n_components, 128 // m.n_features))


cdef void _log_prob_rows(const Model* m, Py_ssize_t n, const Scratch* s, double* out) noexcept nogil:
    """Diag/spherical: out (n, K) row-major = A W + cst for the block's A (s.work), with
    W[:, k] = [-prec_k / 2, (mean_k - c0) prec_k] (prec = P**2) and the rest of the
    expanded square in cst."""
    cdef Py_ssize_t K = m.n_components, i, k
    cdef int n_ = <int> n, K_ = <int> K, D2 = <int> (2 * m.n_features)
    cdef double one = 1.0, zero = 0.0
    cdef char notrans = b'N'
    cdef double* row
    # column-major out^T (K x n) = W^T (K x 2D) @ A^T (2D x n)
    dgemm(&notrans, &notrans, &K_, &n_, &D2, &one, <double*> m.prec, &K_, s.work, &D2, &zero, out, &K_)
    for i in range(n):
        row = out + i * K
        for k in range(K):
            row[k] += m.cst[k]


cdef void _log_prob_block(const Model* m, Py_ssize_t n, Scratch* s) noexcept nogil:
    """s.lp[k, i] = cst[k] - 0.5 * ||(x_i - mean_k) P_k||^2 for the block (see _load).

    Full/tied: Y = (X - center) [P_k0 .. P_k1] is one GEMM per group of components,
    then ||Y_k - (mean_k - center) P_k||^2 (m.means holds the latter).
    Diag/spherical: _log_prob_rows, transposed.
    """
    cdef Py_ssize_t D = m.n_features, K = m.n_components, ld = s.ld
    cdef Py_ssize_t i, d, k, k0, k1, g
    cdef Py_ssize_t G = _group_size(m) if m.cov == FULL else 1
    cdef Py_ssize_t n_mats = K if m.cov == FULL else 1
    cdef double mu, y, c
    cdef double* acc
    cdef double* w
    cdef const double* x
    cdef int n_ = <int> n, D_ = <int> D, ld_ = <int> ld, cols
    cdef double one = 1.0, zero = 0.0
    cdef char notrans = b'N'
    if _is_separable(m):
        _log_prob_rows(m, n, s, s.y)
        for i in range(n):
            for k in range(K):
                s.lp[k * ld + i] = s.y[i * K + k]
        return
    for k in range(K):
        acc = s.lp + k * ld
        for i in range(n):
            acc[i] = 0.0
    _centre_columns(s.xt, n, D, ld, m.center, s.work)
    k0 = 0
    while k0 < n_mats:
        g = min(G, n_mats - k0)
        cols = <int> (g * D)
        # column-major: y (n x g D) = work (n x D) @ prec_t[k0:k0+g] (D x g D)
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


cdef double _responsibilities(const Model* m, Py_ssize_t row0, Py_ssize_t n, Scratch* s, double* nk) noexcept nogil:
    """Turn s.lp (weighted log-probs) into w_i r_ik in place, add them to nk;
    returns sum_i w_i log p(x_i) of the block."""
    cdef Py_ssize_t K = m.n_components, ld = s.ld
    cdef Py_ssize_t i, k
    cdef double* lp = s.lp
    cdef double* amax = s.row_a
    cdef double* total = s.row_b
    cdef double* r
    cdef const double* w
    cdef double v, e
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
        for i in range(n):
            e = _exp_nonpos(r[i] - amax[i])
            r[i] = e
            total[i] += e
    for i in range(n):  # amax becomes log p(x_i)
        amax[i] = log(total[i]) + amax[i]
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
        for i in range(n):
            r[i] = r[i] * total[i]
        nk[k] += _sum(r, n)
    return _sum(amax, n)


cdef inline double _sum(const double* a, Py_ssize_t n) noexcept nogil:
    """a[0] + ... + a[n - 1] in a fixed order that vectorises (8 interleaved partial sums)."""
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


cdef void _stats_block(const Model* m, const floating* X, Py_ssize_t row0, Py_ssize_t n, Scratch* s,
                       double* sum_x, double* sum_xx) noexcept nogil:
    """Fold the block's weighted responsibilities s.lp (K, ld) into sum_x and sum_xx.

    Layouts: sum_x (K, D); sum_xx diag/spherical (K, D) (spherical sums over d later),
    tied (D, D), full (K, D, D); full/tied come from dgemm, symmetric up to rounding
    (the caller keeps one triangle). Diag/spherical: one GEMM with the block's A into
    s.mom (around m.center; _slot moves them to sum_xx and sum_x); full/tied around m.shift.
    """
    cdef Py_ssize_t D = m.n_features, K = m.n_components, ld = s.ld
    cdef Py_ssize_t i, k, d, j, nz
    cdef double a, c
    cdef const floating* xrow
    cdef const double* shift
    cdef const double* r
    cdef const double* x
    cdef double* z
    cdef int n_ = <int> n, D_ = <int> D, K_ = <int> K, ld_ = <int> ld, nz_
    cdef double one = 1.0
    cdef char trans = b'T', notrans = b'N'
    cdef int inc = 1, D2 = <int> (2 * D)
    if _is_separable(m):
        # column-major mom (2D x K) += A^T (2D x n) @ R (n x K)
        dgemm(&notrans, &notrans, &D2, &K_, &n_, &one, s.work, &D2, s.lp, &ld_, &one, s.mom, &D2)
    elif m.cov == FULL:
        for k in range(K):
            r = s.lp + k * ld
            # Z (nz x D, row-major) = sqrt(w r) (x - shift_k) over the rows with r > 0
            nz = 0
            for i in range(n):
                if r[i] != 0.0:
                    s.idx[nz] = <int> i
                    s.sq[nz] = sqrt(r[i])
                    nz += 1
            if nz == 0:
                continue
            shift = m.shift + k * D
            for j in range(nz):
                xrow = X + (row0 + s.idx[j]) * D
                z = s.work + j * D
                a = s.sq[j]
                for d in range(D):
                    z[d] = a * (xrow[d] - shift[d])
            nz_ = <int> nz
            # column-major Z^T (D x nz): sum_xx_k += Z^T Z, sum_x_k += Z^T sqrt(w r)
            dgemm(&notrans, &trans, &D_, &D_, &nz_, &one, s.work, &D_, s.work, &D_, &one,
                  sum_xx + k * D * D, &D_)
            dgemv(&notrans, &D_, &nz_, &one, s.work, &D_, s.sq, &inc, &one, sum_x + k * D, &inc)
    else:  # tied
        _centre_columns(s.xt, n, D, ld, m.shift, s.work)
        # sum_x (column-major D x K) += (X - c)^T R
        dgemm(&trans, &notrans, &D_, &K_, &n_, &one, s.work, &ld_, s.lp, &ld_, &one, sum_x, &D_)
        if m.sample_weight != NULL:
            for i in range(n):
                s.sq[i] = sqrt(m.sample_weight[row0 + i])
            for d in range(D):
                z = s.work + d * ld
                for i in range(n):
                    z[i] = z[i] * s.sq[i]
        dgemm(&trans, &notrans, &D_, &D_, &n_, &one, s.work, &ld_, s.work, &ld_, &one, sum_xx, &D_)


cdef void _slot(const Model* m, const floating* X, const double* resp, Py_ssize_t n_samples,
                Py_ssize_t block0, Py_ssize_t block1, Py_ssize_t block_size, Scratch* s,
                double* nk, double* sum_x, double* sum_xx, double* loglik) noexcept nogil:
    """Accumulate blocks [block0, block1) in order: the E-step under the model's
    parameters (resp NULL), or the given responsibilities (N, K) otherwise."""
    cdef Py_ssize_t D = m.n_features, K = m.n_components, ld = s.ld
    cdef Py_ssize_t b, row0, n, i, k, d
    cdef double wi, nk_k
    if _is_separable(m):
        for i in range(2 * K * D):
            s.mom[i] = 0.0
    for b in range(block0, block1):
        row0 = b * block_size
        n = min(block_size, n_samples - row0)
        if b + 1 < block1:
            _prefetch(X + (row0 + n) * D, min(block_size, n_samples - row0 - n) * D * sizeof(floating))
        _load(m, X + row0 * D, n, s)
        if resp == NULL:
            _log_prob_block(m, n, s)
            loglik[0] += _responsibilities(m, row0, n, s, nk)
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
        _stats_block(m, X, row0, n, s, sum_x, sum_xx)
    if _is_separable(m):
        for k in range(K):
            for d in range(D):
                sum_xx[k * D + d] += s.mom[2 * k * D + d]
                sum_x[k * D + d] += s.mom[2 * k * D + D + d]


cdef int _cov_code(str covariance_type) except -1:
    codes = {"full": FULL, "tied": TIED, "diag": DIAG, "spherical": SPHERICAL}
    if covariance_type not in codes:
        raise ValueError(f"unknown covariance_type {covariance_type!r}")
    return codes[covariance_type]


cdef Model _model(const double[:, ::1] means, const double[::1] prec, const double[::1] center,
                  const double[::1] cst, str covariance_type) except *:
    """Check the log-prob parameters' shapes and point a Model at them."""
    cdef Model m
    cdef Py_ssize_t K = means.shape[0], D = means.shape[1]
    m.cov = _cov_code(covariance_type)
    expected = {FULL: K * D * D, TIED: D * D, DIAG: 2 * K * D, SPHERICAL: 2 * K * D}[m.cov]
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
    return m


cdef Py_ssize_t _leading_dim(Py_ssize_t n_samples, Py_ssize_t block_size) except -1:
    if n_samples < 1 or block_size < 1:
        raise ValueError("need at least one sample and a positive block_size")
    if min(block_size, n_samples) > 2 ** 30:
        raise ValueError(f"block_size {block_size} too large for BLAS (32-bit ints)")
    # pad rows of the (D, ld) scratch so that they do not all map to the same cache sets
    return (min(block_size, n_samples) + 7) // 8 * 8 + 8


def gaussian_log_prob(const floating[:, ::1] X, const double[:, ::1] means, const double[::1] prec,
                      const double[::1] center, const double[::1] cst, str covariance_type,
                      double[:, ::1] out, int n_threads, Py_ssize_t block_size):
    """out (N, K) = log N(x_i | mean_k, P_k) + cst[k] - cst-free part; see cython_backend."""
    cdef Model m = _model(means, prec, center, cst, covariance_type)
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
                if _is_separable(&m):
                    _log_prob_rows(&m, n, &s, outp + row0 * K)
                    continue
                _log_prob_block(&m, n, &s)
                for i in range(n):
                    for k in range(K):
                        outp[(row0 + i) * K + k] = s.lp[k * ld + i]
        _scratch_free(&s)
    if failed:
        raise MemoryError("fastem: could not allocate kernel scratch buffers")


def _check_slot_buffers(Py_ssize_t n_slots, Py_ssize_t K, Py_ssize_t D, int cov, double[:, ::1] nk,
                        double[:, ::1] sum_x, double[:, ::1] sum_xx, double[::1] loglik):
    size_xx = {FULL: K * D * D, TIED: D * D, DIAG: K * D, SPHERICAL: K * D}[cov]
    if (n_slots < 1 or nk.shape[0] != n_slots or nk.shape[1] != K or sum_x.shape[0] != n_slots
            or sum_x.shape[1] != K * D or sum_xx.shape[0] != n_slots or sum_xx.shape[1] != size_xx
            or loglik.shape[0] != n_slots):
        raise ValueError("inconsistent slot buffer shapes")


def stats(const floating[:, ::1] X, const double[:, ::1] resp, const double[:, ::1] means,
          const double[::1] prec, const double[::1] center, const double[::1] cst, str covariance_type,
          const double[::1] sample_weight, const double[::1] shift,
          double[:, ::1] nk, double[:, ::1] sum_x, double[:, ::1] sum_xx, double[::1] loglik,
          int n_threads, Py_ssize_t block_size):
    """Per-slot statistics (zero-filled buffers, one row per slot, summed by the caller).

    resp None: fused E-step under (means, prec, center, cst) (em_stats); otherwise the
    given responsibilities (N, K) (suff_stats; the log-prob parameters then only give
    K and D). sample_weight (N,) or None; shift flattened (K * D,), tied (D,).
    Buffers: nk (S, K); sum_x (S, K * D); sum_xx (S, size) with size K * D * D
    full, D * D tied, K * D diag and spherical; loglik (S,).
    """
    cdef Model m = _model(means, prec, center, cst, covariance_type)
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
    _check_slot_buffers(n_slots, K, D, m.cov, nk, sum_x, sum_xx, loglik)
    m.shift = &shift[0]
    m.sample_weight = NULL if sample_weight is None else &sample_weight[0]
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


def _exp_nonpos_array(const double[::1] x, double[::1] out):
    """out = exp(x) with the kernels' exp (x <= 0); for tests."""
    cdef Py_ssize_t i
    for i in range(x.shape[0]):
        out[i] = _exp_nonpos(x[i])


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
