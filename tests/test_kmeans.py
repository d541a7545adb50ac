"""k-means: the compiled kernels against the numpy reference (backend x dtype x threads
x block boundaries x sample_weight), the reference against brute force (scipy's
cdist), Hamerly's bounded pass against plain Lloyd, and ``fastem.cluster.kmeans``
against scikit-learn's ``KMeans(n_init=1, random_state)``."""
from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn import datasets
from sklearn.cluster import KMeans, kmeans_plusplus as sklearn_kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning

from _data import DTYPES, RTOL
from fastem import kernels
from fastem.cluster import kmeans, kmeans_plusplus
from fastem.cluster import _seeding
from fastem.cluster._kmeans import feature_moments
from fastem.cluster._seeding import SEARCH_BLOCK, _first_draw_probabilities, _search_cumsum
from fastem.cluster._lloyd import _half_gaps

BLOCK = 16
SIZES = (1, BLOCK - 1, BLOCK, BLOCK + 1, 5 * BLOCK + 3)
#: (n_centers, n_features): D = 3 takes the constant-D bodies, D = 17 the general ones;
#: K = 13 and 21 reach every tile of the distances (16 and 8 centres, then 4, then one at
#: a time); 5 centres give plusplus_pots 4 candidates (its paired tiles)
SHAPES = ((5, 3), (5, 17), (13, 17), (21, 17))
#: one centre: every group of rows shares a label (the assignment's one-sweep sums)
ONE_CENTER = ((1, 3), (1, 17))


def _problem(n_samples, dtype, weighted, n_centers=5, n_features=3, seed=0):
    """X (N, D) of ``dtype`` far from the origin, its mean, centres (K, D) float64 in
    centred coordinates, sample_weight with zeros (or None)."""
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n_samples, n_features)) * 2 + 50).astype(dtype)
    x_mean = X.mean(axis=0)
    centers = rng.normal(size=(n_centers, n_features)) * 2
    weights = rng.uniform(0, 2, n_samples) if weighted else None
    if weighted:
        weights[::4] = 0.0
    return X, x_mean, centers, weights


def _assert_stats(stats, expected, dtype, scale):
    """KMeansStats equal to rounding (sum_x relative to ``scale``: it cancels)."""
    rtol = RTOL[np.dtype(np.float64)]  # every backend accumulates in float64 from the same float64 rows
    np.testing.assert_array_equal(stats.n_members, expected.n_members)
    np.testing.assert_allclose(stats.nk, expected.nk, rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(stats.sum_x, expected.sum_x, rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(stats.inertia, expected.inertia, rtol=rtol, equal_nan=True)
    assert stats.n_changed == expected.n_changed


def _iterations(X, x_mean, centers, weights, backend, n_threads, n_iter=4, seed=1):
    """Bounded passes with centres moving a little each time: [(labels, upper, lower, delta)]."""
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    labels, upper, lower = np.full(n, -1, np.int32), np.zeros(n), np.zeros(n)
    drift, max_drift = np.zeros(centers.shape[0]), 0.0
    out = []
    for _ in range(n_iter):
        delta = kernels.kmeans_bounded_assign(X, centers, labels, upper, lower, _half_gaps(centers), drift,
                                              max_drift, 1e-9, weights, x_mean=x_mean, backend=backend,
                                              n_threads=n_threads, block_size=BLOCK)
        out.append((labels.copy(), upper.copy(), lower.copy(), delta, centers))
        # the bounds hold: upper + drift >= the distance to the own centre, lower - max_drift <= the others'
        d = np.sqrt(((((X - x_mean).astype(np.float64))[:, None] - centers[None]) ** 2).sum(axis=2))
        own = d[np.arange(n), labels]
        assert (upper + drift[labels] >= own * (1 - 1e-12)).all()
        d[np.arange(n), labels] = np.inf
        assert (lower - max_drift <= d.min(axis=1) * (1 + 1e-12)).all()
        moved = centers + rng.normal(size=centers.shape) * 0.3
        shifts = np.sqrt(((moved - centers) ** 2).sum(axis=1))
        drift, max_drift = drift + shifts, max_drift + shifts.max()
        centers = moved
    return out


def _assignment_cases(test):
    """dtype x weighted x n_samples x (shape, one centre included), for the assignment's tests."""
    for name, values in (("shape", SHAPES + ONE_CENTER), ("n_samples", SIZES), ("weighted", [False, True]),
                         ("dtype", DTYPES)):
        test = pytest.mark.parametrize(name, values)(test)
    return test


@_assignment_cases
def test_assign_matches_reference(kernel_backend, dtype, weighted, n_samples, shape):
    X, x_mean, centers, weights = _problem(n_samples, dtype, weighted, *shape)
    expected_labels, expected = kernels.kmeans_assign(X, centers, weights, x_mean=x_mean, backend="numpy")
    runs = [kernels.kmeans_assign(X, centers, weights, x_mean=x_mean, backend=kernel_backend, n_threads=n_threads,
                                  block_size=BLOCK) for n_threads in (1, 2)]
    for labels, stats in runs:
        np.testing.assert_array_equal(labels, expected_labels)
        _assert_stats(stats, expected, dtype, scale=n_samples * 10.0)
    for a, b in zip(runs[0][1], runs[1][1]):  # bit-identical for any thread count
        np.testing.assert_array_equal(a, b)


@_assignment_cases
def test_assign_gives_the_bounds_of_a_first_bounded_pass(backend, dtype, weighted, n_samples, shape):
    # Lloyd's first iteration is the plain assignment with the bounds asked for: the same
    # labels, bounds and statistics as the bounded pass from rows without labels
    X, x_mean, centers, weights = _problem(n_samples, dtype, weighted, *shape)
    n, n_centers = X.shape[0], centers.shape[0]
    labels, upper, lower = np.full(n, -1, np.int32), np.zeros(n), np.zeros(n)
    bounded = kernels.kmeans_bounded_assign(X, centers, labels, upper, lower, _half_gaps(centers), np.zeros(n_centers),
                                            0.0, 0.0, weights, x_mean=x_mean, backend=backend, block_size=BLOCK)
    _, plain = kernels.kmeans_assign(X, centers, weights, x_mean=x_mean, backend=backend, block_size=BLOCK)
    for n_threads in (1, 2):
        got_upper, got_lower = np.zeros(n), np.zeros(n)
        got_labels, stats = kernels.kmeans_assign(X, centers, weights, upper=got_upper, lower=got_lower,
                                                  x_mean=x_mean, backend=backend, n_threads=n_threads,
                                                  block_size=BLOCK)
        np.testing.assert_array_equal(got_labels, labels)
        np.testing.assert_array_equal(got_upper, upper)  # the same distances, the same square roots
        np.testing.assert_array_equal(got_lower, lower)
        assert np.isinf(got_lower).all() == (n_centers == 1)
        _assert_stats(stats._replace(inertia=float("nan")), bounded, dtype, scale=n_samples * 10.0)
        for a, b in zip(stats, plain):  # asking for the bounds changes nothing else
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="upper and lower go together"):
        kernels.kmeans_assign(X, centers, upper=np.zeros(n))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n_samples", SIZES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_bounded_assign_matches_reference_and_lloyd(backend, dtype, weighted, n_samples, shape):
    X, x_mean, centers, weights = _problem(n_samples, dtype, weighted, *shape)
    expected = _iterations(X, x_mean, centers, weights, "numpy", 1)
    one, two = (_iterations(X, x_mean, centers, weights, backend, n_threads) for n_threads in (1, 2))
    running = None
    for (labels, upper, lower, delta, at), (ref_labels, ref_upper, ref_lower, ref_delta, _), again in zip(
            one, expected, two):
        lloyd_labels, lloyd = kernels.kmeans_assign(X, at, weights, x_mean=x_mean, backend="numpy")
        np.testing.assert_array_equal(labels, lloyd_labels)  # the bounds never change a label
        np.testing.assert_array_equal(labels, ref_labels)
        np.testing.assert_allclose(upper, ref_upper, rtol=1e-10)
        np.testing.assert_allclose(lower, ref_lower, rtol=1e-10)
        _assert_stats(delta, ref_delta, dtype, scale=n_samples * 10.0)
        # the changes add up to the statistics of the current labels
        running = delta if running is None else running._replace(
            nk=running.nk + delta.nk, n_members=running.n_members + delta.n_members,
            sum_x=running.sum_x + delta.sum_x, n_changed=delta.n_changed)
        _assert_stats(running._replace(inertia=lloyd.inertia, n_changed=0),
                      lloyd._replace(n_changed=0), dtype, scale=n_samples * 10.0)
        for a, b in zip((labels, upper, lower, *delta), (again[0], again[1], again[2], *again[3])):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_plusplus_kernels_match_reference(kernel_backend, dtype, weighted, shape):
    X, x_mean, centers, weights = _problem(5 * BLOCK + 3, dtype, weighted, *shape)
    results = {}
    for name in ("numpy", kernel_backend):
        closest = np.full(X.shape[0], np.inf)
        kernels.kmeans_update_closest(X, closest, centers[0], x_mean=x_mean, backend=name, block_size=BLOCK)
        pots = kernels.kmeans_plusplus_pots(X, closest, centers[1:], weights, x_mean=x_mean, backend=name,
                                            block_size=BLOCK)
        results[name] = closest, pots
    for got, expected in zip(results[kernel_backend], results["numpy"]):
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    for name in ("numpy", kernel_backend):
        # the kept minima are, bit for bit, what the update pass makes of closest_sq
        closest = results[name][0]
        new_closest = np.empty((centers.shape[0] - 1, X.shape[0]))
        pots = kernels.kmeans_plusplus_pots(X, closest, centers[1:], weights, new_closest, x_mean=x_mean,
                                            backend=name, block_size=BLOCK)
        np.testing.assert_array_equal(pots, results[name][1])
        for row, center in zip(new_closest, centers[1:]):
            updated = closest.copy()
            kernels.kmeans_update_closest(X, updated, center, x_mean=x_mean, backend=name, block_size=BLOCK)
            np.testing.assert_array_equal(row, updated)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_against_brute_force(dtype):
    X, x_mean, centers, weights = _problem(200, dtype, True)
    z = (X - x_mean).astype(np.float64)
    d2 = cdist(z, centers, "sqeuclidean")
    labels, stats = kernels.kmeans_assign(X, centers, weights, x_mean=x_mean, backend="numpy")
    np.testing.assert_array_equal(labels, d2.argmin(axis=1))
    one_hot = np.eye(centers.shape[0])[labels] * weights[:, None]
    np.testing.assert_allclose(stats.nk, one_hot.sum(axis=0))
    np.testing.assert_allclose(stats.sum_x, one_hot.T @ z, atol=1e-9)
    np.testing.assert_allclose(stats.inertia, weights @ d2.min(axis=1))
    np.testing.assert_array_equal(stats.n_members, ((weights > 0)[:, None] * (one_hot > 0)).sum(axis=0))
    closest = d2[:, 0].copy()
    pots = kernels.kmeans_plusplus_pots(X, closest, centers[1:], weights, x_mean=x_mean, backend="numpy")
    np.testing.assert_allclose(pots, weights @ np.minimum(d2[:, 1:], closest[:, None]))


def test_a_near_tie_is_never_decided_by_the_bounds(backend):
    # one row exactly between two centres: its label must be the lower index, as Lloyd's
    X = np.array([[0.0], [1.0], [-1.0], [10.0]])
    centers = np.array([[-1.0], [1.0], [10.0]])
    labels, upper, lower = np.full(4, -1, np.int32), np.zeros(4), np.zeros(4)
    for _ in range(3):
        kernels.kmeans_bounded_assign(X, centers, labels, upper, lower, _half_gaps(centers), np.zeros(3), 0.0,
                                      1e-9, backend=backend)
        assert labels[0] == 0


@pytest.mark.parametrize("n_centers", [5, 13, 21])
def test_equal_centres_go_to_the_first(backend, n_centers):
    # centre 2 repeated further on (in another 8-centre step where there are several):
    # every label is the first of the equal ones, and the runner-up is the copy
    X, x_mean, centers, _ = _problem(5 * BLOCK + 3, np.float64, False, n_centers, 17)
    copies = [k for k in (4, 11, 19) if k < n_centers]
    centers[copies] = centers[2]
    X[::3] = x_mean + centers[2] + np.random.default_rng(2).normal(size=(X[::3].shape[0], 17)) * 0.01
    labels, _ = kernels.kmeans_assign(X, centers, x_mean=x_mean, backend=backend, block_size=BLOCK)
    expected, _ = kernels.kmeans_assign(X, centers, x_mean=x_mean, backend="numpy")
    np.testing.assert_array_equal(labels, expected)
    assert (labels[::3] == 2).all() and not np.isin(labels, copies).any()
    n = X.shape[0]
    bounded, upper, lower = np.full(n, -1, np.int32), np.zeros(n), np.zeros(n)
    kernels.kmeans_bounded_assign(X, centers, bounded, upper, lower, _half_gaps(centers), np.zeros(n_centers), 0.0,
                                  1e-9, x_mean=x_mean, backend=backend, block_size=BLOCK)
    np.testing.assert_array_equal(bounded, expected)
    np.testing.assert_array_equal(lower[bounded == 2], upper[bounded == 2])


DATASETS = {
    "iris": lambda: datasets.load_iris().data,
    "wine": lambda: datasets.load_wine().data,
    "digits": lambda: datasets.load_digits().data,
    "blobs": lambda: datasets.make_blobs(3000, n_features=4, centers=5, random_state=0)[0],
}


@pytest.mark.parametrize("n_clusters", [3, 8])
@pytest.mark.parametrize("dataset", DATASETS)
def test_kmeans_equals_scikit_learn(backend, dataset, n_clusters):
    X = DATASETS[dataset]()
    for seed in (0, 1):
        expected = KMeans(n_clusters, n_init=1, random_state=seed).fit(X)
        got = kmeans(X, n_clusters, random_state=seed, backend=backend)
        np.testing.assert_array_equal(got.labels, expected.labels_)
        np.testing.assert_allclose(got.cluster_centers, expected.cluster_centers_, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(got.inertia, expected.inertia_, rtol=1e-10)
        assert got.n_iter == expected.n_iter_


def test_weighted_kmeans_equals_scikit_learn(backend):
    X = DATASETS["blobs"]()
    weights = np.random.default_rng(0).uniform(0, 3, X.shape[0])
    weights[:50] = 0.0
    expected = KMeans(5, n_init=1, random_state=0).fit(X, sample_weight=weights)
    got = kmeans(X, 5, sample_weight=weights, random_state=0, backend=backend)
    np.testing.assert_array_equal(got.labels, expected.labels_)
    np.testing.assert_allclose(got.cluster_centers, expected.cluster_centers_, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("keep", [True, False])
def test_seeding_equals_scikit_learn(backend, keep, monkeypatch):
    if not keep:  # no room for the candidates' minima: a second pass per centre
        monkeypatch.setattr(_seeding, "NEW_CLOSEST_MAX_BYTES", 0)
    X = DATASETS["digits"]()
    for seed in range(3):
        _, expected = sklearn_kmeans_plusplus(X, 10, random_state=seed)
        _, got = kmeans_plusplus(np.ascontiguousarray(X), np.zeros(X.shape[1]), 10, None,
                                 np.random.RandomState(seed), backend=backend)
        np.testing.assert_array_equal(got, expected)


def test_duplicate_rows_warn_as_scikit_learn(backend):
    # more clusters than distinct rows: scikit-learn's ConvergenceWarning, no hang
    X = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]), 10, axis=0)
    with pytest.warns(ConvergenceWarning, match=r"Number of distinct clusters \(3\) found smaller than n_clusters \(5\)"):
        got = kmeans(X, 5, random_state=0, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        expected = KMeans(5, n_init=1, random_state=0).fit(X)
    np.testing.assert_array_equal(got.labels, expected.labels_)


def test_all_identical_rows(backend):
    X = np.ones((20, 3))
    with pytest.warns(ConvergenceWarning):
        got = kmeans(X, 2, random_state=0, backend=backend)
    assert np.isfinite(got.cluster_centers).all() and got.inertia == 0.0


def test_empty_clusters_are_relocated_as_scikit_learn(backend):
    # a seeding far from the data leaves clusters empty after the first assignment
    X = np.concatenate([np.zeros((30, 2)), np.random.default_rng(0).normal(size=(30, 2)) + 8])
    for seed in range(5):
        expected = KMeans(4, n_init=1, random_state=seed).fit(X)
        got = kmeans(X, 4, random_state=seed, backend=backend)
        np.testing.assert_array_equal(got.labels, expected.labels_)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_samples", [1, 3, 1000, 12_345, 1_000_003])
def test_unweighted_first_draw_probabilities_are_the_quotients_of_ones(dtype, n_samples):
    ones = np.ones(n_samples, dtype=dtype)
    np.testing.assert_array_equal(_first_draw_probabilities(None, n_samples, dtype),
                                  (ones / ones.sum()).astype(np.float64))


@pytest.mark.parametrize("bad, match", [
    (np.array([[0.0, np.nan], [1.0, 1.0], [2.0, 2.0]]), "NaN or infinity"),
    (np.array([[0.0, np.inf], [1.0, 1.0], [2.0, 2.0]]), "NaN or infinity"),
    (np.zeros((1, 2)), "n_samples=1 should be >= n_clusters=2"),
    (np.zeros(5), "2-d array"),
])
def test_bad_input_is_a_clear_error(bad, match):
    with pytest.raises(ValueError, match=match):
        kmeans(bad, 2, random_state=0)


@pytest.mark.parametrize("at, value", [((7777, 1), np.nan), ((0, 0), -np.inf), ((9999, 2), np.inf)])
def test_a_non_finite_entry_anywhere_is_named(backend, at, value):
    # kmeans() finds non-finite X from its first pass's moments, not a scan beforehand
    X = np.random.default_rng(0).normal(size=(10_000, 3))
    X[at] = value
    with pytest.raises(ValueError, match=re.escape(f"X contains NaN or infinity (first at index {at}")):
        kmeans(X, 3, random_state=0, backend=backend)


def test_overflowing_squares_are_not_taken_for_non_finite_entries():
    X = np.random.default_rng(0).normal(size=(1000, 2)) * 1e200  # finite; its squares overflow
    with np.errstate(over="ignore", invalid="ignore"):
        got = kmeans(X, 2, random_state=0)
    assert got.labels.shape == (1000,)


def test_kernels_reject_inconsistent_state():
    X = np.zeros((4, 2))
    with pytest.raises(ValueError, match="labels must be"):
        kernels.kmeans_assign(X, np.zeros((2, 2)), labels=np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match=r"labels must lie in \[-1, 1\]"):
        kernels.kmeans_bounded_assign(X, np.zeros((2, 2)), np.full(4, 2, np.int32), np.zeros(4), np.zeros(4),
                                      np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="centers must have shape"):
        kernels.kmeans_assign(X, np.zeros((2, 3)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_feature_moments_match_numpy_far_from_the_origin(backend, dtype):
    # one pass, shifted by a row: no cancellation at offset 1e6 with spread 0.1
    X = (np.random.default_rng(0).normal(size=(150_000, 3)) * 0.1 + 1e6).astype(dtype)
    mean, mean_variance = feature_moments(X, backend=backend)
    exact_mean = np.array([math.fsum(column) for column in X.astype(np.float64).T]) / X.shape[0]
    np.testing.assert_allclose(mean, exact_mean, rtol=0, atol=1e-12 * 0.1)
    np.testing.assert_allclose(mean_variance, ((X - exact_mean) ** 2).mean(axis=0).mean(), rtol=1e-9)


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("n_samples", [1, SEARCH_BLOCK - 1, SEARCH_BLOCK, 3 * SEARCH_BLOCK + 5])
def test_search_cumsum_is_searchsorted_on_the_cumulative_sum(side, n_samples):
    rng = np.random.default_rng(n_samples)
    values = rng.exponential(size=n_samples) ** 3
    values[: n_samples // 2 : 7] = 0.0  # rows already chosen as centres have weight 0
    ends = np.arange(SEARCH_BLOCK - 1, n_samples - 1, SEARCH_BLOCK)
    values[np.concatenate([ends - 1, ends, ends + 1])] += 1.0  # no plateau (a tie) at a block's end
    cumulative = np.cumsum(values)
    # random targets, targets halfway between the running sums either side of every block's
    # end, zero and beyond the total (a target on a running sum is a tie to rounding)
    halfway = np.concatenate([(cumulative[ends - 1] + cumulative[ends]) / 2, (cumulative[ends] + cumulative[ends + 1]) / 2])
    targets = np.concatenate([rng.uniform(size=50) * cumulative[-1], halfway, [0.0, 2 * cumulative[-1]]])
    expected = np.minimum(np.searchsorted(cumulative, targets, side), n_samples - 1)
    np.testing.assert_array_equal(_search_cumsum(values, targets, side), expected)
