"""``fastem.CategoricalMixture``: latent class analysis, a mixture of independent
categorical features."""
from __future__ import annotations

from numbers import Integral

import numpy as np

from ..families.categorical import CATEGORICAL, CategoricalParams, check_params
from ._independent_mixture import IndependentMixture


class CategoricalMixture(IndependentMixture):
    """Mixture of independent categorical features (latent class analysis, as stepmix
    and poLCA fit it), fitted by EM on fastem's compiled kernels.

    X holds integer category codes ``0 .. n_categories[d] - 1`` per feature (int or
    float); NaN marks a missing value, marginalised out (a row with no observed feature
    contributes nothing). A negative, non-integer or too large code raises a ValueError
    naming its feature.

    Parameters
    ----------
    n_components, max_iter, n_init, random_state, warm_start, verbose, verbose_interval
        As in :class:`fastem.GaussianMixture`.
    tol : float, default=1e-6
        Stop when the average log-likelihood changes by less. Smaller than GaussianMixture's
        1e-3: a random start sits near a saddle point, where the likelihood first changes
        slowly (with 1e-3, fits stopped after 2 iterations far from the optimum).
    n_categories : int, (D,) ints or None, default=None
        Number of categories of each feature; None: one more than the largest code in the
        training data, per feature.
    alpha : float >= 0, default=0.0
        Smoothing pseudo-count: ``(counts + alpha) / (n_obs + n_categories[d] alpha)``, the
        MAP estimate under a symmetric Dirichlet(1 + alpha) prior (alpha = 0: maximum
        likelihood). Probabilities are always kept above 1e-15.
    init_params : {"random", "random_from_data"}, default="random"
        As in :class:`fastem.BernoulliMixture`.
    weights_init : (K,) array or None; probs_init : (K, D, C) array or None
        User-given initial parameters (``probs_init[k, d, c] = P(x_d = c | k)``).
    init_size, backend, n_jobs, callback
        As in :class:`fastem.BernoulliMixture`.

    Attributes
    ----------
    weights_ (K,), probs_ (K, D, C) (0 past each feature's categories), n_categories_
    (D,), converged_, n_iter_, lower_bound_, lower_bounds_, n_features_in_, backend_.
    """

    _distribution = CATEGORICAL
    _table_name = "probs"
    _params_type = CategoricalParams
    _parameter_constraints: dict = {**IndependentMixture._parameter_constraints, "probs_init": ["array-like", None],
                                    "n_categories": [Integral, "array-like", None]}

    def __init__(self, n_components=1, *, n_categories=None, tol=1e-6, alpha=0.0, max_iter=100, n_init=1,
                 init_params="random", weights_init=None, probs_init=None, random_state=None, warm_start=False,
                 verbose=0, verbose_interval=10, init_size=None, backend="auto", n_jobs=None, callback=None):
        self.n_components = n_components
        self.n_categories = n_categories
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
        self.init_size = init_size
        self.backend = backend
        self.n_jobs = n_jobs
        self.callback = callback

    def _learn_data_shape(self, source, warm: bool) -> None:
        """``n_categories_``: given, kept from the fit a warm start continues, or one more
        than each feature's largest code (one pass over an out-of-core source)."""
        n_features = source.n_features
        if warm:
            return
        if self.n_categories is not None:
            counts = np.broadcast_to(np.asarray(self.n_categories), (n_features,))
            if counts.dtype.kind not in "iu" or (counts < 1).any():
                raise ValueError(f"n_categories must be an int >= 1 or ({n_features},) such ints, "
                                 f"got {self.n_categories!r}")
        else:
            largest = np.full(n_features, -np.inf)
            for chunk, _ in source.iter_chunks():
                if len(chunk):
                    with np.errstate(invalid="ignore"):
                        largest = np.fmax(largest, np.nanmax(chunk, axis=0) if np.isnan(chunk).any()
                                          else chunk.max(axis=0))
            # a non-integer or negative code is reported, naming its feature, by the first pass
            counts = np.floor(np.where(np.isfinite(largest), np.maximum(largest, 0), 0)) + 1
        self.n_categories_ = np.ascontiguousarray(counts, dtype=np.int64)

    def _check_table_init(self, weights, probs, n_features: int) -> CategoricalParams:
        return check_params(weights, probs, self.n_categories_, self.n_components)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.input_tags.categorical = True
        return tags
