"""``fastem.PoissonMixture``: a mixture of independent Poisson features."""
from __future__ import annotations

from ..families.poisson import POISSON, PoissonParams, check_params
from ._independent_mixture import IndependentMixture


class PoissonMixture(IndependentMixture):
    """Mixture of independent Poisson features (count data), fitted by EM on fastem's
    compiled kernels.

    X holds non-negative integer counts (int or float); NaN marks a missing value,
    marginalised out (a row with no observed feature contributes nothing). A negative or
    non-integer value raises a ValueError naming its feature.

    Parameters
    ----------
    n_components, max_iter, n_init, random_state, warm_start, verbose, verbose_interval
        As in :class:`fastem.GaussianMixture`.
    tol : float, default=1e-6
        Stop when the average log-likelihood changes by less. Smaller than GaussianMixture's
        1e-3: a random start sits near a saddle point, where the likelihood first changes
        slowly (with 1e-3, fits stopped after 2 iterations far from the optimum).
    alpha : float >= 0, default=0.0
        Smoothing: the M-step is ``(sum_x + alpha) / (n_obs + alpha)``, the MAP estimate
        under a Gamma(1 + alpha, alpha) prior on each rate (alpha = 0: maximum likelihood).
        Rates are always kept above 1e-15, so that no log-rate is infinite.
    init_params : {"random", "random_from_data"}, default="random"
        As in :class:`fastem.BernoulliMixture`.
    weights_init : (K,) array or None; rates_init : (K, D) positive array or None
        User-given initial parameters.
    init_size, backend, n_jobs, callback
        As in :class:`fastem.BernoulliMixture`.

    Attributes
    ----------
    weights_ (K,), rates_ (K, D) mean counts, converged_, n_iter_, lower_bound_,
    lower_bounds_, n_features_in_, backend_.
    """

    _distribution = POISSON
    _table_name = "rates"
    _params_type = PoissonParams
    _parameter_constraints: dict = {**IndependentMixture._parameter_constraints, "rates_init": ["array-like", None]}

    def __init__(self, n_components=1, *, tol=1e-6, alpha=0.0, max_iter=100, n_init=1, init_params="random",
                 weights_init=None, rates_init=None, random_state=None, warm_start=False, verbose=0,
                 verbose_interval=10, init_size=None, backend="auto", n_jobs=None, callback=None):
        self.n_components = n_components
        self.tol = tol
        self.alpha = alpha
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.rates_init = rates_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.init_size = init_size
        self.backend = backend
        self.n_jobs = n_jobs
        self.callback = callback

    def _check_table_init(self, weights, rates, n_features: int) -> PoissonParams:
        return check_params(weights, rates, self.n_components, n_features)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.input_tags.categorical = True  # integer counts
        return tags
