"""fastem.patch_sklearn and friends, python -m fastem, and the pytest plugin."""
import textwrap

import pytest
import sklearn.mixture
from sklearn.mixture import _bayesian_mixture, _gaussian_mixture

import fastem
from fastem import patching

from _subprocess import run_python

#: every patched name -> scikit-learn's class, as defined in its private module
ORIGINALS = {"GaussianMixture": _gaussian_mixture.GaussianMixture,
             "BayesianGaussianMixture": _bayesian_mixture.BayesianGaussianMixture}
NAMES = list(ORIGINALS)


def _public(name: str) -> type:
    return getattr(sklearn.mixture, name)


def _unpatched_now() -> bool:
    return all(_public(name) is original for name, original in ORIGINALS.items())


@pytest.fixture(autouse=True)
def _unpatched():
    """Every test starts and ends with scikit-learn as it was."""
    assert _unpatched_now()
    yield
    fastem.unpatch_sklearn()
    assert _unpatched_now()


def test_registry_is_every_estimator():
    assert set(patching.REGISTRY) == set(ORIGINALS)


def test_patch_all_and_unpatch_restore_the_originals():
    fastem.patch_sklearn()
    for name, original in ORIGINALS.items():
        assert _public(name) is getattr(fastem, name) and fastem.sklearn_is_patched(name)
        assert isinstance(_public(name)(), original)
    fastem.unpatch_sklearn()
    assert _unpatched_now() and not fastem.sklearn_is_patched()
    # private modules never touched
    assert _gaussian_mixture.GaussianMixture is ORIGINALS["GaussianMixture"]
    assert _bayesian_mixture.BayesianGaussianMixture is ORIGINALS["BayesianGaussianMixture"]


@pytest.mark.parametrize("name", NAMES)
def test_patch_and_unpatch_one_name(name):
    other = next(n for n in NAMES if n != name)
    fastem.patch_sklearn(name)
    fastem.patch_sklearn(name)  # twice: still one original kept
    assert _public(name) is getattr(fastem, name) and _public(other) is ORIGINALS[other]
    assert fastem.sklearn_is_patched() and not fastem.sklearn_is_patched(other)
    fastem.patch_sklearn()
    fastem.unpatch_sklearn(name)
    assert _public(name) is ORIGINALS[name] and fastem.sklearn_is_patched(other)


@pytest.mark.parametrize("name", NAMES)
def test_context_manager_keeps_an_outer_patch(name):
    with fastem.sklearn_patched():
        assert all(_public(n) is getattr(fastem, n) for n in NAMES)
    assert _unpatched_now()
    fastem.patch_sklearn(name)
    with fastem.sklearn_patched():
        pass
    assert fastem.sklearn_is_patched(name) and _public(name) is getattr(fastem, name)
    assert not any(fastem.sklearn_is_patched(n) for n in NAMES if n != name)


def test_unknown_name_is_an_error():
    with pytest.raises(ValueError, match="does not patch.*KMeans"):
        fastem.patch_sklearn(["KMeans"])


def test_registry_entries_resolve():
    for module, attribute, fastem_path in patching.REGISTRY.values():
        assert issubclass(patching._fastem_class(fastem_path), getattr(__import__(module, fromlist=["_"]), attribute))


APP = textwrap.dedent("""
    import sys
    import numpy as np
    from sklearn.mixture import BayesianGaussianMixture, GaussianMixture
    X = np.random.default_rng(0).normal(size=(200, 2))
    gm = GaussianMixture(2, random_state=0).fit(X)
    bgm = BayesianGaussianMixture(n_components=2, random_state=0).fit(X)
    print(type(gm).__module__, type(bgm).__module__, sys.argv[1:], __name__)
""")


@pytest.mark.parametrize("how", ["script", "module"])
def test_python_m_fastem_runs_an_unmodified_program(how, tmp_path):
    (tmp_path / "app.py").write_text(APP)
    target = [str(tmp_path / "app.py")] if how == "script" else ["-m", "app"]
    result = run_python("-m", "fastem", "-v", *target, "--flag", "x", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["fastem.mixture._gaussian_mixture", "fastem.mixture._bayesian_mixture",
                                     "['--flag',", "'x']", "__main__"]
    for name in NAMES:
        assert f"fastem: {name}.fit: running fastem" in result.stderr


def test_python_m_fastem_passes_the_exit_status(tmp_path):
    (tmp_path / "fail.py").write_text("raise SystemExit(3)")
    assert run_python("-m", "fastem", str(tmp_path / "fail.py")).returncode == 3
    assert run_python("-m", "fastem", "-m").returncode == 2


def test_pytest_plugin_patches_before_conftest(tmp_path):
    (tmp_path / "conftest.py").write_text("from sklearn.mixture import BayesianGaussianMixture, GaussianMixture\n")
    (tmp_path / "test_client.py").write_text(textwrap.dedent("""
        import conftest
        from sklearn.mixture import BayesianGaussianMixture, GaussianMixture
        import fastem

        def test_patched():
            assert GaussianMixture is conftest.GaussianMixture is fastem.GaussianMixture
            assert BayesianGaussianMixture is conftest.BayesianGaussianMixture is fastem.BayesianGaussianMixture
    """))
    result = run_python("-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "fastem.pytest_plugin", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
