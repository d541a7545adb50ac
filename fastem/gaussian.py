"""Gaussian model family: parameter algebra on K x D x D arrays (no loops over samples).

The M-step turns :class:`~fastem.suff_stats.SuffStats` into weights, means and covariances;
the helpers convert covariances to the Cholesky factor of the precision, the
parameterisation every kernel takes (as scikit-learn does: for full/tied it is upper
triangular with ``precision = P @ P.T``; for diag/spherical it is ``1 / sqrt(variance)``).
"""
from __future__ import annotations

import numpy as np
from scipy import linalg
from scipy.linalg.lapack import dpotrf as _potrf, dtrtrs as _trtrs

from ._kernels._isa import import_kernels
from .suff_stats import SuffStats

# scikit-learn adds this to nk before dividing, so that empty components give finite
# parameters; we do the same so that fits agree to rounding.
NK_EPS = 10 * np.finfo(np.float64).eps

# scikit-learn's message first (clients match on it), then which covariance and reg_covar
_ILL_DEFINED = (
    "Fitting the mixture model failed because some components have ill-defined empirical "
    "covariance (for instance caused by singleton or collapsed samples). Try to decrease the "
    "number of components, increase reg_covar, or scale the input data. Here {what} is not "
    "positive definite with reg_covar (currently {reg_covar!r})."
)


def m_step(stats: SuffStats, reg_covar: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximise the expected complete-data log-likelihood given sufficient statistics.

    Returns ``weights`` (K,), ``means`` (K, D) and ``covariances`` (shape by type:
    full (K, D, D), tied (D, D), diag (K, D), spherical (K,)), all float64, with
    ``reg_covar`` added to the diagonal.
    """
    nk = stats.nk + NK_EPS
    total = nk.sum()
    centre = stats.sum_x / nk[:, None]  # mean minus shift
    if stats.covariance_type == "tied":
        means = stats.shift[None, :] + centre
    else:
        means = stats.shift + centre
    n_features = stats.n_features
    if stats.covariance_type == "full":
        cov = stats.sum_xx / nk[:, None, None] - centre[:, :, None] * centre[:, None, :]
        cov = 0.5 * (cov + cov.transpose(0, 2, 1))
        cov.reshape(len(cov), -1)[:, :: n_features + 1] += reg_covar  # the diagonals (a view: cov is contiguous)
    elif stats.covariance_type == "tied":
        between = (nk[:, None] * centre).T @ centre
        cov = (stats.sum_xx - between) / total
        cov = 0.5 * (cov + cov.T)
        cov.reshape(-1)[:: n_features + 1] += reg_covar  # the diagonal (a view: cov is contiguous)
    elif stats.covariance_type == "diag":
        cov = stats.sum_xx / nk[:, None] - centre**2 + reg_covar
    else:
        cov = (stats.sum_xx / nk - (centre**2).sum(axis=1)) / n_features + reg_covar
    weights = nk / total
    return weights, means, cov


def precisions_cholesky_from_covariances(
    covariances: np.ndarray, covariance_type: str, reg_covar: float | None = None
) -> np.ndarray:
    """Cholesky factor of the precision; ``ValueError`` naming the component when a
    covariance is not positive definite (``reg_covar`` is only quoted in the message)."""
    if covariance_type in ("full", "tied"):
        mats = np.ascontiguousarray(covariances[None] if covariance_type == "tied" else covariances,
                                    dtype=np.float64)
        out = np.empty_like(mats)
        bad = _factorise(mats, out)
        if bad >= 0:
            raise _ill_defined(covariance_type, bad, reg_covar)
        return out[0] if covariance_type == "tied" else out
    positive = np.asarray(covariances) > 0  # NaN is not
    if not positive.all():
        raise _ill_defined(covariance_type, _first_bad(positive), reg_covar)
    return 1.0 / np.sqrt(covariances)


def _factorise_lapack(covariances: np.ndarray, out: np.ndarray) -> int:
    """The compiled ``precisions_cholesky`` kernel's contract in Python (used where the
    Cython kernels are not built): ``out[k] = inv(cholesky(covariances[k])).T`` for
    (K, D, D) float64, returning the first component that is not positive definite or
    whose inverse overflows, -1 when none."""
    eye = np.eye(covariances.shape[-1])
    for k, cov in enumerate(covariances):
        # LAPACK directly: the routines scipy.linalg.cholesky and solve_triangular call (so
        # the same numbers as scikit-learn's), without their per-call checks
        cov_chol, info = _potrf(cov, lower=1, clean=1)
        if info == 0:
            inverse, info = _trtrs(cov_chol, eye, lower=1)
        if info != 0 or not np.isfinite(inverse).all():
            return k
        out[k] = inverse.T
    return -1


try:  # one compiled call for all components: a Python loop of LAPACK calls costs more than small factorisations
    _factorise = import_kernels("_gaussian")[0].precisions_cholesky
except ImportError:
    _factorise = _factorise_lapack


def _first_bad(ok: np.ndarray) -> int:
    """The first component (leading axis of ``ok``) with a False entry (there is one)."""
    return int(np.flatnonzero(~ok.all(axis=tuple(range(1, ok.ndim))))[0])


def _ill_defined(covariance_type: str, component: int, reg_covar) -> ValueError:
    what = "the tied covariance" if covariance_type == "tied" else f"the covariance of component {component}"
    return ValueError(_ILL_DEFINED.format(what=what, reg_covar=reg_covar))


def covariances_from_precisions_cholesky(precisions_cholesky: np.ndarray, covariance_type: str) -> np.ndarray:
    """Inverse of :func:`precisions_cholesky_from_covariances`."""
    if covariance_type == "full":
        return np.stack([np.linalg.inv(p @ p.T) for p in precisions_cholesky])
    if covariance_type == "tied":
        return np.linalg.inv(precisions_cholesky @ precisions_cholesky.T)
    return 1.0 / precisions_cholesky**2


def precisions_from_precisions_cholesky(precisions_cholesky: np.ndarray, covariance_type: str) -> np.ndarray:
    """``P @ P.T`` for full/tied, ``P**2`` for diag/spherical."""
    if covariance_type == "full":
        return precisions_cholesky @ precisions_cholesky.transpose(0, 2, 1)
    if covariance_type == "tied":
        return precisions_cholesky @ precisions_cholesky.T
    return precisions_cholesky**2


def precisions_cholesky_from_precisions(precisions: np.ndarray, covariance_type: str) -> np.ndarray:
    """Upper-triangular ``P`` with ``P @ P.T == precisions`` (full/tied), sqrt otherwise."""
    if covariance_type in ("full", "tied"):
        mats = precisions[None] if covariance_type == "tied" else precisions
        out = np.empty_like(mats, dtype=np.float64)
        for k, prec in enumerate(mats):
            # P = flip(chol(flip(prec))) is upper triangular with P @ P.T == prec
            try:
                low = linalg.cholesky(prec[::-1, ::-1], lower=True)
            except linalg.LinAlgError:
                what = "the tied precision" if covariance_type == "tied" else f"component {k}'s precision"
                raise ValueError(f"{what} is not symmetric positive definite") from None
            out[k] = low[::-1, ::-1]
        return out[0] if covariance_type == "tied" else out
    return np.sqrt(precisions)


def log_det_cholesky(precisions_cholesky: np.ndarray, covariance_type: str, n_components: int, n_features: int) -> np.ndarray:
    """``log det`` of each component's precision Cholesky factor, (K,) float64."""
    if covariance_type == "full":
        return np.log(precisions_cholesky.diagonal(axis1=1, axis2=2)).sum(axis=1)
    if covariance_type == "tied":
        return np.full(n_components, np.log(precisions_cholesky.diagonal()).sum())
    if covariance_type == "diag":
        return np.log(precisions_cholesky).sum(axis=1)
    return n_features * np.log(precisions_cholesky)


def mahalanobis_sum(stats: SuffStats, means: np.ndarray, precisions_cholesky: np.ndarray) -> float:
    """``sum_i w_i sum_k r_ik ||(x_i - means_k) @ P_k||**2`` from the statistics alone.

    The second moments are moved from the statistics' shift ``c`` to the means
    (``sum r (x - m)(x - m)^T = S - s d^T - d s^T + nk d d^T`` with ``d = m - c``), so no
    pass over the data is needed; with the default shift (the means) ``d`` is 0.
    means (K, D) and precisions_cholesky (by covariance type) float64.
    """
    ct = stats.covariance_type
    d = means - stats.shift
    nk, s = stats.nk, stats.sum_x
    squares = precisions_cholesky**2
    if ct == "full":
        moved = (stats.sum_xx - s[:, :, None] * d[:, None, :] - d[:, :, None] * s[:, None, :]
                 + nk[:, None, None] * d[:, :, None] * d[:, None, :])
        return float(np.sum(precisions_from_precisions_cholesky(precisions_cholesky, ct) * moved))
    if ct == "tied":
        moved = stats.sum_xx - s.T @ d - d.T @ s + (nk[:, None] * d).T @ d
        return float(np.sum(precisions_from_precisions_cholesky(precisions_cholesky, ct) * moved))
    if ct == "diag":
        return float(np.sum(squares * (stats.sum_xx - 2 * d * s + nk[:, None] * d**2)))
    return float(squares @ (stats.sum_xx - 2 * np.sum(d * s, axis=1) + nk * np.sum(d**2, axis=1)))
