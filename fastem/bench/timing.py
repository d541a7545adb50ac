"""Wall-clock timing: warm up once, then repeat and keep every sample."""
from __future__ import annotations

import gc
from dataclasses import dataclass
from statistics import median, quantiles
from time import perf_counter
from typing import Callable


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
              max_repeats: int = 100) -> Timing:
    """Call ``fn`` once untimed (JIT compilation, caches), then time it ``min_repeats``
    times and keep going until ``min_time`` seconds have been spent or ``max_repeats``."""
    if min_repeats < 1 or max_repeats < min_repeats:
        raise ValueError(f"need 1 <= min_repeats <= max_repeats, got {min_repeats}, {max_repeats}")
    fn()
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
