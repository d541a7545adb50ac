"""Cython-specific checks the shared kernel suite does not reach: every ISA build that
runs on this CPU (not only the one imported), the kernels' own exp, the sparse
(exactly-zero responsibility) path of the full-covariance statistics, and both forms
(expanded and direct) of full, diag and spherical covariances with the rule that
chooses between them."""
import importlib

import numpy as np
import pytest

from _data import (RTOL, assert_close, assert_stats_close, assert_stats_equal, call_kernel, centred_parameters,
                   make_problem)
from fastem import gaussian
from fastem import reference as ref
from fastem.gaussian import precisions_cholesky_from_covariances

cython_backend = pytest.importorskip("fastem._kernels.cython_backend")
from fastem._kernels import _isa  # noqa: E402  (after the skip: it is part of the compiled backend)

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def _runnable_builds():
    features = _isa.cpu_features()
    for isa, needs in _isa.ISA_VARIANTS.items():
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
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("covariance_type", ("full", "diag", "spherical"))
def test_every_build_float32_blocks_match_reference_and_are_thread_independent(monkeypatch, isa, covariance_type,
                                                                               weighted):
    """float32 X within EXPANDED_MAX_KAPPA_FLOAT32: the expanded form's float32 blocks (or,
    in a build whose register tiles take this F x K, float64 A with float32 log-probs),
    within float32's tolerance of the reference and bit-identical for any thread count."""
    monkeypatch.setattr(cython_backend, "_gaussian", BUILDS[isa])
    monkeypatch.setattr(cython_backend, "EXPANDED_MIN_SAMPLES", {})
    X, weights, means, prec_chol, sample_weight = _problem(covariance_type, 1000, 1.0)
    X, sample_weight = X.astype(np.float32), sample_weight if weighted else None
    assert cython_backend._log_prob_params(means, prec_chol, covariance_type, len(X), dtype=X.dtype)[2] is not None
    shift = ref.default_shift(weights, means, covariance_type)
    expected = ref.em_stats(X, weights, means, prec_chol, covariance_type, sample_weight, shift)
    results = [cython_backend.em_stats(X, weights, means, prec_chol, covariance_type, sample_weight, shift,
                                       n_threads=n_threads, block_size=64) for n_threads in (1, 2, 16)]
    assert_stats_close(results[0], expected, RTOL[np.dtype(np.float32)])
    for other in results[1:]:
        assert_stats_equal(other, results[0])


@pytest.mark.parametrize("isa", sorted(BUILDS))
def test_kernel_exp_is_accurate(isa):
    x = np.concatenate([-np.logspace(-20, np.log10(750.0), 20001), [0.0, -708.4, -745.13, -745.2, -np.inf]])
    out = np.empty_like(x)
    BUILDS[isa]._exp_nonpos_array(x, out)
    expected = np.exp(x)
    normal = x >= -708.39  # exp(x) >= the smallest normal float64
    assert expected[normal].min() >= np.finfo(np.float64).tiny
    np.testing.assert_allclose(out[normal], expected[normal], rtol=4e-16, atol=0)
    assert not out[~normal].any()  # subnormal results flushed to 0


@pytest.mark.parametrize("isa", sorted(BUILDS))
def test_kernel_float32_exp_is_accurate(isa):
    """float32 X: the responsibilities' exps run in float32 (about 1 ulp, 0 where subnormal)."""
    x = np.concatenate([-np.logspace(-20, np.log10(110.0), 20001), [0.0, -87.3, -87.33, -103.9, -104.5, -np.inf]])
    x = x.astype(np.float32)
    out = np.empty_like(x)
    BUILDS[isa]._exp_nonpos_array(x, out)
    expected = np.exp(x.astype(np.float64))
    normal = x >= np.float32(-87.33)  # exp(x) >= the smallest normal float32
    assert expected[normal].min() >= np.finfo(np.float32).tiny
    np.testing.assert_allclose(out[normal], expected[normal], rtol=2 * np.finfo(np.float32).eps, atol=0)
    assert not out[~normal].any()  # subnormal results flushed to 0


@pytest.mark.parametrize("isa", sorted(BUILDS))
def test_kernel_log_is_accurate(isa):
    """The responsibilities' log of sum_k exp (>= 1, or 0 for a row no component can hold)."""
    x = np.concatenate([np.linspace(1.0, 64.0, 100001), np.logspace(-300, 300, 10001)])
    out = np.empty_like(x)
    BUILDS[isa]._log_pos_array(x, out)
    expected = np.log(x)
    np.testing.assert_array_less(np.abs(out - expected), 2.5 * np.spacing(np.abs(expected)) + 1e-300)
    special = np.array([0.0, np.nan])
    BUILDS[isa]._log_pos_array(special, out[:2])
    assert out[0] == -np.inf and np.isnan(out[1])


EXPANDABLE = ("full", "diag", "spherical")


@pytest.fixture(params=["expanded", "direct"])
def form(request, monkeypatch) -> str:
    """Force one form of the kernels (see cython_backend.EXPANDED_MAX_KAPPA), at any N
    (EXPANDED_MIN_SAMPLES)."""
    monkeypatch.setattr(cython_backend, "EXPANDED_MAX_KAPPA", np.inf if request.param == "expanded" else -1.0)
    monkeypatch.setattr(cython_backend, "EXPANDED_MIN_SAMPLES", {})
    return request.param


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("n_samples", [1, 15, 16, 17])
@pytest.mark.parametrize("n_features", [4, 5])  # around the expanded form's short-row load (D <= 4)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
@pytest.mark.parametrize("covariance_type", EXPANDABLE)
@pytest.mark.parametrize("function, weighted", [("gaussian_log_prob", False), ("e_step", False),
                                                ("em_stats", False), ("em_stats", True)])
def test_both_forms_match_reference(form, function, weighted, covariance_type, dtype, n_features, n_samples,
                                    n_threads):
    problem = make_problem(covariance_type, n_samples, n_features=n_features, n_components=3, dtype=dtype,
                           weighted=weighted)
    actual = call_kernel(function, problem, backend="cython", n_threads=n_threads, block_size=16)
    expected = call_kernel(function, problem, backend="numpy")
    if function == "em_stats":
        assert_stats_close(actual, expected, RTOL[np.dtype(dtype)])
    else:
        actual, expected = (actual[0], expected[0]) if function == "e_step" else (actual, expected)
        assert_close(actual, expected, RTOL[np.dtype(dtype)])


@pytest.mark.parametrize("covariance_type", EXPANDABLE)
def test_form_follows_the_rounding_bound(covariance_type):
    """Expanded for a compact model; direct once a component sits sqrt(EXPANDED_MAX_KAPPA)
    of its own standard deviations from the mean of the means, or (full) for too many
    features; tied is always direct. float32 X gets float32 blocks up to
    EXPANDED_MAX_KAPPA_FLOAT32, float64 ones beyond."""
    problem = make_problem(covariance_type, n_features=4)
    center = problem.means.mean(axis=0)
    args = (problem.precisions_cholesky, )

    def expanded(means, precisions_cholesky, center, shift=None):
        kappa = cython_backend._expansion_kappa(covariance_type, means, precisions_cholesky, center, shift)
        return kappa <= cython_backend.EXPANDED_MAX_KAPPA

    assert expanded(problem.means, *args, center)
    sigma = np.sqrt(np.max(np.linalg.eigvalsh(problem.covariances[0]) if covariance_type == "full"
                           else problem.covariances[0]))
    far = problem.means.copy()
    far[0] += 2 * np.sqrt(cython_backend.EXPANDED_MAX_KAPPA) * sigma
    assert not expanded(far, *args, far.mean(axis=0))
    # the shift the moments are taken around counts too
    assert not expanded(problem.means, *args, center, far)
    tied = make_problem("tied", n_features=4)
    assert cython_backend._expansion_kappa("tied", tied.means, tied.precisions_cholesky, tied.means[0]) == np.inf
    wide = make_problem("full", n_features=cython_backend.EXPANDED_MAX_FEATURES + 1, n_components=1)
    assert cython_backend._expansion_kappa("full", wide.means, wide.precisions_cholesky, wide.means[0]) == np.inf
    # and a small pass is direct, whatever the bound says
    n_min = cython_backend.EXPANDED_MIN_SAMPLES[covariance_type]
    for n_samples, form in [(n_min - 1, False), (n_min, True)]:
        assert cython_backend._log_prob_params(problem.means, *args, covariance_type, n_samples)[1] == form
    # float32 blocks: only for float32 X, and only within their own bound
    single = [cython_backend._log_prob_params(means, *args, covariance_type, n_min, dtype=dtype)[2] is not None
              for means, dtype in [(problem.means, np.float32), (problem.means, np.float64)]]
    assert single == [True, False]
    far32 = problem.means.copy()
    far32[0] += 2 * np.sqrt(cython_backend.EXPANDED_MAX_KAPPA_FLOAT32) * sigma
    _, form, prec_single = cython_backend._log_prob_params(far32, *args, covariance_type, n_min, dtype=np.float32)
    assert form and prec_single is None


@pytest.mark.parametrize("covariance_type", EXPANDABLE)
@pytest.mark.parametrize("forced", [False, True])
def test_covariances_accurate_at_the_rounding_bound(monkeypatch, covariance_type, forced):
    """Two tight components just beyond sqrt(EXPANDED_MAX_KAPPA) standard deviations from
    their common centre: the chosen form (direct there) is exact to 1e-13; the expanded
    form, forced there, keeps the covariances to about eps * kappa (asserted: 1e-11)."""
    rng = np.random.default_rng(1)
    spread = 1e-3
    distance = 1.01 * np.sqrt(cython_backend.EXPANDED_MAX_KAPPA) * spread
    if forced:
        monkeypatch.setattr(cython_backend, "EXPANDED_MAX_KAPPA", np.inf)
    means = np.array([[distance, 0.0, 0.0], [-distance, 0.0, 0.0]]) + 1e3
    labels = rng.integers(2, size=2000)
    X = means[labels] + spread * rng.standard_normal((2000, 3))
    covariances = {"full": np.stack([np.eye(3) * spread**2] * 2), "diag": np.full((2, 3), spread**2),
                   "spherical": np.full(2, spread**2)}[covariance_type]
    precisions_cholesky = precisions_cholesky_from_covariances(covariances, covariance_type)
    weights = np.array([0.5, 0.5])
    stats = cython_backend.em_stats(X, weights, means, precisions_cholesky, covariance_type, None, means,
                                    n_threads=2, block_size=256)
    _, _, got = gaussian.m_step(stats, reg_covar=0.0)
    resp = np.exp(ref.e_step(X, weights, means, precisions_cholesky, covariance_type)[0])
    _, expected = centred_parameters(X, resp, None, covariance_type)
    assert_close(got, expected, 1e-11 if forced else 1e-13, "covariances")


@pytest.mark.parametrize("blocks", ["fewest", "many"])
@pytest.mark.parametrize("covariance_type", EXPANDABLE)
@pytest.mark.parametrize("inside", [True, False])
def test_float32_covariances_accurate_at_the_float32_bound(covariance_type, inside, blocks):
    """float32 X, two components sqrt(EXPANDED_MAX_KAPPA_FLOAT32) of their standard
    deviations from their common centre, over the fewest rows the expanded form takes
    (the blocks' roundings average out over many): just inside, the float32 blocks keep
    the covariances to float32's tolerance of the float64 computation on the same data
    (their error grows like eps32 * kappa); just beyond, float64 blocks keep them to 1e-9."""
    n_samples = cython_backend.EXPANDED_MIN_SAMPLES[covariance_type] if blocks == "fewest" else 20000
    rng = np.random.default_rng(1)
    distance = (0.99 if inside else 1.01) * np.sqrt(cython_backend.EXPANDED_MAX_KAPPA_FLOAT32)
    means = np.array([[distance, 0.0, 0.0], [-distance, 0.0, 0.0]]) + 10.0
    labels = rng.integers(2, size=n_samples)
    X = (means[labels] + rng.standard_normal((n_samples, 3))).astype(np.float32)
    covariances = {"full": np.stack([np.eye(3)] * 2), "diag": np.ones((2, 3)), "spherical": np.ones(2)}[
        covariance_type]
    precisions_cholesky = precisions_cholesky_from_covariances(covariances, covariance_type)
    weights = np.array([0.5, 0.5])
    params = cython_backend._log_prob_params(means, precisions_cholesky, covariance_type, n_samples, shift=means,
                                             dtype=X.dtype)
    assert params[1] and (params[2] is not None) == inside, "the bound chose another form"
    stats = cython_backend.em_stats(X, weights, means, precisions_cholesky, covariance_type, None, means,
                                    n_threads=2, block_size=256)
    _, _, got = gaussian.m_step(stats, reg_covar=0.0)
    resp = np.exp(ref.e_step(X, weights, means, precisions_cholesky, covariance_type)[0])
    _, expected = centred_parameters(X, resp, None, covariance_type)
    assert_close(got, expected, RTOL[np.dtype(np.float32)] if inside else 1e-9, "covariances")
