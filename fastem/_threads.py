"""Thread-count conventions (joblib / threadpoolctl style) and BLAS pinning."""
from __future__ import annotations

import os
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


@contextmanager
def blas_single_threaded():
    """Pin BLAS to one thread while compiled kernels call it from their own threads."""
    with _controller().limit(limits=1, user_api="blas"):
        yield
