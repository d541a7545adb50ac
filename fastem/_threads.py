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


_blas_depth = 0  # open blas_single_threaded blocks (BLAS's thread count is process-wide)
_blas_originals = None  # [(library controller, its thread count)] while BLAS is pinned, else None
_blas_lock = threading.Lock()


class blas_single_threaded:
    """Context manager: BLAS pinned to one thread while compiled kernels call it from
    their own threads; restored when the outermost block ends.

    ``lazy=True`` pins nothing itself: a block inside it that pins leaves the pin in
    place until it ends. An estimator opens one for a whole fit (``fit_blas_scope``), so
    a fit pins BLAS at most once, and a small fit whose kernels never call BLAS never pins
    (the pin's library calls cost as much as a tiny pass). Nested blocks cost next to nothing."""

    def __init__(self, lazy: bool = False):
        self.lazy = lazy

    def __enter__(self) -> None:
        global _blas_depth, _blas_originals
        with _blas_lock:
            if not self.lazy and _blas_originals is None:
                libraries = _blas_libraries()
                originals = [(library, library.get_num_threads()) for library in libraries]
                for library in libraries:
                    library.set_num_threads(1)
                _blas_originals = originals
            _blas_depth += 1

    def __exit__(self, *exc_info) -> None:
        global _blas_depth, _blas_originals
        with _blas_lock:
            _blas_depth -= 1
            if _blas_depth == 0 and _blas_originals is not None:
                for library, n_threads in _blas_originals:
                    library.set_num_threads(n_threads)
                _blas_originals = None


#: a fit over at least this many rows pins BLAS for its whole length (its library calls
#: cost some 40 us, under 1 % of such a fit's pass)
FIT_PIN_MIN_SAMPLES = 10_000


def fit_blas_scope(n_samples: int) -> blas_single_threaded:
    """The BLAS scope of a whole fit over ``n_samples`` rows. A large fit pins BLAS from
    the start: its M-steps' LAPACK calls (the precision Cholesky factors) would otherwise
    wake BLAS's worker threads, whose spinning takes a core from the next pass (a tied
    2 x 8 fit at 1e6 rows on 2 vCPUs ran its iterations at twice em_stats's time). A small
    one stays lazy: pinned only once a kernel that calls BLAS from its threads pins it."""
    return blas_single_threaded(lazy=n_samples < FIT_PIN_MIN_SAMPLES)
