"""What an exact resume needs: a complete, readable checkpoint, and the settings the run was started with.

A checkpoint is complete when it holds the weights, the optimizer, the schedule, the trainer state and the random
state of each process that trained (the collator's masks come from its own seeded stream, but dropout and sampling
from these). The run's settings (model configuration, the training arguments that shape the trajectory, the data
options and what identifies the training text: each local file's size and sha256, or a Hub dataset's commit) are
recorded in the output directory when training starts and in every checkpoint; continuing with other settings would
mix two runs, so it is refused, naming each difference.
"""

import json
import logging
import os
import re
import zipfile
from argparse import ArgumentTypeError
from collections.abc import Collection
from typing import Any

from safetensors import safe_open
from transformers.hf_argparser import string_to_bool
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .data_sources import data_file_builder
from .utils import first_names, option_name, write_atomically

logger = logging.getLogger(__name__)

RESUME_FILES = ("optimizer.pt", "scheduler.pt", "trainer_state.json")
WEIGHTS_FILES = ("model.safetensors", "model.safetensors.index.json")
RUN_SETTINGS = "run_settings.json"
# Training arguments that change what a step computes.
TRAJECTORY_ARGUMENTS = (
    "learning_rate",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "max_grad_norm",
    "optim",
    "optim_args",
    "lr_scheduler_type",
    "lr_scheduler_kwargs",
    "warmup_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "seed",
    "data_seed",
    "bf16",
    "fp16",
    "world_size",
    "average_tokens_across_devices",
    # Which sequences make each batch: a dropped last batch and the sampler change every step after them.
    "dataloader_drop_last",
    "train_sampling_strategy",
    # Noise added to the input embeddings of every training step.
    "neftune_noise_alpha",
    # How accelerate splits, evens out and samples the batches across processes.
    "accelerator_config",
)
# The run's length: it sets the schedule and the EMA momentum of every step, so it may change only to continue a run
# that reached its end.
LENGTH_ARGUMENTS = ("max_steps", "num_train_epochs")
# Config entries that describe the file, not the model.
_CONFIG_BOOKKEEPING = ("transformers_version", "_name_or_path", "architectures", "auto_map", "dtype", "torch_dtype")
# Config entries that change no pretraining step (how PrJepaForMaskedLM shapes its logits): runs recorded with another
# value, as every run was before its default changed, continue.
_CONFIG_NOT_TRAINED = ("sparse_prediction",)
# The accelerator options that decide which sequences each process gets (the others change speed alone).
ACCELERATOR_BATCH_FIELDS = ("split_batches", "dispatch_batches", "even_batches", "use_seedable_sampler")


def checkpoints_by_step(output_dir: str) -> list[str]:
    """The `checkpoint-N` folders in `output_dir`, newest first."""
    pattern = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")
    found = [(int(match.group(1)), name) for name in os.listdir(output_dir) if (match := pattern.match(name))]
    return [os.path.join(output_dir, name) for _, name in sorted(found, reverse=True)]


def rng_state_files(checkpoint: str) -> list[str]:
    """The random states `Trainer` saves for the processes that trained (dropout and sampling resume from them): one
    per process of the run's recorded world size; for a checkpoint saved before settings were recorded, any one."""
    settings = recorded_settings_path(checkpoint)
    if settings is None:
        found = [name for name in os.listdir(checkpoint) if name.startswith("rng_state")]
        return found or ["rng_state.pth"]
    with open(settings) as file:
        world_size = json.load(file)["training"]["world_size"]
    return ["rng_state.pth"] if world_size == 1 else [f"rng_state_{rank}.pth" for rank in range(world_size)]


def checkpoint_problem(checkpoint: str) -> str | None:
    """Why `checkpoint` cannot be resumed exactly (missing or damaged files), or None."""
    # Its own copy of the run's settings first: they say which random states there must be.
    if damaged := _damaged_json(checkpoint, RUN_SETTINGS):
        return damaged
    missing = [name for name in RESUME_FILES if not os.path.exists(os.path.join(checkpoint, name))]
    if not any(os.path.exists(os.path.join(checkpoint, name)) for name in WEIGHTS_FILES):
        missing.insert(0, WEIGHTS_FILES[0])
    random_states = rng_state_files(checkpoint)
    missing += [name for name in random_states if not os.path.exists(os.path.join(checkpoint, name))]
    if missing:
        return f"missing {', '.join(missing)}"
    # torch.save writes zip archives; another process's random state is written without waiting for the trainer state.
    for name in ("optimizer.pt", "scheduler.pt", *random_states):
        path = os.path.join(checkpoint, name)
        try:
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip()
        except (zipfile.BadZipFile, OSError) as error:
            return f"{name} is damaged ({error})"
        if damaged is not None:
            return f"{name} is damaged (bad CRC in {damaged})"
    weights = os.path.join(checkpoint, WEIGHTS_FILES[0])
    if os.path.exists(weights):
        try:
            with safe_open(weights, framework="pt"):
                pass
        except Exception as error:  # safetensors raises its own error types for a truncated or corrupt header
            return f"{WEIGHTS_FILES[0]} is damaged ({error})"
    return _damaged_json(checkpoint, "trainer_state.json") or _damaged_json(checkpoint, "config.json")


def _damaged_json(checkpoint: str, name: str) -> str | None:
    """Why `name` in `checkpoint` is unreadable JSON, or None (also when it is absent)."""
    try:
        with open(os.path.join(checkpoint, name)) as file:
            json.load(file)
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return f"{name} is damaged ({error})"
    return None


def last_complete_checkpoint(output_dir: str) -> str | None:
    """The newest checkpoint an exact resume can start from; newer incomplete ones (a process killed while saving)
    are skipped with a warning. None when `output_dir` holds no checkpoint at all; an error when none is complete."""
    checkpoints = checkpoints_by_step(output_dir)
    for checkpoint in checkpoints:
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            return checkpoint
        logger.warning(f"Skipping {checkpoint} ({problem}: left by a process stopped while saving?).")
    if checkpoints:
        raise ValueError(
            f"No checkpoint in {output_dir} is complete ({', '.join(map(os.path.basename, checkpoints))}); an exact "
            "resume is impossible. Pass --overwrite_output_dir to train from the start."
        )
    return None


def check_resume_checkpoint(checkpoint: str) -> None:
    """An explicit `--resume_from_checkpoint` must be a complete checkpoint folder; the error names the previous
    complete one."""
    if not os.path.isdir(checkpoint):
        # `true` is HF's "resume the latest" idiom: here, leaving the option out does that.
        raise ValueError(
            f"--resume_from_checkpoint {checkpoint} is not a folder. Give a checkpoint-N folder, or leave the option "
            "out to resume the last complete checkpoint in --output_dir."
        )
    problem = checkpoint_problem(checkpoint)
    if problem is None:
        return
    parent = os.path.dirname(os.path.abspath(checkpoint))  # a bare `checkpoint-N` lies in the working directory
    earlier = [
        candidate
        for candidate in checkpoints_by_step(parent)
        if checkpoint_step(candidate) < checkpoint_step(checkpoint) and checkpoint_problem(candidate) is None
    ]
    fallback = f"resume from {earlier[0]}, the last complete checkpoint before it" if earlier else "start again"
    raise ValueError(
        f"Cannot resume exactly from {checkpoint}: {problem}. Pass --resume_from_checkpoint to {fallback}."
    )


def checkpoint_step(checkpoint: str) -> int:
    """The step a `checkpoint-N` folder's name gives (-1 for another name), read without opening it."""
    match = re.search(r"(\d+)$", os.path.normpath(checkpoint))
    return int(match.group(1)) if match else -1


def run_settings(config: dict[str, Any], training: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """What a resumed run must share with the run that saved the checkpoint, as JSON holds it."""
    settings = {
        "model": {
            key: value for key, value in config.items() if key not in (*_CONFIG_BOOKKEEPING, *_CONFIG_NOT_TRAINED)
        },
        "training": {name: training.get(name) for name in (*TRAJECTORY_ARGUMENTS, *LENGTH_ARGUMENTS)},
        "data": data,
    }
    accelerator = settings["training"]["accelerator_config"]
    if isinstance(accelerator, dict):
        settings["training"]["accelerator_config"] = {
            name: value for name, value in accelerator.items() if name in ACCELERATOR_BATCH_FIELDS
        }
    return json.loads(json.dumps(settings))  # tuples and the like compare as the file will hold them


# Config fields added after runs were recorded, and the value each such run had (the code before them behaved so).
MODEL_FIELDS_BEFORE_THEY_EXISTED = {
    "sinusoidal_layout": lambda model: "halves",
    "mlm_head_layer_norm_eps": lambda model: model.get("layer_norm_eps"),
}


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """`section.field: recorded → current` for every recorded field that differs (the training files in words,
    `files_difference`). A config field the record lacks compares as the value every run had before it existed
    (`MODEL_FIELDS_BEFORE_THEY_EXISTED`); any other field it lacks was added to the settings after it was written, so it
    cannot be compared."""
    found = []
    for section in current:
        before, now = dict(recorded.get(section, {})), current[section]
        if section == "model" and before:
            for name, value_before in MODEL_FIELDS_BEFORE_THEY_EXISTED.items():
                before.setdefault(name, value_before(before))
            for name in _CONFIG_NOT_TRAINED:
                before.pop(name, None)
        if section == "training" and all((side.get("max_steps") or 0) > 0 for side in (before, now)):
            before.pop("num_train_epochs", None)  # transformers ignores it when max_steps is set
        if section == "data" and same_local_files(before, now):
            # The same bytes read in the same order are the same training text, however --train_file spells them.
            before.pop("train_file", None)
            before.pop("train_files", None)
        for name in sorted(set(before) & set(now)):
            if before[name] == now[name]:
                continue
            if (section, name) == ("data", "train_files"):
                found.append(f"data.train_files: {files_difference(before[name], now[name])}")
            elif isinstance(before[name], dict) and isinstance(now[name], dict):
                # accelerator_config's keys on one side only came or went with a library version: they cannot be
                # compared. Any other dict's (lr_scheduler_kwargs) were set by the user, so a key on one side differs.
                keys = (
                    before[name].keys() & now[name].keys()
                    if name == "accelerator_config"
                    else before[name].keys() | now[name].keys()
                )
                found += [
                    f"{section}.{name}.{key}: {_entry(before[name], key)} in the checkpoint's run, "
                    f"{_entry(now[name], key)} now"
                    for key in sorted(keys)
                    if key not in before[name] or key not in now[name] or before[name][key] != now[name][key]
                ]
            else:
                found.append(f"{section}.{name}: {before[name]!r} in the checkpoint's run, {now[name]!r} now")
    return found


def same_local_files(before: dict[str, Any], now: dict[str, Any]) -> bool:
    """Whether two runs' data settings name local training files of the same sizes and digests, in the same order,
    read by the same `datasets` builder (the file type), whatever their paths. Files given by URL are recorded by no
    digest, so they are known by their URL alone."""
    files_before, files_now = before.get("train_files"), now.get("train_files")
    return (
        bool(files_before)
        and bool(files_now)
        and list(files_before.values()) == list(files_now.values())
        and data_file_builder(before.get("train_file") or "") == data_file_builder(now.get("train_file") or "")
    )


def _entry(mapping: dict[str, Any], key: str) -> str:
    return repr(mapping[key]) if key in mapping else "not set"


def files_difference(before: dict[str, dict] | None, now: dict[str, dict] | None) -> str:
    """How the training files (`train_files`: path → size and sha256; None for a Hub dataset) differ from those the
    checkpoint's run read: which changed, appeared or disappeared."""
    if before is None or now is None:
        return f"the checkpoint's run read {_files_source(before)}, this one {_files_source(now)}"

    changed = sorted(path for path in before.keys() & now.keys() if before[path] != now[path])
    appeared, disappeared = sorted(now.keys() - before.keys()), sorted(before.keys() - now.keys())
    sizes = [
        f"{path} ({before[path]['bytes']:,} bytes then, {now[path]['bytes']:,} now)"
        if before[path]["bytes"] != now[path]["bytes"]
        else f"{path} (same size, other content)"
        for path in changed
    ]
    parts = [
        f"{what} {first_names(paths)}"
        for what, paths in (("changed", sizes), ("appeared", appeared), ("disappeared", disappeared))
        if paths
    ]
    return f"since the checkpoint's run started, {'; '.join(parts)}"


def _files_source(files: dict[str, dict] | None) -> str:
    return "a Hub dataset" if files is None else f"{len(files)} local files"


def recorded_settings_path(checkpoint: str) -> str | None:
    """The settings file of the run that saved `checkpoint`: the checkpoint's own copy, else its run's (the folder
    holding it); None for a checkpoint saved before settings were recorded."""
    run = os.path.dirname(os.path.normpath(checkpoint))
    for path in (os.path.join(checkpoint, RUN_SETTINGS), os.path.join(run, RUN_SETTINGS)):
        if os.path.exists(path):
            return path
    return None


def check_settings(recorded_path: str | None, settings: dict[str, Any], source: str, finished: bool = False) -> None:
    """Refuses to continue `source` (a checkpoint, or a finished run's folder) with other `settings` than it recorded,
    naming each difference; the run's length may grow when `finished` (continuing a run that reached its end)."""
    if recorded_path is None:
        logger.warning(f"{source} records no run settings (saved before they were recorded): they are not checked.")
        return
    with open(recorded_path) as file:
        recorded = json.load(file)
    found = differences(recorded, settings)
    if "train_files" in settings.get("data", {}) and "train_files" not in recorded.get("data", {}):
        logger.warning(
            f"{recorded_path} was written before run settings recorded the training files' contents: the training "
            f"data of {source} cannot be checked, so files edited, added or removed since would go unnoticed."
        )
    if finished:
        found = [entry for entry in found if not is_length_difference(entry)]
    if found:
        files = any(entry.startswith("data.train_files:") for entry in found)
        revision = recorded.get("data", {}).get("train_dataset_revision")
        # Continued from local files (no revision now), the run cannot be pinned to the commit it read.
        pinnable = revision is not None and settings.get("data", {}).get("train_dataset_revision") is not None
        moved = pinnable and any(entry.startswith("data.train_dataset_revision:") for entry in found)
        raise ValueError(
            f"Continuing {source} with other settings than its run was started with would mix two runs: "
            f"{'; '.join(found)}. Continue with the recorded settings ({recorded_path})"
            f"{', the training files as they were' if files else ''}"
            f"{f', the dataset at the commit it read (--dataset_revision {revision})' if moved else ''}, or start a "
            "new run: pass --overwrite_output_dir or another --output_dir (and no --resume_from_checkpoint)."
        )


def is_length_difference(entry: str) -> bool:
    """Whether a `differences` entry is one of the run's length (`LENGTH_ARGUMENTS`)."""
    return entry.split(":")[0] in {f"training.{name}" for name in LENGTH_ARGUMENTS}


def length_changed(recorded_path: str | None, settings: dict[str, Any]) -> bool:
    """Whether `settings` ask for another run length than the run recorded at `recorded_path` (a checkpoint saved
    before settings were recorded: taken as changed, since its length cannot be compared)."""
    if recorded_path is None:
        return True
    with open(recorded_path) as file:
        return any(map(is_length_difference, differences(json.load(file), settings)))


def checkpoint_state(checkpoint: str) -> dict[str, Any]:
    """The trainer state `checkpoint` saved."""
    with open(os.path.join(checkpoint, "trainer_state.json")) as file:
        return json.load(file)


def reached_its_end(checkpoint: str) -> bool:
    """Whether the run had done all its planned steps when it saved `checkpoint`."""
    state = checkpoint_state(checkpoint)
    return state["max_steps"] > 0 and state["global_step"] >= state["max_steps"]


def check_continued_length(checkpoint: str, max_steps: int) -> None:
    """A run resumed for fewer steps than its checkpoint has done would train on past its new end."""
    done = checkpoint_state(checkpoint)["global_step"]
    if 0 < max_steps < done:
        raise ValueError(
            f"{checkpoint} has done {done} steps, more than --max_steps {max_steps}: a run cannot be cut short after "
            f"the fact. Ask for at least {done} steps, or use {checkpoint}'s weights as they are (--model_name_or_path "
            "for a new run or an evaluation)."
        )


def check_streamed_resume(checkpoint: str) -> None:
    """A streamed run resumes exactly only within its stream's first pass. transformers counts a stream, which has no
    length, as one epoch of `max_steps` steps and resumes by skipping `global_step` batches of it: a stream that ended
    before the checkpoint ends while being skipped, and the next pass restarts at its first batch, which the stopped
    run had trained already. Its checkpoint shows it: in the first pass `epoch` is `global_step / max_steps`
    (transformers' `pass + (step + 1) / steps_in_epoch`, the step counted within the pass); past a first pass of p
    steps it is at least `1 − p / max_steps` more, p being below `max_steps`."""
    state = checkpoint_state(checkpoint)
    if state["epoch"] - state["global_step"] / state["max_steps"] > 0.5 / state["max_steps"]:
        raise ValueError(
            f"Cannot resume {checkpoint} exactly: this --streaming run had read its whole stream (epoch "
            f"{state['epoch']:.3f} at step {state['global_step']} of {state['max_steps']}), and transformers resumes a "
            "stream by skipping batches of its first pass only, so the resumed run would train the batches after the "
            "stream's end again. Train without --streaming (a dataset with a length resumes exactly across passes), "
            "or pass --ignore_data_skip to continue from the checkpoint's weights, optimizer and schedule with the "
            "stream read again from its start (not the batches the stopped run would have trained)."
        )


def record_settings(folder: str, settings: dict[str, Any]) -> None:
    """Writes `settings` to `folder/run_settings.json`."""
    os.makedirs(folder, exist_ok=True)
    write_atomically(os.path.join(folder, RUN_SETTINGS), json.dumps(settings, indent=2, sort_keys=True))


def last_finite_checkpoint(output_dir: str) -> str | None:
    """The newest complete checkpoint whose weights are all finite, or None."""
    import torch  # not at the top: the checks above need no tensors
    from safetensors.torch import load_file

    for checkpoint in checkpoints_by_step(output_dir) if os.path.isdir(output_dir) else []:
        weights = os.path.join(checkpoint, WEIGHTS_FILES[0])
        if checkpoint_problem(checkpoint) is None and os.path.exists(weights):
            if all(torch.isfinite(tensor).all() for tensor in load_file(weights).values()):
                return checkpoint
    return None


# run_pretrain.py options that describe a new model, or resume another run's state: a restart from a checkpoint's
# weights drops them.
NEW_MODEL_OPTIONS = ("--preset", "--config_name", "--config_overrides", "--resume_from_checkpoint")
# And those it replaces.
_REPLACED_OPTIONS = (*NEW_MODEL_OPTIONS, "--model_name_or_path", "--learning_rate", "--output_dir")


def is_bool_value(text: str) -> bool:
    """Whether HfArgumentParser reads `text` as a bool option's value."""
    try:
        string_to_bool(text)
    except ArgumentTypeError:
        return False
    return True


def restart_command(
    argv: list[str], options: Collection[str], checkpoint: str, learning_rate: float, output_dir: str
) -> list[str]:
    """`run_pretrain.py` arguments `argv` changed to start a new run from `checkpoint`'s weights at `learning_rate`
    into `output_dir` (fresh optimizer and schedule), everything else as given. `options`: the script's options
    (`--output_dir`), which argv's abbreviations stand for."""
    kept, skip_next = [], False
    for index, argument in enumerate(argv):
        if skip_next:
            skip_next = False
            continue
        option, has_value = option_name(argument, options), "=" in argument
        if option in _REPLACED_OPTIONS:
            skip_next = not has_value
        elif option == "--overwrite_output_dir":
            # A bool option takes an optional value (`--overwrite_output_dir true`), which must go with it.
            skip_next = not has_value and index + 1 < len(argv) and is_bool_value(argv[index + 1])
        else:
            kept.append(argument)
    restart = ["--model_name_or_path", checkpoint, "--learning_rate", f"{learning_rate:g}", "--output_dir", output_dir]
    return ["python", "run_pretrain.py", *kept, *restart]
