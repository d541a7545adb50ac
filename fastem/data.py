"""Data sources: what the EM driver iterates over, for every model family.

Every source reduces one EM pass with a *chunk function* supplied by the family
(``map_reduce(chunk_fn)``: the ordered sum of ``chunk_fn(X_chunk, sample_weight_chunk)``
over its validated chunks; the function is built once per pass from validated parameters,
is picklable, and may offer ``with_threads(n)`` so that a scheduler running chunks in
parallel can give each one thread), yields its data chunk by chunk for predictions
(``iter_chunks``), and draws a sample for initialisation (``sample``). The driver and the
estimators never see chunks. ``as_source`` picks the source for an input.

Chunks are validated as :func:`fastem._validation.check_X` does: float32 kept, other
numbers as float64, finite. A source made with ``allow_nan=True`` (families that
marginalise missing values) lets NaN through; its chunks are not scanned at all, because
those families' kernels reject infinity, as any value outside their domain, in their own
pass.
"""
from __future__ import annotations

from typing import Callable, Iterator, Protocol, TypeVar

import numpy as np

from ._sources._reservoir import Reservoir
from ._validation import check_sample_weight, check_X

Stats = TypeVar("Stats")  # anything with ``+``: a family's mergeable statistics
ChunkFunction = Callable[[np.ndarray, "np.ndarray | None"], Stats]


#: a data source that is not an in-memory array is initialised on a sample of this many rows
INIT_SAMPLE_ROWS = 100_000


class DataSource(Protocol):
    n_samples: int
    n_features: int
    dtype: np.dtype

    def map_reduce(self, chunk_fn: ChunkFunction) -> Stats: ...

    def iter_chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]: ...

    def sample(self, n: int, random_state: np.random.RandomState) -> np.ndarray: ...


class ArraySource:
    """An (N, D) array in memory or memory-mapped, optionally with sample weights.

    X is validated once (finite, or finite-or-NaN with ``allow_nan``; C-contiguous,
    float32 kept float32) and never copied again; one chunk function call (one kernel
    call) per EM pass. ``finite_checked=True``: the caller has already scanned X for
    non-finite values (an estimator's input validation), so it is not scanned twice.
    """

    def __init__(self, X, sample_weight=None, *, min_samples: int = 1, finite_checked: bool = False,
                 allow_nan: bool = False):
        self.X = check_X(X, min_samples=min_samples, finite=not finite_checked, allow_nan=allow_nan)
        self.n_samples, self.n_features = self.X.shape
        self.dtype = self.X.dtype
        self.sample_weight = check_sample_weight(sample_weight, self.n_samples)

    def map_reduce(self, chunk_fn):
        return chunk_fn(self.X, self.sample_weight)

    def iter_chunks(self):
        yield self.X, self.sample_weight

    def sample(self, n, random_state):
        if n >= self.n_samples:
            return self.X
        return self.X[np.sort(random_state.choice(self.n_samples, n, replace=False))]


def as_source(X, sample_weight=None, *, min_samples: int = 1, allow_nan: bool = False) -> DataSource:
    """The data source for ``X``: an existing source is returned as is; dask arrays, h5py
    datasets, zarr arrays, large memmaps, callables and iterators of chunks get a large-N
    source (:func:`fastem._sources.large_source`); other arrays become an :class:`ArraySource`.
    ``allow_nan``: NaN marks a missing value (families that marginalise them)."""
    if hasattr(X, "map_reduce") and hasattr(X, "iter_chunks"):  # any DataSource
        if sample_weight is not None:
            raise ValueError("pass sample_weight to the data source itself, not alongside it")
        return X
    from ._sources import large_source

    source = large_source(X, sample_weight, min_samples=min_samples, allow_nan=allow_nan)
    if source is None:
        source = ArraySource(X, sample_weight, min_samples=min_samples, allow_nan=allow_nan)
    return source


def initialisation_rows(source, random_state, init_size: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """The rows (and weights) to initialise on: all of an in-memory array, or ``init_size``
    of them drawn uniformly; a sample of ``init_size`` (default ``INIT_SAMPLE_ROWS``) rows
    of any other source. An array draws the rows a chunked source of the same data draws."""
    if not isinstance(source, ArraySource):
        return np.ascontiguousarray(source.sample(init_size or INIT_SAMPLE_ROWS, random_state)), None
    if init_size is None or init_size >= source.n_samples:
        return source.X, source.sample_weight
    reservoir = Reservoir(init_size, random_state)
    for start in range(0, source.n_samples, INIT_SAMPLE_ROWS):  # keys in bounded pieces, not N at once
        reservoir.offer(min(INIT_SAMPLE_ROWS, source.n_samples - start))
    positions = reservoir.result()[0]
    weights = None if source.sample_weight is None else source.sample_weight[positions]
    return source.X[positions], weights
