"""Smoke tests of fastem.bench and ``fastem bench``: the implementations table is in step
with the registered backends, its rows do identical work, and the CLI produces a
well-formed result."""
import json

import numpy as np
import pytest

from fastem import kernels, reference
from fastem.bench import (ESTIMATOR_OPS, KERNEL_OPS, OPS, Config, Roofline, cost, implementation_table,
                          make_problem, run, time_call)
from fastem.cli import main

SMALL = Config(600, 3, 4, "full", "float64")


def test_table_in_step_with_available_backends():
    available = kernels.available_backends()
    table = implementation_table()
    for op in OPS:
        backends = [row.backend for row in table if row.op == op and row.backend is not None]
        assert sorted(backends) == sorted(available), op
        assert [row.name for row in table if row.op == op and row.backend is None] == ["sklearn"]
    assert {row.op for row in table} == set(OPS)


def test_table_selection_errors():
    with pytest.raises(ValueError, match="nosuch"):
        implementation_table(names=["nosuch"])
    with pytest.raises(ValueError, match="unknown operation"):
        implementation_table(ops=["em_step"])


def _run_row(row, problem):
    return row.prepare(problem, n_threads=1, max_iter=3)()


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_kernel_rows_do_identical_work(covariance_type):
    problem = make_problem(Config(600, 3, 4, covariance_type, "float64"))
    p = problem
    expected_log_prob = reference.gaussian_log_prob(p.X, p.means, p.precisions_cholesky, covariance_type)
    expected_lse = reference.logsumexp(p.weighted_log_prob, axis=1)
    expected_loglik = reference.em_stats(p.X, p.weights, p.means, p.precisions_cholesky, covariance_type).loglik
    for row in implementation_table(KERNEL_OPS):
        out = _run_row(row, problem)
        if row.op == "logsumexp":
            np.testing.assert_allclose(out, expected_lse, rtol=1e-10, err_msg=row.id)
        elif row.op == "gaussian_log_prob":
            np.testing.assert_allclose(out, expected_log_prob, rtol=1e-9, err_msg=row.id)
        else:  # fastem returns SuffStats; the scikit-learn row the mean log-likelihood last
            loglik = out.loglik if row.backend else out[-1] * len(p.X)
            np.testing.assert_allclose(loglik, expected_loglik, rtol=1e-9, err_msg=row.id)


def test_estimator_rows_do_identical_work():
    problem = make_problem(SMALL)
    fitted = {}
    for row in implementation_table(ESTIMATOR_OPS):
        if row.unavailable_reason() is not None:
            pytest.skip(row.unavailable_reason())
        fitted[row.id] = _run_row(row, problem)
    for op in ESTIMATOR_OPS:
        expected = fitted[f"{op}:sklearn"]
        assert expected.n_iter_ == (1 if op == "iteration" else 3)
        for key, estimator in fitted.items():
            if key.startswith(f"{op}:"):
                assert estimator.n_iter_ == expected.n_iter_, key
                np.testing.assert_allclose(estimator.means_, expected.means_, rtol=1e-8, err_msg=key)


def test_problem_is_deterministic_and_dtype_independent():
    a, b = make_problem(SMALL), make_problem(SMALL)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.precisions_cholesky, b.precisions_cholesky)
    single = make_problem(Config(600, 3, 4, "full", "float32"))
    assert single.X.dtype == np.float32 and single.X.flags.c_contiguous
    np.testing.assert_array_equal(single.X, a.X.astype(np.float32))


def test_cost_model_scales():
    config = Config(1000, 16, 8, "diag", "float32")
    em = cost("em_stats", config)
    assert em.bytes == 1000 * 16 * 4  # X read once
    assert cost("fit", config, max_iter=7).flops == 7 * em.flops
    double = cost("em_stats", Config(2000, 16, 8, "diag", "float32"))
    assert (double.bytes, double.flops, double.exps) == (2 * em.bytes, 2 * em.flops, 2 * em.exps)
    with pytest.raises(ValueError, match="unknown benchmark operation"):
        cost("nope", config)


def test_run_fills_ratios_and_roofline():
    results, skipped = run([SMALL], implementation_table(["em_stats"]), [1], roofline=Roofline(probe_time=0.0),
                           min_time=0.0, min_repeats=1)
    assert not skipped
    by_impl = {r.impl: r for r in results}
    assert set(by_impl) == {row.name for row in implementation_table(["em_stats"])}
    assert by_impl["numpy"].x_reference == 1.0 and by_impl["sklearn"].x_sklearn == 1.0
    for r in results:
        assert r.time > 0 and 0 < r.floor and r.roofline_fraction == pytest.approx(r.floor / r.time)
        assert r.x_sklearn == pytest.approx(by_impl["sklearn"].time / r.time)


def test_exp_ceiling_uses_the_kernels_exp():
    """The exp ceiling is the faster of the Cython kernels' exp (whose accuracy
    tests/test_cython_smoke.py checks) and np.exp, and says which measured it."""
    from fastem.bench import roofline as roofline_module
    from fastem.bench.report import format_ceilings

    kernel = roofline_module.kernel_exp_probe()
    if kernel is None:
        pytest.skip("Cython backend unavailable: the exp ceiling is np.exp's")
    name, probe = kernel
    x = np.linspace(-30.0, 0.0, 64)
    out = np.full((2, 64), np.nan)
    probe(x, out, 3, 2)  # rows: threads (one of them when built without OpenMP)
    np.testing.assert_allclose(out[0], np.exp(x), rtol=4e-16)
    for row in out[1:]:
        assert np.isnan(row).all() or np.allclose(row, np.exp(x), rtol=4e-16, atol=0)
    with pytest.raises(ValueError):
        probe(x, out, 3, 3)  # fewer rows than threads
    x32 = x.astype(np.float32)
    out32 = np.full((1, 64), np.nan, dtype=np.float32)
    probe(x32, out32, 3, 1)  # float32 data's responsibilities: the float32 exp
    np.testing.assert_allclose(out32[0], np.exp(x32.astype(np.float64)), rtol=2 * np.finfo(np.float32).eps)
    roofline = Roofline(probe_time=0.0)
    rate = roofline.exp("float64", 1)
    [ceiling] = roofline.ceilings()
    assert ceiling["probe"] == "exp" and set(ceiling["rates"]) == {name, roofline_module.NP_EXP}
    assert all(np.isfinite(r) and r > 0 for r in ceiling["rates"].values())
    assert rate == ceiling["rate"] == max(ceiling["rates"].values())
    assert ceiling["measured_by"] == max(ceiling["rates"], key=ceiling["rates"].get)
    assert "exp rate" in format_ceilings([ceiling]) and name in format_ceilings([ceiling])


def test_exp_ceiling_falls_back_to_np_exp(monkeypatch):
    from fastem.bench import roofline as roofline_module

    monkeypatch.setattr(roofline_module, "kernel_exp_probe", lambda: None)
    roofline = Roofline(probe_time=0.0)
    assert roofline.exp("float32", 1) > 0
    assert [(c["measured_by"], list(c["rates"])) for c in roofline.ceilings()] == [("np.exp", ["np.exp"])]


def test_time_call_validates_and_counts():
    calls = []
    timing = time_call(lambda: calls.append(1), min_time=0.0, min_repeats=4)
    assert timing.repeats == 4 and len(calls) == 5  # one untimed warm-up
    with pytest.raises(ValueError):
        time_call(lambda: None, min_repeats=0)


def test_cli_quick_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    # --quick with its size overridden: the smoke test must stay fast
    assert main(["bench", "--quick", "-q", "--n", "1000", "--dims", "3x4", "--min-time", "0", "--repeats", "1",
                 "--fit-iters", "2", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "x sklearn" in out and "% roofline" in out and "CPU:" in out
    doc = json.loads(path.read_text())
    assert {"machine", "settings", "ceilings", "results", "skipped"} <= set(doc)
    assert doc["settings"]["covariance_types"] == ["full", "diag"] and doc["settings"]["ops"] == ["em_stats", "fit"]
    assert doc["machine"]["backends"] == kernels.available_backends()
    results = doc["results"]
    n_rows = len(implementation_table(["em_stats", "fit"])) - len(doc["skipped"])
    assert len(results) == n_rows * 2 * len(doc["settings"]["threads"])
    for r in results:
        assert r["n_samples"] == 1000 and (r["n_features"], r["n_components"]) == (3, 4)
        assert r["time"] > 0 and r["samples_per_s"] == pytest.approx(1000 / r["time"])
        assert r["roofline_fraction"] > 0 and r["x_reference"] > 0 and r["x_sklearn"] > 0


@pytest.mark.parametrize("argv, message", [
    (["--dims", "16by8"], "DxK"),
    (["--impl", "nosuch"], "nosuch"),
    (["--cov", "round"], "round"),
    (["--n", "1.5"], "positive integers"),
    (["--threads", "0"], "threads"),
    (["--json", "/nonexistent-dir/out.json"], "does not exist"),
])
def test_cli_rejects_bad_options(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_plot(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "bench.png"
    assert main(["bench", "-q", "--n", "500,1000", "--dims", "2x3", "--cov", "diag", "--dtype", "float64",
                 "--threads", "1", "--impl", "numpy,sklearn", "--min-time", "0", "--repeats", "1",
                 "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
