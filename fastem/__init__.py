"""fastem: fast Expectation-Maximization with compiled kernels."""
from . import kernels
from .kernels import available_backends
from .suff_stats import SuffStats

__version__ = "0.1.0"

__all__ = ["BayesianGaussianMixture", "GaussianMixture", "SuffStats", "available_backends", "kernels", "__version__"]


def __getattr__(name):
    # the estimator pulls in scikit-learn: import it only when asked for
    if name in ("GaussianMixture", "BayesianGaussianMixture"):
        from . import mixture

        return getattr(mixture, name)
    raise AttributeError(f"module 'fastem' has no attribute {name!r}")
