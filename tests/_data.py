"""Shared test problems and comparisons for the kernel tests (one place, so that no two
tests re-derive the same expectation differently)."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

from fastem import kernels
from fastem.gaussian import precisions_cholesky_from_covariances
from fastem.suff_stats import COVARIANCE_TYPES, SuffStats

DTYPES = (np.float32, np.float64)
#: norm-relative tolerance of a backend against the float64 reference, by input dtype
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}

#: backends that must build in CI (FASTEM_REQUIRE_COMPILED=1): missing ones fail, not skip
COMPILED = ("cython", "numba")
REQUIRE_COMPILED = os.environ.get("FASTEM_REQUIRE_COMPILED") == "1"
#: every backend that imports here, plus the compiled ones (skipped or failed when missing)
ALL_BACKENDS = list(dict.fromkeys([*kernels.available_backends(), *COMPILED]))
#: backends compared against the reference (the "numpy" backend *is* the reference)
KERNEL_BACKENDS = [name for name in ALL_BACKENDS if name != "numpy"]

#: hypothesis settings for every property test: small and quick
PROPERTY_SETTINGS = settings(max_examples=15, deadline=None)


@dataclass(frozen=True)
class Problem:
    """A Gaussian mixture and data near it.

    X (N, D) of ``dtype``; weights (K,), means (K, D), covariances and
    precisions_cholesky (shape by covariance_type) float64; sample_weight (N,) float64
    with some zeros, or None; resp (N, K) float64 random responsibilities (rows sum to 1).
    """

    covariance_type: str
    X: np.ndarray
    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray
    sample_weight: np.ndarray | None
    resp: np.ndarray

    @property
    def params(self) -> tuple:
        return self.weights, self.means, self.precisions_cholesky, self.covariance_type


def random_covariances(rng: np.random.Generator, covariance_type: str, n_components: int,
                       n_features: int) -> np.ndarray:
    """Well-conditioned covariances (eigenvalues roughly in [0.5, 3]) of ``covariance_type``'s shape."""

    def spd():
        a = rng.standard_normal((n_features, n_features))
        return a @ a.T / n_features + 0.5 * np.eye(n_features)

    if covariance_type == "full":
        return np.stack([spd() for _ in range(n_components)])
    if covariance_type == "tied":
        return spd()
    if covariance_type == "diag":
        return rng.uniform(0.5, 2.0, (n_components, n_features))
    return rng.uniform(0.5, 2.0, n_components)


def make_problem(covariance_type: str = "full", n_samples: int = 50, n_features: int = 3, n_components: int = 3, *,
                 dtype=np.float64, weighted: bool = False, seed: int = 0, offset: float = 0.0,
                 spread: float = 1.0) -> Problem:
    """Data drawn around ``n_components`` means ~3 ``spread`` apart, centred near ``offset``
    (so that the responsibilities are neither all 0/1 nor uniform)."""
    rng = np.random.default_rng(seed)
    means = offset + 3 * spread * rng.standard_normal((n_components, n_features))
    covariances = random_covariances(rng, covariance_type, n_components, n_features) * spread**2
    weights = rng.dirichlet(np.full(n_components, 5.0))
    labels = rng.choice(n_components, size=n_samples, p=weights)
    X = (means[labels] + spread * rng.standard_normal((n_samples, n_features))).astype(dtype)
    sample_weight = None
    if weighted:
        sample_weight = rng.uniform(0.1, 3.0, n_samples)
        sample_weight[1::4] = 0.0
    resp = rng.dirichlet(np.ones(n_components), size=n_samples)
    return Problem(covariance_type, X, weights, means, covariances,
                   precisions_cholesky_from_covariances(covariances, covariance_type), sample_weight, resp)


def make_log_probs(n_samples: int, n_components: int, seed: int = 0) -> np.ndarray:
    """(N, K) float64 log-probabilities at offsets up to +-1000 per row (plain exp would
    under/overflow), ~20% ``-inf`` entries, and the last row all ``-inf`` when N > 1."""
    rng = np.random.default_rng(seed)
    a = 10 * rng.standard_normal((n_samples, n_components)) + rng.uniform(-1000, 1000, (n_samples, 1))
    a[rng.random(a.shape) < 0.2] = -np.inf
    if n_samples > 1:
        a[-1] = -np.inf
    return a


@st.composite
def problems(draw, covariance_types=COVARIANCE_TYPES, dtypes=DTYPES, min_samples: int = 1, max_samples: int = 40,
             weighted=st.booleans()) -> Problem:
    """Hypothesis strategy: a small :class:`Problem` of random size, type and dtype."""
    return make_problem(
        draw(st.sampled_from(covariance_types)),
        n_samples=draw(st.integers(min_samples, max_samples)),
        n_features=draw(st.integers(1, 5)),
        n_components=draw(st.integers(1, 4)),
        dtype=draw(st.sampled_from(dtypes)),
        weighted=draw(weighted),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


def call_kernel(function: str, problem: Problem, **options):
    """``fastem.kernels.<function>`` on ``problem`` (options: backend, n_threads, block_size, shift)."""
    p = problem
    if function == "gaussian_log_prob":
        return kernels.gaussian_log_prob(p.X, p.means, p.precisions_cholesky, p.covariance_type, **options)
    if function == "e_step":
        return kernels.e_step(p.X, *p.params, **options)
    if function == "suff_stats":
        return kernels.suff_stats(p.X, p.resp, p.covariance_type, p.sample_weight, **options)
    if function == "em_stats":
        return kernels.em_stats(p.X, *p.params, p.sample_weight, **options)
    raise ValueError(f"unknown kernel {function!r}")


def assert_close(actual, expected, rtol: float, name: str = "result") -> None:
    """Same shape, same non-finite entries, and ``||actual - expected|| <= rtol ||expected||``
    over the finite entries (a norm-relative test: meaningful for entries of mixed sizes)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(actual[~finite], expected[~finite], err_msg=f"{name}: non-finite entries differ")
    assert np.isfinite(actual[finite]).all(), f"{name}: non-finite where the reference is finite"
    err = np.linalg.norm(actual[finite] - expected[finite])
    scale = np.linalg.norm(expected[finite])
    assert err <= rtol * scale, f"{name}: relative error {err / scale if scale else err:.3g} > {rtol:g}"


def assert_stats_close(actual: SuffStats, expected: SuffStats, rtol: float) -> None:
    """Field-wise :func:`assert_close` of two SuffStats taken around the same shift.

    ``sum_x`` (a sum of signed deviations, which may cancel to ~0) is measured against the
    Cauchy-Schwarz bound of its absolute sum, ``sqrt(n * sum_k sum_i w_i r_ik ||x_i - c_k||**2)``;
    ``loglik`` (a sum of signed log-densities) against ``|loglik| + n``.
    """
    assert isinstance(actual, SuffStats), f"expected SuffStats, got {type(actual).__name__}"
    assert actual.covariance_type == expected.covariance_type
    np.testing.assert_array_equal(actual.shift, expected.shift, err_msg="shift differs")
    for field in ("nk", "sum_x", "sum_xx", "shift"):
        assert getattr(actual, field).dtype == np.float64, f"{field} is {getattr(actual, field).dtype}, not float64"
    assert_close(actual.nk, expected.nk, rtol, "nk")
    assert_close(actual.sum_xx, expected.sum_xx, rtol, "sum_xx")
    sq_dev = expected.sum_xx if expected.covariance_type in ("diag", "spherical") else np.diagonal(
        expected.sum_xx, axis1=-2, axis2=-1)
    bound = np.sqrt(expected.n * np.sum(sq_dev))
    err = np.linalg.norm(actual.sum_x - expected.sum_x)
    assert actual.sum_x.shape == expected.sum_x.shape
    assert err <= rtol * bound, f"sum_x: error {err:.3g} > {rtol:g} * {bound:.3g}"
    assert abs(actual.loglik - expected.loglik) <= rtol * (abs(expected.loglik) + expected.n), (
        f"loglik: {actual.loglik!r} != {expected.loglik!r}")
    assert abs(actual.n - expected.n) <= rtol * expected.n, f"n: {actual.n!r} != {expected.n!r}"


def assert_stats_equal(actual: SuffStats, expected: SuffStats) -> None:
    """Bit-identical SuffStats."""
    assert actual.covariance_type == expected.covariance_type
    for field in ("nk", "sum_x", "sum_xx", "shift"):
        a, b = getattr(actual, field), getattr(expected, field)
        assert a.dtype == b.dtype and np.array_equal(a, b), f"{field} differs"
    assert actual.loglik == expected.loglik, f"loglik {actual.loglik!r} != {expected.loglik!r}"
    assert actual.n == expected.n, f"n {actual.n!r} != {expected.n!r}"


def centred_parameters(X, resp, sample_weight, covariance_type: str) -> tuple[np.ndarray, np.ndarray]:
    """Exact two-pass weighted means and covariances (no reg_covar) in float64: the means
    first, then second moments of ``x - mean_k``; accurate for data far from the origin."""
    X = np.asarray(X, dtype=np.float64)
    wr = resp * (np.ones(len(X)) if sample_weight is None else sample_weight)[:, None]
    nk = wr.sum(axis=0)
    means = (wr.T @ X) / nk[:, None]
    full = np.stack([(wr[:, k, None] * (X - means[k])).T @ (X - means[k]) / nk[k] for k in range(len(nk))])
    if covariance_type == "full":
        return means, full
    if covariance_type == "tied":
        return means, np.einsum("k,kij->ij", nk, full) / nk.sum()
    diag = np.diagonal(full, axis1=1, axis2=2)
    return means, (diag if covariance_type == "diag" else diag.mean(axis=1))


def max_precision_trace(fitted) -> float:
    """max_k trace(precision_k) of a fitted mixture: how far regularisation may lower the
    bound in one iteration (``reg_covar / 2`` times it)."""
    p, ct = fitted.precisions_, fitted.covariance_type
    traces = {"full": lambda: np.trace(p, axis1=1, axis2=2), "tied": lambda: np.trace(p),
              "diag": lambda: p.sum(axis=1), "spherical": lambda: p * fitted.means_.shape[1]}[ct]()
    return float(np.max(traces))


# ------------------------------------------------- independent-feature families
DISCRETE_DISTRIBUTIONS = ("bernoulli", "poisson", "categorical")
#: missing-value patterns: none, scattered NaN, and scattered NaN plus all-missing rows
MISSING_PATTERNS = ("none", "some", "rows")


@dataclass(frozen=True)
class DiscreteProblem:
    """Data of an independent-feature mixture and parameters near it.

    X (N, D) of ``dtype`` (NaN where missing); weights (K,); for "bernoulli"/"poisson"
    ``coef``/``offset`` (K, D) of the linear log-density, for "categorical" ``log_probs``
    (K, D, C) and ``n_categories`` (D,); sample_weight (N,) with zeros, or None.
    """

    distribution: str
    X: np.ndarray
    weights: np.ndarray
    table: tuple  # (coef, offset) or (log_probs, n_categories)
    sample_weight: np.ndarray | None

    def log_prob(self, **options):
        if self.distribution == "categorical":
            return kernels.categorical_log_prob(self.X, *self.table, **options)
        return kernels.linear_log_prob(self.X, *self.table, self.distribution, **options)

    def em_stats(self, **options):
        if self.distribution == "categorical":
            return kernels.categorical_em_stats(self.X, self.weights, *self.table, self.sample_weight, **options)
        return kernels.linear_em_stats(self.X, self.weights, *self.table, self.distribution, self.sample_weight,
                                       **options)


def make_discrete_problem(distribution: str, n_samples: int = 40, n_features: int = 5, n_components: int = 3, *,
                          dtype=np.float64, weighted: bool = False, missing: str = "none",
                          seed: int = 0) -> DiscreteProblem:
    """Rows drawn from a random mixture of ``distribution`` (categorical: 2 to 4
    categories per feature), with the ``missing`` pattern of :data:`MISSING_PATTERNS`."""
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(n_components, 5.0))
    labels = rng.choice(n_components, n_samples, p=weights)
    if distribution == "bernoulli":
        probs = rng.uniform(0.1, 0.9, (n_components, n_features))
        X = (rng.random((n_samples, n_features)) < probs[labels]).astype(dtype)
        table = (np.log(probs) - np.log1p(-probs), np.log1p(-probs))
    elif distribution == "poisson":
        rates = rng.uniform(0.5, 8.0, (n_components, n_features))
        X = rng.poisson(rates[labels]).astype(dtype)
        table = (np.log(rates), -rates)
    else:
        n_categories = rng.integers(2, 5, n_features)
        log_probs = np.full((n_components, n_features, n_categories.max()), -np.inf)
        for d, c in enumerate(n_categories):
            log_probs[:, d, :c] = np.log(rng.dirichlet(np.ones(c), n_components))
        X = np.array([[rng.choice(c, p=np.exp(log_probs[k, d, :c])) for d, c in enumerate(n_categories)]
                      for k in labels], dtype=dtype).reshape(n_samples, n_features)
        table = (log_probs, n_categories)
    if missing != "none":
        X[rng.random(X.shape) < 0.2] = np.nan
    if missing == "rows":
        X[::7] = np.nan
    sample_weight = rng.uniform(0, 2, n_samples) if weighted else None
    if weighted:
        sample_weight[::5] = 0.0
    return DiscreteProblem(distribution, X, weights, table, sample_weight)


def assert_discrete_stats_close(actual, expected, rtol: float) -> None:
    """Two IndependentStats / CategoricalStats equal to ``rtol`` (relative to each field's size)."""
    from dataclasses import fields

    assert type(actual) is type(expected)
    for f in fields(expected):
        a, e = np.asarray(getattr(actual, f.name)), np.asarray(getattr(expected, f.name))
        assert a.shape == e.shape, f.name
        scale = max(1.0, float(np.max(np.abs(e), initial=0.0)))
        np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * scale, err_msg=f.name)
