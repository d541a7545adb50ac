"""Estimator benchmarks: one EM iteration (``fit`` with ``max_iter=1``) and a whole ``fit``
of fixed length from the same initial parameters, fastem.GaussianMixture per backend
against sklearn.mixture.GaussianMixture. Parametrized over the cells of ``BENCH_OPS``
by ``conftest.pytest_generate_tests``."""
import math

from fastem.bench import ESTIMATOR_OPS

BENCH_OPS = ESTIMATOR_OPS


def test_fit(benchmark, bench_session, bench_cell):
    result = bench_session.measure(benchmark, bench_cell)
    assert math.isfinite(result.samples_per_s) and result.roofline_fraction > 0
