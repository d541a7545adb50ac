"""Public kernel API: validate once, then dispatch to a backend.

Backends (``"cython"``, ``"numba"``, ``"numpy"``) are modules with the same five
functions and signatures, called only with validated inputs (C-contiguous, finite,
float32/float64 ``X``, float64 parameters, ``shift`` filled in)::

    logsumexp(a, axis=-1, *, n_threads, block_size) -> (N,)        # a: (N, K) float64, axis=-1
    gaussian_log_prob(X, means, precisions_cholesky, covariance_type, *, n_threads, block_size) -> (N, K)
    suff_stats(X, resp, covariance_type, sample_weight, shift, *, n_threads, block_size) -> SuffStats
    em_stats(X, weights, means, precisions_cholesky, covariance_type, sample_weight, shift,
             *, n_threads, block_size) -> SuffStats
    label_stats(X, labels, n_components, covariance_type, sample_weight, shift, *, n_threads,
                block_size) -> SuffStats                          # hard responsibilities

``em_stats`` is one pass over X that never allocates an (N, K) array. Compiled backends
cut rows into blocks of ``block_size`` and reduce the blocks' statistics in a fixed
order, so results are bit-identical for any ``n_threads``. ``fastem.reference`` is the
``"numpy"`` backend.
"""
from __future__ import annotations

import importlib
import math
import sys

import numpy as np

from . import _validation as v
from ._kernels import backend_table
from ._threads import effective_n_threads
from .reference import data_shift, default_shift
from .reference_kmeans import KMeansStats
from .suff_stats import SuffStats

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "SuffStats",
    "available_backends",
    "e_step",
    "em_stats",
    "gaussian_log_prob",
    "get_backend",
    "get_kmeans_backend",
    "kmeans_assign",
    "kmeans_bounded_assign",
    "kmeans_plusplus_pots",
    "kmeans_update_closest",
    "logsumexp",
    "suff_stats",
]

#: Rows per block: the unit of work and of deterministic reduction.
DEFAULT_BLOCK_SIZE = 256

_BACKEND_MODULES = {
    "cython": "fastem._kernels.cython_backend",
    "numba": "fastem._kernels.numba_backend",
    "numpy": "fastem.reference",
}
#: "auto" takes the first available backend in this order, per covariance type, unless
#: the measured table (``_kernels/backend_table``) names another one faster for the problem.
AUTO_ORDER = {ct: ("cython", "numba", "numpy") for ct in ("full", "tied", "diag", "spherical")}

#: k-means backends: the same names, one module each
_KMEANS_MODULES = {
    "cython": "fastem._kernels.cython_kmeans",
    "numba": "fastem._kernels.numba_kmeans",
    "numpy": "fastem.reference_kmeans",
}

_import_errors: dict[str, str] = {}


def _load(name: str, modules: dict = _BACKEND_MODULES):
    module = sys.modules.get(modules[name])
    if module is not None:  # imported before: importlib's lookup costs as much as a tiny kernel call
        return module
    try:
        return importlib.import_module(modules[name])
    except ImportError as exc:
        _import_errors[name] = f"{type(exc).__name__}: {exc}"
        return None


def available_backends() -> list[str]:
    """Names of the backends that import on this machine, fastest first."""
    return [name for name in _BACKEND_MODULES if _load(name) is not None]


def _ready(name: str) -> bool:
    """Whether backend ``name`` runs now without an import or JIT compile nobody asked for:
    a compiled backend is, a JIT one only once its kernels are compiled in this process
    (by an earlier call that named it)."""
    module = sys.modules.get(_BACKEND_MODULES[name])
    return module is not None and getattr(module, "is_compiled", lambda: True)()


def get_backend(backend: str = "auto", covariance_type: str = "full", n_features: int | None = None,
                n_components: int | None = None, dtype=np.float64):
    """The backend module for ``backend``. ``"auto"``: the first available in
    ``AUTO_ORDER[covariance_type]``; given the problem's D and K (and X's dtype), the one
    the measured table names fastest there instead, where that one is ready (``_ready``)."""
    if backend == "auto":
        name = next(name for name in AUTO_ORDER[covariance_type] if _load(name) is not None)  # numpy always loads
        if n_features is not None and n_components is not None:
            fastest = backend_table.fastest(covariance_type, n_features, n_components, np.dtype(dtype).name, name)
            if fastest in _BACKEND_MODULES and _ready(fastest):
                name = fastest
        return _load(name)
    if backend not in _BACKEND_MODULES:
        raise ValueError(f"backend must be 'auto' or one of {list(_BACKEND_MODULES)}, got {backend!r}")
    module = _load(backend)
    if module is None:
        raise ImportError(f"fastem backend {backend!r} is not available: {_import_errors[backend]}")
    return module


#: "auto" takes the numpy reference for a fit whose pass is smaller than this many
#: (sample, component, quadratic term) products when the compiled backend it would take
#: is one of ``AUTO_REFERENCE_FOR``: there that backend's per-call set-up (Numba's dispatch
#: and its wrapper's constants) costs more than the pass. Measured (2-vCPU AMD EPYC,
#: 2026-12-03): one pass at N = 100, D = 1, K = 2 takes 88 us on the reference, 171 us on
#: Numba and 29 us on Cython, whose small passes skip the expanded form's set-up
#: (``EXPANDED_MIN_SAMPLES``); whole fits on Cython are 1.1-2.5x faster than on the
#: reference from 30 x 2 x 3 to 100 x 16 x 8.
AUTO_REFERENCE_BELOW = 4096
AUTO_REFERENCE_FOR = ("numba",)


def resolve_backend_name(backend: str, covariance_type: str, n_samples: int | None = None,
                         n_features: int | None = None, n_components: int | None = None, dtype=np.float64) -> str:
    """The concrete backend name ``backend`` stands for; with the problem's size, "auto"
    follows the measured table (``get_backend``) and may take the reference for tiny
    passes (``AUTO_REFERENCE_BELOW``)."""
    # raises for an unknown or unavailable backend
    module = get_backend(backend, covariance_type, n_features, n_components, dtype)
    name = _name_of(module, _BACKEND_MODULES) if backend == "auto" else backend
    if backend == "auto" and n_samples is not None and name in AUTO_REFERENCE_FOR:
        d, k = n_features or 1, n_components or 1
        quadratic = d**2 if covariance_type in ("full", "tied") else d
        if n_samples * k * quadratic < AUTO_REFERENCE_BELOW:
            return "numpy"
    return name


def _options(n_threads, block_size) -> dict:
    return {
        "n_threads": effective_n_threads(v.check_n_threads(n_threads)),
        "block_size": v.check_block_size(block_size),
    }


def logsumexp(a, axis: int = -1, *, backend: str = "auto", n_threads: int | None = None) -> np.ndarray:
    """Max-shifted ``log(sum(exp(a), axis))`` of a float array; ``-inf`` entries are
    allowed (an all ``-inf`` slice gives ``-inf``), NaN and ``+inf`` are not."""
    a = np.asarray(a, dtype=np.float64)
    if np.isnan(a).any() or np.isposinf(a).any():
        raise ValueError("logsumexp input contains NaN or +inf")
    if a.ndim == 0:
        raise ValueError("logsumexp needs at least a 1-d array")
    moved = np.moveaxis(a, axis, -1)
    rows = np.ascontiguousarray(moved.reshape(-1, moved.shape[-1]))
    out = get_backend(backend).logsumexp(rows, -1, **_options(n_threads, DEFAULT_BLOCK_SIZE))
    return out.reshape(moved.shape[:-1])


def _check_gaussian(X, means, precisions_cholesky, covariance_type, weights=None, finite_X=True):
    v.check_covariance_type(covariance_type)
    X = v.check_X(X, finite=finite_X)
    means = v.check_means(means, X.shape[1])
    n_components = means.shape[0]
    precisions_cholesky = v.check_precisions_cholesky(precisions_cholesky, covariance_type, n_components, X.shape[1])
    if weights is not None:
        weights = v.check_weights(weights, n_components)
    return X, means, precisions_cholesky, weights


def gaussian_log_prob(X, means, precisions_cholesky, covariance_type: str, *, backend: str = "auto",
                      n_threads: int | None = None, block_size: int = DEFAULT_BLOCK_SIZE) -> np.ndarray:
    """(N, K) float64 ``log N(x_i | mean_k, precision_k)``, mixture weights not included.

    X: (N, D) float32/float64; means: (K, D); precisions_cholesky: (K, D, D) full,
    (D, D) tied, (K, D) diag, (K,) spherical.
    """
    X, means, precisions_cholesky, _ = _check_gaussian(X, means, precisions_cholesky, covariance_type)
    return get_backend(backend, covariance_type).gaussian_log_prob(
        X, means, precisions_cholesky, covariance_type, **_options(n_threads, block_size))


def e_step(X, weights, means, precisions_cholesky, covariance_type: str, *, backend: str = "auto",
           n_threads: int | None = None, block_size: int = DEFAULT_BLOCK_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """``log_resp`` (N, K) float64 and per-sample log-likelihood (N,) float64."""
    X, means, precisions_cholesky, weights = _check_gaussian(X, means, precisions_cholesky, covariance_type, weights)
    module = get_backend(backend, covariance_type)
    options = _options(n_threads, block_size)
    weighted = module.gaussian_log_prob(X, means, precisions_cholesky, covariance_type, **options)
    with np.errstate(divide="ignore"):
        weighted += np.log(weights)
    log_prob_norm = module.logsumexp(weighted, -1, **options)
    weighted -= log_prob_norm[:, None]
    return weighted, log_prob_norm


def suff_stats(X, resp, covariance_type: str, sample_weight=None, shift=None, *, backend: str = "auto",
               n_threads: int | None = None, block_size: int = DEFAULT_BLOCK_SIZE) -> SuffStats:
    """Sufficient statistics of given responsibilities ``resp`` (N, K) (e.g. an
    initialisation). ``shift`` defaults to the weighted mean of X; ``loglik`` is 0.0."""
    v.check_covariance_type(covariance_type)
    X = v.check_X(X)
    resp = v.check_resp(resp, X.shape[0])
    sample_weight = v.check_sample_weight(sample_weight, X.shape[0])
    n_components = resp.shape[1]
    if shift is None:
        shift = data_shift(X, sample_weight, covariance_type, n_components)
    shift = v.check_shift(shift, covariance_type, n_components, X.shape[1])
    return get_backend(backend, covariance_type).suff_stats(
        X, resp, covariance_type, sample_weight, shift, **_options(n_threads, block_size))


def em_stats(X, weights, means, precisions_cholesky, covariance_type: str, sample_weight=None, shift=None, *,
             backend: str = "auto", n_threads: int | None = None, block_size: int = DEFAULT_BLOCK_SIZE) -> SuffStats:
    """Fused E-step + sufficient statistics: one pass over X, no (N, K) array.

    X: (N, D) float32/float64 (float32 is computed blockwise, accumulated in float64; the
    Cython backend takes the responsibilities' exps in float32, relative error ~1e-7);
    weights (K,); means (K, D); precisions_cholesky by ``covariance_type``; sample_weight
    (N,) or None; shift defaults to ``means`` (tied: ``weights @ means``).
    """
    # X's finiteness is checked after the pass, not before (a scan of X costs as much as a
    # third of the pass): NaN or inf in X make the log-likelihood non-finite, and the
    # kernels' memory accesses never depend on values, so the pass itself is safe.
    X, means, precisions_cholesky, weights = _check_gaussian(X, means, precisions_cholesky, covariance_type,
                                                             weights, finite_X=False)
    sample_weight = v.check_sample_weight(sample_weight, X.shape[0])
    if shift is None:
        shift = default_shift(weights, means, covariance_type)
    shift = v.check_shift(shift, covariance_type, means.shape[0], X.shape[1])
    stats = get_backend(backend, covariance_type, X.shape[1], means.shape[0], X.dtype).em_stats(
        X, weights, means, precisions_cholesky, covariance_type, sample_weight, shift,
        **_options(n_threads, block_size))
    if not (math.isfinite(stats.loglik) and np.isfinite(stats.sum_xx).all()):
        v.check_finite(X, "X")  # raises, naming the first non-finite entry
    return stats


# ------------------------------------------------------------------------- k-means
# A Lloyd step is hard-assignment EM: the same blocked, deterministic pass with the
# nearest centre instead of responsibilities. Coordinates are centred: rows are
# ``X - x_mean`` (formed in X's dtype; ``x_mean`` defaults to 0) and centres live there.


def _get_module(backend: str, modules: dict):
    """The module of ``backend`` in ``modules`` ("auto": the first that imports)."""
    if backend == "auto":
        for name in modules:
            module = _load(name, modules)
            if module is not None:
                return module
    if backend not in modules:
        raise ValueError(f"backend must be 'auto' or one of {list(modules)}, got {backend!r}")
    module = _load(backend, modules)
    if module is None:
        raise ImportError(f"fastem backend {backend!r} is not available: {_import_errors[backend]}")
    return module


def _name_of(module, modules: dict) -> str:
    """The backend name of a loaded backend module."""
    return next(name for name, path in modules.items() if path == module.__name__)


def get_kmeans_backend(backend: str = "auto"):
    """The k-means backend module for ``backend`` ("auto": the first that imports)."""
    return _get_module(backend, _KMEANS_MODULES)


def _check_kmeans(X, centers, x_mean, sample_weight=None, centers_name="centers"):
    X = v.check_X(X)
    centers = v.check_centers(centers, X.shape[1], centers_name)
    x_mean = v.check_x_mean(x_mean, X)
    return X, centers, x_mean, v.check_sample_weight(sample_weight, X.shape[0])


def kmeans_assign(X, centers, sample_weight=None, labels=None, *, upper=None, lower=None, x_mean=None,
                  backend: str = "auto", n_threads: int | None = None,
                  block_size: int = DEFAULT_BLOCK_SIZE) -> tuple[np.ndarray, KMeansStats]:
    """Lloyd's assignment: the nearest centre of every row (ties: the lowest index) and,
    in the same pass, per-centre weights, member counts, weighted sums of ``X - x_mean``
    and the inertia. No (N, K) array.

    X (N, D) float32/float64; centers (K, D) (centred coordinates); labels: (N,) int32
    written in place (its previous content counts ``n_changed``), or None for a new
    array. upper, lower: both None, or (N,) float64 written in place with each row's
    distance to its centre and to the runner-up (inf when K = 1), the bounds
    :func:`kmeans_bounded_assign` starts from. Returns ``(labels, KMeansStats)``.
    """
    X, centers, x_mean, sample_weight = _check_kmeans(X, centers, x_mean, sample_weight)
    labels = np.full(X.shape[0], -1, dtype=np.int32) if labels is None else v.check_state(labels, X.shape[0], np.int32, "labels")
    if (upper is None) != (lower is None):
        raise ValueError("upper and lower go together: give both or neither")
    if upper is not None:
        upper = v.check_state(upper, X.shape[0], np.float64, "upper")
        lower = v.check_state(lower, X.shape[0], np.float64, "lower")
    stats = get_kmeans_backend(backend).kmeans_assign(X, x_mean, sample_weight, centers, labels, upper, lower,
                                                      **_options(n_threads, block_size))
    return labels, stats


def kmeans_bounded_assign(X, centers, labels, upper, lower, half_gap, drift, max_drift: float = 0.0,
                          margin: float = 0.0, sample_weight=None, *, x_mean=None, backend: str = "auto",
                          n_threads: int | None = None, block_size: int = DEFAULT_BLOCK_SIZE) -> KMeansStats:
    """Hamerly's exact assignment: the labels of :func:`kmeans_assign`, computing all K
    distances only for rows whose bounds do not settle their centre.

    labels (N,) int32 (-1: unassigned), upper and lower (N,) float64, all updated in
    place. The bounds are stored relative to the drifts, so that a settled row is only
    read: ``upper + drift[label]`` bounds the distance to the own centre from above,
    ``lower - max_drift`` the distance to every other centre from below. drift (K,): how
    far each centre has moved in all (sum of its shifts); max_drift: the sum over the
    moves of their largest shift; half_gap (K,): half the distance from each centre to
    its nearest other one; margin >= 0 absorbs the bounds' rounding. Returns the
    changes of nk, n_members and sum_x (inertia NaN).
    """
    X, centers, x_mean, sample_weight = _check_kmeans(X, centers, x_mean, sample_weight)
    n_samples, n_centers = X.shape[0], centers.shape[0]
    labels = v.check_state(labels, n_samples, np.int32, "labels")
    upper = v.check_state(upper, n_samples, np.float64, "upper")
    lower = v.check_state(lower, n_samples, np.float64, "lower")
    if labels.max(initial=-1) >= n_centers or labels.min(initial=0) < -1:
        raise ValueError(f"labels must lie in [-1, {n_centers - 1}]")
    half_gap = v.check_nonnegative(half_gap, (n_centers,), "half_gap")
    drift = v.check_nonnegative(drift, (n_centers,), "drift")
    for name, value in (("max_drift", max_drift), ("margin", margin)):
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return get_kmeans_backend(backend).kmeans_bounded_assign(
        X, x_mean, sample_weight, centers, half_gap, drift, float(max_drift), float(margin), labels, upper, lower,
        **_options(n_threads, block_size))


def kmeans_plusplus_pots(X, closest_sq, candidates, sample_weight=None, new_closest=None, *, x_mean=None,
                         backend: str = "auto", n_threads: int | None = None,
                         block_size: int = DEFAULT_BLOCK_SIZE) -> np.ndarray:
    """(L,) float64 k-means++ potential ``sum_i w_i min(closest_sq_i, ||z_i - c_l||^2)``
    after adding each candidate centre c_l (candidates (L, D), centred coordinates).

    new_closest: None, or a writeable C-contiguous (L, N) float64 array that receives
    those minima; its row l is bit for bit what :func:`kmeans_update_closest` makes of
    ``closest_sq`` for c_l, so the seeding needs no second pass over X per centre.
    """
    X, candidates, x_mean, sample_weight = _check_kmeans(X, candidates, x_mean, sample_weight, "candidates")
    closest_sq = v.check_state(closest_sq, X.shape[0], np.float64, "closest_sq")
    if new_closest is not None:
        new_closest = v.check_state(new_closest, (candidates.shape[0], X.shape[0]), np.float64, "new_closest")
    return get_kmeans_backend(backend).kmeans_plusplus_pots(X, x_mean, sample_weight, closest_sq, candidates,
                                                            new_closest, **_options(n_threads, block_size))


def kmeans_update_closest(X, closest_sq, center, *, x_mean=None, backend: str = "auto",
                          n_threads: int | None = None, block_size: int = DEFAULT_BLOCK_SIZE) -> None:
    """``closest_sq`` (N,) float64 in place: ``min(closest_sq, ||z_i - center||^2)``."""
    X, center, x_mean, _ = _check_kmeans(X, np.atleast_2d(center), x_mean, None, "center")
    if center.shape[0] != 1:
        raise ValueError(f"center must have shape (n_features,), got {center.shape}")
    closest_sq = v.check_state(closest_sq, X.shape[0], np.float64, "closest_sq")
    get_kmeans_backend(backend).kmeans_update_closest(X, x_mean, closest_sq, center[0],
                                                      **_options(n_threads, block_size))


# ------------------------------------------------------- independent-feature families
# Mixtures whose features are independent given the component (fastem.families):
# Bernoulli and Poisson share the *linear* log-density ``x * coef + offset + log h(x)``,
# latent class analysis the *categorical* one. X may hold NaN (missing: marginalised
# out); an entry outside the distribution's values raises a ValueError naming its feature
# (found by the kernel's own pass, so no separate scan of X).

_DISCRETE_MODULES = {
    "cython": "fastem._kernels.cython_discrete",
    "numba": "fastem._kernels.numba_discrete",
    "numpy": "fastem.reference_discrete",
}
LINEAR_DISTRIBUTIONS = ("bernoulli", "poisson")


def get_discrete_backend(backend: str = "auto"):
    """The independent-feature backend module for ``backend`` ("auto": the first that imports)."""
    return _get_module(backend, _DISCRETE_MODULES)


def resolve_discrete_backend_name(backend: str, n_samples: int | None = None, n_features: int = 1,
                                  n_components: int = 1) -> str:
    """The concrete backend name ``backend`` stands for; with the problem's size, "auto"
    takes the reference for tiny passes (``AUTO_REFERENCE_BELOW`` sample x feature x
    component products), else the first compiled backend that imports."""
    if backend == "auto" and n_samples is not None and n_samples * n_features * n_components < AUTO_REFERENCE_BELOW:
        return "numpy"
    return _name_of(get_discrete_backend(backend), _DISCRETE_MODULES)


def _check_linear(X, coef, offset, distribution, weights=None):
    if distribution not in LINEAR_DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {LINEAR_DISTRIBUTIONS}, got {distribution!r}")
    X = v.check_X(X, allow_nan=True)
    coef = np.asarray(coef)
    shape = (coef.shape[0] if coef.ndim == 2 else -1, X.shape[1])
    coef = v.check_parameter_table(coef, shape, "coef")
    offset = v.check_parameter_table(offset, shape, "offset")
    if weights is not None:
        weights = v.check_weights(weights, shape[0])
    return X, coef, offset, weights


def linear_log_prob(X, coef, offset, distribution: str, *, backend: str = "auto", n_threads: int | None = None,
                    block_size: int = DEFAULT_BLOCK_SIZE) -> np.ndarray:
    """(N, K) float64 ``log p(x_i | k) = sum_d o_id (x_id coef[k, d] + offset[k, d] + log h(x_id))``
    over the observed features (``o_id``: x_id is not NaN); ``log h`` is 0 for "bernoulli",
    ``-log(x!)`` for "poisson". X (N, D) float32/float64; coef, offset (K, D) finite."""
    X, coef, offset, _ = _check_linear(X, coef, offset, distribution)
    return get_discrete_backend(backend).linear_log_prob(X, coef, offset, distribution,
                                                         **_options(n_threads, block_size))


def linear_em_stats(X, weights, coef, offset, distribution: str, sample_weight=None, *, backend: str = "auto",
                    n_threads: int | None = None, block_size: int = DEFAULT_BLOCK_SIZE):
    """One fused EM pass of a linear family (no (N, K) array): responsibilities under
    (weights (K,), coef, offset) folded into :class:`fastem.discrete_stats.IndependentStats`."""
    X, coef, offset, weights = _check_linear(X, coef, offset, distribution, weights)
    sample_weight = v.check_sample_weight(sample_weight, X.shape[0])
    return get_discrete_backend(backend).linear_em_stats(X, weights, coef, offset, distribution, sample_weight,
                                                         **_options(n_threads, block_size))


def _check_categorical(X, log_probs, n_categories, weights=None):
    X = v.check_X(X, allow_nan=True)
    n_categories = v.check_n_categories(n_categories, X.shape[1])
    log_probs = np.asarray(log_probs)
    n_components = log_probs.shape[0] if log_probs.ndim == 3 else -1
    log_probs = v.check_parameter_table(log_probs, (n_components, X.shape[1], int(n_categories.max())),
                                        "log_probs", allow_neg_inf=True)
    if weights is not None:
        weights = v.check_weights(weights, n_components)
    return X, log_probs, n_categories, weights


def categorical_log_prob(X, log_probs, n_categories, *, backend: str = "auto", n_threads: int | None = None,
                         block_size: int = DEFAULT_BLOCK_SIZE) -> np.ndarray:
    """(N, K) float64 ``log p(x_i | k) = sum_d o_id log_probs[k, d, x_id]``. X (N, D) float32/
    float64 category codes (NaN missing); log_probs (K, D, max n_categories), entries past
    a feature's ``n_categories[d]`` unused; n_categories (D,) ints >= 1."""
    X, log_probs, n_categories, _ = _check_categorical(X, log_probs, n_categories)
    return get_discrete_backend(backend).categorical_log_prob(X, log_probs, n_categories,
                                                              **_options(n_threads, block_size))


def categorical_em_stats(X, weights, log_probs, n_categories, sample_weight=None, *, backend: str = "auto",
                         n_threads: int | None = None, block_size: int = DEFAULT_BLOCK_SIZE):
    """One fused EM pass of the categorical family (no (N, K) array), into
    :class:`fastem.discrete_stats.CategoricalStats`."""
    X, log_probs, n_categories, weights = _check_categorical(X, log_probs, n_categories, weights)
    sample_weight = v.check_sample_weight(sample_weight, X.shape[0])
    return get_discrete_backend(backend).categorical_em_stats(X, weights, log_probs, n_categories, sample_weight,
                                                              **_options(n_threads, block_size))
