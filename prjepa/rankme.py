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


def has_no_variance(features: np.ndarray, eps: float = 0.0) -> bool:
    """Whether the rows of `features` `(num_samples, dim)` are one vector to within rounding in a precision of machine
    epsilon `eps`: every feature within 4 units in the last place of its largest magnitude from its mean. Copies of
    one vector computed apart (another row of a batch, another thread's share of a kernel) differ by about one, which
    centring would otherwise turn into a spectrum of noise. Feature by feature, so that a shared large mean (an
    anisotropic representation) does not hide a real spread in the other features."""
    spread = np.abs(features - features.mean(axis=0))
    return bool((spread <= max(ZERO_VARIANCE_TOLERANCE, 4 * eps) * np.abs(features).max(axis=0)).all())
