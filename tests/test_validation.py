"""Bad input to the public kernels gives a ValueError naming the problem; accepted
variants (lower-triangular factors, integer or float32 X) behave as documented."""
import dataclasses
import warnings

import numpy as np
import pytest

from _data import RTOL, assert_close, call_kernel, make_problem
from fastem import _validation, kernels
from fastem.data import ArraySource

ALL = ("gaussian_log_prob", "e_step", "suff_stats", "em_stats")
PARAMS = ("gaussian_log_prob", "e_step", "em_stats")  # take means and precisions_cholesky
WEIGHTS = ("e_step", "em_stats")
SAMPLE_WEIGHT = ("suff_stats", "em_stats")


def _set(a: np.ndarray, index, value) -> np.ndarray:
    out = a.astype(np.result_type(a, value))
    out[index] = value
    return out


def _not_triangular(p):
    out = p.copy()
    out[1, 2, 0] = 0.5  # below the diagonal of an upper-triangular factor
    return out


# (id, functions, {field: problem -> new value}, kernel options, message pattern)
INVALID = [
    ("X-nan", ALL, {"X": lambda p: _set(p.X, (3, 1), np.nan)}, {}, r"X contains NaN or infinity.*\(3, 1\)"),
    ("X-inf", ALL, {"X": lambda p: _set(p.X, (0, 2), -np.inf)}, {}, r"X contains NaN or infinity"),
    ("X-1d", ALL, {"X": lambda p: p.X[:, 0]}, {}, r"X must be a 2-d array"),
    ("X-3d", ALL, {"X": lambda p: p.X[None]}, {}, r"X must be a 2-d array"),
    ("X-empty", ALL, {"X": lambda p: p.X[:0], "resp": lambda p: p.resp[:0]}, {}, r"X has 0 samples"),
    ("X-no-features", ALL, {"X": lambda p: p.X[:, :0]}, {}, r"X has 0 features"),
    ("X-complex", ALL, {"X": lambda p: p.X + 1j}, {}, r"X must be real"),
    ("means-shape", PARAMS, {"means": lambda p: p.means[:, :2]}, {}, r"means must have shape"),
    ("means-nan", PARAMS, {"means": lambda p: _set(p.means, (0, 0), np.nan)}, {}, r"means contains NaN"),
    ("precisions-shape", PARAMS, {"precisions_cholesky": lambda p: p.precisions_cholesky[:2]}, {},
     r"precisions_cholesky must have shape"),
    ("precisions-not-triangular", PARAMS, {"precisions_cholesky": lambda p: _not_triangular(p.precisions_cholesky)},
     {}, r"precisions_cholesky must be triangular"),
    ("precisions-nonpositive-diagonal", PARAMS,
     {"precisions_cholesky": lambda p: _set(p.precisions_cholesky, (0, 1, 1), -1.0)}, {}, r"positive diagonal"),
    ("weights-shape", WEIGHTS, {"weights": lambda p: p.weights[:2]}, {}, r"weights must have shape"),
    ("weights-sum", WEIGHTS, {"weights": lambda p: p.weights * 0.9}, {}, r"weights must sum to 1"),
    ("weights-negative", WEIGHTS, {"weights": lambda p: np.array([-0.5, 0.5, 1.0])}, {}, r"weights must lie in"),
    ("sample_weight-negative", SAMPLE_WEIGHT, {"sample_weight": lambda p: _set(p.sample_weight, 4, -1.0)}, {},
     r"sample_weight must be non-negative"),
    ("sample_weight-shape", SAMPLE_WEIGHT, {"sample_weight": lambda p: p.sample_weight[:-1]}, {},
     r"sample_weight must have shape"),
    ("sample_weight-nan", SAMPLE_WEIGHT, {"sample_weight": lambda p: _set(p.sample_weight, 2, np.nan)}, {},
     r"sample_weight contains NaN"),
    ("resp-shape", ("suff_stats",), {"resp": lambda p: p.resp[:-1]}, {}, r"resp must have shape"),
    ("resp-negative", ("suff_stats",), {"resp": lambda p: _set(p.resp, (0, 0), -0.1)}, {},
     r"resp must be non-negative"),
    ("covariance_type", ALL, {"covariance_type": lambda p: "diagonal"}, {}, r"covariance_type must be one of"),
    ("backend", ALL, {}, {"backend": "fortran"}, r"backend must be 'auto' or one of"),
    ("n_threads-zero", ALL, {}, {"n_threads": 0}, r"n_threads must be"),
    ("n_threads-float", ALL, {}, {"n_threads": 1.5}, r"n_threads must be"),
    ("block_size-zero", ALL, {}, {"block_size": 0}, r"block_size must be a positive int"),
]


@pytest.mark.parametrize("function, changes, options, match", [
    pytest.param(function, changes, options, match, id=f"{case}-{function}")
    for case, functions, changes, options, match in INVALID for function in functions])
def test_invalid_input_raises_value_error(function, changes, options, match):
    problem = make_problem("full", n_samples=10, n_features=3, n_components=3, weighted=True)
    problem = dataclasses.replace(problem, **{name: change(problem) for name, change in changes.items()})
    with pytest.raises(ValueError, match=match):
        call_kernel(function, problem, **options)


@pytest.mark.parametrize("a, match", [
    (np.array([[0.0, np.nan]]), r"NaN or \+inf"),
    (np.array([[0.0, np.inf]]), r"NaN or \+inf"),
    (np.array(1.0), r"at least a 1-d array"),
])
def test_invalid_logsumexp_input_raises_value_error(a, match):
    with pytest.raises(ValueError, match=match):
        kernels.logsumexp(a)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_lower_triangular_precisions_cholesky_equals_upper(backend, covariance_type):
    """sklearn builds lower-triangular factors from ``precisions_init``; same model, same log-probs."""
    problem = make_problem(covariance_type, n_samples=30, n_features=4)
    p = problem.precisions_cholesky
    lower = np.linalg.cholesky(p @ np.swapaxes(p, -1, -2))
    assert np.any(np.tril(lower, -1)) and not np.any(np.triu(lower, 1))
    expected = call_kernel("gaussian_log_prob", problem, backend=backend)
    actual = call_kernel("gaussian_log_prob", dataclasses.replace(problem, precisions_cholesky=lower), backend=backend)
    assert_close(actual, expected, RTOL[np.dtype(np.float64)])


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_integer_X_is_float64(backend, dtype):
    problem = make_problem("diag", n_samples=20)
    X_int = np.abs(problem.X).round().astype(dtype)
    assert ArraySource(X_int).X.dtype == np.float64
    expected = call_kernel("em_stats", dataclasses.replace(problem, X=X_int.astype(np.float64)), backend=backend)
    actual = call_kernel("em_stats", dataclasses.replace(problem, X=X_int), backend=backend)
    for field in ("nk", "sum_x", "sum_xx"):
        np.testing.assert_array_equal(getattr(actual, field), getattr(expected, field))
    assert actual.loglik == expected.loglik


def test_float32_X_stays_float32_without_copy():
    X = make_problem("full", n_samples=20, dtype=np.float32).X
    source = ArraySource(X)
    assert source.X.dtype == np.float32 and source.dtype == np.float32
    assert np.shares_memory(source.X, X), "a C-contiguous float32 X must not be copied"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finite_X_whose_sum_overflows_is_accepted(dtype):
    """The finiteness check's fast path (one sum) overflows here; the elementwise scan
    that follows must accept the data, and still find a NaN placed after the overflow."""
    X = np.full((8, 2), np.finfo(dtype).max / 2, dtype=dtype)
    assert ArraySource(X).X is X
    with pytest.raises(ValueError, match=r"X contains NaN or infinity.*\(7, 1\)"):
        ArraySource(_set(X, (7, 1), np.nan))


@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("bad", [None, np.nan, np.inf, -np.inf])
def test_is_finite_in_row_slices(monkeypatch, n_threads, bad):
    # the threaded sum (made to run here on 1 MB) decides as the elementwise test; a
    # finite sum that overflows is still finite, with no warning from any thread
    monkeypatch.setattr(_validation, "PARALLEL_SUM_BYTES", 2**20)
    X = np.random.default_rng(0).normal(size=(20001, 8))
    if bad is not None:
        X[17777, 5] = bad
    assert _validation.is_finite(X, n_threads) == bool(np.isfinite(X).all())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _validation.is_finite(np.full((20001, 8), 1e308), n_threads)
