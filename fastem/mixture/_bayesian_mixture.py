"""``fastem.BayesianGaussianMixture``: scikit-learn's variational Bayesian Gaussian
mixture, fitted on fastem's fused kernels."""
from __future__ import annotations

import logging
from numbers import Integral

import numpy as np
from scipy.sparse import issparse
from sklearn.base import _fit_context
from sklearn.mixture import BayesianGaussianMixture as _SklearnBayesianGaussianMixture
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions

from .. import kernels
from ..data import ArraySource
from ..em import run_em
from ..progress import as_callback
from .._validation import check_n_threads
from ._bayesian_family import VariationalGaussianFamily, data_moments
from ._family import GaussianFamily
from ._gaussian_mixture import GaussianMixture
from ._init import GaussianInit
from ._variational import VariationalParams, VariationalPriors, log_density_offsets

logger = logging.getLogger("fastem")


class BayesianGaussianMixture(_SklearnBayesianGaussianMixture):
    """Variational Bayesian Gaussian mixture: :class:`sklearn.mixture.BayesianGaussianMixture`
    (same parameters, attributes and methods, and given the same ``random_state`` the same
    fit to rounding in float64) with each iteration one fused pass of fastem's kernels.

    Differences: ``fit`` and ``fit_predict`` take ``sample_weight`` (a weight of 2 is a
    duplicated row; the default mean and covariance priors are weighted too); float32
    data is not copied to float64; ``fit`` holds no (n_samples, n_components) array; ``X``
    in ``fit`` may be a :mod:`fastem.data` source (memmap, h5py/zarr, chunks, dask).
    Sparse input goes to scikit-learn's own methods (logged on the ``"fastem"`` logger).

    Parameters
    ----------
    n_components, covariance_type, tol, reg_covar, max_iter, n_init, init_params,
    weight_concentration_prior_type, weight_concentration_prior, mean_precision_prior,
    mean_prior, degrees_of_freedom_prior, covariance_prior, random_state, warm_start,
    verbose, verbose_interval
        As in :class:`sklearn.mixture.BayesianGaussianMixture`.
    backend, n_jobs, callback
        As in :class:`fastem.GaussianMixture`.

    Attributes
    ----------
    As in scikit-learn (``weights_``, ``means_``, ``covariances_``, ``precisions_``,
    ``precisions_cholesky_``, ``weight_concentration_``, ``mean_precision_``,
    ``degrees_of_freedom_``, the ``*_prior_``, ``lower_bound_`` (a total over the samples),
    ``lower_bounds_``, ``n_iter_``, ``converged_``, ...); ``backend_``: the backend the fit ran on.
    """

    _parameter_constraints: dict = {
        **_SklearnBayesianGaussianMixture._parameter_constraints,
        "backend": [str],
        "n_jobs": [Integral, None],
        "callback": [callable, StrOptions({"tqdm"}), None],
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
        self.backend = backend
        self.n_jobs = n_jobs
        self.callback = callback

    # ------------------------------------------------------- fastem or scikit-learn

    def _fastem_supports(self, X) -> bool:
        """Whether fastem fits X; otherwise scikit-learn's own method runs (logged).
        The one place that decides, so that the shared drop-in machinery can replace it."""
        if issparse(X):
            logger.info("fastem.BayesianGaussianMixture: sparse input is not supported, using scikit-learn")
            return False
        return True

    @staticmethod
    def _no_sample_weight_in_sklearn(sample_weight) -> None:
        if sample_weight is not None:
            raise ValueError("sample_weight needs fastem's fit, which does not support this input "
                             "(scikit-learn's BayesianGaussianMixture takes no sample_weight)")

    # ------------------------------------------------------------------ fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Estimate the posterior by variational EM (``n_init`` restarts, the largest
        bound kept). X: (n_samples, n_features), float32 kept, or a :mod:`fastem.data`
        source; sample_weight: (n_samples,) non-negative or None. Returns self."""
        if not self._fastem_supports(X):
            self._no_sample_weight_in_sklearn(sample_weight)
            super().fit_predict(X, y)  # what scikit-learn's fit runs, without asking again
            return self
        self._fit(X, sample_weight)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then the (n_samples,) component labels of X (as ``fit(X).predict(X)``)."""
        if not self._fastem_supports(X):
            self._no_sample_weight_in_sklearn(sample_weight)
            return super().fit_predict(X, y)
        source = self._fit(X, sample_weight)
        return np.concatenate([self._estimate_weighted_log_prob(chunk).argmax(axis=1)
                               for chunk, _ in source.iter_chunks()])

    def _fit(self, X, sample_weight):
        # the training data's validation is GaussianMixture's (n_features_in_, n_components checks)
        source = GaussianMixture._training_source(self, X, sample_weight)
        self.backend_ = kernels.resolve_backend_name(self.backend, self.covariance_type)
        n_threads = check_n_threads(self.n_jobs)
        priors, total_weight = self._check_priors(source, n_threads)
        init = GaussianInit(self.n_components, self.covariance_type, self.reg_covar, self.init_params,
                            None, None, None, self.backend_, n_threads)
        family = VariationalGaussianFamily(
            GaussianFamily(self.covariance_type, self.reg_covar, self.backend_, n_threads, init),
            priors, init, total_weight)
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        start = None if do_init else (VariationalParams(*self._get_parameters()), self.lower_bound_)
        result = run_em(family, source, tol=self.tol, max_iter=self.max_iter, n_init=self.n_init,
                        random_state=check_random_state(self.random_state), start=start, verbose=self.verbose,
                        verbose_interval=self.verbose_interval, callback=as_callback(self.callback))
        self._set_parameters(result.params)
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.lower_bound_ = result.lower_bound
        self.lower_bounds_ = result.lower_bounds
        return source

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

    def _estimate_log_prob(self, X, xp=None) -> np.ndarray:
        """(N, K) float64 expected log-density of each component (scikit-learn's, on
        fastem's kernel); every prediction method inherited from scikit-learn uses it."""
        log_prob = kernels.gaussian_log_prob(X, self.means_, self.precisions_cholesky_, self.covariance_type,
                                             backend=self.backend, n_threads=self.n_jobs)
        log_prob += log_density_offsets(self.degrees_of_freedom_, self.mean_precision_, X.shape[1])
        return log_prob
