"""The experiment's report, from its stages' records alone: comparison.json and comparison.md (the probe and geometry
tables with seed statistics, runs, machines, wall time), the curve plots and commands.sh."""

import json
import math
import os
import shlex
from collections.abc import Collection
from dataclasses import asdict
from typing import Any

from ..curves import plot_probe_curves, plot_training_logs, probe_curves, training_logs
from ..probing.tasks import GLUE_TASKS
from ..utils import (
    atomic_path,
    describe_machine,
    markdown_table,
    mean_and_spread,
    option_name,
    option_names,
    this_machine,
    write_atomically,
)
from .plan import KEEP_FREED_MEMORY, STAGES, Experiment, ExperimentArguments, read_json
from .presets import COMPARED_MODELS, COMPARED_OBJECTIVES, CONTROL, HYBRID, MLM_ONLY
from .stages import MEASURING_STAGE_MARKERS, STAGE_RECORD, finished_stage, recorded_flag, seed_stages, stage_seconds

# docs/method.md §5: the original's reported numbers (frozen encoder, GLUE validation; its own, weaker probe).
ORIGINAL_PROBE = {
    ("sst2", "accuracy"): {HYBRID: 67.55, MLM_ONLY: 68.69},
    ("mrpc", "f1"): {HYBRID: 63.09, MLM_ONLY: 59.84},
    ("mnli", "accuracy"): {HYBRID: 50.82, MLM_ONLY: 51.36},
    ("stsb", "spearmanr"): {HYBRID: 28.1, MLM_ONLY: 28.3},
}
ORIGINAL_UNIFORMITY = {
    "sst2": {HYBRID: -0.448, MLM_ONLY: -0.055},
    "cola": {HYBRID: -0.955, MLM_ONLY: -0.083},
    "stsb": {HYBRID: -0.577, MLM_ONLY: -0.069},
}


def exceeds_spread(first: dict[str, float], second: dict[str, float]) -> bool | None:
    """Whether the difference of two seed means is larger than the sum of their standard deviations (needs ≥ 2
    seeds and finite means; `None` otherwise)."""
    if len(first["values"]) < 2 or not math.isfinite(first["mean"] - second["mean"]):
        return None
    return abs(first["mean"] - second["mean"]) > first["std"] + second["std"]


def paired_difference(first: list[float], second: list[float]) -> dict[str, Any]:
    """Seed statistics of the per-seed differences `first[i] − second[i]`."""
    return mean_and_spread([a - b for a, b in zip(first, second, strict=True)])


def probe_comparison(experiment: Experiment) -> list[dict[str, Any]]:
    """One row per (task, split, metric): each compared model's seed statistics of the score × 100 (mean pooling),
    the hybrid − MLM-only difference (of the means, and seed statistics of the per-seed differences: both encoders of
    a seed share initialisation, data order and masks) and each pretrained encoder's per-seed gain over the random-init
    control."""
    scores: dict[tuple[str, str, str], dict[str, list[float]]] = {}
    for seed in range(experiment.args.seeds):
        models = read_json(experiment.seed_results(seed, "probe"), MEASURING_STAGE_MARKERS["probe"])["models"]
        label_of = {path: label for label, path in experiment.models(seed).items()}
        for model in models:
            for task, outcome in model["tasks"].items():
                pooling = next(iter(outcome["poolings"].values()))
                for split, metrics in pooling["scores"].items():
                    for metric, value in metrics.items():
                        per_model = scores.setdefault((task, split, metric), {label: [] for label in COMPARED_MODELS})
                        per_model[label_of[model["model"]]].append(100 * value)
    rows = []
    for (task, split, metric), per_model in scores.items():
        statistics = {label: mean_and_spread(values) for label, values in per_model.items()}
        rows.append(
            {
                "task": task,
                "split": split,
                "metric": metric,
                **statistics,
                "difference": statistics[HYBRID]["mean"] - statistics[MLM_ONLY]["mean"],
                "paired_difference": paired_difference(per_model[HYBRID], per_model[MLM_ONLY]),
                "exceeds_seed_spread": exceeds_spread(statistics[HYBRID], statistics[MLM_ONLY]),
                "gain_over_control": {
                    objective: paired_difference(per_model[objective], per_model[CONTROL])
                    for objective in COMPARED_OBJECTIVES
                },
                "original": ORIGINAL_PROBE.get((task, metric)),
            }
        )
    return rows


# Reported for every model beside each other, raw uniformity first; the uniformities also as hybrid / MLM-only ratios.
GEOMETRY_COLUMNS = ("uniformity", "centred_uniformity", "anisotropy")
RATIOS = ("uniformity_ratio", "centred_uniformity_ratio")


def uniformity_comparison(experiment: Experiment) -> list[dict[str, Any]]:
    """One row per (dataset, pooling): each model's raw uniformity, uniformity after subtracting the mean feature and
    anisotropy, and the two hybrid / MLM-only uniformity ratios with each seed's bootstrap CI, over seeds."""
    values: dict[tuple[str, str], dict[str, Any]] = {}
    for seed in range(experiment.args.seeds):
        results = read_json(experiment.seed_results(seed, "analysis"), MEASURING_STAGE_MARKERS["analysis"])["results"]
        for dataset, by_pooling in results.items():
            for pooling, comparison in by_pooling.items():
                row = values.setdefault(
                    (dataset, pooling),
                    {
                        **{metric: {label: [] for label in COMPARED_MODELS} for metric in GEOMETRY_COLUMNS},
                        **{ratio: {"values": [], "ci95": []} for ratio in RATIOS},
                    },
                )
                for metric in GEOMETRY_COLUMNS:
                    for label in COMPARED_MODELS:
                        row[metric][label].append(comparison["models"][label]["metrics"][metric]["value"])
                for ratio in RATIOS:
                    row[ratio]["values"].append(comparison[ratio]["value"])
                    row[ratio]["ci95"].append(comparison[ratio].get("ci95"))
    rows = []
    for (dataset, pooling), row in values.items():
        entry: dict[str, Any] = {"dataset": dataset, "pooling": pooling}
        for metric in GEOMETRY_COLUMNS:
            entry[metric] = {label: _statistics(per_seed) for label, per_seed in row[metric].items()}
        for ratio in RATIOS:
            entry[ratio] = {**_statistics(row[ratio]["values"]), "ci95_per_seed": row[ratio]["ci95"]}
        entry["original"] = ORIGINAL_UNIFORMITY.get(dataset) if pooling == "attention" else None
        rows.append(entry)
    return rows


def _statistics(values: list[float | None]) -> dict[str, Any]:
    """Seed statistics, or the values alone where some seed's metric did not apply (None)."""
    return {"values": values} if None in values else mean_and_spread(values)


def _cell(statistic: dict[str, Any], style: str) -> str:
    """`style` a format spec: '.1f' for scores, '.3g' for uniformities close to 0."""
    if "mean" not in statistic:
        return "n/a"
    text = f"{statistic['mean']:{style}}"
    spread = style.replace("+", "")  # a sign belongs to a difference, not to its standard deviation
    return text + (f" ± {statistic['std']:{spread}}" if len(statistic["values"]) > 1 else "")


def _ratio_cell(statistic: dict[str, Any]) -> str:
    """Mean ± sd over seeds; with one seed, its bootstrap CI instead."""
    text = _cell(statistic, ".2f")
    intervals = statistic["ci95_per_seed"]
    if len(intervals) == 1 and intervals[0] is not None and text != "n/a":
        text += f" [{intervals[0][0]:.2f}, {intervals[0][1]:.2f}]"
    return text


def recorded_machines(directories: list[str]) -> list[dict[str, Any]]:
    """The distinct machines the finished stages in `directories` ran on, as their records name them, in the order
    first met. A record written before records named the machine counts as this machine's, as reports then assumed."""
    here = None
    machines: list[dict[str, Any]] = []
    for directory in directories:
        ran_on = read_json(directory, STAGE_RECORD).get("machine")
        if ran_on is None:
            here = here or this_machine()
            ran_on = here
        if ran_on not in machines:
            machines.append(ran_on)
    return machines


def describe_machines(machines: list[dict[str, Any]]) -> str:
    """The machines as the report names them: e.g. "2 CPU cores", or "2 CPU cores and on 8 CPU cores and a <GPU>" for
    stages that ran on several."""
    return " and on ".join(dict.fromkeys(describe_machine(machine) for machine in machines))


def describe_counts(counts: list[int]) -> str:
    """One count per seed as the report states it: the count where every seed has it, else its range over seeds
    (packing keeps each map batch's shorter last chunk, so seeds that draw other batches count other real tokens)."""
    low, high = min(counts), max(counts)
    return f"{low:,}" if low == high else f"{low:,} to {high:,} by seed"


def render_report(summary: dict[str, Any]) -> str:
    seeds = summary["settings"]["seeds"]
    spread = " (mean ± standard deviation over seeds; * marks a difference larger than the sum of the two spreads)"
    runs = summary["runs"]
    stages = "pretraining both, probe, analysis" + (", curves" if summary["curves"] else "")
    lines = [
        f"Preset `{summary['settings']['preset']}`, {seeds} seed{'s' if seeds > 1 else ''}{spread if seeds > 1 else ''}"
        f". Tokens seen per encoder: {describe_counts(summary['tokens_seen'][HYBRID])} (hybrid), "
        f"{describe_counts(summary['tokens_seen'][MLM_ONLY])} (MLM-only), pretrained in "
        f"{summary['pretraining_precision']}. "
        f"Wall time {summary['wall_hours']:.2f} h on {describe_machines(summary['machines'])}, per seed "
        f"({stages}): " + ", ".join(f"{hours:.2f} h" for hours in summary["wall_hours_per_seed"]) + ".",
        "",
        markdown_table(
            ["pretraining", "peak learning rate", "validation MLM loss", "tokens per second"],
            [
                [
                    "hybrid" if objective == HYBRID else "MLM-only",
                    ", ".join(f"{rate:g}" for rate in runs[objective]["learning_rates"]),
                    _cell(runs[objective]["eval_mlm_loss"], ".3f"),
                    _cell(runs[objective]["tokens_per_second"], ",.0f"),
                ]
                for objective in COMPARED_OBJECTIVES
            ],
        ),
        "",
        f"GLUE validation, frozen encoder, mean pooling, linear probe with regularisation chosen by cross-validation "
        f"on the training split (scores × 100). `{CONTROL}` is the same architecture at the runs' shared "
        "initialisation (same seed): the gains over it are what pretraining added"
        + (
            "; the differences and gains are per seed (the encoders of a seed share initialisation, data order and "
            "masks), their mean ± standard deviation."
            if seeds > 1
            else "."
        ),
        "",
    ]
    rows = []
    for row in summary["probe"]:
        task = row["task"] if row["split"] == "validation" else f"{row['task']} ({row['split']})"
        mark = " *" if row["exceeds_seed_spread"] else ""
        original = row["original"] or {}
        gains = row["gain_over_control"]
        rows.append(
            [
                task,
                row["metric"],
                *(_cell(row[label], ".1f") for label in COMPARED_MODELS),
                _cell(row["paired_difference"], "+.1f") + mark,
                _cell(gains[HYBRID], "+.1f"),
                _cell(gains[MLM_ONLY], "+.1f"),
                original.get(HYBRID, "–"),
                original.get(MLM_ONLY, "–"),
            ]
        )
    header = [
        "task",
        "metric",
        "hybrid",
        "MLM-only",
        CONTROL,
        "hybrid − MLM",
        f"hybrid − {CONTROL}",
        f"MLM − {CONTROL}",
        "original hybrid",
        "original MLM-only",
    ]
    lines.append(markdown_table(header, rows))
    if summary["uniformity"]:
        lines += [
            "",
            "Uniformity (log E exp(−2‖x − y‖²) on L2-normalised features; lower is more uniform) on the validation "
            "split, raw and after subtracting the mean feature, with anisotropy (mean cosine between features) and "
            "the hybrid / MLM-only ratios (> 1: hybrid more uniform"
            + ("; one seed: its 95% bootstrap CI in brackets" if seeds == 1 else "")
            + "). Raw uniformity near 0 with anisotropy near 1 means one direction shared by every feature; the "
            "centred value measures the spread around it. The original's numbers are its attention pooler's at random "
            "initialisation, untrained, where ours is trained for the task's label: they compare only loosely.",
            "",
        ]
        rows = []
        for row in summary["uniformity"]:
            original = row["original"] or {}
            rows.append(
                [
                    row["dataset"],
                    row["pooling"],
                    *(_cell(row["uniformity"][label], ".3g") for label in COMPARED_MODELS),
                    _ratio_cell(row["uniformity_ratio"]),
                    *(_cell(row["centred_uniformity"][label], ".3g") for label in COMPARED_MODELS),
                    _ratio_cell(row["centred_uniformity_ratio"]),
                    *(_cell(row["anisotropy"][label], ".2f") for label in COMPARED_MODELS),
                    f"{original.get(HYBRID, '–')} / {original.get(MLM_ONLY, '–')}",
                ]
            )
        header = [
            "dataset",
            "pooling",
            *(f"uniformity {label}" for label in COMPARED_MODELS),
            "ratio",
            *(f"centred {label}" for label in COMPARED_MODELS),
            "centred ratio",
            *(f"anisotropy {label}" for label in COMPARED_MODELS),
            "original hybrid / MLM-only",
        ]
        lines.append(markdown_table(header, rows))
    if summary["curves"]:
        lines += [
            "",
            "Along the run (the same probe on the curve tasks; step 0 is the random-init control; plots: "
            "`probe_curves.png`, and `training_logs.png` for λ, both losses and the effective rank):",
            "",
        ]
        rows = []
        for task, by_objective in summary["curves"].items():
            for objective, points in by_objective.items():
                rows.append([task, objective, points[0]["metric"], *(_cell(point, ".1f") for point in points)])
        steps = next(iter(next(iter(summary["curves"].values())).values()))
        tokens = token_count_labels([point["tokens"] for point in steps])
        lines.append(markdown_table(["task", "objective", "metric", *tokens], rows))
    return "\n".join(lines) + "\n"


def token_count_labels(counts: list[int]) -> list[str]:
    """`1.23M tokens` for each count, with as many decimals as tell the counts apart (a short run's points lie
    close)."""
    for decimals in range(2, 7):
        labels = [f"{count / 1e6:.{decimals}f}M tokens" for count in counts]
        if len(set(labels)) == len(set(counts)):
            return labels
    return [f"{count:,} tokens" for count in counts]


def run_statistics(experiment: Experiment, objective: str) -> dict[str, Any]:
    """Seed statistics of a pretraining run's final validation MLM loss and of the tokens per second it trained at,
    with the peak learning rates and the precisions its seeds were run at (as recorded, so a report never states the
    current settings for runs made with others)."""
    losses, speeds, learning_rates, precisions = [], [], set(), set()
    for seed in range(experiment.args.seeds):
        run = experiment.run_record(seed, objective)
        losses.append(read_json(run, "eval_results.json")["eval_mlm_loss"])
        state, train = read_json(run, "trainer_state.json"), read_json(run, "train_results.json")
        speeds.append(state["num_input_tokens_seen"] / training_seconds(train))
        arguments = read_json(run, STAGE_RECORD)["settings"]
        learning_rates.add(float(recorded_flag(arguments, "--learning_rate")))
        precisions.add("bf16 autocast" if recorded_flag(arguments, "--bf16") == "true" else "fp32")
    return {
        "eval_mlm_loss": mean_and_spread(losses),
        "tokens_per_second": mean_and_spread(speeds),
        "learning_rates": sorted(learning_rates),
        "precisions": sorted(precisions),
    }


def training_seconds(train_results: dict[str, float]) -> float:
    """A pretraining run's training time over all its calls, resumed ones included (`train_runtime` counts the last
    call only); records written before `train_seconds` was logged hold the runtime alone."""
    return train_results.get("train_seconds", train_results["train_runtime"])


def seed_wall_seconds(experiment: Experiment, seed: int, with_curves: bool) -> float:
    """The seed's recorded stage seconds, which cover each stage's last attempt (the curves' where `with_curves`),
    plus the training time of a resumed pretraining run's earlier attempts. A pretraining stage counts at least its
    run's training time: one that found its run finished (the record lost after training) only evaluated it."""
    records = {experiment.run_record(seed, objective) for objective in COMPARED_OBJECTIVES}
    seconds = 0.0
    for directory in seed_stage_directories(experiment, seed, with_curves):
        if directory in records:
            train = read_json(directory, "train_results.json")
            earlier_attempts = training_seconds(train) - train["train_runtime"]
            seconds += max(stage_seconds(directory) + earlier_attempts, training_seconds(train))
        else:
            seconds += stage_seconds(directory)
    return seconds


def seed_stage_directories(experiment: Experiment, seed: int, with_curves: bool) -> list[str]:
    """The folders of the seed's finished stages: both pretraining runs, probe, analysis, and curves where measured."""
    directories = [experiment.run_record(seed, objective) for objective in COMPARED_OBJECTIVES]
    stages = ["probe", "analysis", *(["curves"] if with_curves else [])]
    return directories + [experiment.seed_results(seed, stage) for stage in stages]


def check_report_inputs(experiment: Experiment, to_run: Collection[str] = ()) -> None:
    """Before anything is written: every stage the report reads (each seed's pretraining runs, probe and analysis, and
    its curves where some seed's are measured, since a report shows every seed's curves or none) is finished or among
    the stages `to_run` first; else one error lists the missing ones, seed by seed, and the --stages that runs them."""
    seeds = range(experiment.args.seeds)
    unfinished = [
        stage
        for seed in seeds
        for stage in seed_stages(experiment, seed)
        if stage.stage not in to_run and not finished_stage(stage.directory, stage.marker)
    ]
    missing = [stage for stage in unfinished if stage.stage != "curves" or any(measured_curves(experiment))]
    if missing:
        needed = {*to_run, *(stage.stage for stage in missing), "report"}
        raise ValueError(
            f"The report reads stages that are not finished: {', '.join(stage.name for stage in missing)}"
            + (
                " (other seeds' curves are measured, and a report would mix them)"
                if any(stage.stage == "curves" for stage in missing)
                else ""
            )
            + f". Run them with --stages {' '.join(name for name in STAGES if name in needed)} (or leave --stages out "
            "to run every stage)."
        )


def measured_curves(experiment: Experiment) -> list[bool]:
    """By seed, whether its curves are measured; `check_report_inputs` makes sure that a report finds all or none."""
    return [
        finished_stage(experiment.seed_results(seed, "curves"), MEASURING_STAGE_MARKERS["curves"])
        for seed in range(experiment.args.seeds)
    ]


def curve_points_with_tokens(experiment: Experiment, seed: int) -> dict[str, list[tuple[str, int, int]]]:
    """Objective → (folder probed, step, tokens seen) of each point along the seed's run."""
    points = {}
    for objective in COMPARED_OBJECTIVES:
        tokens = experiment.curve_tokens(seed, objective)
        points[objective] = [
            (path, step, tokens[step]) for step, path in experiment.curve_points(seed, objective).items()
        ]
    return points


def reproducing_command(argv: list[str]) -> str:
    """The run_experiment.py command that runs the whole experiment again: `argv` without --stages, which names what
    one invocation ran (only the report, say)."""
    options, kept, in_stages = option_names([ExperimentArguments]), [], False
    for argument in argv:
        option = option_name(argument, options)
        if option is not None:
            in_stages = option == "--stages"
        if not in_stages:
            kept.append(argument)
    return "python run_experiment.py " + shlex.join(kept)


def write_report(experiment: Experiment, argv: list[str]) -> dict[str, Any]:
    """comparison.json / comparison.md (tables, configuration, the machines the stages ran on, wall time, tokens
    seen), the curve plots and commands.sh, whose first line is the command (`argv`, its --stages left out) that
    reruns the experiment."""
    args, results = experiment.args, experiment.results
    seeds = range(args.seeds)
    check_report_inputs(experiment)
    with_curves = all(measured_curves(experiment))
    wall_seconds = [seed_wall_seconds(experiment, seed, with_curves) for seed in seeds]
    stage_directories = [
        directory for seed in seeds for directory in seed_stage_directories(experiment, seed, with_curves)
    ]
    curve_results = (
        [read_json(experiment.seed_results(seed, "curves"), MEASURING_STAGE_MARKERS["curves"]) for seed in seeds]
        if with_curves
        else []
    )
    probe_curve_data = (
        probe_curves([curve_points_with_tokens(experiment, seed) for seed in seeds], curve_results)
        if with_curves
        else {}
    )
    logs = training_logs(
        {objective: [experiment.run_record(seed, objective) for seed in seeds] for objective in COMPARED_OBJECTIVES}
    )
    runs = {objective: run_statistics(experiment, objective) for objective in COMPARED_OBJECTIVES}
    summary = {
        "settings": asdict(args),
        "preset": asdict(experiment.preset),
        "machines": recorded_machines(stage_directories),
        "pretraining_precision": ", ".join(
            sorted({precision for objective in COMPARED_OBJECTIVES for precision in runs[objective]["precisions"]})
        ),
        "wall_hours": sum(wall_seconds) / 3600,
        "wall_hours_per_seed": [seconds / 3600 for seconds in wall_seconds],
        "tokens_seen": {
            objective: [
                read_json(experiment.run_record(seed, objective), "trainer_state.json")["num_input_tokens_seen"]
                for seed in seeds
            ]
            for objective in COMPARED_OBJECTIVES
        },
        "runs": runs,
        "probe": probe_comparison(experiment),
        "uniformity": uniformity_comparison(experiment),
        "curves": probe_curve_data,
        "training_logs": logs,
    }
    write_atomically(os.path.join(results, "comparison.json"), json.dumps(summary, indent=2))
    write_atomically(os.path.join(results, "comparison.md"), render_report(summary))
    with atomic_path(os.path.join(results, "training_logs.png")) as temporary:
        plot_training_logs(logs).savefig(temporary, dpi=120, format="png")
    if with_curves:
        majority = {
            task: outcome.get("majority", {}).get(GLUE_TASKS[task].validation_splits[0], {})
            for task, outcome in curve_results[0]["models"][0]["tasks"].items()
        }
        with atomic_path(os.path.join(results, "probe_curves.png")) as temporary:
            plot_probe_curves(probe_curve_data, majority).savefig(temporary, dpi=120, format="png")
    commands = [reproducing_command(argv), ""]
    # The allocator setting --keep_freed_memory gives the pretraining processes (glibc only; it changes no number).
    environment = f"GLIBC_TUNABLES={KEEP_FREED_MEMORY} " if experiment.args.keep_freed_memory else ""
    for seed in seeds:
        commands += [
            environment + shlex.join(experiment.pretraining_command(seed, objective, portable=True))
            for objective in COMPARED_OBJECTIVES
        ]
        commands += [
            "python run_glue_probe.py " + shlex.join(experiment.probe_arguments(seed)),
            "python run_representation_analysis.py " + shlex.join(experiment.analysis_arguments(seed)),
        ]
        if with_curves:
            commands.append("python run_glue_probe.py " + shlex.join(experiment.probe_arguments(seed, stage="curves")))
    write_atomically(os.path.join(results, "commands.sh"), "\n".join(commands) + "\n")
    print(
        f"Wrote {results}/comparison.md, comparison.json, the curve plots and commands.sh; the analysis plots are in "
        f"{experiment.seed_results(0, 'analysis')}."
    )
    return summary
