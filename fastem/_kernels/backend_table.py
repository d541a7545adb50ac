"""The measured tables behind ``backend="auto"``: seconds of one ``em_stats`` pass per
backend for (covariance type, D, K, dtype), one table per ISA build of the Cython kernels
(they differ in more than vector width: the AVX-512 build leaves the products to BLAS),
written from ``fastem bench`` runs by ``benchmarks/backend_table.py`` into
``backend_table.json`` (each table's ``measured`` entry names the machine and date), and
the lookup that names the fastest backend near a problem.
"""
from __future__ import annotations

import functools
import json
import math
from pathlib import Path

from . import _isa

TABLE_PATH = Path(__file__).with_name("backend_table.json")
#: another backend than the default must be this much faster to be named (one bench run
#: against another on a shared 2-vCPU machine differs by up to ~10 %)
MARGIN = 1.1
#: rows more than this factor away in D or in K say nothing about a problem
NEAR = 2.0


@functools.cache
def tables() -> dict:
    """Every table, by ISA build: ``{isa: {"measured": {...}, "rows": [{"covariance_type",
    "n_features", "n_components", "dtype", "seconds": {backend: s}}, ...]}}``."""
    with open(TABLE_PATH) as f:
        return json.load(f)


def load() -> dict:
    """The table of the ISA build the Cython kernels run (no rows without them, or where
    that build was not measured)."""
    return tables().get(_isa.running(), {"measured": {}, "rows": []})


def _distance(row: dict, n_features: int, n_components: int) -> float:
    return abs(math.log(row["n_features"] / n_features)) + abs(math.log(row["n_components"] / n_components))


@functools.lru_cache(maxsize=4096)  # called per public kernel call: a scan costs ~15 us, a hit ~0.1
def fastest(covariance_type: str, n_features: int, n_components: int, dtype: str, default: str) -> str:
    """The backend the nearest measured row (in log D + log K, within ``NEAR`` of each)
    names fastest, if it beats ``default`` by ``MARGIN``; ``default`` otherwise (no row
    near, or ``default`` within the margin). Cached: after replacing ``load``, call
    ``fastest.cache_clear()``."""
    limit = math.log(NEAR) + 1e-12
    rows = [r for r in load()["rows"]
            if r["covariance_type"] == covariance_type and r["dtype"] == dtype
            and abs(math.log(r["n_features"] / n_features)) <= limit
            and abs(math.log(r["n_components"] / n_components)) <= limit]
    if not rows:
        return default
    row = min(rows, key=lambda r: (_distance(r, n_features, n_components), r["n_features"], r["n_components"]))
    seconds = row["seconds"]
    best = min(seconds, key=seconds.get)
    if default in seconds and seconds[default] <= MARGIN * seconds[best]:
        return default
    return best
