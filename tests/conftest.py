"""Backend fixtures: every backend that imports, plus "cython" and "numba" always.

A compiled backend that does not import is skipped, unless ``FASTEM_REQUIRE_COMPILED=1``
(CI): then its tests run and fail with the ImportError, so a broken build cannot pass.
"""
import pytest

from _data import ALL_BACKENDS, KERNEL_BACKENDS, REQUIRE_COMPILED
from fastem import kernels


def _params(names):
    available = kernels.available_backends()
    return [
        pytest.param(name, id=name, marks=() if name in available or REQUIRE_COMPILED else pytest.mark.skip(
            reason=f"backend {name!r} not available: {kernels._import_errors.get(name)}"))
        for name in names
    ]


@pytest.fixture(scope="session", params=_params(ALL_BACKENDS))
def backend(request) -> str:
    """Every backend, the numpy reference included."""
    return request.param


@pytest.fixture(scope="session", params=_params(KERNEL_BACKENDS))
def kernel_backend(request) -> str:
    """Every backend except the reference it is compared against."""
    return request.param
