"""What one experiment runs and where: its arguments, the preset they select, and each stage's folders and command
line (`Experiment`)."""

import hashlib
import json
import math
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..data_sources import (
    DEFAULT_TEXT_DATASET,
    DEFAULT_TOKENIZER,
    DEMO_GLUE,
    DEMO_TOKENIZER,
    DEMO_TRAIN_FILE,
    DEMO_VALIDATION_FILE,
    check_dataset_revision,
    check_text_sources,
)
from ..probing.tasks import load_task_data
from ..snapshots import resolve_snapshot_steps, snapshot_dir
from ..utils import check_folders, native_bf16
from .presets import COMPARED_OBJECTIVES, CONTROL, EXPERIMENT_PRESETS, MLM_ONLY

STAGES = ("pretrain", "probe", "analysis", "curves", "report")
# Every stage runs as its own command, as commands.sh records it: `python -m <module> <arguments>`.
PRETRAINING_MODULE = "prjepa.pretraining"
PROBE_MODULE = "prjepa.probing.glue_probe"
ANALYSIS_MODULE = "prjepa.geometry.analysis"
# Marks a results folder as the project's published run: a run left to its default name writes
# `<preset>-reproduction` beside it instead of reusing or rewriting it.
PUBLISHED = "PUBLISHED.md"
# A CPU run estimated above this needs --allow_long_run.
LONG_RUN_HOURS = 3.0
# glibc keeps the memory a training step frees for the next one instead of returning it to the system and faulting
# it back in (benchmarks/bench_allocator.py measures the effect side by side): no allocation is mmap'd (each would be
# unmapped on free), and the heap is trimmed only above 16 GiB of free memory at its top.
KEEP_FREED_MEMORY = "glibc.malloc.trim_threshold=17179869184:glibc.malloc.mmap_max=0"
# A pretraining run keeps a checkpoint (weights, EMA target and optimizer: about 0.8 GB for the paper preset's
# encoder) every 1/CHECKPOINTS_PER_RUN of its planned steps, so that a run killed without warning (a preemption's
# SIGTERM saves one anyway) loses at most that share of its work while writing only that many checkpoints (every 50
# steps, the paper preset's run on one GPU wrote about 880): about 3 minutes apart on one GPU, and as far apart in time
# over several processes, which take fewer steps of about the same time. A share of the planned steps, not of the
# estimated time: the interval is among a run's recorded settings, which must not change with the machine a run
# continues on. Never more often than every MIN_SAVE_STEPS, where each save would cost a short run a noticeable share
# of its time: the cpu and demo presets save every 50 steps, 90 s of work on 2 CPU cores.
CHECKPOINTS_PER_RUN = 40
MIN_SAVE_STEPS = 50


# Data arguments left unset take these values (the text: DEFAULT_TEXT_DATASET, the tokenizer: DEFAULT_TOKENIZER), or
# with a demo preset the sample shipped with the package.
HUB_GLUE = "nyu-mll/glue"
# Any of these given without --preset means the user's data is to be measured: never at the demo's budget, nor mixed
# with the demo sample.
DATA_ARGUMENTS = (
    "train_file",
    "validation_file",
    "dataset_name",
    "dataset_config_name",
    "dataset_revision",
    "glue_path",
    "tokenizer_name",
)
DEFAULT_PRESET, DEFAULT_PRESET_WITH_DATA = "demo", "cpu"
DEMO_DEFAULTS = "the demo preset reads the sample shipped with the package instead"


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
        default=None,
        metadata={"help": f"Pretraining text on the Hub (default: {DEFAULT_TEXT_DATASET[0]}; {DEMO_DEFAULTS})."},
    )
    dataset_config_name: str | None = field(
        default=None,
        metadata={"help": f"Its configuration (default, when no text is named: {DEFAULT_TEXT_DATASET[1]})."},
    )
    dataset_revision: str | None = field(
        default=None,
        metadata={
            "help": "Its branch, tag or commit (default: the newest). Pretraining continues only on the commit a run "
            "read: pin it here once the dataset has moved on."
        },
    )
    train_file: str | None = field(default=None, metadata={"help": "Local pretraining text instead (globs allowed)."})
    validation_file: str | None = field(default=None, metadata={"help": "Local validation text."})
    glue_path: str | None = field(
        default=None, metadata={"help": f"GLUE on the Hub or a local copy (default: {HUB_GLUE}; {DEMO_DEFAULTS})."}
    )
    tokenizer_name: str | None = field(
        default=None,
        metadata={"help": f"Tokenizer Hub id or folder (default: {DEFAULT_TOKENIZER}; {DEMO_DEFAULTS})."},
    )
    launcher: str = field(
        default="",
        metadata={
            "help": "Prefix for the pretraining command, e.g. 'accelerate launch --multi_gpu --num_processes 4' "
            "(--multi_gpu on CPUs too, where accelerate otherwise starts one process; the experiment adds --use_cpu)."
        },
    )
    keep_freed_memory: bool = field(
        default=False,
        metadata={
            "help": f"Pretrain with GLIBC_TUNABLES={KEEP_FREED_MEMORY} (glibc only; ignored elsewhere): 7-12x "
            "fewer page faults for 11-31 per cent more peak memory; on the cpu preset's bf16 step, measured 0.75-0.85x "
            "the MLM-only step time and 0.86-1.04x the hybrid's in four runs (benchmarks/bench_allocator.py): no gain "
            "in every run, so off by default."
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
        metadata={
            "help": f"On a CPU, pretrain even when the estimate per seed on this machine exceeds {LONG_RUN_HOURS} h "
            "(GPU runs, and runs whose pretraining is finished, are never refused)."
        },
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
        # The run's own folders, which the stages write.
        check_folders(
            results_dir=os.path.join(self.results_dir, self.run_name),
            work_dir=os.path.join(self.work_dir, self.run_name),
        )
        check_text_sources(self.train_file, self.validation_file, self.dataset_name, self.dataset_config_name)
        demo = EXPERIMENT_PRESETS[self.preset].demo_data
        if not (self.dataset_name or self.train_file):
            if demo:
                self.train_file, self.validation_file = DEMO_TRAIN_FILE, DEMO_VALIDATION_FILE
            else:
                self.dataset_name, self.dataset_config_name = DEFAULT_TEXT_DATASET
        check_dataset_revision(self.dataset_revision, self.dataset_name)
        self.glue_path = self.glue_path or (DEMO_GLUE if demo else HUB_GLUE)
        self.tokenizer_name = self.tokenizer_name or (DEMO_TOKENIZER if demo else DEFAULT_TOKENIZER)


def read_json(directory: str, name: str) -> Any:
    with open(os.path.join(directory, name)) as file:
        return json.load(file)


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
        self.bf16 = args.bf16 == "true" or (args.bf16 == "auto" and self.preset.pretrains_in_bf16(self.native_bf16))
        self._task_fingerprints: dict[str, str] = {}

    def estimated_hours(self) -> float:
        """Per seed, on this machine, in the precision this run pretrains in."""
        return self.preset.estimated_hours(self.device, bf16=self.bf16, native_bf16=self.native_bf16)

    def checkpoint(self, seed: int, objective: str) -> str:
        return os.path.join(self.work, f"seed-{seed}", objective)

    def models(self, seed: int) -> dict[str, str]:
        """The compared encoders' folders by column: both finished runs and the random-init control (the MLM-only
        run's initialisation, which equals the hybrid run's encoder at step 0)."""
        return {
            **{objective: self.checkpoint(seed, objective) for objective in COMPARED_OBJECTIVES},
            CONTROL: snapshot_dir(self.checkpoint(seed, MLM_ONLY), 0),
        }

    def run_state(self, seed: int, objective: str) -> dict[str, Any]:
        """A finished run's trainer state: from its record, or from its work folder before it is recorded."""
        for folder in (self.run_record(seed, objective), self.checkpoint(seed, objective)):
            if os.path.exists(os.path.join(folder, "trainer_state.json")):
                return read_json(folder, "trainer_state.json")
        raise FileNotFoundError(
            f"The {objective} run of seed {seed} has not finished pretraining (no trainer_state.json in "
            f"{self.run_record(seed, objective)} or {self.checkpoint(seed, objective)}): add pretrain to --stages."
        )

    def snapshot_steps(self, seed: int, objective: str) -> list[int]:
        """The steps a finished run kept snapshots at."""
        return self._snapshot_steps(self.run_state(seed, objective))

    def _snapshot_steps(self, state: dict[str, Any]) -> list[int]:
        # The preset's fractions of the steps the run made, which a run by epochs learns only from its data and its
        # number of processes.
        return resolve_snapshot_steps(self.preset.snapshot_fractions, state["max_steps"])

    def curve_points(self, seed: int, objective: str) -> dict[int, str]:
        """Step → the folder probed at that step of a finished run: its snapshots, then the finished encoder."""
        run, state = self.checkpoint(seed, objective), self.run_state(seed, objective)
        return {**{step: snapshot_dir(run, step) for step in self._snapshot_steps(state)}, state["global_step"]: run}

    def seed_results(self, seed: int, stage: str) -> str:
        return os.path.join(self.results, f"seed-{seed}", stage)

    def run_record(self, seed: int, objective: str) -> str:
        """The results folder that records a pretraining run: `RUN_RECORD_FILES` and its snapshots' states."""
        return self.seed_results(seed, f"pretrain-{objective}")

    def curve_tokens(self, seed: int, objective: str) -> dict[int, int]:
        """Step → tokens seen at each point of the curves, from the run's record."""
        record = self.run_record(seed, objective)
        state = read_json(record, "trainer_state.json")
        tokens = {
            step: read_json(os.path.join(record, "snapshots"), f"step-{step}.json")["num_input_tokens_seen"]
            for step in self._snapshot_steps(state)
        }
        tokens[state["global_step"]] = state["num_input_tokens_seen"]
        return tokens

    def pretraining_arguments(self, seed: int, objective: str) -> list[str]:
        """run_pretrain.py's command line; the two objectives' differ in `--objective` and `--output_dir` only, and in
        `--learning_rate` where the preset gives one objective its own."""
        preset, args = self.preset, self.args
        data = ["--train_file", args.train_file] if args.train_file else ["--dataset_name", args.dataset_name]
        if args.dataset_config_name:  # a Hub dataset need not have configurations
            data += ["--dataset_config_name", args.dataset_config_name]
        if args.dataset_revision:  # only when given, so that runs recorded before the option still match
            data += ["--dataset_revision", args.dataset_revision]
        if args.validation_file:
            data += ["--validation_file", args.validation_file]
        # A run by epochs learns its steps only from its data and its number of processes: it places its snapshots
        # and evaluations by ratios of them.
        if preset.max_steps > 0:
            schedule = ["--max_steps", str(preset.max_steps)]
            snapshots, eval_steps = list(map(str, preset.snapshot_steps)), str(max(preset.steps // 4, 1))
        else:
            schedule = ["--num_train_epochs", str(preset.num_train_epochs)]
            snapshots, eval_steps = list(map(str, preset.snapshot_fractions)), "0.25"
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
            # transformers runs bf16 on a CPU only when told the device is one, and several launched CPU processes
            # form one DDP world only so (run_pretrain refuses them otherwise).
            *(["--use_cpu", "true"] if self.device == "cpu" and (self.bf16 or args.launcher) else []),
            "--seed",
            str(seed),
            "--data_seed",
            str(seed),
            "--logging_steps",
            str(max(min(10, preset.steps // 20), 1)),  # every 10 steps, and 20 points on a short run
            "--snapshot_steps",
            *snapshots,
            "--eval_strategy",
            "steps",
            "--eval_steps",
            eval_steps,
            "--save_steps",
            str(max(math.ceil(preset.steps / CHECKPOINTS_PER_RUN), MIN_SAVE_STEPS)),
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

    def pretraining_settings(self, seed: int, objective: str) -> list[str]:
        """What a finished pretraining stage must have recorded to be reused: its arguments, and the launcher that
        set its number of processes (so its tokens per step), where one was given."""
        launcher = ["--launcher", self.args.launcher] if self.args.launcher else []
        return [*self.pretraining_arguments(seed, objective), *launcher]

    def pretraining_command(self, seed: int, objective: str, portable: bool = False) -> list[str]:
        """The command that runs; `portable`: as a user types it in the repository (for commands.sh)."""
        launcher = shlex.split(self.args.launcher) or ["python" if portable else sys.executable]
        script = ["run_pretrain.py"] if portable else ["-m", PRETRAINING_MODULE]
        return [*launcher, *script, *self.pretraining_arguments(seed, objective)]

    def measured_tasks(self, stage: str) -> tuple[str, ...]:
        """The GLUE tasks a stage that measures the encoders ("probe", "analysis" or "curves") reads."""
        preset = self.preset
        return {"probe": preset.probe_tasks, "analysis": preset.analysis_tasks, "curves": preset.curve_tasks}[stage]

    def glue_fingerprint(self, tasks: Sequence[str]) -> str:
        """A digest of `tasks` as --glue_path holds them now, every split in full (`TaskData.fingerprint`): files
        replaced at the same path give another. Each task is read once per experiment."""
        digest = hashlib.sha256()
        for task in tasks:
            if task not in self._task_fingerprints:
                data = load_task_data(task, glue_path=self.args.glue_path)  # every stage fits on its training split
                self._task_fingerprints[task] = data.fingerprint()
            digest.update(f"{task} {self._task_fingerprints[task]}\n".encode())
        return digest.hexdigest()

    def measuring_arguments(self, seed: int, stage: str) -> list[str]:
        """The command line of a stage that measures the encoders: `analysis_arguments` for "analysis", else
        `probe_arguments`."""
        return self.analysis_arguments(seed) if stage == "analysis" else self.probe_arguments(seed, stage)

    def probe_arguments(self, seed: int, stage: str = "probe") -> list[str]:
        """run_glue_probe.py's command line: the compared encoders on every probe task (`stage="probe"`), or every
        point along both runs on the curve tasks (`stage="curves"`)."""
        if stage == "probe":
            models = list(self.models(seed).values())
        else:
            models = [path for objective in COMPARED_OBJECTIVES for path in self.curve_points(seed, objective).values()]
        return [
            "--model_name_or_path",
            *models,
            "--task_name",
            *self.measured_tasks(stage),
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
            *self.measured_tasks("analysis"),
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
