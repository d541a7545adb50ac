"""Out-of-core and dask benchmarks: one EM pass (``em_stats``) over large-N sources.

- memmap (ChunkedSource) vs in-memory (ArraySource): throughput in samples/s, their ratio
  (target >= 0.8), and peak memory of the pass: tracemalloc (numpy allocations) and the
  growth of anonymous RSS (file-backed pages of the memmap are reclaimable page cache and are
  reported apart). Default N = 2e5 x D = 16 float32 (13 MB); the target configuration
  N = 1e8 x 16 float32 (a 6.4 GB memmap written to ``FASTEM_BENCH_DIR`` or the temp dir, peak
  < 1 GB, ratio >= 0.8) runs only with ``FASTEM_BENCH_LARGE=1`` (marker ``large``).
- dask (threaded scheduler): fixed overhead per pass (target <= 100 ms) and per block
  (target <= 2 ms), and the efficiency of 2 workers (``T(1 worker) / (2 T(2 workers))``),
  on the threaded scheduler and on a 2-process ``dask.distributed`` cluster.

Timings are best-of-``REPEAT`` wall times; ratios are measured in the same run.
"""
from __future__ import annotations

import os
import sys
import threading
import time
import tracemalloc

import numpy as np
import pytest

from fastem import kernels
from fastem.families.gaussian import em_stats
from fastem._sources import ChunkedSource
from fastem.data import ArraySource
from fastem.gaussian import precisions_cholesky_from_covariances

REPEAT = 3
COVARIANCE_TYPE = "full"
N_COMPONENTS = 8
N_FEATURES = 16
N_SMALL = 200_000
N_LARGE = 100_000_000
#: rows of the in-memory baseline in the large configuration (throughput is per sample)
N_LARGE_IN_MEMORY = 10_000_000


def _params(rng):
    means = 3 * rng.standard_normal((N_COMPONENTS, N_FEATURES))
    covariances = np.tile(np.eye(N_FEATURES), (N_COMPONENTS, 1, 1))
    weights = np.full(N_COMPONENTS, 1 / N_COMPONENTS)
    return weights, means, precisions_cholesky_from_covariances(covariances, COVARIANCE_TYPE), COVARIANCE_TYPE


def _write_memmap(path, n_samples: int, rng, chunk: int = 1_000_000) -> np.memmap:
    """An (n_samples, N_FEATURES) float32 .npy written chunk by chunk (O(chunk) memory)."""
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_samples, N_FEATURES))
    for start in range(0, n_samples, chunk):
        stop = min(start + chunk, n_samples)
        X[start:stop] = rng.standard_normal((stop - start, N_FEATURES), dtype=np.float32)
    X.flush()
    del X
    return np.load(path, mmap_mode="r")


def _best_time(fn, repeat: int = REPEAT) -> float:
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _rss_kib() -> dict[str, int]:
    with open("/proc/self/status") as f:
        return {line.split(":")[0]: int(line.split()[1]) for line in f if line.startswith(("RssAnon", "RssFile"))}


def peak_memory(fn) -> dict[str, float]:
    """MiB: tracemalloc peak, and the peak growth of anonymous / file-backed RSS (sampled
    every 2 ms on Linux; None elsewhere) while ``fn()`` runs."""
    linux = sys.platform.startswith("linux")
    base = _rss_kib() if linux else None
    peaks = dict(base) if linux else {}
    done = threading.Event()

    def sample():
        while not done.wait(0.002):
            for key, value in _rss_kib().items():
                peaks[key] = max(peaks[key], value)

    sampler = threading.Thread(target=sample, daemon=True)
    if linux:
        sampler.start()
    tracemalloc.start()
    try:
        fn()
        _, traced = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        done.set()
        if linux:
            sampler.join()
    return {
        "tracemalloc_mib": traced / 2**20,
        "rss_anon_mib": (peaks["RssAnon"] - base["RssAnon"]) / 1024 if linux else None,
        "rss_file_mib": (peaks["RssFile"] - base["RssFile"]) / 1024 if linux else None,
    }


def _out_of_core(benchmark, tmp_dir, n_samples: int, n_in_memory: int, chunk_size: int | None = None):
    rng = np.random.default_rng(0)
    params = _params(rng)
    X = _write_memmap(os.path.join(tmp_dir, "X.npy"), n_samples, rng)
    in_memory = ArraySource(np.array(X[:n_in_memory]))
    chunked = ChunkedSource(X, chunk_size=chunk_size)
    em_stats(chunked, *params)  # warm: page cache, kernel compilation
    t_memory = _best_time(lambda: em_stats(in_memory, *params))
    t_chunked = _best_time(lambda: em_stats(chunked, *params))
    memory = peak_memory(lambda: em_stats(chunked, *params))
    info = {
        "backend": kernels.resolve_backend_name("auto", COVARIANCE_TYPE),
        "n_samples": n_samples, "chunk_rows": chunked.chunk_size,
        "in_memory_samples_per_s": n_in_memory / t_memory,
        "memmap_samples_per_s": n_samples / t_chunked,
        **{f"memmap_peak_{k}": v for k, v in memory.items()},
    }
    info["throughput_ratio"] = info["memmap_samples_per_s"] / info["in_memory_samples_per_s"]
    benchmark.extra_info.update(info)
    benchmark.pedantic(em_stats, args=(chunked, *params), rounds=1, iterations=1)
    print(info)
    return in_memory, chunked, params, info


def test_memmap_vs_in_memory(benchmark, tmp_path):
    in_memory, chunked, params, info = _out_of_core(benchmark, str(tmp_path), N_SMALL, N_SMALL, chunk_size=N_SMALL // 8)
    a, b = em_stats(chunked, *params), em_stats(in_memory, *params)
    # float32 X: the kernels' float32 blocks round differently where the chunks cut them
    # (their error bound, cython_backend.EXPANDED_MAX_KAPPA_FLOAT32, is float32's tolerance)
    np.testing.assert_allclose(a.sum_xx, b.sum_xx, rtol=1e-5, atol=1e-6 * np.abs(b.sum_xx).max())
    assert info["memmap_peak_tracemalloc_mib"] < chunked.n_samples * N_FEATURES * 4 / 2**20


@pytest.mark.large
def test_memmap_vs_in_memory_large(benchmark, tmp_path):
    tmp_dir = os.environ.get("FASTEM_BENCH_DIR", str(tmp_path))
    _, _, _, info = _out_of_core(benchmark, tmp_dir, N_LARGE, N_LARGE_IN_MEMORY)
    assert info["memmap_peak_tracemalloc_mib"] < 1024 and info["memmap_peak_rss_anon_mib"] < 1024, info
    assert info["throughput_ratio"] >= 0.8, info


def test_dask_overhead_and_two_worker_efficiency(benchmark):
    da = pytest.importorskip("dask.array")
    dask = pytest.importorskip("dask")
    from fastem._sources.dask import DaskSource

    rng = np.random.default_rng(0)
    params = _params(rng)
    small = rng.standard_normal((4096, N_FEATURES))
    t_direct = _best_time(lambda: em_stats(ArraySource(small), *params, n_threads=1))
    one_block = DaskSource(da.from_array(small, chunks=(len(small), N_FEATURES)))
    n_blocks = 256
    many_blocks = DaskSource(da.from_array(small, chunks=(len(small) // n_blocks, N_FEATURES)))
    em_stats(one_block, *params)
    t_one = _best_time(lambda: em_stats(one_block, *params))
    t_many = _best_time(lambda: em_stats(many_blocks, *params))

    # generated by dask (on the workers for the cluster), then persisted: no data in the graph
    X = da.random.default_rng(0).standard_normal((N_SMALL // 2, N_FEATURES), chunks=(N_SMALL // 32, N_FEATURES))
    big = DaskSource(X.persist())
    times = {}
    for workers in (1, 2):
        with dask.config.set(scheduler="threads", num_workers=workers):
            times[workers] = _best_time(lambda: em_stats(big, *params))
    info = {
        "fixed_overhead_ms": 1e3 * (t_one - t_direct),
        "per_block_overhead_ms": 1e3 * max(0.0, t_many - t_one) / (n_blocks - 1),
        "threads_2_worker_efficiency": times[1] / (2 * times[2]),
    }
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        persisted = DaskSource(client.persist(X))
        em_stats(persisted, *params)
        t_cluster = _best_time(lambda: em_stats(persisted, *params))
        stats = em_stats(persisted, *params)
    info["distributed_2_process_efficiency"] = times[1] / (2 * t_cluster)
    benchmark.extra_info.update(info)
    benchmark.pedantic(em_stats, args=(big, *params), rounds=1, iterations=1)
    print(info)
    np.testing.assert_allclose(stats.sum_xx, em_stats(ArraySource(big.X.compute()), *params).sum_xx, rtol=1e-9)
