"""End-to-end benchmarks: what ``GaussianMixture(K, covariance_type=...).fit(X)`` costs with
default parameters (k-means initialisation, tol=1e-3) on seeded blobs, the
initialisation alone (``init``: ``max_iter=0``) and the k-means it runs (``kmeans``),
fastem per backend against scikit-learn. EM time = default_fit - init. N = 1e5 by
default, 1e6 with ``--large``."""
import math

BENCH_OPS = ("init", "default_fit", "kmeans")
BENCH_MATRIX = {"n_samples": (100_000, 1_000_000), "dims": ((2, 8), (16, 8), (64, 16)),
                "covariance_types": ("diag", "full"), "dtypes": ("float64",)}


def test_end_to_end(benchmark, bench_session, bench_cell):
    result = bench_session.measure(benchmark, bench_cell)
    assert math.isfinite(result.samples_per_s) and result.roofline_fraction > 0
