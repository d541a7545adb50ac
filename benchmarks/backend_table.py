"""Write the measured table behind ``backend="auto"`` from ``fastem bench`` JSONs.

    python -m fastem bench --n 1e6 --op em_stats --impl cython,numba --threads all \
        --repeats 5 --json bench.json
    python benchmarks/backend_table.py bench.json [more.json ...]

replaces, in ``fastem/_kernels/backend_table.json``, the table of the ISA build the runs
measured (the JSON's ``machine.cython_isa``), keeping the other builds' tables. One row
per (covariance type, D, K, dtype) of the bench's em_stats cells at the largest N and
thread count: each backend's best seconds per pass, the best over the runs given
(several runs at different times damp a shared machine's noise).
"""
from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

TABLE_PATH = Path(__file__).resolve().parent.parent / "fastem" / "_kernels" / "backend_table.json"


def table(documents: list[dict]) -> dict:
    cells = [r for document in documents for r in document["results"]
             if r["op"] == "em_stats" and r["impl"] != "sklearn"]
    n_samples = max(r["n_samples"] for r in cells)
    n_threads = max(r["n_threads"] for r in cells)
    rows: dict[tuple, dict] = {}
    for r in cells:
        if r["n_samples"] == n_samples and r["n_threads"] == n_threads:
            key = (r["covariance_type"], r["n_features"], r["n_components"], r["dtype"])
            seconds = rows.setdefault(key, {})
            seconds[r["impl"]] = min(seconds.get(r["impl"], float("inf")), float(f"{r['time']:.4g}"))
    machine = documents[0]["machine"]
    return {
        "measured": {"date": datetime.date.today().isoformat(), "cpu": machine["cpu"], "simd": machine["simd"],
                     "cores": machine["cores"], "versions": machine["versions"], "n_samples": n_samples,
                     "n_threads": n_threads},
        "rows": [{"covariance_type": ct, "n_features": d, "n_components": k, "dtype": dt, "seconds": seconds}
                 for (ct, d, k, dt), seconds in sorted(rows.items())],
    }


def isa(documents: list[dict]) -> str:
    """The one ISA build of the Cython kernels the runs measured."""
    builds = {document["machine"].get("cython_isa") for document in documents}
    if len(builds) != 1 or None in builds:
        raise SystemExit(f"the runs must all name one Cython ISA build (machine.cython_isa), got {builds}")
    return builds.pop()


def dumps(tables: dict) -> str:
    """JSON with one line per row (a reviewable diff when a table is re-measured)."""
    parts = []
    for name, document in sorted(tables.items()):
        rows = ",\n   ".join(json.dumps(row) for row in document["rows"])
        parts.append(f'"{name}": {{"measured": {json.dumps(document["measured"])},\n  "rows": [\n   {rows}\n  ]}}')
    return "{" + ",\n ".join(parts) + "}\n"


if __name__ == "__main__":
    documents = []
    for path in sys.argv[1:]:
        with open(path) as f:
            documents.append(json.load(f))
    tables = json.loads(TABLE_PATH.read_text())
    tables[isa(documents)] = table(documents)
    TABLE_PATH.write_text(dumps(tables))
