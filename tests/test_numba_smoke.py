"""Smoke test of the Numba backend against the numpy reference (the full parametrised
kernel suite lives elsewhere): every covariance type, both dtypes, block edges, and
bit-identical results for 1 and 2 threads."""
import numpy as np
import pytest

from fastem import reference
from fastem.gaussian import precisions_cholesky_from_covariances

nb = pytest.importorskip("fastem._kernels.numba_backend")

BLOCK = 16


def _params(rng, covariance_type, n_components, n_features):
    means = rng.normal(size=(n_components, n_features))
    if covariance_type == "full":
        a = rng.normal(size=(n_components, n_features, n_features))
        cov = a @ a.transpose(0, 2, 1) / n_features + np.eye(n_features)
    elif covariance_type == "tied":
        a = rng.normal(size=(n_features, n_features))
        cov = a @ a.T / n_features + np.eye(n_features)
    elif covariance_type == "diag":
        cov = rng.uniform(0.5, 2.0, size=(n_components, n_features))
    else:
        cov = rng.uniform(0.5, 2.0, size=n_components)
    weights = np.array([0.5, 0.0, 0.3, 0.2])[:n_components]  # a zero weight on purpose
    return weights / weights.sum(), means, precisions_cholesky_from_covariances(cov, covariance_type)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_samples", [1, BLOCK - 1, BLOCK + 1])
def test_em_stats_matches_reference(covariance_type, dtype, n_samples):
    rng = np.random.default_rng(n_samples)
    n_features = 5
    weights, means, prec = _params(rng, covariance_type, 4, n_features)
    X = (rng.normal(size=(n_samples, n_features)) + 100.0).astype(dtype)  # off-origin data
    means = means + 100.0
    sample_weight = rng.uniform(0.0, 2.0, n_samples)
    shift = reference.default_shift(weights, means, covariance_type)
    expected = reference.em_stats(X, weights, means, prec, covariance_type, sample_weight, shift)
    runs = [nb.em_stats(X, weights, means, prec, covariance_type, sample_weight, shift,
                        n_threads=n_threads, block_size=BLOCK) for n_threads in (1, 2)]
    for name in ("nk", "sum_x", "sum_xx", "shift"):
        np.testing.assert_allclose(getattr(runs[0], name), getattr(expected, name), rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(getattr(runs[0], name), getattr(runs[1], name))
    assert runs[0].loglik == pytest.approx(expected.loglik, rel=1e-10)
    assert runs[0].loglik == runs[1].loglik
    assert runs[0].n == pytest.approx(expected.n, rel=1e-12)

    log_prob = nb.gaussian_log_prob(X, means, prec, covariance_type, n_threads=2, block_size=BLOCK)
    np.testing.assert_allclose(log_prob, reference.gaussian_log_prob(X, means, prec, covariance_type), rtol=1e-10)

    resp = rng.dirichlet(np.ones(4), size=n_samples)
    centre = reference.data_shift(X, None, covariance_type, 4)
    given = nb.suff_stats(X, resp, covariance_type, None, centre, n_threads=2, block_size=BLOCK)
    expected = reference.suff_stats(X, resp, covariance_type, None, centre)
    for name in ("nk", "sum_x", "sum_xx"):
        np.testing.assert_allclose(getattr(given, name), getattr(expected, name), rtol=1e-10, atol=1e-10)


def test_logsumexp_all_minus_inf_row():
    a = np.array([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf], [-1000.0, -1001.0, -np.inf]])
    out = nb.logsumexp(a, -1, n_threads=2, block_size=BLOCK)
    np.testing.assert_allclose(out, reference.logsumexp(a, axis=1), rtol=1e-14)
    assert out[1] == -np.inf


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_single_feature_single_component_huge_block(covariance_type):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 1))
    weights, means, prec = _params(rng, covariance_type, 1, 1)
    shift = reference.default_shift(weights, means, covariance_type)
    got = nb.em_stats(X, weights, means, prec, covariance_type, None, shift, n_threads=2, block_size=10**9)
    expected = reference.em_stats(X, weights, means, prec, covariance_type, None, shift)
    for name in ("nk", "sum_x", "sum_xx"):
        np.testing.assert_allclose(getattr(got, name), getattr(expected, name), rtol=1e-12)
    assert got.loglik == pytest.approx(expected.loglik, rel=1e-12)
