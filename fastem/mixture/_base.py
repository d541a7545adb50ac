"""What fastem's mixture estimators share: the constraints of the parameters fastem adds,
the fallback for parameters fitted on another Array-API library, and the checks of the
training data."""
from __future__ import annotations

from numbers import Integral

import numpy as np
from scipy.sparse import issparse
from sklearn.utils._param_validation import Interval, StrOptions

from ..data import ArraySource, as_source
from ._dropin import DropInMixin, array_api_reason
from ._validate import validate_training_data

#: ``_parameter_constraints`` of fastem's extra parameters
FASTEM_PARAMETER_CONSTRAINTS: dict = {
    "init_size": [Interval(Integral, 1, None, closed="left"), None],
    "backend": [str],
    "n_jobs": [Integral, None],
    "callback": [callable, StrOptions({"tqdm"}), None],
}


class FastemMixture(DropInMixin):
    """Base of fastem's mixtures, before their scikit-learn twin in the bases (see
    :class:`DropInMixin`)."""

    def _fallback_reason(self, method: str, X) -> str | None:
        # parameters fitted on another Array-API library stay with scikit-learn
        means = getattr(self, "means_", None)
        return super()._fallback_reason(method, X) or (None if means is None else array_api_reason(means))

    def _training_source(self, X, sample_weight):
        """The data source of the training data; sets ``n_features_in_`` (and
        ``feature_names_in_``); checks there are enough samples for n_components."""
        if in_memory(X):
            # validated ndarrays (finite, as scikit-learn checks them): no second scan of X
            source = ArraySource(validate_training_data(self, X), sample_weight, finite_checked=True)
        else:  # memmaps, out-of-core and dask arrays, chunk iterators, fastem data sources
            source = out_of_core_training_source(self, X, sample_weight)
        check_enough_samples(source, self.n_components)
        weights = getattr(source, "sample_weight", None)
        if weights is not None and np.count_nonzero(weights) < self.n_components:
            raise ValueError(
                f"sample_weight has {np.count_nonzero(weights)} non-zero entries, fewer than "
                f"n_components = {self.n_components}"
            )
        return source


def out_of_core_training_source(estimator, X, sample_weight, allow_nan: bool = False):
    """The data source of training data that is not validated as an array; sets
    ``n_features_in_`` and removes a stale ``feature_names_in_``."""
    source = as_source(X, sample_weight, min_samples=2, allow_nan=allow_nan)
    estimator.n_features_in_ = source.n_features
    if hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_
    return source


def check_enough_samples(source, n_components: int) -> None:
    if source.n_samples < n_components:
        raise ValueError(
            f"Expected n_samples >= n_components but got n_components = {n_components}, "
            f"n_samples = {source.n_samples}"
        )


def fitted_source(estimator, X, sample_weight=None, allow_nan: bool = False):
    """The data source of out-of-core X for a fitted estimator: as many features as it
    was fitted on (scikit-learn's message otherwise)."""
    source = as_source(X, sample_weight, allow_nan=allow_nan)
    if source.n_features != estimator.n_features_in_:
        raise ValueError(
            f"X has {source.n_features} features, but {type(estimator).__name__} is expecting "
            f"{estimator.n_features_in_} features as input."
        )
    return source


def in_memory(X) -> bool:
    """Inputs scikit-learn's validation takes as they are: arrays (not memmaps), lists,
    data frames, sparse matrices; everything else goes to :func:`fastem.data.as_source`."""
    return (
        (isinstance(X, np.ndarray) and not isinstance(X, np.memmap))
        or isinstance(X, (list, tuple))
        or hasattr(X, "__dataframe__")
        or issparse(X)
    )


def record_fit(estimator, result, dtype) -> None:
    """Store a :class:`fastem.em.EMResult` on a mixture: its parameters (through the
    estimator's ``_set_fitted``), ``converged_``, ``n_iter_``, ``lower_bound_``,
    ``lower_bounds_``; an online state from earlier ``partial_fit`` calls is dropped."""
    estimator._set_fitted(result.params, dtype)
    estimator._online = None
    estimator.converged_ = result.converged
    estimator.n_iter_ = result.n_iter
    estimator.lower_bound_ = result.lower_bound
    estimator.lower_bounds_ = result.lower_bounds


def record_online_step(estimator, online, dtype) -> None:
    """Store the state of :class:`fastem.online.OnlineEM` after a step: ``n_iter_`` counts
    steps, ``lower_bound_`` is the minibatch's average log-likelihood before its step."""
    estimator._online = online
    estimator._set_fitted(online.params, dtype)
    estimator.n_iter_ = online.n_steps
    estimator.lower_bound_ = online.loglik
    estimator.lower_bounds_ = [*getattr(estimator, "lower_bounds_", []), online.loglik]
    estimator.converged_ = False
