"""Thread-count conventions (joblib / threadpoolctl style) and BLAS pinning."""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from functools import lru_cache


def cpu_count() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def effective_n_threads(n_threads: int | None) -> int:
    """None -> all usable CPUs; -1 -> all; -2 -> all but one; a positive int as is."""
    n_cpus = cpu_count()
    if n_threads is None:
        return n_cpus
    if n_threads < 0:
        return max(1, n_cpus + 1 + n_threads)
    return n_threads


@lru_cache(maxsize=1)
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


_blas_pinned = 0  # depth of nested blas_single_threaded blocks (BLAS's thread count is process-wide)
_blas_lock = threading.Lock()


@contextmanager
def blas_single_threaded():
    """Pin BLAS to one thread while compiled kernels call it from their own threads.

    Nested blocks cost nothing: an estimator pins BLAS once for a whole fit, because
    threadpoolctl's limit (tens of microseconds) would otherwise be paid on every kernel
    call, which is most of a small fit."""
    global _blas_pinned
    if _blas_pinned:
        yield
        return
    with _controller().limit(limits=1, user_api="blas"):
        with _blas_lock:
            _blas_pinned += 1
        try:
            yield
        finally:
            with _blas_lock:
                _blas_pinned -= 1
