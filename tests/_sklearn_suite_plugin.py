"""pytest plugin for running scikit-learn's own tests against fastem (see test_sklearn_suite.py).

``FASTEM_SKLEARN_SUITE=substituted`` points each test module's ``GaussianMixture`` at
fastem's class; ``=patched`` (with ``-p fastem.pytest_plugin``) checks that the module
imported fastem's class through the patched ``sklearn.mixture``. Either way the tests
listed in sklearn_deselected.txt for the installed scikit-learn are deselected.
"""
import os
from pathlib import Path

import pytest
import sklearn

import fastem

DESELECTED = Path(__file__).with_name("sklearn_deselected.txt")


def deselected(version: str = sklearn.__version__) -> dict[str, str]:
    """Test name -> reason for scikit-learn ``version`` (its major.minor section)."""
    section, out = None, {}
    wanted = ".".join(version.split(".")[:2])
    for line in DESELECTED.read_text().splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif line and not line.startswith("#") and section == wanted:
            name, _, reason = line.partition("#")
            out[name.strip()] = reason.strip()
    return out


def pytest_collection_modifyitems(config, items):
    mode = os.environ["FASTEM_SKLEARN_SUITE"]
    for module in {item.module for item in items}:
        if mode == "substituted":
            module.GaussianMixture = fastem.GaussianMixture
        elif module.GaussianMixture is not fastem.GaussianMixture:
            raise pytest.UsageError(f"{module.__name__} did not get fastem's GaussianMixture from the patch")
    skip = deselected()
    unmatched = set(skip) - {item.name for item in items}
    if unmatched:
        raise pytest.UsageError(f"sklearn_deselected.txt lists tests that do not exist: {sorted(unmatched)}")
    config.hook.pytest_deselected(items=[item for item in items if item.name in skip])
    items[:] = [item for item in items if item.name not in skip]
