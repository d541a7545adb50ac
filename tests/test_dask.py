"""DaskSource: a map-reduce of per-block SuffStats equal to the in-memory result, on the
threaded scheduler and on dask.distributed (that fastem runs without dask: test_sources.py)."""
from __future__ import annotations

import numpy as np
import pytest

from _data import assert_stats_close, make_problem
from fastem._sources import ChunkedSource
from fastem.families.gaussian import em_stats
from fastem.data import ArraySource, as_source
from fastem.suff_stats import COVARIANCE_TYPES

N = 1100
#: per-block float64 sums reduced in a tree: ~1e-12 of the in-memory result (1e-9 promised)
RTOL = 1e-12

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
from fastem._sources.dask import DaskSource, _tasks_run_in_parallel  # noqa: E402


def _problem(covariance_type="full", dtype=np.float64, weighted=True):
    return make_problem(covariance_type, n_samples=N, n_features=3, n_components=3, dtype=dtype, weighted=weighted)


def _expected(p):
    return em_stats(ArraySource(p.X, p.sample_weight), *p.params)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_matches_in_memory_for_any_chunking(covariance_type, dtype):
    p = _problem(covariance_type, dtype)
    expected = _expected(p)
    rtol = RTOL if dtype == np.float64 else 1e-6
    for chunks in [(N, 3), (100, 3), ((1, 0, 600, 499), (2, 1))]:  # ragged, an empty block, split columns
        source = as_source(da.from_array(p.X, chunks=chunks), p.sample_weight)
        assert isinstance(source, DaskSource)
        assert (source.n_samples, source.n_features, source.dtype) == (N, 3, np.dtype(dtype))
        assert_stats_close(em_stats(source, *p.params), expected, rtol)


def test_dask_sample_weight_and_new_parameters_each_pass():
    p = _problem()
    X = da.from_array(p.X, chunks=(128, 3))
    source = DaskSource(X, da.from_array(p.sample_weight, chunks=300))
    assert_stats_close(em_stats(source, *p.params), _expected(p), RTOL)
    q = _problem("full", weighted=False)  # other parameters: no graph key may be reused
    other = em_stats(source, *q.params)
    assert_stats_close(other, em_stats(ArraySource(p.X, p.sample_weight), *q.params), RTOL)


def test_synchronous_scheduler_and_threads():
    p = _problem()
    assert _tasks_run_in_parallel()
    source = DaskSource(da.from_array(p.X, chunks=(200, 3)), p.sample_weight)
    with dask.config.set(scheduler="sync"):
        assert not _tasks_run_in_parallel()
        assert_stats_close(em_stats(source, *p.params, n_threads=2), _expected(p), RTOL)


def test_sample_and_iter_chunks():
    p = _problem()
    source = DaskSource(da.from_array(p.X, chunks=(100, 3)), p.sample_weight)
    np.testing.assert_array_equal(source.sample(40, np.random.RandomState(1)),
                                  ChunkedSource(p.X, chunk_size=512).sample(40, np.random.RandomState(1)))
    np.testing.assert_array_equal(source.sample(N, 0), p.X)
    chunks = list(source.iter_chunks())
    np.testing.assert_array_equal(np.concatenate([X for X, _ in chunks]), p.X)
    np.testing.assert_array_equal(np.concatenate([w for _, w in chunks]), p.sample_weight)


def test_errors():
    p = _problem()
    bad = p.X.copy()
    bad[250, 1] = np.nan
    with pytest.raises(ValueError, match="chunk 2: X contains NaN"):
        em_stats(DaskSource(da.from_array(bad, chunks=(100, 3))), *p.params)
    with pytest.raises(ValueError, match="2-d"):
        DaskSource(da.zeros(5))
    X = da.from_array(p.X, chunks=(100, 3))
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        DaskSource(X[X[:, 0] > 0])
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(%d,\)" % N):
        DaskSource(X, np.ones(3))
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        em_stats(DaskSource(X, -np.ones(N)), *p.params)
    with pytest.raises(ValueError, match="split_every"):
        DaskSource(X, split_every=1)
    with pytest.raises(ValueError, match="at least 2 required"):
        DaskSource(X[:1], min_samples=2)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_gaussian_mixture_fits_a_dask_array_like_an_array():
    from fastem import GaussianMixture

    p = _problem(weighted=False)
    init = dict(weights_init=p.weights, means_init=p.means, precisions_init=np.linalg.inv(p.covariances),
                tol=1e-8, max_iter=5)
    expected = GaussianMixture(3, **init).fit(p.X)
    got = GaussianMixture(3, **init).fit(da.from_array(p.X, chunks=(300, 3)))
    assert got.n_iter_ == expected.n_iter_
    np.testing.assert_allclose(got.means_, expected.means_, rtol=1e-9)
    np.testing.assert_allclose(got.lower_bound_, expected.lower_bound_, rtol=1e-9)


@pytest.fixture(scope="module", params=[False, True], ids=["threads", "processes"])
def client(request):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=request.param, host="127.0.0.1",
                                  protocol="tcp", dashboard_address=None) as cluster:
        with distributed.Client(cluster) as c:
            yield c


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_distributed_matches_in_memory(client, covariance_type):
    p = _problem(covariance_type)
    X = da.from_array(p.X, chunks=(150, 3))
    source = DaskSource(X, p.sample_weight)
    assert _tasks_run_in_parallel()
    assert_stats_close(em_stats(source, *p.params), _expected(p), RTOL)
    persisted = DaskSource(client.persist(X), p.sample_weight)
    assert_stats_close(em_stats(persisted, *p.params), _expected(p), RTOL)
    bad = p.X.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="chunk 0: X contains NaN or infinity"):
        em_stats(DaskSource(da.from_array(bad, chunks=(150, 3))), *p.params)
