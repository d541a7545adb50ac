"""fastem's mixtures as subclasses of scikit-learn's (GaussianMixture, BayesianGaussianMixture):
their private API, hand-set parameters, the fallback to scikit-learn (logged, or raised) and
scikit-learn's exceptions. Every test runs on both estimators."""
import copy
import logging
import warnings
from dataclasses import dataclass, field
from types import ModuleType
from typing import Callable
from unittest.mock import Mock

import numpy as np
import pytest
import scipy.sparse
from sklearn.mixture import _bayesian_mixture as sklearn_bayesian_mixture
from sklearn.mixture import _gaussian_mixture as sklearn_gaussian_mixture

import fastem
from fastem import BayesianGaussianMixture, FallbackError, GaussianMixture
from fastem.suff_stats import COVARIANCE_TYPES

from _subprocess import run_python


@dataclass(frozen=True)
class Twin:
    """A fastem estimator, its scikit-learn twin and what these tests need to know of them."""

    ours: type
    theirs: type
    #: scikit-learn's module whose private functions fastem stands in for
    module: ModuleType
    #: the fitted attributes scikit-learn's predictions and ``sample`` read
    hand_set: tuple[str, ...]
    #: public methods that take X on a fitted model
    predictions: tuple[str, ...]
    #: given initial parameters or priors, from a fitted model
    given: Callable[[object], dict]
    #: bad parameters of this estimator only: case -> (parameters, X as ``_blobs()[rows]``)
    bad_params: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.ours.__name__


GAUSSIAN = Twin(
    GaussianMixture, sklearn_gaussian_mixture.GaussianMixture, sklearn_gaussian_mixture,
    hand_set=("weights_", "means_", "covariances_", "precisions_cholesky_"),
    predictions=("predict", "predict_proba", "score_samples", "score", "bic", "aic"),
    given=lambda fitted: dict(precisions_init=fitted.precisions_, weights_init=fitted.weights_),
    bad_params={
        "weights_init shape": {"n_components": 2, "weights_init": [1.0]},
        "weights_init range": {"n_components": 2, "weights_init": [1.5, -0.5]},
        "weights_init sum": {"n_components": 2, "weights_init": [0.2, 0.2]},
        "means_init shape": {"n_components": 2, "means_init": np.zeros((2, 3))},
        "precisions_init negative": {"n_components": 2, "covariance_type": "diag", "precisions_init": -np.ones((2, 2))},
        "precisions_init not spd": {"n_components": 2, "precisions_init": np.array([[[1, 2], [2, 1]]] * 2)},
    },
)
BAYESIAN = Twin(
    BayesianGaussianMixture, sklearn_bayesian_mixture.BayesianGaussianMixture, sklearn_bayesian_mixture,
    hand_set=("weight_concentration_", "mean_precision_", "means_", "degrees_of_freedom_", "covariances_",
              "precisions_cholesky_", "weights_"),
    predictions=("predict", "predict_proba", "score_samples", "score"),
    given=lambda fitted: dict(mean_prior=fitted.means_.mean(axis=0), degrees_of_freedom_prior=3.0,
                              weight_concentration_prior=0.5),
    bad_params={
        "bad prior type": {"weight_concentration_prior_type": "x"},
        "weight_concentration_prior negative": {"weight_concentration_prior": -1.0},
        "mean_precision_prior zero": {"mean_precision_prior": 0.0},
        "mean_prior shape": {"mean_prior": [0.0, 1.0, 2.0]},
        "degrees_of_freedom_prior small": {"degrees_of_freedom_prior": 1.0},
        "covariance_prior shape": {"covariance_prior": np.eye(3)},
        "covariance_prior not spd": {"covariance_prior": np.array([[1.0, 2.0], [2.0, 1.0]])},
        "diag covariance_prior negative": {"covariance_type": "diag", "covariance_prior": [1.0, -1.0]},
    },
)
TWINS = [pytest.param(twin, id=twin.name) for twin in (GAUSSIAN, BAYESIAN)]


def _blobs(n=300, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(c, 0.5, size=(n // 3, 2)) for c in (-3, 0, 3)])


def _fitted_attributes(estimator) -> dict:
    return {k: v for k, v in vars(estimator).items() if k.endswith("_") and not k.startswith("_")}


def _fitted_pair(twin: Twin, covariance_type: str):
    """A fastem fit and a scikit-learn estimator holding copies of its fitted attributes."""
    X = _blobs()
    ours = twin.ours(n_components=3, covariance_type=covariance_type, random_state=0).fit(X)
    theirs = twin.theirs(n_components=3, covariance_type=covariance_type)
    for name, value in _fitted_attributes(ours).items():
        setattr(theirs, name, copy.deepcopy(value))
    return X, ours, theirs


def assert_same_results(ours, theirs, err_msg=""):
    """Arrays, or tuples of arrays, identical to the bit."""
    for a, b in zip(*((r if isinstance(r, tuple) else (r,)) for r in (ours, theirs)), strict=True):
        np.testing.assert_array_equal(a, b, err_msg=err_msg)


def _fallback_log(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "fastem"]


@pytest.mark.parametrize("twin", TWINS)
def test_is_a_sklearn_estimator(twin):
    assert isinstance(twin.ours(), twin.theirs)
    assert set(twin.theirs().get_params()) < set(twin.ours().get_params())
    assert twin.ours._parameter_constraints.items() > twin.theirs._parameter_constraints.items()
    # every private method of scikit-learn's mixture classes is inherited, not duplicated
    private = {name for cls in twin.theirs.__mro__ if cls.__module__.startswith("sklearn.mixture")
               for name, value in vars(cls).items() if name.startswith("_") and not name.startswith("__")
               and callable(value)}
    assert set(twin.ours._bypassed_methods) <= private
    assert [name for name in sorted(private) if getattr(twin.ours, name) is not getattr(twin.theirs, name)] == []


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("twin", TWINS)
def test_private_api_is_sklearns(twin, covariance_type):
    X, ours, theirs = _fitted_pair(twin, covariance_type)
    for name in ("_estimate_log_prob", "_estimate_weighted_log_prob", "_estimate_log_prob_resp", "_e_step"):
        assert_same_results(getattr(ours, name)(X), getattr(theirs, name)(X), err_msg=name)
    assert_same_results(ours._estimate_log_weights(), theirs._estimate_log_weights())
    log_prob_norm, log_resp = theirs._e_step(X)
    assert ours._compute_lower_bound(log_resp, log_prob_norm) == theirs._compute_lower_bound(log_resp, log_prob_norm)
    ours._m_step(X, log_resp)
    theirs._m_step(X, log_resp)
    assert_same_results(ours._get_parameters(), theirs._get_parameters())
    # and fastem's public methods agree with scikit-learn's on those parameters
    ours._set_parameters(theirs._get_parameters())
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("twin", TWINS)
def test_initialize_and_check_parameters_are_sklearns(twin, covariance_type):
    X, ours, theirs = _fitted_pair(twin, covariance_type)
    resp = ours.predict_proba(X)
    given = twin.given(ours)
    for estimator in (ours, theirs):
        estimator.set_params(**given)
        estimator._check_parameters(X, xp=np)
        estimator._initialize(X, resp)
    theirs_attributes = _fitted_attributes(theirs)
    for name, value in _fitted_attributes(ours).items():
        assert_same_results(value, theirs_attributes[name], err_msg=name)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("twin", TWINS)
def test_hand_set_parameters(twin, covariance_type):
    """astroML-style: parameters assigned without fit."""
    X, fitted, _ = _fitted_pair(twin, covariance_type)
    ours, theirs = (cls(n_components=3, covariance_type=covariance_type, random_state=1)
                    for cls in (twin.ours, twin.theirs))
    for estimator in (ours, theirs):
        for name in twin.hand_set:
            setattr(estimator, name, getattr(fitted, name))
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-12)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    assert_same_results(ours.sample(20), theirs.sample(20))


@pytest.mark.parametrize("twin", TWINS)
def test_fast_path_logs_running_fastem(twin, caplog):
    X = _blobs()
    with caplog.at_level(logging.DEBUG, logger="fastem"):
        twin.ours(n_components=2, random_state=0).fit(X).predict(X)
    assert _fallback_log(caplog) == [f"{twin.name}.fit: running fastem", f"{twin.name}.predict: running fastem"]


@pytest.mark.parametrize("twin", TWINS)
def test_replaced_sklearn_helper_falls_back(twin, monkeypatch, caplog):
    """A Mock in place of a helper fastem stands in for must be called: scikit-learn runs."""
    mock = Mock(side_effect=twin.module._estimate_gaussian_parameters)
    monkeypatch.setattr(twin.module, "_estimate_gaussian_parameters", mock)
    with caplog.at_level(logging.DEBUG, logger="fastem"):
        estimator = twin.ours(n_components=2, random_state=0).fit(_blobs())
    assert mock.call_count == estimator.n_iter_ + 1  # the initialisation and every M-step
    assert _fallback_log(caplog) == [f"{twin.name}.fit: fallback to scikit-learn: "
                                     f"{twin.module.__name__}._estimate_gaussian_parameters is replaced"]


@pytest.mark.parametrize("twin", TWINS)
def test_overridden_sklearn_method_falls_back(twin, caplog):
    class Plain(twin.ours):
        pass

    class Custom(twin.ours):
        def _estimate_log_weights(self, xp=None):
            return np.log(np.full(self.n_components, 1 / self.n_components))

    X = _blobs()
    with caplog.at_level(logging.DEBUG, logger="fastem"):
        Plain(n_components=3, random_state=0).fit(X)  # a subclass as such still runs on fastem
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scikit-learn's ConvergenceWarning, if any
            estimator = Custom(n_components=3, random_state=0).fit(X)
    expected = np.argmax(estimator._estimate_log_prob(X) + estimator._estimate_log_weights(), axis=1)
    np.testing.assert_array_equal(estimator.predict(X), expected)
    assert _fallback_log(caplog) == ["Plain.fit: running fastem",
                                     "Custom.fit: fallback to scikit-learn: _estimate_log_weights is overridden"]


@pytest.mark.parametrize("twin", TWINS)
def test_fallback_raise(twin, monkeypatch):
    monkeypatch.setattr(twin.module, "_estimate_log_gaussian_prob", Mock())
    estimator = twin.ours(n_components=2)
    with fastem.config_context(fallback="raise"):
        assert fastem.get_config() == {"fallback": "raise"}
        with pytest.raises(FallbackError, match="_estimate_log_gaussian_prob is replaced.*fallback='raise'"):
            estimator.fit(_blobs())
    assert fastem.get_config() == {"fallback": "allow"}
    with pytest.raises(ValueError, match="fallback must be one of"):
        fastem.set_config(fallback="warn")


@pytest.mark.parametrize("twin", TWINS)
def test_fallback_cannot_take_sample_weight(twin, monkeypatch):
    monkeypatch.setattr(twin.module, "_estimate_gaussian_parameters", Mock())
    with pytest.raises(FallbackError, match="scikit-learn's fit takes no sample_weight"):
        twin.ours(n_components=2).fit(_blobs(), sample_weight=np.ones(300))


# fastem's class (argv "fastem") or scikit-learn's on array_api_strict input: what happens
ARRAY_API_FIT = """
import logging, sys, numpy as np, array_api_strict as xp, sklearn, sklearn.mixture, fastem
logging.basicConfig(level=logging.DEBUG, format="%(name)s %(message)s")
Estimator = getattr(fastem if sys.argv[1] == "fastem" else sklearn.mixture, sys.argv[2])
X = xp.asarray(np.random.default_rng(0).normal(size=(100, 2)))
with sklearn.config_context(array_api_dispatch=True):
    try:
        estimator = Estimator(n_components=2, init_params="random", random_state=0).fit(X)
        print("predict returns", type(estimator.predict(X)).__name__)
    except Exception as exc:
        print("raises", type(exc).__name__)
"""


@pytest.mark.parametrize("twin", TWINS)
def test_array_api_input_falls_back_to_sklearn(twin):
    """As scikit-learn does: GaussianMixture fits on the library, BayesianGaussianMixture raises."""
    pytest.importorskip("array_api_strict")
    ours, theirs = (run_python("-c", ARRAY_API_FIT, which, twin.name, env={"SCIPY_ARRAY_API": "1"})
                    for which in ("fastem", "sklearn"))
    assert ours.returncode == theirs.returncode == 0, ours.stderr + theirs.stderr
    assert ours.stdout == theirs.stdout
    assert (f"fastem {twin.name}.fit: fallback to scikit-learn: array_api_strict._array_object.Array input "
            "with array_api_dispatch=True") in ours.stderr
    if "predict returns" in ours.stdout:
        assert f"{twin.name}.predict: fallback to scikit-learn" in ours.stderr


# ------------------------------------------------------------ same errors as scikit-learn

def _bad_fits(twin: Twin) -> dict:
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
        "singular covariance": ({"n_components": 1, "reg_covar": 0}, np.ones((10, 2))),
        **{case: (params, X) for case, params in twin.bad_params.items()},
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


@pytest.mark.parametrize("twin, case", [pytest.param(twin, case, id=f"{twin.name}-{case}")
                                        for twin in (GAUSSIAN, BAYESIAN) for case in _bad_fits(twin)])
def test_fit_raises_as_sklearn(twin, case):
    params, X = _bad_fits(twin)[case]
    assert_same_error(_error(lambda: twin.ours(**params).fit(X)), _error(lambda: twin.theirs(**params).fit(X)))


@pytest.mark.parametrize("case", ["unfitted", "nan", "wrong n_features", "1-d", "sparse"])
@pytest.mark.parametrize("twin, method", [pytest.param(twin, method, id=f"{twin.name}-{method}")
                                          for twin in (GAUSSIAN, BAYESIAN) for method in twin.predictions])
def test_prediction_raises_as_sklearn(twin, method, case):
    X = _blobs()
    bad = {"unfitted": X, "nan": np.where(X > 2, np.nan, X), "wrong n_features": X[:, :1], "1-d": X[:, 0],
           "sparse": scipy.sparse.csr_matrix(X)}[case]

    def call(cls):
        estimator = cls(n_components=2, random_state=0)
        if case != "unfitted":
            estimator.fit(X)
        return getattr(estimator, method)(bad)

    assert_same_error(_error(call, twin.ours), _error(call, twin.theirs))


@pytest.mark.parametrize("twin", TWINS)
def test_sample_raises_as_sklearn(twin):
    assert_same_error(_error(lambda: twin.ours().sample()), _error(lambda: twin.theirs().sample()))
    X = _blobs()
    assert_same_error(_error(lambda: twin.ours(random_state=0).fit(X).sample(0)),
                      _error(lambda: twin.theirs(random_state=0).fit(X).sample(0)))


@pytest.mark.parametrize("twin", TWINS)
def test_fast_path_warns_nothing_new(twin):
    X = _blobs()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        estimator = twin.ours(n_components=3, random_state=0).fit(X)
        for method in twin.predictions:
            getattr(estimator, method)(X)
        estimator.sample(5)
