"""What every chunked source shares: validating a chunk, and adding up the chunk
function's results in order (so the sum does not depend on the chunking)."""
from __future__ import annotations

import numpy as np

from .. import _validation as v


def as_2d_chunk(chunk) -> np.ndarray:
    """A chunk as an array: anything ``np.asarray`` takes, or a columnar batch
    (``.columns`` + ``.num_rows``, e.g. a ``pyarrow.RecordBatch``) stacked column-wise."""
    if hasattr(chunk, "num_rows") and hasattr(chunk, "columns") and not hasattr(chunk, "__array__"):
        columns = [np.asarray(c) for c in chunk.columns]
        return np.column_stack(columns) if columns else np.empty((chunk.num_rows, 0))
    return np.asarray(chunk)


def check_chunk(X, sample_weight, *, index: int, n_features: int | None, dtype: np.dtype | None,
                allow_nan: bool = False):
    """Validate one chunk: ``check_X`` (finite; with ``allow_nan`` not scanned at all: NaN
    is a missing value, and the families that take them reject infinity in their kernels'
    own pass; 2-d, float32/float64 kept) and ``check_sample_weight``, plus the same
    ``n_features`` and dtype as earlier chunks.

    Returns ``(X, sample_weight)``; ``index`` is only quoted in error messages.
    """
    try:
        X = v.check_X(as_2d_chunk(X), min_samples=0, finite=not allow_nan)
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


def add_all(stats):
    """``+`` of an iterable of mergeable statistics in order; ValueError when it is empty."""
    total = None
    for s in stats:
        total = s if total is None else total + s
    if total is None:
        raise ValueError("the data source yielded no samples")
    return total
