"""fastem.BayesianGaussianMixture against scikit-learn 1.9's (the oracle), and its own
guarantees: the variational bound never decreases, data sources and sample weights, float32,
no (N, K) array in fit, clear errors. scikit-learn's own Bayesian-mixture tests run on it in
test_sklearn_suite.py, its drop-in behaviour (private API, fallback) is tested in test_dropin.py.

Parity tests run on the numpy reference backend, as in test_gaussian_mixture.py.
"""
from __future__ import annotations

import copy
import re
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn import datasets
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as SklearnBayesianGaussianMixture
from sklearn.utils.estimator_checks import parametrize_with_checks

from _data import PROPERTY_SETTINGS, max_precision_trace
from fastem import BayesianGaussianMixture, kernels
from fastem._sources.chunked import ChunkedSource
from fastem.em import MonotonicityWarning
from fastem.suff_stats import COVARIANCE_TYPES
from test_gaussian_mixture import (DATASETS, INIT_PARAMS, REFERENCE, RTOL, _blobs, _forbid_n_by_k_arrays, _quiet,
                                   _spy_em_stats, assert_close)

PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")
FITTED = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_", "weight_concentration_",
          "mean_precision_", "degrees_of_freedom_", "mean_prior_", "covariance_prior_",
          "weight_concentration_prior_", "mean_precision_prior_", "degrees_of_freedom_prior_")


def _both(**params):
    """(fastem, scikit-learn) estimators with the same parameters."""
    return BayesianGaussianMixture(backend=REFERENCE, **params), SklearnBayesianGaussianMixture(**params)


def assert_same_fit(ours, theirs, rtol=RTOL):
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.converged_ == theirs.converged_
    for name in FITTED:
        assert_close(getattr(ours, name), getattr(theirs, name), rtol, name)
    # scikit-learn's tied bound is a 1-element array
    assert_close(ours.lower_bound_, np.ravel(theirs.lower_bound_)[0], rtol, "lower_bound_")
    assert_close(ours.lower_bounds_, np.ravel(theirs.lower_bounds_), rtol, "lower_bounds_")


# ------------------------------------------------------------------ parity


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("dataset", DATASETS)
def test_matches_sklearn_same_random_state(dataset, prior_type, covariance_type):
    X = DATASETS[dataset]()
    ours, theirs = _both(n_components=4, covariance_type=covariance_type, weight_concentration_prior_type=prior_type,
                         random_state=0)
    assert_same_fit(_quiet(ours, X), _quiet(theirs, X))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("init_params", INIT_PARAMS)
def test_every_init_and_given_priors_match_sklearn(init_params, covariance_type):
    X = _blobs()
    n_features = X.shape[1]
    covariance_prior = {"full": 2 * np.eye(n_features), "tied": np.diag([1.0, 2.0, 3.0]),
                        "diag": np.array([1.0, 2.0, 0.5]), "spherical": 1.5}[covariance_type]
    for priors in ({}, dict(weight_concentration_prior=0.01, mean_precision_prior=0.5, mean_prior=[1.0, 0.0, -1.0],
                            degrees_of_freedom_prior=5.0, covariance_prior=covariance_prior)):
        ours, theirs = _both(n_components=3, covariance_type=covariance_type, init_params=init_params,
                             random_state=0, **priors)
        assert_same_fit(_quiet(ours, X), _quiet(theirs, X), rtol=1e-8)


def test_rdt_column_matches_sklearn():
    """RDT's ClusterBasedNormalizer: one column, 10 components, a Dirichlet process with
    concentration 0.001 (most components end up empty)."""
    rng = np.random.RandomState(0)
    X = np.concatenate([rng.normal(0, 1, 600), rng.normal(8, 0.5, 300), rng.exponential(3, 300)])[:, None]
    params = dict(n_components=10, weight_concentration_prior_type="dirichlet_process",
                  weight_concentration_prior=0.001, random_state=0)
    ours, theirs = _both(**params)
    assert_same_fit(_quiet(ours, X), _quiet(theirs, X))


def test_n_init_warm_start_and_max_iter_zero_match_sklearn():
    X = datasets.load_iris().data
    ours, theirs = _both(n_components=3, covariance_type="diag", init_params="random", n_init=3, random_state=2)
    assert_same_fit(_quiet(ours, X), _quiet(theirs, X))
    ours, theirs = _both(n_components=3, max_iter=2, warm_start=True, random_state=0)
    for _ in range(4):
        assert_same_fit(_quiet(ours, X), _quiet(theirs, X))
    ours, theirs = _both(n_components=3, max_iter=0, random_state=0)
    ours.fit(X), theirs.fit(X)
    assert ours.lower_bound_ == theirs.lower_bound_ == -np.inf
    for name in FITTED:
        assert_close(getattr(ours, name), getattr(theirs, name), RTOL, name)


def test_predictions_match_sklearn():
    X = datasets.load_wine().data
    X_new = X[::3] + 0.1
    for covariance_type in COVARIANCE_TYPES:
        ours, theirs = _both(n_components=3, covariance_type=covariance_type, random_state=0)
        _quiet(ours, X), _quiet(theirs, X)
        assert_close(ours.score_samples(X_new), theirs.score_samples(X_new), what="score_samples")
        assert_close(ours.predict_proba(X_new), theirs.predict_proba(X_new), what="predict_proba")
        np.testing.assert_array_equal(ours.predict(X_new), theirs.predict(X_new))
        assert_close(ours.score(X_new), theirs.score(X_new), what="score")
        (Xo, yo), (Xt, yt) = ours.sample(20), theirs.sample(20)
        assert_close(Xo, Xt, what="sample")
        np.testing.assert_array_equal(yo, yt)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            np.testing.assert_array_equal(ours.fit_predict(X), theirs.fit_predict(X))


@pytest.mark.parametrize("verbose", [1, 2])
def test_verbose_output_matches_sklearn(verbose, capsys):
    X = datasets.load_iris().data
    lines = []
    for estimator in _both(n_components=3, verbose=verbose, verbose_interval=3, n_init=2, random_state=0):
        estimator.fit(X)
        lines.append(re.sub(r"time lapse \d+\.\d+s", "time lapse", capsys.readouterr().out).splitlines())
    assert lines[0] == lines[1] and len(lines[0]) > 4


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("backend", kernels.available_backends())
def test_backends_fit_like_the_reference(backend, covariance_type):
    X = _blobs()
    fits = [_quiet(BayesianGaussianMixture(n_components=3, covariance_type=covariance_type, random_state=0,
                                           backend=name), X) for name in (backend, REFERENCE)]
    assert fits[0].backend_ == backend
    assert_same_fit(*fits, rtol=1e-8)


# --------------------------------------------------------- estimator checks


def _expected_failed_checks(estimator):
    if estimator.n_components == 1:
        return {}
    return {"check_sample_weight_equivalence_on_dense_data":
            "the random initialisation depends on the number of rows (as KMeans's); weighted "
            "variational EM from a given start is tested in test_bayesian_mixture.py"}


@parametrize_with_checks(
    [BayesianGaussianMixture(),
     BayesianGaussianMixture(n_components=2, covariance_type="diag", n_init=2, max_iter=5,
                             weight_concentration_prior_type="dirichlet_distribution")],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# ----------------------------------------------- the bound never decreases


@PROPERTY_SETTINGS
@given(
    X=st.integers(1, 3).flatmap(lambda d: arrays(
        np.float64, st.tuples(st.integers(8, 30), st.just(d)),
        elements=st.floats(-10, 10, allow_nan=False, allow_subnormal=False))),
    n_components=st.integers(1, 4),
    covariance_type=st.sampled_from(COVARIANCE_TYPES),
    prior_type=st.sampled_from(PRIOR_TYPES),
    init_params=st.sampled_from(INIT_PARAMS),
    reg_covar=st.sampled_from([1e-6, 0.05]),
    seed=st.integers(0, 2**16),
)
def test_lower_bound_never_decreases(X, n_components, covariance_type, prior_type, init_params, reg_covar, seed):
    """One variational step at a time (warm start, max_iter=1): the bound never falls by
    more than ``n * reg_covar / 2 * max_k trace(E[precision_k])`` (reg_covar makes the
    update exact only for a penalised bound) and rounding."""
    bgm = BayesianGaussianMixture(n_components=n_components, covariance_type=covariance_type,
                                  weight_concentration_prior_type=prior_type, init_params=init_params,
                                  reg_covar=reg_covar, max_iter=1, warm_start=True, random_state=seed,
                                  backend=REFERENCE)
    bounds, slacks = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("error", MonotonicityWarning)
        for _ in range(8):
            slacks.append(len(X) * 0.5 * reg_covar * max_precision_trace(bgm) if bounds else np.inf)
            bgm.fit(X)
            bounds.append(bgm.lower_bound_)
        copy.deepcopy(bgm).set_params(warm_start=False, max_iter=30).fit(X)  # and no MonotonicityWarning
    for t in range(1, len(bounds)):
        rounding = 1e-10 * max(1.0, abs(bounds[t]), abs(bounds[t - 1]))
        assert bounds[t] >= bounds[t - 1] - slacks[t] - rounding, (t, bounds)


# ------------------------------------------ data sources, weights, float32


def _started(X, sample_weight=None, **params):
    """An estimator initialised on X (max_iter=0) that continues with warm_start."""
    estimator = BayesianGaussianMixture(n_components=3, warm_start=True, max_iter=0, random_state=0,
                                        backend=REFERENCE, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, sample_weight=sample_weight)
    return estimator.set_params(max_iter=200)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_data_sources_fit_like_an_array(tmp_path, covariance_type):
    """From the same start, a memmap, a callable of chunks, an h5py dataset and a dask
    array give the in-memory fit (priors included: they come from the same passes)."""
    X = _blobs()
    start = _started(X, covariance_type=covariance_type)
    expected = _quiet(copy.deepcopy(start), X)
    np.save(tmp_path / "X.npy", X)
    sources = {"memmap": np.load(tmp_path / "X.npy", mmap_mode="r"),
               "chunks": ChunkedSource(lambda: iter(np.array_split(X, 7)))}
    h5py = pytest.importorskip("h5py")
    da = pytest.importorskip("dask.array")
    with h5py.File(tmp_path / "X.h5", "w") as f:
        f.create_dataset("X", data=X, chunks=(64, 3))
    with h5py.File(tmp_path / "X.h5", "r") as f:
        sources.update(h5py=f["X"], dask=da.from_array(X, chunks=(50, 3)))
        for name, source in sources.items():
            got = _quiet(copy.deepcopy(start), source)
            assert got.n_iter_ == expected.n_iter_, name
            for attribute in FITTED:
                assert_close(getattr(got, attribute), getattr(expected, attribute), 1e-10, f"{name}: {attribute}")
            assert_close(got.lower_bound_, expected.lower_bound_, 1e-10, f"{name}: lower_bound_")
        # from scratch too: initialised on the source's sample, close to the in-memory fit
        fresh = _quiet(BayesianGaussianMixture(n_components=3, covariance_type=covariance_type, random_state=0),
                       sources["chunks"])
        assert abs(fresh.score(X) - expected.score(X)) < 0.05 * abs(expected.score(X))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_weight_is_repetition(covariance_type):
    X = _blobs()
    sample_weight = np.random.RandomState(0).randint(0, 4, size=len(X))  # 0 removes a row, 3 triplicates it
    repeated = np.repeat(X, sample_weight, axis=0)
    start = _started(X, sample_weight, covariance_type=covariance_type)
    weighted, duplicated = copy.deepcopy(start), copy.deepcopy(start)
    _quiet(weighted, X, sample_weight=sample_weight), _quiet(duplicated, repeated)
    assert weighted.n_iter_ == duplicated.n_iter_
    for name in FITTED:
        assert_close(getattr(weighted, name), getattr(duplicated, name), 1e-9, name)
    assert_close(weighted.lower_bound_, duplicated.lower_bound_, 1e-9, "lower_bound_")
    # one component: nothing depends on the random initialisation
    one = dict(covariance_type=covariance_type, random_state=0, backend=REFERENCE)
    twice = BayesianGaussianMixture(**one).fit(X, sample_weight=2 * np.ones(len(X)))
    stacked = BayesianGaussianMixture(**one).fit(np.vstack([X, X]))
    for name in FITTED:
        assert_close(getattr(twice, name), getattr(stacked, name), 1e-9, name)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_stays_float32(monkeypatch, covariance_type):
    X = _blobs()
    X32 = X.astype(np.float32)
    calls = _spy_em_stats(monkeypatch)
    params = dict(n_components=3, covariance_type=covariance_type, random_state=0, tol=0, max_iter=5)
    fit32 = _quiet(BayesianGaussianMixture(**params), X32)
    assert calls and all(x.dtype == np.float32 and np.shares_memory(x, X32) for x in calls)
    fit64 = _quiet(BayesianGaussianMixture(**params), X)
    for name in ("weights_", "means_", "covariances_", "mean_prior_"):
        assert getattr(fit32, name).dtype == np.float64
        assert_close(getattr(fit32, name), getattr(fit64, name), 1e-4, name)
    assert fit32.score_samples(X32).dtype == np.float64


@pytest.mark.parametrize("init_params", INIT_PARAMS)
def test_fit_builds_no_n_by_k_array(monkeypatch, init_params):
    _forbid_n_by_k_arrays(monkeypatch)
    X = _blobs()
    ours, theirs = _both(n_components=3, init_params=init_params, random_state=0)
    assert_same_fit(_quiet(ours, X), _quiet(theirs, X), rtol=1e-8)


def test_callback_sees_every_iteration():
    seen = []
    fitted = BayesianGaussianMixture(n_components=3, random_state=0, n_init=2, callback=seen.append).fit(_blobs())
    best = [info.lower_bound for info in seen if info.init == 0]
    assert best == sorted(best) and {info.init for info in seen} == {0, 1}
    assert fitted.n_iter_ in (len(best), len(seen) - len(best))


# ----------------------------------------------------------- bad input


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_degenerate_posterior_names_component_and_reg_covar(covariance_type):
    X = np.tile([[1.0, 2.0]], (10, 1))  # every row the same: the data's covariance, and so the prior's, is 0
    what = "the tied covariance" if covariance_type == "tied" else "component 0"
    with pytest.raises(ValueError, match=f"{what} is not positive definite.*reg_covar.*currently 0"):
        BayesianGaussianMixture(covariance_type=covariance_type, reg_covar=0.0).fit(X)
    fitted = BayesianGaussianMixture(covariance_type=covariance_type).fit(X)  # reg_covar=1e-6 handles it
    assert np.isfinite(fitted.covariances_).all() and np.isfinite(fitted.lower_bound_)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(covariance_type="banana"), "covariance_type"),
        (dict(weight_concentration_prior_type="stick"), "weight_concentration_prior_type"),
        (dict(weight_concentration_prior=-1.0), "weight_concentration_prior"),
        (dict(degrees_of_freedom_prior=1.0), "degrees_of_freedom_prior' should be greater than 2"),
        (dict(mean_prior=[0.0, 1.0]), "shape"),
        (dict(covariance_prior=-np.eye(3)), "positive-definite"),
        (dict(covariance_type="diag", covariance_prior=[1.0, -1.0, 1.0]), "positive"),
        (dict(backend="nope"), "backend"),
        (dict(n_jobs=0), "n_threads"),
    ],
)
def test_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        BayesianGaussianMixture(**{"n_components": 2, **params}).fit(_blobs())


def test_bad_data():
    X = _blobs()
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        BayesianGaussianMixture(n_components=2).fit(X)
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        BayesianGaussianMixture(n_components=5).fit(_blobs()[:4])
    with pytest.raises(ValueError, match="weights sum to"):
        BayesianGaussianMixture().fit(_blobs(), sample_weight=np.full(200, 1e-3))
