"""Ceilings of this machine, measured in the same run as the benchmarks.

- read bandwidth (bytes/s): ``np.add.reduce`` over a float64 array the size of the
  benchmark's X (clipped to [16 MiB, 1 GiB], so small problems are measured against the
  cache level they live in and large ones against memory), split over ``n_threads``
  Python threads (numpy releases the GIL in the reduction);
- GEMM rate (flops/s): a square ``A @ B`` of size ``GEMM_SIZE`` in the data's dtype, BLAS
  limited to ``n_threads``: the machine's practical peak (small, skinny products run
  below it, which is what the fraction then shows);
- exp rate (exps/s): the faster of two exps of values in [-30, 0] (log-responsibilities)
  in the data's dtype, 2**21 per call (float32 data's responsibilities are float32, and
  so is their exp, twice the lanes): the kernels' own vectorised exp
  (``_exp_nonpos`` of the Cython backend, in the ISA build the kernels run, through
  ``cython_backend.exp_probe``: passes over 2048 values, so that the data stay in cache
  as the kernels' blocks do, split over ``n_threads`` OpenMP threads), and ``np.exp`` of
  2**21 values split over ``n_threads`` Python threads (the only one when the Cython
  backend is unavailable). ``ceilings()`` names the probe that set the rate
  (``measured_by``) and gives both rates.

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
_EXP_BLOCK = 2048  # values per pass of the kernel probe (2 x 16 KiB per thread: in L1/L2)
NP_EXP = "np.exp"
_PROBE_TIME = 0.1
GEMM_SIZE = 1024


def _split_run(func, parts: list[tuple], pool: ThreadPoolExecutor) -> None:
    """``func(*part)`` for every part, one per thread of ``pool``."""
    list(pool.map(lambda args: func(*args), parts))


def _chunks(n_items: int, n_threads: int) -> list[slice]:
    edges = np.linspace(0, n_items, n_threads + 1).astype(int)
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


def kernel_exp_probe():
    """(name, fn(x, out, n_rounds, n_threads)) of the Cython kernels' exp, or None when
    that backend does not import."""
    try:
        from .._kernels import cython_backend
    except ImportError:
        return None
    return f"cython _exp_nonpos ({cython_backend.ISA} build, OpenMP)", cython_backend.exp_probe


class Roofline:
    """Measures and caches the ceilings; ``floor`` turns a :class:`Cost` into seconds."""

    def __init__(self, probe_time: float = _PROBE_TIME):
        self.probe_time = probe_time
        self._cache: dict[tuple, float] = {}
        #: per exp key, every exp probe's rate (name -> exps/s)
        self._exp_rates: dict[tuple, dict[str, float]] = {}

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

    def exp(self, dtype: str, n_threads: int) -> float:
        """exps/s on ``dtype``: the faster of the kernels' exp and ``np.exp``."""
        key = ("exp", _EXP_SIZE, dtype, n_threads)
        if key not in self._cache:
            a = np.random.default_rng(0).uniform(-30.0, 0.0, _EXP_SIZE).astype(dtype)
            rates = {}
            kernel = kernel_exp_probe()
            if kernel is not None:
                name, probe = kernel
                x = np.ascontiguousarray(a[:_EXP_BLOCK])
                buffers = np.empty((n_threads, _EXP_BLOCK), dtype=dtype)
                n_rounds = _EXP_SIZE // _EXP_BLOCK
                rates[name] = n_rounds * _EXP_BLOCK / self._best(lambda: probe(x, buffers, n_rounds, n_threads))
            out = np.empty_like(a)
            parts = [(a[s], out[s]) for s in _chunks(_EXP_SIZE, n_threads)]
            with ThreadPoolExecutor(n_threads) as pool:
                rates[NP_EXP] = _EXP_SIZE / self._best(lambda: _split_run(np.exp, parts, pool))
            self._exp_rates[key] = rates
            self._cache[key] = max(rates.values())
        return self._cache[key]

    def measured_by(self, key: tuple) -> str:
        """What measured the ceiling ``key`` (for exp: the faster probe)."""
        if key[0] == "exp":
            rates = self._exp_rates[key]
            return max(rates, key=rates.get)
        return {"bandwidth": "np.add.reduce", "gemm": "np.matmul (BLAS)"}[key[0]]

    def floor(self, cost: Cost, config: Config, n_threads: int, exp_dtype: str | None = None) -> float:
        """Seconds no implementation can beat on this machine (by this model); the exps are
        in ``exp_dtype`` (default the data's)."""
        x_bytes = config.n_samples * config.n_features * config.itemsize
        thread_counts = {1, n_threads}
        bandwidth = max(self.bandwidth(x_bytes, t) for t in thread_counts)
        gemm = max(self.gemm(config.dtype, t) for t in thread_counts)
        exp = max(self.exp(exp_dtype or config.dtype, t) for t in thread_counts)
        return max(cost.bytes / bandwidth, cost.flops / gemm, cost.exps / exp)

    def ceilings(self) -> list[dict]:
        """Every ceiling measured so far (for the JSON report)."""
        units = {"bandwidth": "bytes/s", "gemm": "flops/s", "exp": "exps/s"}
        return [{"probe": key[0], "size": key[1], **({"dtype": key[2]} if key[0] in ("gemm", "exp") else {}),
                 "n_threads": key[-1], "rate": rate, "unit": units[key[0]], "measured_by": self.measured_by(key),
                 **({"rates": dict(self._exp_rates[key])} if key[0] == "exp" else {})}
                for key, rate in self._cache.items()]
