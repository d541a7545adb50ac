"""pytest plugin for running scikit-learn's own tests against fastem (see test_sklearn_suite.py).

``FASTEM_SKLEARN_SUITE=substituted`` points each test module's estimator names (those of
:data:`fastem.patching.REGISTRY` it imported) at fastem's classes; ``=patched`` (with
``-p fastem.pytest_plugin``) checks that the module imported fastem's classes through the
patched ``sklearn.mixture``. Either way the tests listed in sklearn_deselected.txt for the
installed scikit-learn and the module are deselected.
"""
import os
from pathlib import Path

import pytest
import sklearn

from fastem.patching import REGISTRY, _fastem_class

DESELECTED = Path(__file__).with_name("sklearn_deselected.txt")


def deselected(module: str, version: str = sklearn.__version__) -> dict[str, str]:
    """Test name -> reason for scikit-learn's test ``module`` (``"test_gaussian_mixture"``)
    at ``version`` (the section ``[<major.minor> <module>]``)."""
    section, out = None, {}
    wanted = f"{'.'.join(version.split('.')[:2])} {module}"
    for line in DESELECTED.read_text().splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = " ".join(line[1:-1].split())
        elif line and not line.startswith("#") and section == wanted:
            name, _, reason = line.partition("#")
            out[name.strip()] = reason.strip()
    return out


def _use_fastem(module, mode: str) -> None:
    """Substitute (or, patched, check) fastem's class for each registered name the module has."""
    names = [(attribute, _fastem_class(path)) for _, attribute, path in REGISTRY.values() if hasattr(module, attribute)]
    if not names:
        raise pytest.UsageError(f"{module.__name__} imports none of fastem's estimators {sorted(REGISTRY)}")
    for attribute, fastem_class in names:
        if mode == "substituted":
            setattr(module, attribute, fastem_class)
        elif getattr(module, attribute) is not fastem_class:
            raise pytest.UsageError(f"{module.__name__} did not get fastem's {attribute} from the patch")


def pytest_collection_modifyitems(config, items):
    mode = os.environ["FASTEM_SKLEARN_SUITE"]
    skip = set()
    for module in {item.module for item in items}:
        _use_fastem(module, mode)
        short = module.__name__.rpartition(".")[2]
        names = deselected(short)
        unmatched = set(names) - {item.name for item in items if item.module is module}
        if unmatched:
            raise pytest.UsageError(f"sklearn_deselected.txt lists tests of {short} that do not exist: "
                                    f"{sorted(unmatched)}")
        skip |= {(module, name) for name in names}
    config.hook.pytest_deselected(items=[item for item in items if (item.module, item.name) in skip])
    items[:] = [item for item in items if (item.module, item.name) not in skip]
