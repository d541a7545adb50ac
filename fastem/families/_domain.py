"""The values each independent-feature distribution takes, and the error for one that
is outside them. Shared by the reference and the compiled backends (which find the first
bad entry during their pass and raise through :func:`invalid_value_error`)."""
from __future__ import annotations

import numpy as np

#: what each distribution's features must be (NaN is always allowed: missing)
DOMAINS = {
    "bernoulli": "0 or 1",
    "poisson": "a non-negative integer count",
    "categorical": "an integer category code in [0, n_categories)",
}


def invalid_mask(X: np.ndarray, distribution: str, n_categories: np.ndarray | None = None) -> np.ndarray:
    """(N, D) bool: the entries of X outside the distribution's values (NaN is fine)."""
    with np.errstate(invalid="ignore"):
        if distribution == "bernoulli":
            bad = (X != 0) & (X != 1)
        elif distribution == "poisson":
            bad = ~(X >= 0) | (X != np.floor(X)) | np.isinf(X)
        elif distribution == "categorical":
            bad = ~(X >= 0) | (X != np.floor(X)) | (X >= n_categories)
        else:
            raise ValueError(f"unknown distribution {distribution!r}")
    return bad & ~np.isnan(X)


def first_invalid(X: np.ndarray, distribution: str, n_categories: np.ndarray | None = None) -> int:
    """Flat (row-major) index of the first invalid entry of X, or -1."""
    bad = invalid_mask(X, distribution, n_categories)
    return int(np.argmax(bad)) if bad.any() else -1


def invalid_value_error(X: np.ndarray, flat_index: int, distribution: str) -> ValueError:
    """The ValueError for entry ``flat_index`` of X, naming its feature."""
    row, feature = divmod(int(flat_index), X.shape[1])
    return ValueError(
        f"feature {feature} has the value {float(X[row, feature])!r} (row {row}); a {distribution} feature must be "
        f"{DOMAINS[distribution]}, or NaN where it is missing"
    )


def check_values(X: np.ndarray, distribution: str, n_categories: np.ndarray | None = None) -> None:
    """Raise :func:`invalid_value_error` for the first invalid entry of X."""
    index = first_invalid(X, distribution, n_categories)
    if index >= 0:
        raise invalid_value_error(X, index, distribution)
