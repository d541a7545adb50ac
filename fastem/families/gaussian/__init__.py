"""The Gaussian mixture family (covariance types full, tied, diag, spherical): its chunk
function over any data source, parameters and M-step, initialisation.

The kernels are :mod:`fastem.kernels` (``em_stats``, ``gaussian_log_prob``), the
statistics :class:`fastem.suff_stats.SuffStats`, the M-step maths :mod:`fastem.gaussian`.
"""
from ._family import CheckedGaussianParams, GaussianFamily, GaussianParams, params_from_covariances, stats_from_params
from ._init import GaussianInit
from ._online import StepwiseEM
from ._pass import GaussianPass, em_stats

__all__ = ["CheckedGaussianParams", "GaussianFamily", "GaussianInit", "GaussianParams", "GaussianPass", "StepwiseEM",
           "em_stats", "params_from_covariances", "stats_from_params"]
