"""stepmix (latent class analysis) as a peer: the same EM iterations from the same
initial parameters, for the parity test and the per-iteration benchmark of fastem's
Bernoulli and categorical mixtures. stepmix is optional: :func:`available` says whether
it imports.

stepmix's ``fit`` always initialises; :func:`from_params` builds a model whose
initialisation is the given parameters. Layout: ``pis`` (K, D) for "binary", (K, D * L)
feature-major for "categorical" with L the largest number of categories.
"""
from __future__ import annotations

import copy
import importlib.util

import numpy as np


def available() -> bool:
    return importlib.util.find_spec("stepmix") is not None


def from_params(measurement: str, weights: np.ndarray, probs: np.ndarray, *, max_iter: int):
    """An unfitted stepmix model (``measurement`` "binary", "binary_nan", "categorical" or
    "categorical_nan") that starts from weights (K,) and probs ((K, D) binary; (K, D, L)
    categorical) and runs exactly ``max_iter`` iterations."""
    from stepmix.stepmix import StepMix

    class StepMixFromParams(StepMix):
        def _initialize_parameters(self, X, random_state):
            self._initialize_parameters_measurement(X, random_state, init_emission=False)
            self.set_parameters(copy.deepcopy(self.given_params_))

    K = weights.shape[0]
    if probs.ndim == 3:
        L = probs.shape[2]
        measurement_params = dict(pis=probs.reshape(K, -1), max_n_outcomes=L, total_outcomes=probs.shape[1] * L)
    else:
        measurement_params = dict(pis=probs)
    model = StepMixFromParams(n_components=K, measurement=measurement, max_iter=max_iter, abs_tol=0.0, rel_tol=0.0,
                              n_init=1, verbose=0, progress_bar=0, random_state=0)
    model.given_params_ = dict(weights=np.array(weights), measurement_in=probs.shape[1],
                               measurement=measurement_params)
    return model


def fitted_probs(model, shape: tuple) -> np.ndarray:
    """A fitted stepmix model's probabilities in fastem's layout (``shape``)."""
    return np.asarray(model.get_parameters()["measurement"]["pis"]).reshape(shape)
