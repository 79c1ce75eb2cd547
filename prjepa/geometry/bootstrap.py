"""The bootstrap behind every confidence interval: resamples drawn once as sample counts, so that every metric and
every model of a comparison is measured on the same resamples, and their 95% percentile interval."""

import numpy as np


def bootstrap_weights(num_samples: int, num_resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """`(num_resamples, num_samples)` counts: how often each sample is drawn in each resample with replacement."""
    generator = np.random.default_rng(seed)
    return generator.multinomial(num_samples, np.full(num_samples, 1.0 / num_samples), size=num_resamples).astype(
        np.float64
    )


def percentile_interval(replicates: np.ndarray) -> list[float]:
    """95% percentile interval `[low, high]` of bootstrap replicates `(num_resamples,)`; NaN replicates (resamples
    on which the statistic is undefined, possible only for tiny samples) are left out."""
    low, high = np.nanpercentile(replicates, [2.5, 97.5])
    return [float(low), float(high)]
