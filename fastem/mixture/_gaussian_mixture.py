"""``fastem.GaussianMixture``: scikit-learn's ``GaussianMixture`` on fastem's kernels."""
from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, DensityMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import gaussian, kernels
from ..data import as_source
from ..em import run_em
from ..online import StepwiseEM
from ..progress import as_callback
from ..suff_stats import COVARIANCE_TYPES, sum_xx_shape
from .._validation import check_n_threads, check_sample_weight
from ._family import GaussianFamily, GaussianParams
from ._init import GaussianInit


class GaussianMixture(DensityMixin, BaseEstimator):
    """Gaussian mixture fitted by EM: a drop-in replacement for
    :class:`sklearn.mixture.GaussianMixture` (same parameters, attributes, methods and,
    given the same ``random_state``, the same fit to rounding in float64).

    Differences: ``fit``, ``fit_predict`` and ``score`` take ``sample_weight`` (a weight of
    2 is a duplicated row); float32 data is not copied to float64; ``fit`` holds no
    (n_samples, n_components) array (on a compiled backend: the numpy reference builds one
    per pass); ``X`` in ``fit`` may also be a :mod:`fastem.data` source (memmap, dask, chunks).

    Parameters
    ----------
    n_components, covariance_type, tol, reg_covar, max_iter, n_init, init_params,
    weights_init, means_init, precisions_init, random_state, warm_start, verbose,
    verbose_interval
        As in :class:`sklearn.mixture.GaussianMixture`.
    backend : {"auto", "cython", "numba", "numpy"}, default="auto"
        Kernel backend; ``"auto"`` takes the fastest available (resolved once per fit).
    n_jobs : int, default=None
        Threads of the compiled kernels: None all CPUs, -1 all, -2 all but one.
    callback : callable, "tqdm" or None, default=None
        Called after every EM iteration with a :class:`fastem.em.IterationInfo` (restart,
        iteration, lower bound, change, converged); ``"tqdm"`` draws a progress bar.

    Attributes
    ----------
    weights_ (K,), means_ (K, D), covariances_, precisions_, precisions_cholesky_ (shapes
    by covariance_type), converged_, n_iter_, lower_bound_, lower_bounds_, n_features_in_,
    feature_names_in_: as in scikit-learn; ``backend_``: the backend the fit ran on.
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "covariance_type": [StrOptions(set(COVARIANCE_TYPES))],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [StrOptions({"kmeans", "random", "random_from_data", "k-means++"})],
        "weights_init": ["array-like", None],
        "means_init": ["array-like", None],
        "precisions_init": ["array-like", None],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
        "backend": [str],
        "n_jobs": [Integral, None],
        "callback": [callable, StrOptions({"tqdm"}), None],
    }

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        backend="auto",
        n_jobs=None,
        callback=None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.backend = backend
        self.n_jobs = n_jobs
        self.callback = callback

    # ------------------------------------------------------------------ fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Estimate the parameters by EM (``n_init`` restarts, the best kept).

        X : (n_samples, n_features) array-like, float32 kept float32, or a
        :mod:`fastem.data` source. sample_weight : (n_samples,) non-negative, or None.
        Returns self.
        """
        self._fit(X, sample_weight)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then the (n_samples,) component labels of X (as ``fit(X).predict(X)``)."""
        source = self._fit(X, sample_weight)
        return np.concatenate([self._weighted_log_prob(chunk).argmax(axis=1) for chunk, _ in source.iter_chunks()])

    def _fit(self, X, sample_weight, max_iter: int | None = None):
        source = self._training_source(X, sample_weight)
        self.backend_ = kernels.resolve_backend_name(self.backend, self.covariance_type)
        n_threads = check_n_threads(self.n_jobs)
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        init = GaussianInit(self.n_components, self.covariance_type, self.reg_covar, self.init_params,
                            *self._checked_initial_parameters(source.n_features), self.backend_, n_threads)
        family = GaussianFamily(self.covariance_type, self.reg_covar, self.backend_, n_threads, init)
        start = None if do_init else (self._fitted_params(), self.lower_bound_)
        max_iter = self.max_iter if max_iter is None else max_iter
        result = run_em(family, source, tol=self.tol, max_iter=max_iter, n_init=self.n_init,
                        random_state=check_random_state(self.random_state), start=start, verbose=self.verbose,
                        verbose_interval=self.verbose_interval, callback=as_callback(self.callback))
        self._set_fitted(result.params)
        self._online = None
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.lower_bound_ = result.lower_bound
        self.lower_bounds_ = result.lower_bounds
        return source

    def _training_source(self, X, sample_weight):
        """The data source of the training data; sets ``n_features_in_`` (and
        ``feature_names_in_``); checks there are enough samples for n_components."""
        if _in_memory(X):
            X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2, ensure_all_finite=False)
            source = as_source(X, sample_weight)
        else:  # memmaps, out-of-core and dask arrays, chunk iterators, fastem data sources
            source = as_source(X, sample_weight, min_samples=2)
            self.n_features_in_ = source.n_features
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        n_samples = source.n_samples
        if n_samples < self.n_components:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = {self.n_components}, "
                f"n_samples = {n_samples}"
            )
        weights = getattr(source, "sample_weight", None)
        if weights is not None and np.count_nonzero(weights) < self.n_components:
            raise ValueError(
                f"sample_weight has {np.count_nonzero(weights)} non-zero entries, fewer than "
                f"n_components = {self.n_components}"
            )
        return source

    def _minibatch_source(self, X, sample_weight):
        """The data source of a minibatch for a model that already has parameters."""
        if _in_memory(X):
            return as_source(validate_data(self, X, dtype=[np.float64, np.float32], reset=False, ensure_all_finite=False),
                             sample_weight)
        source = as_source(X, sample_weight)
        if source.n_features != self.n_features_in_:
            raise ValueError(
                f"X has {source.n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return source

    def _checked_initial_parameters(self, n_features: int) -> tuple:
        """weights_init, means_init, precisions_init validated as float64 (or None)."""
        K, ct = self.n_components, self.covariance_type
        weights = means = precisions = None
        if self.weights_init is not None:
            weights = _as_shape(self.weights_init, (K,), "weights")
            if (weights < 0).any() or (weights > 1).any():
                raise ValueError(
                    "The parameter 'weights' should be in the range [0, 1], but got max value "
                    f"{weights.max():.5f}, min value {weights.min():.5f}"
                )
            if not abs(1.0 - weights.sum()) <= 1e-8:
                raise ValueError(f"The parameter 'weights' should be normalized, but got sum(weights) = {weights.sum():.5f}")
        if self.means_init is not None:
            means = _as_shape(self.means_init, (K, n_features), "means")
        if self.precisions_init is not None:
            precisions = _as_shape(self.precisions_init, sum_xx_shape(ct, K, n_features), f"{ct} precision")
            if ct in ("full", "tied"):
                for p in precisions.reshape(-1, n_features, n_features):
                    if not (np.allclose(p, p.T) and (np.linalg.eigvalsh(p) > 0).all()):
                        raise ValueError(f"'{ct} precision' should be symmetric, positive-definite")
            elif (precisions <= 0).any():
                raise ValueError(f"'{ct} precision' should be positive")
        return weights, means, precisions

    def _fitted_params(self) -> GaussianParams:
        return GaussianParams(self.weights_, self.means_, self.covariances_, self.precisions_cholesky_)

    def _set_fitted(self, params: GaussianParams) -> None:
        self.weights_, self.means_, self.covariances_, self.precisions_cholesky_ = params
        self.precisions_ = gaussian.precisions_from_precisions_cholesky(self.precisions_cholesky_, self.covariance_type)

    # --------------------------------------------------------------- prediction

    def _weighted_log_prob(self, X) -> np.ndarray:
        """(N, K) float64 ``log weights_k + log N(x | k)``; X already validated. The backend
        is resolved again (a model fitted with a compiled backend predicts without it)."""
        log_prob = kernels.gaussian_log_prob(X, self.means_, self.precisions_cholesky_, self.covariance_type,
                                             backend=self.backend, n_threads=self.n_jobs)
        with np.errstate(divide="ignore"):  # a zero weight gives -inf
            log_prob += np.log(self.weights_)
        return log_prob

    def _chunks_weighted_log_prob(self, X):
        """Yield ``(weighted log-probs (n, K) float64, sample_weight or None)`` for X in
        one piece (arrays) or chunk by chunk (memmaps, h5py/zarr, dask, chunk iterators)."""
        check_is_fitted(self)
        if _in_memory(X):
            yield self._weighted_log_prob(validate_data(self, X, reset=False, ensure_all_finite=False)), None
            return
        source = as_source(X)
        if source.n_features != self.n_features_in_:
            raise ValueError(
                f"X has {source.n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        for chunk, chunk_weight in source.iter_chunks():
            yield self._weighted_log_prob(chunk), chunk_weight

    def score_samples(self, X) -> np.ndarray:
        """(n_samples,) float64 log-likelihood of each sample."""
        return np.concatenate([kernels.logsumexp(weighted, axis=1)
                               for weighted, _ in self._chunks_weighted_log_prob(X)])

    def score(self, X, y=None, sample_weight=None) -> float:
        """Average log-likelihood per sample (weighted by ``sample_weight``, or by the
        weights a data source carries), computed chunk by chunk for out-of-core X."""
        if sample_weight is not None:
            log_prob = self.score_samples(X)
            return float(np.average(log_prob, weights=check_sample_weight(sample_weight, log_prob.shape[0])))
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
        """(n_samples, n_components) float64 posterior probability of each component."""
        out = []
        for weighted, _ in self._chunks_weighted_log_prob(X):
            weighted -= kernels.logsumexp(weighted, axis=1)[:, np.newaxis]
            out.append(np.exp(weighted))
        return np.concatenate(out)

    # ------------------------------------------------------------ online EM

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, sample_weight=None):
        """One step of stepwise (online) EM on the minibatch X, for streams seen once.

        Cappé & Moulines (2009): running sufficient statistics per unit weight
        ``s <- (1 - gamma_t) s + gamma_t s_batch``, then the M-step, with step sizes
        ``gamma_t = (t + 2) ** -0.6`` (see :class:`fastem.online.StepwiseEM` for other
        schedules). The first call on an unfitted model initialises on this minibatch
        (``init_params`` / ``*_init`` as in ``fit``); after ``fit`` it continues from the
        fitted parameters. ``lower_bound_`` is the minibatch's average log-likelihood under
        the parameters before its step (a progressive validation score); ``n_iter_``
        counts steps. Shuffle the stream: batches must be representative.
        """
        online = getattr(self, "_online", None)
        source = None
        if online is None:
            if not hasattr(self, "means_"):
                source = self._fit(X, sample_weight, max_iter=0)  # initialise on this minibatch
            online = StepwiseEM(self.weights_ / self.weights_.sum(), self.means_, self.covariances_,
                                self.covariance_type, reg_covar=self.reg_covar, backend=self.backend_,
                                n_threads=check_n_threads(self.n_jobs))
        if source is None:
            source = self._minibatch_source(X, sample_weight)
        online.partial_fit(source)
        self._online = online
        self._set_fitted(GaussianParams(online.weights, online.means, online.covariances, online.precisions_cholesky))
        self.n_iter_ = online.n_steps
        self.lower_bound_ = online.loglik
        self.lower_bounds_ = [*getattr(self, "lower_bounds_", []), online.loglik]
        self.converged_ = False
        return self

    def sample(self, n_samples=1):
        """``X`` (n_samples, n_features) float64 drawn from the fitted mixture and ``y``
        (n_samples,) int64 their components (scikit-learn's draws for the same random_state)."""
        check_is_fitted(self)
        if n_samples < 1:
            raise ValueError(f"Invalid value for 'n_samples': {n_samples} . The sampling requires at least one sample.")
        n_features = self.means_.shape[1]
        rng = check_random_state(self.random_state)
        n_samples_comp = rng.multinomial(n_samples, self.weights_)
        if self.covariance_type == "full":
            X = np.vstack([rng.multivariate_normal(mean, cov, int(n))
                           for mean, cov, n in zip(self.means_, self.covariances_, n_samples_comp)])
        elif self.covariance_type == "tied":
            X = np.vstack([rng.multivariate_normal(mean, self.covariances_, int(n))
                           for mean, n in zip(self.means_, n_samples_comp)])
        else:
            X = np.vstack([mean + rng.standard_normal(size=(n, n_features)) * np.sqrt(cov)
                           for mean, cov, n in zip(self.means_, self.covariances_, n_samples_comp)])
        y = np.concatenate([np.full(int(n), k, dtype=np.int64) for k, n in enumerate(n_samples_comp)])
        return X.astype(np.float64, copy=False), y

    # ---------------------------------------------------------- model selection

    def _n_parameters(self) -> int:
        """Free parameters of the model."""
        n_features = self.means_.shape[1]
        cov_params = {
            "full": self.n_components * n_features * (n_features + 1) / 2.0,
            "diag": self.n_components * n_features,
            "tied": n_features * (n_features + 1) / 2.0,
            "spherical": self.n_components,
        }[self.covariance_type]
        return int(cov_params + n_features * self.n_components + self.n_components - 1)

    def bic(self, X) -> float:
        """Bayesian information criterion on X (lower is better)."""
        log_prob = self.score_samples(X)
        return -2 * log_prob.mean() * log_prob.shape[0] + self._n_parameters() * math.log(log_prob.shape[0])

    def aic(self, X) -> float:
        """Akaike information criterion on X (lower is better)."""
        log_prob = self.score_samples(X)
        return -2 * log_prob.mean() * log_prob.shape[0] + 2 * self._n_parameters()


def _in_memory(X) -> bool:
    """Inputs scikit-learn's validation takes as they are: arrays (not memmaps), lists,
    data frames, sparse matrices; everything else goes to :func:`fastem.data.as_source`."""
    return (
        (isinstance(X, np.ndarray) and not isinstance(X, np.memmap))
        or isinstance(X, (list, tuple))
        or hasattr(X, "__dataframe__")
        or issparse(X)
    )


def _as_shape(a, shape: tuple, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.shape != shape:
        raise ValueError(f"The parameter '{name}' should have the shape of {shape}, but got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"The parameter '{name}' contains NaN or infinity")
    return a
