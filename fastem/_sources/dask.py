"""Dask arrays as a data source: one EM pass is a map-reduce of the family's chunk
function over the row blocks.

dask is an optional dependency, imported only when a :class:`DaskSource` is made.

Graph of one pass (built with ``dask.delayed``, so that it runs unchanged on the threaded,
process and ``dask.distributed`` schedulers):

- the chunk function (the validated parameters) enters the graph once, as
  ``dask.delayed(chunk_fn, pure=False)``: one key
  named by a random token, so large arrays are never hashed and every block task shares it
  (no ``client.scatter``, so no race between scatters of the same hashed key);
- map: one task per row block, ``chunk_fn(block)`` with BLAS pinned to one thread
  (the scheduler already runs tasks in parallel) and ``chunk_fn.with_threads(1)`` unless
  the scheduler is synchronous;
- reduce: a tree of ``+`` with fan-in ``split_every``, in block order, so the result does
  not depend on which worker finished first (``dask.array.reduction`` was not used: it wants
  array-valued partials, the statistics are objects).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .._threads import cpu_count
from .._validation import check_X
from ._chunks import add_all, check_chunk
from ._reservoir import Reservoir
from .chunked import _random_state

_SYNCHRONOUS = ("sync", "synchronous", "single-threaded")


def _block_stats(X, sample_weight, chunk_fn, index: int, n_features: int, allow_nan: bool):
    """Map step: ``chunk_fn`` of one validated block (None for an empty block)."""
    X, sample_weight = check_chunk(X, sample_weight, index=index, n_features=n_features, dtype=None,
                                   allow_nan=allow_nan)
    return chunk_fn(X, sample_weight) if len(X) else None


def _add_stats(*parts):
    """Reduce step: ``+`` of the non-empty partial statistics, in order."""
    parts = [p for p in parts if p is not None]
    return add_all(parts) if parts else None


def _tasks_run_in_parallel() -> bool:
    import dask

    return dask.config.get("scheduler", None) not in _SYNCHRONOUS


class DaskSource:
    """A 2-d ``dask.array.Array`` (N, D), optionally with ``sample_weight`` (a number, or (N,)
    numpy or dask array, rechunked to X's row blocks).

    Blocks are validated inside their tasks (finite, or finite-or-NaN with ``allow_nan``;
    float32 stays float32, other numbers become float64); column blocks are merged (``rechunk({1: -1})``) so a task sees whole rows.
    Row chunk sizes must be known (call ``X.compute_chunk_sizes()`` after boolean masking).
    """

    def __init__(self, X, sample_weight=None, *, min_samples: int = 1, split_every: int = 8,
                 allow_nan: bool = False):
        import dask.array as da

        if X.ndim != 2:
            raise ValueError(f"X must be a 2-d array (n_samples, n_features), got shape {X.shape}")
        if any(math.isnan(n) for n in X.shape):
            raise ValueError("X has unknown chunk sizes; call X.compute_chunk_sizes() first")
        if X.dtype.kind not in "fiub":
            raise ValueError(f"X must be real numeric, got dtype {X.dtype}")
        if not isinstance(split_every, numbers.Integral) or split_every < 2:
            raise ValueError(f"split_every must be an int >= 2, got {split_every!r}")
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        if X.numblocks[1] > 1:
            X = X.rechunk({1: -1})
        self.X = X
        self.n_samples, self.n_features = (int(n) for n in X.shape)
        self.dtype = np.dtype(X.dtype)
        self.split_every = int(split_every)
        self.allow_nan = allow_nan
        if self.n_features < 1:
            raise ValueError("X has 0 features, at least 1 required")
        if self.n_samples < min_samples:
            raise ValueError(f"X has {self.n_samples} samples, at least {min_samples} required")
        self._x_blocks = list(X.to_delayed().ravel())
        if sample_weight is None or isinstance(sample_weight, numbers.Number):
            self._w_blocks = [sample_weight] * len(self._x_blocks)
        else:
            sample_weight = da.asarray(sample_weight)
            if sample_weight.shape != (self.n_samples,):
                raise ValueError(f"sample_weight must have shape ({self.n_samples},), got {sample_weight.shape}")
            sample_weight = sample_weight.rechunk((X.chunks[0],))
            self._w_blocks = list(sample_weight.to_delayed().ravel())

    def map_reduce(self, chunk_fn):
        """``chunk_fn`` of every block, added up in a tree in block order."""
        import dask

        if _tasks_run_in_parallel() and hasattr(chunk_fn, "with_threads"):
            chunk_fn = chunk_fn.with_threads(1)
        params = dask.delayed(chunk_fn, pure=False, traverse=False)
        block_stats = dask.delayed(_block_stats, pure=False)
        add_stats = dask.delayed(_add_stats, pure=False)
        parts = [block_stats(x, w, params, i, self.n_features, self.allow_nan)
                 for i, (x, w) in enumerate(zip(self._x_blocks, self._w_blocks))]
        while len(parts) > 1:
            parts = [add_stats(*parts[i:i + self.split_every]) for i in range(0, len(parts), self.split_every)]
        total = parts[0].compute()
        if total is None:
            raise ValueError("the data source yielded no samples")
        return total

    def iter_chunks(self):
        """Validated ``(X_block, sample_weight_block or None)`` as numpy, computed a few
        blocks at a time (as many as CPUs), so memory stays O(blocks in flight)."""
        import dask

        batch = max(1, cpu_count())
        pairs = list(zip(self._x_blocks, self._w_blocks))
        for start in range(0, len(pairs), batch):
            for offset, (X, w) in enumerate(dask.compute(*pairs[start:start + batch])):
                X, w = check_chunk(X, w, index=start + offset, n_features=self.n_features, dtype=self.dtype,
                                   allow_nan=self.allow_nan)
                if len(X):
                    yield X, w

    def sample(self, n: int, random_state) -> np.ndarray:
        """``n`` distinct rows drawn uniformly (all rows when there are at most ``n``), in data
        order; the same rows as :class:`ChunkedSource` draws for the same data and seed."""
        reservoir = Reservoir(n, _random_state(random_state))
        for rows in self.X.chunks[0]:
            reservoir.offer(rows)
        positions = reservoir.result()[0]
        return check_X(self.X[positions].compute(), name="the sample of X", allow_nan=self.allow_nan)
