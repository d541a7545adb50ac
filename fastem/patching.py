"""Patch scikit-learn so that its public estimator names run on fastem.

``patch_sklearn()`` sets the public module attributes of :data:`REGISTRY`
(``sklearn.mixture.GaussianMixture``, ``sklearn.mixture.BayesianGaussianMixture``) to
fastem's classes; scikit-learn's private modules and helpers are never touched, so
scikit-learn's own code keeps working and ``unpatch_sklearn()`` puts back the exact
original objects.

Caveat: code that ran ``from sklearn.mixture import GaussianMixture`` *before* patching
holds scikit-learn's class in its own namespace and keeps it. Patch first: at the top of
the program, with ``python -m fastem script.py`` / ``python -m fastem -m module``, or in a
test suite with ``pytest -p fastem.pytest_plugin``.
"""
from __future__ import annotations

import contextlib
import importlib
from typing import Iterable, Iterator

#: estimator name -> (scikit-learn module, attribute, fastem class as "module:name")
REGISTRY: dict[str, tuple[str, str, str]] = {
    "GaussianMixture": ("sklearn.mixture", "GaussianMixture", "fastem.mixture:GaussianMixture"),
    "BayesianGaussianMixture": ("sklearn.mixture", "BayesianGaussianMixture", "fastem.mixture:BayesianGaussianMixture"),
}

# (module, attribute) -> the original object, while patched
_originals: dict[tuple[str, str], object] = {}


def _fastem_class(path: str) -> type:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _names(names: Iterable[str] | str | None) -> list[str]:
    names = list(REGISTRY) if names is None else [names] if isinstance(names, str) else list(names)
    unknown = [name for name in names if name not in REGISTRY]
    if unknown:
        raise ValueError(f"fastem does not patch {unknown}; it patches {sorted(REGISTRY)}")
    return names


def _is_patched(name: str) -> bool:
    module_name, attribute, _ = REGISTRY[name]
    return (module_name, attribute) in _originals


def patch_sklearn(names: Iterable[str] | str | None = None) -> None:
    """Point scikit-learn's public names (all of :data:`REGISTRY`, or ``names``) at
    fastem's estimators. Patching a name twice is a no-op."""
    for name in _names(names):
        module_name, attribute, fastem_path = REGISTRY[name]
        module = importlib.import_module(module_name)
        if not _is_patched(name):
            _originals[module_name, attribute] = getattr(module, attribute)
        setattr(module, attribute, _fastem_class(fastem_path))


def unpatch_sklearn(names: Iterable[str] | str | None = None) -> None:
    """Restore scikit-learn's original objects (all patched names, or ``names``)."""
    for name in _names(names):
        module_name, attribute, _ = REGISTRY[name]
        if _is_patched(name):
            setattr(importlib.import_module(module_name), attribute, _originals.pop((module_name, attribute)))


def sklearn_is_patched(name: str | None = None) -> bool:
    """Whether ``name`` (or any registered name, when None) is patched now."""
    return any(_is_patched(n) for n in _names(name))


@contextlib.contextmanager
def sklearn_patched(names: Iterable[str] | str | None = None) -> Iterator[None]:
    """``with sklearn_patched(): ...`` patches for the block, then unpatches what the block
    patched (names patched before it stay patched)."""
    newly = [name for name in _names(names) if not _is_patched(name)]
    patch_sklearn(newly)
    try:
        yield
    finally:
        unpatch_sklearn(newly)
