"""BayesianGaussianMixture: fastem (``backend="auto"``) against scikit-learn, same data and
parameters, float64; fastem on all threads and on one.

- ``rdt``: the fit RDT's ClusterBasedNormalizer runs on every numeric column, end to end:
  D=1, K=10, ``dirichlet_process`` with ``weight_concentration_prior=0.001``.
- ``iteration``: one variational iteration at (D, K) = (16, 8), diag and full:
  ``(fit(max_iter=6) - fit(max_iter=1)) / 5`` from the same warm start (tol=0), so the
  per-fit costs (validation, the prior's pass, the initialisation) cancel.

N=1e4 by default (N_SMOKE in a smoke run), 1e6 with ``--large``. scikit-learn runs first in
each group, so its time is in the fastem cell's ``extra_info["x_sklearn"]``.
"""
from __future__ import annotations

import copy
import warnings
from time import perf_counter

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as SklearnBayesianGaussianMixture

from conftest import N_SMOKE, smoke_run
from fastem import BayesianGaussianMixture
from fastem.bench import N_DEFAULT, N_LARGE, Config, make_problem

#: fastem on all threads and on one (on a loaded machine OpenMP's team can wait on a busy core)
IMPLEMENTATIONS = ("sklearn", "fastem", "fastem-1thread")
RDT_PARAMS = dict(n_components=10, weight_concentration_prior_type="dirichlet_process",
                  weight_concentration_prior=0.001, random_state=0)
ITERATION_DIMS = ((16, 8, "diag"), (16, 8, "full"))
_times: dict = {}


def _sizes(config) -> list:
    if smoke_run(config):
        return [N_SMOKE]
    return [N_DEFAULT, pytest.param(N_LARGE[0], marks=pytest.mark.large)]


def pytest_generate_tests(metafunc):
    if "n_samples" in metafunc.fixturenames:
        metafunc.parametrize("n_samples", _sizes(metafunc.config), ids=lambda n: f"N{n:.0e}")


def _estimator(name: str, **params):
    if name == "sklearn":
        return SklearnBayesianGaussianMixture(**params)
    return BayesianGaussianMixture(**params, n_jobs=1 if name == "fastem-1thread" else None)


def _quiet_fit(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X)


def _rdt_column(n_samples: int) -> np.ndarray:
    """A skewed, multi-modal numeric column (RDT fits one per column)."""
    rng = np.random.default_rng(0)
    parts = [rng.normal(0.0, 1.0, n_samples // 2), rng.normal(8.0, 0.5, n_samples // 4)]
    parts.append(rng.exponential(3.0, n_samples - sum(map(len, parts))))
    return np.concatenate(parts)[:, None]


def _record(benchmark, group: str, name: str, seconds: float) -> None:
    _times[(group, name)] = seconds
    benchmark.extra_info["time"] = seconds
    if name != "sklearn" and (group, "sklearn") in _times:
        benchmark.extra_info["x_sklearn"] = _times[(group, "sklearn")] / seconds


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_rdt_column_fit(benchmark, n_samples, name):
    X = _rdt_column(n_samples)
    benchmark.group = f"bayesian rdt N={n_samples:.0e} D=1 K=10 dirichlet_process"
    fit = lambda: _quiet_fit(_estimator(name, **RDT_PARAMS), X)  # noqa: E731
    benchmark.pedantic(fit, rounds=1, iterations=1)
    _record(benchmark, benchmark.group, name, benchmark.stats.stats.min if not benchmark.disabled else np.nan)


@pytest.mark.parametrize("n_features, n_components, covariance_type", ITERATION_DIMS)
@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_iteration(benchmark, n_samples, name, n_features, n_components, covariance_type):
    X = make_problem(Config(n_samples, n_features, n_components, covariance_type, "float64")).X
    start = _estimator(name, n_components=n_components, covariance_type=covariance_type, tol=0.0, max_iter=0,
                       warm_start=True, init_params="random_from_data", random_state=0)
    _quiet_fit(start, X)

    def iterations(n: int) -> float:
        estimator = copy.deepcopy(start).set_params(max_iter=n)
        began = perf_counter()
        _quiet_fit(estimator, X)
        return perf_counter() - began

    benchmark.group = f"bayesian iteration N={n_samples:.0e} D={n_features} K={n_components} {covariance_type}"
    per_iteration = []
    benchmark.pedantic(lambda: per_iteration.append((iterations(6) - iterations(1)) / 5), rounds=1, iterations=1)
    _record(benchmark, benchmark.group, name, max(per_iteration[0], 1e-9))
