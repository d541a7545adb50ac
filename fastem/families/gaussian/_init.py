"""Initial Gaussian mixture parameters, drawn exactly as scikit-learn 1.9 draws them.

With the same ``random_state`` the same random numbers are consumed in the same order
(``KMeans(n_clusters, n_init=1, random_state)`` labels for ``"kmeans"``,
``kmeans_plusplus`` for ``"k-means++"``, uniform responsibilities for ``"random"``,
``choice`` for ``"random_from_data"``), so fastem and scikit-learn start from the same
parameters. k-means and its seeding run on fastem's compiled kernels
(:mod:`fastem.cluster`), which give scikit-learn's labels except at rounding-level ties. The responsibilities are never held as an (N, K) array: hard
ones (labels) go to the backend's ``label_stats``, random ones are generated
``INIT_BLOCK_ROWS`` rows at a time and folded into sufficient statistics.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ... import gaussian, kernels
from ...cluster import fit_kmeans, kmeans_plusplus
from ..._threads import effective_n_threads
from ...data import initialisation_rows
from ...reference import data_shift
from ...suff_stats import SuffStats
from ._family import GaussianParams, params_from_covariances

#: rows of responsibilities generated at a time
INIT_BLOCK_ROWS = 65536


@dataclass(frozen=True)
class GaussianInit:
    """How to initialise: ``init_params`` and the validated, float64 user parameters
    (``None`` where not given); ``init_size``: initialise on a uniform sample of that many
    rows (None: all rows of an in-memory array, scikit-learn's behaviour);
    ``kmeans_backend``: the k-means kernels' backend (the estimator's ``backend`` as the
    user gave it: "auto" resolves for k-means, not by the Gaussian pass's table)."""

    n_components: int
    covariance_type: str
    reg_covar: float
    init_params: str
    weights_init: np.ndarray | None
    means_init: np.ndarray | None
    precisions_init: np.ndarray | None
    backend: str
    n_threads: int | None
    init_size: int | None = None
    kmeans_backend: str = "auto"

    def __call__(self, source, random_state: np.random.RandomState) -> GaussianParams:
        ct = self.covariance_type
        weights = means = covariances = None
        if self.weights_init is None or self.means_init is None or self.precisions_init is None:
            X, sample_weight = initialisation_rows(source, random_state, self.init_size)
            stats, labels = self.resp_stats(X, sample_weight, random_state)
            weights, means, covariances = gaussian.m_step(stats, self.reg_covar)
            # scikit-learn divides the initial nk by the number of samples (not by sum(nk))
            weights = (stats.nk + gaussian.NK_EPS) / stats.n
            if ct == "tied" and labels is not None and (labels < 0).any():
                covariances = _tied_over_all_rows(X, sample_weight, stats.nk + gaussian.NK_EPS, means, self.reg_covar)
        if self.weights_init is not None:
            weights = self.weights_init
        if self.means_init is not None:
            means = self.means_init
        if self.precisions_init is None:
            return params_from_covariances(weights, means, covariances, ct, self.reg_covar)
        precisions_cholesky = gaussian.precisions_cholesky_from_precisions(self.precisions_init, ct)
        covariances = gaussian.covariances_from_precisions_cholesky(precisions_cholesky, ct)
        return GaussianParams(weights, means, covariances, precisions_cholesky)

    def resp_stats(self, X: np.ndarray, sample_weight, random_state) -> tuple[SuffStats, np.ndarray | None]:
        """Sufficient statistics of the initial responsibilities of ``init_params``, and
        the initial labels (-1: in no component) when the responsibilities are hard."""
        if self.init_params == "random":
            def resp(rows: slice) -> np.ndarray:
                # drawn block by block: the same stream as one (N, K) draw; scikit-learn's
                # uniform(0, 1) is 0 + 1 * random_sample, the same numbers without the bounds' broadcast
                r = np.asarray(random_state.random_sample((rows.stop - rows.start, self.n_components)), dtype=X.dtype)
                r /= r.sum(axis=1)[:, np.newaxis]
                return r

            return self._random_stats(X, sample_weight, resp), None
        labels, means = self._labels(X, sample_weight, random_state)
        # moments around each component's own mean (known without a pass over X): no
        # cancellation when a component starts as a single point (its covariance is then
        # exactly reg_covar); tied: around the data mean
        ct = self.covariance_type
        shift = data_shift(X, sample_weight, ct, self.n_components) if ct == "tied" else means
        stats = kernels.get_backend(self.backend, ct).label_stats(
            X, labels, self.n_components, ct, sample_weight, np.ascontiguousarray(shift, dtype=np.float64),
            n_threads=effective_n_threads(self.n_threads), block_size=kernels.DEFAULT_BLOCK_SIZE)
        return stats, labels

    def _labels(self, X, sample_weight, random_state) -> tuple[np.ndarray, np.ndarray]:
        """(N,) component of each row (-1 for rows that start in no component) and the
        (K, D) float64 mean of each component's rows."""
        n_samples, n_components = X.shape[0], self.n_components
        options = {"backend": self.kmeans_backend, "n_threads": self.n_threads}
        if self.init_params == "kmeans":
            # scikit-learn's KMeans(n_clusters, n_init=1, random_state) with its defaults
            fit = fit_kmeans(X, n_components, sample_weight, random_state, max_iter=300, tol=1e-4,
                             compute_inertia=False, **options)
            return fit.labels, fit.label_means
        if self.init_params == "k-means++":
            # scikit-learn's kmeans_plusplus(X, n_clusters, random_state) does not centre X
            _, indices = kmeans_plusplus(X, np.zeros(X.shape[1], dtype=X.dtype), n_components, sample_weight,
                                         random_state, **options)
        else:  # random_from_data
            p = None if sample_weight is None else sample_weight / sample_weight.sum()
            indices = random_state.choice(n_samples, size=n_components, replace=False, p=p)
        labels = np.full(n_samples, -1, dtype=np.intp)
        labels[indices] = np.arange(n_components)
        return labels, X[indices].astype(np.float64)  # each component starts as one row

    def _random_stats(self, X, sample_weight, resp: Callable[[slice], np.ndarray]) -> SuffStats:
        """Statistics of the responsibilities ``resp(rows)`` summed over row blocks, around
        the data mean (all components start near it).

        X and sample_weight are validated and the responsibilities are made here, so the
        backend is called directly: the public wrapper would scan every block for
        non-finite values again."""
        ct = self.covariance_type
        module = kernels.get_backend(self.backend, ct)
        options = {"n_threads": effective_n_threads(self.n_threads), "block_size": kernels.DEFAULT_BLOCK_SIZE}
        shift = np.ascontiguousarray(data_shift(X, sample_weight, ct, self.n_components), dtype=np.float64)
        return sum(
            module.suff_stats(X[rows], np.ascontiguousarray(resp(rows), dtype=np.float64), ct,
                              None if sample_weight is None else sample_weight[rows], shift, **options)
            for rows in _blocks(X.shape[0])
        )


def _tied_over_all_rows(X, sample_weight, nk, means, reg_covar: float) -> np.ndarray:
    """scikit-learn's tied covariance ``(X.T @ X - nk * means.T @ means) / sum(nk)``.

    When the initial responsibilities cover only some rows (k-means++, random_from_data)
    this is not the pooled within-component covariance (``X.T @ X`` runs over all rows),
    but it is where scikit-learn starts from, so fastem starts there too.
    """
    raw = np.zeros((X.shape[1], X.shape[1]))
    for rows in _blocks(X.shape[0]):
        block = X[rows].astype(np.float64, copy=False)
        raw += block.T @ (block if sample_weight is None else block * sample_weight[rows, np.newaxis])
    covariance = (raw - (nk[:, np.newaxis] * means).T @ means) / nk.sum()
    covariance.flat[:: X.shape[1] + 1] += reg_covar
    return covariance


def _blocks(n_samples: int):
    return (slice(start, min(start + INIT_BLOCK_ROWS, n_samples)) for start in range(0, n_samples, INIT_BLOCK_ROWS))

