"""pytest-benchmark plumbing shared by the benchmark modules.

Cells come from :func:`fastem.bench.cells` over :func:`fastem.bench.implementation_table`
(the table ``fastem bench`` and ``tests/test_bench.py`` use). N=1e4 by default (N_SMOKE in a smoke run, benchmarks disabled); the
1e6 / 1e7 cells carry the ``large`` marker and run only with ``--large`` or
``FASTEM_BENCH_LARGE=1``.
"""
from __future__ import annotations

import os
from time import perf_counter

import pytest
from threadpoolctl import threadpool_limits

from fastem._threads import cpu_count
from fastem.bench import (N_DEFAULT, N_LARGE, Roofline, Timing, cells, fill_ratios, implementation_table, make_problem,
                          make_result, matrix)
from fastem.bench.report import config_label

THREADS = sorted({1, cpu_count()})
#: samples per cell in a smoke run (benchmarks disabled, as in CI): every cell runs once, quickly
N_SMOKE = 512
_EXTRA_INFO = ("time", "samples_per_s", "x_reference", "x_sklearn", "roofline_fraction", "floor", "bytes", "flops",
               "exps")


def pytest_addoption(parser):
    parser.addoption("--large", action="store_true", default=False,
                     help="also run the 1e6 and 1e7 sample benchmarks (or set FASTEM_BENCH_LARGE=1)")


def large_enabled(config) -> bool:
    return config.getoption("--large") or os.environ.get("FASTEM_BENCH_LARGE") == "1"


def pytest_collection_modifyitems(config, items):
    if large_enabled(config):
        return
    skip = pytest.mark.skip(reason="1e6+ sample benchmark: run with --large or FASTEM_BENCH_LARGE=1")
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip)


def smoke_run(config) -> bool:
    """Benchmarks disabled (pyproject's addopts) and not re-enabled: a smoke test."""
    return config.getoption("benchmark_disable") and not config.getoption("benchmark_enable")


def bench_params(ops, smoke: bool, bench_matrix: dict | None = None) -> list:
    """pytest params (row, config, n_threads) for ``ops`` over ``bench_matrix`` (keyword
    arguments of :func:`fastem.bench.matrix`; default: every configuration at N_DEFAULT
    and N_LARGE), large ones marked; a smoke run has one small N instead of the sizes
    that are timed."""
    params = []
    bench_matrix = dict(bench_matrix or {"n_samples": (N_DEFAULT, *N_LARGE)})
    if smoke:
        bench_matrix["n_samples"] = (min(N_SMOKE, *bench_matrix["n_samples"]),)
    for config, row, n_threads in cells(matrix(**bench_matrix), implementation_table(ops), THREADS):
        label = config_label(row.op, config).replace(" ", "-").replace("=", "")
        marks = [pytest.mark.large] if config.n_samples >= min(N_LARGE) else []
        params.append(pytest.param((row, config, n_threads), marks=marks,
                                   id=f"{row.op}-{label}-t{n_threads}-{row.name}"))
    return params


def pytest_generate_tests(metafunc):
    """A test asking for ``bench_cell`` runs once per cell of its module's ``BENCH_OPS``
    (over its ``BENCH_MATRIX`` when it has one)."""
    if "bench_cell" in metafunc.fixturenames:
        metafunc.parametrize("bench_cell", bench_params(metafunc.module.BENCH_OPS, smoke_run(metafunc.config),
                                                        getattr(metafunc.module, "BENCH_MATRIX", None)))


class BenchSession:
    """Holds the roofline ceilings, one problem at a time, and every cell's result with
    its ``extra_info`` (pytest-benchmark serialises those dicts at the end of the session)."""

    def __init__(self):
        self.roofline = Roofline()
        self.results = {}
        self._problem = None

    def problem(self, config):
        if self._problem is None or self._problem.config != config:
            self._problem = None  # free the previous data first
            self._problem = make_problem(config)
        return self._problem

    def _timing(self, benchmark, fn) -> Timing:
        if not benchmark.disabled:
            benchmark(fn)
            s = benchmark.stats.stats
            return Timing(s.min, s.median, s.iqr / s.median, s.rounds)
        durations = []  # --benchmark-disable runs fn once: time that run ourselves

        def timed():
            start = perf_counter()
            fn()
            durations.append(perf_counter() - start)

        benchmark(timed)
        return Timing(durations[0], durations[0], 0.0, 1)

    def measure(self, benchmark, bench_cell):
        """Benchmark one (row, config, n_threads) cell; fills ``benchmark.group`` and
        ``extra_info``; returns the Result."""
        row, config, n_threads = bench_cell
        reason = row.unavailable_reason()
        if reason is not None:
            pytest.skip(reason)
        benchmark.group = f"{row.op} {config_label(row.op, config)} threads={n_threads}"
        problem = self.problem(config)
        with threadpool_limits(limits=n_threads):
            fn = row.prepare(problem, n_threads)
            if not benchmark.disabled:
                fn()  # warm-up: JIT compilation, caches (a smoke run skips it: its time is not kept)
            timing = self._timing(benchmark, fn)
        result = make_result(row, config, n_threads, timing, self.roofline)
        self.results[(result.group, row.name)] = (result, benchmark.extra_info)
        group = [value for (key, _), value in self.results.items() if key == result.group]
        fill_ratios([r for r, _ in group])
        for r, extra_info in group:  # a baseline timed later updates the ratios of earlier cells
            extra_info.update({key: getattr(r, key) for key in _EXTRA_INFO})
        return result


@pytest.fixture(scope="session")
def bench_session():
    return BenchSession()


@pytest.fixture
def fit_memory_n_samples(request) -> int:
    """N of the fit peak-memory benchmark: N_SMOKE in a smoke run, 1e6 with --large, else 1e5."""
    if smoke_run(request.config):
        return N_SMOKE
    return N_LARGE[0] if large_enabled(request.config) else 100_000


@pytest.fixture
def dropin_n_samples(request) -> int:
    """N of the patched-scikit-learn benchmark: N_SMOKE in a smoke run, else N_DEFAULT."""
    return N_SMOKE if smoke_run(request.config) else N_DEFAULT
