"""Thread-count conventions (joblib / threadpoolctl style) and BLAS pinning."""
from __future__ import annotations

import os
import threading
from functools import lru_cache


def cpu_count() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def effective_n_threads(n_threads: int | None) -> int:
    """None -> all usable CPUs; -1 -> all; -2 -> all but one; a positive int as is."""
    if n_threads is None:
        return cpu_count()
    if n_threads < 0:
        return max(1, cpu_count() + 1 + n_threads)
    return n_threads  # without the affinity query: it costs as much as a tiny pass


@lru_cache(maxsize=1)
def _blas_libraries() -> tuple:
    """threadpoolctl's controllers of the BLAS libraries loaded, found once (a
    ``ThreadpoolController.limit`` re-reads every library's info, some 20 us, per call)."""
    from threadpoolctl import ThreadpoolController

    return tuple(ThreadpoolController().select(user_api="blas").lib_controllers)


_blas_pinned = 0  # depth of nested blas_single_threaded blocks (BLAS's thread count is process-wide)
_blas_lock = threading.Lock()


class blas_single_threaded:
    """Context manager: BLAS pinned to one thread while compiled kernels call it from
    their own threads.

    Nested blocks cost next to nothing: an estimator pins BLAS once for a whole fit, and
    the kernel calls inside it find the pin in place (a kernel call on a small fit costs
    as little as a few microseconds)."""

    def __enter__(self) -> None:
        global _blas_pinned
        with _blas_lock:
            self.outermost = _blas_pinned == 0
            _blas_pinned += 1
        if self.outermost:
            self.libraries = _blas_libraries()
            self.originals = [library.get_num_threads() for library in self.libraries]
            for library in self.libraries:
                library.set_num_threads(1)

    def __exit__(self, *exc_info) -> None:
        global _blas_pinned
        if self.outermost:
            for library, n_threads in zip(self.libraries, self.originals):
                library.set_num_threads(n_threads)
        with _blas_lock:
            _blas_pinned -= 1
