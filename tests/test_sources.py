"""Chunked (out-of-core) data sources: the same SuffStats as the in-memory ArraySource,
whatever the storage and the chunking; validation per chunk; one-pass reservoir sampling."""
from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from _data import RTOL, assert_stats_close, make_problem
from fastem import kernels
from fastem.families.gaussian import em_stats
from fastem._sources import ChunkedSource, large_source
from fastem._sources._reservoir import Reservoir
from fastem.data import ArraySource, as_source
from fastem.suff_stats import COVARIANCE_TYPES

BLOCK = kernels.DEFAULT_BLOCK_SIZE
N = 2 * BLOCK + 77
#: chunk sizes around the kernel block boundaries, a ragged last chunk, and more than N
CHUNK_SIZES = [BLOCK - 1, BLOCK, BLOCK + 1, N - 1, N + 5]
#: chunked float64 sums are reordered, not approximated: ~1e-12 of the in-memory result
CHUNK_RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-6}


def _problem(covariance_type="full", dtype=np.float64, weighted=True, n_samples=N, seed=0):
    return make_problem(covariance_type, n_samples=n_samples, n_features=3, n_components=3, dtype=dtype,
                        weighted=weighted, seed=seed)


def _expected(p, backend="auto"):
    return em_stats(ArraySource(p.X, p.sample_weight), *p.params, backend=backend)


def _ragged(X, w, cuts):
    """Chunks of X cut at ``cuts`` (empty chunks included), as (X, w) or X."""
    bounds = [0, *cuts, len(X)]
    return [(X[a:b], None if w is None else w[a:b]) if w is not None else X[a:b] for a, b in zip(bounds, bounds[1:])]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_storage_matches_in_memory_for_any_chunking(backend, covariance_type, dtype):
    p = _problem(covariance_type, dtype)
    expected = _expected(p, backend)
    for chunk_size in CHUNK_SIZES:
        source = ChunkedSource(p.X, p.sample_weight, chunk_size=chunk_size)
        assert (source.n_samples, source.n_features, source.dtype) == (N, 3, np.dtype(dtype))
        assert_stats_close(em_stats(source, *p.params, backend=backend), expected, CHUNK_RTOL[np.dtype(dtype)])


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_chunked_matches_reference_oracle(covariance_type):
    p = _problem(covariance_type)
    source = ChunkedSource(p.X, p.sample_weight, chunk_size=100)
    oracle = kernels.em_stats(p.X, *p.params, p.sample_weight, backend="numpy")
    assert_stats_close(em_stats(source, *p.params), oracle, RTOL[p.X.dtype])
    small = _problem(covariance_type, n_samples=30)
    for chunk_size in (1, 7):  # tiny chunks, reference kernels: the sums only reorder
        source = ChunkedSource(small.X, small.sample_weight, chunk_size=chunk_size)
        assert_stats_close(em_stats(source, *small.params, backend="numpy"), _expected(small, "numpy"), 1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_callable_of_ragged_weighted_chunks(covariance_type):
    p = _problem(covariance_type)
    chunks = _ragged(p.X, p.sample_weight, [0, 3, 3, 600, 601, N])  # empty first and last chunks
    source = ChunkedSource(lambda: iter(chunks))
    for _ in range(2):  # a callable is re-invoked for every pass
        assert_stats_close(em_stats(source, *p.params), _expected(p), 1e-12)
    assert (source.n_samples, source.n_features, source.dtype) == (N, 3, np.float64)


def test_list_of_chunks_and_sample_weight_scalar():
    p = _problem(weighted=False)
    source = ChunkedSource(_ragged(p.X, None, [100, 250]))
    assert_stats_close(em_stats(source, *p.params), _expected(p), 1e-12)
    doubled = em_stats(ChunkedSource(p.X, 2.0, chunk_size=100), *p.params)
    single = em_stats(ArraySource(p.X), *p.params)
    assert doubled.n == 2 * single.n
    np.testing.assert_allclose(doubled.sum_xx, 2 * single.sum_xx, rtol=1e-12)


def test_one_shot_iterator_passes_once_then_raises():
    p = _problem()
    source = as_source(iter(_ragged(p.X, p.sample_weight, [10, 500])))
    assert isinstance(source, ChunkedSource)
    assert (source.n_features, source.dtype) == (3, np.float64)  # read ahead, not lost
    with pytest.raises(ValueError, match="one-shot iterator"):
        source.n_samples
    assert_stats_close(em_stats(source, *p.params), _expected(p), 1e-12)
    assert source.n_samples == N
    with pytest.raises(ValueError, match="one-shot iterator.*callable"):
        em_stats(source, *p.params)


def test_counting_pass_for_n_samples_of_a_callable():
    p = _problem()
    calls = []

    def chunks():
        calls.append(1)
        return iter(_ragged(p.X, None, [300]))

    source = ChunkedSource(chunks)
    assert source.n_features == 3 and len(calls) == 1  # a peek
    assert source.n_samples == N and len(calls) == 2  # a counting pass
    assert source.n_samples == N and len(calls) == 2  # remembered


def test_columnar_batches_are_stacked():
    class Batch:  # the part of pyarrow.RecordBatch's interface that is used
        def __init__(self, X):
            self.columns = [X[:, j].copy() for j in range(X.shape[1])]
            self.num_rows = len(X)

    p = _problem(weighted=False)
    source = ChunkedSource(lambda: (Batch(c) for c in np.array_split(p.X, 3)))
    assert_stats_close(em_stats(source, *p.params), _expected(p), 1e-12)


def test_memmap_dispatch_and_parity(tmp_path, monkeypatch):
    p = _problem(dtype=np.float32)
    np.save(tmp_path / "X.npy", p.X)
    X = np.load(tmp_path / "X.npy", mmap_mode="r")
    assert isinstance(as_source(X), ArraySource)  # small: in memory is fine
    monkeypatch.setattr("fastem._sources.MEMMAP_CHUNK_BYTES", 1000)
    source = as_source(X, p.sample_weight)
    assert isinstance(source, ChunkedSource) and source.dtype == np.float32
    assert_stats_close(em_stats(source, *p.params), _expected(p), CHUNK_RTOL[np.dtype(np.float32)])


def test_h5py_dataset_chunked_along_its_own_chunks(tmp_path):
    h5py = pytest.importorskip("h5py")
    p = _problem()
    with h5py.File(tmp_path / "X.h5", "w") as f:
        f.create_dataset("X", data=p.X, chunks=(100, 3))
        f.create_dataset("w", data=p.sample_weight)
    with h5py.File(tmp_path / "X.h5", "r") as f:
        source = as_source(f["X"], f["w"])
        assert isinstance(source, ChunkedSource) and source.chunk_size % 100 == 0
        assert_stats_close(em_stats(source, *p.params), _expected(p), 1e-12)
        small = ChunkedSource(f["X"], f["w"], chunk_size=150)
        assert_stats_close(em_stats(small, *p.params), _expected(p), 1e-12)
        np.testing.assert_array_equal(small.sample(20, 0), ChunkedSource(p.X).sample(20, 0))


def test_zarr_array(tmp_path):
    zarr = pytest.importorskip("zarr")
    p = _problem(dtype=np.float32, weighted=False)
    z = zarr.create_array(store=str(tmp_path / "X.zarr"), shape=p.X.shape, chunks=(128, 3), dtype="float32")
    z[:] = p.X
    source = as_source(zarr.open_array(str(tmp_path / "X.zarr"), mode="r"))
    assert isinstance(source, ChunkedSource) and source.chunk_size % 128 == 0
    assert_stats_close(em_stats(source, *p.params), _expected(p), CHUNK_RTOL[np.dtype(np.float32)])
    np.testing.assert_array_equal(np.concatenate([c for c, _ in source.iter_chunks()]), p.X)


def test_iter_chunks_yields_all_rows_in_order():
    p = _problem()
    for source in (ChunkedSource(p.X, p.sample_weight, chunk_size=100),
                   ChunkedSource(lambda: iter(_ragged(p.X, p.sample_weight, [0, 5, 700])))):
        chunks = list(source.iter_chunks())
        assert all(len(X) for X, _ in chunks)
        np.testing.assert_array_equal(np.concatenate([X for X, _ in chunks]), p.X)
        np.testing.assert_array_equal(np.concatenate([w for _, w in chunks]), p.sample_weight)


def test_sample_is_reproducible_and_independent_of_chunking_and_storage():
    p = _problem(weighted=False)
    first = ChunkedSource(p.X, chunk_size=100).sample(50, np.random.RandomState(3))
    assert first.shape == (50, 3)
    assert len(np.unique(first, axis=0)) == 50
    positions = np.flatnonzero((p.X[:, None, :] == first[None]).all(axis=2).any(axis=1))
    np.testing.assert_array_equal(p.X[positions], first)  # distinct rows of X, in data order
    for other in (ChunkedSource(p.X, chunk_size=7), ChunkedSource(_ragged(p.X, None, [1, 600])),
                  ChunkedSource(iter(_ragged(p.X, None, [333])))):
        np.testing.assert_array_equal(other.sample(50, np.random.RandomState(3)), first)
    assert not np.array_equal(ChunkedSource(p.X).sample(50, 4), first)
    np.testing.assert_array_equal(ChunkedSource(p.X, chunk_size=100).sample(N + 1, 0), p.X)


def test_reservoir_is_uniform():
    counts = np.zeros(20)
    n_draws = 2000
    rs = np.random.RandomState(0)
    for _ in range(n_draws):
        reservoir = Reservoir(5, rs)
        for size in (3, 0, 9, 8):
            reservoir.offer(size)
        positions, _ = reservoir.result()
        assert len(np.unique(positions)) == 5
        counts[positions] += 1
    expected = n_draws * 5 / 20
    sigma = np.sqrt(n_draws * 0.25 * 0.75)
    assert np.all(np.abs(counts - expected) < 5 * sigma), counts


def test_memory_is_bounded_by_the_chunk(tmp_path):
    """A pass over a 12.8 MB memmap allocates O(chunk), not O(N) (tracemalloc sees numpy)."""
    rng = np.random.default_rng(0)
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float64, shape=(200_000, 8))
    X[:] = rng.standard_normal(X.shape)
    X.flush()
    X = np.load(tmp_path / "X.npy", mmap_mode="r")
    p = make_problem("diag", n_samples=10, n_features=8, n_components=3)
    source = ChunkedSource(X, chunk_size=2048)
    tracemalloc.start()
    try:
        em_stats(source, *p.params, backend="numpy")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < X.nbytes / 10, f"peak {peak / 2**20:.1f} MiB for {X.nbytes / 2**20:.1f} MiB of data"


@pytest.mark.parametrize("make, match", [
    (lambda X: [X[:10], np.vstack([X[10:20], [[np.nan, 0, 0]]])], r"chunk 1: X contains NaN"),
    (lambda X: [X[:10], X[10:20, :2]], r"chunk 1 has 2 features, earlier chunks have 3"),
    (lambda X: [X[:10], X[10:20].astype(np.float32)], r"chunk 1 has dtype float32"),
    (lambda X: [X[:10], X[10:20, 0]], r"chunk 1: X must be a 2-d array"),
    (lambda X: [(X[:10], np.ones(10), 1)], r"tuple of length 3"),
    (lambda X: [(X[:10], -np.ones(10))], r"chunk 0: sample_weight must be non-negative"),
    (lambda X: [(X[:10], np.ones(9))], r"chunk 0: sample_weight must have shape \(10,\)"),
    (lambda X: [X[:0], X[:0]], r"0 samples"),
])
def test_bad_chunks_raise_clear_errors(make, match):
    p = _problem()
    with pytest.raises(ValueError, match=match):
        em_stats(ChunkedSource(make(p.X)), *p.params)


def test_bad_sources_raise_clear_errors():
    X = _problem().X
    with pytest.raises(ValueError, match="yield \\(X, sample_weight\\)"):
        ChunkedSource([X], np.ones(N))
    with pytest.raises(ValueError, match="chunk_size"):
        ChunkedSource(X, chunk_size=0)
    with pytest.raises(ValueError, match="row-sliceable storage"):
        ChunkedSource(5)
    with pytest.raises(ValueError, match="2-d"):
        ChunkedSource(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="real numeric"):
        ChunkedSource(np.zeros((2, 3), dtype=complex))
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(%d,\)" % N):
        ChunkedSource(X, np.ones(3))
    with pytest.raises(ValueError, match="at least 2 required"):
        ChunkedSource(X[:1], min_samples=2)
    with pytest.raises(ValueError, match="at least 2 required"):
        em_stats(ChunkedSource(lambda: [X[:1]], min_samples=2), *_problem().params)
    with pytest.raises(ValueError, match="callable must return an iterable"):
        em_stats(ChunkedSource(lambda: 5), *_problem().params)
    with pytest.raises(ValueError, match="sample size"):
        ChunkedSource(X).sample(0, 0)


def test_in_memory_inputs_stay_array_sources():
    X = _problem().X
    assert large_source(X) is None
    assert large_source(X.tolist()) is None
    assert isinstance(as_source(X), ArraySource)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_gaussian_mixture_fits_a_chunked_source_like_an_array(tmp_path):
    """Given its initial parameters, the estimator's EM on a callable of chunks and on an h5py
    dataset follows the in-memory fit (same SuffStats each iteration)."""
    h5py = pytest.importorskip("h5py")
    from fastem import GaussianMixture

    p = _problem(weighted=False, n_samples=3000)
    init = dict(weights_init=p.weights, means_init=p.means, precisions_init=np.linalg.inv(p.covariances),
                tol=1e-8, max_iter=5)
    expected = GaussianMixture(3, **init).fit(p.X)
    with h5py.File(tmp_path / "X.h5", "w") as f:
        f.create_dataset("X", data=p.X, chunks=(256, 3))
    with h5py.File(tmp_path / "X.h5", "r") as f:
        sources = (f["X"], lambda: iter(np.array_split(p.X, 7)))
        for X in sources:
            got = GaussianMixture(3, **init)
            labels = got.fit_predict(X)  # predicts chunk by chunk through iter_chunks
            assert got.n_iter_ == expected.n_iter_
            np.testing.assert_allclose(got.means_, expected.means_, rtol=1e-10)
            np.testing.assert_allclose(got.covariances_, expected.covariances_, rtol=1e-10)
            np.testing.assert_allclose(got.lower_bound_, expected.lower_bound_, rtol=1e-10)
            np.testing.assert_array_equal(labels, expected.predict(p.X))


def test_fastem_imports_and_runs_without_dask():
    """dask is optional: fastem, its chunked sources and online EM work with it blocked."""
    code = (
        "import sys; sys.modules['dask'] = None; sys.modules['distributed'] = None\n"
        "import numpy as np, fastem, fastem.online\n"
        "from fastem.data import as_source\n"
        "X = np.random.default_rng(0).standard_normal((50, 2))\n"
        "s = as_source(X); assert type(s).__name__ == 'ArraySource'\n"
        "s = as_source(lambda: iter([X[:20], X[20:]])); assert s.n_samples == 50\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
