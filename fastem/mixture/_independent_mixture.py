"""The estimator shared by the mixtures of independent features (Bernoulli, Poisson,
categorical): GaussianMixture's surface (fit, fit_predict, predict, predict_proba, score,
score_samples, sample, bic, aic, partial_fit, n_init, init_params, warm_start, tol,
max_iter, random_state, verbose, callback, backend, n_jobs, sample_weight, every data
source) on a family of :mod:`fastem.families`. A subclass names its family and the
parameter it fits (``probs_``, ``rates_``)."""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import kernels
from .._validation import check_n_threads, check_weights
from ..data import ArraySource
from ..em import run_em
from ..families._independent import IndependentFamily, IndependentInit
from ..online import OnlineEM
from ..progress import as_callback
from ._base import (FASTEM_PARAMETER_CONSTRAINTS, check_enough_samples, fitted_source, in_memory,
                    out_of_core_training_source, record_fit, record_online_step)
from ._predict import MixturePredictions


class IndependentMixture(MixturePredictions, DensityMixin, BaseEstimator):
    """Base of :class:`BernoulliMixture`, :class:`PoissonMixture`, :class:`CategoricalMixture`.

    Subclasses set ``_distribution`` (a :class:`fastem.families._independent.Distribution`),
    ``_table_name`` (the fitted attribute besides ``weights_``: ``"probs"`` / ``"rates"``)
    and ``_check_table_init(weights, table, n_features)``.
    """

    _allow_nan = True
    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "alpha": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [StrOptions({"random", "random_from_data"})],
        "weights_init": ["array-like", None],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
        **FASTEM_PARAMETER_CONSTRAINTS,
    }

    # ------------------------------------------------------------------ fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Estimate the parameters by EM (``n_init`` restarts, the best kept).

        X : (n_samples, n_features) array-like (NaN: missing), or a :mod:`fastem.data`
        source. sample_weight : (n_samples,) non-negative, or None. Returns self.
        """
        self._fit(X, sample_weight)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_predict(self, X, y=None, sample_weight=None) -> np.ndarray:
        """Fit, then the (n_samples,) component labels of X (as ``fit(X).predict(X)``)."""
        source = self._fit(X, sample_weight)
        return np.concatenate([self._weighted_log_prob(chunk).argmax(axis=1) for chunk, _ in source.iter_chunks()])

    def _training_source(self, X, sample_weight):
        if self._in_memory(X):
            X = self._prepare(validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2,
                                            ensure_all_finite="allow-nan", order="C"))
            source = ArraySource(X, sample_weight, finite_checked=True)  # validate_data scanned X
        else:
            self._check_out_of_core()
            source = out_of_core_training_source(self, X, sample_weight, allow_nan=True)
        check_enough_samples(source, self.n_components)
        return source

    def _family(self, init: IndependentInit | None) -> IndependentFamily:
        return IndependentFamily(self._distribution, float(self.alpha), self.backend_, check_n_threads(self.n_jobs),
                                 init, getattr(self, "n_categories_", None))

    def _learn_data_shape(self, source, warm: bool) -> None:
        """What the fit needs to know of the data beyond its width (the categorical
        mixture's numbers of categories)."""

    def _initial_parameters(self, n_features: int) -> IndependentInit:
        weights = None if self.weights_init is None else check_weights(self.weights_init, self.n_components,
                                                                       "weights_init")
        table = getattr(self, f"{self._table_name}_init")
        params = None
        if table is not None:
            uniform = np.full(self.n_components, 1.0 / self.n_components)
            params = self._check_table_init(uniform if weights is None else weights, table, n_features)
        return IndependentInit(self.n_components, self.init_params, params, weights, self.init_size)

    def _fit(self, X, sample_weight, max_iter: int | None = None):
        source = self._training_source(X, sample_weight)
        self.backend_ = kernels.resolve_discrete_backend_name(self.backend, source.n_samples, source.n_features,
                                                              self.n_components)
        warm = self.warm_start and hasattr(self, "converged_")
        self._learn_data_shape(source, warm)
        family = self._family(self._initial_parameters(source.n_features))
        start = (self._fitted_params(), self.lower_bound_) if warm else None
        result = run_em(family, source, tol=self.tol, max_iter=self.max_iter if max_iter is None else max_iter,
                        n_init=self.n_init, random_state=check_random_state(self.random_state), start=start,
                        verbose=self.verbose, verbose_interval=self.verbose_interval,
                        callback=as_callback(self.callback))
        record_fit(self, result, source.dtype)
        return source

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, sample_weight=None):
        """One step of stepwise (online) EM on the minibatch X (see
        :class:`fastem.online.OnlineEM`): the first call on an unfitted model initialises
        on it; ``lower_bound_`` is the minibatch's average log-likelihood before its step."""
        online = getattr(self, "_online", None)
        source = None
        if online is None:
            if not hasattr(self, "weights_"):
                source = self._fit(X, sample_weight, max_iter=0)
            online = OnlineEM(self._family(None) if source is not None else self._fitted_family(),
                              self._fitted_params())
        if source is None:
            source = self._minibatch_source(X, sample_weight)
        online.partial_fit(source)
        record_online_step(self, online, source.dtype)
        return self

    def _fitted_family(self) -> IndependentFamily:
        """The family of the fitted parameters, for predictions and online steps (on the
        fastest backend for any size, not the one a tiny fit ran on)."""
        return IndependentFamily(self._distribution, float(self.alpha), kernels.resolve_discrete_backend_name(
            self.backend), check_n_threads(self.n_jobs), None, getattr(self, "n_categories_", None))

    def _minibatch_source(self, X, sample_weight):
        if self._in_memory(X):
            return ArraySource(self._prepare(self._validate_predict_data(X)), sample_weight, finite_checked=True)
        self._check_out_of_core()
        return fitted_source(self, X, sample_weight, allow_nan=True)

    # ------------------------------------------------------------ parameters

    def _fitted_params(self):
        table = np.asarray(getattr(self, f"{self._table_name}_"), dtype=np.float64)
        return self._params_type(np.asarray(self.weights_, dtype=np.float64), table)

    def _set_fitted(self, params, dtype) -> None:
        # float64 whatever X's dtype: in float32 a probability of 1 - 1e-15 would round to 1
        self.weights_ = np.asarray(params.weights, dtype=np.float64)
        setattr(self, f"{self._table_name}_", np.asarray(params[1], dtype=np.float64))

    def _n_parameters(self) -> int:
        return self._distribution.n_parameters(self._fitted_params(), self._fitted_family())

    # ------------------------------------------------------------ prediction

    def _validate_predict_data(self, X) -> np.ndarray:
        return validate_data(self, X, dtype=[np.float64, np.float32], reset=False, ensure_all_finite="allow-nan",
                             order="C")

    def _prepare(self, X: np.ndarray) -> np.ndarray:
        """Validated X as the kernels take it (the Bernoulli mixture's ``binarize``)."""
        return X

    def _in_memory(self, X) -> bool:
        """Whether X is validated as an array (else it becomes a data source)."""
        return in_memory(X)

    def _check_out_of_core(self) -> None:
        """Raise where an option works on in-memory X only."""

    def _weighted_log_prob(self, X) -> np.ndarray:
        """(n, K) float64 ``log weights_k + log p(x | k)`` on validated rows; the backend
        is resolved again (a model fitted on a compiled backend predicts without it)."""
        params = self._fitted_params()
        family = self._fitted_family()
        log_prob = self._distribution.chunk_function(params.weights, params, family).log_prob(self._prepare(X))
        with np.errstate(divide="ignore"):  # a zero weight gives -inf
            log_prob += np.log(params.weights)
        return log_prob

    def _output_dtype(self, X):
        return np.float64

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """``n_samples`` rows drawn from the fitted mixture, and their components (as
        scikit-learn's ``GaussianMixture.sample``: grouped by component)."""
        check_is_fitted(self)
        if n_samples < 1:
            raise ValueError(f"Invalid value for 'n_samples': {n_samples}. The sampling requires at least one sample.")
        rng = check_random_state(self.random_state)
        params = self._fitted_params()
        counts = rng.multinomial(n_samples, params.weights / params.weights.sum())
        labels = np.repeat(np.arange(self.n_components), counts)
        return self._distribution.sample(params, labels, rng), labels

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
