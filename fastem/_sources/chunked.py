"""Out-of-core data: anything that can be read in row chunks, reduced one chunk at a time.

Memory is O(chunk + K * D**2) per EM pass whatever the number of samples.
"""
from __future__ import annotations

import collections.abc
import numbers
from typing import Iterator

import numpy as np

from .. import kernels
from .._validation import check_X
from ._chunks import add_all, check_chunk
from ._reservoir import Reservoir

#: Bytes of X per chunk when the storage does not dictate a chunking (a memmap).
CHUNK_BYTES = 32 * 2**20


def _random_state(random_state) -> np.random.RandomState:
    if isinstance(random_state, np.random.RandomState):
        return random_state
    return np.random.RandomState(random_state)


def is_sliceable(data) -> bool:
    """Row-sliceable array storage: a numpy array/memmap, an h5py dataset, a zarr array."""
    return hasattr(data, "shape") and hasattr(data, "dtype") and hasattr(data, "__getitem__") and not callable(data)


def default_chunk_rows(data, chunk_bytes: int = CHUNK_BYTES) -> int:
    """Rows per chunk: about ``chunk_bytes`` of X, as a whole number of the storage's own
    row chunks (zarr shards/chunks, h5py chunks) when it has one, else of kernel blocks."""
    n_features = max(1, data.shape[1])
    target = max(1, chunk_bytes // (n_features * np.dtype(data.dtype).itemsize))
    native = getattr(data, "shards", None) or getattr(data, "chunks", None)
    if isinstance(native, tuple) and native and isinstance(native[0], numbers.Integral) and native[0] > 0:
        unit = int(native[0])
    else:
        unit = kernels.DEFAULT_BLOCK_SIZE
    return max(1, round(target / unit)) * unit


class ChunkedSource:
    """A data source read in row chunks: out-of-core EM.

    ``data`` is one of

    - row-sliceable storage of shape (N, D): a ``np.memmap`` (``np.load(path, mmap_mode="r")``),
      an ``h5py.Dataset``, a ``zarr.Array``; read ``data[a:b]`` chunk by chunk, with
      ``chunk_size`` rows per chunk (default: about 32 MiB, a multiple of the storage's own
      chunking). ``sample_weight`` is then None, a number, or (N,) sliceable storage too.
    - a callable returning an iterable of chunks ``X`` or ``(X, w)``, called again for every
      pass (e.g. ``lambda: pq.ParquetFile(path).iter_batches()``); chunks may be anything
      ``np.asarray`` takes, or columnar batches (``.columns``/``.num_rows``, a pyarrow
      ``RecordBatch``), and may be ragged in length;
    - a re-iterable (``iter(data)`` returns a fresh iterator, e.g. a list of chunks);
    - a one-shot iterator (a generator): passed over once only, a second pass raises
      ``ValueError`` (so it suits one pass of :mod:`fastem.online`, not batch EM).

    Every chunk is validated as it is read (finite, or finite-or-NaN with ``allow_nan``;
    2-d, the same ``n_features`` and dtype as the first chunk; float32 stays float32, other
    numbers become float64). Weights of
    iterables come with their chunks, so ``sample_weight`` must be None for them.

    ``n_features`` and ``dtype`` are known at once (iterables: read from the first chunk).
    ``n_samples`` is known at once for storage; for iterables it is counted by the first full
    pass (``map_reduce``, ``sample`` or ``iter_chunks``); reading it earlier runs a counting
    pass (callables, re-iterables), or raises ``ValueError`` (one-shot iterators).
    """

    def __init__(self, data, sample_weight=None, *, chunk_size: int | None = None, min_samples: int = 1,
                 allow_nan: bool = False):
        if chunk_size is not None and (not isinstance(chunk_size, numbers.Integral) or chunk_size < 1):
            raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
        self.min_samples = min_samples
        self.allow_nan = allow_nan
        self._n_samples = self._n_features = self._dtype = None
        self._pending = []  # chunks read ahead from a one-shot iterator
        self._passes = 0
        if is_sliceable(data):
            self._kind = "storage"
            self._init_storage(data, sample_weight, chunk_size)
            return
        if isinstance(data, (str, bytes)) or not (callable(data) or isinstance(data, collections.abc.Iterable)):
            raise ValueError(
                "ChunkedSource needs row-sliceable storage (memmap, h5py dataset, zarr array), a callable "
                f"returning an iterable of chunks, or an iterable of chunks; got {type(data).__name__}"
            )
        if sample_weight is not None:
            raise ValueError("for an iterable of chunks, yield (X, sample_weight) chunks instead of passing "
                             "sample_weight")
        self.data = data
        if callable(data):
            self._kind = "callable"
        elif isinstance(data, collections.abc.Iterator):
            self._kind = "iterator"
        else:
            self._kind = "iterable"

    def _init_storage(self, data, sample_weight, chunk_size):
        if len(data.shape) != 2:
            raise ValueError(f"X must be a 2-d array (n_samples, n_features), got shape {tuple(data.shape)}")
        dtype = np.dtype(data.dtype)
        if dtype.kind not in "fiub":
            raise ValueError(f"X must be real numeric, got dtype {dtype}")
        self.data = data
        self._n_samples, self._n_features = (int(n) for n in data.shape)
        self._dtype = dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)
        if self._n_features < 1:
            raise ValueError("X has 0 features, at least 1 required")
        if self._n_samples < self.min_samples:
            raise ValueError(f"X has {self._n_samples} samples, at least {self.min_samples} required")
        self.chunk_size = int(chunk_size) if chunk_size is not None else default_chunk_rows(data)
        if sample_weight is None or isinstance(sample_weight, numbers.Number):
            self._sample_weight = sample_weight
        else:
            if not is_sliceable(sample_weight):
                sample_weight = np.asarray(sample_weight)
            if tuple(sample_weight.shape) != (self._n_samples,):
                raise ValueError(f"sample_weight must have shape ({self._n_samples},), "
                                 f"got {tuple(sample_weight.shape)}")
            self._sample_weight = sample_weight

    # --- metadata ---------------------------------------------------------------------------
    @property
    def n_features(self) -> int:
        if self._n_features is None:
            self._peek()
        return self._n_features

    @property
    def dtype(self) -> np.dtype:
        if self._dtype is None:
            self._peek()
        return self._dtype

    @property
    def n_samples(self) -> int:
        if self._n_samples is None:
            if self._kind == "iterator":
                raise ValueError(
                    "the number of samples of a one-shot iterator is known only after its single pass, and "
                    "batch EM needs one pass per iteration: pass a callable that returns a fresh iterator"
                )
            for _ in self._validated_chunks():
                pass
        return self._n_samples

    def _peek(self) -> None:
        """Read the first non-empty chunk to learn n_features and dtype."""
        if self._kind == "iterator":
            if self._passes:
                raise ValueError("the one-shot iterator is exhausted; its n_features was never seen")
            for raw in self.data:
                self._pending.append(raw)
                X, _ = check_chunk(*self._split(raw), index=len(self._pending) - 1, n_features=None, dtype=None,
                                   allow_nan=self.allow_nan)
                if len(X):
                    self._n_features, self._dtype = X.shape[1], X.dtype
                    return
        else:
            for _ in self._validated_chunks(stop_after_first=True):
                return
        raise ValueError("the data source yielded no samples")

    # --- passes -----------------------------------------------------------------------------
    @staticmethod
    def _split(raw):
        if isinstance(raw, tuple):
            if len(raw) != 2:
                raise ValueError(f"chunks must be X or (X, sample_weight), got a tuple of length {len(raw)}")
            return raw
        return raw, None

    def _raw_chunks(self) -> Iterator:
        if self._kind == "storage":
            for start in range(0, self._n_samples, self.chunk_size):
                stop = min(start + self.chunk_size, self._n_samples)
                w = self._sample_weight
                if w is not None and not isinstance(w, numbers.Number):
                    w = w[start:stop]
                yield self.data[start:stop], w
        elif self._kind == "iterator":
            if self._passes:
                raise ValueError(
                    "this data source is a one-shot iterator and was already passed over; EM needs one "
                    "pass per iteration: pass a callable that returns a fresh iterator instead "
                    "(e.g. lambda: pq.ParquetFile(path).iter_batches())"
                )
            self._passes += 1
            pending, self._pending = self._pending, []
            for raw in pending:
                yield self._split(raw)
            for raw in self.data:
                yield self._split(raw)
        else:
            chunks = self.data() if self._kind == "callable" else iter(self.data)
            if not isinstance(chunks, collections.abc.Iterable):
                raise ValueError(f"the callable must return an iterable of chunks, got {type(chunks).__name__}")
            yield from (self._split(raw) for raw in chunks)

    def _validated_chunks(self, stop_after_first: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """One pass: validated non-empty chunks; a complete pass records ``n_samples``."""
        n_samples = 0
        for index, (X, w) in enumerate(self._raw_chunks()):
            X, w = check_chunk(X, w, index=index, n_features=self._n_features, dtype=self._dtype,
                               allow_nan=self.allow_nan)
            if not len(X):
                continue
            if self._n_features is None:
                self._n_features, self._dtype = X.shape[1], X.dtype
            n_samples += len(X)
            yield X, w
            if stop_after_first:
                return
        if n_samples < self.min_samples:
            raise ValueError(f"X has {n_samples} samples, at least {self.min_samples} required")
        self._n_samples = n_samples

    def iter_chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Validated ``(X_chunk, sample_weight_chunk or None)`` pairs, one pass."""
        return self._validated_chunks()

    def map_reduce(self, chunk_fn):
        """``chunk_fn(X, w)`` of every validated chunk, added up in order (one pass)."""
        return add_all(chunk_fn(X, w) for X, w in self._validated_chunks())

    def sample(self, n: int, random_state) -> np.ndarray:
        """``n`` distinct rows drawn uniformly in one pass (all rows when there are at most
        ``n``), in data order; reproducible for a given seed and independent of the chunking.

        Storage draws keys for row positions and then reads only the chosen rows; iterables
        keep a reservoir of rows (memory O(n * D))."""
        reservoir = Reservoir(n, _random_state(random_state))
        if self._kind != "storage":
            for X, _ in self._validated_chunks():
                reservoir.offer(len(X), X)
            return reservoir.result()[1]
        for start in range(0, self._n_samples, self.chunk_size):
            reservoir.offer(min(self.chunk_size, self._n_samples - start))
        positions = reservoir.result()[0]
        if isinstance(self.data, np.ndarray):
            rows = self.data[positions]
        else:
            rows = [self._read_rows(positions, start) for start in range(0, self._n_samples, self.chunk_size)]
            rows = np.concatenate([r for r in rows if r is not None])
        return check_X(rows, name="the sample of X", allow_nan=self.allow_nan)

    def _read_rows(self, positions: np.ndarray, start: int) -> np.ndarray | None:
        """Rows at sorted ``positions`` that fall in the chunk starting at ``start``."""
        stop = min(start + self.chunk_size, self._n_samples)
        lo, hi = np.searchsorted(positions, [start, stop])
        if lo == hi:
            return None
        return np.asarray(self.data[start:stop])[positions[lo:hi] - start]
