"""Mixture estimators with the scikit-learn API."""
from ._bayesian_mixture import BayesianGaussianMixture
from ._bernoulli_mixture import BernoulliMixture
from ._categorical_mixture import CategoricalMixture
from ._gaussian_mixture import GaussianMixture
from ._poisson_mixture import PoissonMixture

__all__ = ["BayesianGaussianMixture", "BernoulliMixture", "CategoricalMixture", "GaussianMixture", "PoissonMixture"]
