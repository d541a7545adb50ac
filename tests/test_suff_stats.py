"""SuffStats merge: statistics of disjoint parts add up to the statistics of the whole."""
import dataclasses
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _data import PROPERTY_SETTINGS, RTOL, assert_stats_close, assert_stats_equal, call_kernel, make_problem, problems
from fastem.suff_stats import SuffStats


def _rows(problem, rows: slice):
    sample_weight = None if problem.sample_weight is None else problem.sample_weight[rows]
    return dataclasses.replace(problem, X=problem.X[rows], resp=problem.resp[rows], sample_weight=sample_weight)


@PROPERTY_SETTINGS
@given(problem=problems(min_samples=2), data=st.data())
def test_halves_add_up_to_whole(backend, problem, data):
    """em_stats of two halves (each computed by ``backend``, or one by the reference) add
    up to em_stats of the whole, with ``+`` and with ``sum``; the sum pickles."""
    split = data.draw(st.integers(1, len(problem.X) - 1))
    first = call_kernel("em_stats", _rows(problem, slice(None, split)), backend=backend, block_size=8)
    second = call_kernel("em_stats", _rows(problem, slice(split, None)), backend=backend, block_size=8)
    whole = call_kernel("em_stats", problem, backend=backend, block_size=8)
    assert_stats_close(first + second, whole, RTOL[problem.X.dtype])
    assert_stats_equal(sum([first, second]), first + second)
    mixed = first + call_kernel("em_stats", _rows(problem, slice(split, None)), backend="numpy")
    assert_stats_close(mixed, whole, RTOL[problem.X.dtype])
    assert_stats_equal(pickle.loads(pickle.dumps(first + second)), first + second)


def _stats(problem, **changes) -> SuffStats:
    return dataclasses.replace(call_kernel("em_stats", problem, backend="numpy"), **changes)


def test_add_rejects_different_shifts():
    problem = make_problem("diag", n_samples=10)
    stats = _stats(problem)
    with pytest.raises(ValueError, match="different shifts"):
        stats + _stats(problem, shift=stats.shift + 1.0)


def test_add_rejects_different_covariance_types():
    with pytest.raises(ValueError, match="covariance_type 'full' and 'diag'"):
        _stats(make_problem("full", n_samples=10)) + _stats(make_problem("diag", n_samples=10))


def test_add_rejects_different_shapes():
    with pytest.raises(ValueError, match="n_components, n_features"):
        _stats(make_problem("diag", n_components=2)) + _stats(make_problem("diag", n_components=3))


def test_only_zero_and_suff_stats_add():
    stats = _stats(make_problem("spherical", n_samples=10))
    assert 0 + stats is stats
    with pytest.raises(TypeError):
        1 + stats
    with pytest.raises(TypeError):
        stats + 1.0
