"""Stepwise (online) EM: exact re-centring of statistics, the update rule against an
independent computation with the reference kernels, and convergence on one pass of a
shuffled minibatch stream to within 1% of batch EM's average log-likelihood."""
from __future__ import annotations

import numpy as np
import pytest

from _data import assert_close, assert_stats_close, make_problem
from fastem import reference
from fastem.families.gaussian import em_stats
from fastem.data import ArraySource
from fastem.gaussian import m_step, precisions_cholesky_from_covariances
from fastem.families.gaussian import StepwiseEM, stats_from_params
from fastem.online import step_size
from fastem.suff_stats import recentre
from fastem.suff_stats import COVARIANCE_TYPES


def _covariances(X, covariance_type, n_components):
    cov = np.cov(X.T)
    return {"full": np.tile(cov, (n_components, 1, 1)), "tied": cov,
            "diag": np.tile(np.diag(cov), (n_components, 1)),
            "spherical": np.full(n_components, np.diag(cov).mean())}[covariance_type]


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_recentre_is_exact(covariance_type):
    p = make_problem(covariance_type, n_samples=200, offset=50.0, seed=1)
    rng = np.random.default_rng(2)
    shape = (3,) if covariance_type == "tied" else (3, 3)
    c1, c2 = 50 + rng.standard_normal(shape), 50 + rng.standard_normal(shape)
    before = reference.suff_stats(p.X, p.resp, covariance_type, p.sample_weight, c1)
    expected = reference.suff_stats(p.X, p.resp, covariance_type, p.sample_weight, c2)
    assert_stats_close(recentre(before, c2), expected, 1e-12)
    with pytest.raises(ValueError, match="shift must have shape"):
        recentre(before, np.zeros(7))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_stats_from_params_round_trip(covariance_type):
    p = make_problem(covariance_type, n_features=4)
    stats = stats_from_params(p.weights, p.means, p.covariances, covariance_type)
    assert stats.n == pytest.approx(1.0)
    weights, means, covariances = m_step(stats, 0.0)
    assert_close(weights, p.weights, 1e-12, "weights")
    assert_close(means, p.means, 1e-12, "means")
    assert_close(covariances, p.covariances, 1e-12, "covariances")


def test_step_size_schedule_and_validation():
    assert step_size(1, 1.0, 0.0) == 1.0
    assert step_size(3, 0.6, 2.0) == pytest.approx(5**-0.6)
    p = make_problem("diag")
    for bad in ({"alpha": 0.5}, {"alpha": 1.1}, {"t0": -1}):
        with pytest.raises(ValueError, match="alpha|t0"):
            StepwiseEM(p.weights, p.means, p.covariances, "diag", **bad)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_update_rule_matches_weighted_statistics(covariance_type):
    """Two steps with t0=0 (gamma_1 = 1): the running statistics are the statistics of batch
    A under theta_0 and batch B under theta_1, weighted (1 - gamma_2) / n_A and gamma_2 / n_B,
    computed here directly with the reference kernels over the concatenated rows."""
    p = make_problem(covariance_type, n_samples=300, weighted=True, seed=3)
    A, B, wA, wB = p.X[:120], p.X[120:], p.sample_weight[:120], p.sample_weight[120:]
    online = StepwiseEM(p.weights, p.means, p.covariances, covariance_type, alpha=0.7, t0=0.0, backend="numpy")
    params0 = (online.weights, online.means, online.precisions_cholesky)
    online.partial_fit(A, wA)
    params1 = (online.weights, online.means, online.precisions_cholesky)
    online.partial_fit(B, wB)
    gamma = step_size(2, 0.7, 0.0)
    (log_resp_a, log_p_a), (log_resp_b, log_p_b) = (reference.e_step(A, *params0, covariance_type),
                                                     reference.e_step(B, *params1, covariance_type))
    w = np.concatenate([wA * (1 - gamma) / wA.sum(), wB * gamma / wB.sum()])
    shift = reference.default_shift(params1[0], params1[1], covariance_type)
    expected = reference.suff_stats(p.X, np.exp(np.vstack([log_resp_a, log_resp_b])), covariance_type, w, shift)
    expected.loglik = float(w @ np.concatenate([log_p_a, log_p_b]))
    assert_stats_close(recentre(online.stats, shift), expected, 1e-10)
    weights, means, covariances = m_step(expected, online.reg_covar)
    assert_close(online.means, means, 1e-10, "means")
    assert_close(online.covariances, covariances, 1e-10, "covariances")
    assert online.n_steps == 2


def test_sample_weight_scale_does_not_matter():
    p = make_problem("full", n_samples=100, weighted=True)
    a = StepwiseEM(p.weights, p.means, p.covariances, "full").partial_fit(p.X, p.sample_weight)
    b = StepwiseEM(p.weights, p.means, p.covariances, "full").partial_fit(p.X, 3 * p.sample_weight)
    assert_close(a.covariances, b.covariances, 1e-12)
    assert a.loglik == pytest.approx(b.loglik, rel=1e-12)
    with pytest.raises(ValueError, match="zero total sample_weight"):
        a.partial_fit(p.X, np.zeros(100))


def _mixture_data(rng, n_samples=6000, n_components=3, n_features=3):
    means = 6.0 * rng.standard_normal((n_components, n_features))
    labels = rng.integers(n_components, size=n_samples)
    scales = rng.uniform(0.3, 1.0, (n_components, n_features, n_features))
    X = means[labels] + np.einsum("nd,nde->ne", rng.standard_normal((n_samples, n_features)), scales[labels])
    return X, labels


def _mean_loglik(X, weights, means, covariances, covariance_type):
    stats = em_stats(ArraySource(X), weights, means, precisions_cholesky_from_covariances(covariances, covariance_type),
                                    covariance_type)
    return stats.loglik / stats.n


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_one_pass_reaches_batch_em(covariance_type):
    rng = np.random.default_rng(0)
    X, labels = _mixture_data(rng)
    K = 3
    start = (np.full(K, 1 / K), X[[np.flatnonzero(labels == k)[0] for k in range(K)]],
             _covariances(X, covariance_type, K))
    source = ArraySource(X)
    weights, means, covariances = start
    previous = -np.inf
    for _ in range(500):  # batch EM to convergence
        stats = em_stats(source, weights, means, precisions_cholesky_from_covariances(covariances, covariance_type),
                                covariance_type)
        weights, means, covariances = m_step(stats, 1e-6)
        if stats.loglik / stats.n - previous < 1e-10:
            break
        previous = stats.loglik / stats.n
    batch = _mean_loglik(X, weights, means, covariances, covariance_type)

    online = StepwiseEM(*start, covariance_type)
    for rows in np.array_split(rng.permutation(len(X)), len(X) // 50):  # each sample seen once
        online.partial_fit(X[rows])
    got = _mean_loglik(X, online.weights, online.means, online.covariances, covariance_type)
    initial = _mean_loglik(X, *start, covariance_type)
    assert abs(got - batch) <= 0.01 * abs(batch), (got, batch, initial)
    assert got - initial > 0.5 * (batch - initial)
