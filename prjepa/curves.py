"""Curves along a pretraining run, over seeds: probe scores of the kept snapshots against tokens seen, and the logged
λ, losses and effective rank against the optimizer step. Each point is the mean over seeds with its standard
deviation; the plots draw the spread as a band."""

import json
import os
import statistics
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .plot_style import legend_outside, marker_spacing, series_styles
from .probing.tasks import CORRELATION_METRICS, GLUE_TASKS
from .utils import mean_and_spread

# matplotlib loads with the plots: the experiment's `--help` imports this module.
if TYPE_CHECKING:
    from matplotlib.figure import Figure

# What run_pretrain.py logs during training, with the names the plot prints.
TRAINING_LOG_KEYS = {
    "jepa_weight": "λ (weight of L_JEPA)",
    "jepa_loss": "L_JEPA",
    "mlm_loss": "L_MLM",
    "effective_rank": "effective rank of the batch embeddings",
}


def probe_curves(
    points_by_seed: Sequence[Mapping[str, Sequence[tuple[str, int, int]]]], results_by_seed: Sequence[Mapping[str, Any]]
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """`{task: {objective: [{"step", "tokens", "metric", "mean", "std", "values"}, …]}}` in step order.

    points_by_seed: per seed, objective → (checkpoint, step, tokens seen) of each point probed along its run, the
    checkpoint as the probe named it; results_by_seed: per seed, the
    probe's `results.json` for those checkpoints (first pooling, the GLUE task's first scored split and headline
    metric, × 100). Every seed must have the same steps, and every point its result.
    """
    steps_of = {
        (seed, objective): {step for _, step, _ in checkpoints}
        for seed, points in enumerate(points_by_seed)
        for objective, checkpoints in points.items()
    }
    every_step = set().union(*steps_of.values())
    missing = [
        f"{objective} step {step} of seed {seed}"
        for (seed, objective), steps in steps_of.items()
        for step in sorted(every_step - steps)
    ]
    if missing:
        raise ValueError(
            f"The curves' checkpoint lists lack {', '.join(missing)}, which the others have: each objective's curve "
            "would put other steps side by side. Give every objective and seed a checkpoint at every step."
        )
    collected: dict[str, dict[str, dict[int, dict[str, Any]]]] = {}
    for seed, (points, results) in enumerate(zip(points_by_seed, results_by_seed, strict=True)):
        by_path = {model["model"]: model for model in results["models"]}
        for objective, checkpoints in points.items():
            for checkpoint, step, tokens in checkpoints:
                if checkpoint not in by_path:
                    raise ValueError(
                        f"Seed {seed}'s probe results lack {objective} step {step} ({checkpoint}); probe it to draw "
                        "the curve."
                    )
                for task, outcome in by_path[checkpoint]["tasks"].items():
                    split = GLUE_TASKS[task].validation_splits[0]
                    scores = next(iter(outcome["poolings"].values()))["scores"][split]
                    metric = GLUE_TASKS[task].metric_names[0]
                    value = scores[metric]
                    point = (
                        collected.setdefault(task, {})
                        .setdefault(objective, {})
                        .setdefault(step, {"tokens": [], "scores": [], "metric": metric})
                    )
                    point["tokens"].append(tokens)
                    point["scores"].append(100 * value)
    seeds = len(points_by_seed)
    curves: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for task, by_objective in collected.items():
        for objective, by_step in by_objective.items():
            incomplete = sorted(step for step, point in by_step.items() if len(point["scores"]) != seeds)
            if incomplete:
                raise ValueError(f"{objective} {task}: steps {incomplete} were not probed for every seed.")
            curves.setdefault(task, {})[objective] = [
                {
                    "step": step,
                    "tokens": statistics.fmean(point["tokens"]),
                    "metric": point["metric"],
                    **mean_and_spread(point["scores"]),
                }
                for step, point in sorted(by_step.items())
            ]
    return curves


def training_logs(runs_by_objective: Mapping[str, Sequence[str]]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """`{objective: {key: [{"step", "mean", "std", "values"}, …]}}` for each of `TRAINING_LOG_KEYS` the runs logged,
    from each finished run's `trainer_state.json` (one run per seed); a step is kept where every seed logged it."""
    logs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for objective, runs in runs_by_objective.items():
        values: dict[str, dict[int, list[float]]] = {}
        for run in runs:
            with open(os.path.join(run, "trainer_state.json")) as file:
                history = json.load(file)["log_history"]
            for entry in history:
                for key in TRAINING_LOG_KEYS:  # in one order, which the JSON keeps
                    if key in entry:
                        values.setdefault(key, {}).setdefault(entry["step"], []).append(entry[key])
        logs[objective] = {
            key: [
                {"step": step, **mean_and_spread(per_seed)}
                for step, per_seed in sorted(by_step.items())
                if len(per_seed) == len(runs)
            ]
            for key, by_step in values.items()
        }
    return logs


def _band(axes, xs: Sequence[float], points: Sequence[Mapping[str, Any]], label: str, **style) -> None:
    means = [point["mean"] for point in points]
    (line,) = axes.plot(xs, means, label=label, markersize=5, markevery=marker_spacing(len(xs)), **style)
    if any(point["std"] > 0 for point in points):
        axes.fill_between(
            xs,
            [point["mean"] - point["std"] for point in points],
            [point["mean"] + point["std"] for point in points],
            color=line.get_color(),
            alpha=0.2,
            linewidth=0,
        )


def plot_probe_curves(
    curves: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]], majority: Mapping[str, Mapping[str, float]]
) -> "Figure":
    """One panel per task: score (× 100) against tokens seen, one line per objective with its seed band, and as
    reference lines the random-initialisation score (step 0) and chance: 0 for a correlation (STS-B's Spearman,
    CoLA's Matthews), else the majority class's score on the plotted metric, `majority[task][metric]` (the probe's
    `majority` scores of the validation split; a task without them gets no chance line)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.5 * len(curves) + 2, 4.2), layout="constrained")
    styles = series_styles(
        list(dict.fromkeys(objective for by_objective in curves.values() for objective in by_objective))
    )
    for index, (task, by_objective) in enumerate(curves.items()):
        axes = figure.add_subplot(1, len(curves), index + 1)
        for objective, points in by_objective.items():
            _band(axes, [point["tokens"] / 1e6 for point in points], points, objective, **styles[objective])
        initial = next(iter(by_objective.values()))[0]
        metric = initial["metric"]
        axes.axhline(initial["mean"], color="grey", linestyle="--", linewidth=1, label="random init (step 0)")
        if metric in CORRELATION_METRICS:
            axes.axhline(0, color="black", linestyle=":", linewidth=1, label="chance (correlation 0)")
        elif metric in majority.get(task, {}):
            axes.axhline(
                100 * majority[task][metric], color="black", linestyle=":", linewidth=1, label="majority class"
            )
        axes.set_xlabel("tokens seen (millions)")
        axes.set_ylabel(f"validation {metric} × 100")
        axes.set_title(f"{task}: linear probe, mean pooling")
        axes.grid(alpha=0.3)
        legend_outside(axes)
    return figure


def plot_training_logs(logs: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]) -> "Figure":
    """One panel per `TRAINING_LOG_KEYS` entry: the logged value against the optimizer step, one line per objective
    (MLM-only runs log no L_JEPA and a λ of 0), with its seed band."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(13, 7.5), layout="constrained")
    styles = series_styles(list(logs))
    for index, (key, name) in enumerate(TRAINING_LOG_KEYS.items()):
        axes = figure.add_subplot(2, 2, index + 1)
        for objective, by_key in logs.items():
            if by_key.get(key):
                points = by_key[key]
                _band(axes, [point["step"] for point in points], points, objective, **styles[objective])
        axes.set_xlabel("optimizer step")
        axes.set_title(name)
        axes.grid(alpha=0.3)
        legend_outside(axes)
    return figure
