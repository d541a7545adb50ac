"""Performance benchmarks of fastem against its numpy reference and scikit-learn.

One table of implementations (:mod:`.implementations`) drives the pytest-benchmark
suite in ``benchmarks/``, the ``fastem bench`` command and the smoke test, so they
cannot drift. Each result carries its time, samples/s, ratios to the reference and to
scikit-learn, and its fraction of a roofline floor measured in the same run
(:mod:`.cost` for the work, :mod:`.roofline` for the ceilings).
"""
from .cost import Cost, cost
from .implementations import (END_TO_END_OPS, ESTIMATOR_OPS, FIT_ITERATIONS, KERNEL_OPS, LEVELS, OPS,
                              Implementation, implementation_table)
from .problems import DIMS, DTYPES, N_DEFAULT, N_LARGE, Config, Problem, make_problem, matrix
from .roofline import Roofline
from .runner import Result, cells, fill_ratios, make_result, run
from .timing import Timing, time_call

__all__ = [
    "DIMS", "DTYPES", "END_TO_END_OPS", "ESTIMATOR_OPS", "FIT_ITERATIONS", "KERNEL_OPS", "LEVELS", "N_DEFAULT", "N_LARGE", "OPS",
    "Config", "Cost", "Implementation", "Problem", "Result", "Roofline", "Timing", "cells", "cost", "fill_ratios",
    "implementation_table", "make_problem", "make_result", "matrix", "run", "time_call",
]
