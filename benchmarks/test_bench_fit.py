"""Estimator benchmarks: one EM iteration (``fit`` with ``max_iter=1``) and a whole ``fit``
of fixed length from the same initial parameters, fastem.GaussianMixture per backend
against sklearn.mixture.GaussianMixture."""
import pytest

from conftest import bench_params
from fastem.bench import ESTIMATOR_OPS


@pytest.mark.parametrize(("row", "config", "n_threads"), bench_params(ESTIMATOR_OPS))
def test_fit(benchmark, bench_session, row, config, n_threads):
    result = bench_session.measure(benchmark, row, config, n_threads)
    assert result.time > 0 and result.roofline_fraction > 0
