"""Run a test suite on patched scikit-learn: ``pytest -p fastem.pytest_plugin``.

scikit-learn is patched (:func:`fastem.patch_sklearn`) before pytest imports the first
conftest.py or test module, so their ``from sklearn.mixture import GaussianMixture`` (and
every other name of :data:`fastem.patching.REGISTRY`) get fastem's classes, and unpatched
when the session ends. Combine with ``FASTEM_FALLBACK=raise`` to fail where a test would
run scikit-learn's code instead.
"""
from __future__ import annotations

import pytest

from .patching import patch_sklearn, unpatch_sklearn


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args) -> None:
    # the earliest hook a -p plugin gets: before the initial conftest.py files are imported
    patch_sklearn()


def pytest_report_header(config) -> str:
    return "fastem: scikit-learn patched (fastem.pytest_plugin)"


def pytest_unconfigure(config) -> None:
    unpatch_sklearn()
