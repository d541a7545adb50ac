"""Generic EM driver: initialise, iterate E/M over a data source, monitor the lower bound.

The loop mirrors scikit-learn's ``BaseMixture.fit_predict`` (1.9) step for step, so that
fits agree with it to rounding: in iteration ``t`` one fused pass over the data gives the
log-likelihood of the current parameters ``theta_t`` (the lower bound recorded for ``t``)
together with the statistics of ``theta_{t+1}``; the M-step follows; the fit stops when
the bound changes by less than ``tol`` or after ``max_iter`` iterations; ``n_init``
restarts keep the one with the largest final bound.

A model family supplies three things (see :class:`ModelFamily`): an initialisation, a
statistics pass over a data source and an M-step. The Gaussian mixture is the first
family (:class:`fastem.mixture.GaussianMixture`).
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from functools import lru_cache, partial
from time import time
from typing import Any, Callable, Protocol

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from ._validation import is_integral

__all__ = ["EMResult", "IterationInfo", "ModelFamily", "MonotonicityWarning", "run_em"]

#: the lower bound may fall by this much relative to its size (float64 data) before the
#: driver calls it a bug; float32 data get ``1000 * eps(float32)``
ROUNDING_RTOL = 1e-10


class MonotonicityWarning(RuntimeWarning):
    """The EM lower bound decreased by more than rounding: a bug in a kernel or M-step."""


class Stats(Protocol):
    loglik: float  # total weighted log-likelihood of the parameters the statistics came from
    n: float  # total weight of the samples


class ModelFamily(Protocol):
    """What the driver needs from a model family; ``Params`` is any object."""

    def initialize(self, source, random_state: np.random.RandomState) -> Any:
        """Initial parameters (draws from ``random_state``)."""

    def stats(self, source, params) -> Stats:
        """One pass over ``source``: the E-step under ``params`` folded into the
        statistics of the M-step, with ``loglik`` and ``n``."""

    def m_step(self, stats) -> Any:
        """Parameters maximising the expected complete-data log-likelihood."""

    def lower_bound_slack(self, params) -> float:
        """How far the next bound may fall below the bound of ``params`` (per unit
        weight) without a bug: 0 for exact EM, positive when the M-step is regularised."""

    # Optional: a family whose bound is not the log-likelihood per unit weight (e.g. the
    # variational bound, which scikit-learn evaluates after the M-step) defines
    #     lower_bound(stats, params, new_params) -> (bound, slack)
    # the bound of the iteration that took ``params`` to ``new_params`` through ``stats``,
    # and how far the next iteration's bound may fall below it; it replaces
    # ``stats.loglik / stats.n`` and ``lower_bound_slack(params)``.


@dataclass(frozen=True)
class IterationInfo:
    """What a ``callback`` receives after every iteration."""

    init: int  # restart index, 0 .. n_init - 1
    n_init: int
    n_iter: int  # 1 .. max_iter
    max_iter: int
    lower_bound: float  # the family's bound: by default the average log-likelihood of the parameters before this M-step
    change: float  # lower_bound minus the previous one (inf at the first iteration)
    converged: bool


@dataclass
class EMResult:
    """The best restart: its final parameters (after the last M-step), its last lower
    bound (``-inf`` when ``max_iter == 0``), the bound of every iteration, the number of
    iterations and whether ``|change| < tol`` was reached."""

    params: Any
    lower_bound: float
    lower_bounds: list[float] = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False


def _debug() -> bool:
    return os.environ.get("FASTEM_DEBUG", "") not in ("", "0")


@lru_cache(maxsize=None)
def _rounding_rtol(dtype) -> float:
    return max(ROUNDING_RTOL, 1000 * float(np.finfo(dtype).eps))


def check_monotone(previous: float, current: float, slack: float, n_iter: int, dtype=np.float64) -> None:
    """Warn (raise under ``FASTEM_DEBUG=1``) when the bound fell by more than ``slack``
    plus rounding: EM never decreases the likelihood, so this is a bug."""
    rtol = _rounding_rtol(dtype)
    allowed = slack + rtol * max(abs(previous), abs(current), 1.0)
    if current < previous - allowed:
        message = (
            f"the EM lower bound decreased at iteration {n_iter}, from {previous!r} to {current!r} "
            f"(by {previous - current:.3g}, more than the {allowed:.3g} rounding and regularisation "
            "allow); EM cannot decrease the likelihood, so this is a bug in fastem: please report it"
        )
        if _debug():
            raise RuntimeError(message)
        warnings.warn(message, MonotonicityWarning, stacklevel=3)


class _Verbose:
    """scikit-learn's verbose messages, word for word."""

    def __init__(self, verbose: int, verbose_interval: int):
        self.verbose = verbose
        self.interval = verbose_interval

    def init_begin(self, init: int) -> None:
        if self.verbose >= 1:
            print("Initialization %d" % init)
        self.init_time = self.iter_time = time()

    def iter_end(self, n_iter: int, change: float) -> None:
        if n_iter % self.interval == 0:
            if self.verbose == 1:
                print("  Iteration %d" % n_iter)
            elif self.verbose >= 2:
                now = time()
                print("  Iteration %d\t time lapse %.5fs\t ll change %.5f" % (n_iter, now - self.iter_time, change))
                self.iter_time = now

    def init_end(self, lower_bound: float, converged: bool) -> None:
        converged_msg = "converged" if converged else "did not converge"
        if self.verbose == 1:
            print(f"Initialization {converged_msg}.")
        elif self.verbose >= 2:
            print(f"Initialization {converged_msg}. time lapse {time() - self.init_time:.5f}s\t "
                  f"lower bound {lower_bound:.5f}.")


#: RandomState objects between fits, re-seeded by the next (see :class:`seeded_random_state`)
_spare_random_states: list[np.random.RandomState] = []


class seeded_random_state:
    """Context manager: ``check_random_state(random_state)`` for the length of one fit.

    An int seed re-seeds a spare RandomState rather than building one: ``RandomState(seed)``
    first seeds a new MT19937 from OS entropy (about 0.1 ms, as much as a tiny fit) and then
    overwrites that state with the legacy seeding, which ``seed(seed)`` does alone, so the
    draws are the same. A spare is off the list while a fit uses it (``list.pop`` and
    ``append`` are atomic), so nested and concurrent fits each have their own.
    """

    def __init__(self, random_state):
        self.random_state = random_state
        self.spare = None

    def __enter__(self) -> np.random.RandomState:
        if not is_integral(self.random_state):
            return check_random_state(self.random_state)
        try:
            spare = _spare_random_states.pop()
        except IndexError:  # the first fit, or every spare in use
            spare = np.random.RandomState()
        spare.seed(self.random_state)  # a seed out of range raises as RandomState(seed) does
        self.spare = spare
        return spare

    def __exit__(self, *exc_info) -> None:
        if self.spare is not None:
            _spare_random_states.append(self.spare)


def _lower_bound(family: ModelFamily, stats, params, new_params) -> tuple[float, Callable[[], float]]:
    """The iteration's bound, and the slack of the next as a function: the family's
    ``lower_bound`` hook where it has one, else the log-likelihood of ``params`` per unit
    weight and ``lower_bound_slack(params)``, computed only if the next bound falls (it
    costs as much as a small M-step, and EM's bound rarely falls)."""
    hook = getattr(family, "lower_bound", None)
    if hook is not None:
        bound, slack = hook(stats, params, new_params)
        return bound, lambda: slack
    return stats.loglik / stats.n, partial(family.lower_bound_slack, params)


def _run_once(family: ModelFamily, source, params, lower_bound: float, *, tol: float, max_iter: int,
              init: int, n_init: int, log: _Verbose, callback) -> EMResult:
    """One restart from ``params``; ``lower_bound`` is the previous bound (``-inf`` fresh)."""
    lower_bounds: list[float] = []
    converged = False
    dtype = getattr(source, "dtype", np.float64)
    for n_iter in range(1, max_iter + 1):
        previous = lower_bound
        stats = family.stats(source, params)
        if math.isnan(stats.loglik / stats.n):
            raise ValueError(
                f"the EM lower bound is NaN at iteration {n_iter}; check the data and "
                "initial parameters for extreme values, or scale the data"
            )
        new_params = family.m_step(stats)
        lower_bound, next_slack = _lower_bound(family, stats, params, new_params)
        if lower_bounds and lower_bound < previous:  # else check_monotone has nothing to say
            check_monotone(previous, lower_bound, slack(), n_iter, dtype)
        slack, params = next_slack, new_params
        lower_bounds.append(lower_bound)
        change = lower_bound - previous
        log.iter_end(n_iter, change)
        converged = abs(change) < tol
        if callback is not None:
            callback(IterationInfo(init, n_init, n_iter, max_iter, lower_bound, change, converged))
        if converged:
            break
    log.init_end(lower_bound, converged)
    return EMResult(params, lower_bound, lower_bounds, n_iter, converged)


def run_em(family: ModelFamily, source, *, tol: float = 1e-3, max_iter: int = 100, n_init: int = 1,
           random_state=None, start: tuple[Any, float] | None = None, verbose: int = 0,
           verbose_interval: int = 10, callback: Callable[[IterationInfo], Any] | None = None) -> EMResult:
    """Fit ``family`` to ``source`` by EM and return the best of ``n_init`` restarts.

    ``start=(params, lower_bound)`` continues a previous fit (warm start: one run, no
    initialisation, the first change measured against ``lower_bound``). With
    ``max_iter == 0`` the initial parameters are returned (the last restart's, bound
    ``-inf``, as scikit-learn does). Warns ``ConvergenceWarning`` when the best restart
    did not converge (``max_iter > 0``).
    """
    log = _Verbose(verbose, verbose_interval)
    n_init = 1 if start is not None else n_init
    best = None
    with seeded_random_state(random_state) as random_state:
        for init in range(n_init):
            log.init_begin(init)
            if start is None:
                params, lower_bound = family.initialize(source, random_state), -np.inf
            else:
                params, lower_bound = start
            if max_iter == 0:
                best = EMResult(params, -np.inf)
                continue
            result = _run_once(family, source, params, lower_bound, tol=tol, max_iter=max_iter, init=init,
                               n_init=n_init, log=log, callback=callback)
            # scikit-learn's rule: the first restart, then any with a strictly larger bound
            if best is None or result.lower_bound > best.lower_bound or best.lower_bound == -np.inf:
                best = result
    if not best.converged and max_iter > 0:
        warnings.warn(
            "Best performing initialization did not converge. Try different init parameters, "
            "or increase max_iter, tol, or check for degenerate data.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return best
