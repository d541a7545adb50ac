"""``sklearn.mixture.GaussianMixture`` patched by fastem against unpatched scikit-learn,
in the same run: the same client code (the class looked up in ``sklearn.mixture`` at call
time), the same data and initial parameters, 10 EM iterations, D=16, K=8, full, float64.
N=1e4 (N_SMOKE in a smoke run). Compare with ``--benchmark-group-by=func``.
"""
import contextlib
import warnings

import pytest
import sklearn.mixture
from sklearn.exceptions import ConvergenceWarning

import fastem
from fastem.bench import Config, make_problem
from fastem.gaussian import precisions_from_precisions_cholesky

N_FEATURES, N_COMPONENTS, COVARIANCE_TYPE, MAX_ITER = 16, 8, "full", 10


def client_fit(X, weights, means, precisions):
    """What a scikit-learn user writes; the patch decides which class runs."""
    gm = sklearn.mixture.GaussianMixture(N_COMPONENTS, covariance_type=COVARIANCE_TYPE, max_iter=MAX_ITER, tol=0,
                                         weights_init=weights, means_init=means, precisions_init=precisions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed number of iterations, on purpose
        return gm.fit(X)


@pytest.mark.parametrize("patched", [False, True], ids=["sklearn", "fastem-patched"])
def test_patched_sklearn_fit(benchmark, dropin_n_samples, patched):
    problem = make_problem(Config(dropin_n_samples, N_FEATURES, N_COMPONENTS, COVARIANCE_TYPE, "float64"))
    precisions = precisions_from_precisions_cholesky(problem.precisions_cholesky, COVARIANCE_TYPE)
    args = (problem.X, problem.weights / problem.weights.sum(), problem.means, precisions)
    with fastem.sklearn_patched() if patched else contextlib.nullcontext():
        gm = benchmark(client_fit, *args)
    assert isinstance(gm, fastem.GaussianMixture) == patched
