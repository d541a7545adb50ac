"""Mixture estimators with the scikit-learn API."""
from ._gaussian_mixture import GaussianMixture

__all__ = ["GaussianMixture"]
