"""``fastem.BernoulliMixture``: a mixture of independent Bernoulli features."""
from __future__ import annotations

from collections.abc import Iterator
from numbers import Real

import numpy as np

from ..families.bernoulli import BERNOULLI, BernoulliParams, check_params
from ._independent_mixture import IndependentMixture


class BernoulliMixture(IndependentMixture):
    """Mixture of independent Bernoulli features (binary data; latent class analysis of
    yes/no items), fitted by EM on fastem's compiled kernels.

    X holds 0 and 1 (bool, int or float); NaN marks a missing value, marginalised out
    (a row's likelihood uses its observed features only; a row with none contributes
    nothing). Any other value raises a ValueError naming its feature.

    Parameters
    ----------
    n_components, max_iter, n_init, random_state, warm_start, verbose, verbose_interval
        As in :class:`fastem.GaussianMixture`.
    tol : float, default=1e-6
        Stop when the average log-likelihood changes by less. Smaller than GaussianMixture's
        1e-3: a random start sits near a saddle point, where the likelihood first changes
        slowly (with 1e-3, fits stopped after 2 iterations far from the optimum).
    alpha : float >= 0, default=0.0
        Smoothing pseudo-count: the M-step is ``(sum_x + alpha) / (n_obs + 2 alpha)``, the
        MAP estimate under a Beta(1 + alpha, 1 + alpha) prior (alpha = 0: maximum
        likelihood, as stepmix and poLCA fit it). Probabilities are always kept in
        ``[1e-15, 1 - 1e-15]``, so that no log-probability is infinite.
    init_params : {"random", "random_from_data"}, default="random"
        Random responsibilities (uniform, row-normalised, as scikit-learn draws them), or
        one random row per component, followed by one M-step.
    weights_init : (K,) array or None; probs_init : (K, D) array in (0, 1) or None
        User-given initial parameters (weights default to uniform when only probs_init is given).
    binarize : float or None, default=None
        None: X must be binary. A float: values above it count as 1, the others as 0 (as
        scikit-learn's ``BernoulliNB`` thresholds; NaN stays missing); ``fit`` then takes
        in-memory X only (arrays; memmaps are read into memory).
    init_size : int or None, default=None
        Initialise on a uniform sample of this many rows; None: at most 100 000 (the same rows
        from an array, a memmap or chunks of the same data).
    backend, n_jobs, callback
        As in :class:`fastem.GaussianMixture` (backend "auto": the numpy reference for tiny fits).

    Attributes
    ----------
    weights_ (K,), probs_ (K, D) ``P(x_d = 1 | k)``, converged_, n_iter_, lower_bound_
    (average log-likelihood), lower_bounds_, n_features_in_, backend_.
    """

    _distribution = BERNOULLI
    _table_name = "probs"
    _params_type = BernoulliParams
    _parameter_constraints: dict = {**IndependentMixture._parameter_constraints, "probs_init": ["array-like", None],
                                    "binarize": [Real, None]}

    def __init__(self, n_components=1, *, tol=1e-6, alpha=0.0, max_iter=100, n_init=1, init_params="random",
                 weights_init=None, probs_init=None, random_state=None, warm_start=False, verbose=0,
                 verbose_interval=10, binarize=None, init_size=None, backend="auto", n_jobs=None, callback=None):
        self.n_components = n_components
        self.tol = tol
        self.alpha = alpha
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.probs_init = probs_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.binarize = binarize
        self.init_size = init_size
        self.backend = backend
        self.n_jobs = n_jobs
        self.callback = callback

    def _check_table_init(self, weights, probs, n_features: int) -> BernoulliParams:
        return check_params(weights, probs, self.n_components, n_features)

    def _prepare(self, X: np.ndarray) -> np.ndarray:
        if self.binarize is None:
            return X
        with np.errstate(invalid="ignore"):
            return np.where(np.isnan(X), np.nan, X > self.binarize).astype(X.dtype)

    def _in_memory(self, X) -> bool:
        # with binarize, array-likes (memmaps included) are read and thresholded in memory
        chunked = callable(X) or isinstance(X, Iterator) or hasattr(X, "map_reduce") or hasattr(X, "dask")
        return super()._in_memory(X) or (self.binarize is not None and not chunked)

    def _check_out_of_core(self) -> None:
        if self.binarize is not None:
            raise ValueError("binarize works on in-memory X only; threshold the chunks of an out-of-core source "
                             "(or set binarize=None)")
