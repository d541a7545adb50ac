"""fastem.GaussianMixture as a subclass of scikit-learn's: its private API, hand-set
parameters, the fallback to scikit-learn (logged, or raised) and scikit-learn's exceptions."""
import logging
import warnings
from unittest.mock import Mock

import numpy as np
import pytest
import scipy.sparse
from sklearn.mixture import _gaussian_mixture as sklearn_gaussian_mixture

import fastem
from fastem import FallbackError, GaussianMixture
from fastem.suff_stats import COVARIANCE_TYPES

from _subprocess import run_python

SklearnGaussianMixture = sklearn_gaussian_mixture.GaussianMixture
PARAMETERS = ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_")


def _blobs(n=300, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(c, 0.5, size=(n // 3, 2)) for c in (-3, 0, 3)])


def _fitted_pair(covariance_type: str):
    """A fastem fit and a scikit-learn estimator holding the same parameters."""
    X = _blobs()
    ours = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    theirs = SklearnGaussianMixture(3, covariance_type=covariance_type)
    theirs._set_parameters(ours._get_parameters())
    return X, ours, theirs


def assert_same_results(ours, theirs, err_msg=""):
    """Arrays, or tuples of arrays, identical to the bit."""
    for a, b in zip(*((r if isinstance(r, tuple) else (r,)) for r in (ours, theirs)), strict=True):
        np.testing.assert_array_equal(a, b, err_msg=err_msg)


def _fallback_log(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "fastem"]


def test_is_a_sklearn_gaussian_mixture():
    assert isinstance(GaussianMixture(), SklearnGaussianMixture)
    assert set(SklearnGaussianMixture().get_params()) < set(GaussianMixture().get_params())
    assert GaussianMixture._parameter_constraints.items() > SklearnGaussianMixture._parameter_constraints.items()
    assert GaussianMixture._n_parameters is SklearnGaussianMixture._n_parameters  # inherited, not duplicated


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_private_api_is_sklearns(covariance_type):
    X, ours, theirs = _fitted_pair(covariance_type)
    for name in ("_estimate_log_prob", "_estimate_weighted_log_prob", "_estimate_log_prob_resp", "_e_step"):
        assert_same_results(getattr(ours, name)(X), getattr(theirs, name)(X), err_msg=name)
    assert_same_results(ours._estimate_log_weights(), theirs._estimate_log_weights())
    assert ours._n_parameters() == theirs._n_parameters()
    _, log_resp = theirs._e_step(X)
    ours._m_step(X, log_resp)
    theirs._m_step(X, log_resp)
    assert_same_results(ours._get_parameters(), theirs._get_parameters())
    # and fastem's public methods agree with scikit-learn's on those parameters
    ours._set_parameters(theirs._get_parameters())
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_initialize_and_check_parameters_are_sklearns(covariance_type):
    X, ours, theirs = _fitted_pair(covariance_type)
    resp = ours.predict_proba(X)
    for estimator in (ours, theirs):
        estimator.set_params(precisions_init=ours.precisions_, weights_init=ours.weights_)
        estimator._check_parameters(X, xp=np)
        estimator._initialize(X, resp)
    for name in ("weights_", "means_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(ours, name), getattr(theirs, name), err_msg=name)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_hand_set_parameters(covariance_type):
    """astroML-style: parameters assigned without fit."""
    X, fitted, _ = _fitted_pair(covariance_type)
    ours, theirs = GaussianMixture(3, covariance_type=covariance_type, random_state=1), \
        SklearnGaussianMixture(3, covariance_type=covariance_type, random_state=1)
    for estimator in (ours, theirs):
        for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
            setattr(estimator, name, getattr(fitted, name))
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-12)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    assert_same_results(ours.sample(20), theirs.sample(20))


def test_fast_path_logs_running_fastem(caplog):
    X = _blobs()
    with caplog.at_level(logging.DEBUG, logger="fastem"):
        GaussianMixture(2, random_state=0).fit(X).predict(X)
    assert _fallback_log(caplog) == ["GaussianMixture.fit: running fastem", "GaussianMixture.predict: running fastem"]


def test_replaced_sklearn_helper_falls_back(monkeypatch, caplog):
    """A Mock in place of a helper fastem stands in for must be called: scikit-learn runs."""
    mock = Mock(side_effect=sklearn_gaussian_mixture._estimate_gaussian_parameters)
    monkeypatch.setattr(sklearn_gaussian_mixture, "_estimate_gaussian_parameters", mock)
    with caplog.at_level(logging.DEBUG, logger="fastem"):
        gm = GaussianMixture(2, random_state=0).fit(_blobs())
    assert mock.call_count == gm.n_iter_ + 1  # the initialisation and every M-step
    assert _fallback_log(caplog) == ["GaussianMixture.fit: fallback to scikit-learn: "
                                     "sklearn.mixture._gaussian_mixture._estimate_gaussian_parameters is replaced"]


def test_overridden_sklearn_method_falls_back():
    class Custom(GaussianMixture):
        def _estimate_log_weights(self, xp=None):
            return np.log(np.full(self.n_components, 1 / self.n_components))

    X = _blobs()
    gm = Custom(3, random_state=0).fit(X)
    expected = np.argmax(gm._estimate_log_prob(X) + gm._estimate_log_weights(), axis=1)
    np.testing.assert_array_equal(gm.predict(X), expected)


def test_fallback_raise(monkeypatch):
    monkeypatch.setattr(sklearn_gaussian_mixture, "_estimate_log_gaussian_prob", Mock())
    gm = GaussianMixture(2)
    with fastem.config_context(fallback="raise"):
        assert fastem.get_config() == {"fallback": "raise"}
        with pytest.raises(FallbackError, match="_estimate_log_gaussian_prob is replaced.*fallback='raise'"):
            gm.fit(_blobs())
    assert fastem.get_config() == {"fallback": "allow"}
    with pytest.raises(ValueError, match="fallback must be one of"):
        fastem.set_config(fallback="warn")


def test_fallback_cannot_take_sample_weight(monkeypatch):
    monkeypatch.setattr(sklearn_gaussian_mixture, "_estimate_gaussian_parameters", Mock())
    with pytest.raises(FallbackError, match="scikit-learn's fit takes no sample_weight"):
        GaussianMixture(2).fit(_blobs(), sample_weight=np.ones(300))


ARRAY_API_FIT = """
import logging, numpy as np, array_api_strict as xp, sklearn
from fastem import GaussianMixture
logging.basicConfig(level=logging.DEBUG, format="%(name)s %(message)s")
X = xp.asarray(np.random.default_rng(0).normal(size=(100, 2)))
with sklearn.config_context(array_api_dispatch=True):
    gm = GaussianMixture(2, init_params="random", random_state=0).fit(X)
    assert isinstance(gm.predict(X), type(X)), type(gm.predict(X))
"""


def test_array_api_input_falls_back_to_sklearn():
    pytest.importorskip("array_api_strict")
    result = run_python("-c", ARRAY_API_FIT, env={"SCIPY_ARRAY_API": "1"})
    assert result.returncode == 0, result.stderr
    assert ("fastem GaussianMixture.fit: fallback to scikit-learn: array_api_strict._array_object.Array input "
            "with array_api_dispatch=True") in result.stderr
    assert "GaussianMixture.predict: fallback to scikit-learn" in result.stderr


# ------------------------------------------------------------ same errors as scikit-learn

def _bad_fits():
    X = _blobs()
    with_nan, with_inf = X.copy(), X.copy()
    with_nan[5, 1], with_inf[7, 0] = np.nan, np.inf
    return {
        "nan": ({}, with_nan), "inf": ({}, with_inf), "1-d": ({}, X[:, 0]), "3-d": ({}, X[None]),
        "complex": ({}, X + 1j), "strings": ({}, np.full((10, 2), "a")), "empty": ({}, X[:0]),
        "one row": ({}, X[:1]), "sparse": ({}, scipy.sparse.csr_matrix(X)),
        "too few samples": ({"n_components": 5}, X[:4]),
        "bad n_components": ({"n_components": 0}, X), "bad covariance_type": ({"covariance_type": "x"}, X),
        "bad tol": ({"tol": -1}, X), "bad init_params": ({"init_params": "x"}, X),
        "weights_init shape": ({"n_components": 2, "weights_init": [1.0]}, X),
        "weights_init range": ({"n_components": 2, "weights_init": [1.5, -0.5]}, X),
        "weights_init sum": ({"n_components": 2, "weights_init": [0.2, 0.2]}, X),
        "means_init shape": ({"n_components": 2, "means_init": np.zeros((2, 3))}, X),
        "precisions_init negative": ({"n_components": 2, "covariance_type": "diag",
                                      "precisions_init": -np.ones((2, 2))}, X),
        "precisions_init not spd": ({"n_components": 2, "precisions_init": np.array([[[1, 2], [2, 1]]] * 2)}, X),
        "singular covariance": ({"n_components": 1, "reg_covar": 0}, np.ones((10, 2))),
    }


def _error(make, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            make(*args)
        except Exception as exc:  # noqa: BLE001 -- the point is to compare any exception
            return exc
    return None


def assert_same_error(ours: Exception | None, theirs: Exception | None):
    assert theirs is not None
    assert type(ours) is type(theirs), (ours, theirs)
    assert str(theirs) in str(ours)


@pytest.mark.parametrize("case", list(_bad_fits()))
def test_fit_raises_as_sklearn(case):
    params, X = _bad_fits()[case]
    assert_same_error(_error(lambda: GaussianMixture(**params).fit(X)),
                      _error(lambda: SklearnGaussianMixture(**params).fit(X)))


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "score", "bic", "aic"])
@pytest.mark.parametrize("case", ["unfitted", "nan", "wrong n_features", "1-d", "sparse"])
def test_prediction_raises_as_sklearn(method, case):
    X = _blobs()
    bad = {"unfitted": X, "nan": np.where(X > 2, np.nan, X), "wrong n_features": X[:, :1], "1-d": X[:, 0],
           "sparse": scipy.sparse.csr_matrix(X)}[case]

    def call(cls):
        estimator = cls(2, random_state=0)
        if case != "unfitted":
            estimator.fit(X)
        return getattr(estimator, method)(bad)

    assert_same_error(_error(call, GaussianMixture), _error(call, SklearnGaussianMixture))


def test_sample_raises_as_sklearn():
    assert_same_error(_error(lambda: GaussianMixture().sample()), _error(lambda: SklearnGaussianMixture().sample()))
    X = _blobs()
    assert_same_error(_error(lambda: GaussianMixture(random_state=0).fit(X).sample(0)),
                      _error(lambda: SklearnGaussianMixture(random_state=0).fit(X).sample(0)))


def test_fast_path_warns_nothing_new():
    X = _blobs()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gm = GaussianMixture(3, random_state=0).fit(X)
        gm.predict(X), gm.predict_proba(X), gm.score(X), gm.bic(X), gm.aic(X), gm.sample(5)
