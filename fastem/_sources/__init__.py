"""Data sources for large N: out-of-core chunks (:class:`ChunkedSource`) and dask arrays
(:class:`DaskSource`, needs the optional ``dask`` dependency, imported only when used).

:func:`large_source` is the dispatch :func:`fastem.data.as_source` consults before falling
back to an in-memory :class:`~fastem.data.ArraySource`.
"""
from __future__ import annotations

import collections.abc
import sys

import numpy as np

from .chunked import ChunkedSource

__all__ = ["ChunkedSource", "DaskSource", "MEMMAP_CHUNK_BYTES", "large_source"]

#: Memory-mapped arrays larger than this are read in chunks: in memory, validation and the
#: kernels' temporaries would grow with N.
MEMMAP_CHUNK_BYTES = 256 * 2**20


def _is_instance(obj, module: str, cls: str) -> bool:
    """isinstance against an optional dependency, without importing it (an object of a
    module's class cannot exist unless the module was imported)."""
    mod = sys.modules.get(module)
    return mod is not None and isinstance(obj, getattr(mod, cls, ()))


def is_dask_array(X) -> bool:
    return _is_instance(X, "dask.array", "Array")


def large_source(X, sample_weight=None, *, min_samples: int = 1, allow_nan: bool = False):
    """A :class:`DaskSource` or :class:`ChunkedSource` when ``X`` calls for one, else None.

    Dask arrays -> DaskSource; h5py datasets, zarr arrays, memmaps over
    ``MEMMAP_CHUNK_BYTES``, callables and iterators of chunks -> ChunkedSource.
    """
    if is_dask_array(X):
        from .dask import DaskSource

        return DaskSource(X, sample_weight, min_samples=min_samples, allow_nan=allow_nan)
    if (
        _is_instance(X, "h5py", "Dataset")
        or _is_instance(X, "zarr", "Array")
        or (isinstance(X, np.memmap) and X.nbytes > MEMMAP_CHUNK_BYTES)
        or (callable(X) and not isinstance(X, type))
        or isinstance(X, collections.abc.Iterator)
    ):
        return ChunkedSource(X, sample_weight, min_samples=min_samples, allow_nan=allow_nan)
    return None


def __getattr__(name):
    if name == "DaskSource":
        from .dask import DaskSource

        return DaskSource
    raise AttributeError(f"module 'fastem._sources' has no attribute {name!r}")
