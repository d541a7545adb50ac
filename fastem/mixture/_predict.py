"""The estimator methods every mixture shares, written against one hook:
``_weighted_log_prob(X)`` ((n, K) float64 ``log weights_k + log p(x | k)`` of validated
rows), with ``_validate_predict_data(X)``, ``_n_parameters()`` and ``_output_dtype(X)``.
Predictions on out-of-core data (memmaps, h5py/zarr, dask, chunk iterators, fastem data
sources) run chunk by chunk."""
from __future__ import annotations

import math

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .. import kernels
from .._validation import check_sample_weight
from ._base import fitted_source, in_memory


class MixturePredictions:
    """score_samples, score, predict, predict_proba, iter_predict, bic, aic."""

    #: whether X may hold NaN (missing values, marginalised out)
    _allow_nan = False

    def _chunks_weighted_log_prob(self, X):
        """Yield ``(weighted log-probs (n, K) float64, sample_weight or None)`` for X in
        one piece (arrays) or chunk by chunk (out-of-core sources)."""
        check_is_fitted(self)
        if in_memory(X):
            yield self._weighted_log_prob(self._validate_predict_data(X)), None
            return
        for chunk, chunk_weight in fitted_source(self, X, allow_nan=self._allow_nan).iter_chunks():
            yield self._weighted_log_prob(chunk), chunk_weight

    def score_samples(self, X) -> np.ndarray:
        """(n_samples,) log-likelihood of each sample."""
        return self._score_samples(X)

    def _score_samples(self, X) -> np.ndarray:
        # what the public methods call (a drop-in estimator decorates the public ones)
        return np.concatenate([kernels.logsumexp(weighted, axis=1) for weighted, _ in self._chunks_weighted_log_prob(X)]
                              ).astype(self._output_dtype(X), copy=False)

    def score(self, X, y=None, sample_weight=None) -> float:
        """Average log-likelihood per sample (weighted by ``sample_weight``, or by the
        weights a data source carries), computed chunk by chunk for out-of-core X."""
        if sample_weight is not None or in_memory(X):
            log_prob = self._score_samples(X)  # the mean of score_samples, to the bit as scikit-learn's
            weights = None if sample_weight is None else check_sample_weight(sample_weight, log_prob.shape[0])
            return float(np.average(log_prob, weights=weights))
        total = weight = 0.0
        for weighted, chunk_weight in self._chunks_weighted_log_prob(X):
            log_prob = kernels.logsumexp(weighted, axis=1)
            if chunk_weight is None:
                total, weight = total + log_prob.sum(), weight + log_prob.shape[0]
            else:
                total, weight = total + chunk_weight @ log_prob, weight + chunk_weight.sum()
        return float(total / weight)

    def iter_predict(self, X):
        """Stream the component labels of X chunk by chunk (int64 arrays), for data that
        do not fit in memory; ``np.concatenate(list(...)) == predict(X)``."""
        for weighted, _ in self._chunks_weighted_log_prob(X):
            yield weighted.argmax(axis=1)

    def predict(self, X) -> np.ndarray:
        """(n_samples,) most probable component of each sample."""
        return np.concatenate(list(self.iter_predict(X)))

    def predict_proba(self, X) -> np.ndarray:
        """(n_samples, n_components) posterior probability of each component."""
        out = []
        for weighted, _ in self._chunks_weighted_log_prob(X):
            weighted -= kernels.logsumexp(weighted, axis=1)[:, np.newaxis]
            out.append(np.exp(weighted))
        return np.concatenate(out).astype(self._output_dtype(X), copy=False)

    def bic(self, X) -> float:
        """Bayesian information criterion on X (lower is better)."""
        log_prob = self._score_samples(X)
        return -2 * log_prob.mean() * log_prob.shape[0] + self._n_parameters() * math.log(log_prob.shape[0])

    def aic(self, X) -> float:
        """Akaike information criterion on X (lower is better)."""
        log_prob = self._score_samples(X)
        return -2 * log_prob.mean() * log_prob.shape[0] + 2 * self._n_parameters()
