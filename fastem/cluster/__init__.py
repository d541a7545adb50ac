"""k-means on fastem's compiled kernels (the initialisation of the Gaussian mixtures)."""
from ._kmeans import KMeansFit, fit_kmeans, kmeans
from ._seeding import kmeans_plusplus

__all__ = ["KMeansFit", "fit_kmeans", "kmeans", "kmeans_plusplus"]
