"""``fastem.GaussianMixture``: scikit-learn's ``GaussianMixture`` on fastem's kernels."""
from __future__ import annotations


import numpy as np
from sklearn.base import _fit_context
from sklearn.mixture import _gaussian_mixture as sklearn_gaussian_mixture
from sklearn.utils.validation import validate_data

from .. import kernels
from ..data import as_source
from ..em import run_em
from ..progress import as_callback
from .._threads import effective_n_threads, fit_blas_scope
from .._validation import check_n_threads
from ._base import FASTEM_PARAMETER_CONSTRAINTS, FastemMixture, fitted_source, record_fit, record_online_step
from ._base import in_memory as _in_memory
from ._dropin import ModuleFunctions, accelerated
from ._predict import MixturePredictions
from ..families.gaussian import GaussianFamily, GaussianInit, GaussianParams, StepwiseEM
from ._validate import FastValidation


class GaussianMixture(FastValidation, FastemMixture, sklearn_gaussian_mixture.GaussianMixture):
    """Gaussian mixture fitted by EM: a subclass of :class:`sklearn.mixture.GaussianMixture`
    (same parameters, attributes, methods and private API) whose public methods run on
    fastem's kernels where they can, and are scikit-learn's own otherwise (see
    :mod:`fastem.mixture._dropin`). Given the same ``random_state`` the fit agrees with
    scikit-learn's to rounding in float64.

    Extras: ``fit``, ``fit_predict`` and ``score`` take ``sample_weight`` (a weight of
    2 is a duplicated row); float32 data is not copied to float64 (it is computed in
    float64, except in the Cython kernels' float32 blocks where the model's rounding
    bound allows them: covariances within 5e-6 relative, see README; the fitted
    parameters are stored in float32, as scikit-learn's);
    ``fit`` holds no (n_samples, n_components) array (on a compiled backend: the numpy
    reference builds one per pass); ``X`` in ``fit`` may also be a :mod:`fastem.data`
    source (memmap, dask, chunks); ``partial_fit``, ``iter_predict``.

    Parameters
    ----------
    n_components, covariance_type, tol, reg_covar, max_iter, n_init, init_params,
    weights_init, means_init, precisions_init, random_state, warm_start, verbose,
    verbose_interval
        As in :class:`sklearn.mixture.GaussianMixture`. ``init_params="kmeans"`` and
        ``"k-means++"`` run on fastem's compiled k-means (:mod:`fastem.cluster`), with
        scikit-learn's draws and stopping rule, so the same labels.
    init_size : int or None, default=None
        Initialise on a uniform sample of this many rows (for huge in-memory X: the
        initialisation then costs less than a pass). None: every row of an in-memory X
        (scikit-learn's behaviour) and 100 000 rows of any other source. A sample draws
        other random numbers, so the fit is no longer scikit-learn's.
    backend : {"auto", "cython", "numba", "numpy"}, default="auto"
        Kernel backend; ``"auto"`` takes the fastest available (resolved once per fit;
        the numpy reference for tiny problems when only Numba is compiled, whose pass
        costs more to set up than to run there: ``fastem.kernels.AUTO_REFERENCE_BELOW``).
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
        **sklearn_gaussian_mixture.GaussianMixture._parameter_constraints,
        **FASTEM_PARAMETER_CONSTRAINTS,
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
        init_size=None,
        backend="auto",
        n_jobs=None,
        callback=None,
    ):
        super().__init__(
            n_components, covariance_type=covariance_type, tol=tol, reg_covar=reg_covar, max_iter=max_iter,
            n_init=n_init, init_params=init_params, weights_init=weights_init, means_init=means_init,
            precisions_init=precisions_init, random_state=random_state, warm_start=warm_start, verbose=verbose,
            verbose_interval=verbose_interval,
        )
        self.init_size = init_size
        self.backend = backend
        self.n_jobs = n_jobs
        self.callback = callback

    # --------------------------------------------------------------- drop-in

    #: scikit-learn methods that fastem's paths do not call: a subclass overriding one
    #: gets scikit-learn's public methods, which call it (``_get_parameters`` and
    #: ``_set_parameters`` fastem calls itself)
    _bypassed_methods = ("_initialize_parameters", "_initialize", "_e_step", "_m_step", "_estimate_log_prob",
                         "_estimate_weighted_log_prob", "_estimate_log_weights", "_estimate_log_prob_resp",
                         "_compute_lower_bound")
    #: scikit-learn functions fastem's kernels stand in for (replaced by a Mock, they must be called)
    _bypassed_functions = ModuleFunctions(sklearn_gaussian_mixture, (
        "_estimate_gaussian_parameters", "_compute_precision_cholesky", "_compute_precision_cholesky_from_precisions",
        "_estimate_log_gaussian_prob"))

    # ------------------------------------------------------------------ fitting

    @_fit_context(prefer_skip_nested_validation=True)
    @accelerated
    def fit(self, X, y=None, sample_weight=None):
        """Estimate the parameters by EM (``n_init`` restarts, the best kept).

        X : (n_samples, n_features) array-like, float32 kept float32, or a
        :mod:`fastem.data` source. sample_weight : (n_samples,) non-negative, or None.
        Returns self.
        """
        self._fit(X, sample_weight)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    @accelerated
    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then the (n_samples,) component labels of X (as ``fit(X).predict(X)``)."""
        source = self._fit(X, sample_weight)
        return np.concatenate([self._weighted_log_prob(chunk).argmax(axis=1) for chunk, _ in source.iter_chunks()])

    def _fit(self, X, sample_weight, max_iter: int | None = None):
        source = self._training_source(X, sample_weight)
        self.backend_ = kernels.resolve_backend_name(self.backend, self.covariance_type, source.n_samples,
                                                     source.n_features, self.n_components, source.dtype)
        n_threads = effective_n_threads(check_n_threads(self.n_jobs))  # once: the CPU affinity query is not free
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        init = GaussianInit(self.n_components, self.covariance_type, self.reg_covar, self.init_params,
                            *self._checked_initial_parameters(source), self.backend_, n_threads, self.init_size,
                            self.backend)
        family = GaussianFamily(self.covariance_type, self.reg_covar, self.backend_, n_threads, init)
        start = None if do_init else (self._fitted_params(), self.lower_bound_)
        max_iter = self.max_iter if max_iter is None else max_iter
        # BLAS pinned once for the whole fit, not per kernel call (see fit_blas_scope)
        with fit_blas_scope(source.n_samples):
            result = run_em(family, source, tol=self.tol, max_iter=max_iter, n_init=self.n_init,
                            random_state=self.random_state, start=start, verbose=self.verbose,
                            verbose_interval=self.verbose_interval, callback=as_callback(self.callback))
        record_fit(self, result, source.dtype)
        return source

    def _minibatch_source(self, X, sample_weight):
        """The data source of a minibatch for a model that already has parameters."""
        if _in_memory(X):
            return as_source(validate_data(self, X, dtype=[np.float64, np.float32], reset=False),
                             sample_weight)
        return fitted_source(self, X, sample_weight)

    def _checked_initial_parameters(self, source) -> tuple:
        """weights_init, means_init, precisions_init as float64 (or None), after
        scikit-learn's own checks (``_check_parameters``, which reads only X's width,
        so an empty array stands in for every kind of source)."""
        self._check_parameters(np.empty((0, source.n_features)), xp=np)
        return tuple(None if p is None else np.asarray(p, dtype=np.float64)
                     for p in (self.weights_init, self.means_init, self.precisions_init))

    def _fitted_params(self) -> GaussianParams:
        return GaussianParams(*(np.asarray(p, dtype=np.float64) for p in self._get_parameters()))

    def _set_fitted(self, params: GaussianParams, dtype) -> None:
        """Store the parameters (computed in float64) in the data's dtype, as scikit-learn
        stores them."""
        self._set_parameters(tuple(np.asarray(p, dtype=dtype) for p in params))

    # --------------------------------------------------------------- prediction

    def _weighted_log_prob(self, X) -> np.ndarray:
        """(N, K) float64 ``log weights_k + log N(x | k)``; X already validated. The backend
        is resolved again (a model fitted with a compiled backend predicts without it)."""
        log_prob = kernels.gaussian_log_prob(X, self.means_, self.precisions_cholesky_, self.covariance_type,
                                             backend=self.backend, n_threads=self.n_jobs)
        with np.errstate(divide="ignore"):  # a zero weight gives -inf
            log_prob += np.log(np.asarray(self.weights_, dtype=np.float64))
        return log_prob

    def _output_dtype(self, X):
        """scikit-learn's dtype for scores and probabilities: that of X and the parameters
        together (float32 only when both are); fastem computes them in float64."""
        return np.result_type(np.asarray(X).dtype if _in_memory(X) else np.float64, self.means_.dtype, np.float32)

    # the shared prediction methods (MixturePredictions), each a drop-in method here
    _allow_nan = False

    def _validate_predict_data(self, X) -> np.ndarray:
        return validate_data(self, X, reset=False)

    score_samples = accelerated(MixturePredictions.score_samples)
    _score_samples = MixturePredictions._score_samples
    _chunks_weighted_log_prob = MixturePredictions._chunks_weighted_log_prob
    score = accelerated(MixturePredictions.score)
    iter_predict = MixturePredictions.iter_predict
    predict = accelerated(MixturePredictions.predict)
    predict_proba = accelerated(MixturePredictions.predict_proba)

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
        record_online_step(self, online, source.dtype)
        return self

    # ---------------------------------------------------------- model selection

    bic = accelerated(MixturePredictions.bic)
    aic = accelerated(MixturePredictions.aic)
