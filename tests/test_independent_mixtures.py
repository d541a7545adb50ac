"""BernoulliMixture, PoissonMixture and CategoricalMixture: the reference against brute
force, the log-likelihood never decreasing, every data source giving the in-memory fit,
missing values, scikit-learn's estimator checks, bad input, and stepmix's latent class
model reached from the same initial parameters."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as scipy_stats
from sklearn.utils.estimator_checks import check_estimator

from _data import DISCRETE_DISTRIBUTIONS, PROPERTY_SETTINGS, assert_discrete_stats_close, make_discrete_problem
from fastem import BernoulliMixture, CategoricalMixture, PoissonMixture
from fastem import reference_discrete as reference
from fastem.bench import stepmix_peer
from fastem.em import MonotonicityWarning

ESTIMATORS = {"bernoulli": BernoulliMixture, "poisson": PoissonMixture, "categorical": CategoricalMixture}


def _pmf(distribution, x, table, k, d):
    """Brute force: the probability of one observed value from scipy's distributions."""
    if distribution == "bernoulli":
        coef, offset = table
        p = 1 - np.exp(offset[k, d])
        return scipy_stats.bernoulli.pmf(x, p)
    if distribution == "poisson":
        return scipy_stats.poisson.pmf(x, -table[1][k, d])
    return np.exp(table[0][k, d, int(x)])


@pytest.mark.parametrize("distribution", DISCRETE_DISTRIBUTIONS)
def test_reference_against_brute_force(distribution):
    """Every row's likelihood as an explicit product over its observed features, the
    responsibilities by Bayes' rule, the statistics by loops over rows."""
    p = make_discrete_problem(distribution, 12, n_features=3, n_components=2, weighted=True, missing="rows", seed=4)
    K, (N, D) = p.weights.shape[0], p.X.shape
    nk, n_obs, total, loglik = np.zeros(K), np.zeros((K, D)), 0.0, 0.0
    sums = np.zeros((K, D, 4)) if distribution == "categorical" else np.zeros((K, D))
    for i in range(N):
        observed = [d for d in range(D) if not np.isnan(p.X[i, d])]
        if not observed:
            continue
        joint = np.array([p.weights[k] * np.prod([_pmf(distribution, p.X[i, d], p.table, k, d) for d in observed])
                          for k in range(K)])
        resp, w = joint / joint.sum(), p.sample_weight[i]
        loglik += w * np.log(joint.sum())
        total += w
        nk += w * resp
        for d in observed:
            n_obs[:, d] += w * resp
            if distribution == "categorical":
                sums[:, d, int(p.X[i, d])] += w * resp
            else:
                sums[:, d] += w * resp * p.X[i, d]
    stats = p.em_stats(backend="numpy")
    np.testing.assert_allclose([stats.loglik, stats.n], [loglik, total], rtol=1e-12)
    np.testing.assert_allclose(stats.nk, nk, rtol=1e-12)
    np.testing.assert_allclose(stats.n_obs, n_obs, rtol=1e-12, atol=1e-14)
    got = stats.counts if distribution == "categorical" else stats.sum_x
    np.testing.assert_allclose(got, sums[..., :got.shape[-1]] if got.ndim == 3 else sums, rtol=1e-12, atol=1e-14)


def _fit_data(distribution, n_samples=300, n_features=6, missing="some", seed=0):
    return make_discrete_problem(distribution, n_samples, n_features=n_features, n_components=3, missing=missing,
                                 seed=seed).X


def _given_start(distribution, X, n_components=3, **kwargs) -> dict:
    """``weights_init`` and the table's ``*_init`` of a random initialisation on X: fits
    that start there run the same iterations whatever else draws random numbers."""
    start = ESTIMATORS[distribution](n_components, max_iter=0, random_state=1, **kwargs).fit(X)
    return {"weights_init": start.weights_, f"{start._table_name}_init": getattr(start, start._table_name + "_")}


@pytest.mark.parametrize("distribution", DISCRETE_DISTRIBUTIONS)
@given(seed=st.integers(0, 2**16), alpha=st.sampled_from([0.0, 0.5]))
@PROPERTY_SETTINGS
def test_log_likelihood_never_decreases(distribution, seed, alpha):
    X = _fit_data(distribution, 120, seed=seed)
    bounds = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", MonotonicityWarning)
        warnings.simplefilter("ignore", UserWarning)  # ConvergenceWarning
        ESTIMATORS[distribution](3, alpha=alpha, max_iter=30, tol=0.0, random_state=seed,
                                 callback=lambda info: bounds.append(info.lower_bound)).fit(X)
    if alpha == 0.0:  # plain EM: the log-likelihood itself never falls
        assert np.all(np.diff(bounds) >= -1e-12 * np.abs(bounds[1:]))


@pytest.mark.parametrize("distribution", DISCRETE_DISTRIBUTIONS)
def test_every_source_gives_the_in_memory_fit(distribution, tmp_path):
    dask_array = pytest.importorskip("dask.array")
    X = _fit_data(distribution, 700)
    kwargs = dict(n_components=3, max_iter=20, tol=0.0, **_given_start(distribution, X))
    expected = ESTIMATORS[distribution](**kwargs).fit(X)
    np.save(tmp_path / "X.npy", X)
    sources = {
        "memmap": np.load(tmp_path / "X.npy", mmap_mode="r"),
        "chunks": lambda: (X[i:i + 128] for i in range(0, len(X), 128)),
        "dask": dask_array.from_array(X, chunks=(150, -1)),
    }
    table = ESTIMATORS[distribution]._table_name + "_"
    for name, data in sources.items():
        fitted = ESTIMATORS[distribution](**kwargs).fit(data)
        np.testing.assert_allclose(fitted.weights_, expected.weights_, rtol=1e-9, err_msg=name)
        np.testing.assert_allclose(getattr(fitted, table), getattr(expected, table), rtol=1e-9, atol=1e-12,
                                   err_msg=name)
        assert fitted.lower_bound_ == pytest.approx(expected.lower_bound_, rel=1e-9)
        np.testing.assert_allclose(fitted.score_samples(X), expected.score_samples(X), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("distribution", DISCRETE_DISTRIBUTIONS)
def test_all_missing_rows_contribute_nothing(distribution):
    X = _fit_data(distribution, 200, missing="some")
    init, table = _given_start(distribution, X), ESTIMATORS[distribution]._table_name
    with_empty = np.vstack([X, np.full((25, X.shape[1]), np.nan)])
    a = ESTIMATORS[distribution](3, max_iter=15, tol=0.0, **init).fit(X)
    b = ESTIMATORS[distribution](3, max_iter=15, tol=0.0, **init).fit(with_empty)
    np.testing.assert_allclose(b.weights_, a.weights_, rtol=1e-12)
    np.testing.assert_allclose(getattr(b, table + "_"), getattr(a, table + "_"), rtol=1e-12)
    assert b.lower_bound_ == pytest.approx(a.lower_bound_, rel=1e-12)
    # predictions for an all-missing row: the mixture weights
    np.testing.assert_allclose(b.predict_proba(with_empty[-1:])[0], b.weights_, rtol=1e-12)


@pytest.mark.parametrize("distribution", DISCRETE_DISTRIBUTIONS)
def test_sample_weight_of_two_is_a_duplicated_row(distribution):
    X = _fit_data(distribution, 80)
    weights = np.ones(len(X))
    weights[:10] = 2.0
    init, table = _given_start(distribution, X, 2), ESTIMATORS[distribution]._table_name
    a = ESTIMATORS[distribution](2, max_iter=10, tol=0.0, **init).fit(X, sample_weight=weights)
    b = ESTIMATORS[distribution](2, max_iter=10, tol=0.0, **init).fit(np.vstack([X, X[:10]]))
    np.testing.assert_allclose(getattr(a, table + "_"), getattr(b, table + "_"), rtol=1e-10)


@pytest.mark.parametrize("distribution", DISCRETE_DISTRIBUTIONS)
def test_estimator_surface(distribution):
    X = _fit_data(distribution, 200, missing="none")
    model = ESTIMATORS[distribution](3, n_init=2, random_state=0).fit(X)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict(X), proba.argmax(axis=1))
    np.testing.assert_array_equal(model.fit_predict(X), model.predict(X))
    assert model.score(X) == pytest.approx(model.score_samples(X).mean())
    assert model.bic(X) > model.aic(X) - 1e-9 or X.shape[0] < 8
    rows, labels = model.sample(50)
    assert rows.shape == (50, X.shape[1]) and labels.shape == (50,)
    refit = ESTIMATORS[distribution](3, random_state=0).fit(rows)  # samples are valid data
    assert np.isfinite(refit.lower_bound_)
    online = ESTIMATORS[distribution](3, random_state=0)
    for batch in np.array_split(X, 5):
        online.partial_fit(batch)
    assert online.n_iter_ == 5 and np.isfinite(online.score(X))  # the first call initialises, then steps
    # warm start continues from the fitted parameters
    warm = ESTIMATORS[distribution](3, random_state=0, warm_start=True, max_iter=2).fit(X)
    before = warm.lower_bound_
    warm.fit(X)
    assert warm.lower_bound_ >= before - 1e-12


def test_bernoulli_recovers_planted_classes():
    rng = np.random.default_rng(0)
    probs = np.array([[0.9] * 8 + [0.1] * 8, [0.1] * 8 + [0.9] * 8])
    labels = rng.integers(0, 2, 5000)
    X = (rng.random((5000, 16)) < probs[labels]).astype(float)
    X[rng.random(X.shape) < 0.2] = np.nan
    model = BernoulliMixture(2, n_init=3, random_state=0, tol=1e-8).fit(X)
    order = np.argsort(model.probs_[:, 0])[::-1]
    np.testing.assert_allclose(model.probs_[order], probs, atol=0.03)
    assert (model.predict(X) == labels).mean() in (pytest.approx(1, abs=0.01), pytest.approx(0, abs=0.01))


BAD = {
    "bernoulli": (2.0, "must be 0 or 1"),
    "poisson": (-1.0, "non-negative integer count"),
    "categorical": (1.5, "integer category code"),
}


@pytest.mark.parametrize("distribution", DISCRETE_DISTRIBUTIONS)
def test_bad_values_name_the_feature(distribution):
    X = _fit_data(distribution, 100, missing="none")
    bad, message = BAD[distribution]
    Y = X.copy()
    Y[37, 4] = bad
    with pytest.raises(ValueError, match=rf"feature 4 has the value .*row 37.*{message}"):
        ESTIMATORS[distribution](2, random_state=0).fit(Y)
    model = ESTIMATORS[distribution](2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="feature 4"):
        model.predict(Y)
    infinite = np.where(np.arange(X.shape[1]) == 2, np.inf, X)
    with pytest.raises(ValueError, match="infinity"):
        model.fit(infinite)
    with pytest.raises(ValueError, match=r"feature 2 has the value inf \(row 0\)"):  # chunks: the kernel's check
        ESTIMATORS[distribution](2, random_state=0, init_params="random_from_data").fit(
            lambda: iter([infinite[:50], infinite[50:]]))


def test_categorical_code_beyond_the_fitted_categories():
    X = _fit_data("categorical", 100, missing="none")
    model = CategoricalMixture(2, random_state=0).fit(X)
    Y = X.copy()
    Y[3, 1] = model.n_categories_[1]
    with pytest.raises(ValueError, match=r"feature 1 has the value .*row 3"):
        model.predict_proba(Y)
    fixed = CategoricalMixture(2, n_categories=7, random_state=0).fit(X)
    assert (fixed.n_categories_ == 7).all() and fixed.probs_.shape[2] == 7
    assert np.all(fixed.predict(Y) >= 0)


@pytest.mark.parametrize("distribution", DISCRETE_DISTRIBUTIONS)
def test_degenerate_inputs(distribution):
    cls = ESTIMATORS[distribution]
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        cls(5).fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="no row has an observed value"):
        cls(2).fit(np.full((10, 3), np.nan))
    model = cls(3, random_state=0).fit(np.zeros((20, 2)))  # identical rows: a fit, no NaN
    assert np.isfinite(model.lower_bound_) and np.all(np.isfinite(model.score_samples(np.zeros((2, 2)))))


#: scikit-learn's checks that draw real-valued X without applying the estimator's input
#: tags (``positive_only``, ``categorical``): counts and category codes must be integers
NON_INTEGER_X = {
    "check_positive_only_tag_during_fit": "draws non-integer X; counts and codes must be integers",
    "check_sample_weight_equivalence_on_dense_data": "draws non-integer X; counts and codes must be integers",
}


@pytest.mark.parametrize("estimator", [BernoulliMixture(2, binarize=0.0, random_state=0),
                                       PoissonMixture(2, random_state=0), CategoricalMixture(2, random_state=0)],
                         ids=lambda e: type(e).__name__)
def test_check_estimator(estimator):
    """BernoulliMixture with ``binarize`` (real-valued X thresholded, as BernoulliNB does):
    the checks draw real-valued X, and there is no input tag for binary data."""
    expected = dict(NON_INTEGER_X)
    if isinstance(estimator, BernoulliMixture):
        expected = {"check_sample_weight_equivalence_on_dense_data":
                    "the random initialisation draws per row, so repeated rows start elsewhere than weighted ones "
                    "(from the same start they agree: test_sample_weight_of_two_is_a_duplicated_row)"}
    check_estimator(estimator, expected_failed_checks=expected)


def test_bernoulli_binarize():
    X = np.array([[0.2, -1.0, np.nan], [3.0, 0.5, 0.0]] * 10)
    model = BernoulliMixture(2, binarize=0.4, random_state=0).fit(X)
    np.testing.assert_allclose(model.score_samples(X), BernoulliMixture(2, random_state=0).fit(
        np.where(np.isnan(X), np.nan, X > 0.4)).score_samples(X > 0.4), rtol=1e-12)
    with pytest.raises(ValueError, match="binarize"):
        model.fit(lambda: iter([X]))


@pytest.mark.skipif(not stepmix_peer.available(), reason="stepmix is not installed")
@pytest.mark.parametrize("measurement", ["binary", "binary_nan", "categorical", "categorical_nan"])
def test_same_fit_as_stepmix(measurement):
    """From the same initial parameters, the same iterates as stepmix's latent class
    model. (stepmix counts a row with nothing observed in the weights, with posterior equal
    to the prior; fastem leaves it out, so the data here have none.)"""
    distribution = "bernoulli" if measurement.startswith("binary") else "categorical"
    p = make_discrete_problem(distribution, 400, n_features=5, n_components=3,
                              missing="some" if measurement.endswith("nan") else "none", seed=7)
    X = p.X[~np.isnan(p.X).all(axis=1)]
    rng = np.random.default_rng(1)
    weights = rng.dirichlet(np.full(3, 5.0))
    if distribution == "bernoulli":
        probs = rng.uniform(0.2, 0.8, (3, X.shape[1]))
        ours = BernoulliMixture(3, weights_init=weights, probs_init=probs, max_iter=25, tol=0.0)
    else:
        n_cells = int(np.nanmax(X)) + 1  # stepmix gives every feature as many categories as the largest
        probs = rng.dirichlet(np.ones(n_cells), (3, X.shape[1]))
        ours = CategoricalMixture(3, n_categories=n_cells, weights_init=weights, probs_init=probs, max_iter=25,
                                  tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.fit(X)
        theirs = stepmix_peer.from_params(measurement, weights, probs, max_iter=25).fit(X)
    np.testing.assert_allclose(ours.weights_, theirs.weights_, rtol=1e-8)
    np.testing.assert_allclose(ours.probs_, stepmix_peer.fitted_probs(theirs, ours.probs_.shape), rtol=1e-8,
                               atol=1e-12)
    assert ours.lower_bound_ == pytest.approx(theirs.lower_bound_, rel=1e-10)


def test_out_of_core_refit_forgets_feature_names():
    pandas = pytest.importorskip("pandas")
    X = _fit_data("bernoulli", 60, missing="none")
    model = BernoulliMixture(2, random_state=0).fit(pandas.DataFrame(X, columns=[f"f{d}" for d in range(6)]))
    assert list(model.feature_names_in_) == [f"f{d}" for d in range(6)]
    model.fit(lambda: iter([X[:30], X[30:]]))
    assert not hasattr(model, "feature_names_in_") and model.n_features_in_ == 6
