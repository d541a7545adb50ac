"""scikit-learn's parameter and data validation with the common case made cheap.

For a small fit, scikit-learn's checks cost more than the EM itself: ``get_params``
inspects ``__init__``'s signature on every call, every constraint object is rebuilt on
every call, and ``validate_data`` probes X for every dataframe library. Here the
signature and the constraint objects are built once per class, a scalar value the
constraints accepted once is not checked again, and a plain float ndarray is checked
directly. Whatever the fast checks do not accept goes through scikit-learn's
own functions, so every error and warning is scikit-learn's.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import make_constraint
from sklearn.utils.validation import validate_data

from .._validation import is_finite


class FastValidation:
    """Mixin (before scikit-learn's estimator in the bases) caching what
    ``_validate_params`` rebuilds on every call."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        return list(_param_names(cls))

    def _validate_params(self) -> None:
        cls = type(self)
        if cls.get_params is not BaseEstimator.get_params:  # parameters of its own making
            super()._validate_params()
            return
        known_valid = _known_valid(cls)
        for name, constraints in _constraints(cls):
            value = getattr(self, name)  # as get_params(deep=False) reads it
            key = (name, type(value), value) if type(value) in _SCALAR_TYPES else None
            if key in known_valid:
                continue
            if not any(c.is_satisfied_by(value) for c in constraints):
                super()._validate_params()  # raises scikit-learn's InvalidParameterError
                return
            if key is not None and len(known_valid) < _MAX_KNOWN_VALID:
                known_valid.add(key)


@lru_cache(maxsize=None)
def _param_names(cls) -> tuple[str, ...]:
    # scikit-learn's own derivation, once per class
    return tuple(super(FastValidation, cls)._get_param_names())


#: types of the parameter values whose validity is remembered: hashable, immutable, and
#: judged by every constraint from the value alone
_SCALAR_TYPES = frozenset({int, float, str, bool, type(None)})
#: at most this many remembered values per class (a loop over seeds adds one per fit)
_MAX_KNOWN_VALID = 4096


@lru_cache(maxsize=None)
def _known_valid(cls) -> set:
    """``(name, type, value)`` of scalar parameter values ``cls``'s constraints accepted."""
    return set()


@lru_cache(maxsize=None)
def _constraints(cls) -> tuple:
    """(name, constraint objects) of every validated parameter of ``cls``."""
    return tuple((name, tuple(make_constraint(c) for c in constraints))
                 for name, constraints in cls._parameter_constraints.items()
                 if constraints != "no_validation" and name in _param_names(cls))


def validate_training_data(estimator, X) -> np.ndarray:
    """``validate_data(estimator, X, dtype=[float64, float32], ensure_min_samples=2)``:
    a finite 2-d float32/float64 ndarray (the common case) is taken as it is, with
    ``n_features_in_`` set (and a stale ``feature_names_in_`` removed) as scikit-learn
    does; anything else, invalid input included, goes through scikit-learn."""
    if (type(X) is np.ndarray and X.dtype in (np.float64, np.float32) and X.ndim == 2
            and X.shape[0] >= 2 and X.shape[1] >= 1 and is_finite(X, getattr(estimator, "n_jobs", None))):
        estimator.n_features_in_ = X.shape[1]
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
        return X
    return validate_data(estimator, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
