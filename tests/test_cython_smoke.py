"""Cython-specific checks the shared kernel suite does not reach: every ISA build that
runs on this CPU (not only the one imported), the kernels' own exp, and the sparse
(exactly-zero responsibility) path of the full-covariance statistics."""
import importlib

import numpy as np
import pytest

from fastem import reference as ref
from fastem.gaussian import precisions_cholesky_from_covariances

cython_backend = pytest.importorskip("fastem._kernels.cython_backend")

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def _runnable_builds():
    features = cython_backend._cpu_features()
    for isa, needs in cython_backend.ISA_VARIANTS.items():
        if all(features.get(f) for f in needs):
            name = "_gaussian" if isa == "baseline" else f"_gaussian_{isa}"
            try:
                yield isa, importlib.import_module(f"fastem._kernels._cython.{name}")
            except ImportError:  # this variant was not built (compiler without the flags)
                pass


BUILDS = dict(_runnable_builds())


def _problem(covariance_type, n_samples, separation, seed=0):
    rng = np.random.default_rng(seed)
    n_components, n_features = 3, 4
    means = rng.normal(size=(n_components, n_features)) * separation + 100.0
    X = means[rng.integers(n_components, size=n_samples)] + rng.normal(size=(n_samples, n_features))
    cov = {"full": np.tile(np.eye(n_features), (n_components, 1, 1)), "tied": np.eye(n_features),
           "diag": np.ones((n_components, n_features)), "spherical": np.ones(n_components)}[covariance_type]
    weights = np.array([0.5, 0.3, 0.2])
    return X, weights, means, precisions_cholesky_from_covariances(cov, covariance_type), rng.random(n_samples)


@pytest.mark.parametrize("isa", sorted(BUILDS))
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("separation", [1.0, 100.0])  # 100: most responsibilities are exactly 0
def test_every_build_matches_reference_and_is_thread_independent(monkeypatch, isa, covariance_type, separation):
    monkeypatch.setattr(cython_backend, "_gaussian", BUILDS[isa])
    X, weights, means, prec_chol, sample_weight = _problem(covariance_type, 1000, separation)
    shift = ref.default_shift(weights, means, covariance_type)
    expected = ref.em_stats(X, weights, means, prec_chol, covariance_type, sample_weight, shift)
    results = [cython_backend.em_stats(X, weights, means, prec_chol, covariance_type, sample_weight, shift,
                                       n_threads=n_threads, block_size=64) for n_threads in (1, 2, 16)]
    for field in ("nk", "sum_x", "sum_xx"):
        np.testing.assert_allclose(getattr(results[0], field), getattr(expected, field), rtol=1e-11,
                                   atol=1e-11 * np.abs(getattr(expected, field)).max())
        for other in results[1:]:
            np.testing.assert_array_equal(getattr(other, field), getattr(results[0], field))
    assert results[0].loglik == pytest.approx(expected.loglik, rel=1e-12)
    assert results[0].loglik == results[1].loglik == results[2].loglik


@pytest.mark.parametrize("isa", sorted(BUILDS))
def test_kernel_exp_is_accurate(isa):
    x = np.concatenate([-np.logspace(-20, np.log10(750.0), 20001), [0.0, -708.4, -745.13, -745.2, -np.inf]])
    out = np.empty_like(x)
    BUILDS[isa]._exp_nonpos_array(x, out)
    expected = np.exp(x)
    normal = expected >= np.finfo(np.float64).tiny
    np.testing.assert_allclose(out[normal], expected[normal], rtol=4e-16, atol=0)
    np.testing.assert_allclose(out[~normal], expected[~normal], rtol=0, atol=1e-323)  # subnormal: 2 ulp
