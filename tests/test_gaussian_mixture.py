"""fastem.GaussianMixture against scikit-learn 1.9's GaussianMixture (the oracle for the
estimator), and its own guarantees: weighted EM, float32, no (N, K) array in fit, a
lower bound that never decreases, clear errors on degenerate input.

Parity tests run on the numpy reference backend (``REFERENCE``) so that they test the
estimator; ``test_backends_fit_like_the_reference`` compares every backend with it.
"""
from __future__ import annotations

import pickle
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn import datasets
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from _data import max_precision_trace
from fastem import GaussianMixture, kernels
from fastem.data import ArraySource
from fastem.em import MonotonicityWarning
from fastem.suff_stats import COVARIANCE_TYPES

REFERENCE = "numpy"
#: float64 parity with scikit-learn, relative to the largest entry of each attribute
RTOL = 1e-10
INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
PROPERTY_SETTINGS = settings(max_examples=15, deadline=None)


def _blobs():
    X, _ = datasets.make_blobs(200, n_features=3, centers=3, cluster_std=[1.0, 2.0, 0.5], random_state=0)
    return X


DATASETS = {
    "blobs": _blobs,
    "iris": lambda: datasets.load_iris().data,
    "wine": lambda: datasets.load_wine().data,
    "digits": lambda: datasets.load_digits().data[:300],  # 64 features, some constant
}


def _quiet(estimator, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(*args, **kwargs)


def _both(**params):
    """(fastem, scikit-learn) estimators with the same parameters."""
    return GaussianMixture(backend=REFERENCE, **params), SklearnGaussianMixture(**params)


def assert_close(actual, desired, rtol=RTOL, what=""):
    actual, desired = np.asarray(actual, dtype=np.float64), np.asarray(desired, dtype=np.float64)
    assert actual.shape == desired.shape, what
    scale = np.max(np.abs(desired), initial=0.0)
    err = np.max(np.abs(actual - desired), initial=0.0)
    assert err <= rtol * scale, f"{what}: max abs error {err:.3g} > {rtol:g} * {scale:.3g}"


def assert_same_fit(ours, theirs, rtol=RTOL, first_bound_rtol=None):
    """Same fitted model; ``first_bound_rtol`` loosens lower_bounds_[0] only."""
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.converged_ == theirs.converged_
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert_close(getattr(ours, name), getattr(theirs, name), rtol, name)
    assert_close(ours.lower_bound_, theirs.lower_bound_, rtol, "lower_bound_")
    assert len(ours.lower_bounds_) == len(theirs.lower_bounds_)
    if first_bound_rtol is not None:
        assert_close(ours.lower_bounds_[0], theirs.lower_bounds_[0], first_bound_rtol, "lower_bounds_[0]")
        assert_close(ours.lower_bounds_[1:], theirs.lower_bounds_[1:], rtol, "lower_bounds_[1:]")
    else:
        assert_close(ours.lower_bounds_, theirs.lower_bounds_, rtol, "lower_bounds_")


# ------------------------------------------------------------------ parity


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dataset", DATASETS)
def test_matches_sklearn_given_initial_parameters(dataset, covariance_type):
    X = DATASETS[dataset]()
    init = _quiet(SklearnGaussianMixture(3, covariance_type=covariance_type, max_iter=0, random_state=1), X)
    init_kwargs = dict(weights_init=init.weights_, means_init=init.means_, precisions_init=init.precisions_)
    ours, theirs = _both(n_components=3, covariance_type=covariance_type, **init_kwargs)
    assert_same_fit(_quiet(ours, X), _quiet(theirs, X))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dataset", DATASETS)
def test_matches_sklearn_same_random_state(dataset, covariance_type):
    X = DATASETS[dataset]()
    ours, theirs = _both(n_components=3, covariance_type=covariance_type, random_state=0)
    assert_same_fit(_quiet(ours, X), _quiet(theirs, X))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("init_params", INIT_PARAMS)
def test_initialisation_matches_sklearn(init_params, covariance_type):
    X = _blobs()
    ours, theirs = _both(n_components=3, covariance_type=covariance_type, init_params=init_params,
                         random_state=0, max_iter=0)
    ours.fit(X), theirs.fit(X)
    single_points = init_params in ("k-means++", "random_from_data")
    for name in ("weights_", "means_", "precisions_cholesky_"):
        # a component that starts as one point has covariance reg_covar; scikit-learn's
        # diag/spherical formulas add ~eps * x**2 to it (1e-7 relative for x ~ 10)
        loose = single_points and covariance_type in ("diag", "spherical") and name == "precisions_cholesky_"
        assert_close(getattr(ours, name), getattr(theirs, name), 1e-6 if loose else RTOL, name)
    assert ours.lower_bound_ == theirs.lower_bound_ == -np.inf and ours.n_iter_ == theirs.n_iter_ == 0
    # and the fits from there agree (the first bound only as well as the start does)
    ours.set_params(max_iter=100), theirs.set_params(max_iter=100)
    assert_same_fit(_quiet(ours, X), _quiet(theirs, X), first_bound_rtol=1e-6 if single_points else None)


def test_n_init_and_warm_start_match_sklearn():
    X = datasets.load_iris().data
    ours, theirs = _both(n_components=3, covariance_type="diag", init_params="random", n_init=3, random_state=2)
    assert_same_fit(_quiet(ours, X), _quiet(theirs, X))
    ours, theirs = _both(n_components=3, covariance_type="full", max_iter=2, warm_start=True, random_state=0)
    for _ in range(4):
        assert_same_fit(_quiet(ours, X), _quiet(theirs, X))


def test_predictions_match_sklearn():
    X = datasets.load_wine().data
    X_new = X[::3] + 0.1
    ours, theirs = _both(n_components=3, covariance_type="full", random_state=0)
    _quiet(ours, X), _quiet(theirs, X)
    assert_close(ours.score_samples(X_new), theirs.score_samples(X_new), what="score_samples")
    assert_close(ours.predict_proba(X_new), theirs.predict_proba(X_new), what="predict_proba")
    np.testing.assert_array_equal(ours.predict(X_new), theirs.predict(X_new))
    for method in ("score", "bic", "aic"):
        assert_close(getattr(ours, method)(X_new), getattr(theirs, method)(X_new), what=method)
    for ct in COVARIANCE_TYPES:
        ours.set_params(covariance_type=ct), theirs.set_params(covariance_type=ct)
        _quiet(ours, X), _quiet(theirs, X)
        (Xo, yo), (Xt, yt) = ours.sample(50), theirs.sample(50)
        assert_close(Xo, Xt, what="sample")
        np.testing.assert_array_equal(yo, yt)


def test_fit_predict_equals_fit_then_predict():
    X = _blobs()
    labels = GaussianMixture(3, max_iter=2, random_state=0, backend=REFERENCE)
    with pytest.warns(ConvergenceWarning):
        fit_labels = labels.fit_predict(X)
    np.testing.assert_array_equal(fit_labels, labels.predict(X))
    np.testing.assert_array_equal(fit_labels, _quiet(SklearnGaussianMixture(3, max_iter=2, random_state=0), X).predict(X))


@pytest.mark.parametrize("verbose", [1, 2])
def test_verbose_output_matches_sklearn(verbose, capsys):
    X = datasets.load_iris().data
    lines = []
    for estimator in _both(n_components=3, verbose=verbose, verbose_interval=3, n_init=2, random_state=0):
        estimator.fit(X)
        lines.append(re.sub(r"time lapse \d+\.\d+s", "time lapse", capsys.readouterr().out).splitlines())
    assert lines[0] == lines[1]
    assert len(lines[0]) > 4


def test_sklearn_tools_work():
    X = datasets.load_iris().data
    cv = KFold(3, shuffle=True, random_state=0)
    grid = {"n_components": [1, 2, 3], "covariance_type": ["diag"]}
    ours, theirs = (GridSearchCV(estimator(random_state=0), grid, cv=cv).fit(X)
                    for estimator in (GaussianMixture, SklearnGaussianMixture))
    assert ours.best_params_ == theirs.best_params_
    assert_close(ours.cv_results_["mean_test_score"], theirs.cv_results_["mean_test_score"], 1e-8)

    pipe = make_pipeline(StandardScaler(), GaussianMixture(2, random_state=0)).fit(X)
    ref = make_pipeline(StandardScaler(), SklearnGaussianMixture(2, random_state=0)).fit(X)
    assert_close(pipe.score(X), ref.score(X), 1e-8)

    fitted = GaussianMixture(2, covariance_type="tied", random_state=0).fit(X)
    fresh = clone(fitted)
    assert fresh.get_params() == fitted.get_params() and not hasattr(fresh, "means_")
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.score_samples(X), fitted.score_samples(X))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("backend", kernels.available_backends())
def test_backends_fit_like_the_reference(backend, covariance_type):
    X = _blobs()
    fits = [_quiet(GaussianMixture(3, covariance_type=covariance_type, random_state=0, backend=name), X)
            for name in (backend, REFERENCE)]
    assert fits[0].backend_ == backend
    assert_same_fit(*fits, rtol=1e-8)


# --------------------------------------------------------- sample weights


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_weight_is_repetition(covariance_type):
    rng = np.random.RandomState(0)
    X = _blobs()
    sample_weight = rng.randint(0, 4, size=len(X))  # 0 removes a row, 3 triplicates it
    repeated = np.repeat(X, sample_weight, axis=0)
    init = _quiet(SklearnGaussianMixture(3, covariance_type=covariance_type, max_iter=0, random_state=0), X)
    init_kwargs = dict(weights_init=init.weights_, means_init=init.means_, precisions_init=init.precisions_)
    weighted = GaussianMixture(3, covariance_type=covariance_type, backend=REFERENCE, **init_kwargs)
    duplicated = clone(weighted)
    assert_same_fit(_quiet(weighted, X, sample_weight=sample_weight), _quiet(duplicated, repeated))
    assert_close(weighted.score(X, sample_weight=sample_weight), duplicated.score(repeated))
    # with one component nothing depends on the random initialisation
    one = GaussianMixture(covariance_type=covariance_type, random_state=0, backend=REFERENCE)
    assert_same_fit(clone(one).fit(X, sample_weight=2 * np.ones(len(X))), clone(one).fit(np.vstack([X, X])))


@pytest.mark.parametrize(
    "sample_weight, match",
    [(-np.ones(20), "non-negative"), (np.ones(19), "shape"), (np.zeros(20), "weight.*zero"),
     (np.r_[1.0, np.zeros(19)], "fewer than n_components")],
)
def test_bad_sample_weight(sample_weight, match):
    X = _blobs()[:20]
    with pytest.raises(ValueError, match=match):
        GaussianMixture(2).fit(X, sample_weight=sample_weight)


# --------------------------------------------------- dtype and memory use


def _forbid_n_by_k_arrays(monkeypatch) -> None:
    """Make every kernel that returns (n_samples, n_components) log-probabilities fail,
    and the initial statistics come in small blocks."""

    def forbidden(*args, **kwargs):
        raise AssertionError("fit must not compute (n_samples, n_components) log-probabilities")

    monkeypatch.setattr(kernels, "e_step", forbidden)
    monkeypatch.setattr(kernels, "gaussian_log_prob", forbidden)
    monkeypatch.setattr("fastem.families.gaussian._init.INIT_BLOCK_ROWS", 64)


def _spy_em_stats(monkeypatch):
    """The X of every backend em_stats call (a fit's passes call the backend directly)."""
    calls = []

    def spy_of(em_stats):
        def spy(X, *args, **kwargs):
            calls.append(X)
            return em_stats(X, *args, **kwargs)
        return spy

    for name in kernels.available_backends():
        module = kernels.get_backend(name)
        monkeypatch.setattr(module, "em_stats", spy_of(module.em_stats))
    return calls


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_stays_float32(monkeypatch, covariance_type):
    X = _blobs()
    X32 = X.astype(np.float32)
    calls = _spy_em_stats(monkeypatch)
    params = dict(n_components=3, covariance_type=covariance_type, random_state=0, tol=0, max_iter=5)
    fit32 = _quiet(GaussianMixture(**params), X32)
    assert calls and all(x.dtype == np.float32 and np.shares_memory(x, X32) for x in calls)
    fit64 = _quiet(GaussianMixture(**params), X)
    for name in ("weights_", "means_", "covariances_"):  # computed in float64, stored as scikit-learn stores them
        assert getattr(fit32, name).dtype == np.float32
        assert_close(getattr(fit32, name), getattr(fit64, name), 1e-4, name)
    assert fit32.score_samples(X32).dtype == np.float32
    assert fit32.score_samples(X).dtype == np.float64


@pytest.mark.parametrize("init_params", INIT_PARAMS)
def test_fit_builds_no_n_by_k_array(monkeypatch, init_params):
    """fit uses only the fused em_stats pass and blockwise initial statistics."""
    _forbid_n_by_k_arrays(monkeypatch)
    X = _blobs()
    ours = _quiet(GaussianMixture(3, init_params=init_params, random_state=0, backend=REFERENCE), X)
    theirs = _quiet(SklearnGaussianMixture(3, init_params=init_params, random_state=0), X)
    assert_same_fit(ours, theirs, first_bound_rtol=1e-6)


def test_data_source_and_memmap_inputs(tmp_path):
    X = _blobs()
    reference = GaussianMixture(3, random_state=0, backend=REFERENCE).fit(X)
    from_source = GaussianMixture(3, random_state=0, backend=REFERENCE).fit(ArraySource(X))
    mm = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=X.dtype, shape=X.shape)
    mm[:] = X
    from_memmap = GaussianMixture(3, random_state=0, backend=REFERENCE).fit(np.load(tmp_path / "X.npy", mmap_mode="r"))
    for fit in (from_source, from_memmap):
        assert_same_fit(fit, reference, rtol=0)
        assert fit.n_features_in_ == 3
    np.testing.assert_array_equal(GaussianMixture(3, random_state=0).fit_predict(ArraySource(X)),
                                  from_source.predict(X))
    with pytest.raises(ValueError, match="sample_weight"):
        GaussianMixture().fit(ArraySource(X), sample_weight=np.ones(len(X)))


# ------------------------------------------------------------ monotonicity


@PROPERTY_SETTINGS
@given(
    X=st.integers(1, 3).flatmap(lambda d: arrays(
        np.float64, st.tuples(st.integers(8, 30), st.just(d)),
        elements=st.floats(-10, 10, allow_nan=False, allow_subnormal=False))),
    n_components=st.integers(1, 3),
    covariance_type=st.sampled_from(COVARIANCE_TYPES),
    init_params=st.sampled_from(INIT_PARAMS),
    reg_covar=st.sampled_from([1e-6, 0.05]),
    seed=st.integers(0, 2**16),
)
def test_lower_bound_never_decreases(X, n_components, covariance_type, init_params, reg_covar, seed):
    """One EM step at a time (warm start, max_iter=1): the bound of theta_{t+1} is at least
    that of theta_t, less reg_covar / 2 * max_k trace(precision_k) of theta_t (reg_covar
    makes the M-step exact EM for a penalised likelihood) and rounding."""
    gm = GaussianMixture(n_components, covariance_type=covariance_type, init_params=init_params, reg_covar=reg_covar,
                         max_iter=1, warm_start=True, random_state=seed, backend=REFERENCE)
    bounds, slacks = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("error", MonotonicityWarning)
        for _ in range(8):
            slacks.append(0.5 * gm.reg_covar * max_precision_trace(gm) if bounds else np.inf)
            gm.fit(X)
            bounds.append(gm.lower_bound_)
        # and a plain fit raises no MonotonicityWarning
        clone(gm).set_params(warm_start=False, max_iter=30).fit(X)
    for t in range(1, len(bounds)):
        rounding = 1e-10 * max(1.0, abs(bounds[t]), abs(bounds[t - 1]))
        assert bounds[t] >= bounds[t - 1] - slacks[t] - rounding, (t, bounds)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_regularised_em_may_lower_the_likelihood(covariance_type):
    """With a large reg_covar the plain likelihood does fall (in scikit-learn too): within
    the declared slack, so no MonotonicityWarning."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(30, 2)) * rng.uniform(0.01, 1, size=2)
    ours, theirs = _both(n_components=3, covariance_type=covariance_type, reg_covar=0.05, tol=0, max_iter=50,
                         random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MonotonicityWarning)
        _quiet(ours, X)
    assert np.diff(ours.lower_bounds_).min() < -1e-3
    assert_same_fit(ours, _quiet(theirs, X))


# ----------------------------------------------------- degenerate input


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_singular_covariance_names_component_and_reg_covar(covariance_type):
    X = np.tile([[1.0, 2.0]], (10, 1))  # every row the same: covariance 0 without reg_covar
    what = "the tied covariance" if covariance_type == "tied" else "component 0"
    with pytest.raises(ValueError, match=f"{what} is not positive definite.*reg_covar.*currently 0"):
        GaussianMixture(covariance_type=covariance_type, reg_covar=0.0).fit(X)
    fitted = GaussianMixture(covariance_type=covariance_type).fit(X)  # reg_covar=1e-6 handles it
    # scikit-learn's tied formula (X.T @ X - ...) leaves ~eps * x**2 of cancellation noise
    np.testing.assert_allclose(fitted.covariances_,
                               SklearnGaussianMixture(covariance_type=covariance_type).fit(X).covariances_,
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_empty_component_stays_finite(covariance_type):
    X = _blobs()
    means_init = np.array([[0.0, 5.0, 0.0], [2.0, 2.0, 2.0], [1e4, 1e4, 1e4]])  # the last one gets nothing
    fitted = _quiet(GaussianMixture(3, covariance_type=covariance_type, means_init=means_init, max_iter=10,
                                    backend=REFERENCE), X)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert np.isfinite(getattr(fitted, name)).all(), name
    assert fitted.weights_[2] < 1e-12
    assert np.isfinite(fitted.score_samples(X)).all()
    assert (fitted.predict(X) != 2).all()


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_duplicate_points_and_constant_features(covariance_type):
    rng = np.random.RandomState(0)
    points = rng.normal(size=(4, 3))
    points[:, 1] = 7.0  # a constant feature
    X = np.repeat(points, 5, axis=0)  # 4 distinct points, each 5 times: every component collapses
    fitted = GaussianMixture(4, covariance_type=covariance_type, random_state=0, backend=REFERENCE).fit(X)
    order = np.lexsort(fitted.means_.T)
    assert_close(fitted.means_[order], points[np.lexsort(points.T)])
    assert_close(fitted.weights_, np.full(4, 0.25))
    reg = fitted.reg_covar  # a collapsed component's covariance is reg_covar * identity
    expected = {"full": reg * np.tile(np.eye(3), (4, 1, 1)), "tied": reg * np.eye(3),
                "diag": np.full((4, 3), reg), "spherical": np.full(4, reg)}[covariance_type]
    assert_close(fitted.covariances_, expected, rtol=1e-8)  # to eps * spread**2 (tied: around the data mean)
    # a constant feature next to spread-out ones: reg_covar keeps it finite, as in
    # scikit-learn (at 0, where its x**2 - mean**2 leaves no noise on the variance reg_covar)
    X = np.column_stack([_blobs(), np.zeros(200)])
    ours, theirs = _both(n_components=3, covariance_type=covariance_type, random_state=0)
    assert_same_fit(_quiet(ours, X), _quiet(theirs, X))


def test_too_few_samples():
    with pytest.raises(ValueError, match="minimum of 2"):
        GaussianMixture().fit([[1.0, 2.0]])
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GaussianMixture(5).fit(_blobs()[:4])


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(covariance_type="banana"), "covariance_type"),
        (dict(tol=-1.0), "tol"),
        (dict(init_params="kmeans--"), "init_params"),
        (dict(n_components=0), "n_components"),
        (dict(backend="nope"), "backend"),
        (dict(n_jobs=0), "n_threads"),
        (dict(weights_init=[0.5, 0.6]), "normalized"),
        (dict(weights_init=[1.5, -0.5]), r"range \[0, 1\]"),
        (dict(weights_init=[1.0]), "shape"),
        (dict(means_init=np.zeros((2, 2))), "shape"),
        (dict(precisions_init=np.stack([np.eye(3), -np.eye(3)])), "positive-definite"),
        (dict(covariance_type="diag", precisions_init=np.zeros((2, 3))), "positive"),
    ],
)
def test_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(**{"n_components": 2, **params}).fit(_blobs())


@pytest.mark.parametrize("init_params", INIT_PARAMS)
def test_init_size_initialises_on_a_sample(init_params):
    """init_size: the initialisation of a sample of the rows, the sample a chunked source
    of the same data draws; init_size >= n_samples changes nothing."""
    X, weights = _blobs(), np.random.default_rng(0).uniform(0.5, 2.0, 200)
    params = dict(n_components=3, init_params=init_params, random_state=0, max_iter=0)
    whole = _quiet(GaussianMixture(**params), X, sample_weight=weights)
    same = _quiet(GaussianMixture(**params, init_size=200), X, sample_weight=weights)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(same, name), getattr(whole, name))
    sampled = _quiet(GaussianMixture(**params, init_size=60), X)
    chunked = _quiet(GaussianMixture(**params, init_size=60), lambda: iter(np.array_split(X, 7)))
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(sampled, name), getattr(chunked, name), rtol=1e-12)
    assert not np.allclose(sampled.means_, whole.means_)
    fitted = _quiet(GaussianMixture(3, init_params=init_params, random_state=0, init_size=60), X)
    assert fitted.converged_ and np.isfinite(fitted.lower_bound_)


def test_init_size_is_validated():
    with pytest.raises(ValueError, match="init_size"):
        GaussianMixture(2, init_size=0).fit(_blobs())


def test_auto_backend_takes_the_reference_for_tiny_fits_only_instead_of_numba(monkeypatch):
    X = _blobs()
    tiny = _quiet(GaussianMixture(2, covariance_type="diag", random_state=0), X[:100, :1])
    assert tiny.backend_ == kernels.resolve_backend_name("auto", "diag")  # Cython's small passes beat the reference
    larger = _quiet(GaussianMixture(3, covariance_type="full", random_state=0), X)
    assert larger.backend_ == kernels.resolve_backend_name("auto", "full")
    monkeypatch.setitem(kernels.AUTO_ORDER, "diag", ("numba", "numpy"))
    assert kernels.resolve_backend_name("auto", "diag", 100, 1, 2) == "numpy"
    assert kernels.resolve_backend_name("auto", "diag", 10**5, 1, 2) == "numba"
    assert kernels.resolve_backend_name("cython", "full", 10, 1, 1) == "cython"  # only "auto" is sized
