"""The one table of benchmarked implementations, shared by ``benchmarks/``, ``fastem bench``
and ``tests/test_bench.py``.

Operations:

- kernel level: ``logsumexp``, ``gaussian_log_prob``, ``em_stats`` (one fused E + M pass).
  fastem backends are called directly on inputs that already satisfy the kernel
  contract (the public wrappers in :mod:`fastem.kernels` would validate X on every call),
  so these rows time the kernels alone.
- estimator level: ``iteration`` (``fit`` with ``max_iter=1``) and ``fit`` (``max_iter``
  iterations, default :data:`FIT_ITERATIONS`), both with ``tol=0`` from the problem's fixed
  parameters (``weights_init``/``means_init``/``precisions_init``), ConvergenceWarning
  suppressed. These rows time what a user pays: validation, initialisation, the final
  E-step scikit-learn does for labels.
- end to end (what ``GaussianMixture(K, covariance_type=...).fit(X)`` costs with every
  other parameter at its default): ``init`` (the same fit with ``max_iter=0``: validation
  and the k-means initialisation only), ``default_fit`` (the whole fit; EM time =
  default_fit - init), ``random_fit`` (the whole fit with ``init_params="random"``: the
  many-tiny-fits case, e.g. ``--n 100 --dims 1x2``) and ``kmeans`` (``KMeans(K, n_init=1)``
  as the initialisation runs it: fastem's :func:`fastem.cluster.kmeans` against
  ``sklearn.cluster.KMeans``). The number of iterations is the fit's own.

Implementations: one per fastem backend that imports (:func:`fastem.kernels.available_backends`;
``"numpy"`` is :mod:`fastem.reference`, the *reference* the ratios are taken against) and
``"sklearn"``: for kernels scikit-learn's private building blocks
(``_estimate_log_gaussian_prob``, ``scipy.special.logsumexp``, ``_estimate_gaussian_parameters``
+ ``_compute_precision_cholesky``: what one scikit-learn EM iteration runs), for the
estimator level ``sklearn.mixture.GaussianMixture``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import kernels
from .problems import REG_COVAR, SEED, Problem

KERNEL_OPS = ("logsumexp", "gaussian_log_prob", "em_stats")
ESTIMATOR_OPS = ("iteration", "fit")
END_TO_END_OPS = ("init", "default_fit", "random_fit", "kmeans")
OPS = KERNEL_OPS + ESTIMATOR_OPS + END_TO_END_OPS
LEVELS = {"kernel": KERNEL_OPS, "fit": ESTIMATOR_OPS, "end_to_end": END_TO_END_OPS, "all": OPS}
#: Iterations of the ``fit`` operation.
FIT_ITERATIONS = 5
REFERENCE = "numpy"
SKLEARN = "sklearn"


@dataclass(frozen=True)
class Implementation:
    """One row of the table: implementation ``name`` of operation ``op``.

    ``backend`` is the fastem backend name, or None for scikit-learn.
    """

    name: str
    op: str
    backend: str | None

    @property
    def level(self) -> str:
        return "kernel" if self.op in KERNEL_OPS else "fit" if self.op in ESTIMATOR_OPS else "end_to_end"

    @property
    def id(self) -> str:
        return f"{self.op}:{self.name}"

    def unavailable_reason(self) -> str | None:
        """Why this row cannot run here, or None."""
        if self.level != "kernel" and self.op != "kmeans" and self.backend is not None:
            try:
                _fastem_estimator()
            except (ImportError, AttributeError) as exc:
                return f"fastem.GaussianMixture is not available ({type(exc).__name__}: {exc})"
        return None

    def prepare(self, problem: Problem, n_threads: int, max_iter: int = FIT_ITERATIONS) -> Callable[[], object]:
        """A zero-argument callable that runs the operation once on ``problem``."""
        if self.level == "kernel":
            if self.backend is None:
                return _sklearn_kernel(self.op, problem)
            return _fastem_kernel(kernels.get_backend(self.backend), self.op, problem, n_threads)
        if self.op == "kmeans":
            return _kmeans(self.backend, problem, n_threads)
        if self.level == "end_to_end":
            params = problem.default_params(max_iter=0 if self.op == "init" else 100,
                                            init_params="random" if self.op == "random_fit" else "kmeans")
            return self._estimator(params, n_threads, problem.X)
        iterations = 1 if self.op == "iteration" else max_iter
        return self._estimator(problem.estimator_params(iterations), n_threads, problem.X)

    def _estimator(self, params: dict, n_threads: int, X) -> Callable[[], object]:
        if self.backend is None:
            from sklearn.mixture import GaussianMixture

            estimator = GaussianMixture(**params)
        else:
            estimator = _fastem_estimator()(**params, backend=self.backend, n_jobs=n_threads)
        return lambda: _fit_quietly(estimator, X)


def implementation_table(ops=OPS, names=None) -> list[Implementation]:
    """Every (implementation, op) row for ``ops``: the baselines (reference, scikit-learn)
    first, then the other fastem backends that import, fastest first; ``names`` keeps
    only those implementations."""
    backends = kernels.available_backends()
    wanted = [REFERENCE, SKLEARN, *(name for name in backends if name != REFERENCE)]
    if names is not None:
        unknown = sorted(set(names) - set(wanted))
        if unknown:
            raise ValueError(f"unknown or unavailable implementation(s) {unknown}; available: {wanted}")
        wanted = [name for name in wanted if name in names]
    unknown_ops = sorted(set(ops) - set(OPS))
    if unknown_ops:
        raise ValueError(f"unknown operation(s) {unknown_ops}; choose from {list(OPS)}")
    return [Implementation(name, op, None if name == SKLEARN else name) for op in ops for name in wanted]


def _fastem_estimator():
    from .. import GaussianMixture

    return GaussianMixture


def _fit_quietly(estimator, X):
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X)


def _kmeans(backend: str | None, p: Problem, n_threads: int) -> Callable[[], object]:
    """k-means++ then Lloyd, as GaussianMixture's ``init_params="kmeans"`` runs it."""
    k = p.config.n_components
    if backend is None:
        from sklearn.cluster import KMeans

        return lambda: KMeans(k, n_init=1, random_state=SEED).fit(p.X)
    from ..cluster import kmeans

    return lambda: kmeans(p.X, k, random_state=SEED, compute_inertia=False, backend=backend, n_threads=n_threads)


def _fastem_kernel(module, op: str, p: Problem, n_threads: int) -> Callable[[], object]:
    options = {"n_threads": n_threads, "block_size": kernels.DEFAULT_BLOCK_SIZE}
    ct = p.config.covariance_type
    if op == "logsumexp":
        a = p.weighted_log_prob
        return lambda: module.logsumexp(a, -1, **options)
    if op == "gaussian_log_prob":
        return lambda: module.gaussian_log_prob(p.X, p.means, p.precisions_cholesky, ct, **options)
    shift = p.shift
    return lambda: module.em_stats(p.X, p.weights, p.means, p.precisions_cholesky, ct, None, shift, **options)


def _sklearn_kernel(op: str, p: Problem) -> Callable[[], object]:
    from scipy.special import logsumexp
    from sklearn.mixture._gaussian_mixture import (
        _compute_precision_cholesky,
        _estimate_gaussian_parameters,
        _estimate_log_gaussian_prob,
    )

    ct = p.config.covariance_type
    if op == "logsumexp":
        a = p.weighted_log_prob
        return lambda: logsumexp(a, axis=1)
    if op == "gaussian_log_prob":
        return lambda: _estimate_log_gaussian_prob(p.X, p.means, p.precisions_cholesky, ct)
    log_weights = np.log(p.weights)

    def em_iteration():  # GaussianMixture._e_step then ._m_step
        weighted = _estimate_log_gaussian_prob(p.X, p.means, p.precisions_cholesky, ct) + log_weights
        log_prob_norm = logsumexp(weighted, axis=1)
        resp = np.exp(weighted - log_prob_norm[:, None])
        nk, means, covariances = _estimate_gaussian_parameters(p.X, resp, REG_COVAR, ct)
        return nk, means, _compute_precision_cholesky(covariances, ct), np.mean(log_prob_norm)

    return em_iteration
