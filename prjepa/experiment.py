#!/usr/bin/env python
"""The paper's experiment end to end: pretrain a hybrid and an MLM-only encoder under identical budgets, probe both on
GLUE, analyse their geometry, and write a comparison a paper can cite.

    python run_experiment.py  # the demo preset: offline, on the sample shipped with the package, ~12 minutes
    python run_experiment.py --preset cpu --train_file "../shared/data/text/gutenberg/train/*.txt" \\
        --validation_file "../shared/data/text/gutenberg/validation/*.txt" \\
        --glue_path ../shared/data/glue --tokenizer_name ../shared/tokenizers/bert-base-uncased

The two pretraining runs differ only in `--objective`, and in `--learning_rate` where the preset sets
`objective_learning_rates`: same model size, data order, masks (the collator draws the MLM masks before the JEPA
blocks from the same seeded stream), steps, tokens and seeds. Both start from the same
encoder weights (same seed), kept as each run's `snapshot-0`: probed and analysed as a third column, this
random-init control shows what pretraining added. Snapshots along the run are probed on a few tasks for curves of
score against tokens seen. `--seeds N` repeats everything per seed and reports mean ± standard deviation. Every stage writes its outputs once; rerunning continues where an
interruption stopped (a pretraining run resumes from its last checkpoint) and reuses what is finished, and a stage
whose recorded settings differ from the current ones is refused rather than overwritten.

Small outputs go to `--results_dir/<run_name>` (committed for the published run): comparison tables, plots, the
configuration, commands, machine, wall times and tokens seen. Checkpoints and cached features go to
`--work_dir/<run_name>`.
"""

import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .curves import plot_probe_curves, plot_training_logs, probe_curves, training_logs
from .data_sources import (
    DEFAULT_TEXT_DATASET,
    DEMO_GLUE,
    DEMO_GLUE_TASKS,
    DEMO_TOKENIZER,
    DEMO_TRAIN_FILE,
    DEMO_VALIDATION_FILE,
    check_hub_reachable,
    check_text_sources,
)
from .probing.tasks import GLUE_TASKS
from .snapshots import SNAPSHOT_STATE, snapshot_dir
from .utils import library_versions, markdown_table, mean_and_spread, script_parser

STAGES = ("pretrain", "probe", "analysis", "curves", "report")
# The two encoders compared, by objective (configuration_prjepa.OBJECTIVES lists every objective there is). Hybrid
# comes first wherever both are listed, so that the analysis's uniformity ratio is hybrid / MLM-only.
HYBRID, MLM_ONLY = "hybrid", "mlm"
COMPARED_OBJECTIVES = (HYBRID, MLM_ONLY)
# The random-init control: the same architecture at the runs' shared initialisation (same seed).
CONTROL = "random-init"
COMPARED_MODELS = (*COMPARED_OBJECTIVES, CONTROL)
# Every stage runs as its own command, as commands.sh records it: `python -m <module> <arguments>`.
PRETRAINING_MODULE = "prjepa.pretraining"
PROBE_MODULE = "prjepa.probing.glue_probe"
ANALYSIS_MODULE = "prjepa.geometry.analysis"
# The small files of a finished pretraining run that its record in the results keeps (its logs, metrics and model
# card), so that the report, and a rerun's reuse, need no checkpoint: the work folder may be gone.
RUN_RECORD_FILES = ("trainer_state.json", "train_results.json", "eval_results.json", "README.md")
# In a run's record: the digests of the weights it left, so that measuring stages never read other weights.
WEIGHTS_RECORD = "weights.json"
# Each stage's record beside its outputs: the settings it ran with and the seconds it took.
STAGE_RECORD = "experiment_stage.json"
# Marks a results folder as the project's published run: a run left to its default name writes
# `<preset>-reproduction` beside it instead of reusing or rewriting it.
PUBLISHED = "PUBLISHED.md"
# A CPU run estimated above this needs --allow_long_run.
LONG_RUN_HOURS = 3.0
# glibc keeps the memory a training step frees for the next one instead of returning it to the system and faulting
# it back in (benchmarks/bench_allocator.py measures the effect side by side): no allocation is mmap'd (each would be
# unmapped on free), and the heap is trimmed only above 16 GiB of free memory at its top.
KEEP_FREED_MEMORY = "glibc.malloc.trim_threshold=17179869184:glibc.malloc.mmap_max=0"


# Data arguments left unset take these values (the text: DEFAULT_TEXT_DATASET), or with a demo preset the sample
# shipped with the package.
HUB_GLUE = "nyu-mll/glue"
HUB_TOKENIZER = "bert-base-uncased"
# Any of these given without --preset means the user's data is to be measured: never at the demo's budget, nor mixed
# with the demo sample.
DATA_ARGUMENTS = ("train_file", "validation_file", "dataset_name", "dataset_config_name", "glue_path", "tokenizer_name")
DEFAULT_PRESET, DEFAULT_PRESET_WITH_DATA = "demo", "cpu"


# When pretraining runs under bf16 autocast: "always"; "native", where the device computes in bf16 natively (a GPU that
# supports it, a CPU with AVX512-BF16 or AMX: elsewhere autocast emulates it, slower than fp32); "never".
BF16_RULES = ("never", "native", "always")
# A cpu-preset step under bf16 autocast on a CPU with native bf16 over the fp32 step, both objectives together
# (benchmarks/bench_precision.py on 2 cores with AVX512-BF16: hybrid 0.78x, MLM-only 0.69x).
NATIVE_BF16_CPU_STEP_RATIO = 0.75


@dataclass(frozen=True)
class ExperimentPreset:
    """A budget: model size, pretraining recipe, and what is probed and analysed."""

    description: str
    model_preset: str
    max_seq_length: int
    per_device_train_batch_size: int
    learning_rate: float  # the peak, for both objectives unless objective_learning_rates names one
    warmup_steps: float  # a fraction of the run when < 1, as in TrainingArguments
    lr_scheduler_type: str
    weight_decay: float
    max_steps: int = -1  # -1: train for num_train_epochs
    num_train_epochs: float = 1.0
    planned_steps: int = 0  # for the time estimate when training by epochs (data size is unknown beforehand)
    lr_scheduler_kwargs: dict[str, float] = field(default_factory=dict)
    config_overrides: str = ""  # run_pretrain.py's --config_overrides for both encoders
    # An objective's own peak learning rate, where the rule that chose the recipe (lowest validation MLM loss) picked
    # another one for it than for the other objective: each is then compared at its own best.
    objective_learning_rates: dict[str, float] = field(default_factory=dict)
    # Data arguments left unset take the sample shipped with the package (prjepa.data_sources) when True, the Hub's
    # WikiText-103, GLUE and bert-base-uncased otherwise.
    demo_data: bool = False
    bf16: str = "never"  # pretraining under bf16 autocast: one of BF16_RULES
    probe_tasks: tuple[str, ...] = ("sst2", "mrpc", "stsb", "cola", "rte")
    probe_max_train_samples: int = 20000
    analysis_tasks: tuple[str, ...] = ("sst2", "cola", "stsb")
    analysis_max_samples: int = 1000
    analysis_max_train_samples: int = 5000  # training texts for the weighted and attention poolers
    analysis_poolings: tuple[str, ...] = ("mean", "max", "weighted", "attention")
    # Where along the run the weights are kept for the curves, as fractions of the steps; 0 (the initialisation) is
    # also the random-init control. The curves' last point is the finished encoder.
    snapshot_fractions: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75)
    curve_tasks: tuple[str, ...] = ("sst2", "stsb")
    # Measured seconds per hybrid optimizer step (MLM-only takes about half), and per probe + analysis + curves per
    # seed.
    cpu_seconds_per_step: float = 0.0
    gpu_seconds_per_step: float = 0.0
    evaluation_seconds: float = 0.0

    def __post_init__(self):
        if unknown := set(self.objective_learning_rates) - set(COMPARED_OBJECTIVES):
            raise ValueError(
                f"objective_learning_rates names {sorted(unknown)}; the objectives are {list(COMPARED_OBJECTIVES)}."
            )
        if self.bf16 not in BF16_RULES:
            raise ValueError(f"bf16 {self.bf16!r} must be one of {BF16_RULES}.")
        if 0.0 not in self.snapshot_fractions or not all(0 <= f < 1 for f in self.snapshot_fractions):
            raise ValueError(
                f"snapshot_fractions {self.snapshot_fractions} must include 0 (the initialisation, which is the "
                "random-init control) and lie in [0, 1) (the finished encoder is the curves' last point anyway)."
            )

    def learning_rate_for(self, objective: str) -> float:
        return self.objective_learning_rates.get(objective, self.learning_rate)

    @property
    def steps(self) -> int:
        return self.max_steps if self.max_steps > 0 else self.planned_steps

    @property
    def snapshot_steps(self) -> list[int]:
        return sorted({round(fraction * self.steps) for fraction in self.snapshot_fractions})

    def estimated_hours(self, device: str, native_bf16: bool = False) -> float:
        """`native_bf16`: pretraining under bf16 autocast on a device that computes it natively. Emulated bf16 is
        slower than fp32 by an unmeasured amount, so its estimate is fp32's, a lower bound."""
        per_step = self.gpu_seconds_per_step if device == "cuda" else self.cpu_seconds_per_step
        if native_bf16 and device == "cpu":
            per_step *= NATIVE_BF16_CPU_STEP_RATIO
        return (self.steps * per_step * 1.5 + self.evaluation_seconds) / 3600


# A deliberate difference from the original's recipe (which the paper preset keeps): the recipe study
# (results/recipe-study) found its fixed sin/cos table and untied decoder stay on the unigram plateau at CPU budgets.
CPU_RECIPE = "position_embedding_type=learned,tie_word_embeddings=True"
# The collapse screen (results/cpu-collapse-screen/lr5e-4) chose each objective's peak learning rate by the recipe
# study's rule: at 1e-3 the hybrid's features collapsed in one seed of three, at 5e-4 in none and with a lower mean
# validation MLM loss; MLM-only's stayed lower at 1e-3.
CPU_LEARNING_RATE = 1e-3
CPU_HYBRID_LEARNING_RATE = 5e-4

EXPERIMENT_PRESETS = {
    "demo": ExperimentPreset(
        description="the cpu preset's encoder and recipe for 150 steps of 32 × 128 tokens (0.6M tokens) on the "
        "sample shipped with the package (prjepa/demo_data: 9 public-domain books, the bert-base-uncased "
        "vocabulary, SST-2 and STS-B subsets); about 12 minutes on 2 cores. So little data makes the results a "
        "demonstration of the pipeline, not a measurement: for one, pass your data (--train_file, --glue_path, "
        "--tokenizer_name), which without --preset runs the cpu preset",
        model_preset="mini",
        max_seq_length=128,
        per_device_train_batch_size=32,
        max_steps=150,
        learning_rate=CPU_LEARNING_RATE,
        objective_learning_rates={HYBRID: CPU_HYBRID_LEARNING_RATE},
        warmup_steps=0.1,
        lr_scheduler_type="cosine",
        weight_decay=0.05,
        config_overrides=CPU_RECIPE,
        demo_data=True,
        probe_tasks=DEMO_GLUE_TASKS,
        probe_max_train_samples=2000,
        analysis_tasks=DEMO_GLUE_TASKS,
        analysis_max_samples=500,
        analysis_max_train_samples=1000,
        curve_tasks=DEMO_GLUE_TASKS,
        cpu_seconds_per_step=1.8,
        gpu_seconds_per_step=0.05,
        evaluation_seconds=200,
    ),
    "cpu": ExperimentPreset(
        description="mini encoder (256/4/4) with learned positions and a tied MLM decoder (the recipe study's "
        "choice, results/recipe-study), 1,200 steps of 32 × 128 tokens (4.9M tokens) from local text at a peak "
        "learning rate of 1e-3 for MLM-only and 5e-4 for the hybrid (the collapse screen's choice, "
        "results/cpu-collapse-screen), under bf16 autocast where the CPU has native bf16; about 70 minutes per seed "
        "on 2 cores in fp32, 55 in bf16",
        model_preset="mini",
        max_seq_length=128,
        per_device_train_batch_size=32,
        # As many steps as 75 minutes per seed on 2 cores leave in fp32 (so on CPUs without native bf16 too), with a
        # tenth to spare: measured 1.78 s per hybrid step and 1.1 s per MLM-only step on 2 idle cores, and 11 minutes
        # for the probe, the analysis and the curves (results/cpu-2000-steps).
        max_steps=1200,
        learning_rate=CPU_LEARNING_RATE,
        objective_learning_rates={HYBRID: CPU_HYBRID_LEARNING_RATE},
        warmup_steps=0.1,
        lr_scheduler_type="cosine",
        weight_decay=0.05,
        config_overrides=CPU_RECIPE,
        bf16="native",
        cpu_seconds_per_step=1.8,
        gpu_seconds_per_step=0.05,
        evaluation_seconds=800,
    ),
    "paper": ExperimentPreset(
        description="the original's configuration (docs/method.md §5): 512/6/8 encoder, predictor 192 × 6, WikiText-103, batch 64 "
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
        bf16="always",
        probe_max_train_samples=67349,
        analysis_max_samples=2000,
        cpu_seconds_per_step=40.0,
        gpu_seconds_per_step=0.15,
        evaluation_seconds=3600,
    ),
}


@dataclass
class ExperimentArguments:
    preset: str | None = field(
        default=None,
        metadata={
            "help": f"One of {sorted(EXPERIMENT_PRESETS)}. Left out: {DEFAULT_PRESET} (offline, on the sample shipped "
            f"with the package) when no data argument is given, {DEFAULT_PRESET_WITH_DATA} when any of "
            f"{', '.join('--' + name for name in DATA_ARGUMENTS)} is; an explicit --preset demo fills the data "
            "arguments left out with the sample."
        },
    )
    run_name: str | None = field(
        default=None,
        metadata={
            "help": f"Default: the preset's name, or <preset>-reproduction when that results folder holds {PUBLISHED} "
            "(the published run, which only an explicit --run_name continues)."
        },
    )
    seeds: int = field(default=1, metadata={"help": "Repeat the whole comparison for seeds 0 … N-1."})
    max_steps: int | None = field(
        default=None,
        metadata={
            "help": "Optimizer steps per pretraining run instead of the preset's; the snapshots for the curves, the "
            "evaluation steps and the time estimate follow."
        },
    )
    stages: list[str] = field(default_factory=lambda: list(STAGES), metadata={"help": f"Subset of {STAGES}."})
    results_dir: str = field(default="results", metadata={"help": "Tables, plots, configuration (small)."})
    work_dir: str = field(default="experiments", metadata={"help": "Checkpoints and feature caches (large)."})
    dataset_name: str | None = field(
        default=None, metadata={"help": f"Pretraining text on the Hub (default: {DEFAULT_TEXT_DATASET[0]})."}
    )
    dataset_config_name: str | None = field(
        default=None, metadata={"help": f"Its configuration (default: {DEFAULT_TEXT_DATASET[1]})."}
    )
    train_file: str | None = field(default=None, metadata={"help": "Local pretraining text instead (globs allowed)."})
    validation_file: str | None = field(default=None, metadata={"help": "Local validation text."})
    glue_path: str | None = field(
        default=None, metadata={"help": f"GLUE on the Hub or a local copy (default: {HUB_GLUE})."}
    )
    tokenizer_name: str | None = field(
        default=None,
        metadata={"help": f"Tokenizer Hub id or folder (default: {HUB_TOKENIZER})."},
    )
    launcher: str = field(
        default="", metadata={"help": "Prefix for the pretraining command, e.g. 'accelerate launch --num_processes 4'."}
    )
    keep_freed_memory: bool = field(
        default=False,
        metadata={
            "help": f"Pretrain with GLIBC_TUNABLES={KEEP_FREED_MEMORY} (glibc only; ignored elsewhere): 10-15x fewer "
            "page faults for 10-15 per cent more peak memory; measured 0.87x the MLM-only step time but 1.06x the hybrid's "
            "(benchmarks/bench_allocator.py), so off by default."
        },
    )
    bf16: str = field(
        default="auto",
        metadata={
            "help": "Pretrain under bf16 autocast: auto follows the preset (paper: always; cpu: where the device "
            "computes bf16 natively, i.e. a GPU that supports it or a CPU with AVX512-BF16 or AMX; demo: never); "
            "true or false decide it, e.g. to continue a run on a machine of the other kind.",
            "choices": ["auto", "true", "false"],
        },
    )
    allow_long_run: bool = field(
        default=False,
        metadata={"help": f"Run even when the estimate per seed on this machine exceeds {LONG_RUN_HOURS} h."},
    )

    def __post_init__(self):
        if self.preset is None:
            given = any(getattr(self, name) is not None for name in DATA_ARGUMENTS)
            self.preset = DEFAULT_PRESET_WITH_DATA if given else DEFAULT_PRESET
        if self.preset not in EXPERIMENT_PRESETS:
            raise ValueError(f"Unknown --preset {self.preset!r}; choose one of {sorted(EXPERIMENT_PRESETS)}.")
        unknown = set(self.stages) - set(STAGES)
        if unknown:
            raise ValueError(f"Unknown --stages {sorted(unknown)}; choose from {STAGES}.")
        if self.seeds < 1:
            raise ValueError(f"--seeds must be at least 1, got {self.seeds}.")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"--max_steps must be at least 1, got {self.max_steps}; leave it out for the preset's.")
        if self.run_name is None:
            published = os.path.exists(os.path.join(self.results_dir, self.preset, PUBLISHED))
            self.run_name = f"{self.preset}-reproduction" if published else self.preset
        check_text_sources(self.train_file, self.validation_file, self.dataset_name, self.dataset_config_name)
        demo = EXPERIMENT_PRESETS[self.preset].demo_data
        if not (self.dataset_name or self.train_file):
            if demo:
                self.train_file, self.validation_file = DEMO_TRAIN_FILE, DEMO_VALIDATION_FILE
            else:
                self.dataset_name, self.dataset_config_name = DEFAULT_TEXT_DATASET
        self.glue_path = self.glue_path or (DEMO_GLUE if demo else HUB_GLUE)
        self.tokenizer_name = self.tokenizer_name or (DEMO_TOKENIZER if demo else HUB_TOKENIZER)


def native_bf16(device: str) -> bool:
    """Whether `device` ("cuda" or "cpu") computes bf16 natively rather than by emulation."""
    import torch

    if device == "cuda":
        return torch.cuda.is_bf16_supported()
    capabilities = torch.cpu.get_capabilities()
    return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))


class Experiment:
    """Paths, settings and the stage runners of one experiment."""

    def __init__(self, args: ExperimentArguments):
        import torch  # not at the top: --help needs no torch, and every stage runs in its own process

        self.args = args
        self.preset = EXPERIMENT_PRESETS[args.preset]
        if args.max_steps is not None:
            self.preset = replace(self.preset, max_steps=args.max_steps)
        self.results = os.path.join(args.results_dir, args.run_name)
        self.work = os.path.join(args.work_dir, args.run_name)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.native_bf16 = native_bf16(self.device)
        self.bf16 = args.bf16 == "true" or (
            args.bf16 == "auto" and (self.preset.bf16 == "always" or self.preset.bf16 == "native" and self.native_bf16)
        )

    def estimated_hours(self) -> float:
        """Per seed, on this machine, in the precision this run pretrains in."""
        return self.preset.estimated_hours(self.device, native_bf16=self.bf16 and self.native_bf16)

    def checkpoint(self, seed: int, objective: str) -> str:
        return os.path.join(self.work, f"seed-{seed}", objective)

    def models(self, seed: int) -> dict[str, str]:
        """The compared encoders' folders by column: both finished runs and the random-init control (the MLM-only
        run's initialisation, which equals the hybrid run's encoder at step 0)."""
        return {
            **{objective: self.checkpoint(seed, objective) for objective in COMPARED_OBJECTIVES},
            CONTROL: snapshot_dir(self.checkpoint(seed, MLM_ONLY), 0),
        }

    def curve_points(self, seed: int, objective: str) -> dict[int, str]:
        """Step → the folder probed at that step of the run: its snapshots, then the finished encoder."""
        run = self.checkpoint(seed, objective)
        return {**{step: snapshot_dir(run, step) for step in self.preset.snapshot_steps}, self.preset.steps: run}

    def seed_results(self, seed: int, stage: str) -> str:
        return os.path.join(self.results, f"seed-{seed}", stage)

    def run_record(self, seed: int, objective: str) -> str:
        """The results folder that records a pretraining run: `RUN_RECORD_FILES` and its snapshots' states."""
        return self.seed_results(seed, f"pretrain-{objective}")

    def curve_tokens(self, seed: int, objective: str) -> dict[int, int]:
        """Step → tokens seen at each point of the curves, from the run's record."""
        record = self.run_record(seed, objective)
        tokens = {}
        for step in self.preset.snapshot_steps:
            with open(os.path.join(record, "snapshots", f"step-{step}.json")) as file:
                tokens[step] = json.load(file)["num_input_tokens_seen"]
        with open(os.path.join(record, "trainer_state.json")) as file:
            tokens[self.preset.steps] = json.load(file)["num_input_tokens_seen"]
        return tokens

    def pretraining_arguments(self, seed: int, objective: str) -> list[str]:
        """run_pretrain.py's command line; the two objectives' differ in `--objective` and `--output_dir` only, and in
        `--learning_rate` where the preset gives one objective its own."""
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
            str(preset.learning_rate_for(objective)),
            "--warmup_steps",
            str(preset.warmup_steps),
            "--lr_scheduler_type",
            preset.lr_scheduler_type,
            "--weight_decay",
            str(preset.weight_decay),
            *(["--bf16", "true"] if self.bf16 else []),
            # transformers runs bf16 on a CPU only when told the device is one.
            *(["--use_cpu", "true"] if self.bf16 and self.device == "cpu" else []),
            "--seed",
            str(seed),
            "--data_seed",
            str(seed),
            "--logging_steps",
            str(max(min(10, preset.steps // 20), 1)),  # every 10 steps, and 20 points on a short run
            "--snapshot_steps",
            *map(str, preset.snapshot_steps),
            "--eval_strategy",
            "steps",
            "--eval_steps",
            str(max(preset.steps // 4, 1)),
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

    def probe_arguments(self, seed: int, stage: str = "probe") -> list[str]:
        """run_glue_probe.py's command line: the compared encoders on every probe task (`stage="probe"`), or every
        point along both runs on the curve tasks (`stage="curves"`)."""
        if stage == "probe":
            models, tasks = list(self.models(seed).values()), self.preset.probe_tasks
        else:
            models = [path for objective in COMPARED_OBJECTIVES for path in self.curve_points(seed, objective).values()]
            tasks = self.preset.curve_tasks
        return [
            "--model_name_or_path",
            *models,
            "--task_name",
            *tasks,
            "--glue_path",
            self.args.glue_path,
            "--max_train_samples",
            str(self.preset.probe_max_train_samples),
            "--seed",
            str(seed),
            "--cache_dir",
            os.path.join(self.work, "features"),
            "--output_dir",
            self.seed_results(seed, stage),
        ]

    def analysis_arguments(self, seed: int) -> list[str]:
        return [
            "--models",
            *(f"{label}={path}" for label, path in self.models(seed).items()),
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


def run_stage(
    name: str,
    directory: str,
    settings: list[str],
    marker: str,
    command: list[str],
    env: dict[str, str] | None = None,
    check: Callable[[], None] | None = None,
    collect: Callable[[], None] | None = None,
) -> float:
    """Runs `command` unless `directory/marker` shows the stage finished with the same settings; returns seconds spent.

    `check` (if any) runs before the command and raises if its inputs are missing; `collect` (if any) runs after it, before the record is written: it brings the stage's outputs into
    `directory` when the command writes them elsewhere. The settings are recorded beside the outputs; finished
    outputs from other settings are never overwritten.
    """
    record = os.path.join(directory, STAGE_RECORD)
    if finished_stage(directory, marker):
        recorded = read_json(directory, STAGE_RECORD)
        if recorded["settings"] != settings:
            raise ValueError(
                f"{directory} holds a finished {name} with other settings ({recorded['settings']}). Use another "
                "--run_name, or delete that folder to recompute it."
            )
        print(f"[{name}] finished earlier, reused: {directory}")
        return 0.0
    if check is not None:
        check()
    print(f"[{name}] running: {directory}")
    start = time.time()
    subprocess.run(command, check=True, env=env)
    seconds = time.time() - start
    if collect is not None:
        collect()
    os.makedirs(directory, exist_ok=True)
    with open(record, "w") as file:
        json.dump({"settings": settings, "seconds": seconds, "machine": machine()}, file, indent=2)
    return seconds


def stage_seconds(directory: str) -> float:
    return read_json(directory, STAGE_RECORD)["seconds"]


def pretraining_environment(keep_freed_memory: bool) -> dict[str, str]:
    environment = dict(os.environ)
    if keep_freed_memory and platform.libc_ver()[0] == "glibc":
        tunables = [environment.get("GLIBC_TUNABLES", ""), KEEP_FREED_MEMORY]
        environment["GLIBC_TUNABLES"] = ":".join(filter(None, tunables))
    return environment


def record_run(checkpoint: str, record: str, snapshot_steps: list[int]) -> None:
    """Copies a finished run's `RUN_RECORD_FILES` and each snapshot's state into `record/` (`snapshots/step-N.json`),
    and the digests of the weights it left (`WEIGHTS_RECORD`), which the stages measuring them are checked against."""
    os.makedirs(os.path.join(record, "snapshots"), exist_ok=True)
    for name in RUN_RECORD_FILES:
        shutil.copyfile(os.path.join(checkpoint, name), os.path.join(record, name))
    for step in snapshot_steps:
        shutil.copyfile(
            os.path.join(snapshot_dir(checkpoint, step), SNAPSHOT_STATE),
            os.path.join(record, "snapshots", f"step-{step}.json"),
        )
    with open(os.path.join(record, WEIGHTS_RECORD), "w") as file:
        json.dump(weights_digests(checkpoint, snapshot_steps), file, indent=2)


def weights_digests(checkpoint: str, snapshot_steps: list[int]) -> dict[str, str]:
    """sha256 of the weights file of a run's finished encoder ("final") and of each snapshot ("snapshot-N") that exists."""
    folders = {"final": checkpoint, **{f"snapshot-{step}": snapshot_dir(checkpoint, step) for step in snapshot_steps}}
    digests = {}
    for name, folder in folders.items():
        weights = os.path.join(folder, "model.safetensors")
        if os.path.exists(weights):
            digest = hashlib.sha256()
            with open(weights, "rb") as file:
                while chunk := file.read(1 << 24):
                    digest.update(chunk)
            digests[name] = digest.hexdigest()
    return digests


def changed_weights(experiment: Experiment, seed: int) -> list[str]:
    """The weights in the work folder that differ from what their run's record says it left (trained again outside
    the experiment, or replaced): what a stage would measure is then not what the record describes."""
    changed = []
    for objective in COMPARED_OBJECTIVES:
        record = os.path.join(experiment.run_record(seed, objective), WEIGHTS_RECORD)
        checkpoint = experiment.checkpoint(seed, objective)
        if not (os.path.exists(record) and os.path.isdir(checkpoint)):
            continue  # nothing recorded yet, or the work folder is gone and the records stand alone
        with open(record) as file:
            recorded = json.load(file)
        current = weights_digests(checkpoint, experiment.preset.snapshot_steps)
        changed += [
            checkpoint if name == "final" else os.path.join(checkpoint, name)
            for name in recorded
            if current.get(name, recorded[name]) != recorded[name]
        ]
    return changed


def pretrain(experiment: Experiment, seed: int) -> None:
    environment = pretraining_environment(experiment.args.keep_freed_memory)
    for objective in COMPARED_OBJECTIVES:
        checkpoint, record = experiment.checkpoint(seed, objective), experiment.run_record(seed, objective)
        run_stage(
            f"pretrain {objective} seed {seed}",
            record,
            experiment.pretraining_arguments(seed, objective),
            "train_results.json",
            experiment.pretraining_command(seed, objective),
            env=environment,
            collect=lambda checkpoint=checkpoint, record=record: record_run(
                checkpoint, record, experiment.preset.snapshot_steps
            ),
        )


def encoders_fingerprint(experiment: Experiment, seed: int) -> str | None:
    """A digest of both pretraining runs' records (their trainer states and weight digests change with any new
    training), which every stage measuring the encoders records among its settings; None while a run is unfinished."""
    digest = hashlib.sha256()
    for objective in COMPARED_OBJECTIVES:
        record = experiment.run_record(seed, objective)
        if not os.path.exists(os.path.join(record, "train_results.json")):
            return None
        for name in ("trainer_state.json", WEIGHTS_RECORD):
            if os.path.exists(os.path.join(record, name)):  # records written before weight digests lack them
                with open(os.path.join(record, name), "rb") as file:
                    digest.update(file.read())
    return digest.hexdigest()


def measuring_settings(experiment: Experiment, seed: int, arguments: list[str]) -> list[str] | None:
    """A probe, curves or analysis stage's settings: its arguments and the encoders it measured."""
    fingerprint = encoders_fingerprint(experiment, seed)
    return None if fingerprint is None else [*arguments, "--encoders_fingerprint", fingerprint]


# Each measuring stage's folder name and the file whose presence says it finished.
MEASURING_STAGE_MARKERS = {"probe": "results.json", "analysis": "analysis.json", "curves": "results.json"}


def seed_stages(experiment: Experiment, seed: int) -> list[tuple[str, str, str, list[str] | None]]:
    """`(name, directory, marker, settings)` of every stage of the seed, asked for now or not (the report reads what
    is on disk); settings None when they depend on encoders not pretrained yet."""
    plan = [
        (
            f"pretrain {objective} seed {seed}",
            experiment.run_record(seed, objective),
            "train_results.json",
            experiment.pretraining_arguments(seed, objective),
        )
        for objective in COMPARED_OBJECTIVES
    ]
    for stage, marker in MEASURING_STAGE_MARKERS.items():
        arguments = (
            experiment.analysis_arguments(seed) if stage == "analysis" else experiment.probe_arguments(seed, stage)
        )
        plan.append(
            (
                f"{stage} seed {seed}",
                experiment.seed_results(seed, stage),
                marker,
                measuring_settings(experiment, seed, arguments),
            )
        )
    return plan


def finished_stage(directory: str, marker: str) -> bool:
    return os.path.exists(os.path.join(directory, marker)) and os.path.exists(os.path.join(directory, STAGE_RECORD))


def check_no_stale_stage(experiment: Experiment) -> None:
    """Before any stage runs: a finished stage whose settings differ from the current ones (other arguments, or
    encoders pretrained again since it measured them) is an error listing every such stage. Every stage on disk is
    checked, whichever `--stages` asks for, since the report reads them all."""
    stale, precision_differs = [], False
    for seed in range(experiment.args.seeds):
        stale += [f"{path} holds other weights than its run recorded" for path in changed_weights(experiment, seed)]
        for name, directory, marker, settings in seed_stages(experiment, seed):
            if not finished_stage(directory, marker):
                continue
            recorded = read_json(directory, STAGE_RECORD)["settings"]
            if settings is None:
                stale.append(f"{name} ({directory}) measured encoders that are to be pretrained again")
            elif recorded != settings:
                changed = sorted(set(map(str, recorded)) ^ set(map(str, settings)))
                precision_differs |= "--bf16" in changed
                stale.append(f"{name} ({directory}) has other settings (differing: {', '.join(changed[:6])})")
    if stale:
        raise ValueError(
            "Finished stages do not match this run, and would be reported as its results: "
            + "; ".join(stale)
            + ". Use another --run_name for a new run; for a run of your own (never a published one, "
            f"which holds {PUBLISHED}), delete those folders, and any checkpoint named, to recompute them."
            + (
                " The pretraining precision differs: with --bf16 auto it follows this machine (bf16 where the device "
                "computes it natively); pass --bf16 true or false as the finished runs had to continue them."
                if precision_differs
                else ""
            )
        )


def run_probe_stage(experiment: Experiment, seed: int, stage: str, check: Callable[[], None] | None = None) -> None:
    """The probe's command for `stage` ("probe" or "curves", see `Experiment.probe_arguments`) as a stage."""
    arguments = experiment.probe_arguments(seed, stage=stage)
    run_stage(
        f"{stage} seed {seed}",
        experiment.seed_results(seed, stage),
        measuring_settings(experiment, seed, arguments),
        "results.json",
        [sys.executable, "-m", PROBE_MODULE, *arguments],
        check=check,
    )


def probe(experiment: Experiment, seed: int) -> None:
    run_probe_stage(experiment, seed, "probe")


def curves(experiment: Experiment, seed: int) -> None:
    """Probes every point along both runs on the curve tasks; a point that was not kept is an error naming it."""

    def check_points() -> None:
        missing = [
            f"{objective} step {step} ({path})"
            for objective in COMPARED_OBJECTIVES
            for step, path in experiment.curve_points(seed, objective).items()
            if not os.path.isdir(path)
        ]
        if missing:
            raise FileNotFoundError(
                f"The curves of seed {seed} need checkpoints that are missing: {', '.join(missing)}. The pretraining "
                f"stage keeps them (--snapshot_steps {' '.join(map(str, experiment.preset.snapshot_steps))}); a run "
                "trained without them, or that did not reach the step, cannot give them: delete that run's folder "
                "to pretrain it again, or leave out the curves with --stages pretrain probe analysis report."
            )

    run_probe_stage(experiment, seed, "curves", check=check_points)


def analyse(experiment: Experiment, seed: int) -> None:
    arguments = experiment.analysis_arguments(seed)
    run_stage(
        f"analysis seed {seed}",
        experiment.seed_results(seed, "analysis"),
        measuring_settings(experiment, seed, arguments),
        "analysis.json",
        [sys.executable, "-m", ANALYSIS_MODULE, *arguments],
    )


def machine() -> dict[str, Any]:
    """This machine: what a stage record names as the machine the stage ran on."""
    import torch

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
    hours = experiment.estimated_hours()
    precision = (
        f"bf16 autocast (--bf16 {args.bf16}"
        + (
            ", this device computes bf16 natively)"
            if experiment.native_bf16
            else ", emulated on this device: slower than fp32, whose time the estimate gives)"
        )
        if experiment.bf16
        else f"fp32 (--bf16 {args.bf16}"
        + (", this device has no native bf16)" if args.bf16 == "auto" and experiment.preset.bf16 == "native" else ")")
    )
    print(
        f"Preset {args.preset!r}: {preset.description}"
        f"{f'; --max_steps {args.max_steps} replaces its steps' if args.max_steps else ''}.\n"
        f"Data: pretraining text {args.train_file or f'{args.dataset_name} ({args.dataset_config_name})'}"
        f"{f', validation {args.validation_file}' if args.validation_file else ''}; GLUE {args.glue_path}; tokenizer "
        f"{args.tokenizer_name}.\nResults: {experiment.results}; checkpoints and cached features: {experiment.work}.\n"
        f"Per seed and objective: {preset.steps:,} steps × {preset.per_device_train_batch_size} × "
        f"{preset.max_seq_length} tokens = up to {tokens:,} tokens per process, pretrained in {precision}. "
        f"Seeds: {args.seeds}. "
        f"Estimated wall time on this machine ({experiment.device}): {hours:.1f} h per seed, {hours * args.seeds:.1f} h "
        "in all."
    )
    if experiment.device == "cpu" and hours > LONG_RUN_HOURS and not args.allow_long_run and "pretrain" in args.stages:
        raise SystemExit(
            f"The {args.preset!r} preset would take about {hours:.0f} h ({hours / 24:.1f} days) per seed on this CPU "
            "machine. "
            "Run it on a GPU, choose --preset cpu, or pass --allow_long_run to start anyway."
        )


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
    seeds; `None` otherwise)."""
    if len(first["values"]) < 2:
        return None
    return abs(first["mean"] - second["mean"]) > first["std"] + second["std"]


def paired_difference(first: list[float], second: list[float]) -> dict[str, Any]:
    """Seed statistics of the per-seed differences `first[i] − second[i]`."""
    return mean_and_spread([a - b for a, b in zip(first, second, strict=True)])


def read_json(directory: str, name: str) -> Any:
    with open(os.path.join(directory, name)) as file:
        return json.load(file)


def probe_comparison(experiment: Experiment) -> list[dict[str, Any]]:
    """One row per (task, split, metric): each compared model's seed statistics of the score × 100 (mean pooling),
    the hybrid − MLM-only difference (of the means, and seed statistics of the per-seed differences: both encoders of
    a seed share initialisation, data order and masks) and each pretrained encoder's per-seed gain over the random-init
    control."""
    scores: dict[tuple[str, str, str], dict[str, list[float]]] = {}
    for seed in range(experiment.args.seeds):
        models = read_json(experiment.seed_results(seed, "probe"), "results.json")["models"]
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
        results = read_json(experiment.seed_results(seed, "analysis"), "analysis.json")["results"]
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
            here = here or machine()
            ran_on = here
        if ran_on not in machines:
            machines.append(ran_on)
    return machines


def describe_machines(machines: list[dict[str, Any]]) -> str:
    """The machines as the report names them: e.g. "2 CPU cores", or "2 CPU cores and on 8 CPU cores and a <GPU>" for
    stages that ran on several."""
    described = (
        f"{description['cpu_count']} CPU cores" + (f" and a {description['gpu']}" if "gpu" in description else "")
        for description in machines
    )
    return " and on ".join(dict.fromkeys(described))


def render_report(summary: dict[str, Any]) -> str:
    seeds = summary["settings"]["seeds"]
    spread = " (mean ± standard deviation over seeds; * marks a difference larger than the sum of the two spreads)"
    runs = summary["runs"]
    stages = "pretraining both, probe, analysis" + (", curves" if summary["curves"] else "")
    lines = [
        f"Preset `{summary['settings']['preset']}`, {seeds} seed{'s' if seeds > 1 else ''}{spread if seeds > 1 else ''}"
        f". Tokens seen per encoder: {summary['tokens_seen'][HYBRID]:,} (hybrid), "
        f"{summary['tokens_seen'][MLM_ONLY]:,} (MLM-only), pretrained in {summary['pretraining_precision']}. "
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
        tokens = [f"{point['tokens'] / 1e6:.2f}M tokens" for point in steps]
        lines.append(markdown_table(["task", "objective", "metric", *tokens], rows))
    return "\n".join(lines) + "\n"


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


def recorded_flag(arguments: list[str], flag: str) -> str | None:
    """The value given to `flag` in a recorded command line, or None when it was not given."""
    return arguments[arguments.index(flag) + 1] if flag in arguments else None


def training_seconds(train_results: dict[str, float]) -> float:
    """A pretraining run's training time over all its calls, resumed ones included (`train_runtime` counts the last
    call only); records written before `train_seconds` was logged hold the runtime alone."""
    return train_results.get("train_seconds", train_results["train_runtime"])


def seed_wall_seconds(experiment: Experiment, seed: int, with_curves: bool) -> float:
    """The seed's recorded stage seconds, which cover each stage's last attempt (the curves' where `with_curves`),
    plus the training time of a resumed pretraining run's earlier attempts."""
    earlier_attempts = 0.0
    for objective in COMPARED_OBJECTIVES:
        train = read_json(experiment.run_record(seed, objective), "train_results.json")
        earlier_attempts += training_seconds(train) - train["train_runtime"]
    directories = seed_stage_directories(experiment, seed, with_curves)
    return earlier_attempts + sum(stage_seconds(directory) for directory in directories)


def seed_stage_directories(experiment: Experiment, seed: int, with_curves: bool) -> list[str]:
    """The folders of the seed's finished stages: both pretraining runs, probe, analysis, and curves where measured."""
    directories = [experiment.run_record(seed, objective) for objective in COMPARED_OBJECTIVES]
    stages = ["probe", "analysis", *(["curves"] if with_curves else [])]
    return directories + [experiment.seed_results(seed, stage) for stage in stages]


def has_curves(experiment: Experiment) -> bool:
    """Whether every seed's curves are measured (the report shows them); some seeds without them is an error."""
    finished = [
        finished_stage(experiment.seed_results(seed, "curves"), MEASURING_STAGE_MARKERS["curves"])
        for seed in range(experiment.args.seeds)
    ]
    if any(finished) and not all(finished):
        missing = [seed for seed, done in enumerate(finished) if not done]
        raise ValueError(
            f"The curves of seeds {missing} are not measured, while other seeds' are: a report would mix them. "
            "Add curves to --stages to measure them."
        )
    return all(finished)


def curve_points_with_tokens(experiment: Experiment, seed: int) -> dict[str, list[tuple[str, int, int]]]:
    """Objective → (folder probed, step, tokens seen) of each point along the seed's run."""
    points = {}
    for objective in COMPARED_OBJECTIVES:
        tokens = experiment.curve_tokens(seed, objective)
        points[objective] = [
            (path, step, tokens[step]) for step, path in experiment.curve_points(seed, objective).items()
        ]
    return points


def write_report(experiment: Experiment) -> dict[str, Any]:
    """comparison.json / comparison.md (tables, configuration, the machines the stages ran on, wall time, tokens
    seen), the curve plots and commands.sh."""
    args, results = experiment.args, experiment.results
    seeds = range(args.seeds)
    with_curves = has_curves(experiment)
    wall_seconds = [seed_wall_seconds(experiment, seed, with_curves) for seed in seeds]
    stage_directories = [
        directory for seed in seeds for directory in seed_stage_directories(experiment, seed, with_curves)
    ]
    curve_results = (
        [read_json(experiment.seed_results(seed, "curves"), "results.json") for seed in seeds] if with_curves else []
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
            objective: read_json(experiment.run_record(0, objective), "trainer_state.json")["num_input_tokens_seen"]
            for objective in COMPARED_OBJECTIVES
        },
        "runs": runs,
        "probe": probe_comparison(experiment),
        "uniformity": uniformity_comparison(experiment),
        "curves": probe_curve_data,
        "training_logs": logs,
    }
    with open(os.path.join(results, "comparison.json"), "w") as file:
        json.dump(summary, file, indent=2)
    with open(os.path.join(results, "comparison.md"), "w") as file:
        file.write(render_report(summary))
    plot_training_logs(logs).savefig(os.path.join(results, "training_logs.png"), dpi=120)
    if with_curves:
        majority = {
            task: outcome.get("majority", {}).get(GLUE_TASKS[task].validation_splits[0], {})
            for task, outcome in curve_results[0]["models"][0]["tasks"].items()
        }
        plot_probe_curves(probe_curve_data, majority).savefig(os.path.join(results, "probe_curves.png"), dpi=120)
    commands = ["python run_experiment.py " + shlex.join(sys.argv[1:]), ""]
    for seed in seeds:
        commands += [
            shlex.join(experiment.pretraining_command(seed, objective, portable=True))
            for objective in COMPARED_OBJECTIVES
        ]
        commands += [
            "python run_glue_probe.py " + shlex.join(experiment.probe_arguments(seed)),
            "python run_representation_analysis.py " + shlex.join(experiment.analysis_arguments(seed)),
            "python run_glue_probe.py " + shlex.join(experiment.probe_arguments(seed, stage="curves")),
        ]
    with open(os.path.join(results, "commands.sh"), "w") as file:
        file.write("\n".join(commands) + "\n")
    print(
        f"Wrote {results}/comparison.md, comparison.json, the curve plots and commands.sh; the analysis plots are in "
        f"{experiment.seed_results(0, 'analysis')}."
    )
    return summary


def main(argv: list[str] | None = None) -> None:
    (args,) = script_parser(ExperimentArguments, __doc__).parse_args_into_dataclasses(args=argv)
    experiment = Experiment(args)
    if set(args.stages) - {"report"}:
        text = [] if args.train_file else [("--dataset_name", args.dataset_name)]
        check_hub_reachable([*text, ("--glue_path", args.glue_path), ("--tokenizer_name", args.tokenizer_name)])
    check_budget(experiment)
    check_no_stale_stage(experiment)
    os.makedirs(experiment.results, exist_ok=True)
    stages = {"pretrain": pretrain, "probe": probe, "analysis": analyse, "curves": curves}
    for seed in range(args.seeds):
        for name, stage in stages.items():
            if name in args.stages:
                stage(experiment, seed)
    if "report" in args.stages:
        write_report(experiment)
