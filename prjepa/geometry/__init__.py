"""Representation geometry of frozen sentence features (docs/method.md §4.2): spectrum, effective rank, token vs
semantic probes, alignment and uniformity, class distances, anisotropy — with bootstrap confidence intervals, a
markdown summary and plots.

Everything here works on feature arrays `(num_samples, dim)` and needs numpy, scikit-learn and matplotlib only:
feature extraction and pooling live in `prjepa.probing`, and the analysis command (`analysis.py`) feeds their output
to `compare_models` and renders the result. Modules: `metrics` (the metrics), `bootstrap` (resamples and intervals),
`report` (JSON entries, model comparisons, markdown), `plots`.

Conventions shared by the metrics:
- "Pairs" are unordered pairs of distinct samples {i, j}, i ≠ j (a sample is never paired with itself).
- Alignment, uniformity, class distances and anisotropy use L2-normalised features; the spectrum, the effective rank
  and the probes use the raw features.
- A metric the data cannot define (one class, no labels, zero variance) raises `NotApplicable`; `geometry_metrics`
  turns that into an entry `{"value": None, "not_applicable": reason}`. Estimates from fewer than
  `MIN_RELIABLE_SAMPLES` samples carry a `"warning"` beside the number.
- Confidence intervals are 95% percentile intervals over `num_resamples` bootstrap resamples of the samples, drawn
  once per (dataset, pooling) from a seeded generator and shared by every metric and model, so that comparisons
  between models on the same texts are paired.

The names below load with their module on first use, so that the analysis's `--help` does not load scikit-learn or
matplotlib.
"""

from ..utils import lazy_exports

_import_structure = {
    "..rankme": ["RANKME_EPSILON", "rankme"],
    ".bootstrap": ["bootstrap_weights", "percentile_interval"],
    ".metrics": [
        "METRIC_NAMES",
        "PAIR_BLOCK_ROWS",
        "SPECTRUM_KEYS",
        "UNIFORMITY_TEMPERATURE",
        "ZERO_SQUARED_DISTANCE",
        "NotApplicable",
        "ProbeResult",
        "SpectrumMetrics",
        "alignment_replicates",
        "anisotropy",
        "as_feature_matrix",
        "class_codes",
        "centred_uniformity_replicates",
        "class_distances",
        "effective_rank_replicates",
        "most_frequent_tokens",
        "principal_components",
        "probe_accuracy",
        "rankme_replicates_from_scores",
        "spectrum_from_singular_values",
        "spectrum_metrics",
        "squared_distance_blocks",
        "uniformity_replicates",
        "unit_rows",
    ],
    ".plots": [
        "plot_alignment_uniformity",
        "plot_effective_rank",
        "plot_eigenvalue_spectra",
        "plot_metric_bars",
        "plot_pooling_ablation",
        "plot_probe_accuracies",
    ],
    ".report": [
        "CLASS_DISTANCE_KEYS",
        "MIN_RELIABLE_SAMPLES",
        "compare_models",
        "format_entry",
        "geometry_metrics",
        "render_markdown",
    ],
}
__getattr__ = lazy_exports(__name__, _import_structure)

__all__ = sorted(name for names in _import_structure.values() for name in names)
