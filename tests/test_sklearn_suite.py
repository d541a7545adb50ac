"""scikit-learn's own GaussianMixture tests, run natively, with fastem substituted for the
test module's ``GaussianMixture`` and with scikit-learn patched (``-p fastem.pytest_plugin``).

Each run is a pytest subprocess on the installed ``sklearn.mixture.tests.test_gaussian_mixture``
with its float32 and Array-API tests switched on. fastem must pass every test scikit-learn
passes, less the reasoned entries of sklearn_deselected.txt.
"""
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from _sklearn_suite_plugin import deselected

TESTS = Path(__file__).parent
SUITE = "sklearn.mixture.tests.test_gaussian_mixture"
PLUGINS = {"native": [], "substituted": ["-p", "_sklearn_suite_plugin"],
           "patched": ["-p", "fastem.pytest_plugin", "-p", "_sklearn_suite_plugin"]}


def run_suite(mode: str, tmp_path: Path) -> dict:
    """Run the suite in ``mode``; returns pytest's exit code, the counts and its output."""
    report = tmp_path / f"{mode}.xml"
    env = {**os.environ, "SCIPY_ARRAY_API": "1", "SKLEARN_RUN_FLOAT32_TESTS": "1", "FASTEM_SKLEARN_SUITE": mode,
           "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PLUGINS[mode], f"--junitxml={report}",
         "--pyargs", SUITE],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    suite = ET.parse(report).getroot().find("testsuite") if report.exists() else None
    counts = {key: int(suite.get(key)) for key in ("tests", "failures", "errors", "skipped")} if suite is not None else {}
    if counts:
        counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return {"returncode": proc.returncode, "output": proc.stdout[-5000:] + proc.stderr[-2000:], **counts}


@pytest.fixture(scope="module")
def native(tmp_path_factory) -> dict:
    result = run_suite("native", tmp_path_factory.mktemp("native"))
    assert result["returncode"] == 0, result["output"]
    return result


def test_every_deselection_has_a_reason():
    assert all(deselected().values()), deselected()


@pytest.mark.parametrize("mode", ["substituted", "patched"])
def test_sklearn_tests_pass_on_fastem(mode, native, tmp_path):
    result = run_suite(mode, tmp_path)
    assert result["returncode"] == 0, result["output"]
    assert result["passed"] == native["passed"] - len(deselected()), result["output"]
