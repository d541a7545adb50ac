"""The generic EM driver (fastem.em) on small model families whose behaviour is known
in closed form; its agreement with scikit-learn's loop is tested through the Gaussian
mixture in test_gaussian_mixture.py."""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from fastem.em import IterationInfo, MonotonicityWarning, check_monotone, run_em, seeded_random_state


@dataclass
class Contraction:
    """Parameters a > 0 move as a -> rate * a; the bound per unit weight is -a**2 + offset.

    ``initialize`` draws a in (1, 2) from the random state, so restarts differ.
    """

    rate: float = 0.5
    n: float = 10.0
    offset: float = 0.0

    def initialize(self, source, random_state):
        return 1.0 + random_state.uniform()

    def stats(self, source, a):
        return SimpleNamespace(loglik=self.n * (self.offset - a * a), n=self.n, a=a)

    def m_step(self, stats):
        return self.rate * stats.a

    def lower_bound_slack(self, a):
        return 0.0


@dataclass
class Decreasing(Contraction):
    """A broken family: the bound goes down by ``step`` per iteration; ``slack`` is what it declares."""

    step: float = 1e-3
    slack: float = 0.0

    def stats(self, source, a):
        return SimpleNamespace(loglik=-self.n * self.step * a, n=self.n, a=a)

    def m_step(self, stats):
        return stats.a + 1

    def lower_bound_slack(self, a):
        return self.slack


def _fit(family, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return run_em(family, source=None, **kwargs)


@pytest.mark.parametrize("tol", [1e-1, 1e-4, 1e-9])
def test_stops_at_first_change_below_tol(tol):
    result = _fit(Contraction(), tol=tol, max_iter=1000, random_state=0)
    bounds = np.array(result.lower_bounds)
    changes = np.diff(np.concatenate([[-np.inf], bounds]))
    assert result.converged
    assert result.n_iter == len(bounds)
    assert abs(changes[-1]) < tol
    assert (np.abs(changes[:-1]) >= tol).all()
    assert result.lower_bound == bounds[-1]
    # the bound of iteration t is evaluated at the parameters before its M-step
    a0 = Contraction().initialize(None, np.random.RandomState(0))
    np.testing.assert_allclose(bounds, -(a0 * 0.5 ** np.arange(len(bounds))) ** 2, rtol=1e-15)
    np.testing.assert_allclose(result.params, a0 * 0.5 ** len(bounds), rtol=1e-15)


def test_max_iter_warns_convergence():
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        result = run_em(Contraction(rate=0.99), None, tol=1e-12, max_iter=7, random_state=0)
    assert not result.converged
    assert result.n_iter == len(result.lower_bounds) == 7


def test_max_iter_zero_returns_last_initialisation():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning when max_iter == 0
        result = run_em(Contraction(), None, max_iter=0, n_init=3, random_state=0)
    rs = np.random.RandomState(0)
    inits = [Contraction().initialize(None, rs) for _ in range(3)]
    assert result.params == inits[-1]
    assert result.lower_bound == -np.inf and result.lower_bounds == [] and result.n_iter == 0
    assert not result.converged


def test_n_init_keeps_largest_final_bound():
    @dataclass
    class Offsets(Contraction):
        """Each restart draws its own offset, so the restarts' final bounds differ."""

        def initialize(self, source, random_state):
            return (1.0, random_state.uniform())

        def stats(self, source, params):
            a, offset = params
            return SimpleNamespace(loglik=self.n * (offset - a * a), n=self.n, params=params)

        def m_step(self, stats):
            a, offset = stats.params
            return (self.rate * a, offset)

    infos: list[IterationInfo] = []
    result = _fit(Offsets(), n_init=5, tol=1e-8, random_state=0, callback=infos.append)
    finals = {i.init: i.lower_bound for i in infos}  # the last bound of each restart
    best = max(finals, key=finals.get)
    assert len(set(finals.values())) == 5
    assert result.lower_bound == finals[best]
    assert result.lower_bounds == [i.lower_bound for i in infos if i.init == best]


def test_warm_start_continues_from_given_bound():
    family = Contraction()
    first = _fit(family, tol=0.0, max_iter=3, random_state=0)
    cont = _fit(family, tol=0.0, max_iter=2, start=(first.params, first.lower_bound))
    full = _fit(family, tol=0.0, max_iter=5, random_state=0)
    assert first.lower_bounds + cont.lower_bounds == pytest.approx(full.lower_bounds, rel=1e-15)
    assert cont.params == pytest.approx(full.params, rel=1e-15)


def test_callback_sees_every_iteration():
    infos: list[IterationInfo] = []
    result = _fit(Contraction(), tol=1e-6, max_iter=100, n_init=2, random_state=0, callback=infos.append)
    per_init = [[i for i in infos if i.init == k] for k in range(2)]
    for run in per_init:
        assert [i.n_iter for i in run] == list(range(1, len(run) + 1))
        assert run[-1].converged and not any(i.converged for i in run[:-1])
        assert all(i.n_init == 2 and i.max_iter == 100 for i in run)
    assert result.lower_bounds in ([i.lower_bound for i in run] for run in per_init)


def test_verbose_messages_follow_scikit_learn(capsys):
    _fit(Contraction(), tol=1e-6, max_iter=100, n_init=2, random_state=0, verbose=1, verbose_interval=2)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Initialization 0"
    assert out[1:3] == ["  Iteration 2", "  Iteration 4"]
    assert out.count("Initialization converged.") == 2
    _fit(Contraction(), tol=1e-6, max_iter=3, random_state=0, verbose=2, verbose_interval=1)
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"  Iteration 2\t time lapse \d+\.\d{5}s\t ll change \d+\.\d{5}", out[2])
    assert re.fullmatch(r"Initialization did not converge\. time lapse \d+\.\d{5}s\t lower bound -?\d+\.\d{5}\.",
                        out[-1])


def test_decreasing_bound_warns():
    with pytest.warns(MonotonicityWarning, match="decreased at iteration 2"):
        _fit(Decreasing(), tol=0.0, max_iter=2)


def test_decreasing_bound_raises_in_debug_mode(monkeypatch):
    monkeypatch.setenv("FASTEM_DEBUG", "1")
    with pytest.raises(RuntimeError, match="decreased"):
        _fit(Decreasing(), tol=0.0, max_iter=3)


def test_declared_slack_and_rounding_are_tolerated():
    with warnings.catch_warnings():
        warnings.simplefilter("error", MonotonicityWarning)
        _fit(Decreasing(step=1e-3, slack=1e-3 * 1.01), tol=0.0, max_iter=5)
        _fit(Decreasing(step=1e-12), tol=0.0, max_iter=5)  # bound ~ -1e-12: below 1e-10 rounding
        check_monotone(-1.0, -1.0 - 1e-5, 0.0, 2, np.float32)  # float32 data: 1000 eps(float32)
    with pytest.warns(MonotonicityWarning):
        check_monotone(-1.0, -1.0 - 1e-5, 0.0, 2, np.float64)


def test_nan_bound_is_an_error():
    @dataclass
    class Nan(Contraction):
        def stats(self, source, a):
            return SimpleNamespace(loglik=np.nan, n=self.n, a=a)

    with pytest.raises(ValueError, match="NaN"):
        _fit(Nan(), max_iter=3)


@dataclass
class AfterUpdate(Contraction):
    """A family with the ``lower_bound`` hook: its bound is evaluated after the M-step
    (``-new_a**2``, as a variational bound is) and it declares the next slack itself."""

    slack: float = 0.0

    def lower_bound(self, stats, a, new_a):
        return -new_a * new_a, self.slack

    def lower_bound_slack(self, a):
        raise AssertionError("the lower_bound hook replaces lower_bound_slack")


def test_family_lower_bound_hook_replaces_the_log_likelihood():
    result = _fit(AfterUpdate(), tol=1e-6, max_iter=100, random_state=0)
    a0 = Contraction().initialize(None, np.random.RandomState(0))
    np.testing.assert_allclose(result.lower_bounds, -(a0 * 0.5 ** np.arange(1, result.n_iter + 1)) ** 2, rtol=1e-15)

    @dataclass
    class Falling(AfterUpdate):
        def m_step(self, stats):
            return 2 * stats.a  # the bound -a**2 falls from 4 a0**2 to 16 a0**2

    with pytest.warns(MonotonicityWarning):
        _fit(Falling(), tol=0.0, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MonotonicityWarning)
        _fit(Falling(slack=1e3), tol=0.0, max_iter=2, random_state=0)  # the declared slack covers it


@pytest.mark.parametrize("seed", [0, 7, np.int64(12345), 2**32 - 1])
def test_seeded_random_state_draws_what_a_new_random_state_draws(seed):
    with seeded_random_state(3) as used:  # leaves a spare in some state, cached gaussian included
        used.standard_normal()
    expected = np.random.RandomState(seed)
    with seeded_random_state(seed) as random_state:
        with seeded_random_state(seed) as nested:  # a fit inside a fit gets its own generator
            assert nested is not random_state
            np.testing.assert_array_equal(nested.standard_normal(5), np.random.RandomState(seed).standard_normal(5))
        np.testing.assert_array_equal(random_state.standard_normal(5), expected.standard_normal(5))
        np.testing.assert_array_equal(random_state.uniform(size=(3, 2)), expected.uniform(size=(3, 2)))


def test_seeded_random_state_passes_instances_and_none_through():
    given = np.random.RandomState(0)
    with seeded_random_state(given) as random_state:
        assert random_state is given
    with seeded_random_state(None) as random_state:
        assert random_state is np.random.mtrand._rand
    with pytest.raises(ValueError):
        with seeded_random_state(-1):
            pass
