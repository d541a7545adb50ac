"""The numpy reference (the oracle every backend is compared with) against scipy."""
import numpy as np
import pytest
import scipy.special
from scipy.stats import multivariate_normal

from _data import make_log_probs, make_problem
from fastem import reference
from fastem.suff_stats import COVARIANCE_TYPES


def _covariance(problem, k: int) -> np.ndarray:
    """Component k's (D, D) covariance, rebuilt from the precision Cholesky factor alone."""
    p = problem.precisions_cholesky
    n_features = problem.means.shape[1]
    if problem.covariance_type == "full":
        return np.linalg.inv(p[k] @ p[k].T)
    if problem.covariance_type == "tied":
        return np.linalg.inv(p @ p.T)
    if problem.covariance_type == "diag":
        return np.diag(1.0 / p[k] ** 2)
    return np.eye(n_features) / p[k] ** 2


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_gaussian_log_prob_matches_scipy(covariance_type):
    problem = make_problem(covariance_type, n_samples=40, n_features=4, n_components=3)
    expected = np.column_stack([
        multivariate_normal(problem.means[k], _covariance(problem, k)).logpdf(problem.X)
        for k in range(len(problem.means))
    ])
    actual = reference.gaussian_log_prob(problem.X, problem.means, problem.precisions_cholesky, covariance_type)
    np.testing.assert_allclose(actual, expected, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_em_stats_loglik_matches_scipy(covariance_type):
    problem = make_problem(covariance_type, n_samples=40, weighted=True)
    per_sample = scipy.special.logsumexp(
        [np.log(w) + multivariate_normal(problem.means[k], _covariance(problem, k)).logpdf(problem.X)
         for k, w in enumerate(problem.weights)], axis=0)
    stats = reference.em_stats(problem.X, *problem.params, problem.sample_weight)
    np.testing.assert_allclose(stats.loglik, problem.sample_weight @ per_sample, rtol=1e-10)
    np.testing.assert_allclose(stats.n, problem.sample_weight.sum(), rtol=1e-14)


@pytest.mark.parametrize("shape", [(7, 4), (1, 1), (5, 1), (3, 20)])
def test_logsumexp_matches_scipy(shape):
    a = make_log_probs(*shape)
    expected = scipy.special.logsumexp(a, axis=1)
    actual = reference.logsumexp(a, axis=1)
    assert not np.isnan(actual).any()
    np.testing.assert_allclose(actual, expected, rtol=1e-13)


def test_logsumexp_all_neg_inf_rows_give_neg_inf():
    a = np.full((3, 4), -np.inf)
    a[1, 2] = 0.5
    with np.errstate(all="raise"):
        out = reference.logsumexp(a, axis=1)
    np.testing.assert_array_equal(out, [-np.inf, 0.5, -np.inf])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_logsumexp_axis_matches_scipy(axis):
    a = make_log_probs(6, 5).reshape(3, 2, 5)
    np.testing.assert_allclose(reference.logsumexp(a, axis=axis), scipy.special.logsumexp(a, axis=axis), rtol=1e-13)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_e_step_responsibilities_sum_to_one(covariance_type):
    problem = make_problem(covariance_type, n_samples=60)
    log_resp, log_prob_norm = reference.e_step(problem.X, *problem.params)
    np.testing.assert_allclose(np.exp(log_resp).sum(axis=1), 1.0, rtol=1e-13)
    weighted = reference.gaussian_log_prob(problem.X, problem.means, problem.precisions_cholesky,
                                           covariance_type) + np.log(problem.weights)
    np.testing.assert_allclose(log_prob_norm, scipy.special.logsumexp(weighted, axis=1), rtol=1e-13)
