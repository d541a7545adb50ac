"""Progress reporting for long fits: a per-iteration callback drawing a tqdm bar."""
from __future__ import annotations

from .em import IterationInfo


class TqdmProgress:
    """``callback`` for :func:`fastem.em.run_em` (and ``GaussianMixture(callback="tqdm")``):
    one tqdm bar per restart, advanced every EM iteration, with the lower bound and its
    change as postfix. Needs the optional ``tqdm`` package."""

    def __init__(self, **tqdm_kwargs):
        try:
            from tqdm.auto import tqdm
        except ImportError as exc:
            raise ImportError("progress bars need tqdm: pip install 'fastem[progress]'") from exc
        self._tqdm = tqdm
        self._kwargs = tqdm_kwargs
        self._bar = None

    def __call__(self, info: IterationInfo) -> None:
        if self._bar is None:
            desc = f"EM init {info.init + 1}/{info.n_init}"
            self._bar = self._tqdm(total=info.max_iter, desc=desc, unit="iter", **self._kwargs)
        self._bar.update(1)
        self._bar.set_postfix(lower_bound=f"{info.lower_bound:.6g}", change=f"{info.change:.3g}")
        if info.converged or info.n_iter == info.max_iter:
            self._bar.close()
            self._bar = None


def as_callback(callback):
    """None, a callable taking :class:`~fastem.em.IterationInfo`, or ``"tqdm"``."""
    if callback is None or callable(callback):
        return callback
    if callback == "tqdm":
        return TqdmProgress()
    raise ValueError(f"callback must be None, a callable or 'tqdm', got {callback!r}")
