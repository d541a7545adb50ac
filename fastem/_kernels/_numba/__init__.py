"""Numba kernels: per-block helpers (``blocks``) and parallel drivers (``drivers``)."""
