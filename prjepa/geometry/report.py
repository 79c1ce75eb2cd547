"""The geometry report: every metric of one (model, dataset, pooling) as a JSON-able entry with its CI, its reason
when not applicable and a warning on few samples; models compared on shared resamples with their paired uniformity
ratio; and the markdown summary of such comparisons."""

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from ..utils import collapsed_warnings, markdown_table
from .bootstrap import bootstrap_weights, percentile_interval
from .metrics import (
    METRIC_NAMES,
    SPECTRUM_KEYS,
    NotApplicable,
    ProbeResult,
    alignment_replicates,
    anisotropy,
    as_feature_matrix,
    centred_uniformity_replicates,
    class_codes,
    class_distances,
    principal_components,
    probe_accuracy,
    rankme_replicates_from_scores,
    spectrum_from_singular_values,
    uniformity_replicates,
    unit_rows,
)

logger = logging.getLogger(__name__)

MIN_RELIABLE_SAMPLES = 50  # below it, an entry carries a warning beside its number
# The uniformities compared between models as ratios, each under the key `<name>_ratio` of a comparison.
UNIFORMITIES = ("uniformity", "centred_uniformity")


def _estimate_entry(point_and_replicates: np.ndarray) -> dict[str, Any]:
    """Entry from `(1 + num_resamples,)` values whose first is the point estimate (weights all ones)."""
    return {"value": float(point_and_replicates[0]), "ci95": percentile_interval(point_and_replicates[1:])}


def _probe_entry(result: ProbeResult) -> dict[str, Any]:
    entry = asdict(result)
    return {"value": entry.pop("accuracy"), **entry}


def _probe_gap_entry(token_entry: dict[str, Any], semantic_entry: dict[str, Any]) -> dict[str, Any]:
    for name, entry in (("token", token_entry), ("semantic", semantic_entry)):
        if entry["value"] is None:
            raise NotApplicable(f"the {name} probe is not applicable: {entry['not_applicable']}")
    return {"value": semantic_entry["value"] - token_entry["value"]}


CLASS_DISTANCE_KEYS = ["intra_class_distance", "inter_class_distance", "intra_inter_ratio"]


def _class_distance_entries(unit_features: np.ndarray, codes: np.ndarray) -> list[dict[str, Any]]:
    """Entries of `CLASS_DISTANCE_KEYS`."""
    intra, inter = class_distances(unit_features, codes)
    if inter == 0:
        raise NotApplicable("every different-label pair coincides (inter-class distance 0): the ratio is undefined")
    return [{"value": float(intra)}, {"value": float(inter)}, {"value": float(intra / inter)}]


def _spectrum_entries(features: np.ndarray, weights_with_point: np.ndarray) -> list[dict[str, Any]]:
    """Entries of `SPECTRUM_KEYS`, the effective rank with its CI."""
    features = as_feature_matrix(features)
    singular_values, scores = principal_components(features)  # one decomposition for the spectrum and its CI
    spectrum = asdict(spectrum_from_singular_values(singular_values, *features.shape))
    spectrum["effective_rank"] = _estimate_entry(rankme_replicates_from_scores(scores, weights_with_point))
    return [value if isinstance(value, dict) else {"value": value} for value in spectrum.values()]


def _entries(keys: Sequence[str], compute: Callable[[], Sequence[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """`compute`'s entries under `keys`; if the data cannot define these metrics, each entry says why instead."""
    try:
        return dict(zip(keys, compute(), strict=True))
    except NotApplicable as reason:
        return {key: {"value": None, "not_applicable": str(reason)} for key in keys}


def _require(values: Any, what: str) -> Any:
    if values is None:
        raise NotApplicable(f"no {what} were given")
    return values


def _warn_if_few_samples(entry: dict[str, Any], num_samples: int) -> None:
    if entry["value"] is not None and num_samples < MIN_RELIABLE_SAMPLES:
        entry["warning"] = f"only {num_samples} samples (< {MIN_RELIABLE_SAMPLES}): an unstable estimate"


def _geometry_and_uniformity(
    features: np.ndarray,
    labels: Sequence | np.ndarray | None,
    token_labels: Sequence | np.ndarray | None,
    weights: np.ndarray,
    seed: int,
) -> tuple[dict[str, Any], dict[str, np.ndarray | None]]:
    """`geometry_metrics` under the given resample weights `(num_resamples, num_samples)`, plus, for each of
    `UNIFORMITIES`, its point estimate followed by its replicates `(1 + num_resamples,)` (None where it does not
    apply), for ratios between models."""
    features = as_feature_matrix(features)
    num_samples, dim = features.shape
    unit_features = unit_rows(features)
    codes = None if labels is None else class_codes(labels, num_samples)
    weights_with_point = np.vstack([np.ones(num_samples), weights])
    replicates: dict[str, np.ndarray | None] = {"uniformity": uniformity_replicates(unit_features, weights_with_point)}
    try:
        replicates["centred_uniformity"] = centred_uniformity_replicates(features, weights_with_point)
        centred = _estimate_entry(replicates["centred_uniformity"])
    except NotApplicable as reason:
        replicates["centred_uniformity"], centred = None, {"value": None, "not_applicable": str(reason)}

    def probe(targets: Sequence | np.ndarray | None, what: str) -> dict[str, Any]:
        return _probe_entry(probe_accuracy(features, _require(targets, what), seed=seed))

    metrics = _entries(SPECTRUM_KEYS, lambda: _spectrum_entries(features, weights_with_point))
    metrics |= _entries(["token_probe"], lambda: [probe(token_labels, "token labels")])
    metrics |= _entries(["semantic_probe"], lambda: [probe(labels, "task labels")])
    metrics |= _entries(["probe_gap"], lambda: [_probe_gap_entry(metrics["token_probe"], metrics["semantic_probe"])])
    metrics |= _entries(
        ["alignment"],
        lambda: [
            _estimate_entry(alignment_replicates(unit_features, _require(codes, "task labels"), weights_with_point))
        ],
    )
    metrics["uniformity"] = _estimate_entry(replicates["uniformity"])
    metrics["centred_uniformity"] = centred
    metrics |= _entries(
        CLASS_DISTANCE_KEYS, lambda: _class_distance_entries(unit_features, _require(codes, "task labels"))
    )
    metrics["anisotropy"] = {"value": anisotropy(unit_features)}
    for entry in metrics.values():
        _warn_if_few_samples(entry, entry.get("num_samples", num_samples))
    summary = {
        "num_samples": num_samples,
        "dim": dim,
        "num_classes": None if codes is None else int(codes.max() + 1),
        "bootstrap": {"num_resamples": len(weights), "seed": seed, "interval": "95% percentile"},
        "metrics": {key: metrics[key] for key in METRIC_NAMES},
    }
    return summary, replicates


def geometry_metrics(
    features: np.ndarray,
    labels: Sequence | np.ndarray | None = None,
    token_labels: Sequence | np.ndarray | None = None,
    *,
    num_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Every docs/method.md §4.2 metric of one (model, dataset, pooling) as a JSON-able dict.

    features: `(num_samples, dim)`; labels: `(num_samples,)` discrete task labels, or None (e.g. a regression task);
    token_labels: `(num_samples,)` each text's most frequent non-special token (`most_frequent_tokens`), or None.
    Returns `{"num_samples", "dim", "num_classes", "bootstrap", "metrics"}`; `metrics` maps each key of
    `METRIC_NAMES` to `{"value": ...}`, plus `"ci95": [low, high]` for effective rank, alignment and uniformity, the
    probe's chance level and sample counts for the probes, `"warning"` below `MIN_RELIABLE_SAMPLES` samples, or
    `{"value": None, "not_applicable": reason}`. `seed` draws the resamples and the probes' held-out split.
    """
    num_samples = as_feature_matrix(features).shape[0]
    weights = bootstrap_weights(num_samples, num_resamples, seed)
    return _geometry_and_uniformity(features, labels, token_labels, weights, seed)[0]


def _uniformity_ratio_entry(numerator: np.ndarray | None, denominator: np.ndarray | None) -> dict[str, Any]:
    """Ratio of two models' uniformity `(1 + num_resamples,)` (point estimate first), resample by resample."""
    if numerator is None or denominator is None:
        raise NotApplicable("a model's uniformity is not applicable")
    if denominator[0] == 0:
        raise NotApplicable("the denominator model's uniformity is 0 (its features collapsed to one point)")
    with np.errstate(invalid="ignore", divide="ignore"):
        return _estimate_entry(numerator / denominator)


def compare_models(
    features_by_model: Mapping[str, np.ndarray],
    labels: Sequence | np.ndarray | None = None,
    token_labels: Sequence | np.ndarray | None = None,
    *,
    ratio: tuple[str, str] | None = None,
    num_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """`geometry_metrics` for several models' features of the same texts (one dataset and pooling), on shared
    resamples, plus the paired ratios of each of `UNIFORMITIES` for `ratio = (numerator, denominator)`, e.g.
    `("hybrid", "mlm")`.

    features_by_model: name → `(num_samples, dim_of_that_model)`, rows aligned (row i is the same text for every
    model). The ratio's CI is a paired bootstrap: each resample draws the same texts for both models, so the
    variation the models share (which texts are hard) cancels. As in the paper, ratio > 1 means the numerator is
    the more uniform (its uniformity is further below 0). Returns `{"num_samples", "models": {name: metrics},
    "uniformity_ratio": {"numerator", "denominator", "value", "ci95"}, "centred_uniformity_ratio": {...}}` (the
    ratios only with `ratio`).
    """
    sizes = {name: np.shape(features)[0] for name, features in features_by_model.items()}
    if not sizes or len(set(sizes.values())) != 1:
        raise ValueError(f"compare_models needs the features of the same texts for every model; got sizes {sizes}.")
    if ratio is not None and not set(ratio) <= set(sizes):
        raise ValueError(f"ratio {ratio} names a model that is not among {sorted(sizes)}.")
    num_samples = next(iter(sizes.values()))
    weights = bootstrap_weights(num_samples, num_resamples, seed)
    models, uniformity = {}, {}
    # The token and semantic probes' logistic regressions can each warn that they stopped short of convergence: one
    # line with the count, rather than one multi-line warning per fit.
    with collapsed_warnings(logger, f"geometry metrics of {', '.join(features_by_model)}"):
        for name, features in features_by_model.items():
            models[name], uniformity[name] = _geometry_and_uniformity(features, labels, token_labels, weights, seed)
    comparison: dict[str, Any] = {"num_samples": num_samples, "models": models}
    if ratio is not None:
        numerator, denominator = ratio
        for name in UNIFORMITIES:
            pair = uniformity[numerator][name], uniformity[denominator][name]
            entry = _entries([name], lambda pair=pair: [_uniformity_ratio_entry(*pair)])[name]
            _warn_if_few_samples(entry, num_samples)
            comparison[f"{name}_ratio"] = {"numerator": numerator, "denominator": denominator, **entry}
    return comparison


# ----------------------------------------------------------------------------------------------------------------------
# Markdown summary


def format_entry(entry: Mapping[str, Any]) -> str:
    """One metric entry as table text: `value [low, high]`, the probe's chance level, n/a with its reason, ⚠."""
    if entry["value"] is None:
        return f"n/a ({entry['not_applicable']})"
    text = f"{entry['value']:.4g}"
    if "ci95" in entry:
        text += f" [{entry['ci95'][0]:.4g}, {entry['ci95'][1]:.4g}]"
    if "chance_accuracy" in entry:
        text += f" (chance {entry['chance_accuracy']:.3g})"
    if "warning" in entry:
        text += " ⚠"
    return text


def render_markdown(
    results: Mapping[str, Mapping[str, Mapping[str, Any]]], title: str = "Representation geometry", preamble: str = ""
) -> str:
    """Markdown summary of `results[dataset][pooling]` = a `compare_models` result (the same models in each): the
    `preamble` (e.g. how the features were obtained) under the title, then the paper's table (uniformity per dataset
    and pooling, models side by side, their ratio with its CI), then every metric per dataset and pooling with the
    warnings beneath."""
    lines = [
        f"# {title}",
        "",
        *([preamble, ""] if preamble else []),
        "95% bootstrap percentile intervals in brackets; ⚠ marks an estimate from few samples.",
        "",
    ]
    first = next(iter(next(iter(results.values())).values()))
    lines += [
        "## Uniformity (lower is more uniform)",
        "",
        "Raw uniformity, then uniformity after subtracting the mean feature: anisotropy (one direction shared by "
        "every feature) drives raw uniformity toward 0 however the features spread around it, which the centred "
        "value measures alone.",
        "",
    ]
    for name in UNIFORMITIES:
        overview = []
        for dataset, by_pooling in results.items():
            for pooling, comparison in by_pooling.items():
                ratio = comparison.get(f"{name}_ratio")
                ratio_text = (
                    [] if ratio is None else [f"{ratio['numerator']} / {ratio['denominator']}: {format_entry(ratio)}"]
                )
                values = [format_entry(metrics["metrics"][name]) for metrics in comparison["models"].values()]
                overview.append([dataset, pooling, *values, *ratio_text])
        ratio_header = ["ratio (> 1: numerator more uniform)"] if f"{name}_ratio" in first else []
        lines += [f"### {METRIC_NAMES[name]}", ""]
        lines += [markdown_table(["dataset", "pooling", *first["models"], *ratio_header], overview), ""]
    for dataset, by_pooling in results.items():
        for pooling, comparison in by_pooling.items():
            models = comparison["models"]
            any_model = next(iter(models.values()))
            classes = any_model["num_classes"]
            lines += [
                f"## {dataset} — {pooling} pooling",
                "",
                f"{comparison['num_samples']} samples, {classes if classes is not None else 'no'} classes, "
                f"{any_model['bootstrap']['num_resamples']} bootstrap resamples.",
                "",
            ]
            rows = [
                [name, *(format_entry(metrics["metrics"][key]) for metrics in models.values())]
                for key, name in METRIC_NAMES.items()
                if key != "eigenvalues"
            ]
            lines += [markdown_table(["metric", *models], rows), ""]
            warnings = {
                entry["warning"]
                for metrics in models.values()
                for entry in metrics["metrics"].values()
                if "warning" in entry
            }
            lines += [f"⚠ {warning}" for warning in sorted(warnings)] + ([""] if warnings else [])
    return "\n".join(lines)
