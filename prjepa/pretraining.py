#!/usr/bin/env python
"""Pretrain a PrJEPA encoder (hybrid JEPA + MLM, or MLM-only) with the HF Trainer.

Runs unchanged under `python`, `torchrun` and `accelerate launch`. Arguments come from the command line or from one
JSON / YAML file (`python run_pretrain.py config.yaml`). Examples:

    python run_pretrain.py --preset mini --train_file "texts/*.txt" --tokenizer_name bert-base-uncased \\
        --output_dir prjepa-mini --max_steps 1000 --per_device_train_batch_size 32
    accelerate launch run_pretrain.py --preset paper --objective mlm --output_dir prjepa-paper-mlm --bf16
"""

import glob
import hashlib
import json
import logging
import math
import os
import re
import shlex
import shutil
import sys
from collections.abc import Collection
from dataclasses import dataclass, field
from fnmatch import fnmatch
from itertools import chain, islice
from typing import TYPE_CHECKING, Any

import transformers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, set_seed
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, SchedulerType
from transformers.training_args import ParallelMode

from configuration_prjepa import OBJECTIVES, PRESETS, PrJepaConfig

from .data_sources import (
    DEFAULT_TEXT_DATASET,
    DEFAULT_TOKENIZER,
    check_data_file,
    check_dataset_revision,
    check_hub_reachable,
    check_push_access,
    check_text_sources,
    data_file_builder,
)
from .folder_lock import held_folders, hold_folder, release_folders
from .launch import accelerate_launch_options, parent_command, resolved_launch
from .resume import (
    NEW_MODEL_OPTIONS,
    RUN_SETTINGS,
    check_continued_length,
    check_resume_checkpoint,
    check_settings,
    check_streamed_resume,
    checkpoint_problem,
    checkpoint_state,
    checkpoint_step,
    checkpoints_by_step,
    differences,
    last_complete_checkpoint,
    last_finite_checkpoint,
    length_changed,
    reached_its_end,
    record_settings,
    recorded_settings_path,
    restart_command,
    run_settings,
)
from .snapshots import SNAPSHOT_PREFIX, check_snapshot_steps
from .training_args import PrJepaTrainingArguments
from .utils import (
    EMULATED_BF16_CPU_STEP_RATIO,
    SPECIAL_TOKEN_FIELDS,
    check_counts,
    check_folders,
    check_tokenizer_folder,
    check_tokenizer_has_vocabulary,
    first_names,
    native_bf16,
    option_names,
    parse_command_line,
    script_parser,
    tokenizer_fingerprint,
)

# `datasets`, the model, the collator and the trainer (together about 2 s to import) load where they are used, after
# the arguments are parsed: `--help` needs only the argument dataclasses.
if TYPE_CHECKING:
    import datasets
    from transformers import PreTrainedTokenizerBase

    from modeling_prjepa import PrJepaForPreTraining

    from .trainer import PrJepaTrainer

logger = logging.getLogger(__name__)

# A new model's size when neither --config_name nor --model_name_or_path gives one: the paper's.
DEFAULT_PRESET = "paper"


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "A PrJEPA checkpoint (Hub id or folder) to continue training from."}
    )
    preset: str | None = field(
        default=None,
        metadata={
            "help": f"Model size for a new model: one of {sorted(PRESETS)}; default: {DEFAULT_PRESET}, when neither "
            "--config_name nor --model_name_or_path gives the model."
        },
    )
    config_name: str | None = field(
        default=None, metadata={"help": "A PrJEPA config (file or folder) for a new model, instead of --preset."}
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "Comma-separated config overrides for a new model, e.g. 'hidden_size=256,jepa_loss=mse'."},
    )
    objective: str | None = field(
        default=None, metadata={"help": "'hybrid' (JEPA + MLM) or 'mlm' (MLM-only baseline); default: the config's."}
    )
    tokenizer_name: str | None = field(
        default=None,
        metadata={
            "help": "Tokenizer Hub id or folder; default: the checkpoint's own with --model_name_or_path, else "
            f"{DEFAULT_TOKENIZER} (as in the paper)."
        },
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where Hub downloads are stored."})
    model_revision: str = field(default="main", metadata={"help": "Branch, tag or commit of --model_name_or_path."})
    license: str | None = field(default=None, metadata={"help": "License for the model card, e.g. 'apache-2.0'."})

    def __post_init__(self):
        if self.objective not in (None, *OBJECTIVES):
            raise ValueError(f"--objective must be 'hybrid' or 'mlm', got {self.objective!r}.")
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"Unknown --preset {self.preset!r}; choose one of {sorted(PRESETS)}.")
        if self.model_name_or_path is not None and (self.config_name or self.config_overrides):
            raise ValueError(
                "--config_name/--config_overrides describe a new model; drop them with --model_name_or_path."
            )
        given = [
            f"{option} {value}"
            for option, value in (
                ("--model_name_or_path", self.model_name_or_path),
                ("--config_name", self.config_name),
            )
            if value is not None
        ]
        if self.preset is not None and given:
            raise ValueError(
                f"--preset {self.preset} and {given[0]} both give the model, so the preset would be ignored: drop one "
                "of them."
            )
        if not given:
            self.preset = self.preset or DEFAULT_PRESET

    def tokenizer_source(self) -> tuple[str, str]:
        """Where the tokenizer comes from, as run_mlm.py takes it, and the option that names it: --tokenizer_name when
        given, else the checkpoint's own (--model_name_or_path), else the paper's."""
        if self.tokenizer_name is not None:
            return "--tokenizer_name", self.tokenizer_name
        if self.model_name_or_path is not None:
            return "--model_name_or_path", self.model_name_or_path
        return "--tokenizer_name", DEFAULT_TOKENIZER


@dataclass
class DataTrainingArguments:
    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": f"Hub dataset; without it and without --train_file, {DEFAULT_TEXT_DATASET[0]} (as in the paper)."
        },
    )
    dataset_config_name: str | None = field(
        default=None, metadata={"help": f"Its configuration ({DEFAULT_TEXT_DATASET[1]} for the default dataset)."}
    )
    dataset_revision: str | None = field(
        default=None,
        metadata={
            "help": "Branch, tag or commit of the Hub dataset (default: its newest). A run records the commit it read, "
            "and continues only on it: pin it here once the dataset has moved on."
        },
    )
    train_file: str | None = field(
        default=None, metadata={"help": "Local training text: txt, csv, json/jsonl or parquet; globs allowed."}
    )
    validation_file: str | None = field(
        default=None,
        metadata={"help": "Local validation text, same formats; alone (without --train_file) for an evaluation only."},
    )
    text_column_name: str | None = field(
        default=None, metadata={"help": "Column holding the text; default 'text', or the only string column."}
    )
    validation_split_percentage: int = field(
        default=5, metadata={"help": "Share of the training data held out when there is no validation split."}
    )
    max_seq_length: int = field(default=128, metadata={"help": "Tokens per sequence, [CLS] and [SEP] included."})
    line_by_line: bool = field(
        default=False, metadata={"help": "One sequence per line (truncated) instead of packing texts into chunks."}
    )
    streaming: bool = field(default=False, metadata={"help": "Stream the data (corpora larger than memory)."})
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Processes for tokenization."})
    overwrite_cache: bool = field(default=False, metadata={"help": "Recompute the tokenized datasets."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Truncate the training set (sequences)."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Truncate the validation set (sequences)."})

    def __post_init__(self):
        if self.max_seq_length < 3:
            raise ValueError(
                f"--max_seq_length {self.max_seq_length} cannot hold a token between [CLS] and [SEP]; use at least 3 "
                "(128 is the paper's)."
            )
        for option, count in (
            ("--max_train_samples", self.max_train_samples),
            ("--max_eval_samples", self.max_eval_samples),
        ):
            if count is not None and count < 1:
                raise ValueError(f"{option} {count} leaves no sequence; give at least 1, or leave it out for all.")
        if not 0 <= self.validation_split_percentage < 100:
            raise ValueError(
                f"--validation_split_percentage {self.validation_split_percentage} must lie in [0, 100): it is the "
                "share of the training data held out for validation (0: none)."
            )
        # Whether the run trains is a training argument: main checks the sources again knowing it.
        check_text_sources(
            self.train_file, self.validation_file, self.dataset_name, self.dataset_config_name, training=False
        )
        if self.train_file is None and self.validation_file is None and self.dataset_name is None:
            self.dataset_name, self.dataset_config_name = DEFAULT_TEXT_DATASET
        check_dataset_revision(self.dataset_revision, self.dataset_name)
        for option, path in (("--train_file", self.train_file), ("--validation_file", self.validation_file)):
            if path is not None:
                check_data_file(option, path)
        if self.train_file is not None and self.validation_file is not None:
            kinds = data_file_builder(self.train_file), data_file_builder(self.validation_file)
            if kinds[0] != kinds[1]:
                raise ValueError(
                    f"--train_file {self.train_file} is {kinds[0]} and --validation_file {self.validation_file} is "
                    f"{kinds[1]}: both splits are read by one builder, so one of them would be misread. Give files of "
                    "one type (convert one of them)."
                )


# A run's arguments may come in one file instead of the command line, as in transformers' example scripts.
JSON_SUFFIXES, YAML_SUFFIXES = (".json",), (".yaml", ".yml")
ARGUMENTS_FILE_SUFFIXES = JSON_SUFFIXES + YAML_SUFFIXES


ARGUMENT_CLASSES = (ModelArguments, DataTrainingArguments, PrJepaTrainingArguments)


def parse_arguments(argv: list[str] | None) -> tuple[ModelArguments, DataTrainingArguments, PrJepaTrainingArguments]:
    argv = sys.argv[1:] if argv is None else argv
    parser = script_parser(ARGUMENT_CLASSES, __doc__)
    if len(argv) == 1 and argv[0].endswith(JSON_SUFFIXES):
        return parser.parse_json_file(os.path.abspath(argv[0]))
    if len(argv) == 1 and argv[0].endswith(YAML_SUFFIXES):
        return parser.parse_yaml_file(os.path.abspath(argv[0]))
    return parse_command_line(parser, argv)


# The data arguments that decide which sequences training sees, in which order (validation data does not).
# Streaming keeps the held-out share in the training data and changes the order and the skip on resume; the number
# of tokenization processes moves the cuts of packed chunks (one per map batch and shard). --dataset_revision is not
# among them: the commit read is recorded instead (train_dataset_revision), so that a run can be pinned to it later.
TRAJECTORY_DATA_ARGUMENTS = (
    "dataset_name",
    "dataset_config_name",
    "train_file",
    "text_column_name",
    "validation_split_percentage",
    "max_seq_length",
    "line_by_line",
    "max_train_samples",
    "streaming",
    "preprocessing_num_workers",
)


def detect_checkpoint(training_args: PrJepaTrainingArguments) -> str | None:
    """run_mlm.py's rule: resume from the last checkpoint in the output directory, never overwrite silently; and
    only from a complete checkpoint (`prjepa.resume`). An explicit checkpoint of another run may go only into an
    empty output directory, or one --overwrite_output_dir clears."""
    output_dir = training_args.output_dir
    if training_args.do_train and training_args.resume_from_checkpoint is not None:
        checkpoint = training_args.resume_from_checkpoint
        check_resume_checkpoint(checkpoint)
        if is_own_checkpoint(checkpoint, output_dir) or training_args.overwrite_output_dir:
            return checkpoint
        if os.path.isdir(output_dir) and os.listdir(output_dir):
            # Left there, another run's snapshots would be kept as this run's and its checkpoints counted and
            # resumed as this run's.
            own_last = (
                " leave --resume_from_checkpoint out to resume its own last checkpoint,"
                if checkpoints_by_step(output_dir)
                else ""
            )
            raise ValueError(
                f"--output_dir {output_dir} already holds files that are not {checkpoint}'s run's "
                f"({first_names(sorted(os.listdir(output_dir)))}): resuming into it would mix the two runs. Choose "
                f"another --output_dir,{own_last} or pass --overwrite_output_dir to clear the previous run's "
                "checkpoints, snapshots and results first."
            )
        return checkpoint
    if not training_args.do_train or not os.path.isdir(output_dir) or training_args.overwrite_output_dir:
        return None
    last_checkpoint = last_complete_checkpoint(output_dir)
    if last_checkpoint is None and os.listdir(output_dir):
        raise ValueError(
            f"Output directory {output_dir} already exists and is not empty, with no checkpoint to resume from. "
            "Use --overwrite_output_dir to train there anyway, or choose another --output_dir."
        )
    if last_checkpoint is not None:
        logger.info(
            f"Checkpoint detected, resuming training at {last_checkpoint}. To start from scratch, pass "
            "--overwrite_output_dir or choose another --output_dir."
        )
    return last_checkpoint


# What a run writes into its output directory besides the final model: left from a previous run, they would be taken
# for the new run's (resumed, kept as its snapshots, counted by --save_total_limit, read as a finished run, its card
# uploaded by the pushes during training).
PREVIOUS_RUN_FOLDERS = (f"{PREFIX_CHECKPOINT_DIR}-*", f"{SNAPSHOT_PREFIX}*", "*.partial")
# What an evaluation writes into its output directory, training or not.
EVALUATION_RESULTS = ("eval_results.json", "all_results.json")
PREVIOUS_RUN_FILES = ("trainer_state.json", "train_results.json", *EVALUATION_RESULTS, "README.md")


# What a run writes into its output directory before its first checkpoint.
RUN_START_ENTRIES = (RUN_SETTINGS, f"{SNAPSHOT_PREFIX}*", "*.partial")
# What shows a training run in its output directory before it finishes (writes train_results.json).
TRAINING_RUN_ENTRIES = (*PREVIOUS_RUN_FOLDERS, RUN_SETTINGS)


def first_save_step(training_args: PrJepaTrainingArguments) -> int | None:
    """The step of a run's first scheduled checkpoint; None when saving by epochs (it depends on the data) or not at
    all."""
    if training_args.save_strategy != "steps":
        return None
    if training_args.save_steps >= 1:
        return int(training_args.save_steps)
    return math.ceil(training_args.save_steps * training_args.max_steps) if training_args.max_steps > 0 else None


def stopped_before_first_checkpoint(output_dir: str, settings: dict[str, Any], first_save: int | None) -> bool:
    """Whether `output_dir` holds only what a run of these `settings` writes before its first checkpoint (its settings
    and snapshots) and at most that checkpoint half-written, as a run stopped then leaves it: starting again rewrites
    them alike, so they are no other run's, and nothing in them could be resumed. A half-written checkpoint counts as
    the first only at or before `first_save` (a stop signal saves earlier) and with no snapshot after it: a later one
    (the only one --save_total_limit 1 keeps, damaged since) is the run's work, refused rather than removed."""
    recorded = os.path.join(output_dir, RUN_SETTINGS)
    if not os.path.isfile(recorded):
        return False
    names = os.listdir(output_dir)
    others = [name for name in names if not any(fnmatch(name, pattern) for pattern in RUN_START_ENTRIES)]
    if others:
        checkpoints = checkpoints_by_step(output_dir)
        if len(checkpoints) != 1 or others != [os.path.basename(checkpoints[0])] or first_save is None:
            return False
        step = checkpoint_step(checkpoints[0])
        snapshot_steps = [
            int(match.group(1))
            for name in names
            if (match := re.fullmatch(rf"{re.escape(SNAPSHOT_PREFIX)}(\d+)(\.partial)?", name))
        ]
        if step > first_save or any(snapshot > step for snapshot in snapshot_steps):
            return False
        if checkpoint_problem(checkpoints[0]) is None:
            return False
    with open(recorded) as file:
        return not differences(json.load(file), settings)


def is_own_checkpoint(checkpoint: str, output_dir: str) -> bool:
    """Whether `checkpoint` is a checkpoint of the run in `output_dir` (a folder directly in it), whose other files
    are then that run's."""
    return os.path.realpath(os.path.dirname(os.path.normpath(checkpoint))) == os.path.realpath(output_dir)


def remove_previous_run(
    output_dir: str,
    keep: str | None = None,
    reason: str = "--overwrite_output_dir",
    file_names: Collection[str] = PREVIOUS_RUN_FILES,
) -> None:
    """--overwrite_output_dir starting a run from scratch or from another run's checkpoint (or `reason`, another cause
    of a fresh start): removes the previous run's checkpoints, snapshots, half-written folders and results from
    `output_dir`, and says so; never a folder holding `keep`, the checkpoint being resumed. `file_names`: the files
    to remove (an evaluation alone replaces only its results)."""
    folders = sorted(
        {path for pattern in PREVIOUS_RUN_FOLDERS for path in glob.glob(os.path.join(output_dir, pattern))}
    )
    if keep is not None:  # another run's checkpoint may lie in a folder here, e.g. checkpoint-backups/checkpoint-50
        kept = os.path.realpath(keep) + os.sep
        folders = [path for path in folders if not kept.startswith(os.path.realpath(path) + os.sep)]
    files = [os.path.join(output_dir, name) for name in file_names]
    files = [path for path in files if os.path.isfile(path)]
    for path in folders:
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:  # a half-written file, e.g. run_settings.json.partial
            os.remove(path)
    for path in files:
        os.remove(path)
    if folders or files:
        logger.warning(
            f"{reason}: removed the previous run's {', '.join(map(os.path.basename, folders + files))} from "
            f"{output_dir}, so that they are not taken for this run's."
        )


def current_settings(
    model: "PrJepaForPreTraining",
    tokenizer: "PreTrainedTokenizerBase",
    data_args: DataTrainingArguments,
    training_args: PrJepaTrainingArguments,
    cache_dir: str | None,
    training_data: bool = True,
) -> dict:
    """This run's `prjepa.resume.run_settings`; the tokenizer is recorded by its fingerprint, wherever it is read
    from, and the training text by `training_data_fingerprint` unless `training_data` is False (settings that are
    only compared, never recorded, of a run that reads no training text)."""
    data = {name: getattr(data_args, name) for name in TRAJECTORY_DATA_ARGUMENTS}
    # No workers and one worker cut the same chunks; streaming tokenizes lazily, without workers.
    data["preprocessing_num_workers"] = None if data_args.streaming else data_args.preprocessing_num_workers or 1
    data["tokenizer_fingerprint"] = tokenizer_fingerprint(tokenizer)
    if training_data:
        data.update(training_data_fingerprint(data_args, cache_dir))
    return run_settings(
        model.config.to_dict(), {**training_args.to_dict(), "world_size": training_args.world_size}, data
    )


def training_data_fingerprint(data_args: DataTrainingArguments, cache_dir: str | None) -> dict[str, Any]:
    """What identifies the training text beyond the options naming it, which a glob or a Hub dataset's name do not:
    `train_files`, each local file `datasets` reads for the training split (path: size and sha256), so that a file
    edited, added to the glob or removed from it shows; `train_dataset_revision`, the commit of a dataset on the Hub.
    Files given by URL are known by their name in --train_file alone."""
    import datasets

    if data_args.train_file is not None:
        source = data_args.train_file
        load = dict(path=data_file_builder(source), data_files={"train": source})
    else:
        source = data_args.dataset_name
        load = dict(path=source, name=data_args.dataset_config_name, revision=data_args.dataset_revision)
    builder = datasets.load_dataset_builder(**load, cache_dir=cache_dir)
    if data_args.train_file is None and not os.path.exists(source):
        # Its commit, as `datasets` resolved it online or found it in its cache offline (the files it lists differ).
        pinned = data_args.dataset_revision
        if pinned is not None and re.fullmatch(r"[0-9a-f]{40}", pinned) and builder.hash != pinned:
            raise ValueError(
                f"--dataset_revision {pinned} asks for that commit of {source}, but `datasets` read commit "
                f"{builder.hash}: offline (HF_DATASETS_OFFLINE / HF_HUB_OFFLINE) it reads the newest cached version "
                "whatever the revision. Run online once to cache the pinned commit, or drop --dataset_revision."
            )
        return {"train_files": None, "train_dataset_revision": builder.hash}
    # `datasets` resolves a relative glob from the working directory, with links resolved: paths recorded relative to
    # it let a project folder move.
    base = os.path.realpath(os.getcwd())
    files = {}
    for path in (builder.config.data_files or {}).get("train", []):
        if "://" in path:
            continue
        with open(path, "rb") as file:
            digest = hashlib.file_digest(file, "sha256").hexdigest()
        name = path if os.path.isabs(source) else os.path.relpath(path, base)
        files[name] = {"bytes": os.path.getsize(path), "sha256": digest}
    return {"train_files": files, "train_dataset_revision": None}


def finished_training(training_args: PrJepaTrainingArguments) -> bool:
    """Whether the output directory holds a finished run that already reached the requested length, so that
    training again would only add steps past the schedule's end and rewrite the final model."""
    output_dir = training_args.output_dir
    state_path = os.path.join(output_dir, "trainer_state.json")
    if training_args.overwrite_output_dir or not os.path.exists(os.path.join(output_dir, "train_results.json")):
        return False
    if not os.path.exists(state_path):
        return False
    try:
        with open(state_path) as file:
            state = json.load(file)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        # Left by a process stopped while writing it (as transformers wrote it before this package did atomically):
        # the run is completed from its last checkpoint, as if the file were missing.
        logger.warning(f"{state_path} is damaged ({error}): the run is completed from its last checkpoint.")
        return False
    if training_args.max_steps > 0:
        return state["global_step"] >= training_args.max_steps
    return state.get("epoch", 0) >= training_args.num_train_epochs


def check_launch(training_args: PrJepaTrainingArguments) -> None:
    """Several launched processes that each see a world of one would train alone, all into the same folder; one
    process that sees several GPUs would train through `nn.DataParallel`, whose gathered per-GPU losses the
    trainer's loss windows do not take."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and training_args.world_size == 1:
        raise SystemExit(
            f"{launched} processes were launched (WORLD_SIZE={launched}), but this one sees a world size of 1: each "
            "would train alone and write the same --output_dir. On CPUs pass --use_cpu to the script, after it: "
            f"`accelerate launch --multi_gpu --num_processes {launched} run_pretrain.py … --use_cpu` or `torchrun "
            f"--nproc_per_node {launched} run_pretrain.py … --use_cpu`; on GPUs make sure every process sees a GPU."
        )
    # accelerate's one-process launcher sets ACCELERATE_USE_CPU, and MASTER_ADDR when asked for several processes
    # (or where the environment has it): its own command line, resolved as accelerate does, says which.
    simple_launch = "ACCELERATE_USE_CPU" in os.environ and "WORLD_SIZE" not in os.environ
    if simple_launch and "MASTER_ADDR" in os.environ and training_args.world_size == 1:
        options = accelerate_launch_options(parent_command())
        try:
            launch = resolved_launch(options) if options is not None else None
        except (SystemExit, ValueError, OSError):  # read again later (a config file since removed): no evidence
            launch = None
        if launch is not None and launch.num_processes > 1:
            asked = launch.num_processes
            # accelerate refuses its --cpu beside --multi_gpu.
            without_cpu = " (without accelerate's --cpu: the script's --use_cpu takes its place)" if launch.cpu else ""
            raise SystemExit(
                f"accelerate launch was asked for {asked} processes but started this one alone: without "
                "--multi_gpu (or a config file whose distributed_type sets it) it starts one on a machine without "
                "GPUs, which would train alone with one process's share of the batch. Launch `accelerate launch "
                f"--multi_gpu --num_processes {asked} run_pretrain.py … --use_cpu`{without_cpu} or `torchrun "
                f"--nproc_per_node {asked} run_pretrain.py … --use_cpu`."
            )
    if training_args.parallel_mode == ParallelMode.NOT_DISTRIBUTED:
        gpus = training_args.n_gpu
        raise SystemExit(
            f"This one process sees {gpus} GPUs, which transformers would share through nn.DataParallel: PrJEPA "
            f"pretraining runs one process per GPU. Launch `torchrun --nproc_per_node {gpus} run_pretrain.py …` or "
            f"`accelerate launch --multi_gpu --num_processes {gpus} run_pretrain.py …`, or train on one GPU: "
            "`CUDA_VISIBLE_DEVICES=0 python run_pretrain.py …`."
        )


def check_evaluated_model(model_args: ModelArguments, training_args: PrJepaTrainingArguments) -> bool:
    """An evaluation without training writes `EVALUATION_RESULTS` into --output_dir (all_results.json merged into the
    one there): into a finished run's folder, only for that run's final model, never a fresh or another model's; never
    into an unfinished run's, which, resumed, would report them as its own; over an earlier evaluation's results only
    for the model in that folder, evaluated in place again, or with --overwrite_output_dir. Returns whether they are
    to be removed first, so that none of the earlier model's is left among the new ones."""
    output_dir = training_args.output_dir
    if training_args.do_train or not training_args.do_eval or not os.path.isdir(output_dir):
        return False
    model = model_args.model_name_or_path
    in_place = model is not None and os.path.isdir(model) and os.path.samefile(model, output_dir)
    evaluated = "a freshly initialised model (no --model_name_or_path)" if model is None else model
    writing = f"--do_eval without --do_train would write the results of {evaluated} into {output_dir}, which holds"
    if os.path.isfile(os.path.join(output_dir, "train_results.json")):
        if in_place:
            return False
        raise ValueError(
            f"{writing} a finished run, over that run's own. To evaluate its final model pass --model_name_or_path "
            f"{output_dir} (or rerun its training command with --do_eval); to evaluate another model, choose another "
            "--output_dir."
        )
    run = sorted(name for name in os.listdir(output_dir) if any(fnmatch(name, p) for p in TRAINING_RUN_ENTRIES))
    if os.path.isfile(os.path.join(output_dir, "trainer_state.json")):
        # A checkpoint's copy of its run's settings (`RunSettingsCallback`): a resume of it writes into its run's
        # folder, never reading results written beside it. A run's own folder holds trainer_state.json once finished.
        run = [name for name in run if name != RUN_SETTINGS]
    if run:
        raise ValueError(
            f"{writing} an unfinished training run ({first_names(run)}): resumed, "
            "that run would report them as its own. Choose another --output_dir (to evaluate one of the run's "
            "checkpoints, pass it as --model_name_or_path)."
        )
    earlier = [name for name in EVALUATION_RESULTS if os.path.isfile(os.path.join(output_dir, name))]
    if earlier and not (in_place or training_args.overwrite_output_dir):
        raise ValueError(
            f"{writing} an earlier evaluation's results ({', '.join(earlier)}), and would replace them. Choose another "
            "--output_dir, or pass --overwrite_output_dir to replace them."
        )
    return bool(earlier) and training_args.overwrite_output_dir


def warn_emulated_bf16(training_args: PrJepaTrainingArguments) -> None:
    """bf16 autocast on a CPU without bf16 instructions trains correctly, but many times slower than fp32."""
    if training_args.bf16 and training_args.device.type == "cpu" and not native_bf16("cpu"):
        logger.warning(
            "--bf16 on a CPU without native bf16 (AVX512-BF16 or AMX): autocast emulates it, measured at "
            f"{EMULATED_BF16_CPU_STEP_RATIO:.0f}x the fp32 step time (benchmarks/bench_precision.py). Pass --bf16 "
            "false to train in fp32, or run on a CPU or GPU that computes bf16."
        )


def load_raw_datasets(
    data_args: DataTrainingArguments, cache_dir: str | None, splits: Collection[str]
) -> "datasets.DatasetDict":
    """The run's text, untokenized, in the `splits` it reads ("train", "validation"). The validation split is the
    --validation_file, the dataset's own, or the first --validation_split_percentage of the training data (which
    training then leaves out). Local files are loaded only for the splits read: an evaluation alone reads no training
    file unless its validation share is held out of them. `datasets` prepares a Hub dataset's splits together (or
    streams them lazily); only those in `splits` are returned, to be filtered and tokenized."""
    import datasets

    if data_args.train_file is None and data_args.validation_file is None:
        load = dict(
            path=data_args.dataset_name, name=data_args.dataset_config_name, revision=data_args.dataset_revision
        )
    else:
        # Validation data held out of the training files needs those read.
        read = set(splits) if data_args.validation_file is not None else {*splits, "train"}
        files = {"train": data_args.train_file, "validation": data_args.validation_file}
        data_files = {split: path for split, path in files.items() if path is not None and split in read}
        load = dict(path=data_file_builder(next(iter(data_files.values()))), data_files=data_files)
    load.update(cache_dir=cache_dir, streaming=data_args.streaming)
    raw = datasets.load_dataset(**load)
    percent = data_args.validation_split_percentage
    if data_args.validation_file is None and "validation" not in raw and not data_args.streaming and percent > 0:
        rows = raw["train"].num_rows
        if rows * percent / 100 < 1:  # `datasets` would fail on the empty split with a message about its instruction
            # Rows that are all empty lines are named as such first: no percentage or validation file would help.
            train = datasets.DatasetDict(train=raw["train"])
            texts = drop_empty_lines(train, text_column(train, data_args.text_column_name), data_args)
            check_holds_text("train", texts["train"], data_args)
            raise ValueError(
                f"The training data ({', '.join(dataset_names(data_args))}) holds {rows} rows, so "
                f"--validation_split_percentage {percent} would hold out less than one: pass "
                "--validation_split_percentage 0 (no validation data, fine without --do_eval), a larger percentage, "
                "or a --validation_file."
            )
        held_out = {"validation": f"train[:{percent}%]", "train": f"train[{percent}%:]"}
        return datasets.DatasetDict({split: datasets.load_dataset(**load, split=held_out[split]) for split in splits})
    return type(raw)({split: raw[split] for split in splits if split in raw})


# `datasets` feature dtypes of a column of texts.
TEXT_DTYPES = ("string", "large_string")


def column_names(dataset: "datasets.Dataset | datasets.IterableDataset") -> list[str]:
    """The dataset's columns; a streamed source that declares no features (CSV, JSON) shows them in its first
    example (none when it has no example)."""
    if dataset.column_names is not None:
        return dataset.column_names
    return list(next(iter(dataset), {}))


def text_column(raw: "datasets.DatasetDict", requested: str | None) -> str:
    split = next(iter(raw.values()))  # the training split when there is one
    features = split.features or {}
    columns = column_names(split)
    strings = [name for name, feature in features.items() if getattr(feature, "dtype", None) in TEXT_DTYPES]
    if requested is None and "text" not in columns:
        if len(strings) != 1:
            raise ValueError(f"No 'text' column in the data; columns found: {columns}. Pass --text_column_name.")
        return strings[0]
    column = "text" if requested is None else requested
    if column not in columns:
        raise ValueError(f"--text_column_name {requested!r} is not in the data; columns found: {columns}.")
    if features and column not in strings:
        kind = getattr(features[column], "dtype", type(features[column]).__name__)
        raise ValueError(
            f"The text column {column!r} holds {kind}, not strings, so it cannot be tokenized. Pass "
            f"--text_column_name with the column that holds the text (string columns: {strings or 'none'})."
        )
    return column


def drop_empty_lines(
    raw: "datasets.DatasetDict", column: str, data_args: DataTrainingArguments
) -> "datasets.DatasetDict":
    """Removes empty and whitespace-only texts (WikiText is full of them) and logs how many went."""
    # Streaming datasets filter lazily and take no num_proc.
    kwargs = {} if data_args.streaming else {"num_proc": data_args.preprocessing_num_workers}
    kept = {}
    for split, dataset in raw.items():
        kept[split] = dataset.filter(lambda text: bool(text and text.strip()), input_columns=column, **kwargs)
        if not data_args.streaming:
            logger.info(
                f"{split}: dropped {len(dataset) - len(kept[split])} empty or whitespace-only texts of {len(dataset)}."
            )
    return type(raw)(kept)


# Said of a split found empty after tokenizing: a line of characters the tokenizer drops was not empty to the eye.
IGNORED_CHARACTERS = "a line of characters the tokenizer ignores, such as control characters, counts as empty"


def check_holds_text(
    split: str, dataset: "datasets.Dataset | datasets.IterableDataset", data_args: DataTrainingArguments
) -> None:
    """A `split` ("train" or "validation") left without a row once empty lines are dropped, or without a sequence once
    tokenized, is an error naming where its text came from. A stream's length is unknown: `check_training_rows` reads
    the first rows of a streamed training split."""
    if data_args.streaming or len(dataset) > 0:
        return
    if split == "validation":
        raise ValueError(
            f"The validation data ({validation_source(data_args, dataset)}) holds no text once empty lines are "
            f"dropped ({IGNORED_CHARACTERS}), so there is nothing to evaluate: give another --validation_file, or drop "
            "--do_eval and --eval_strategy."
        )
    source = (
        f"--train_file {data_args.train_file}"
        if data_args.train_file is not None
        else f"--dataset_name {data_args.dataset_name}"
    )
    raise ValueError(
        f"The training data ({source}) holds no text once empty lines are dropped ({IGNORED_CHARACTERS}), so there is "
        "nothing to train on or hold out for validation: give training data that holds text (in a csv, json or parquet "
        "file, name its text column with --text_column_name)."
    )


def tokenize(
    raw: "datasets.DatasetDict",
    tokenizer: "PreTrainedTokenizerBase",
    column: str,
    data_args: DataTrainingArguments,
    training_args: PrJepaTrainingArguments,
) -> "datasets.DatasetDict":
    """Texts → `input_ids` of at most `max_seq_length` tokens, each sequence framed by [CLS] … [SEP].

    Packing (default) concatenates the texts of each map batch and cuts them into full-length chunks; the batch's last,
    shorter chunk is kept (the collator handles any length). `--line_by_line` keeps one truncated sequence per text.
    """
    max_length = data_args.max_seq_length
    content_length = max_length - 2
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id

    def tokenize_lines(batch: dict[str, list]) -> dict[str, list]:
        return {"input_ids": tokenizer(batch[column], truncation=True, max_length=max_length)["input_ids"]}

    def tokenize_and_pack(batch: dict[str, list]) -> dict[str, list]:
        # verbose=False: texts longer than the model's maximum are expected here, cut into chunks below.
        ids = list(chain.from_iterable(tokenizer(batch[column], add_special_tokens=False, verbose=False)["input_ids"]))
        chunks = [ids[start : start + content_length] for start in range(0, len(ids), content_length)]
        return {"input_ids": [[cls, *chunk, sep] for chunk in chunks]}

    function = tokenize_lines if data_args.line_by_line else tokenize_and_pack
    kwargs = (
        {}
        if data_args.streaming
        else dict(
            num_proc=data_args.preprocessing_num_workers,
            load_from_cache_file=not data_args.overwrite_cache,
            desc="Tokenizing" + ("" if data_args.line_by_line else f" and packing into {max_length}-token chunks"),
        )
    )
    with training_args.main_process_first(desc="tokenization"):
        return type(raw)(
            {
                split: dataset.map(function, batched=True, remove_columns=column_names(dataset), **kwargs)
                for split, dataset in raw.items()
            }
        )


def load_tokenizer(model_args: ModelArguments) -> PreTrainedTokenizerBase:
    """The tokenizer `ModelArguments.tokenizer_source` names; a checkpoint or a --tokenizer_name folder without one is
    an error naming --tokenizer_name."""
    option, source = model_args.tokenizer_source()
    fix = (
        "Pass the tokenizer to train with as --tokenizer_name: a folder a tokenizer was saved to, or a Hub id (the "
        f"paper's: {DEFAULT_TOKENIZER})."
    )
    if option == "--tokenizer_name":
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, cache_dir=model_args.cache_dir)
        except (OSError, ValueError):
            check_tokenizer_folder(source, f"{option} {source}", fix)
            raise
    else:
        try:
            tokenizer = AutoTokenizer.from_pretrained(
                source, cache_dir=model_args.cache_dir, revision=model_args.model_revision
            )
        except (OSError, ValueError) as error:  # no tokenizer files: transformers raises either, by what else it finds
            reason = str(error).strip().splitlines()[0]
            raise ValueError(
                f"Could not load a tokenizer from --model_name_or_path {source} ({reason}). If the checkpoint holds "
                f"none, pass the tokenizer it was trained with as --tokenizer_name (the paper's: {DEFAULT_TOKENIZER})."
            ) from error
    check_tokenizer_has_vocabulary(tokenizer, f"{option} {source}", fix)
    return tokenizer


def build_model(model_args: ModelArguments, tokenizer: "PreTrainedTokenizerBase") -> "PrJepaForPreTraining":
    from modeling_prjepa import PrJepaForPreTraining

    overrides: dict[str, Any] = {} if model_args.objective is None else {"objective": model_args.objective}
    if model_args.model_name_or_path is not None:
        return PrJepaForPreTraining.from_pretrained(
            model_args.model_name_or_path,
            revision=model_args.model_revision,
            cache_dir=model_args.cache_dir,
            **overrides,
        )
    if model_args.config_name is not None:
        config = PrJepaConfig.from_pretrained(model_args.config_name, cache_dir=model_args.cache_dir, **overrides)
    else:
        special_ids = {name: getattr(tokenizer, name) for name in SPECIAL_TOKEN_FIELDS}
        config = PrJepaConfig.from_preset(model_args.preset, vocab_size=len(tokenizer), **special_ids, **overrides)
    if model_args.config_overrides:
        config.update_from_string(model_args.config_overrides)
    return PrJepaForPreTraining(config)


def check_inputs(
    model: "PrJepaForPreTraining",
    tokenizer: "PreTrainedTokenizerBase",
    data_args: DataTrainingArguments,
    training_args: PrJepaTrainingArguments,
) -> None:
    """Everything that would otherwise fail hours into the run (the collator, built before the data, checks the mask
    and pad tokens)."""
    model.config.check_tokenizer(tokenizer)
    # Packing frames every chunk with the tokenizer's [CLS] … [SEP]: without them the whole corpus would be tokenized
    # before the first failure.
    missing = [name for name in ("cls", "sep") if getattr(tokenizer, f"{name}_token_id", None) is None]
    if missing and not data_args.line_by_line:
        raise ValueError(
            f"The tokenizer ({type(tokenizer).__name__}) has no {' or '.join(f'{name} token' for name in missing)}, "
            "which packing needs (each packed sequence is framed as [CLS] … [SEP]). Use a tokenizer that has them "
            "(e.g. bert-base-uncased), add them with tokenizer.add_special_tokens and save it, or pass --line_by_line."
        )
    if data_args.max_seq_length > model.config.max_position_embeddings:
        raise ValueError(
            f"--max_seq_length {data_args.max_seq_length} exceeds the model's max_position_embeddings "
            f"({model.config.max_position_embeddings}); lower --max_seq_length or build a model with more positions."
        )
    check_counts(
        per_device_train_batch_size=training_args.per_device_train_batch_size,
        per_device_eval_batch_size=training_args.per_device_eval_batch_size,
        gradient_accumulation_steps=training_args.gradient_accumulation_steps,
    )
    if data_args.streaming and training_args.do_train and training_args.max_steps <= 0:
        raise ValueError("--streaming data has no known length: set --max_steps.")
    if data_args.streaming and training_args.world_size > 1:
        # accelerate has process 0 read the stream and concatenate every process's batch, which needs equal widths
        # that the hybrid collator's block indices do not have; and masks drawn for process 0 would repeat the
        # (seed, epoch, batch, rank) scheme on no other rank.
        raise ValueError(
            f"--streaming is not supported with {training_args.world_size} processes: drop --streaming (the data is "
            "then tokenized once and each process reads its own share), or train in one process."
        )
    if training_args.torch_compile:
        raise ValueError(
            "--torch_compile is not supported for PrJEPA pretraining: block sizes and padded lengths change every "
            "batch, so the compiled graph would be rebuilt again and again. Train without --torch_compile."
        )


def check_training_rows(
    train_dataset: "datasets.Dataset | datasets.IterableDataset",
    tokenizer: "PreTrainedTokenizerBase",
    config: PrJepaConfig,
    seed: int,
    sample_size: int = 512,
) -> None:
    """Collates the first `sample_size` training sequences as training will: no maskable token in any of them is an
    error (nothing to learn); a hybrid run whose sequences mostly get no JEPA target block (too short for one) warns
    with the fraction, since it would train as MLM-only on those rows."""
    from .collator import DataCollatorForPrJepa

    rows = list(islice(train_dataset, sample_size))  # a streamed dataset yields its first rows the same way
    if not rows:
        raise ValueError(
            "The training data holds no sequence after tokenization: check the files and --text_column_name."
        )
    batch = DataCollatorForPrJepa(tokenizer, config, seed=seed)(rows)
    if not (batch["labels"] != -100).any():
        raise ValueError(
            f"The first {len(rows)} training sequences hold no maskable token (only special tokens such as "
            f"{tokenizer.cls_token} and {tokenizer.sep_token}): there is nothing to learn. Check the data files and "
            "--text_column_name."
        )
    if config.objective == "hybrid":
        without_blocks = (batch["target_mask"].sum(dim=(1, 2)) == 0).float().mean().item()
        if without_blocks > 0.5:
            logger.warning(
                f"{without_blocks:.0%} of the first {len(rows)} training sequences get no JEPA target block (too few "
                f"content tokens for one beside the config's min_context_tokens={config.min_context_tokens} context "
                "tokens): on them the hybrid objective trains as MLM-only. Use longer texts, pack them (drop "
                "--line_by_line), or leave short rows the context they need: smaller target blocks "
                "(target_block_scale) or fewer context tokens (min_context_tokens), through --config_overrides."
            )


def log_budget(training_args: PrJepaTrainingArguments, data_args: DataTrainingArguments, steps: int) -> None:
    batch = training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps
    batch *= training_args.world_size
    tokens_per_step = batch * data_args.max_seq_length
    logger.info(
        f"Effective batch size {batch} sequences ({training_args.per_device_train_batch_size} per device × "
        f"{training_args.gradient_accumulation_steps} accumulation × {training_args.world_size} processes); "
        f"up to {tokens_per_step:,} tokens per step; {steps:,} steps, up to {steps * tokens_per_step:,} "
        "tokens planned."
    )


def validation_split_fix(data_args: DataTrainingArguments) -> str:
    """How to get the validation split --do_eval needs, from the options that can give one here: a streamed dataset
    is never split, and a validation file does not go with a Hub dataset."""
    if data_args.train_file is not None and data_args.streaming:
        return (
            "pass --validation_file (a streamed dataset is not split, so --validation_split_percentage cannot hold "
            "out part of it)"
        )
    if data_args.train_file is not None:
        return (
            "pass --validation_file, or a --validation_split_percentage above 0 to hold out part of the training data"
        )
    if data_args.streaming:
        return (
            f"{data_args.dataset_name} has no validation split and a streamed dataset is not split, so drop "
            "--streaming to hold out --validation_split_percentage of the training data"
        )
    return f"{data_args.dataset_name} has no validation split, so pass a --validation_split_percentage above 0"


def validation_source(data_args: DataTrainingArguments, validation: "datasets.Dataset") -> str:
    """Where the validation texts came from, and the option that chose them."""
    if data_args.validation_file is not None:
        return f"--validation_file {data_args.validation_file}"
    names = ", ".join(dataset_names(data_args))
    if str(validation.split) == "validation":
        return f"the validation split of {names}"
    return (
        f"the first {data_args.validation_split_percentage}% of {names}, held out by --validation_split_percentage; "
        "a larger percentage holds out more"
    )


def dataset_names(data_args: DataTrainingArguments) -> list[str]:
    if data_args.dataset_name is not None:
        return [data_args.dataset_name]
    return [path for path in (data_args.train_file, data_args.validation_file) if path is not None]


def restart_advice(training_args: PrJepaTrainingArguments, argv: list[str] | None) -> str:
    """What to run after a non-finite loss: a new run from the last finite checkpoint at a tenth of the learning
    rate."""
    checkpoint = last_finite_checkpoint(training_args.output_dir)
    if checkpoint is None:
        return "No checkpoint was saved before it: start again with a lower --learning_rate."
    argv = sys.argv[1:] if argv is None else argv
    learning_rate = training_args.learning_rate / 10
    output_dir = f"{os.path.normpath(training_args.output_dir)}-from-{os.path.basename(checkpoint)}"
    if len(argv) == 1 and argv[0].endswith(ARGUMENTS_FILE_SUFFIXES):
        return (
            f"{checkpoint} is the last checkpoint with finite weights; to continue from its weights at a tenth of the "
            f"learning rate (a new run: fresh optimizer and schedule), copy {argv[0]}, set model_name_or_path: "
            f"{checkpoint}, learning_rate: {learning_rate:g} and output_dir: {output_dir} in the copy, remove "
            f"{', '.join(option.lstrip('-') for option in NEW_MODEL_OPTIONS)} from it, and run run_pretrain.py with it."
        )
    command = restart_command(argv, option_names(ARGUMENT_CLASSES), checkpoint, learning_rate, output_dir)
    return (
        f"{checkpoint} is the last checkpoint with finite weights; to continue from its weights at a tenth of the "
        f"learning rate (a new run: fresh optimizer and schedule), run: {shlex.join(command)}"
    )


def main(argv: list[str] | None = None) -> "PrJepaTrainer | None":
    """Pretrains as the arguments say; returns the trainer, or None when the output directory already holds the
    finished run asked for and neither --do_eval nor --push_to_hub asks for anything else (those use its final
    model). The output directory is locked against other processes meanwhile (`folder_lock`)."""
    held_by_caller = held_folders()
    try:
        return pretrain(argv)
    finally:
        release_folders(keep=held_by_caller)


def pretrain(argv: list[str] | None) -> "PrJepaTrainer | None":
    model_args, data_args, training_args = parse_arguments(argv)
    existed = os.path.isdir(training_args.output_dir)
    if training_args.process_index == 0:  # the one process that writes the folder's files
        hold_folder(training_args.output_dir)
    import datasets
    from transformers import TrainerState

    from .collator import DataCollatorForPrJepa
    from .trainer import PrJepaTrainer, check_training_options

    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    if training_args.should_log:  # the main process logs at INFO by default, as in run_mlm.py
        transformers.utils.logging.set_verbosity_info()
    log_level = training_args.get_process_log_level()
    logger.setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    datasets.utils.logging.disable_propagation()  # its own handler prints each line; the root's would print it again
    transformers.utils.logging.set_verbosity(log_level)
    logger.info(f"Process {training_args.process_index} of {training_args.world_size}, device {training_args.device}")
    check_launch(training_args)
    warn_emulated_bf16(training_args)
    check_text_sources(
        data_args.train_file,
        data_args.validation_file,
        data_args.dataset_name,
        data_args.dataset_config_name,
        training=training_args.do_train,
    )
    # The options' own contradictions first: no use reaching the Hub for a command that cannot run.
    check_training_options(training_args)
    check_folders(output_dir=training_args.output_dir, cache_dir=model_args.cache_dir)
    if not (training_args.do_train or training_args.do_eval):
        raise ValueError("Nothing to do: pass --do_train to pretrain, --do_eval to evaluate, or both.")
    if training_args.do_train and training_args.max_steps <= 0 and training_args.num_train_epochs <= 0:
        # transformers would train 0 steps and write the initialisation as a finished run, model card included.
        raise ValueError(
            f"--num_train_epochs {training_args.num_train_epochs:g} without --max_steps plans no optimizer step: give "
            "--num_train_epochs above 0 or --max_steps above 0 (or drop --do_train to evaluate only)."
        )
    if training_args.resume_from_checkpoint is not None and not training_args.do_train:
        raise ValueError(
            f"--resume_from_checkpoint continues training and needs --do_train; to evaluate "
            f"{training_args.resume_from_checkpoint} pass --model_name_or_path {training_args.resume_from_checkpoint} "
            "--do_eval instead."
        )
    if training_args.push_to_hub and not training_args.do_train:
        raise ValueError(
            "--push_to_hub without --do_train would replace the repository's model and card with an untrained run's; "
            "push a trained run (add --do_train), or upload an existing checkpoint with huggingface_hub."
        )
    tokenizer_option, tokenizer_source = model_args.tokenizer_source()
    check_hub_reachable(
        [
            ("--dataset_name", data_args.dataset_name),
            ("--model_name_or_path", model_args.model_name_or_path),
            ("--config_name", model_args.config_name),
            # The checkpoint's own tokenizer is checked with it.
            *([(tokenizer_option, tokenizer_source)] if tokenizer_option == "--tokenizer_name" else []),
        ]
    )
    if training_args.push_to_hub:
        check_push_access(training_args.hub_token)
    replacing_evaluation = check_evaluated_model(model_args, training_args)
    set_seed(training_args.seed)
    tokenizer = load_tokenizer(model_args)
    model = build_model(model_args, tokenizer)
    check_inputs(model, tokenizer, data_args, training_args)
    # Built before the data is read, so that its checks of the tokenizer (mask and pad tokens) come first.
    collator = DataCollatorForPrJepa(tokenizer, model.config, seed=training_args.seed)
    finished = training_args.do_train and finished_training(training_args)
    # What continuing a run must share with it; an evaluation alone continues nothing (nor reads the training text),
    # and a finished run evaluated or pushed is not continued: its training files may have changed since.
    settings = (
        current_settings(model, tokenizer, data_args, training_args, model_args.cache_dir, training_data=not finished)
        if training_args.do_train
        else None
    )
    resume_from_checkpoint = None
    if finished:
        output_dir = training_args.output_dir
        if training_args.resume_from_checkpoint is not None:
            raise ValueError(
                f"{output_dir} holds a finished run that reached the requested length, so --resume_from_checkpoint "
                f"{training_args.resume_from_checkpoint} would train over its final model. Resume into another "
                "--output_dir, or pass --overwrite_output_dir to train this one again."
            )
        recorded = os.path.join(output_dir, RUN_SETTINGS)
        check_settings(recorded if os.path.exists(recorded) else None, settings, output_dir)
        asked = [option for option in ("do_eval", "push_to_hub") if getattr(training_args, option)]
        logger.info(
            f"{output_dir} holds a finished run that reached the requested length: nothing to train"
            + (f"; --{' and --'.join(asked)} will take its final model." if asked else ", nothing written.")
            + " Pass --overwrite_output_dir to train it again, or ask for more steps to continue it."
        )
        if not asked:
            return None
    # A run stopped before its first checkpoint starts again, instead of refusing its own output directory.
    restarting = (
        training_args.do_train
        and not finished
        and not training_args.overwrite_output_dir
        and training_args.resume_from_checkpoint is None
        and stopped_before_first_checkpoint(training_args.output_dir, settings, first_save_step(training_args))
    )
    if not finished and not restarting:
        resume_from_checkpoint = detect_checkpoint(training_args)
    completing = False
    if resume_from_checkpoint is not None:
        at_end, recorded = reached_its_end(resume_from_checkpoint), recorded_settings_path(resume_from_checkpoint)
        continuing = at_end and length_changed(recorded, settings)
        # Its last checkpoint saved, a run stopped before writing its final model: resuming would train one step past
        # the end (transformers takes a step before it compares the step count with the length).
        completing = at_end and not continuing
        check_settings(recorded, settings, resume_from_checkpoint, continuing)
        if completing and not is_own_checkpoint(resume_from_checkpoint, training_args.output_dir):
            # Its final model is its own run's to write; here it would be a folder with no checkpoint to continue.
            last_step = checkpoint_state(resume_from_checkpoint)["global_step"]
            raise ValueError(
                f"{resume_from_checkpoint} holds its run's last step, {last_step}: resumed into "
                f"{training_args.output_dir} for the same length it would train nothing. Ask for more "
                "--max_steps (or --num_train_epochs) to continue it there, or use its weights as they are "
                "(--model_name_or_path, for a new run or an evaluation)."
            )
        check_continued_length(resume_from_checkpoint, training_args.max_steps)
        if data_args.streaming and not training_args.ignore_data_skip:
            check_streamed_resume(resume_from_checkpoint)
        if completing:
            logger.warning(
                f"{resume_from_checkpoint} holds the run's last step: the run stopped after saving it, before writing "
                "its final model. Writing that now from the checkpoint, without training further."
            )
        elif continuing:
            # transformers rebuilds the schedule for the new length and keeps only the step count from the old one.
            logger.warning(
                f"Continuing {resume_from_checkpoint}, a run that reached its end, for more steps: the learning-rate "
                f"schedule ({SchedulerType(training_args.lr_scheduler_type).value}) and the EMA momentum are those "
                "of a run planned for the new length from the start, so a decayed learning rate rises again after "
                "the first new step (which runs at the finished schedule's last rate). For a run that decays once, "
                "train it at the full length from the start."
            )

    # Evaluating or pushing a finished run's final model reads no training text, an evaluation alone neither.
    splits = [
        split
        for split, read in (("train", training_args.do_train and not finished), ("validation", training_args.do_eval))
        if read
    ]
    tokenized = datasets.DatasetDict()
    if splits:
        raw = load_raw_datasets(data_args, model_args.cache_dir, splits)
        if training_args.do_eval and "validation" not in raw:
            raise ValueError(
                f"--do_eval needs a validation split: {validation_split_fix(data_args)}; or drop --do_eval."
            )
        column = text_column(raw, data_args.text_column_name)
        with training_args.main_process_first(desc="dropping empty lines"):  # the other processes read its cache
            raw = drop_empty_lines(raw, column, data_args)
        tokenized = tokenize(raw, tokenizer, column, data_args, training_args)
    train_dataset = tokenized.get("train")
    eval_dataset = tokenized.get("validation")
    if train_dataset is not None and data_args.max_train_samples is not None:
        train_dataset = _truncate(train_dataset, data_args.max_train_samples, data_args.streaming)
    if train_dataset is not None:
        check_holds_text("train", train_dataset, data_args)
        check_training_rows(train_dataset, tokenizer, model.config, training_args.seed)
    if eval_dataset is not None:
        check_holds_text("validation", eval_dataset, data_args)
    if eval_dataset is not None and data_args.max_eval_samples is not None:
        eval_dataset = _truncate(eval_dataset, data_args.max_eval_samples, data_args.streaming)

    trainer = PrJepaTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        data_collator=collator,
    )
    card_kwargs = dict(
        license=model_args.license,
        dataset=dataset_names(data_args),
        dataset_args=data_args.dataset_config_name,
        max_seq_length=data_args.max_seq_length,
        max_train_samples=data_args.max_train_samples,
    )
    if finished or completing:
        source = resume_from_checkpoint if completing else training_args.output_dir
        trainer._load_from_checkpoint(source)  # the model and state the final save, evaluation and card describe
        trainer.state = TrainerState.load_from_json(os.path.join(source, "trainer_state.json"))
    if completing:
        # This call trained nothing; the run's time is the stopped calls' (up to their last log).
        write_final_model(trainer, {"epoch": trainer.state.epoch, "train_runtime": 0.0}, train_dataset, data_args)
    elif training_args.do_train and not finished:
        planned = training_args.max_steps if training_args.max_steps > 0 else trainer.planned_steps()
        if training_args.snapshot_steps:
            check_snapshot_steps(training_args.snapshot_steps, planned)
        with training_args.main_process_first(desc="preparing the output directory", local=False):
            if training_args.process_index == 0:  # only once the data and options passed every check
                os.makedirs(training_args.output_dir, exist_ok=True)
                hold_folder(training_args.output_dir)  # made now, if it was not there at the start
                if not existed and os.listdir(training_args.output_dir):
                    # Decided on an absent folder (nothing to resume): another run wrote there meanwhile.
                    raise ValueError(
                        f"--output_dir {training_args.output_dir} did not exist when this run started, and another "
                        f"run has written into it since ({first_names(sorted(os.listdir(training_args.output_dir)))})"
                        ": rerun the command to resume that run, or choose another --output_dir."
                    )
                if training_args.overwrite_output_dir and (
                    resume_from_checkpoint is None
                    or not is_own_checkpoint(resume_from_checkpoint, training_args.output_dir)
                ):
                    remove_previous_run(training_args.output_dir, keep=resume_from_checkpoint)
                elif restarting:
                    reason = "This run stopped before its first checkpoint was complete, so it starts again"
                    remove_previous_run(training_args.output_dir, reason=reason)
                record_settings(training_args.output_dir, settings)
        log_budget(training_args, data_args, planned)
        try:
            train_result = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
        except FloatingPointError as error:
            raise FloatingPointError(f"{error} {restart_advice(training_args, argv)}") from error
        if trainer.preemption.received is not None and trainer.state.global_step < trainer.state.max_steps:
            # Before anything final is written: the output directory keeps the checkpoint just saved as its last. (A
            # signal after the last step stopped nothing: the finished run is saved as usual, in a few seconds.)
            signal_name = trainer.preemption.received.name
            dropped = [
                option
                for option, given in (
                    ("--overwrite_output_dir", training_args.overwrite_output_dir),
                    ("--resume_from_checkpoint", training_args.resume_from_checkpoint is not None),
                )
                if given
            ]
            rerun = "the same command" + (
                f" without {' and '.join(dropped)} (as given, it would start again from an earlier step)"
                if dropped
                else ""
            )
            if training_args.process_index == 0:  # said once, not by every process
                logger.warning(
                    f"{signal_name} received: saved checkpoint-{trainer.state.global_step} in "
                    f"{training_args.output_dir} and stopped. Rerun {rerun} to resume exactly."
                )
            raise SystemExit(128 + trainer.preemption.received.value)
        write_final_model(trainer, train_result.metrics, train_dataset, data_args)
    if training_args.do_eval:
        if replacing_evaluation and training_args.process_index == 0:  # the one process that writes results
            remove_previous_run(training_args.output_dir, file_names=EVALUATION_RESULTS)
        metrics = trainer.evaluate()
        if not data_args.streaming:
            metrics["eval_samples"] = len(eval_dataset)
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
    if training_args.push_to_hub:
        # A finished run pushed without training: its card's probe scores describe these weights.
        trainer.push_to_hub(**card_kwargs, keep_eval_results=finished)
    elif training_args.do_train and not finished:  # the card describes the training; evaluating keeps the card
        trainer.create_model_card(**card_kwargs)
    return trainer


def write_final_model(
    trainer: "PrJepaTrainer",
    metrics: dict[str, float],
    train_dataset: "datasets.Dataset | datasets.IterableDataset",
    data_args: DataTrainingArguments,
) -> None:
    """The end of training: the final model, the training metrics (train_results.json, which marks the run finished)
    and the trainer state, in --output_dir."""
    trainer.save_model()
    if "train_seconds" not in metrics:
        metrics["train_seconds"] = trainer._training_seconds(metrics["train_runtime"])
    if not data_args.streaming:  # a stream has no length
        metrics["train_samples"] = len(train_dataset)
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()


def _truncate(dataset, limit: int, streaming: bool):
    return dataset.take(limit) if streaming else dataset.select(range(min(limit, len(dataset))))


if __name__ == "__main__":
    main()
