"""scikit-learn's estimator checks on fastem.GaussianMixture."""
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastem import GaussianMixture

# With several components the initialisation (KMeans, random draws) depends on the
# number of rows, so repeating a row is not the same as weighting it by 2 (the EM itself
# is: see test_gaussian_mixture.py). scikit-learn marks KMeans the same way.
_INIT_DEPENDS_ON_ROWS = {
    "check_sample_weight_equivalence_on_dense_data":
        "the random initialisation depends on the number of rows (as KMeans's); "
        "weighted EM from a given initialisation is tested in test_gaussian_mixture.py",
}


def _expected_failed_checks(estimator):
    return _INIT_DEPENDS_ON_ROWS if estimator.n_components > 1 else {}


@parametrize_with_checks(
    [GaussianMixture(), GaussianMixture(n_components=2, covariance_type="diag", n_init=2, max_iter=5)],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
