"""fastem.patch_sklearn and friends, python -m fastem, and the pytest plugin."""
import textwrap

import pytest
import sklearn.mixture
from sklearn.mixture import _gaussian_mixture as sklearn_gaussian_mixture

import fastem
from fastem import patching

from _subprocess import run_python

ORIGINAL = sklearn_gaussian_mixture.GaussianMixture


@pytest.fixture(autouse=True)
def _unpatched():
    """Every test starts and ends with scikit-learn as it was."""
    assert sklearn.mixture.GaussianMixture is ORIGINAL
    yield
    fastem.unpatch_sklearn()
    assert sklearn.mixture.GaussianMixture is ORIGINAL


def test_patch_and_unpatch_restore_the_original():
    fastem.patch_sklearn()
    fastem.patch_sklearn("GaussianMixture")  # twice: still one original kept
    assert sklearn.mixture.GaussianMixture is fastem.GaussianMixture and fastem.sklearn_is_patched()
    assert isinstance(sklearn.mixture.GaussianMixture(), ORIGINAL)
    fastem.unpatch_sklearn()
    assert sklearn.mixture.GaussianMixture is ORIGINAL and not fastem.sklearn_is_patched()
    assert sklearn_gaussian_mixture.GaussianMixture is ORIGINAL  # private modules never touched


def test_context_manager_keeps_an_outer_patch():
    with fastem.sklearn_patched():
        assert sklearn.mixture.GaussianMixture is fastem.GaussianMixture
    assert sklearn.mixture.GaussianMixture is ORIGINAL
    fastem.patch_sklearn()
    with fastem.sklearn_patched(["GaussianMixture"]):
        pass
    assert fastem.sklearn_is_patched("GaussianMixture")


def test_unknown_name_is_an_error():
    with pytest.raises(ValueError, match="does not patch.*KMeans"):
        fastem.patch_sklearn(["KMeans"])


def test_registry_entries_resolve():
    for module, attribute, fastem_path in patching.REGISTRY.values():
        assert issubclass(patching._fastem_class(fastem_path), getattr(__import__(module, fromlist=["_"]), attribute))


APP = textwrap.dedent("""
    import sys
    import numpy as np
    from sklearn.mixture import GaussianMixture
    X = np.random.default_rng(0).normal(size=(200, 2))
    gm = GaussianMixture(2, random_state=0).fit(X)
    print(type(gm).__module__, sys.argv[1:], __name__)
""")


@pytest.mark.parametrize("how", ["script", "module"])
def test_python_m_fastem_runs_an_unmodified_program(how, tmp_path):
    (tmp_path / "app.py").write_text(APP)
    target = [str(tmp_path / "app.py")] if how == "script" else ["-m", "app"]
    result = run_python("-m", "fastem", "-v", *target, "--flag", "x", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["fastem.mixture._gaussian_mixture", "['--flag',", "'x']", "__main__"]
    assert "fastem: GaussianMixture.fit: running fastem" in result.stderr


def test_python_m_fastem_passes_the_exit_status(tmp_path):
    (tmp_path / "fail.py").write_text("raise SystemExit(3)")
    assert run_python("-m", "fastem", str(tmp_path / "fail.py")).returncode == 3
    assert run_python("-m", "fastem", "-m").returncode == 2


def test_pytest_plugin_patches_before_conftest(tmp_path):
    (tmp_path / "conftest.py").write_text("from sklearn.mixture import GaussianMixture as EARLY\n")
    (tmp_path / "test_client.py").write_text(textwrap.dedent("""
        from conftest import EARLY
        from sklearn.mixture import GaussianMixture
        import fastem

        def test_patched():
            assert GaussianMixture is EARLY is fastem.GaussianMixture
    """))
    result = run_python("-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "fastem.pytest_plugin", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
