"""Many tiny fits (one per cell, protein or feature, as muon, scvi-tools and scikit-lego
do): a whole default fit with ``init_params="random"`` of N=100, D=1, K=2, where the
per-call overhead is the whole cost; fastem per backend against scikit-learn."""
import math

BENCH_OPS = ("random_fit",)
BENCH_MATRIX = {"n_samples": (100,), "dims": ((1, 2),), "covariance_types": ("tied", "full"), "dtypes": ("float64",)}


def test_tiny_fit(benchmark, bench_session, bench_cell):
    result = bench_session.measure(benchmark, bench_cell)
    assert math.isfinite(result.samples_per_s) and result.roofline_fraction > 0
