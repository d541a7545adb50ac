"""``fastem.BayesianGaussianMixture``: scikit-learn's variational Bayesian Gaussian
mixture, fitted on fastem's fused kernels."""
from __future__ import annotations

import numpy as np
from sklearn.base import _fit_context
from sklearn.mixture import _bayesian_mixture as sklearn_bayesian_mixture
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import kernels
from ..data import ArraySource
from ..em import run_em
from ..progress import as_callback
from .._threads import fit_blas_scope
from .._validation import check_n_threads
from ._base import FASTEM_PARAMETER_CONSTRAINTS, FastemMixture, record_fit
from ._dropin import ModuleFunctions, accelerated
from ..families.gaussian import GaussianFamily, GaussianInit
from ..families.gaussian._bayesian import VariationalGaussianFamily, data_moments
from ..families.gaussian._variational import (VariationalParams, VariationalPriors, expected_log_weights,
                                             log_density_offsets)


class BayesianGaussianMixture(FastemMixture, sklearn_bayesian_mixture.BayesianGaussianMixture):
    """Variational Bayesian Gaussian mixture: a subclass of
    :class:`sklearn.mixture.BayesianGaussianMixture` (same parameters, attributes, methods
    and private API, and given the same ``random_state`` the same fit to rounding in
    float64) whose public methods run on fastem's kernels where they can, each iteration
    one fused pass, and are scikit-learn's own otherwise (see :mod:`fastem.mixture._dropin`).

    Extras: ``fit`` and ``fit_predict`` take ``sample_weight`` (a weight of 2 is a
    duplicated row; the default mean and covariance priors are weighted too); float32
    data is not copied to float64; ``fit`` holds no (n_samples, n_components) array; ``X``
    in ``fit`` may be a :mod:`fastem.data` source (memmap, h5py/zarr, chunks, dask).

    Parameters
    ----------
    n_components, covariance_type, tol, reg_covar, max_iter, n_init, init_params,
    weight_concentration_prior_type, weight_concentration_prior, mean_precision_prior,
    mean_prior, degrees_of_freedom_prior, covariance_prior, random_state, warm_start,
    verbose, verbose_interval
        As in :class:`sklearn.mixture.BayesianGaussianMixture`.
    init_size, backend, n_jobs, callback
        As in :class:`fastem.GaussianMixture`.

    Attributes
    ----------
    As in scikit-learn (``weights_``, ``means_``, ``covariances_``, ``precisions_``,
    ``precisions_cholesky_``, ``weight_concentration_``, ``mean_precision_``,
    ``degrees_of_freedom_``, the ``*_prior_``, ``lower_bound_`` (a total over the samples),
    ``lower_bounds_``, ``n_iter_``, ``converged_``, ...); ``backend_``: the backend the fit ran on.
    """

    _parameter_constraints: dict = {
        **sklearn_bayesian_mixture.BayesianGaussianMixture._parameter_constraints,
        **FASTEM_PARAMETER_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        n_components=1,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weight_concentration_prior_type="dirichlet_process",
        weight_concentration_prior=None,
        mean_precision_prior=None,
        mean_prior=None,
        degrees_of_freedom_prior=None,
        covariance_prior=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        init_size=None,
        backend="auto",
        n_jobs=None,
        callback=None,
    ):
        super().__init__(
            n_components=n_components, covariance_type=covariance_type, tol=tol, reg_covar=reg_covar,
            max_iter=max_iter, n_init=n_init, init_params=init_params,
            weight_concentration_prior_type=weight_concentration_prior_type,
            weight_concentration_prior=weight_concentration_prior, mean_precision_prior=mean_precision_prior,
            mean_prior=mean_prior, degrees_of_freedom_prior=degrees_of_freedom_prior,
            covariance_prior=covariance_prior, random_state=random_state, warm_start=warm_start,
            verbose=verbose, verbose_interval=verbose_interval,
        )
        self.init_size = init_size
        self.backend = backend
        self.n_jobs = n_jobs
        self.callback = callback

    # --------------------------------------------------------------- drop-in

    #: scikit-learn methods that fastem's paths do not call: a subclass overriding one
    #: gets scikit-learn's public methods, which call it. Among them the prior checks that
    #: read X's values: fastem calls them on a stand-in of X's shape, then computes the
    #: data-dependent priors itself
    _bypassed_methods = ("_initialize_parameters", "_initialize", "_e_step", "_m_step", "_estimate_log_prob",
                         "_estimate_weighted_log_prob", "_estimate_log_weights", "_estimate_log_prob_resp",
                         "_compute_lower_bound", "_estimate_weights", "_estimate_means", "_estimate_precisions",
                         "_estimate_wishart_full", "_estimate_wishart_tied", "_estimate_wishart_diag",
                         "_estimate_wishart_spherical", "_check_means_parameters", "_checkcovariance_prior_parameter")
    #: scikit-learn functions fastem's kernels stand in for, as scikit-learn's Bayesian
    #: module sees them (replaced by a Mock, they must be called)
    _bypassed_functions = ModuleFunctions(sklearn_bayesian_mixture, (
        "_estimate_gaussian_parameters", "_compute_precision_cholesky", "_estimate_log_gaussian_prob",
        "_compute_log_det_cholesky", "_log_dirichlet_norm", "_log_wishart_norm"))

    # ------------------------------------------------------------------ fitting

    @_fit_context(prefer_skip_nested_validation=True)
    @accelerated
    def fit(self, X, y=None, sample_weight=None):
        """Estimate the posterior by variational EM (``n_init`` restarts, the largest
        bound kept). X: (n_samples, n_features), float32 kept, or a :mod:`fastem.data`
        source; sample_weight: (n_samples,) non-negative or None. Returns self."""
        self._fit(X, sample_weight)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    @accelerated
    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then the (n_samples,) component labels of X (as ``fit(X).predict(X)``)."""
        source = self._fit(X, sample_weight)
        return np.concatenate([self._weighted_log_prob(chunk).argmax(axis=1) for chunk, _ in source.iter_chunks()])

    def _fit(self, X, sample_weight):
        source = self._training_source(X, sample_weight)
        self.backend_ = kernels.resolve_backend_name(self.backend, self.covariance_type, source.n_samples,
                                                     source.n_features, self.n_components, source.dtype)
        n_threads = check_n_threads(self.n_jobs)
        priors, total_weight = self._check_priors(source, n_threads)
        init = GaussianInit(self.n_components, self.covariance_type, self.reg_covar, self.init_params,
                            None, None, None, self.backend_, n_threads, self.init_size, self.backend)
        family = VariationalGaussianFamily(
            GaussianFamily(self.covariance_type, self.reg_covar, self.backend_, n_threads, init),
            priors, init, total_weight)
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        start = None if do_init else (VariationalParams(*self._get_parameters()), self.lower_bound_)
        with fit_blas_scope(source.n_samples):  # BLAS pinned once for the whole fit
            result = run_em(family, source, tol=self.tol, max_iter=self.max_iter, n_init=self.n_init,
                            random_state=check_random_state(self.random_state), start=start, verbose=self.verbose,
                            verbose_interval=self.verbose_interval, callback=as_callback(self.callback))
        record_fit(self, result, source.dtype)
        return source

    def _set_fitted(self, params: VariationalParams, dtype) -> None:
        self._set_parameters(params)

    def _check_priors(self, source, n_threads) -> tuple[VariationalPriors, float]:
        """Set the ``*_prior_`` attributes; return them and the total sample weight (which
        an initialisation on a sample of a large source is scaled to).

        The given priors are checked by scikit-learn's own ``_check_parameters``, on a
        stand-in of X's shape (its checks of given priors read only the shape); the
        defaults that depend on the data (mean, covariance) come from one pass over it.
        """
        n_features = source.n_features
        self._check_parameters(np.zeros((2, n_features)))
        total_weight = float(source.n_samples)
        if self.mean_prior is None or self.covariance_prior is None or not isinstance(source, ArraySource):
            total_weight, mean, covariance = data_moments(source, self.covariance_type, self.backend_, n_threads)
            if self.mean_prior is None:
                self.mean_prior_ = mean
            if self.covariance_prior is None:
                self.covariance_prior_ = {"full": covariance, "tied": covariance, "diag": covariance,
                                          "spherical": np.mean(covariance)}[self.covariance_type]
        priors = VariationalPriors(
            self.weight_concentration_prior_type, float(self.weight_concentration_prior_),
            float(self.mean_precision_prior_), np.asarray(self.mean_prior_, dtype=np.float64),
            float(self.degrees_of_freedom_prior_),
            np.asarray(self.covariance_prior_, dtype=np.float64) if self.covariance_type != "spherical"
            else float(self.covariance_prior_),
        )
        return priors, total_weight

    # --------------------------------------------------------------- prediction

    def _weighted_log_prob(self, X) -> np.ndarray:
        """(N, K) float64 ``E[log weight_k] + E[log N(x | k)]`` (scikit-learn's
        ``_estimate_weighted_log_prob``, from the same attributes) on fastem's kernel; X
        already validated."""
        log_prob = kernels.gaussian_log_prob(X, self.means_, self.precisions_cholesky_, self.covariance_type,
                                             backend=self.backend, n_threads=self.n_jobs)
        log_prob += log_density_offsets(self.degrees_of_freedom_, self.mean_precision_, X.shape[1])
        log_prob += expected_log_weights(self.weight_concentration_, self.weight_concentration_prior_type)
        return log_prob

    def _checked_weighted_log_prob(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self._weighted_log_prob(validate_data(self, X, reset=False))

    @accelerated
    def score_samples(self, X) -> np.ndarray:
        """(n_samples,) float64 log-likelihood of each sample."""
        return self._score_samples(X)

    def _score_samples(self, X) -> np.ndarray:
        return kernels.logsumexp(self._checked_weighted_log_prob(X), axis=1)

    @accelerated
    def score(self, X, y=None) -> float:
        """Average log-likelihood per sample."""
        return float(np.mean(self._score_samples(X)))

    @accelerated
    def predict(self, X) -> np.ndarray:
        """(n_samples,) most probable component of each sample."""
        return self._checked_weighted_log_prob(X).argmax(axis=1)

    @accelerated
    def predict_proba(self, X) -> np.ndarray:
        """(n_samples, n_components) float64 posterior probability of each component."""
        weighted = self._checked_weighted_log_prob(X)
        weighted -= kernels.logsumexp(weighted, axis=1)[:, np.newaxis]
        return np.exp(weighted)
