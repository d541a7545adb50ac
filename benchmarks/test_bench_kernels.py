"""Kernel benchmarks: logsumexp, gaussian_log_prob and em_stats (one fused E + M pass)
for every fastem backend, the numpy reference and scikit-learn's building blocks."""
import pytest

from conftest import bench_params
from fastem.bench import KERNEL_OPS


@pytest.mark.parametrize(("row", "config", "n_threads"), bench_params(KERNEL_OPS))
def test_kernel(benchmark, bench_session, row, config, n_threads):
    result = bench_session.measure(benchmark, row, config, n_threads)
    assert result.time > 0 and result.roofline_fraction > 0
