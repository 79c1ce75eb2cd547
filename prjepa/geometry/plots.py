"""Plots of geometry comparisons: each function returns a matplotlib Figure (no pyplot state); save it with
`figure.savefig(path)`. Every model keeps one marker and line style across the plots (`prjepa.plot_style`), and
legends sit beside the axes."""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..plot_style import legend_outside, marker_spacing, series_styles
from .metrics import METRIC_NAMES


def _value_and_error(entry: Mapping[str, Any]) -> tuple[float, list[float]]:
    """The value (NaN when not applicable) and its asymmetric error bar `[below, above]` (0 without a CI). A percentile
    interval need not contain its point estimate (a skewed bootstrap distribution, or rounding noise: a collapsed
    encoder's alignment of 1e-15 beside [3.9e-16, 9.1e-16]); the bar then gets no length on that side rather than a
    negative one, which matplotlib refuses."""
    value = entry["value"]
    if value is None:
        return float("nan"), [0.0, 0.0]
    low, high = entry.get("ci95", [value, value])
    return value, [max(value - low, 0.0), max(high - value, 0.0)]


def _models(by_group: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The models of `by_group[group][model]`, in first-seen order."""
    return list(dict.fromkeys(model for by_model in by_group.values() for model in by_model))


def _bars(ax: Any, positions: np.ndarray, values: Sequence[float], width: float, **bar_options: Any) -> None:
    """Bars at `positions`, each labelled with its value so that one too short to see (a collapsed encoder's
    uniformity near 0 beside others near −2) still shows; a not-applicable value (NaN) is marked "n/a"."""
    bars = ax.bar(positions, values, width, **bar_options)
    ax.bar_label(bars, labels=["" if np.isnan(value) else f"{value:.2g}" for value in values], fontsize=7, padding=2)
    for position, value in zip(positions, values):
        if np.isnan(value):  # bar_label leaves a missing bar unlabelled
            ax.text(position, 0, "n/a", ha="center", va="bottom", fontsize=8)
    ax.set_xlim(-0.5, len(positions) - 0.5)


def plot_eigenvalue_spectra(comparisons_by_pooling: Mapping[str, Mapping[str, Any]], dataset: str) -> Figure:
    """One panel per pooling, one line per model: the covariance eigenvalues as fractions of the total variance
    (log scale), so that models of different scales compare. A model without a spectrum (collapsed: zero variance)
    is named "n/a" in the legend rather than left out."""
    figure = Figure(figsize=(5 * len(comparisons_by_pooling) + 1.5, 4), layout="constrained")
    axes = figure.subplots(1, len(comparisons_by_pooling), squeeze=False)[0]
    styles = series_styles(_models({pooling: c["models"] for pooling, c in comparisons_by_pooling.items()}))
    for ax, (pooling, comparison) in zip(axes, comparisons_by_pooling.items()):
        for model, metrics in comparison["models"].items():
            eigenvalues = metrics["metrics"]["eigenvalues"]["value"]
            if eigenvalues is None:
                ax.plot([], [], label=f"{model}: n/a", **styles[model])
                continue
            fractions = np.asarray(eigenvalues) / np.sum(eigenvalues)
            components = np.arange(1, len(fractions) + 1)
            ax.plot(components, fractions, label=model, markevery=marker_spacing(len(fractions)), **styles[model])
        ax.set(yscale="log", title=f"{pooling} pooling", xlabel="component", ylabel="fraction of variance")
        legend_outside(ax)
    figure.suptitle(f"Eigenvalue spectrum — {dataset}")
    return figure


# Raw uniformity near 0 says only that the features share a direction; centred, it measures their spread around it.
UNIFORMITY_METRICS = ("uniformity", "centred_uniformity")


def _measured(by_group: Mapping[str, Mapping[str, Any]], metrics: Sequence[str]) -> list[str]:
    """Those of `metrics` that some model of `by_group[group][model]` holds; the first when none does (its panel then
    reads n/a)."""
    held = {name for by_model in by_group.values() for entry in by_model.values() for name in entry["metrics"]}
    return [metric for metric in metrics if metric in held] or list(metrics[:1])


def _bar_panel_width(groups: int) -> float:
    """Inches for one panel of grouped bars, its legend beside it."""
    return max(5, 1.5 * groups) + 1.5


def _draw_metric_bars(ax: Any, metrics_by_group: Mapping[str, Mapping[str, Mapping[str, Any]]], metric: str) -> None:
    groups = list(metrics_by_group)
    models = _models(metrics_by_group)
    width = 0.8 / len(models)
    for index, model in enumerate(models):
        positions = np.arange(len(groups)) + (index - (len(models) - 1) / 2) * width
        entries = [metrics_by_group[group][model]["metrics"].get(metric, {"value": None}) for group in groups]
        values, errors = zip(*map(_value_and_error, entries))
        _bars(ax, positions, values, width, yerr=np.transpose(errors), capsize=3, label=model)
    ax.set(xticks=np.arange(len(groups)), xticklabels=groups, ylabel=METRIC_NAMES[metric])
    legend_outside(ax)


def plot_metric_bars(
    metrics_by_group: Mapping[str, Mapping[str, Mapping[str, Any]]], metric: str, *, group_label: str, title: str
) -> Figure:
    """Grouped bars of one metric: `metrics_by_group[group][model]` is a `geometry_metrics` result; one group per
    dataset or pooling, one bar per model, CI error bars where there is a CI, "n/a" where not applicable."""
    figure = Figure(figsize=(_bar_panel_width(len(metrics_by_group)), 4), layout="constrained")
    ax = figure.subplots()
    _draw_metric_bars(ax, metrics_by_group, metric)
    ax.set(xlabel=group_label, title=title)
    return figure


def plot_effective_rank(metrics_by_dataset: Mapping[str, Mapping[str, Mapping[str, Any]]], pooling: str) -> Figure:
    """Effective rank per dataset and model (`metrics_by_dataset[dataset][model]`), with bootstrap CIs."""
    return plot_metric_bars(
        metrics_by_dataset,
        "effective_rank",
        group_label="dataset",
        title=f"Effective rank (RankMe) — {pooling} pooling",
    )


def plot_pooling_ablation(
    metrics_by_pooling: Mapping[str, Mapping[str, Mapping[str, Any]]],
    dataset: str,
    metrics: Sequence[str] = UNIFORMITY_METRICS,
) -> Figure:
    """One panel per metric (those measured of `metrics`: by default uniformity raw and centred), one bar per pooling
    and model (`metrics_by_pooling[pooling][model]`) on one dataset."""
    shown = _measured(metrics_by_pooling, metrics)
    figure = Figure(figsize=(_bar_panel_width(len(metrics_by_pooling)) * len(shown), 4), layout="constrained")
    for ax, metric in zip(figure.subplots(1, len(shown), squeeze=False)[0], shown):
        _draw_metric_bars(ax, metrics_by_pooling, metric)
        ax.set(xlabel="pooling", title=METRIC_NAMES[metric])
    figure.suptitle(f"Pooling ablation — {dataset}")
    return figure


def plot_alignment_uniformity(
    metrics_by_dataset: Mapping[str, Mapping[str, Mapping[str, Any]]], pooling: str
) -> Figure:
    """Wang & Isola's plane: uniformity (x) against alignment (y), one panel for raw uniformity and one for uniformity
    after subtracting the mean feature (where measured); one colour, marker and error-bar line style per model, each
    point named by its dataset, CI error bars on both axes; lower-left is better. Datasets without alignment (no
    labels) are left out."""
    shown = _measured(metrics_by_dataset, UNIFORMITY_METRICS)
    figure = Figure(figsize=(7.5 * len(shown), 5), layout="constrained")
    styles = series_styles(_models(metrics_by_dataset))
    for ax, metric in zip(figure.subplots(1, len(shown), squeeze=False)[0], shown):
        for model, style in styles.items():
            points = [
                (
                    dataset,
                    by_model[model]["metrics"].get(metric, {"value": None}),
                    by_model[model]["metrics"]["alignment"],
                )
                for dataset, by_model in metrics_by_dataset.items()
                if by_model[model]["metrics"]["alignment"]["value"] is not None
            ]
            if not points:
                continue
            datasets, uniformity, alignment = zip(*points)
            x, x_errors = zip(*map(_value_and_error, uniformity))
            y, y_errors = zip(*map(_value_and_error, alignment))
            # The datasets are not a sequence to join: the model's line style goes to its error bars.
            drawn = ax.errorbar(
                x, y, xerr=np.transpose(x_errors), yerr=np.transpose(y_errors), capsize=3, label=model, **style
            )
            drawn.lines[0].set_linestyle("none")
            for bars in drawn.lines[2]:
                bars.set_linestyle(style["linestyle"])
            for dataset, x_value, y_value in zip(datasets, x, y):
                ax.annotate(dataset, (x_value, y_value), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set(
            xlabel=f"{METRIC_NAMES[metric]} (lower: more uniform)",
            ylabel="alignment (lower: closer same-label pairs)",
        )
        legend_outside(ax)
    figure.suptitle(f"Alignment vs uniformity — {pooling} pooling")
    return figure


def plot_probe_accuracies(metrics_by_dataset: Mapping[str, Mapping[str, Mapping[str, Any]]], pooling: str) -> Figure:
    """Token probe (surface form) beside semantic probe (task label) accuracy for each dataset and model, each with
    its chance level (always guessing the training split's most frequent class) as a dashed line across the bar."""
    bars = [
        (f"{dataset}\n{model}", metrics["metrics"])
        for dataset, by_model in metrics_by_dataset.items()
        for model, metrics in by_model.items()
    ]
    figure = Figure(figsize=(max(5, 1.2 * len(bars)) + 2, 4), layout="constrained")
    ax = figure.subplots()
    positions = np.arange(len(bars))
    for offset, key, label in (
        (-0.2, "token_probe", "token probe (surface form)"),
        (0.2, "semantic_probe", "semantic probe (task label)"),
    ):
        values = [_value_and_error(metrics[key])[0] for _, metrics in bars]
        _bars(ax, positions + offset, values, 0.4, label=label)
        chance = [metrics[key].get("chance_accuracy", np.nan) for _, metrics in bars]
        ax.hlines(
            chance,
            positions + offset - 0.2,
            positions + offset + 0.2,
            colors="black",
            linestyles="dashed",
            label="chance (majority class)" if key == "semantic_probe" else None,
        )
    ax.set(xticks=positions, xticklabels=[name for name, _ in bars], ylim=(0, 1))
    ax.set(xlabel="dataset and model", ylabel="held-out accuracy")
    ax.set_title(f"Token vs semantic probe — {pooling} pooling")
    legend_outside(ax)
    return figure
