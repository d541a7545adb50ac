"""k-means on fastem's compiled kernels (the initialisation of the Gaussian mixtures)."""
from ._kmeans import KMeansFit, kmeans

__all__ = ["KMeansFit", "kmeans"]
