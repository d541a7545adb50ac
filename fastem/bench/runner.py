"""Run a slice of the matrix: every (config, threads, implementation) cell, with ratios
against the reference and scikit-learn and the roofline fraction."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Iterable

from threadpoolctl import threadpool_limits

from .cost import cost
from .implementations import FIT_ITERATIONS, REFERENCE, SKLEARN, Implementation
from .problems import Config, make_problem
from .roofline import Roofline
from .timing import SETTLE_SECONDS, Timing, time_call


@dataclass
class Result:
    """One measured cell. Times are seconds per EM iteration (per call for kernels);
    ``x_reference`` / ``x_sklearn`` = their time / this time (None when not measured);
    ``roofline_fraction`` = roofline floor / time."""

    impl: str
    op: str
    n_samples: int
    n_features: int
    n_components: int
    covariance_type: str
    dtype: str
    n_threads: int
    time: float
    median: float
    spread: float
    repeats: int
    samples_per_s: float
    floor: float
    roofline_fraction: float
    bytes: float
    flops: float
    exps: float
    x_reference: float | None = None
    x_sklearn: float | None = None

    @property
    def config(self) -> Config:
        return Config(self.n_samples, self.n_features, self.n_components, self.covariance_type, self.dtype)

    @property
    def group(self) -> tuple:
        """Results with the same group are ratios of one another."""
        return (self.op, self.config, self.n_threads)

    def as_dict(self) -> dict:
        return asdict(self)


def iterations_per_call(op: str, max_iter: int) -> int:
    return {"fit": max_iter}.get(op, 1)


def make_result(row: Implementation, config: Config, n_threads: int, timing: Timing, roofline: Roofline,
                max_iter: int = FIT_ITERATIONS) -> Result:
    """A :class:`Result` (ratios not yet filled in) from the timing of one call."""
    per_call = iterations_per_call(row.op, max_iter)
    work = cost(row.op, config, per_call)
    # logsumexp's input is float64 log-probabilities whatever X's dtype
    floor = roofline.floor(work, config, n_threads, "float64" if row.op == "logsumexp" else None)
    time = timing.best / per_call
    return Result(row.name, row.op, config.n_samples, config.n_features, config.n_components,
                  config.covariance_type, config.dtype, n_threads, time, timing.median / per_call,
                  timing.spread, timing.repeats, config.n_samples / time, floor / per_call,
                  floor / timing.best, work.bytes, work.flops, work.exps)


def fill_ratios(results: list[Result]) -> None:
    """Set ``x_reference`` and ``x_sklearn`` from the baselines of each group."""
    times = {(r.group, r.impl): r.time for r in results}
    for r in results:
        ref, skl = times.get((r.group, REFERENCE)), times.get((r.group, SKLEARN))
        r.x_reference = None if ref is None else ref / r.time
        r.x_sklearn = None if skl is None else skl / r.time


def canonical(op: str, config: Config) -> tuple:
    """What the work of ``op`` depends on (logsumexp: only N and K), to skip duplicates."""
    if op == "logsumexp":
        return (op, config.n_samples, config.n_components)
    return (op, config)


def cells(configs: Iterable[Config], rows: list[Implementation], threads: Iterable[int]):
    """(config, row, n_threads) to time, config by config (so each config's data is made
    once), rows in table order within each (op, config, threads) group."""
    threads = list(threads)
    seen = set()
    for config in configs:
        for op in dict.fromkeys(row.op for row in rows):
            if canonical(op, config) in seen:
                continue
            seen.add(canonical(op, config))
            for n_threads in threads:
                for row in rows:
                    if row.op == op:
                        yield config, row, n_threads


def run(configs: Iterable[Config], rows: list[Implementation], threads: Iterable[int], *,
        roofline: Roofline | None = None, min_time: float = 0.05, min_repeats: int = 3,
        max_iter: int = FIT_ITERATIONS, progress: Callable[[str], None] | None = None,
        ) -> tuple[list[Result], list[str]]:
    """Time every cell; returns the results and one line per skipped row (with the reason)."""
    roofline = roofline or Roofline()
    runnable, skipped = [], []
    for row in rows:
        reason = row.unavailable_reason()
        if reason is None:
            runnable.append(row)
        else:
            skipped.append(f"{row.id}: {reason}")
    results, problem = [], None
    for config, row, n_threads in cells(configs, runnable, threads):
        if problem is None or problem.config != config:
            problem = None  # free the previous data first
            problem = make_problem(config)
        if progress:
            progress(f"{row.id} {config.label} threads={n_threads}")
        with threadpool_limits(limits=n_threads):
            fn = row.prepare(problem, n_threads, max_iter)
            timing = time_call(fn, min_time=min_time, min_repeats=min_repeats, settle=SETTLE_SECONDS)
        results.append(make_result(row, config, n_threads, timing, roofline, max_iter))
    fill_ratios(results)
    return results, skipped
