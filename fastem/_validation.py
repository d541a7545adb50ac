"""Input validation done once in the Python wrapper, so that compiled kernels (bounds
checks off) only ever see C-contiguous, finite arrays of consistent shapes."""
from __future__ import annotations

import numbers
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._threads import effective_n_threads
from .suff_stats import COVARIANCE_TYPES, shift_shape


def check_covariance_type(covariance_type: str) -> str:
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(
            f"covariance_type must be one of {COVARIANCE_TYPES}, got {covariance_type!r}"
        )
    return covariance_type


#: arrays up to this size are tested elementwise (see :func:`is_finite`)
SMALL_ARRAY_SIZE = 4096
#: arrays of at least this many bytes are summed in row slices on threads (numpy's sum
#: releases the GIL): one thread reads ~16 GB/s, and the single-threaded sum of a
#: 1e6 x 64 float64 X was 33 ms, 3 % of a default fit
PARALLEL_SUM_BYTES = 32 * 2**20


def is_finite(a: np.ndarray, n_threads: int | None = None) -> bool:
    """Whether every entry is finite. One streaming sum decides in the usual case (it is
    finite only if every entry is); only a non-finite sum, from a bad entry or an
    overflow, pays for the full elementwise scan. A small array is scanned at once: the
    context that silences the sum's overflow warning costs more than the scan. A large
    one is summed on ``n_threads`` threads (None: all usable CPUs)."""
    if a.size <= SMALL_ARRAY_SIZE:
        return bool(np.isfinite(a).all())
    # the thread count (a CPU-affinity query for None) only for an array that may use it
    n_threads = effective_n_threads(n_threads) if a.nbytes >= PARALLEL_SUM_BYTES and a.ndim >= 1 else 1
    with np.errstate(over="ignore", invalid="ignore"):
        if n_threads > 1 and a.shape[0] >= n_threads:
            with ThreadPoolExecutor(n_threads) as pool:
                total = sum(pool.map(_quiet_sum, np.array_split(a, n_threads)))
        else:
            total = np.sum(a)
        return bool(np.isfinite(total) or np.isfinite(a).all())


def _quiet_sum(a: np.ndarray) -> float:
    with np.errstate(over="ignore", invalid="ignore"):  # numpy's error state is per thread
        return np.sum(a)


def check_finite(a: np.ndarray, name: str) -> None:
    """Raise a ValueError naming the first NaN or infinity in ``a``."""
    if not is_finite(a):
        bad = np.argwhere(~np.isfinite(a))[0]
        raise ValueError(
            f"{name} contains NaN or infinity (first at index {tuple(int(i) for i in bad)}: "
            f"{a[tuple(bad)]!r}); remove or impute non-finite values first"
        )


def check_X(X, name: str = "X", min_samples: int = 1, finite: bool = True, allow_nan: bool = False) -> np.ndarray:
    """X as a finite C-contiguous (N, D) float32/float64 array.

    float32 stays float32; other dtypes become float64. A copy is made only when X is
    not already C-contiguous float32/float64; read-only inputs (memmaps) are used as is.
    ``finite=False`` skips the finiteness scan: only for callers that check the kernel's
    result instead (a non-finite value in X makes it non-finite). ``allow_nan=True``
    lets NaN through (missing values) and still rejects infinity.
    """
    X = np.asarray(X)
    if X.dtype.kind == "c":
        raise ValueError(f"{name} must be real, got complex dtype {X.dtype}")
    if X.dtype.kind not in "fiub":
        raise ValueError(f"{name} must be numeric, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-d array (n_samples, n_features), got shape {X.shape}; "
            "reshape 1-d data with X.reshape(-1, 1)"
        )
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    X = np.ascontiguousarray(X, dtype=dtype)
    if X.shape[0] < min_samples:
        raise ValueError(f"{name} has {X.shape[0]} samples, at least {min_samples} required")
    if X.shape[1] < 1:
        raise ValueError(f"{name} has 0 features, at least 1 required")
    if finite and allow_nan:
        check_no_inf(X, name)
    elif finite:
        check_finite(X, name)
    return X


def check_no_inf(a: np.ndarray, name: str) -> None:
    """Raise a ValueError naming the first infinity in ``a`` (NaN, a missing value, is fine)."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(a)):  # the usual fast case; a NaN sum needs the full scan
            return
    bad = np.isinf(a)
    if bad.any():
        where = tuple(int(i) for i in np.unravel_index(np.argmax(bad), a.shape))
        raise ValueError(f"{name} contains infinity (first at index {where}); "
                         "NaN marks a missing value, infinity is not allowed")


def check_sample_weight(sample_weight, n_samples: int) -> np.ndarray | None:
    """None, or a finite non-negative C-contiguous (N,) float64 array."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number):
        return np.full(n_samples, float(sample_weight))
    sw = np.ascontiguousarray(sample_weight, dtype=np.float64)
    if sw.shape != (n_samples,):
        raise ValueError(f"sample_weight must have shape ({n_samples},), got {sw.shape}")
    check_finite(sw, "sample_weight")
    if (sw < 0).any():
        raise ValueError(f"sample_weight must be non-negative, got minimum {sw.min()!r}")
    return sw


def _as_float64(a, name: str, shape: tuple) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    check_finite(a, name)
    return a


def check_weights(weights, n_components: int, name: str = "weights") -> np.ndarray:
    w = _as_float64(weights, name, (n_components,))
    if (w < 0).any() or (w > 1).any():
        raise ValueError(f"{name} must lie in [0, 1], got {w}")
    if not np.isclose(w.sum(), 1.0, rtol=0, atol=1e-6):
        raise ValueError(f"{name} must sum to 1, got sum {w.sum()!r}")
    return w


def check_means(means, n_features: int) -> np.ndarray:
    means = np.asarray(means)
    if means.ndim != 2 or means.shape[1] != n_features:
        raise ValueError(f"means must have shape (n_components, {n_features}), got {means.shape}")
    return _as_float64(means, "means", means.shape)


def check_precisions_cholesky(precisions_cholesky, covariance_type: str, n_components: int, n_features: int) -> np.ndarray:
    """Upper-triangular (full/tied) or positive (diag/spherical) precision Cholesky factors.

    Lower-triangular full/tied factors (scikit-learn produces them from ``precisions_init``)
    are converted to the equivalent upper-triangular factor.
    """
    from .gaussian import precisions_cholesky_from_precisions, precisions_from_precisions_cholesky

    shape = {
        "full": (n_components, n_features, n_features),
        "tied": (n_features, n_features),
        "diag": (n_components, n_features),
        "spherical": (n_components,),
    }[covariance_type]
    p = _as_float64(precisions_cholesky, "precisions_cholesky", shape)
    if covariance_type in ("full", "tied"):
        mats = p.reshape(-1, n_features, n_features)
        diag = np.diagonal(mats, axis1=1, axis2=2)
        if not (diag > 0).all():
            raise ValueError("precisions_cholesky must have a strictly positive diagonal")
        if np.any(np.tril(mats, -1)):
            if np.any(np.triu(mats, 1)):
                raise ValueError(
                    "precisions_cholesky must be triangular (the Cholesky factor of the precision)"
                )
            prec = precisions_from_precisions_cholesky(p, covariance_type)
            p = np.ascontiguousarray(precisions_cholesky_from_precisions(prec, covariance_type))
    elif not (p > 0).all():
        raise ValueError(f"precisions_cholesky must be strictly positive for covariance_type={covariance_type!r}")
    return p


def check_shift(shift, covariance_type: str, n_components: int, n_features: int) -> np.ndarray:
    return _as_float64(shift, "shift", shift_shape(covariance_type, n_components, n_features))


def check_resp(resp, n_samples: int) -> np.ndarray:
    resp = np.asarray(resp)
    if resp.ndim != 2 or resp.shape[0] != n_samples:
        raise ValueError(f"resp must have shape ({n_samples}, n_components), got {resp.shape}")
    resp = _as_float64(resp, "resp", resp.shape)
    if (resp < 0).any():
        raise ValueError("resp must be non-negative")
    return resp


def is_integral(value) -> bool:
    """``isinstance(value, numbers.Integral)``, testing for a plain int first: an
    isinstance check against an ABC costs several times more (per kernel call and fit)."""
    return type(value) is int or isinstance(value, numbers.Integral)


def check_n_threads(n_threads) -> int | None:
    if n_threads is None:
        return None
    if not is_integral(n_threads) or n_threads == 0:
        raise ValueError(f"n_threads must be None, a positive int, or negative (joblib style), got {n_threads!r}")
    return int(n_threads)


def check_block_size(block_size) -> int:
    if not is_integral(block_size) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    return int(block_size)


def check_centers(centers, n_features: int, name: str = "centers") -> np.ndarray:
    """(K, D) finite float64 centres, K >= 1."""
    centers = np.ascontiguousarray(centers, dtype=np.float64)
    if centers.ndim != 2 or centers.shape[0] < 1 or centers.shape[1] != n_features:
        raise ValueError(f"{name} must have shape (n_centers >= 1, {n_features}), got {centers.shape}")
    check_finite(centers, name)
    return centers


def check_x_mean(x_mean, X: np.ndarray) -> np.ndarray:
    """(D,) finite centring offset in X's dtype (None: zeros)."""
    if x_mean is None:
        return np.zeros(X.shape[1], dtype=X.dtype)
    x_mean = np.ascontiguousarray(x_mean, dtype=X.dtype)
    if x_mean.shape != (X.shape[1],):
        raise ValueError(f"x_mean must have shape ({X.shape[1]},), got {x_mean.shape}")
    check_finite(x_mean, "x_mean")
    return x_mean


def check_state(a, shape: int | tuple, dtype, name: str) -> np.ndarray:
    """An in/out array: exactly ``shape`` (an int: (N,)), C-contiguous, writeable, of
    ``dtype`` (it is updated in place, so it is never converted)."""
    shape = (shape,) if isinstance(shape, numbers.Integral) else tuple(shape)
    if not isinstance(a, np.ndarray) or a.dtype != dtype or a.shape != shape \
            or not a.flags.c_contiguous or not a.flags.writeable:
        got = f"{type(a).__name__} {getattr(a, 'dtype', '')} {getattr(a, 'shape', '')}"
        raise ValueError(f"{name} must be a writeable C-contiguous {shape} {np.dtype(dtype)} array, got {got}")
    return a


def check_nonnegative(a, shape: tuple, name: str) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    if not (a >= 0).all():  # also rejects NaN
        raise ValueError(f"{name} must be >= 0 (and not NaN)")
    return a


def check_parameter_table(a, shape: tuple, name: str, allow_neg_inf: bool = False) -> np.ndarray:
    """A C-contiguous float64 parameter array of exactly ``shape``: finite, or with
    ``-inf`` entries where ``allow_neg_inf`` (log-probabilities of impossible values)."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    bad = np.isnan(a) | (np.isposinf(a) if allow_neg_inf else np.isinf(a))
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} must be {'NaN- and +inf-free' if allow_neg_inf else 'finite'}, "
                         f"got {a[where]!r} at index {where}")
    return a


def check_n_categories(n_categories, n_features: int) -> np.ndarray:
    """(D,) int64 numbers of categories, each >= 1."""
    counts = np.asarray(n_categories)
    if counts.shape != (n_features,) or counts.dtype.kind not in "iu" or (counts < 1).any():
        raise ValueError(f"n_categories must be ({n_features},) integers >= 1, got {n_categories!r}")
    return np.ascontiguousarray(counts, dtype=np.int64)


# ------------------------------------------------ independent-feature families' values
# Shared by the reference and the compiled backends, which find the first bad entry
# during their own pass and raise through invalid_value_error.

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
