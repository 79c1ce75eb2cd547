"""RankMe (Garrido et al., 2023), the effective rank of a representation: numpy only, so that the trainer's collapse
signal and the geometry package compute it from one definition."""

import numpy as np

RANKME_EPSILON = 1e-7  # docs/method.md §4.2: p_k = σ_k / Σσ + 1e-7
# Centring identical rows in float64 leaves rounding noise ~1e-16 of their norm, not exact zeros: a leading singular
# value below this fraction of the features' norm means zero variance.
ZERO_VARIANCE_TOLERANCE = 1e-12


def rankme(singular_values: np.ndarray) -> np.ndarray:
    """RankMe along the last axis: exp(−Σ_k p_k log p_k), p_k = σ_k / Σσ + 1e-7.

    singular_values: `(..., num_values)`, not all zero. Returns `(...)`. Features on a line give 1 (plus ~1e-6 from
    the 1e-7 smoothing); isotropic features give close to the number of values.
    """
    probabilities = singular_values / singular_values.sum(axis=-1, keepdims=True) + RANKME_EPSILON
    return np.exp(-(probabilities * np.log(probabilities)).sum(axis=-1))
