"""Pure-numpy reference kernels of the mixtures of independent features: the test
oracle and the benchmark baseline of :mod:`fastem.families` (Bernoulli, Poisson,
categorical), as :mod:`fastem.reference` is the Gaussian one.

X is (N, D) float32/float64 with NaN for missing entries, computed in float64. A row
contributes only its observed features; a row with none contributes nothing (see
:mod:`fastem.discrete_stats`). Values outside the distribution's domain raise
(:func:`fastem._validation.check_values`), as the compiled backends do.

Two log-densities cover the three families:

- *linear* (``distribution`` "bernoulli" or "poisson"): ``log p(x | k) = sum_d o_d
  (x_d coef[k, d] + offset[k, d] + log h(x_d))`` with ``log h = 0`` (Bernoulli) or
  ``-log(x!)`` (Poisson);
- *categorical*: ``log p(x | k) = sum_d o_d log_probs[k, d, x_d]``.

``n_threads`` and ``block_size`` are accepted for signature compatibility and ignored.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.special import gammaln

from ._validation import check_values
from .discrete_stats import CategoricalStats, IndependentStats
from .reference import logsumexp


def _observed(X: np.ndarray, distribution: str, n_categories=None) -> tuple[np.ndarray, np.ndarray]:
    """X in float64 with missing entries 0, and the (N, D) float64 mask of observed ones."""
    check_values(X, distribution, n_categories)
    observed = ~np.isnan(X)
    return np.where(observed, X, 0.0).astype(np.float64), observed.astype(np.float64)


def linear_log_prob(X, coef, offset, distribution: str, *, n_threads=None, block_size=None) -> np.ndarray:
    """(N, K) float64 ``log p(x_i | k)`` of the linear log-densities (weights not included)."""
    x, observed = _observed(X, distribution)
    log_prob = x @ coef.T + observed @ offset.T
    if distribution == "poisson":
        log_prob -= gammaln(x + 1.0).sum(axis=1, keepdims=True)  # x = 0 where missing: log 0! = 0
    return log_prob


def _one_hot(X, n_categories):
    """(N, D * C) sparse CSR indicator of each observed entry's (feature, category) cell,
    column ``d * C + x_d`` (C the largest number of categories), and (N,) bool: rows with
    an observed entry. Sparse: the dense (N, D, C) array would be C times X's size."""
    x, observed = _observed(X, "categorical", n_categories)
    n_samples, n_features = X.shape
    n_cells = int(np.max(n_categories))
    rows, features = np.nonzero(observed)
    columns = features * n_cells + x[rows, features].astype(np.intp)
    one_hot = csr_matrix((np.ones(rows.shape[0]), (rows, columns)), shape=(n_samples, n_features * n_cells))
    return one_hot, observed.any(axis=1)


def categorical_log_prob(X, log_probs, n_categories, *, n_threads=None, block_size=None) -> np.ndarray:
    """(N, K) float64 ``log p(x_i | k)``; log_probs (K, D, C) float64, n_categories (D,)."""
    one_hot, _ = _one_hot(X, n_categories)
    # only stored (observed) cells are multiplied, so a log-probability of -inf never meets a 0
    return np.asarray(one_hot @ log_probs.reshape(log_probs.shape[0], -1).T)


def _responsibilities(log_prob: np.ndarray, weights: np.ndarray, has_observed: np.ndarray, sample_weight):
    """Responsibilities (N, K), the effective row weights (N,) (0 for rows with nothing
    observed) and the total weighted log-likelihood. A row impossible under every
    component (log-likelihood -inf) gets responsibilities 0; a row of weight 0 adds 0."""
    with np.errstate(divide="ignore"):  # a zero weight gives -inf
        weighted = log_prob + np.log(weights)
    log_norm = logsumexp(weighted, axis=1)
    possible = np.isfinite(log_norm)
    with np.errstate(invalid="ignore"):
        resp = np.where(possible[:, None], np.exp(weighted - np.where(possible, log_norm, 0.0)[:, None]), 0.0)
    w = np.ones(log_prob.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    w = np.where(has_observed, w, 0.0)
    counted = w > 0
    return resp, w, float(w[counted] @ log_norm[counted])


def linear_suff_stats(X, resp, distribution: str, sample_weight=None, *, n_threads=None,
                      block_size=None) -> IndependentStats:
    """Statistics of given responsibilities ``resp`` (N, K) (an initialisation); loglik 0.0."""
    x, observed = _observed(X, distribution)
    w = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    w = np.where(observed.any(axis=1), w, 0.0)
    wr = resp * w[:, None]
    return IndependentStats(wr.sum(axis=0), wr.T @ x, wr.T @ observed, 0.0, float(w.sum()))


def linear_em_stats(X, weights, coef, offset, distribution: str, sample_weight=None, *, n_threads=None,
                    block_size=None) -> IndependentStats:
    """One fused EM pass of a linear family: E-step under (weights, coef, offset) folded
    into the statistics of the M-step, plus the total weighted log-likelihood."""
    x, observed = _observed(X, distribution)
    log_prob = linear_log_prob(X, coef, offset, distribution)
    resp, w, loglik = _responsibilities(log_prob, weights, observed.any(axis=1), sample_weight)
    wr = resp * w[:, None]
    return IndependentStats(wr.sum(axis=0), wr.T @ x, wr.T @ observed, loglik, float(w.sum()))


def categorical_suff_stats(X, resp, n_categories, sample_weight=None, *, n_threads=None,
                           block_size=None) -> CategoricalStats:
    """Statistics of given responsibilities ``resp`` (N, K) (an initialisation); loglik 0.0."""
    one_hot, has_observed = _one_hot(X, n_categories)
    w = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    w = np.where(has_observed, w, 0.0)
    return _categorical_stats(one_hot, resp * w[:, None], 0.0, w, X.shape[1])


def categorical_em_stats(X, weights, log_probs, n_categories, sample_weight=None, *, n_threads=None,
                         block_size=None) -> CategoricalStats:
    """One fused EM pass of the categorical family (see :func:`linear_em_stats`)."""
    one_hot, has_observed = _one_hot(X, n_categories)
    log_prob = np.asarray(one_hot @ log_probs.reshape(log_probs.shape[0], -1).T)
    resp, w, loglik = _responsibilities(log_prob, weights, has_observed, sample_weight)
    return _categorical_stats(one_hot, resp * w[:, None], loglik, w, X.shape[1])


def _categorical_stats(one_hot, wr: np.ndarray, loglik: float, w: np.ndarray, n_features: int) -> CategoricalStats:
    counts = np.asarray(one_hot.T @ wr).T.reshape(wr.shape[1], n_features, -1)
    return CategoricalStats(wr.sum(axis=0), counts, loglik, float(w.sum()))
