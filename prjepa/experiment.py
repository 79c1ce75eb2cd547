#!/usr/bin/env python
"""The paper's experiment end to end: pretrain a hybrid and an MLM-only encoder under identical budgets, probe both on
GLUE, analyse their geometry, and write a comparison a paper can cite.

    python run_experiment.py --preset cpu --train_file "../shared/data/text/gutenberg/train/*.txt" \\
        --validation_file "../shared/data/text/gutenberg/validation/*.txt" \\
        --glue_path ../shared/data/glue --tokenizer_name ../shared/tokenizers/bert-base-uncased

The two pretraining runs differ only in `--objective`: same model size, data order, masks (the collator draws the MLM
masks before the JEPA blocks from the same seeded stream), steps, tokens and seeds. `--seeds N` repeats everything
per seed and reports mean ± standard deviation. Every stage writes its outputs once; rerunning continues where an
interruption stopped (a pretraining run resumes from its last checkpoint) and reuses what is finished, and a stage
whose recorded settings differ from the current ones is refused rather than overwritten.

Small outputs go to `--results_dir/<run_name>` (committed for the published run): comparison tables, plots, the
configuration, commands, machine, wall times and tokens seen. Checkpoints and cached features go to
`--work_dir/<run_name>`.
"""

import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from transformers import HfArgumentParser

from .utils import library_versions, markdown_table

STAGES = ("pretrain", "probe", "analysis", "report")
# The two encoders compared, by objective (configuration_prjepa.OBJECTIVES lists every objective there is). Hybrid
# comes first wherever both are listed, so that the analysis's uniformity ratio is hybrid / MLM-only.
HYBRID, MLM_ONLY = "hybrid", "mlm"
COMPARED_OBJECTIVES = (HYBRID, MLM_ONLY)
# Every stage runs as its own command, as commands.sh records it: `python -m <module> <arguments>`.
PRETRAINING_MODULE = "prjepa.pretraining"
PROBE_MODULE = "prjepa.probing.glue_probe"
ANALYSIS_MODULE = "prjepa.geometry.analysis"
# A CPU run estimated above this needs --allow_long_run.
LONG_RUN_HOURS = 3.0


@dataclass(frozen=True)
class ExperimentPreset:
    """A budget: model size, pretraining recipe, and what is probed and analysed."""

    description: str
    model_preset: str
    max_seq_length: int
    per_device_train_batch_size: int
    learning_rate: float
    warmup_steps: float  # a fraction of the run when < 1, as in TrainingArguments
    lr_scheduler_type: str
    weight_decay: float
    max_steps: int = -1  # -1: train for num_train_epochs
    num_train_epochs: float = 1.0
    planned_steps: int = 0  # for the time estimate when training by epochs (data size is unknown beforehand)
    lr_scheduler_kwargs: dict[str, float] = field(default_factory=dict)
    config_overrides: str = ""  # run_pretrain.py's --config_overrides for both encoders
    bf16: bool = False
    probe_tasks: tuple[str, ...] = ("sst2", "mrpc", "stsb", "cola", "rte")
    probe_max_train_samples: int = 20000
    analysis_tasks: tuple[str, ...] = ("sst2", "cola", "stsb")
    analysis_max_samples: int = 1000
    analysis_max_train_samples: int = 5000  # training texts for the weighted and attention poolers
    analysis_poolings: tuple[str, ...] = ("mean", "max", "weighted", "attention")
    # Measured seconds per hybrid optimizer step (MLM-only takes about half), and per probe + analysis per seed.
    cpu_seconds_per_step: float = 0.0
    gpu_seconds_per_step: float = 0.0
    evaluation_seconds: float = 0.0

    @property
    def steps(self) -> int:
        return self.max_steps if self.max_steps > 0 else self.planned_steps

    def estimated_hours(self, device: str) -> float:
        per_step = self.gpu_seconds_per_step if device == "cuda" else self.cpu_seconds_per_step
        return (self.steps * per_step * 1.5 + self.evaluation_seconds) / 3600


EXPERIMENT_PRESETS = {
    "cpu": ExperimentPreset(
        description="mini encoder (256/4/4), 300 steps of 16 × 128 tokens from local text; about an hour on 2 cores",
        model_preset="mini",
        max_seq_length=128,
        per_device_train_batch_size=16,
        max_steps=300,
        learning_rate=5e-4,
        warmup_steps=0.1,
        lr_scheduler_type="cosine",
        weight_decay=0.05,
        cpu_seconds_per_step=5.0,
        gpu_seconds_per_step=0.05,
        evaluation_seconds=1200,
    ),
    "paper": ExperimentPreset(
        description="the original's configuration (SPEC §5): 512/6/8 encoder, predictor 192 × 6, WikiText-103, batch 64 "
        "× 128, 3 epochs, AdamW 5e-5, cosine to 1e-6, weight decay 0.05, bf16; one GPU",
        model_preset="paper",
        max_seq_length=128,
        per_device_train_batch_size=64,
        num_train_epochs=3,
        planned_steps=44000,
        learning_rate=5e-5,
        warmup_steps=0.05,
        lr_scheduler_type="cosine_with_min_lr",
        lr_scheduler_kwargs={"min_lr": 1e-6},
        weight_decay=0.05,
        bf16=True,
        probe_max_train_samples=67349,
        analysis_max_samples=2000,
        cpu_seconds_per_step=40.0,
        gpu_seconds_per_step=0.15,
        evaluation_seconds=3600,
    ),
}


@dataclass
class ExperimentArguments:
    preset: str = field(default="cpu", metadata={"help": f"One of {sorted(EXPERIMENT_PRESETS)}."})
    run_name: str | None = field(default=None, metadata={"help": "Default: the preset's name."})
    seeds: int = field(default=1, metadata={"help": "Repeat the whole comparison for seeds 0 … N-1."})
    stages: list[str] = field(default_factory=lambda: list(STAGES), metadata={"help": f"Subset of {STAGES}."})
    results_dir: str = field(default="results", metadata={"help": "Tables, plots, configuration (small)."})
    work_dir: str = field(default="experiments", metadata={"help": "Checkpoints and feature caches (large)."})
    dataset_name: str = field(default="Salesforce/wikitext", metadata={"help": "Pretraining text on the Hub."})
    dataset_config_name: str = field(default="wikitext-103-raw-v1", metadata={"help": "Its configuration."})
    train_file: str | None = field(default=None, metadata={"help": "Local pretraining text instead (globs allowed)."})
    validation_file: str | None = field(default=None, metadata={"help": "Local validation text."})
    glue_path: str = field(default="nyu-mll/glue", metadata={"help": "GLUE on the Hub, or a local copy."})
    tokenizer_name: str = field(default="bert-base-uncased", metadata={"help": "Tokenizer Hub id or folder."})
    launcher: str = field(
        default="", metadata={"help": "Prefix for the pretraining command, e.g. 'accelerate launch --num_processes 4'."}
    )
    allow_long_run: bool = field(
        default=False, metadata={"help": f"Run even when the estimate on this machine exceeds {LONG_RUN_HOURS} h."}
    )

    def __post_init__(self):
        if self.preset not in EXPERIMENT_PRESETS:
            raise ValueError(f"Unknown --preset {self.preset!r}; choose one of {sorted(EXPERIMENT_PRESETS)}.")
        unknown = set(self.stages) - set(STAGES)
        if unknown:
            raise ValueError(f"Unknown --stages {sorted(unknown)}; choose from {STAGES}.")
        if self.seeds < 1:
            raise ValueError(f"--seeds must be at least 1, got {self.seeds}.")
        self.run_name = self.run_name or self.preset


class Experiment:
    """Paths, settings and the stage runners of one experiment."""

    def __init__(self, args: ExperimentArguments):
        self.args = args
        self.preset = EXPERIMENT_PRESETS[args.preset]
        self.results = os.path.join(args.results_dir, args.run_name)
        self.work = os.path.join(args.work_dir, args.run_name)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"

    def checkpoint(self, seed: int, objective: str) -> str:
        return os.path.join(self.work, f"seed-{seed}", objective)

    def seed_results(self, seed: int, stage: str) -> str:
        return os.path.join(self.results, f"seed-{seed}", stage)

    def pretraining_arguments(self, seed: int, objective: str) -> list[str]:
        """run_pretrain.py's command line; the two objectives' differ in `--objective` and `--output_dir` only."""
        preset, args = self.preset, self.args
        data = (
            ["--train_file", args.train_file]
            if args.train_file
            else ["--dataset_name", args.dataset_name, "--dataset_config_name", args.dataset_config_name]
        )
        if args.validation_file:
            data += ["--validation_file", args.validation_file]
        schedule = (
            ["--max_steps", str(preset.max_steps)]
            if preset.max_steps > 0
            else ["--num_train_epochs", str(preset.num_train_epochs)]
        )
        if preset.lr_scheduler_kwargs:
            schedule += ["--lr_scheduler_kwargs", json.dumps(preset.lr_scheduler_kwargs)]
        if preset.config_overrides:
            schedule += ["--config_overrides", preset.config_overrides]
        return [
            "--preset",
            preset.model_preset,
            "--objective",
            objective,
            "--tokenizer_name",
            args.tokenizer_name,
            *data,
            *schedule,
            "--max_seq_length",
            str(preset.max_seq_length),
            "--per_device_train_batch_size",
            str(preset.per_device_train_batch_size),
            "--learning_rate",
            str(preset.learning_rate),
            "--warmup_steps",
            str(preset.warmup_steps),
            "--lr_scheduler_type",
            preset.lr_scheduler_type,
            "--weight_decay",
            str(preset.weight_decay),
            *(["--bf16", "true"] if preset.bf16 else []),
            "--seed",
            str(seed),
            "--data_seed",
            str(seed),
            "--logging_steps",
            "10",
            "--save_steps",
            "50",
            "--save_total_limit",
            "2",
            "--do_train",
            "--do_eval",
            "--max_eval_samples",
            "500",
            "--report_to",
            "none",
            "--disable_tqdm",
            "true",
            "--output_dir",
            self.checkpoint(seed, objective),
        ]

    def pretraining_command(self, seed: int, objective: str, portable: bool = False) -> list[str]:
        """The command that runs; `portable`: as a user types it in the repository (for commands.sh)."""
        launcher = shlex.split(self.args.launcher) or ["python" if portable else sys.executable]
        script = ["run_pretrain.py"] if portable else ["-m", PRETRAINING_MODULE]
        return [*launcher, *script, *self.pretraining_arguments(seed, objective)]

    def probe_arguments(self, seed: int) -> list[str]:
        return [
            "--model_name_or_path",
            *(self.checkpoint(seed, objective) for objective in COMPARED_OBJECTIVES),
            "--task_name",
            *self.preset.probe_tasks,
            "--glue_path",
            self.args.glue_path,
            "--max_train_samples",
            str(self.preset.probe_max_train_samples),
            "--seed",
            str(seed),
            "--cache_dir",
            os.path.join(self.work, "features"),
            "--output_dir",
            self.seed_results(seed, "probe"),
        ]

    def analysis_arguments(self, seed: int) -> list[str]:
        return [
            "--models",
            *(f"{objective}={self.checkpoint(seed, objective)}" for objective in COMPARED_OBJECTIVES),
            "--task_name",
            *self.preset.analysis_tasks,
            "--glue_path",
            self.args.glue_path,
            "--pooling",
            *self.preset.analysis_poolings,
            "--max_samples",
            str(self.preset.analysis_max_samples),
            "--max_train_samples",
            str(self.preset.analysis_max_train_samples),
            "--seed",
            str(seed),
            "--cache_dir",
            os.path.join(self.work, "features"),
            "--output_dir",
            self.seed_results(seed, "analysis"),
        ]


def run_stage(name: str, directory: str, settings: list[str], marker: str, command: list[str]) -> float:
    """Runs `command` unless `directory/marker` shows the stage finished with the same settings; returns seconds spent.

    The settings are recorded beside the outputs; finished outputs from other settings are never overwritten.
    """
    record = os.path.join(directory, "experiment_stage.json")
    if os.path.exists(os.path.join(directory, marker)) and os.path.exists(record):
        with open(record) as file:
            recorded = json.load(file)
        if recorded["settings"] != settings:
            raise ValueError(
                f"{directory} holds a finished {name} with other settings ({recorded['settings']}). Use another "
                "--run_name, or delete that folder to recompute it."
            )
        print(f"[{name}] finished earlier, reused: {directory}")
        return 0.0
    print(f"[{name}] running: {directory}")
    start = time.time()
    subprocess.run(command, check=True)
    seconds = time.time() - start
    with open(record, "w") as file:
        json.dump({"settings": settings, "seconds": seconds}, file, indent=2)
    return seconds


def stage_seconds(directory: str) -> float:
    with open(os.path.join(directory, "experiment_stage.json")) as file:
        return json.load(file)["seconds"]


def pretrain(experiment: Experiment, seed: int) -> None:
    for objective in COMPARED_OBJECTIVES:
        run_stage(
            f"pretrain {objective} seed {seed}",
            experiment.checkpoint(seed, objective),
            experiment.pretraining_arguments(seed, objective),
            "train_results.json",
            experiment.pretraining_command(seed, objective),
        )


def probe(experiment: Experiment, seed: int) -> None:
    arguments = experiment.probe_arguments(seed)
    run_stage(
        f"probe seed {seed}",
        experiment.seed_results(seed, "probe"),
        arguments,
        "results.json",
        [sys.executable, "-m", PROBE_MODULE, *arguments],
    )


def analyse(experiment: Experiment, seed: int) -> None:
    arguments = experiment.analysis_arguments(seed)
    run_stage(
        f"analysis seed {seed}",
        experiment.seed_results(seed, "analysis"),
        arguments,
        "analysis.json",
        [sys.executable, "-m", ANALYSIS_MODULE, *arguments],
    )


def machine() -> dict[str, Any]:
    description = {
        "platform": platform.platform(),
        **library_versions("torch"),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }
    if torch.cuda.is_available():
        description["gpu"] = torch.cuda.get_device_name(0)
    return description


def check_budget(experiment: Experiment) -> None:
    """Prints the budget, and refuses a run this machine would take days over unless asked for explicitly."""
    preset, args = experiment.preset, experiment.args
    tokens = preset.steps * preset.per_device_train_batch_size * preset.max_seq_length
    hours = experiment.preset.estimated_hours(experiment.device) * args.seeds
    print(
        f"Preset {args.preset!r}: {preset.description}.\n"
        f"Per seed and objective: {preset.steps:,} steps × {preset.per_device_train_batch_size} × "
        f"{preset.max_seq_length} tokens = up to {tokens:,} tokens per process. Seeds: {args.seeds}. "
        f"Estimated wall time on this machine ({experiment.device}): {hours:.1f} h."
    )
    if experiment.device == "cpu" and hours > LONG_RUN_HOURS and not args.allow_long_run and "pretrain" in args.stages:
        raise SystemExit(
            f"The {args.preset!r} preset would take about {hours:.0f} h ({hours / 24:.1f} days) on this CPU machine. "
            "Run it on a GPU, choose --preset cpu, or pass --allow_long_run to start anyway."
        )


# SPEC §5: the original's reported numbers (frozen encoder, GLUE validation; its own, weaker probe).
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


def mean_and_spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "values": values,
    }


def exceeds_spread(first: dict[str, float], second: dict[str, float]) -> bool | None:
    """Whether the difference of two seed means is larger than the sum of their standard deviations (needs ≥ 2
    seeds; `None` otherwise)."""
    if len(first["values"]) < 2:
        return None
    return abs(first["mean"] - second["mean"]) > first["std"] + second["std"]


def probe_comparison(experiment: Experiment) -> list[dict[str, Any]]:
    """One row per (task, split, metric): per-objective seed statistics of the score × 100 (mean pooling)."""
    scores: dict[tuple[str, str, str], dict[str, list[float]]] = {}
    for seed in range(experiment.args.seeds):
        with open(os.path.join(experiment.seed_results(seed, "probe"), "results.json")) as file:
            models = json.load(file)["models"]
        objective_of = {experiment.checkpoint(seed, objective): objective for objective in COMPARED_OBJECTIVES}
        for model in models:
            for task, outcome in model["tasks"].items():
                pooling = next(iter(outcome["poolings"].values()))
                for split, metrics in pooling["scores"].items():
                    for metric, value in metrics.items():
                        per_objective = scores.setdefault((task, split, metric), {o: [] for o in COMPARED_OBJECTIVES})
                        per_objective[objective_of[model["model"]]].append(100 * value)
    rows = []
    for (task, split, metric), per_objective in scores.items():
        hybrid, mlm = mean_and_spread(per_objective[HYBRID]), mean_and_spread(per_objective[MLM_ONLY])
        rows.append(
            {
                "task": task,
                "split": split,
                "metric": metric,
                HYBRID: hybrid,
                MLM_ONLY: mlm,
                "difference": hybrid["mean"] - mlm["mean"],
                "exceeds_seed_spread": exceeds_spread(hybrid, mlm),
                "original": ORIGINAL_PROBE.get((task, metric)),
            }
        )
    return rows


def uniformity_comparison(experiment: Experiment) -> list[dict[str, Any]]:
    """One row per (dataset, pooling): each objective's uniformity and the hybrid / MLM-only ratio, over seeds."""
    values: dict[tuple[str, str], dict[str, list[float]]] = {}
    for seed in range(experiment.args.seeds):
        with open(os.path.join(experiment.seed_results(seed, "analysis"), "analysis.json")) as file:
            results = json.load(file)["results"]
        for dataset, by_pooling in results.items():
            for pooling, comparison in by_pooling.items():
                row = values.setdefault((dataset, pooling), {HYBRID: [], MLM_ONLY: [], "ratio": []})
                for objective in COMPARED_OBJECTIVES:
                    row[objective].append(comparison["models"][objective]["metrics"]["uniformity"]["value"])
                row["ratio"].append(comparison["uniformity_ratio"]["value"])
    rows = []
    for (dataset, pooling), row in values.items():
        original = ORIGINAL_UNIFORMITY.get(dataset) if pooling == "attention" else None
        rows.append(
            {
                "dataset": dataset,
                "pooling": pooling,
                **{key: mean_and_spread(v) for key, v in row.items()},
                "original": original,
            }
        )
    return rows


def _cell(statistic: dict[str, float], style: str) -> str:
    """`style` a format spec: '.1f' for scores, '.3g' for uniformities close to 0."""
    text = f"{statistic['mean']:{style}}"
    return text + (f" ± {statistic['std']:{style}}" if len(statistic["values"]) > 1 else "")


def render_report(summary: dict[str, Any]) -> str:
    seeds = summary["settings"]["seeds"]
    spread = " (mean ± standard deviation; * marks a difference larger than the sum of the two spreads)"
    gpu = f" and a {summary['machine']['gpu']}" if "gpu" in summary["machine"] else ""
    lines = [
        f"Preset `{summary['settings']['preset']}`, {seeds} seed{'s' if seeds > 1 else ''}{spread if seeds > 1 else ''}"
        f". Tokens seen per encoder: {summary['tokens_seen'][HYBRID]:,} (hybrid), "
        f"{summary['tokens_seen'][MLM_ONLY]:,} (MLM-only). Wall time {summary['wall_hours']:.2f} h on "
        f"{summary['machine']['cpu_count']} CPU cores{gpu}.",
        "",
        "GLUE validation, frozen encoder, mean pooling, linear probe with regularisation chosen by cross-validation "
        "on the training split (scores × 100):",
        "",
    ]
    rows = []
    for row in summary["probe"]:
        task = row["task"] if row["split"] == "validation" else f"{row['task']} ({row['split']})"
        mark = " *" if row["exceeds_seed_spread"] else ""
        original = row["original"] or {}
        rows.append(
            [
                task,
                row["metric"],
                _cell(row[HYBRID], ".1f"),
                _cell(row[MLM_ONLY], ".1f"),
                f"{row['difference']:+.1f}{mark}",
                original.get(HYBRID, "–"),
                original.get(MLM_ONLY, "–"),
            ]
        )
    header = ["task", "metric", "hybrid", "MLM-only", "hybrid − MLM", "original hybrid", "original MLM-only"]
    lines.append(markdown_table(header, rows))
    if summary["uniformity"]:
        lines += [
            "",
            "Uniformity (log E exp(−2‖x − y‖²) on L2-normalised features; lower is more uniform) on the "
            "validation split, and the hybrid / MLM-only ratio (> 1: hybrid more uniform):",
            "",
        ]
        rows = []
        for row in summary["uniformity"]:
            original = row["original"] or {}
            rows.append(
                [
                    row["dataset"],
                    row["pooling"],
                    _cell(row[HYBRID], ".3g"),
                    _cell(row[MLM_ONLY], ".3g"),
                    _cell(row["ratio"], ".2f"),
                    original.get(HYBRID, "–"),
                    original.get(MLM_ONLY, "–"),
                ]
            )
        header = ["dataset", "pooling", "hybrid", "MLM-only", "ratio", "original hybrid", "original MLM-only"]
        lines.append(markdown_table(header, rows))
    return "\n".join(lines) + "\n"


def tokens_seen(experiment: Experiment, objective: str) -> int:
    with open(os.path.join(experiment.checkpoint(0, objective), "trainer_state.json")) as file:
        return json.load(file)["num_input_tokens_seen"]


def write_report(experiment: Experiment) -> dict[str, Any]:
    """comparison.json / comparison.md (tables, configuration, machine, wall time, tokens seen) and commands.sh."""
    args, results = experiment.args, experiment.results
    seeds = range(args.seeds)
    stage_directories = [experiment.checkpoint(seed, objective) for seed in seeds for objective in COMPARED_OBJECTIVES]
    stage_directories += [experiment.seed_results(seed, stage) for seed in seeds for stage in ("probe", "analysis")]
    summary = {
        "settings": asdict(args),
        "preset": asdict(experiment.preset),
        "machine": machine(),
        "wall_hours": sum(stage_seconds(directory) for directory in stage_directories) / 3600,
        "tokens_seen": {objective: tokens_seen(experiment, objective) for objective in COMPARED_OBJECTIVES},
        "probe": probe_comparison(experiment),
        "uniformity": uniformity_comparison(experiment),
    }
    with open(os.path.join(results, "comparison.json"), "w") as file:
        json.dump(summary, file, indent=2)
    with open(os.path.join(results, "comparison.md"), "w") as file:
        file.write(render_report(summary))
    commands = ["python run_experiment.py " + shlex.join(sys.argv[1:]), ""]
    for seed in seeds:
        commands += [
            shlex.join(experiment.pretraining_command(seed, objective, portable=True))
            for objective in COMPARED_OBJECTIVES
        ]
        commands += [
            "python run_glue_probe.py " + shlex.join(experiment.probe_arguments(seed)),
            "python run_representation_analysis.py " + shlex.join(experiment.analysis_arguments(seed)),
        ]
    with open(os.path.join(results, "commands.sh"), "w") as file:
        file.write("\n".join(commands) + "\n")
    print(
        f"Wrote {results}/comparison.md, comparison.json and commands.sh; plots in "
        f"{experiment.seed_results(0, 'analysis')}."
    )
    return summary


def main(argv: list[str] | None = None) -> None:
    (args,) = HfArgumentParser(ExperimentArguments).parse_args_into_dataclasses(args=argv)
    experiment = Experiment(args)
    check_budget(experiment)
    os.makedirs(experiment.results, exist_ok=True)
    stages = {"pretrain": pretrain, "probe": probe, "analysis": analyse}
    for seed in range(args.seeds):
        for name, stage in stages.items():
            if name in args.stages:
                stage(experiment, seed)
    if "report" in args.stages:
        write_report(experiment)
