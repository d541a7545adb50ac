"""Gaussian parameter algebra (M-step, precision Cholesky factors) against scikit-learn."""
import numpy as np
import pytest
from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky, _estimate_gaussian_parameters

from _data import make_problem
from fastem import gaussian, reference
from fastem.suff_stats import COVARIANCE_TYPES

REG_COVAR = 1e-6


def _assert_m_step_matches_sklearn(stats, X, resp, covariance_type):
    """fastem's M-step of ``stats`` equals sklearn's parameters for (X, resp)."""
    weights, means, covariances = gaussian.m_step(stats, REG_COVAR)
    nk, sk_means, sk_covariances = _estimate_gaussian_parameters(X, resp, REG_COVAR, covariance_type)
    np.testing.assert_allclose(weights, nk / nk.sum(), rtol=1e-10)
    np.testing.assert_allclose(means, sk_means, rtol=1e-10)
    np.testing.assert_allclose(covariances, sk_covariances, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("shift", ["default", "means", "far"])
def test_m_step_matches_sklearn(covariance_type, shift):
    """Any shift (the default data mean, the component means, a point 10 spreads off)
    gives sklearn's parameters for the same responsibilities."""
    problem = make_problem(covariance_type, n_samples=80, n_features=3, n_components=3)
    shift = {"default": None, "means": reference.default_shift(problem.weights, problem.means, covariance_type),
             "far": np.full((3,) if covariance_type == "tied" else (3, 3), 10.0)}[shift]
    stats = reference.suff_stats(problem.X, problem.resp, covariance_type, shift=shift)
    _assert_m_step_matches_sklearn(stats, problem.X, problem.resp, covariance_type)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_m_step_sample_weight_matches_sklearn_on_repeated_rows(covariance_type):
    """Integer sample weights equal repeating rows, which sklearn (no sample_weight) can fit."""
    problem = make_problem(covariance_type, n_samples=60)
    sample_weight = np.random.default_rng(1).integers(0, 4, len(problem.X)).astype(np.float64)
    stats = reference.suff_stats(problem.X, problem.resp, covariance_type, sample_weight)
    rows = np.repeat(np.arange(len(problem.X)), sample_weight.astype(int))
    _assert_m_step_matches_sklearn(stats, problem.X[rows], problem.resp[rows], covariance_type)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_precisions_cholesky_matches_sklearn(covariance_type):
    problem = make_problem(covariance_type, n_features=4)
    actual = gaussian.precisions_cholesky_from_covariances(problem.covariances, covariance_type)
    np.testing.assert_allclose(actual, _compute_precision_cholesky(problem.covariances, covariance_type),
                               rtol=1e-12, atol=1e-14)


FACTORISATIONS = {
    "compiled": pytest.param(gaussian._factorise, marks=pytest.mark.skipif(
        gaussian._factorise is gaussian._factorise_lapack, reason="the Cython kernels are not built")),
    "lapack loop": gaussian._factorise_lapack,
}


@pytest.mark.parametrize("factorise", FACTORISATIONS.values(), ids=FACTORISATIONS.keys())
@pytest.mark.parametrize("n_features", [1, 3, 17])
def test_factorisations_give_sklearns_numbers_exactly(factorise, n_features):
    """Both implementations make scikit-learn's LAPACK calls, so the bits are its own."""
    A = np.random.default_rng(n_features).normal(size=(4, n_features, n_features))
    covariances = A @ A.transpose(0, 2, 1) + 0.1 * np.eye(n_features)
    covariances[1, 0, -1] += 0.5  # not symmetric: only the lower triangle counts, as for scipy
    out = np.empty_like(covariances)
    assert factorise(covariances, out) == -1
    np.testing.assert_array_equal(out, _compute_precision_cholesky(covariances, "full"))


@pytest.mark.parametrize("factorise", FACTORISATIONS.values(), ids=FACTORISATIONS.keys())
@pytest.mark.parametrize("bad", ["negative", "nan"])
def test_factorisations_report_the_first_bad_component(factorise, bad):
    covariances = np.stack([np.eye(3)] * 5)
    covariances[3] = {"negative": -np.eye(3), "nan": np.full((3, 3), np.nan)}[bad]
    covariances[4] = -np.eye(3)
    assert factorise(covariances, np.empty_like(covariances)) == 3


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_parameter_conversions_round_trip(covariance_type):
    problem = make_problem(covariance_type, n_features=4)
    p = problem.precisions_cholesky
    np.testing.assert_allclose(gaussian.covariances_from_precisions_cholesky(p, covariance_type),
                               problem.covariances, rtol=1e-12)
    precisions = gaussian.precisions_from_precisions_cholesky(p, covariance_type)
    back = gaussian.precisions_cholesky_from_precisions(precisions, covariance_type)
    if covariance_type in ("full", "tied"):
        assert not np.tril(back, -1).any(), "precisions_cholesky_from_precisions must be upper triangular"
    np.testing.assert_allclose(gaussian.precisions_from_precisions_cholesky(back, covariance_type), precisions,
                               rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_not_positive_definite_names_component_and_reg_covar(covariance_type):
    covariances = make_problem(covariance_type).covariances.copy()
    if covariance_type == "full":
        covariances[2] = -np.eye(3)
    elif covariance_type == "tied":
        covariances[:] = -np.eye(3)
    elif covariance_type == "diag":
        covariances[2, 1] = 0.0
    else:
        covariances[2] = -1.0
    what = "tied covariance" if covariance_type == "tied" else "component 2"
    with pytest.raises(ValueError, match=rf"{what}.*reg_covar.*0\.001234"):
        gaussian.precisions_cholesky_from_covariances(covariances, covariance_type, reg_covar=0.001234)
