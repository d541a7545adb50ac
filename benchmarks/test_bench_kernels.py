"""Kernel benchmarks: logsumexp, gaussian_log_prob and em_stats (one fused E + M pass)
for every fastem backend, the numpy reference and scikit-learn's building blocks.
Parametrized over the cells of ``BENCH_OPS`` by ``conftest.pytest_generate_tests``."""
import math

from fastem.bench import KERNEL_OPS

BENCH_OPS = KERNEL_OPS


def test_kernel(benchmark, bench_session, bench_cell):
    result = bench_session.measure(benchmark, bench_cell)
    assert math.isfinite(result.samples_per_s) and result.roofline_fraction > 0
