"""Data sources: what the EM driver iterates over.

Every source reduces one EM pass to a single :class:`~fastem.suff_stats.SuffStats`
(``em_stats``; ``check_parameters=False`` says the parameters came from fastem's own
M-step, which lets a small in-memory pass skip their checks; sources of large data may
check them anyway), yields its data chunk by chunk for predictions (``iter_chunks``), and
draws a sample for initialisation (``sample``). The driver and the estimators never
see chunks. ``as_source`` picks the source for an input.
"""
from __future__ import annotations

from typing import Iterator, Protocol

import numpy as np

from . import kernels
from ._validation import check_sample_weight, check_X
from .suff_stats import SuffStats


class DataSource(Protocol):
    n_samples: int
    n_features: int
    dtype: np.dtype

    def em_stats(self, weights, means, precisions_cholesky, covariance_type: str, *, backend: str,
                 n_threads: int | None, check_parameters: bool = True) -> SuffStats: ...

    def iter_chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]: ...

    def sample(self, n: int, random_state: np.random.RandomState) -> np.ndarray: ...


class ArraySource:
    """An (N, D) array in memory or memory-mapped, optionally with sample weights.

    X is validated once (finite, C-contiguous, float32 kept float32) and never copied
    again; one kernel call per EM pass. ``finite_checked=True``: the caller has already
    scanned X for non-finite values (an estimator's input validation), so it is not
    scanned twice.
    """

    def __init__(self, X, sample_weight=None, *, min_samples: int = 1, finite_checked: bool = False):
        self.X = check_X(X, min_samples=min_samples, finite=not finite_checked)
        self.n_samples, self.n_features = self.X.shape
        self.dtype = self.X.dtype
        self.sample_weight = check_sample_weight(sample_weight, self.n_samples)

    def em_stats(self, weights, means, precisions_cholesky, covariance_type, *, backend="auto", n_threads=None,
                 check_parameters=True):
        return kernels.em_stats(self.X, weights, means, precisions_cholesky, covariance_type, self.sample_weight,
                                backend=backend, n_threads=n_threads, check_parameters=check_parameters)

    def iter_chunks(self):
        yield self.X, self.sample_weight

    def sample(self, n, random_state):
        if n >= self.n_samples:
            return self.X
        return self.X[np.sort(random_state.choice(self.n_samples, n, replace=False))]


def as_source(X, sample_weight=None, *, min_samples: int = 1) -> DataSource:
    """The data source for ``X``: an existing source is returned as is; dask arrays, h5py
    datasets, zarr arrays, large memmaps, callables and iterators of chunks get a large-N
    source (:func:`fastem._sources.large_source`); other arrays become an :class:`ArraySource`."""
    if hasattr(X, "em_stats") and hasattr(X, "iter_chunks"):  # any DataSource
        if sample_weight is not None:
            raise ValueError("pass sample_weight to the data source itself, not alongside it")
        return X
    from ._sources import large_source

    source = large_source(X, sample_weight, min_samples=min_samples)
    return source if source is not None else ArraySource(X, sample_weight, min_samples=min_samples)
