"""Wall-clock timing: warm up once, let the machine settle, then repeat and keep every sample."""
from __future__ import annotations

import gc
from dataclasses import dataclass
from statistics import median, quantiles
from time import perf_counter, sleep
from typing import Callable

#: Seconds to wait between the warm-up call and the timed ones. After a multithreaded BLAS
#: call (the previous cell's numpy or scikit-learn, the data generation, a roofline probe)
#: OpenBLAS's worker threads keep spinning for about 0.1-0.2 s; on 2 cores they take one
#: from an OpenMP team. Measured: em_stats at N = 2e4 (full, 16x8) ran 3-4x slower within
#: 50 ms of a 2-thread matmul and at its usual speed 200 ms after it.
SETTLE_SECONDS = 0.25


@dataclass(frozen=True)
class Timing:
    """Seconds per call: ``best`` (the headline number), ``median``, and ``spread`` =
    interquartile range / median of the ``repeats`` timed calls (robust to the odd call
    a busy machine stalls; 0 for fewer than 2 repeats)."""

    best: float
    median: float
    spread: float
    repeats: int


def time_call(fn: Callable[[], object], *, min_time: float = 0.1, min_repeats: int = 3,
              max_repeats: int = 100, settle: float = 0.0) -> Timing:
    """Call ``fn`` once untimed (JIT compilation, caches), wait ``settle`` seconds (see
    SETTLE_SECONDS), then time it ``min_repeats`` times and keep going until ``min_time``
    seconds have been spent or ``max_repeats``."""
    if min_repeats < 1 or max_repeats < min_repeats:
        raise ValueError(f"need 1 <= min_repeats <= max_repeats, got {min_repeats}, {max_repeats}")
    fn()
    sleep(settle)
    times = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = perf_counter()
        while len(times) < min_repeats or (perf_counter() - start < min_time and len(times) < max_repeats):
            t0 = perf_counter()
            fn()
            times.append(perf_counter() - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    mid = median(times)
    spread = 0.0
    if len(times) > 1:
        q1, _, q3 = quantiles(times, n=4, method="inclusive")
        spread = (q3 - q1) / mid
    return Timing(min(times), mid, spread, len(times))
