"""The measured tables behind backend="auto" and how "auto" follows them."""
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from _subprocess import run_python
from fastem import kernels
from fastem._kernels import _isa, backend_table
from fastem.bench.problems import DIMS, DTYPES
from fastem.suff_stats import COVARIANCE_TYPES


def _needs(*names):
    missing = [n for n in names if n not in kernels.available_backends()]
    if missing:
        pytest.skip(f"backends {missing} unavailable")


def _table(**seconds_by_config) -> dict:
    """A table of diag float64 rows: ``d2k8={"cython": 2.0, "numba": 1.0}`` is D=2, K=8."""
    rows = []
    for name, seconds in seconds_by_config.items():
        d, k = name[1:].split("k")
        rows.append({"covariance_type": "diag", "n_features": int(d), "n_components": int(k), "dtype": "float64",
                     "seconds": seconds})
    return {"measured": {}, "rows": rows}


@pytest.fixture
def use_table(monkeypatch):
    """use_table(table): "auto" reads ``table`` for the rest of the test."""
    def use(table: dict) -> None:
        monkeypatch.setattr(backend_table, "load", lambda: table)
        backend_table.fastest.cache_clear()

    yield use
    monkeypatch.undo()
    backend_table.fastest.cache_clear()


@pytest.mark.parametrize("isa", ["avx2", "avx512"])
def test_table_rows_are_measurements_of_every_bench_config(isa):
    table = backend_table.tables()[isa]
    assert {"date", "cpu", "n_samples", "n_threads"} <= set(table["measured"])
    keys = [(r["covariance_type"], r["n_features"], r["n_components"], r["dtype"]) for r in table["rows"]]
    assert len(keys) == len(set(keys))
    assert set(keys) >= {(ct, d, k, dt) for ct in COVARIANCE_TYPES for d, k in DIMS for dt in DTYPES}
    for row in table["rows"]:
        assert set(row["seconds"]) <= {"cython", "numba", "numpy"} and len(row["seconds"]) >= 2
        assert all(math.isfinite(s) and s > 0 for s in row["seconds"].values())


@pytest.mark.parametrize("isa", ["avx2", "avx512", "baseline", None])
def test_the_table_is_the_one_of_the_build_the_cpu_runs(monkeypatch, isa):
    """None: the Cython kernels do not import; baseline has no table either."""
    monkeypatch.setattr(_isa, "running", lambda: isa)
    expected = backend_table.tables().get(isa, {"rows": []})
    assert backend_table.load()["rows"] == expected["rows"]


def test_fastest_takes_the_nearest_row_and_keeps_the_default_within_the_margin(use_table):
    use_table(_table(d2k8={"cython": 2.0, "numba": 1.0}, d16k8={"cython": 1.0, "numba": 1.0 / backend_table.MARGIN},
                     d16k32={"numba": 1.0, "numpy": 3.0}))

    def fastest(d, k, dtype="float64", covariance_type="diag"):
        return backend_table.fastest(covariance_type, d, k, dtype, "cython")

    assert fastest(2, 8) == fastest(3, 6) == fastest(4, 16) == "numba"  # 2x8 is the nearest, within a factor 2
    assert fastest(16, 8) == fastest(12, 8) == "cython"  # numba exactly MARGIN faster: not enough
    assert fastest(1, 2) == fastest(2, 17) == fastest(5, 8) == "cython"  # no row within a factor 2 of both
    assert fastest(2, 8, "float32") == fastest(2, 8, covariance_type="full") == "cython"  # other dtype / type
    assert fastest(16, 32) == "numba"  # the default not measured there: the row's fastest


def test_auto_takes_the_tables_backend_only_once_it_is_compiled(monkeypatch, use_table):
    _needs("cython", "numba")
    from fastem._kernels import numba_backend

    use_table(_table(d2k8={"cython": 2.0, "numba": 1.0}))
    for compiled, expected in [(False, "cython"), (True, "numba")]:
        monkeypatch.setattr(numba_backend, "is_compiled", lambda: compiled)
        assert kernels.resolve_backend_name("auto", "diag", 10**5, 2, 8) == expected
        assert kernels.resolve_backend_name("auto", "diag", 10**5, 2, 8, np.float32) == "cython"
        assert kernels.resolve_backend_name("auto", "diag", 10**5, 16, 8) == "cython"
        assert kernels.resolve_backend_name("cython", "diag", 10**5, 2, 8) == "cython"  # a named backend stays


def test_numba_is_compiled_after_a_call_that_names_it():
    _needs("numba")
    from fastem._kernels import numba_backend

    X = np.random.default_rng(0).standard_normal((64, 2))
    kernels.em_stats(X, np.ones(2) / 2, X[:2], np.ones((2, 2)), "diag", backend="numba")
    kernels.gaussian_log_prob(X, X[:2], np.ones((2, 2)), "diag", backend="numba")
    assert numba_backend.is_compiled()


def test_a_default_fit_never_imports_numba_for_the_table(tmp_path):
    """A fresh process whose table names Numba fastest everywhere: "auto" fits (and
    em_stats calls) stay on Cython and never import the Numba backend (no JIT compile
    the caller did not ask for)."""
    _needs("cython")
    code = """
import sys
import numpy as np
from fastem import kernels
from fastem._kernels import _isa, backend_table
from fastem.mixture import GaussianMixture

rows = [{"covariance_type": ct, "n_features": 2, "n_components": 4, "dtype": dt, "seconds": {"cython": 9.0, "numba": 1.0}}
        for ct in ("full", "tied", "diag", "spherical") for dt in ("float64", "float32")]
backend_table.load = lambda: {"measured": {}, "rows": rows}
X = np.random.default_rng(0).standard_normal((5000, 2))
for ct in ("full", "tied", "diag", "spherical"):
    fit = GaussianMixture(4, covariance_type=ct, random_state=0).fit(X)
    assert fit.backend_ == "cython", fit.backend_
    kernels.em_stats(X, fit.weights_, fit.means_, fit.precisions_cholesky_, ct)
assert "fastem._kernels.numba_backend" not in sys.modules
print("ok")
"""
    import fastem  # the subprocess imports this same build (a checkout without in-place extensions has no Cython)

    build = str(Path(fastem.__file__).resolve().parent.parent)
    result = run_python("-c", code, cwd=tmp_path, env={"PYTHONPATH": build})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_a_fit_on_the_tables_backend_matches_the_named_backend(use_table):
    """Once Numba is compiled and the table names it, an "auto" fit runs on it (its
    k-means initialisation stays on k-means' own "auto") and equals backend="numba"."""
    _needs("cython", "numba")
    from fastem.mixture import GaussianMixture

    X = np.random.default_rng(1).standard_normal((3000, 2))
    named = GaussianMixture(8, covariance_type="diag", random_state=0, backend="numba").fit(X)
    use_table(_table(d2k8={"cython": 2.0, "numba": 1.0}))
    auto = GaussianMixture(8, covariance_type="diag", random_state=0).fit(X)
    assert auto.backend_ == "numba"
    np.testing.assert_allclose(auto.means_, named.means_, rtol=1e-10)
    assert auto.n_iter_ == named.n_iter_


def _writer():
    """benchmarks/backend_table.py, the script that writes the tables."""
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "backend_table.py"
    spec = importlib.util.spec_from_file_location("backend_table_writer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_writer_keeps_each_backends_best_run_and_one_isa_per_table():
    writer = _writer()

    def run(isa, seconds):
        cells = [{"op": "em_stats", "impl": impl, "n_samples": 10**6, "n_threads": 2, "covariance_type": "diag",
                  "n_features": 2, "n_components": 8, "dtype": "float64", "time": t} for impl, t in seconds.items()]
        cells.append(dict(cells[0], n_samples=10**4, time=1e-9))  # a smaller N: not the table's
        machine = {"cpu": "x", "simd": [], "cores": 2, "versions": {}, "cython_isa": isa}
        return {"machine": machine, "results": cells}

    documents = [run("avx512", {"cython": 2.0, "numba": 1.0}), run("avx512", {"cython": 1.5, "numba": 3.0})]
    assert writer.isa(documents) == "avx512"
    table = writer.table(documents)
    assert table["rows"] == [{"covariance_type": "diag", "n_features": 2, "n_components": 8, "dtype": "float64",
                              "seconds": {"cython": 1.5, "numba": 1.0}}]
    assert json.loads(writer.dumps({"avx512": table, "avx2": table})) == {"avx512": table, "avx2": table}
    with pytest.raises(SystemExit):
        writer.isa([run("avx512", {"cython": 1.0}), run("avx2", {"cython": 1.0})])
