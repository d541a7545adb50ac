"""The Gaussian chunk function: one EM pass over any data source.

Every chunk of a pass is reduced with the same parameters and the same ``shift``, so the
per-chunk :class:`~fastem.suff_stats.SuffStats` add up (``+``) to the statistics of the
whole data set, whatever the chunking (see ``map_reduce`` in :mod:`fastem.data`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ... import _validation as v
from ... import kernels
from ..._threads import effective_n_threads
from ...reference import default_shift
from ...suff_stats import SuffStats


@dataclass(frozen=True, eq=False)
class GaussianPass:
    """Validated float64 parameters of one EM pass and the kernel options to run it with;
    called on each validated chunk ``(X, sample_weight)``.

    Small (K x D x D) and picklable: dask ships it to workers as one graph key.
    """

    weights: np.ndarray
    means: np.ndarray
    precisions_cholesky: np.ndarray
    covariance_type: str
    shift: np.ndarray
    backend: str  # a concrete backend name, resolved once
    n_threads: int
    block_size: int = kernels.DEFAULT_BLOCK_SIZE

    @classmethod
    def prepare(cls, weights, means, precisions_cholesky, covariance_type: str, n_features: int, *,
                backend: str = "auto", n_threads: int | None = None, check_parameters: bool = True) -> GaussianPass:
        """``check_parameters=False``: the parameters come from fastem's own M-step
        (C-contiguous float64 of consistent shapes), where the checks would cost more than
        a small pass."""
        if check_parameters:
            v.check_covariance_type(covariance_type)
            means = v.check_means(means, n_features)
            n_components = means.shape[0]
            precisions_cholesky = v.check_precisions_cholesky(precisions_cholesky, covariance_type, n_components,
                                                              n_features)
            weights = v.check_weights(weights, n_components)
        shift = np.ascontiguousarray(default_shift(weights, means, covariance_type), dtype=np.float64)
        return cls(weights, means, precisions_cholesky, covariance_type, shift,
                   kernels.resolve_backend_name(backend, covariance_type),
                   effective_n_threads(v.check_n_threads(n_threads)))

    def with_threads(self, n_threads: int) -> GaussianPass:
        return replace(self, n_threads=n_threads)

    def __call__(self, X: np.ndarray, sample_weight: np.ndarray | None) -> SuffStats:
        """Statistics of one validated chunk (finite, C-contiguous float32/float64): the
        backend directly, every check of the public kernel already done."""
        return kernels.get_backend(self.backend, self.covariance_type).em_stats(
            X, self.weights, self.means, self.precisions_cholesky, self.covariance_type, sample_weight, self.shift,
            n_threads=self.n_threads, block_size=self.block_size)


def em_stats(source, weights, means, precisions_cholesky, covariance_type: str, *, backend: str = "auto",
             n_threads: int | None = None, check_parameters: bool = True) -> SuffStats:
    """One fused Gaussian EM pass over a data source (:mod:`fastem.data`): the sum of the
    chunks' :func:`fastem.kernels.em_stats` around one shift (the default shift of the
    parameters), so the result does not depend on the chunking."""
    em_pass = GaussianPass.prepare(weights, means, precisions_cholesky, covariance_type, source.n_features,
                                   backend=backend, n_threads=n_threads, check_parameters=check_parameters)
    return source.map_reduce(em_pass)
