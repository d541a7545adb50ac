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
from libc.math cimport INFINITY, sqrt
from libc.stdlib cimport free, malloc


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


cdef inline double _sq_distance_to(const double* z, const double* centers_t, Py_ssize_t D, Py_ssize_t K,
                                   Py_ssize_t k) noexcept nogil:
    """One centre's squared distance, summed in the same order as _sq_distances."""
    cdef Py_ssize_t d
    cdef double diff, total = 0.0
    for d in range(D):
        diff = z[d] - centers_t[d * K + k]
        total += diff * diff
    return total


cdef extern from *:
    """
    /* d2[k] = sum_d (z[d] - c[k, d])^2 over the centres transposed, ct[d * K + k], summed
       over d in order. Tiles of 8 centres are two 4-double vectors (GCC/Clang vector
       extensions: AVX2/AVX-512 registers, or SSE2 pairs in the baseline build), because
       compilers left to themselves vectorise the loop over d instead, with gathers. */
    #include <string.h>
    #if defined(__GNUC__) || defined(__clang__)
    typedef double fastem_v4d __attribute__((vector_size(32)));
    static inline fastem_v4d fastem_load4(const double* p) { fastem_v4d v; memcpy(&v, p, sizeof v); return v; }
    #endif
    static inline void fastem_sq_distances(const double* z, const double* ct, Py_ssize_t D, Py_ssize_t K,
                                           double* d2) {
        Py_ssize_t k0 = 0, k, d;
    #if defined(__GNUC__) || defined(__clang__)
        for (; k0 + 8 <= K; k0 += 8) {
            fastem_v4d acc0 = {0.0, 0.0, 0.0, 0.0}, acc1 = {0.0, 0.0, 0.0, 0.0};
            const double* row = ct + k0;
            for (d = 0; d < D; d++, row += K) {
                const fastem_v4d diff0 = z[d] - fastem_load4(row), diff1 = z[d] - fastem_load4(row + 4);
                acc0 += diff0 * diff0;
                acc1 += diff1 * diff1;
            }
            memcpy(d2 + k0, &acc0, sizeof acc0);
            memcpy(d2 + k0 + 4, &acc1, sizeof acc1);
        }
        for (; k0 + 4 <= K; k0 += 4) {
            fastem_v4d acc = {0.0, 0.0, 0.0, 0.0};
            const double* row = ct + k0;
            for (d = 0; d < D; d++, row += K) {
                const fastem_v4d diff = z[d] - fastem_load4(row);
                acc += diff * diff;
            }
            memcpy(d2 + k0, &acc, sizeof acc);
        }
    #endif
        for (k = k0; k < K; k++) {
            double total = 0.0;
            for (d = 0; d < D; d++) {
                const double diff = z[d] - ct[d * K + k];
                total += diff * diff;
            }
            d2[k] = total;
        }
    }
    """
    void _sq_distances "fastem_sq_distances"(const double* z, const double* centers_t, Py_ssize_t D, Py_ssize_t K,
                                             double* d2) noexcept nogil


cdef inline Py_ssize_t _argmin(const double* d2, Py_ssize_t K) noexcept nogil:
    cdef Py_ssize_t k, best = 0
    for k in range(1, K):
        if d2[k] < d2[best]:
            best = k
    return best


cdef inline void _fold(double* nk, long long* members, double* sum_x, Py_ssize_t k, const double* z,
                       Py_ssize_t D, double w, double sign) noexcept nogil:
    cdef Py_ssize_t d
    cdef double sw = sign * w
    nk[k] += sw
    if w > 0:
        members[k] += <long long> sign
    for d in range(D):
        sum_x[k * D + d] += sw * z[d]


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


cdef double* _scratch(Py_ssize_t n) noexcept nogil:
    return <double*> malloc(max(n, 1) * sizeof(double))


def assign(const floating[:, ::1] X, const floating[::1] x_mean, const double[::1] sample_weight,
           const double[:, ::1] centers_t, int[::1] labels, double[:, ::1] nk, long long[:, ::1] members,
           double[:, ::1] sum_x, double[::1] inertia, long long[::1] n_changed, int n_threads,
           Py_ssize_t block_size):
    """Lloyd's assignment into zero-filled per-slot buffers: labels (in/out, N) become the
    nearest centre; nk, members (S, K); sum_x (S, K * D) of the centred rows; inertia,
    n_changed (S,)."""
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1]
    cdef Problem p = _problem(N, D, centers_t, sample_weight, block_size, nk.shape[0], x_mean.shape[0])
    _check_stats(&p, nk, members, sum_x, n_changed)
    if labels.shape[0] != N or inertia.shape[0] != p.n_slots:
        raise ValueError("labels must have shape (n_samples,) and inertia (n_slots,)")
    cdef Py_ssize_t K = p.n_centers, slot, i, start, stop, k
    cdef double* work
    cdef double w
    cdef int failed = 0
    cdef int* failed_p = &failed  # a write to a shared variable in a parallel block goes through a pointer
    with nogil, parallel(num_threads=n_threads):
        work = _scratch(D + K)
        if work == NULL:
            failed_p[0] = 1
        for slot in prange(p.n_slots, schedule="dynamic"):
            if work != NULL:
                start = _slot_start(&p, slot)
                stop = _slot_start(&p, slot + 1)
                for i in range(start, stop):
                    _centre_row(&X[i, 0], &x_mean[0], D, work)
                    _sq_distances(work, p.centers_t, D, K, work + D)
                    k = _argmin(work + D, K)
                    w = 1.0 if p.sample_weight == NULL else p.sample_weight[i]
                    if labels[i] != k:
                        n_changed[slot] += 1
                        labels[i] = <int> k
                    inertia[slot] += w * work[D + k]
                    _fold(&nk[slot, 0], &members[slot, 0], &sum_x[slot, 0], k, work, D, w, 1.0)
        free(work)
    if failed:
        raise MemoryError("fastem: could not allocate k-means scratch")


def bounded_assign(const floating[:, ::1] X, const floating[::1] x_mean, const double[::1] sample_weight,
                   const double[:, ::1] centers_t, const double[::1] half_gap, const double[::1] shifts,
                   double margin, int[::1] labels, double[::1] upper, double[::1] lower, double[:, ::1] nk,
                   long long[:, ::1] members, double[:, ::1] sum_x, long long[::1] n_changed, int n_threads,
                   Py_ssize_t block_size):
    """Hamerly's assignment (see reference_kmeans.kmeans_bounded_assign): labels, upper,
    lower (N,) in/out; zero-filled per-slot buffers receive the changes of the
    statistics."""
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1]
    cdef Problem p = _problem(N, D, centers_t, sample_weight, block_size, nk.shape[0], x_mean.shape[0])
    _check_stats(&p, nk, members, sum_x, n_changed)
    cdef Py_ssize_t K = p.n_centers
    if labels.shape[0] != N or upper.shape[0] != N or lower.shape[0] != N:
        raise ValueError("labels, upper and lower must have shape (n_samples,)")
    if half_gap.shape[0] != K or shifts.shape[0] != K:
        raise ValueError("half_gap and shifts must have shape (n_centers,)")
    cdef double max_shift = 0.0
    cdef Py_ssize_t slot, i, start, stop, k, old, j
    for k in range(K):
        if shifts[k] > max_shift:
            max_shift = shifts[k]
    cdef double* work
    cdef double w, bound, best, second
    cdef int failed = 0
    cdef int* failed_p = &failed  # a write to a shared variable in a parallel block goes through a pointer
    with nogil, parallel(num_threads=n_threads):
        work = _scratch(D + K)
        if work == NULL:
            failed_p[0] = 1
        for slot in prange(p.n_slots, schedule="dynamic"):
            if work != NULL:
                start = _slot_start(&p, slot)
                stop = _slot_start(&p, slot + 1)
                for i in range(start, stop):
                    old = labels[i]
                    if old >= 0:
                        upper[i] += shifts[old]
                        lower[i] -= max_shift
                        bound = lower[i] if lower[i] > half_gap[old] else half_gap[old]
                        if upper[i] + margin < bound:
                            continue
                        _centre_row(&X[i, 0], &x_mean[0], D, work)
                        upper[i] = sqrt(_sq_distance_to(work, p.centers_t, D, K, old))
                        if upper[i] + margin < bound:
                            continue
                    else:
                        _centre_row(&X[i, 0], &x_mean[0], D, work)
                    _sq_distances(work, p.centers_t, D, K, work + D)
                    k = _argmin(work + D, K)
                    best = work[D + k]
                    work[D + k] = INFINITY
                    second = INFINITY
                    for j in range(K):
                        if work[D + j] < second:
                            second = work[D + j]
                    upper[i] = sqrt(best)
                    lower[i] = sqrt(second)
                    if k != old:
                        n_changed[slot] += 1
                        labels[i] = <int> k
                        w = 1.0 if p.sample_weight == NULL else p.sample_weight[i]
                        _fold(&nk[slot, 0], &members[slot, 0], &sum_x[slot, 0], k, work, D, w, 1.0)
                        if old >= 0:
                            _fold(&nk[slot, 0], &members[slot, 0], &sum_x[slot, 0], old, work, D, w, -1.0)
        free(work)
    if failed:
        raise MemoryError("fastem: could not allocate k-means scratch")


def plusplus_pots(const floating[:, ::1] X, const floating[::1] x_mean, const double[::1] sample_weight,
                  const double[::1] closest_sq, const double[:, ::1] candidates_t, double[:, ::1] pots,
                  int n_threads, Py_ssize_t block_size):
    """pots (S, L) zero-filled: per slot, sum_i w_i min(closest_sq_i, ||z_i - cand_l||^2)."""
    cdef Py_ssize_t N = X.shape[0], D = X.shape[1]
    cdef Problem p = _problem(N, D, candidates_t, sample_weight, block_size, pots.shape[0], x_mean.shape[0])
    cdef Py_ssize_t L = p.n_centers, slot, i, start, stop, l
    if closest_sq.shape[0] != N or pots.shape[1] != L:
        raise ValueError("closest_sq must have shape (n_samples,) and pots (n_slots, n_candidates)")
    cdef double* work
    cdef double w, c
    cdef int failed = 0
    cdef int* failed_p = &failed  # a write to a shared variable in a parallel block goes through a pointer
    with nogil, parallel(num_threads=n_threads):
        work = _scratch(D + L)
        if work == NULL:
            failed_p[0] = 1
        for slot in prange(p.n_slots, schedule="dynamic"):
            if work != NULL:
                start = _slot_start(&p, slot)
                stop = _slot_start(&p, slot + 1)
                for i in range(start, stop):
                    _centre_row(&X[i, 0], &x_mean[0], D, work)
                    _sq_distances(work, p.centers_t, D, L, work + D)
                    w = 1.0 if p.sample_weight == NULL else p.sample_weight[i]
                    c = closest_sq[i]
                    for l in range(L):
                        pots[slot, l] += w * (work[D + l] if work[D + l] < c else c)
        free(work)
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
    cdef Py_ssize_t slot, i, start, stop
    cdef double* work
    cdef double d2
    cdef int failed = 0
    cdef int* failed_p = &failed  # a write to a shared variable in a parallel block goes through a pointer
    with nogil, parallel(num_threads=n_threads):
        work = _scratch(D)
        if work == NULL:
            failed_p[0] = 1
        for slot in prange(p.n_slots, schedule="static"):
            if work != NULL:
                start = _slot_start(&p, slot)
                stop = _slot_start(&p, slot + 1)
                for i in range(start, stop):
                    _centre_row(&X[i, 0], &x_mean[0], D, work)
                    d2 = _sq_distance_to(work, p.centers_t, D, 1, 0)
                    if d2 < closest_sq[i]:
                        closest_sq[i] = d2
        free(work)
    if failed:
        raise MemoryError("fastem: could not allocate k-means scratch")
