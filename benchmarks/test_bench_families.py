"""The independent-feature mixtures per EM iteration: fastem (``backend="auto"``) against
its numpy reference and stepmix's latent class model (Bernoulli, categorical; stepmix has
no Poisson measurement), same data and initial parameters, float64, complete data and 10%
missing values (stepmix's ``"binary_nan"`` / ``"categorical_nan"`` models).

- ``bernoulli``: D=64 binary features, K=8;
- ``categorical``: 20 features x 5 categories, K=8;
- ``poisson``: D=16 counts, K=8.

One iteration is ``(fit(max_iter=4) - fit(max_iter=1)) / 3`` from the same given start
(tol=0), so the per-fit costs (validation, stepmix's one-hot encoding and final E-step)
cancel. N=1e4 by default (N_SMOKE in a smoke run), 1e6 with ``--large``. The peers run
first in each group, so the ratios are in the fastem cell's ``extra_info``.
"""
from __future__ import annotations

import warnings
from time import perf_counter

import numpy as np
import pytest

from conftest import N_SMOKE, smoke_run
from fastem import BernoulliMixture, CategoricalMixture, PoissonMixture
from fastem.bench import N_DEFAULT, N_LARGE, stepmix_peer

#: (estimator, stepmix measurement or None, n_features, n_categories or None)
WORKLOADS = {
    "bernoulli": (BernoulliMixture, "binary", 64, None),
    "categorical": (CategoricalMixture, "categorical", 20, 5),
    "poisson": (PoissonMixture, None, 16, None),
}
N_COMPONENTS = 8
IMPLEMENTATIONS = ("stepmix", "numpy", "fastem")
_times: dict = {}


def pytest_generate_tests(metafunc):
    if "n_samples" in metafunc.fixturenames:
        sizes = [N_SMOKE] if smoke_run(metafunc.config) else [N_DEFAULT, pytest.param(N_LARGE[0], marks=pytest.mark.large)]
        metafunc.parametrize("n_samples", sizes, ids=lambda n: f"N{n:.0e}")


def workload(name: str, n_samples: int, missing: float = 0.0, seed: int = 0):
    """X drawn from a random mixture (a fraction ``missing`` of its entries NaN, never a
    whole row), and a random start (weights, table) near it."""
    _, _, n_features, n_categories = WORKLOADS[name]
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, N_COMPONENTS, n_samples)
    if name == "bernoulli":
        table = rng.uniform(0.1, 0.9, (N_COMPONENTS, n_features))
        X = (rng.random((n_samples, n_features)) < table[labels]).astype(np.float64)
    elif name == "poisson":
        table = rng.uniform(0.5, 10.0, (N_COMPONENTS, n_features))
        X = rng.poisson(table[labels]).astype(np.float64)
    else:
        table = rng.dirichlet(np.ones(n_categories), (N_COMPONENTS, n_features))
        cumulative = table[labels].cumsum(axis=2)
        X = (rng.random((n_samples, n_features, 1)) > cumulative).sum(axis=2).clip(max=n_categories - 1)
        X = X.astype(np.float64)
    if missing:
        holes = rng.random(X.shape) < missing
        holes[:, 0] = False  # no row entirely missing: stepmix counts those in the weights, fastem does not
        X[holes] = np.nan
    start_rng = np.random.default_rng(seed + 1)
    weights = start_rng.dirichlet(np.full(N_COMPONENTS, 5.0))
    if name == "categorical":
        start = start_rng.dirichlet(np.ones(n_categories), (N_COMPONENTS, n_features))
    else:
        start = table * start_rng.uniform(0.8, 1.2, table.shape)
        start = np.clip(start, 0.02, 0.98) if name == "bernoulli" else start
    return X, weights, start


def fit_time(name: str, implementation: str, X, weights, start, max_iter: int) -> float:
    cls, measurement, _, n_categories = WORKLOADS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: the fits stop at max_iter on purpose
        if implementation == "stepmix":
            measurement += "_nan" if np.isnan(X).any() else ""
            model = stepmix_peer.from_params(measurement, weights, start, max_iter=max_iter)
        else:
            table = "rates_init" if name == "poisson" else "probs_init"
            extra = {"n_categories": n_categories} if n_categories else {}
            model = cls(N_COMPONENTS, weights_init=weights, **{table: start}, max_iter=max_iter, tol=0.0,
                        backend="numpy" if implementation == "numpy" else "auto", **extra)
        began = perf_counter()
        model.fit(X)
        return perf_counter() - began


def iteration_time(name: str, implementation: str, X, weights, start, repeat: int = 3) -> float:
    """``(best fit(max_iter=4) - best fit(max_iter=1)) / 3`` over ``repeat`` runs of each
    (the best of each separately: the best of the differences would pick a slow fit(1))."""
    four = min(fit_time(name, implementation, X, weights, start, 4) for _ in range(repeat))
    one = min(fit_time(name, implementation, X, weights, start, 1) for _ in range(repeat))
    return max((four - one) / 3, 1e-9)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("missing", [0.0, 0.1], ids=["complete", "missing10"])
@pytest.mark.parametrize("name", list(WORKLOADS))
def test_iteration(benchmark, name, missing, implementation, n_samples):
    if implementation == "stepmix" and (WORKLOADS[name][1] is None or not stepmix_peer.available()):
        pytest.skip("stepmix is not installed" if WORKLOADS[name][1] else "stepmix has no Poisson measurement")
    X, weights, start = workload(name, n_samples, missing)
    seconds = benchmark.pedantic(lambda: iteration_time(name, implementation, X, weights, start, repeat=1),
                                 rounds=1, iterations=1)
    seconds = min(seconds, iteration_time(name, implementation, X, weights, start, repeat=2))
    key = (name, missing, n_samples)
    _times[(*key, implementation)] = seconds
    benchmark.extra_info["iteration_s"] = seconds
    for peer in ("stepmix", "numpy"):
        if implementation == "fastem" and (*key, peer) in _times:
            benchmark.extra_info[f"x_{peer}"] = _times[(*key, peer)] / seconds
