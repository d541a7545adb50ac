"""Benchmark problems: the configuration matrix and seeded synthetic data.

Every implementation of a configuration gets the same :class:`Problem`: well-separated
Gaussian blobs drawn from a fixed seed and a fixed set of parameters (fitted to the
true labels of the first rows), so every implementation does identical work.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .. import reference
from ..gaussian import m_step, precisions_cholesky_from_covariances, precisions_from_precisions_cholesky
from ..suff_stats import COVARIANCE_TYPES

#: Sample counts: the default one, and the ones behind ``--large`` / FASTEM_BENCH_LARGE=1.
N_DEFAULT = 10_000
N_LARGE = (1_000_000, 10_000_000)
#: (n_features, n_components) pairs of the matrix.
DIMS = ((2, 8), (16, 8), (16, 32), (64, 16))
DTYPES = ("float64", "float32")
#: The regularisation every implementation uses (scikit-learn's default).
REG_COVAR = 1e-6
SEED = 0
#: Rows the fixed initial parameters are estimated from.
_INIT_ROWS = 20_000
_CHUNK_ROWS = 1 << 16


@dataclass(frozen=True, order=True)
class Config:
    """One point of the matrix (thread count and implementation excluded)."""

    n_samples: int
    n_features: int
    n_components: int
    covariance_type: str
    dtype: str

    def __post_init__(self):
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"covariance_type must be one of {COVARIANCE_TYPES}, got {self.covariance_type!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if min(self.n_samples, self.n_features, self.n_components) < 1:
            raise ValueError(f"n_samples, n_features and n_components must be >= 1, got {self}")
        if self.n_samples < 2 * self.n_components:
            raise ValueError(f"n_samples={self.n_samples} is too small for n_components={self.n_components}")

    @property
    def label(self) -> str:
        return (f"N={format_count(self.n_samples)} D={self.n_features} K={self.n_components} "
                f"{self.covariance_type} {self.dtype}")

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize


def format_count(n: int) -> str:
    """10000 -> '1e4', 25000 -> '25000'."""
    exponent = len(str(n)) - 1
    return f"1e{exponent}" if n == 10**exponent else str(n)


def matrix(n_samples=(N_DEFAULT,), dims=DIMS, covariance_types=COVARIANCE_TYPES, dtypes=DTYPES) -> list[Config]:
    """Every combination, in the order benchmarks run them (by N, so data is made once per N)."""
    return [Config(n, d, k, ct, dt) for n in n_samples for d, k in dims for ct in covariance_types for dt in dtypes]


@dataclass(eq=False)
class Problem:
    """Data and fixed parameters of one :class:`Config`.

    X (N, D) C-contiguous in ``config.dtype``; weights (K,), means (K, D) and
    precisions_cholesky (by covariance type) float64; shift = the default em_stats shift.
    """

    config: Config
    X: np.ndarray
    weights: np.ndarray
    means: np.ndarray
    precisions_cholesky: np.ndarray

    @property
    def shift(self) -> np.ndarray:
        return reference.default_shift(self.weights, self.means, self.config.covariance_type)

    @property
    def precisions(self) -> np.ndarray:
        return precisions_from_precisions_cholesky(self.precisions_cholesky, self.config.covariance_type)

    @cached_property
    def weighted_log_prob(self) -> np.ndarray:
        """(N, K) float64 ``log w_k + log N(x_i | k)``: the logsumexp benchmark's input."""
        log_prob = reference.gaussian_log_prob(self.X, self.means, self.precisions_cholesky,
                                               self.config.covariance_type)
        log_prob += np.log(self.weights)
        return log_prob

    def estimator_params(self, max_iter: int) -> dict:
        """scikit-learn GaussianMixture parameters for a fit of exactly ``max_iter``
        iterations from these parameters (cheap ``random_from_data`` init, overridden)."""
        c = self.config
        return dict(n_components=c.n_components, covariance_type=c.covariance_type, tol=0.0,
                    reg_covar=REG_COVAR, max_iter=max_iter, init_params="random_from_data", random_state=SEED,
                    weights_init=self.weights, means_init=self.means, precisions_init=self.precisions)

    def default_params(self, max_iter: int = 100, init_params: str = "kmeans") -> dict:
        """scikit-learn GaussianMixture parameters of a user's fit: the configuration's
        K and covariance type, every other parameter at its default."""
        c = self.config
        return dict(n_components=c.n_components, covariance_type=c.covariance_type, max_iter=max_iter,
                    init_params=init_params, random_state=SEED)


def _centres(rng: np.random.Generator, n_components: int, n_features: int) -> np.ndarray:
    """Blob centres scaled so the closest pair is 8 (blob spread is at most 1.5)."""
    centres = rng.standard_normal((n_components, n_features))
    dist = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    dist[np.diag_indices(n_components)] = np.inf
    return centres * (8.0 / dist.min())


def make_problem(config: Config, seed: int = SEED) -> Problem:
    """Seeded blobs (balanced labels, per-feature spreads in [0.5, 1.5]) and the
    parameters one M-step on the true labels of the first rows gives."""
    n, d, k = config.n_samples, config.n_features, config.n_components
    rng = np.random.default_rng([seed, d, k])
    centres = _centres(rng, k, d)
    spreads = rng.uniform(0.5, 1.5, size=(k, d))
    labels = np.arange(n) % k
    X = np.empty((n, d), dtype=config.dtype)
    for start in range(0, n, _CHUNK_ROWS):  # chunked: no float64 temporary of X's size
        lab = labels[start:start + _CHUNK_ROWS]
        rng.shuffle(lab)
        X[start:start + len(lab)] = centres[lab] + spreads[lab] * rng.standard_normal((len(lab), d))
    head = X[:_INIT_ROWS]
    resp = np.zeros((len(head), k))
    resp[np.arange(len(head)), labels[:len(head)]] = 1.0
    stats = reference.suff_stats(head, resp, config.covariance_type)
    weights, means, covariances = m_step(stats, REG_COVAR)
    precisions_cholesky = precisions_cholesky_from_covariances(covariances, config.covariance_type, REG_COVAR)
    return Problem(config, X, weights, means, precisions_cholesky)
