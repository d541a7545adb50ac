"""Every backend against the numpy reference through the public ``fastem.kernels`` API:
block boundaries, thread counts, dtypes, determinism, precision and properties."""
import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from _data import (COMPILED, DTYPES, PROPERTY_SETTINGS, REQUIRE_COMPILED, RTOL, assert_close, assert_stats_close,
                   assert_stats_equal, call_kernel, centred_parameters, make_log_probs, make_problem, problems)
from fastem import _threads, gaussian, kernels, reference
from fastem.suff_stats import COVARIANCE_TYPES, SuffStats

BLOCK_SIZE = 16
#: around one block boundary, and a single row (fewer rows than threads)
N_SAMPLES = (1, BLOCK_SIZE - 1, BLOCK_SIZE, BLOCK_SIZE + 1)
#: (function, with sample_weight)
KERNEL_CASES = [("gaussian_log_prob", False), ("e_step", False), ("suff_stats", False), ("suff_stats", True),
                ("em_stats", False), ("em_stats", True)]
FUNCTIONS = ("gaussian_log_prob", "e_step", "suff_stats", "em_stats")


def assert_matches(actual, expected, rtol: float) -> None:
    """Kernel outputs (array, (log_resp, log_prob_norm) or SuffStats) equal up to ``rtol``."""
    if isinstance(expected, SuffStats):
        assert_stats_close(actual, expected, rtol)
    elif isinstance(expected, tuple):  # e_step
        assert_close(actual[0], expected[0], rtol, "log_resp")
        assert_close(np.exp(actual[0]), np.exp(expected[0]), rtol, "resp")
        assert_close(actual[1], expected[1], rtol, "log_prob_norm")
    else:
        assert actual.dtype == np.float64
        assert_close(actual, expected, rtol)


@pytest.mark.parametrize("name", COMPILED)
def test_compiled_backend_imports(name):
    if name not in kernels.available_backends():
        message = f"backend {name!r} does not import: {kernels._import_errors.get(name)}"
        if REQUIRE_COMPILED:
            pytest.fail(message + " (FASTEM_REQUIRE_COMPILED=1)")
        pytest.skip(message)
    module = kernels.get_backend(name)
    for function in ("logsumexp", "gaussian_log_prob", "suff_stats", "em_stats"):
        assert callable(getattr(module, function, None)), f"backend {name!r} lacks {function}"


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("n_samples", [1, kernels.DEFAULT_BLOCK_SIZE, kernels.DEFAULT_BLOCK_SIZE + 1])
@pytest.mark.parametrize("n_components", [1, 4])
def test_logsumexp_matches_reference(kernel_backend, n_components, n_samples, n_threads):
    a = make_log_probs(n_samples, n_components)
    actual = kernels.logsumexp(a, backend=kernel_backend, n_threads=n_threads)
    assert_close(actual, reference.logsumexp(a), RTOL[np.dtype(np.float64)])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_logsumexp_axis(backend, axis):
    a = make_log_probs(6, 5).reshape(3, 2, 5)
    assert_close(kernels.logsumexp(a, axis, backend=backend), reference.logsumexp(a, axis=axis), 1e-12)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("n_samples", N_SAMPLES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("function, weighted", KERNEL_CASES,
                         ids=[f"{f}-{'w' if w else 'unw'}" for f, w in KERNEL_CASES])
def test_kernel_matches_reference(kernel_backend, function, weighted, dtype, covariance_type, n_samples, n_threads):
    problem = make_problem(covariance_type, n_samples, n_features=4, n_components=3, dtype=dtype, weighted=weighted)
    actual = call_kernel(function, problem, backend=kernel_backend, n_threads=n_threads, block_size=BLOCK_SIZE)
    assert_matches(actual, call_kernel(function, problem, backend="numpy"), RTOL[np.dtype(dtype)])


@pytest.mark.parametrize("function", ["em_stats", "suff_stats"])
@pytest.mark.parametrize("covariance_type, n_features, n_components",
                         [("diag", 7, 13), ("full", 3, 9), ("spherical", 5, 4), ("full", 2, 2),
                          ("spherical", 2, 3), ("diag", 150, 250), ("spherical", 300, 250), ("full", 64, 31),
                          ("full", 46, 21)])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_expanded_form_paths(function, covariance_type, n_features, n_components, dtype, monkeypatch):
    """The Cython expanded form's products: register tiles of 8 and 4 components and of
    8 and 4 features with their tails (F = 14, K = 13; F = 9, K = 9; F = 6, K = 4;
    F = 5, K = 2), the log-prob tile with BLAS moments below 4 features (spherical D = 2:
    F = 3), and BLAS beyond 65536 coefficients (F x K = 75000 diag, 75250 spherical,
    66464 full), with a row-major (diag) and a column-major block in every build; in the
    AVX-512 build, whose tiles start at 4096 coefficients, tiles of 16 components with
    component and feature tails (full D = 46: F = 1127, K = 21), BLAS below;
    float32 X's E-step in float32 on the log-prob tile, or its whole block in float32
    where BLAS takes the products."""
    problem = make_problem(covariance_type, 3 * BLOCK_SIZE + 1, n_features=n_features, n_components=n_components,
                           dtype=dtype)
    backend = "cython"
    if backend not in kernels.available_backends():
        pytest.skip("the cython backend does not import")
    from fastem._kernels import cython_backend
    monkeypatch.setattr(cython_backend, "EXPANDED_MIN_SAMPLES", {})  # the expanded form at this N too
    monkeypatch.setattr(cython_backend, "EXPANDED_MAX_KAPPA_FLOAT32", np.inf)  # and float32 blocks
    assert cython_backend._log_prob_params(problem.means, problem.precisions_cholesky, covariance_type,
                                           problem.X.shape[0])[1]
    actual = call_kernel(function, problem, backend=backend, block_size=BLOCK_SIZE)
    assert_matches(actual, call_kernel(function, problem, backend="numpy"), RTOL[np.dtype(dtype)])


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_suff_stats_of_hard_responsibilities(kernel_backend, covariance_type, dtype, weighted):
    """One-hot responsibilities, some rows in no component (an initialisation's labels):
    the compiled kernels gather a component's rows where they are few in a block, and
    take the whole block where they are most of it (the first block, all in component 0)."""
    problem = make_problem(covariance_type, n_samples=5 * BLOCK_SIZE + 3, n_features=4, n_components=3, dtype=dtype,
                           weighted=weighted)
    labels = np.random.default_rng(1).integers(-1, 3, problem.X.shape[0])
    labels[:BLOCK_SIZE] = 0
    resp = np.zeros_like(problem.resp)
    resp[labels >= 0, labels[labels >= 0]] = 1.0
    problem = dataclasses.replace(problem, resp=resp)
    actual = call_kernel("suff_stats", problem, backend=kernel_backend, block_size=BLOCK_SIZE)
    assert_matches(actual, call_kernel("suff_stats", problem, backend="numpy"), RTOL[np.dtype(dtype)])


@pytest.mark.parametrize("n_samples", N_SAMPLES + (5 * BLOCK_SIZE + 3,))
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_label_stats_match_reference_for_any_thread_count(kernel_backend, covariance_type, dtype, weighted,
                                                         n_samples):
    """Hard responsibilities given as labels (-1: in no component; tied's second moments
    still take every row, as suff_stats's do) against the reference's one-hot suff_stats,
    bit-identical for 1, 2 and 3 threads."""
    problem = make_problem(covariance_type, n_samples=n_samples, n_features=4, n_components=3, dtype=dtype,
                           weighted=weighted, offset=50.0)
    labels = np.random.default_rng(1).integers(-1, 3, n_samples)
    shift = problem.means.mean(axis=0) if covariance_type == "tied" else problem.means
    module = kernels.get_backend(kernel_backend)
    results = [module.label_stats(problem.X, labels, 3, covariance_type, problem.sample_weight, shift,
                                  n_threads=n, block_size=BLOCK_SIZE) for n in (1, 2, 3)]
    expected = reference.label_stats(problem.X, labels, 3, covariance_type, problem.sample_weight, shift)
    assert_matches(results[0], expected, RTOL[np.dtype(dtype)])
    for result in results[1:]:
        assert_stats_equal(result, results[0])


@pytest.mark.parametrize("label", [-2, 3])
def test_label_stats_reject_labels_out_of_range(backend, label):
    problem = make_problem("diag", n_samples=20, n_components=3)
    labels = np.zeros(20, dtype=np.int64)
    labels[7] = label
    module = kernels.get_backend(backend)
    with pytest.raises(ValueError, match="labels must be -1"):
        module.label_stats(problem.X, labels, 3, "diag", None, problem.means, n_threads=1, block_size=BLOCK_SIZE)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("function", ["e_step", "em_stats"])
def test_zero_weight_component(kernel_backend, function, covariance_type):
    """A component of weight 0 has log-responsibility -inf and zero statistics, never NaN."""
    problem = make_problem(covariance_type, n_samples=40, weighted=True)
    problem = dataclasses.replace(problem, weights=np.array([0.0, 0.4, 0.6]))
    actual = call_kernel(function, problem, backend=kernel_backend, block_size=BLOCK_SIZE)
    assert_matches(actual, call_kernel(function, problem, backend="numpy"), RTOL[np.dtype(np.float64)])


@pytest.mark.parametrize("block_size", [37, kernels.DEFAULT_BLOCK_SIZE])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_em_stats_bit_identical_across_thread_counts(kernel_backend, covariance_type, dtype, block_size):
    problem = make_problem(covariance_type, n_samples=4 * kernels.DEFAULT_BLOCK_SIZE + 3, dtype=dtype, weighted=True)
    results = [call_kernel("em_stats", problem, backend=kernel_backend, n_threads=n, block_size=block_size)
               for n in (1, 2, 3)]
    for result in results[1:]:
        assert_stats_equal(result, results[0])


@pytest.mark.parametrize("function", ["em_stats", "suff_stats"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_covariances_accurate_far_from_origin(backend, covariance_type, function):
    """Data at 1e6 with spread 0.1: shifted moments keep the covariances to 1e-6 relative
    (raw one-pass moments would lose about 1e-2)."""
    problem = make_problem(covariance_type, n_samples=200, offset=1e6, spread=0.1, weighted=True)
    stats = call_kernel(function, problem, backend=backend, block_size=BLOCK_SIZE)
    _, means, covariances = gaussian.m_step(stats, reg_covar=0.0)
    resp = problem.resp if function == "suff_stats" else np.exp(reference.e_step(problem.X, *problem.params)[0])
    expected_means, expected_covariances = centred_parameters(problem.X, resp, problem.sample_weight, covariance_type)
    assert_close(covariances, expected_covariances, 1e-6, "covariances")
    assert np.abs(means - expected_means).max() <= 1e-6 * 0.1, "means"


# --- properties -------------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(a=st.integers(0, 2**32 - 1).map(lambda seed: make_log_probs(5, 4, seed)),
       c=st.floats(-1e4, 1e4))
def test_logsumexp_shift_invariance(backend, a, c):
    shifted = kernels.logsumexp(a + c, backend=backend)
    expected = kernels.logsumexp(a, backend=backend) + c
    finite = np.isfinite(a)
    scale = 1 + abs(c) + np.abs(a[finite]).max(initial=0)
    np.testing.assert_allclose(shifted, expected, rtol=0, atol=1e-12 * scale)


@PROPERTY_SETTINGS
@given(problem=problems())
def test_responsibilities_sum_to_one(backend, problem):
    log_resp, _ = call_kernel("e_step", problem, backend=backend, block_size=7)
    np.testing.assert_allclose(np.exp(log_resp).sum(axis=1), 1.0, rtol=1e-12)


@PROPERTY_SETTINGS
@given(problem=problems(weighted=st.just(False)), data=st.data())
def test_sample_weight_two_equals_duplicated_row(backend, problem, data):
    row = data.draw(st.integers(0, len(problem.X) - 1))
    sample_weight = np.ones(len(problem.X))
    sample_weight[row] = 2.0
    weighted = dataclasses.replace(problem, sample_weight=sample_weight)
    duplicated = dataclasses.replace(problem, X=np.concatenate([problem.X, problem.X[row:row + 1]]))
    assert_stats_close(call_kernel("em_stats", weighted, backend=backend, block_size=4),
                       call_kernel("em_stats", duplicated, backend=backend, block_size=4), RTOL[problem.X.dtype])


@PROPERTY_SETTINGS
@given(problem=problems(max_samples=60), block_sizes=st.tuples(st.integers(1, 70), st.integers(1, 70)))
def test_em_stats_independent_of_block_size(kernel_backend, problem, block_sizes):
    first, second = (call_kernel("em_stats", problem, backend=kernel_backend, block_size=b) for b in block_sizes)
    assert_stats_close(first, second, RTOL[problem.X.dtype])


@PROPERTY_SETTINGS
@given(problem=problems(weighted=st.just(True)))
def test_inputs_never_mutated(backend, problem):
    arrays = {f.name: getattr(problem, f.name) for f in dataclasses.fields(problem) if f.name != "covariance_type"}
    before = {name: a.copy() for name, a in arrays.items()}
    for function in FUNCTIONS:
        call_kernel(function, problem, backend=backend, block_size=8)
    log_probs = make_log_probs(10, 3)
    log_probs_before = log_probs.copy()
    kernels.logsumexp(log_probs, backend=backend)
    np.testing.assert_array_equal(log_probs, log_probs_before)
    for name, a in arrays.items():
        np.testing.assert_array_equal(a, before[name], err_msg=f"{name} was modified")


def _relayout(a: np.ndarray, layout: str, path) -> np.ndarray:
    """``a`` read-only, Fortran-ordered, as a strided view (NaN between its elements), or as a read-only memmap."""
    if layout == "readonly":
        out = a.copy()
        out.flags.writeable = False
        return out
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "strided":
        return np.stack([a, np.full_like(a, np.nan)], axis=-1)[..., 0]
    np.save(path, a)
    return np.load(path, mmap_mode="r")


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("layout", ["readonly", "fortran", "strided", "memmap"])
@pytest.mark.parametrize("function", FUNCTIONS)
def test_input_layouts_give_identical_results(backend, function, layout, covariance_type, tmp_path):
    problem = make_problem(covariance_type, n_samples=40, n_features=4, weighted=True)
    relaid = dataclasses.replace(problem, **{
        f.name: _relayout(getattr(problem, f.name), layout, tmp_path / f"{f.name}.npy")
        for f in dataclasses.fields(problem) if f.name not in ("covariance_type", "covariances")})
    assert relaid.X.flags.c_contiguous == (layout in ("readonly", "memmap"))
    expected = call_kernel(function, problem, backend=backend, block_size=BLOCK_SIZE)
    actual = call_kernel(function, relaid, backend=backend, block_size=BLOCK_SIZE)
    if isinstance(expected, SuffStats):
        assert_stats_equal(actual, expected)
    else:
        pairs = zip(actual, expected) if isinstance(expected, tuple) else [(actual, expected)]
        for a, b in pairs:
            np.testing.assert_array_equal(a, b)


def _blas_threads() -> list[int]:
    return [library.get_num_threads() for library in _threads._blas_libraries()]


def test_blas_pin_lasts_the_lazy_block_a_kernel_pins_inside():
    """A fit's lazy block pins nothing; the first pin inside stays until the fit ends,
    and the thread counts are restored then."""
    before = _blas_threads()
    with _threads.blas_single_threaded(lazy=True):
        assert _blas_threads() == before
        with _threads.blas_single_threaded():
            assert set(_blas_threads()) <= {1}
        assert set(_blas_threads()) <= {1}
    assert _blas_threads() == before


@pytest.mark.parametrize("n_samples", [_threads.FIT_PIN_MIN_SAMPLES - 1, _threads.FIT_PIN_MIN_SAMPLES])
def test_a_large_fit_pins_blas_for_its_whole_length(n_samples):
    """From FIT_PIN_MIN_SAMPLES rows a fit pins BLAS from its start (its M-steps' LAPACK
    calls must not wake BLAS's threads), even where no kernel calls BLAS (tied, D = 2);
    a smaller one does not; both restore the thread counts."""
    from fastem.mixture import GaussianMixture

    before = _blas_threads()
    if set(before) <= {1}:
        pytest.skip("BLAS runs one thread here: a pin changes nothing")
    seen = []
    X = np.random.default_rng(0).standard_normal((n_samples, 2))
    GaussianMixture(2, covariance_type="tied", max_iter=2, random_state=0,
                    callback=lambda info: seen.append(_blas_threads())).fit(X)
    expected = [1] * len(before) if n_samples >= _threads.FIT_PIN_MIN_SAMPLES else before
    assert seen and all(threads == expected for threads in seen)
    assert _blas_threads() == before


def test_small_direct_passes_never_pin_blas(monkeypatch):
    """Plain-loop kernels (direct form, a few features) skip the pin's library calls."""
    pytest.importorskip("fastem._kernels.cython_backend")

    def refuse():
        raise AssertionError("BLAS was pinned")

    monkeypatch.setattr(_threads, "_blas_libraries", refuse)
    for covariance_type in COVARIANCE_TYPES:
        call_kernel("em_stats", make_problem(covariance_type, n_samples=40), backend="cython")
