"""One EM pass over a chunked source: parameters validated once, chunks validated one by one.

Every chunk of a pass is reduced with the same parameters and the same ``shift``, so the
per-chunk :class:`~fastem.suff_stats.SuffStats` add up (``+``) to the statistics of the
whole data set, whatever the chunking.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validation as v
from .. import kernels
from .._threads import effective_n_threads
from ..reference import default_shift
from ..suff_stats import SuffStats


@dataclass(frozen=True, eq=False)
class EMPass:
    """Validated float64 parameters of one EM pass and the kernel options to run it with.

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
                backend: str = "auto", n_threads: int | None = None) -> EMPass:
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

    def with_threads(self, n_threads: int) -> EMPass:
        return EMPass(self.weights, self.means, self.precisions_cholesky, self.covariance_type, self.shift,
                      self.backend, n_threads, self.block_size)

    def __call__(self, X: np.ndarray, sample_weight: np.ndarray | None) -> SuffStats:
        """Statistics of one validated chunk (see :func:`check_chunk`)."""
        module = kernels.get_backend(self.backend, self.covariance_type)
        return module.em_stats(X, self.weights, self.means, self.precisions_cholesky, self.covariance_type,
                               sample_weight, self.shift, n_threads=self.n_threads, block_size=self.block_size)


def as_2d_chunk(chunk) -> np.ndarray:
    """A chunk as an array: anything ``np.asarray`` takes, or a columnar batch
    (``.columns`` + ``.num_rows``, e.g. a ``pyarrow.RecordBatch``) stacked column-wise."""
    if hasattr(chunk, "num_rows") and hasattr(chunk, "columns") and not hasattr(chunk, "__array__"):
        columns = [np.asarray(c) for c in chunk.columns]
        return np.column_stack(columns) if columns else np.empty((chunk.num_rows, 0))
    return np.asarray(chunk)


def check_chunk(X, sample_weight, *, index: int, n_features: int | None, dtype: np.dtype | None):
    """Validate one chunk: ``check_X`` (finite, 2-d, float32/float64 kept) and
    ``check_sample_weight``, plus the same ``n_features`` and dtype as earlier chunks.

    Returns ``(X, sample_weight)``; ``index`` is only quoted in error messages.
    """
    try:
        X = v.check_X(as_2d_chunk(X), min_samples=0)
        sample_weight = v.check_sample_weight(sample_weight, X.shape[0])
    except ValueError as exc:
        raise ValueError(f"chunk {index}: {exc}") from None
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"chunk {index} has {X.shape[1]} features, earlier chunks have {n_features}")
    if dtype is not None and X.dtype != dtype:
        raise ValueError(
            f"chunk {index} has dtype {X.dtype}, earlier chunks have {dtype}; give every chunk the same dtype"
        )
    return X, sample_weight


def add_all(stats) -> SuffStats:
    """``+`` of an iterable of SuffStats in order; ValueError when it is empty."""
    total = None
    for s in stats:
        total = s if total is None else total + s
    if total is None:
        raise ValueError("the data source yielded no samples")
    return total
