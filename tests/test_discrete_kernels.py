"""Kernels of the independent-feature families (Bernoulli, Poisson, categorical): every
compiled backend against the numpy reference over distribution x dtype x threads x block
boundaries x sample_weight x missing-value patterns; bit-identical for any thread count;
values outside a distribution's domain raise the reference's error."""
from __future__ import annotations

import importlib
from dataclasses import fields

import numpy as np
import pytest

from _data import (COMPILED, DISCRETE_DISTRIBUTIONS, DTYPES, MISSING_PATTERNS, REQUIRE_COMPILED, RTOL,
                   assert_discrete_stats_close, make_discrete_problem)
from fastem import kernels

BLOCK = 16
SIZES = (1, BLOCK - 1, BLOCK, BLOCK + 1, 5 * BLOCK + 3)


def _compiled_params():
    params = []
    for name in COMPILED:
        try:
            importlib.import_module(kernels._DISCRETE_MODULES[name])
            marks = ()
        except ImportError as exc:
            marks = () if REQUIRE_COMPILED else pytest.mark.skip(reason=f"{name} discrete kernels: {exc}")
        params.append(pytest.param(name, id=name, marks=marks))
    return params


@pytest.fixture(scope="module", params=_compiled_params())
def discrete_backend(request) -> str:
    return request.param


@pytest.mark.parametrize("distribution", DISCRETE_DISTRIBUTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_samples", SIZES)
@pytest.mark.parametrize("missing", MISSING_PATTERNS)
@pytest.mark.parametrize("weighted", [False, True])
def test_em_stats_matches_reference(discrete_backend, distribution, dtype, n_samples, missing, weighted):
    p = make_discrete_problem(distribution, n_samples, dtype=dtype, weighted=weighted, missing=missing)
    expected = p.em_stats(backend="numpy")
    for n_threads in (1, 3):
        actual = p.em_stats(backend=discrete_backend, n_threads=n_threads, block_size=BLOCK)
        assert_discrete_stats_close(actual, expected, RTOL[np.dtype(np.float64)])


@pytest.mark.parametrize("distribution", DISCRETE_DISTRIBUTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_samples", SIZES)
@pytest.mark.parametrize("missing", MISSING_PATTERNS)
def test_log_prob_matches_reference(discrete_backend, distribution, dtype, n_samples, missing):
    p = make_discrete_problem(distribution, n_samples, dtype=dtype, missing=missing)
    expected = p.log_prob(backend="numpy")
    actual = p.log_prob(backend=discrete_backend, n_threads=2, block_size=BLOCK)
    assert actual.shape == expected.shape and actual.dtype == np.float64
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("distribution", DISCRETE_DISTRIBUTIONS)
def test_bit_identical_for_any_thread_count(discrete_backend, distribution):
    p = make_discrete_problem(distribution, 20 * BLOCK + 5, n_features=7, weighted=True, missing="some", seed=3)
    results = [p.em_stats(backend=discrete_backend, n_threads=t, block_size=BLOCK) for t in (1, 2, 4)]
    for other in results[1:]:
        for f in fields(results[0]):
            np.testing.assert_array_equal(getattr(other, f.name), getattr(results[0], f.name))


@pytest.mark.parametrize("distribution", DISCRETE_DISTRIBUTIONS)
def test_wide_and_many_components(discrete_backend, distribution):
    """Sizes past any fixed-width inner loop: D = 67 features, K = 19 components."""
    p = make_discrete_problem(distribution, 3 * BLOCK + 1, n_features=67, n_components=19, missing="some", seed=5)
    assert_discrete_stats_close(p.em_stats(backend=discrete_backend, block_size=BLOCK), p.em_stats(backend="numpy"),
                                RTOL[np.dtype(np.float64)])


@pytest.mark.parametrize("distribution", DISCRETE_DISTRIBUTIONS)
def test_zero_weight_component(discrete_backend, distribution):
    p = make_discrete_problem(distribution, 50, missing="some")
    weights = np.array([0.0, 0.3, 0.7])
    q = type(p)(p.distribution, p.X, weights, p.table, p.sample_weight)
    actual, expected = q.em_stats(backend=discrete_backend), q.em_stats(backend="numpy")
    assert actual.nk[0] == 0.0
    assert_discrete_stats_close(actual, expected, RTOL[np.dtype(np.float64)])


BAD_VALUES = {"bernoulli": [2.0, 0.5, -1.0, np.inf], "poisson": [-1.0, 2.5, np.inf],
              "categorical": [-1.0, 1.5, 99.0, np.inf]}


@pytest.mark.parametrize("distribution", DISCRETE_DISTRIBUTIONS)
@pytest.mark.parametrize("function", ["em_stats", "log_prob"])
def test_invalid_value_names_the_feature(backend_or_reference, distribution, function):
    for bad in BAD_VALUES[distribution]:
        p = make_discrete_problem(distribution, 3 * BLOCK, missing="some")
        X = p.X.copy()
        X[2 * BLOCK + 1, 3] = bad
        X[2 * BLOCK + 2, 1] = bad  # a later row: the first in row-major order is reported
        q = type(p)(p.distribution, X, p.weights, p.table, p.sample_weight)
        match = "infinity" if np.isinf(bad) else rf"feature 3 has the value .* \(row {2 * BLOCK + 1}\)"
        with pytest.raises(ValueError, match=match):
            getattr(q, function)(backend=backend_or_reference, block_size=BLOCK, n_threads=2)


@pytest.fixture(params=[pytest.param("numpy", id="numpy"), *_compiled_params()])
def backend_or_reference(request) -> str:
    return request.param


def test_inputs_not_mutated(discrete_backend):
    for distribution in DISCRETE_DISTRIBUTIONS:
        p = make_discrete_problem(distribution, 2 * BLOCK + 3, missing="some", weighted=True)
        before = [np.array(a, copy=True) for a in (p.X, p.weights, *p.table, p.sample_weight)]
        p.em_stats(backend=discrete_backend, block_size=BLOCK)
        for a, b in zip((p.X, p.weights, *p.table, p.sample_weight), before):
            np.testing.assert_array_equal(a, b)


def test_impossible_rows(backend_or_reference):
    """A category of probability 0 under every component: that row's log-likelihood is
    -inf and its responsibilities 0 (no NaN); with sample weight 0 it adds nothing."""
    p = make_discrete_problem("categorical", 3 * BLOCK, missing="some", weighted=True, seed=2)
    log_probs, n_categories = p.table
    log_probs = log_probs.copy()
    log_probs[:, 0, 1] = -np.inf
    X = p.X.copy()
    X[5, 0], X[6, 0] = 1.0, 1.0
    sample_weight = p.sample_weight.copy()
    sample_weight[5], sample_weight[6] = 0.0, 1.0
    stats = kernels.categorical_em_stats(X, p.weights, log_probs, n_categories, sample_weight,
                                         backend=backend_or_reference, block_size=BLOCK)
    assert stats.loglik == -np.inf and np.isfinite(stats.counts).all() and np.isfinite(stats.nk).all()
    sample_weight[6] = 0.0
    stats = kernels.categorical_em_stats(X, p.weights, log_probs, n_categories, sample_weight,
                                         backend=backend_or_reference, block_size=BLOCK)
    expected = kernels.categorical_em_stats(np.delete(X, [5, 6], axis=0), p.weights, log_probs, n_categories,
                                            np.delete(sample_weight, [5, 6]), backend="numpy")
    assert_discrete_stats_close(stats, expected, 1e-12)


@pytest.mark.parametrize("function", ["em_stats", "log_prob"])
def test_large_counts_and_many_categories(backend_or_reference, function):
    """Counts past any log(x!) table (1024 and beyond: lgamma / Stirling), and 400
    categories (past any small-table fast path)."""
    poisson = make_discrete_problem("poisson", 2 * BLOCK + 3, missing="some", weighted=True, seed=6)
    X = poisson.X.copy()
    X[::3, 1] = np.where(np.isnan(X[::3, 1]), np.nan, 1000 + 37 * np.arange(X[::3].shape[0]))
    big = type(poisson)("poisson", X, poisson.weights, (poisson.table[0] + 5.0, poisson.table[1] * 100),
                        poisson.sample_weight)
    rng = np.random.default_rng(8)
    n_categories = np.array([400, 3, 2])
    log_probs = np.full((4, 3, 400), -np.inf)
    for d, c in enumerate(n_categories):
        log_probs[:, d, :c] = np.log(rng.dirichlet(np.ones(c), 4))
    codes = np.stack([rng.integers(0, c, 2 * BLOCK + 5) for c in n_categories], axis=1).astype(float)
    many = type(poisson)("categorical", codes, np.full(4, 0.25), (log_probs, n_categories), None)
    for p in (big, many):
        actual = getattr(p, function)(backend=backend_or_reference, n_threads=2, block_size=BLOCK)
        expected = getattr(p, function)(backend="numpy")
        if function == "em_stats":
            assert_discrete_stats_close(actual, expected, 1e-12)
        else:
            np.testing.assert_allclose(actual, expected, rtol=1e-12)
