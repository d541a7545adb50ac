"""Drop-in machinery for fastem estimators that subclass their scikit-learn twin.

A public method decorated with :func:`accelerated` runs fastem's implementation when the
estimator's ``_fallback_reason`` finds nothing against it, and scikit-learn's own method
(the twin's, via ``super()``) otherwise. Every decision is logged on the ``"fastem"``
logger at DEBUG: ``"GaussianMixture.fit: running fastem"`` or
``"GaussianMixture.fit: fallback to scikit-learn: <reason>"``.

The switch ``fallback`` (:func:`set_config`, :func:`config_context`; its default comes
from the environment variable ``FASTEM_FALLBACK``) is ``"allow"`` (fall back, the default)
or ``"raise"`` (raise :class:`FallbackError` instead, to prove a workload runs on fastem).

Invalid input is not a reason to fall back: fastem validates as scikit-learn does and
raises the same exception, with or without ``fallback="raise"``.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import threading
from typing import Callable, Iterator

import numpy as np

logger = logging.getLogger("fastem")

FALLBACK_MODES = ("allow", "raise")
_config = {"fallback": os.environ.get("FASTEM_FALLBACK", "allow")}
# inside one of scikit-learn's methods (a fallback), calls back into decorated methods go
# straight to scikit-learn's: its code relies on its own semantics, and one log line is enough
_local = threading.local()


class FallbackError(NotImplementedError):
    """fastem cannot run a call and ``fallback="raise"`` forbids scikit-learn's, or
    scikit-learn's cannot take one of fastem's extra arguments (e.g. ``sample_weight``)."""


def get_config() -> dict:
    """fastem's settings: ``{"fallback": "allow" | "raise"}``."""
    return dict(_config)


def set_config(fallback: str | None = None) -> None:
    """Set ``fallback`` to ``"allow"`` (scikit-learn runs what fastem cannot, logged at
    DEBUG) or ``"raise"`` (:class:`FallbackError` instead); None leaves it unchanged."""
    if fallback is not None:
        if fallback not in FALLBACK_MODES:
            raise ValueError(f"fallback must be one of {FALLBACK_MODES}, got {fallback!r}")
        _config["fallback"] = fallback


@contextlib.contextmanager
def config_context(fallback: str | None = None) -> Iterator[None]:
    """:func:`set_config` inside a ``with`` block; the previous settings come back after it."""
    previous = get_config()
    set_config(fallback=fallback)
    try:
        yield
    finally:
        _config.update(previous)


def array_api_reason(*arrays) -> str | None:
    """Why arrays cannot run on fastem: an array of another Array-API library (torch,
    CuPy, ...) while scikit-learn's ``array_api_dispatch`` is on. Without the dispatch
    scikit-learn converts such input to numpy, and so does fastem."""
    from sklearn import get_config as sklearn_config

    if not sklearn_config()["array_api_dispatch"]:
        return None
    for a in arrays:
        if hasattr(a, "__array_namespace__") and not isinstance(a, np.ndarray):
            return f"{type(a).__module__}.{type(a).__qualname__} input with array_api_dispatch=True"
    return None


def overridden_reason(estimator, fastem_class: type, names: tuple[str, ...]) -> str | None:
    """Why ``estimator`` cannot run on fastem: it (or a subclass of ``fastem_class``)
    overrides one of ``names``, scikit-learn methods that fastem's path does not call."""
    for name in names:
        if name in vars(estimator) or getattr(type(estimator), name) is not getattr(fastem_class, name):
            return f"{name} is overridden"
    return None


class ModuleFunctions:
    """scikit-learn private functions that a fast path stands in for, as found at import.

    A caller that replaces one (a test's ``monkeypatch``/``Mock``, a library's patch)
    expects it to be called, so :meth:`replaced_reason` makes fastem fall back.
    """

    def __init__(self, module, names: tuple[str, ...]):
        self.module = module
        self.originals = {name: getattr(module, name) for name in names}

    def replaced_reason(self) -> str | None:
        for name, original in self.originals.items():
            if getattr(self.module, name) is not original:
                return f"{self.module.__name__}.{name} is replaced"
        return None


def _fastem_only_arguments(method: Callable, bound_twin_method: Callable) -> frozenset:
    return frozenset(inspect.signature(method).parameters) - {"self", *inspect.signature(bound_twin_method).parameters}


def accelerated(method: Callable) -> Callable:
    """Decorate a public method of a fastem estimator (a :class:`DropInMixin` before its
    scikit-learn twin in the bases): run it when ``self._fallback_reason(name, X)`` is
    None, else the twin's method of the same name.

    ``X`` is the method's first argument (None if it has none). Arguments the twin does
    not take (``sample_weight``) must be None to fall back, else :class:`FallbackError`.
    """
    name = method.__name__
    signature = inspect.signature(method)
    # the name of X, the method's first argument after self (None: it takes none)
    x_name = next(iter(list(signature.parameters)[1:]), None)

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        twin_method = getattr(super(DropInMixin, self), name)
        if getattr(_local, "in_sklearn", False):
            return twin_method(*args, **kwargs)
        # X without binding the whole signature (which costs as much as a tiny fit's pass)
        X = args[0] if args else kwargs.get(x_name)
        reason = self._fallback_reason(name, X)
        where = f"{type(self).__name__}.{name}"
        if reason is None:
            logger.debug("%s: running fastem", where)
            return method(self, *args, **kwargs)
        bound = signature.bind(self, *args, **kwargs)
        if _config["fallback"] == "raise":
            raise FallbackError(f"{where}: fastem cannot run this call ({reason}) and fallback='raise'")
        extras = _fastem_only_arguments(method, twin_method)
        given = sorted(k for k in extras if bound.arguments.get(k) is not None)
        if given:
            raise FallbackError(f"{where}: fastem cannot run this call ({reason}) and scikit-learn's "
                                f"{name} takes no {', '.join(given)}")
        logger.debug("%s: fallback to scikit-learn: %s", where, reason)
        arguments = {k: v for k, v in bound.arguments.items() if k != "self" and k not in extras}
        _local.in_sklearn = True
        try:
            return twin_method(**arguments)
        finally:
            _local.in_sklearn = False

    return wrapper


class DropInMixin:
    """Base of a fastem estimator, before its scikit-learn twin in the bases.

    The estimator class sets ``_bypassed_methods`` (twin methods fastem's path does not call: an
    override makes it fall back) and ``_bypassed_functions`` (a :class:`ModuleFunctions`
    of the twin's private functions it stands in for), and may extend ``_fallback_reason``.
    """

    _bypassed_methods: tuple[str, ...] = ()
    _bypassed_functions: ModuleFunctions | None = None

    def _fallback_reason(self, method: str, X) -> str | None:
        """Why ``method`` on ``X`` must run on scikit-learn, or None to run fastem."""
        functions = self._bypassed_functions
        return (
            array_api_reason(X)
            or overridden_reason(self, _fastem_class(type(self)), self._bypassed_methods)
            or (functions.replaced_reason() if functions is not None else None)
        )


def _fastem_class(cls: type) -> type:
    """The fastem estimator class: the most derived that declares ``_bypassed_methods``
    (a user's subclass sits above it, shared bases below it)."""
    return next(c for c in cls.__mro__ if "_bypassed_methods" in vars(c))
