"""Which build of a Cython kernel module this CPU runs.

setup.py compiles every kernel module in a baseline (x86-64), an AVX2+FMA and an AVX-512
variant; the best one the running CPU supports is imported, so one wheel runs anywhere.
``FASTEM_CYTHON_ISA=baseline|avx2|avx512`` forces one.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

#: builds, best first, with the CPU features (numpy's names) each needs
ISA_VARIANTS = {
    "avx512": ("AVX512_SKX", "AVX2", "FMA3"),
    "avx2": ("AVX2", "FMA3"),
    "baseline": (),
}


def cpu_features() -> dict:
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy < 2
        try:
            from numpy.core._multiarray_umath import __cpu_features__
        except ImportError:
            return {}
    return __cpu_features__


def import_kernels(module: str) -> tuple[ModuleType, str]:
    """(module, ISA name): the best build of ``fastem._kernels._cython.<module>``."""
    forced = os.environ.get("FASTEM_CYTHON_ISA")
    if forced is not None and forced not in ISA_VARIANTS:
        raise ImportError(f"FASTEM_CYTHON_ISA must be one of {list(ISA_VARIANTS)}, got {forced!r}")
    features = cpu_features()
    for isa, needs in ISA_VARIANTS.items():
        if forced not in (None, isa) or not all(features.get(f) for f in needs):
            continue
        name = module if isa == "baseline" else f"{module}_{isa}"
        try:
            return importlib.import_module(f"{__package__}._cython.{name}"), isa
        except ImportError:
            if forced is not None or isa == "baseline":
                raise
    raise ImportError(f"no fastem Cython build of {module} matches this CPU")


def running() -> str | None:
    """The ISA build the Cython kernels run in this process (None where they do not import)."""
    try:
        from . import cython_backend
    except ImportError:
        return None
    return cython_backend.ISA
