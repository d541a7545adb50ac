"""Ceilings of this machine, measured in the same run as the benchmarks.

- read bandwidth (bytes/s): ``np.add.reduce`` over a float64 array the size of the
  benchmark's X (clipped to [16 MiB, 1 GiB], so small problems are measured against the
  cache level they live in and large ones against memory), split over ``n_threads``
  Python threads (numpy releases the GIL in the reduction);
- GEMM rate (flops/s): a square ``A @ B`` of size ``GEMM_SIZE`` in the data's dtype, BLAS
  limited to ``n_threads``: the machine's practical peak (small, skinny products run
  below it, which is what the fraction then shows);
- exp rate (exps/s): ``np.exp`` of 2**21 float64 values in [-30, 0] (log-responsibilities),
  split over ``n_threads`` Python threads.

Each probe is the best of several repeats (at least 5, about 0.1 s in all) and cached per
(probe, size, threads). A call given n threads can always run on one, so its ceilings
are the larger of the n-thread and the 1-thread measurement (on a busy machine, extra
threads can make a probe slower). The roofline floor of a call is
``max(bytes / bandwidth, flops / gemm, exps / exp)``; the fraction reported is
``floor / measured time`` (1.0 = at the ceiling; the model ignores caches' and
instruction mixes' subtleties, so treat it as an order of magnitude).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from .cost import Cost
from .problems import Config
from .timing import time_call

_MIN_PROBE_BYTES = 16 << 20
_MAX_PROBE_BYTES = 1 << 30
_EXP_SIZE = 1 << 21
_PROBE_TIME = 0.1
GEMM_SIZE = 1024


def _split_run(func, parts: list[tuple], pool: ThreadPoolExecutor) -> None:
    """``func(*part)`` for every part, one per thread of ``pool``."""
    list(pool.map(lambda args: func(*args), parts))


def _chunks(n_items: int, n_threads: int) -> list[slice]:
    edges = np.linspace(0, n_items, n_threads + 1).astype(int)
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


class Roofline:
    """Measures and caches the ceilings; ``floor`` turns a :class:`Cost` into seconds."""

    def __init__(self, probe_time: float = _PROBE_TIME):
        self.probe_time = probe_time
        self._cache: dict[tuple, float] = {}

    def _best(self, fn) -> float:
        return time_call(fn, min_time=self.probe_time, min_repeats=5).best

    def bandwidth(self, nbytes: int, n_threads: int) -> float:
        """Read bandwidth in bytes/s for a working set of about ``nbytes``."""
        size = 1 << int(np.ceil(np.log2(min(max(nbytes, _MIN_PROBE_BYTES), _MAX_PROBE_BYTES))))
        key = ("bandwidth", size, n_threads)
        if key not in self._cache:
            a = np.ones(size // 8)
            parts = [(a[s],) for s in _chunks(len(a), n_threads)]
            with ThreadPoolExecutor(n_threads) as pool:
                self._cache[key] = size / self._best(lambda: _split_run(np.add.reduce, parts, pool))
        return self._cache[key]

    def gemm(self, dtype: str, n_threads: int) -> float:
        """flops/s of a square ``GEMM_SIZE`` product."""
        key = ("gemm", GEMM_SIZE, dtype, n_threads)
        if key not in self._cache:
            m = k = n = GEMM_SIZE
            rng = np.random.default_rng(0)
            a = rng.standard_normal((m, k)).astype(dtype)
            b = rng.standard_normal((k, n)).astype(dtype)
            out = np.empty((m, n), dtype=dtype)
            with threadpool_limits(limits=n_threads, user_api="blas"):
                self._cache[key] = 2.0 * m * k * n / self._best(lambda: np.matmul(a, b, out=out))
        return self._cache[key]

    def exp(self, n_threads: int) -> float:
        """exps/s of ``np.exp`` on float64."""
        key = ("exp", _EXP_SIZE, n_threads)
        if key not in self._cache:
            a = np.random.default_rng(0).uniform(-30.0, 0.0, _EXP_SIZE)
            out = np.empty_like(a)
            parts = [(a[s], out[s]) for s in _chunks(_EXP_SIZE, n_threads)]
            with ThreadPoolExecutor(n_threads) as pool:
                self._cache[key] = _EXP_SIZE / self._best(lambda: _split_run(np.exp, parts, pool))
        return self._cache[key]

    def floor(self, cost: Cost, config: Config, n_threads: int) -> float:
        """Seconds no implementation can beat on this machine (by this model)."""
        x_bytes = config.n_samples * config.n_features * config.itemsize
        thread_counts = {1, n_threads}
        bandwidth = max(self.bandwidth(x_bytes, t) for t in thread_counts)
        gemm = max(self.gemm(config.dtype, t) for t in thread_counts)
        exp = max(self.exp(t) for t in thread_counts)
        return max(cost.bytes / bandwidth, cost.flops / gemm, cost.exps / exp)

    def ceilings(self) -> list[dict]:
        """Every ceiling measured so far (for the JSON report)."""
        units = {"bandwidth": "bytes/s", "gemm": "flops/s", "exp": "exps/s"}
        return [{"probe": key[0], "size": key[1], **({"dtype": key[2]} if key[0] == "gemm" else {}),
                 "n_threads": key[-1], "rate": rate, "unit": units[key[0]]}
                for key, rate in self._cache.items()]
