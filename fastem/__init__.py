"""fastem: fast Expectation-Maximization with compiled kernels."""
from . import kernels
from .kernels import available_backends
from .suff_stats import SuffStats

__version__ = "0.1.0"

__all__ = [
    "BayesianGaussianMixture", "BernoulliMixture", "CategoricalMixture", "FallbackError", "GaussianMixture",
    "PoissonMixture", "SuffStats", "available_backends", "config_context", "get_config",
    "kernels", "patch_sklearn", "set_config", "sklearn_is_patched", "sklearn_patched", "unpatch_sklearn",
    "__version__",
]

# these pull in scikit-learn: import them only when asked for
_LAZY = {
    "BayesianGaussianMixture": "fastem.mixture",
    "GaussianMixture": "fastem.mixture",
    "BernoulliMixture": "fastem.mixture",
    "CategoricalMixture": "fastem.mixture",
    "PoissonMixture": "fastem.mixture",
    "FallbackError": "fastem.mixture._dropin",
    "config_context": "fastem.mixture._dropin",
    "get_config": "fastem.mixture._dropin",
    "set_config": "fastem.mixture._dropin",
    "patch_sklearn": "fastem.patching",
    "unpatch_sklearn": "fastem.patching",
    "sklearn_is_patched": "fastem.patching",
    "sklearn_patched": "fastem.patching",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fastem' has no attribute {name!r}")
