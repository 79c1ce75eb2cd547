"""Running the experiment's stages: each runs once as its own command and records its settings, seconds and machine
beside its outputs, so that a rerun reuses what is finished and refuses what no longer matches."""

import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from ..data_sources import check_data_file
from ..launch import accelerate_launch_options, resolved_launch, starts_one_of_several
from ..snapshots import SNAPSHOT_STATE, snapshot_dir
from ..utils import EMULATED_BF16_CPU_STEP_RATIO, STOP_SIGNALS, this_machine, write_atomically
from .plan import ANALYSIS_MODULE, KEEP_FREED_MEMORY, LONG_RUN_HOURS, PROBE_MODULE, PUBLISHED, Experiment, read_json
from .presets import COMPARED_OBJECTIVES

# The small files of a finished pretraining run that its record in the results keeps (its logs, metrics and model
# card), so that the report, and a rerun's reuse, need no checkpoint: the work folder may be gone.
RUN_RECORD_FILES = ("trainer_state.json", "train_results.json", "eval_results.json", "README.md")
# The record file whose presence says a pretraining run finished.
PRETRAINING_MARKER = "train_results.json"
# In a run's record: the digests of the encoders it left, so that measuring stages never read other encoders.
WEIGHTS_RECORD = "weights.json"
# The files of an encoder's folder that decide what it computes from a text: its weights, config and tokenizer.
ENCODER_FILES = (
    "model.safetensors",
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)
# Each stage's record beside its outputs: the settings it ran with and the seconds it took.
STAGE_RECORD = "experiment_stage.json"


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

    `check` (if any) runs before the command and raises if its inputs are missing; `collect` (if any) runs after it,
    before the record is written: it brings the stage's outputs into `directory` when the command writes them elsewhere.
    The settings are recorded beside the outputs; finished outputs from other settings are never overwritten.
    """
    record = os.path.join(directory, STAGE_RECORD)
    if finished_stage(directory, marker):
        recorded = read_json(directory, STAGE_RECORD)["settings"]
        changed = ["all (none recorded)"] if recorded is None else differing_options(recorded, settings)
        if changed:
            raise ValueError(
                f"{directory} holds a finished {name} with other settings (differing: {', '.join(changed)}). Use "
                "another --run_name, or delete that folder to recompute it."
            )
        print(f"[{name}] finished earlier, reused: {directory}")
        return 0.0
    if check is not None:
        check()
    print(f"[{name}] running: {directory}")
    start = time.time()
    run_forwarding_signals(name, command, env)
    seconds = time.time() - start
    if collect is not None:
        collect()
    os.makedirs(directory, exist_ok=True)
    write_atomically(
        record, json.dumps({"settings": settings, "seconds": seconds, "machine": this_machine()}, indent=2)
    )
    return seconds


def run_forwarding_signals(name: str, command: list[str], env: dict[str, str] | None) -> None:
    """Runs `command`, passing on to it the signals that stop this process (`kill PID`, a closed terminal), and waits
    for it: a stage left running would go on writing into the folders a rerun resumes. A pretraining stage saves a
    checkpoint and stops; the experiment then stops too, naming the rerun that continues it."""
    received: list[int] = []
    processes: list[subprocess.Popen] = []

    def forward(signum: int, frame: Any) -> None:
        received.append(signum)
        for process in processes:
            process.send_signal(signum)

    # A stage that gets a signal twice, from the terminal and from here, stops as it would on one.
    previous = {number: signal.signal(number, forward) for number in STOP_SIGNALS}
    try:
        processes.append(subprocess.Popen(command, env=env))
        if received:  # caught before the stage existed
            processes[0].send_signal(received[0])
        return_code = processes[0].wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if received:
        raise SystemExit(
            f"[{name}] stopped by {signal.Signals(received[0]).name}: rerun the same command to continue (finished "
            "stages are reused, and a pretraining run resumes from its last checkpoint)."
        )
    if return_code != 0:
        raise subprocess.CalledProcessError(return_code, command)


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
    and the digests of the encoders it left (`WEIGHTS_RECORD`), which the stages measuring them are checked against."""
    from ..resume import RUN_SETTINGS  # not at the top: it loads transformers' trainer utilities, and so torch

    os.makedirs(os.path.join(record, "snapshots"), exist_ok=True)
    for name in RUN_RECORD_FILES:
        shutil.copyfile(os.path.join(checkpoint, name), os.path.join(record, name))
    # Kept too where the run wrote them: its settings, which name the commit of a Hub dataset it read.
    if os.path.exists(os.path.join(checkpoint, RUN_SETTINGS)):
        shutil.copyfile(os.path.join(checkpoint, RUN_SETTINGS), os.path.join(record, RUN_SETTINGS))
    for step in snapshot_steps:
        shutil.copyfile(
            os.path.join(snapshot_dir(checkpoint, step), SNAPSHOT_STATE),
            os.path.join(record, "snapshots", f"step-{step}.json"),
        )
    digests = encoder_digests(checkpoint, snapshot_steps)
    write_atomically(os.path.join(record, WEIGHTS_RECORD), json.dumps(digests, indent=2))


def encoder_digests(checkpoint: str, snapshot_steps: list[int]) -> dict[str, str]:
    """sha256 of each `ENCODER_FILES` file of a run's finished encoder ("final") and of each snapshot ("snapshot-N")
    that exists: the weights under the folder's name alone (all that records written before the others hold), any
    other file as `folder/file`."""
    folders = {"final": checkpoint, **{f"snapshot-{step}": snapshot_dir(checkpoint, step) for step in snapshot_steps}}
    digests = {}
    for name, folder in folders.items():
        for file_name in ENCODER_FILES:
            if os.path.exists(path := os.path.join(folder, file_name)):
                with open(path, "rb") as file:
                    digest = hashlib.file_digest(file, "sha256").hexdigest()
                digests[name if file_name == ENCODER_FILES[0] else f"{name}/{file_name}"] = digest
    return digests


def changed_encoder_files(experiment: Experiment, seed: int) -> list[str]:
    """The encoders' files in the work folder that differ from what their run's record says it left (trained again
    outside the experiment, replaced, edited, deleted or added), each with how: what a stage would measure is then not
    what the record describes."""
    changed = []
    for objective in COMPARED_OBJECTIVES:
        record = experiment.run_record(seed, objective)
        checkpoint = experiment.checkpoint(seed, objective)
        if not (os.path.exists(os.path.join(record, WEIGHTS_RECORD)) and os.path.isdir(checkpoint)):
            continue  # nothing recorded yet, or the work folder is gone and the records stand alone
        recorded = read_json(record, WEIGHTS_RECORD)
        current = encoder_digests(checkpoint, experiment.snapshot_steps(seed, objective))
        # Records written before config and tokenizer digests hold the weights' alone, which are all they can compare.
        compared = recorded.keys() | current.keys() if any("/" in name for name in recorded) else recorded.keys()
        for name in sorted(compared):
            if current.get(name) == recorded.get(name):
                continue
            folder, _, file_name = name.partition("/")
            directory = checkpoint if folder == "final" else os.path.join(checkpoint, folder)
            path = os.path.join(directory, file_name or ENCODER_FILES[0])
            if not os.path.isdir(directory):
                continue  # a snapshot not kept: the stages that need it name it as missing
            if name not in current:
                changed.append(f"{path} is gone, which its run recorded")
            elif name not in recorded:
                changed.append(f"{path} was added after its run recorded the folder")
            else:
                changed.append(f"{path} differs from what its run recorded")
    return changed


def check_run_length(experiment: Experiment, checkpoint: str) -> None:
    """A work folder holding a run of another length is not continued: run_pretrain would train that run on past its
    end (its decayed learning rate rising again) or stop it short, its snapshots the old schedule's, and the record
    would call it a run of this length."""
    from ..resume import RUN_SETTINGS  # not at the top: it loads transformers' trainer utilities, and so torch

    if not os.path.exists(os.path.join(checkpoint, RUN_SETTINGS)):
        return
    recorded, preset = read_json(checkpoint, RUN_SETTINGS)["training"], experiment.preset
    if "max_steps" not in recorded and "num_train_epochs" not in recorded:
        return  # recorded before the length was: run_pretrain's own check cannot compare it either
    if preset.max_steps > 0:
        same = recorded.get("max_steps") == preset.max_steps
        asked = f"{preset.max_steps} steps"
    else:
        same = recorded.get("max_steps", -1) <= 0 and recorded.get("num_train_epochs") == preset.num_train_epochs
        asked = f"{preset.num_train_epochs} epochs"
    if not same:
        length = (
            f"{recorded.get('max_steps')} steps"
            if recorded.get("max_steps", -1) > 0
            else f"{recorded.get('num_train_epochs')} epochs"
        )
        raise ValueError(
            f"{checkpoint} holds a run of {length}, not the {asked} this experiment trains: continuing it would not "
            "give a run of this length. Delete that folder to pretrain it anew, or use another --run_name."
        )


def started_settings_path(experiment: Experiment, seed: int, objective: str) -> str:
    """Where a pretraining stage records the settings it started its run with, beside the run's work folder (not in
    it, which belongs to run_pretrain): a rerun with other settings is refused before any stage runs, in the
    experiment's terms, rather than by run_pretrain midway."""
    return f"{experiment.checkpoint(seed, objective)}-{STAGE_RECORD}"


def start_run(experiment: Experiment, seed: int, objective: str) -> None:
    checkpoint = experiment.checkpoint(seed, objective)
    check_run_length(experiment, checkpoint)
    os.makedirs(os.path.dirname(checkpoint), exist_ok=True)
    settings = experiment.pretraining_settings(seed, objective)
    write_atomically(started_settings_path(experiment, seed, objective), json.dumps({"settings": settings}, indent=2))


def pretrain(experiment: Experiment, seed: int) -> None:
    environment = pretraining_environment(experiment.args.keep_freed_memory)
    for objective in COMPARED_OBJECTIVES:
        checkpoint, record = experiment.checkpoint(seed, objective), experiment.run_record(seed, objective)
        run_stage(
            f"pretrain {objective} seed {seed}",
            record,
            experiment.pretraining_settings(seed, objective),
            PRETRAINING_MARKER,
            experiment.pretraining_command(seed, objective),
            env=environment,
            check=lambda objective=objective: start_run(experiment, seed, objective),
            collect=lambda checkpoint=checkpoint, record=record, objective=objective: record_run(
                checkpoint, record, experiment.snapshot_steps(seed, objective)
            ),
        )


def encoders_fingerprint(experiment: Experiment, seed: int) -> str | None:
    """A digest of both pretraining runs' records (their trainer states and weight digests change with any new
    training), which every stage measuring the encoders records among its settings; None while a run is unfinished."""
    digest = hashlib.sha256()
    for objective in COMPARED_OBJECTIVES:
        record = experiment.run_record(seed, objective)
        if not os.path.exists(os.path.join(record, PRETRAINING_MARKER)):
            return None
        for name in ("trainer_state.json", WEIGHTS_RECORD):
            if os.path.exists(os.path.join(record, name)):  # records written before weight digests lack them
                with open(os.path.join(record, name), "rb") as file:
                    digest.update(file.read())
    return digest.hexdigest()


def measuring_settings(experiment: Experiment, seed: int, stage: str) -> list[str] | None:
    """A probe, curves or analysis stage's settings: its arguments, the encoders it measured and the GLUE data it
    read."""
    encoders = encoders_fingerprint(experiment, seed)
    if encoders is None:  # before the arguments: the curves' points are the steps the runs took
        return None
    data = experiment.glue_fingerprint(experiment.measured_tasks(stage))
    return [
        *experiment.measuring_arguments(seed, stage),
        "--encoders_fingerprint",
        encoders,
        "--data_fingerprint",
        data,
    ]


def unrecorded_runs(experiment: Experiment, seed: int, stage: str) -> ValueError:
    """The error of a stage that measures the encoders of runs not recorded as finished: its results could never be
    reported."""
    records = " and ".join(experiment.run_record(seed, objective) for objective in COMPARED_OBJECTIVES)
    return ValueError(
        f"The {stage} of seed {seed} measures its pretraining runs, which are not recorded as finished (no "
        f"train_results.json in {records}): add pretrain to --stages."
    )


def recorded_measuring_settings(experiment: Experiment, seed: int, stage: str) -> list[str]:
    """`measuring_settings`, which a stage that measures the encoders needs before it runs."""
    settings = measuring_settings(experiment, seed, stage)
    if settings is None:
        raise unrecorded_runs(experiment, seed, stage)
    return settings


def check_measured_runs_recorded(experiment: Experiment) -> None:
    """Before any stage runs: measuring stages asked for without pretrain need every seed's runs recorded, so that a
    missing one stops the experiment before other seeds' stages are computed or any folder is made."""
    measuring = [stage for stage in experiment.args.stages if stage in MEASURING_STAGE_MARKERS]
    if measuring and "pretrain" not in experiment.args.stages:
        for seed in range(experiment.args.seeds):
            if encoders_fingerprint(experiment, seed) is None:
                raise unrecorded_runs(experiment, seed, measuring[0])


# Each measuring stage's folder name and the file whose presence says it finished: the JSON its script writes last
# (`probing.results.write_results`).
MEASURING_STAGE_MARKERS = {"probe": "results.json", "analysis": "analysis.json", "curves": "results.json"}


class SeedStage(NamedTuple):
    """One stage of one seed: `stage` as --stages names it, `name` as messages do, the folder holding its outputs and
    record, the file whose presence says it finished, and what computes the settings it must have recorded to be
    reused (None when they depend on encoders not pretrained yet): called for finished stages only, since a measuring
    stage's read its GLUE data."""

    stage: str
    name: str
    directory: str
    marker: str
    settings: Callable[[], list[str] | None]


def seed_stages(experiment: Experiment, seed: int) -> list[SeedStage]:
    """Every stage of the seed, asked for now or not (the report reads what is on disk)."""
    plan = [
        SeedStage(
            "pretrain",
            f"pretrain {objective} seed {seed}",
            experiment.run_record(seed, objective),
            PRETRAINING_MARKER,
            lambda objective=objective: experiment.pretraining_settings(seed, objective),
        )
        for objective in COMPARED_OBJECTIVES
    ]
    for stage, marker in MEASURING_STAGE_MARKERS.items():
        plan.append(
            SeedStage(
                stage,
                f"{stage} seed {seed}",
                experiment.seed_results(seed, stage),
                marker,
                lambda stage=stage: measuring_settings(experiment, seed, stage),
            )
        )
    return plan


# Options of a stage's command that change none of its numbers: how often a pretraining run saves a checkpoint and how
# many it keeps (run_pretrain's own run settings leave them out too), so that a change of their rule leaves finished
# runs reusable; the dataset's revision, given to continue a run on the commit it read once the dataset has moved on
# (run_pretrain records that commit and refuses to continue on another); and --use_cpu, which names the kind of
# machine (a CPU running bf16 or launched processes needs it), whose precision --bf16 already records.
RESULT_NEUTRAL_OPTIONS = ("--save_steps", "--save_total_limit", "--dataset_revision", "--use_cpu")


def differing_options(recorded: list[str], current: list[str]) -> list[str]:
    """The options (`--name`) of two recorded command lines whose values differ, or that one of them lacks, except
    `RESULT_NEUTRAL_OPTIONS`; none when the two settings are the same."""

    def values_by_option(arguments: list[str]) -> dict[str, list[str]]:
        options: dict[str, list[str]] = {}
        option = "(the arguments before the first option)"  # a launcher or a script, compared as one
        for argument in map(str, arguments):
            if argument.startswith("--"):
                option = argument
                options[option] = []
            else:
                options.setdefault(option, []).append(argument)
        return options

    before, after = values_by_option(recorded), values_by_option(current)
    options = (before.keys() | after.keys()) - set(RESULT_NEUTRAL_OPTIONS)
    return sorted(option for option in options if before.get(option) != after.get(option))


def finished_stage(directory: str, marker: str) -> bool:
    return os.path.exists(os.path.join(directory, marker)) and os.path.exists(os.path.join(directory, STAGE_RECORD))


def recorded_flag(arguments: list[str], flag: str) -> str | None:
    """The value given to `flag` in a recorded command line, or None when it was not given."""
    return arguments[arguments.index(flag) + 1] if flag in arguments else None


def other_dataset_commit(record: str, recorded: list[str], current: list[str]) -> str | None:
    """The commit of a Hub dataset that a finished run read, where --dataset_revision now asks for another (None when
    it asks for none, or the run's commit is unknown): such a run is not this run, though the option is otherwise
    result-neutral (`RESULT_NEUTRAL_OPTIONS`)."""
    asked = recorded_flag(current, "--dataset_revision")
    if asked is None:
        return None
    from ..resume import RUN_SETTINGS  # not at the top: it loads transformers' trainer utilities, and so torch

    if os.path.exists(os.path.join(record, RUN_SETTINGS)):
        read = read_json(record, RUN_SETTINGS).get("data", {}).get("train_dataset_revision")
    else:  # recorded before the run's settings were kept: the commit it was pinned to, if any
        read = recorded_flag(recorded, "--dataset_revision")
    return read if read is not None and read != asked else None


def unfinished_runs_started_otherwise(experiment: Experiment, seed: int) -> list[tuple[str, list[str]]]:
    """The seed's unfinished pretraining runs whose work folder the experiment started with other settings, with the
    options that differ: run_pretrain would refuse to continue them midway, with a fix for its own command line."""
    started_otherwise = []
    for objective in COMPARED_OBJECTIVES:
        started = started_settings_path(experiment, seed, objective)
        checkpoint = experiment.checkpoint(seed, objective)
        if finished_stage(experiment.run_record(seed, objective), PRETRAINING_MARKER) or not (
            os.path.isdir(checkpoint) and os.path.exists(started)
        ):
            continue
        with open(started) as file:
            recorded = json.load(file)["settings"]
        if changed := differing_options(recorded, experiment.pretraining_settings(seed, objective)):
            started_otherwise.append((checkpoint, changed))
    return started_otherwise


def check_no_stale_stage(experiment: Experiment) -> None:
    """Before any stage runs: a finished stage whose settings differ from the current ones (other arguments, or
    encoders pretrained again since it measured them), and an unfinished pretraining run started with other settings,
    are an error listing every such stage. Every stage on disk is checked, whichever `--stages` asks for, since the
    report reads them all."""
    stale, precision_differs = [], False
    for seed in range(experiment.args.seeds):
        stale += changed_encoder_files(experiment, seed)
        for checkpoint, changed in unfinished_runs_started_otherwise(experiment, seed):
            precision_differs |= "--bf16" in changed
            differing = ", ".join(changed)
            stale.append(f"the unfinished run in {checkpoint} was started with other settings (differing: {differing})")
        pretrained_again = False  # a stale pretraining stage makes every stage measuring its encoders stale too
        for kind, name, directory, marker, current_settings in seed_stages(experiment, seed):
            if not finished_stage(directory, marker):
                continue
            recorded = read_json(directory, STAGE_RECORD)["settings"]
            settings = None if pretrained_again and kind != "pretrain" else current_settings()
            if settings is None:
                stale.append(f"{name} ({directory}) measured encoders that are to be pretrained again")
            elif recorded is None:  # a version that ran it over runs not recorded
                stale.append(f"{name} ({directory}) recorded no settings, so what it measured is unknown")
            elif changed := differing_options(recorded, settings):
                precision_differs |= "--bf16" in changed
                stale.append(f"{name} ({directory}) has other settings (differing: {', '.join(changed)})")
            elif kind == "pretrain" and (commit := other_dataset_commit(directory, recorded, settings)):
                stale.append(f"{name} ({directory}) read commit {commit} of the dataset, not --dataset_revision's")
            else:
                continue
            pretrained_again |= kind == "pretrain"
    if stale:
        raise ValueError(
            "Stages on disk do not match this run (a finished one would be reported as its result, an unfinished "
            "run continued under other settings): "
            + "; ".join(stale)
            + ". Use another --run_name for a new run; for a run of your own (never a published one, "
            f"which holds {PUBLISHED}), delete those folders, and any checkpoint named, to recompute them (and for a "
            f"pretraining stage its run's work folder, {os.path.join(experiment.work, 'seed-N', 'OBJECTIVE')}, or "
            "the run continues from its checkpoints)."
            + (
                " The pretraining precision differs: with --bf16 auto it follows this machine (bf16 where the device "
                "computes it natively); pass --bf16 true or false as the runs had to continue them."
                if precision_differs
                else ""
            )
        )


def run_probe_stage(experiment: Experiment, seed: int, stage: str, check: Callable[[], None] | None = None) -> None:
    """The probe's command for `stage` ("probe" or "curves", see `Experiment.probe_arguments`) as a stage."""
    run_stage(
        f"{stage} seed {seed}",
        experiment.seed_results(seed, stage),
        recorded_measuring_settings(experiment, seed, stage),
        MEASURING_STAGE_MARKERS[stage],
        [sys.executable, "-m", PROBE_MODULE, *experiment.probe_arguments(seed, stage=stage)],
        check=check,
    )


def probe(experiment: Experiment, seed: int) -> None:
    run_probe_stage(experiment, seed, "probe")


def check_curve_points(experiment: Experiment, seed: int) -> None:
    """Every point along both finished runs of `seed` that its curves probe is on disk; a missing one is an error
    naming it."""
    missing = [
        f"{objective} step {step} ({path})"
        for objective in COMPARED_OBJECTIVES
        for step, path in experiment.curve_points(seed, objective).items()
        if not os.path.isdir(path)
    ]
    if missing:
        records = ", ".join(experiment.run_record(seed, objective) for objective in COMPARED_OBJECTIVES)
        raise FileNotFoundError(
            f"The curves of seed {seed} need checkpoints that are missing: {', '.join(missing)}. The pretraining "
            "stage keeps them (its --snapshot_steps); a run trained without them, or that did not reach the step, "
            f"cannot give them: to pretrain it again, delete its work folder and its record (among {records}), then "
            "the stages the rerun names as measuring it; or leave out the curves with --stages pretrain probe "
            "analysis report."
        )


def check_curves_to_run(experiment: Experiment) -> None:
    """Before any stage runs: the points of every curves stage still to run over finished runs, so that a missing one
    stops the experiment before other seeds' stages are computed."""
    for seed in range(experiment.args.seeds):
        curves_folder = experiment.seed_results(seed, "curves")
        if encoders_fingerprint(experiment, seed) is not None and not finished_stage(
            curves_folder, MEASURING_STAGE_MARKERS["curves"]
        ):
            check_curve_points(experiment, seed)


def curves(experiment: Experiment, seed: int) -> None:
    """Probes every point along both runs on the curve tasks; a point that was not kept is an error naming it."""
    run_probe_stage(experiment, seed, "curves", check=lambda: check_curve_points(experiment, seed))


def analyse(experiment: Experiment, seed: int) -> None:
    run_stage(
        f"analysis seed {seed}",
        experiment.seed_results(seed, "analysis"),
        recorded_measuring_settings(experiment, seed, "analysis"),
        MEASURING_STAGE_MARKERS["analysis"],
        [sys.executable, "-m", ANALYSIS_MODULE, *experiment.analysis_arguments(seed)],
    )


def pretraining_to_do(experiment: Experiment) -> bool:
    """Whether the stages asked for pretrain anything: finished runs are not pretrained again."""
    return "pretrain" in experiment.args.stages and any(
        not finished_stage(experiment.run_record(seed, objective), PRETRAINING_MARKER)
        for seed in range(experiment.args.seeds)
        for objective in COMPARED_OBJECTIVES
    )


def check_text_files(experiment: Experiment) -> None:
    """The local text an unfinished pretraining run reads, checked before any stage starts (each pretraining process
    checks it too, but only once the stages before it have run)."""
    if pretraining_to_do(experiment):
        for option in ("--train_file", "--validation_file"):
            if path := getattr(experiment.args, option[2:]):
                check_data_file(option, path)


def check_glue_tasks(experiment: Experiment) -> None:
    """Every GLUE task the measuring stages asked for, read from --glue_path before any stage runs (the experiment
    reads each once): a copy that lacks one stops the experiment here, not once its encoders are pretrained."""
    asked = [stage for stage in MEASURING_STAGE_MARKERS if stage in experiment.args.stages]
    experiment.glue_fingerprint(sorted({task for stage in asked for task in experiment.measured_tasks(stage)}))


def check_launcher(experiment: Experiment) -> None:
    """An `accelerate launch` of several processes that would start one on this CPU machine (`prjepa.launch`): that
    one trains alone, for as many steps, at a fraction of the intended speed."""
    options = accelerate_launch_options(shlex.split(experiment.args.launcher))
    if options is None or experiment.device != "cpu" or not pretraining_to_do(experiment):
        return
    launch = resolved_launch([*options, "run_pretrain.py"])
    if starts_one_of_several(launch):
        raise SystemExit(
            f"--launcher {experiment.args.launcher!r} would start one process, not {launch.num_processes}: on a "
            "machine without GPUs accelerate launches several processes only with --multi_gpu (or FSDP, DeepSpeed, "
            "Megatron-LM, a config file whose distributed_type sets one, or --mpirun_hostfile; with --cpu, one; the "
            "experiment passes --use_cpu to each process). Use --launcher 'accelerate launch --multi_gpu "
            f"--num_processes {launch.num_processes}' or 'torchrun --nproc_per_node {launch.num_processes}'."
        )


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
            else f", emulated on this device: about {EMULATED_BF16_CPU_STEP_RATIO:.0f}x the fp32 step time)"
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
        f"Per seed and objective: {preset.steps:,} steps"
        + (" (by epochs, planned for one process: N processes take 1/N of them)" if preset.max_steps <= 0 else "")
        + f" × {preset.per_device_train_batch_size} × "
        f"{preset.max_seq_length} tokens = up to {tokens:,} tokens per process, pretrained in {precision}. "
        f"Seeds: {args.seeds}. "
        f"Estimated wall time on this machine ({experiment.device}): {hours:.1f} h per seed, "
        f"{hours * args.seeds:.1f} h in all."
    )
    # A run whose every pretraining stage is done is not long, whatever its precision would cost now.
    if (
        experiment.device == "cpu"
        and hours > LONG_RUN_HOURS
        and not args.allow_long_run
        and pretraining_to_do(experiment)
    ):
        fp32_hours = preset.estimated_hours(experiment.device)
        raise SystemExit(
            f"The {args.preset!r} preset would take about {hours:.0f} h ({hours / 24:.1f} days) per seed on this CPU "
            "machine. "
            + (
                f"This CPU emulates bf16 (--bf16 {args.bf16}): pass --bf16 false to pretrain in fp32 (about "
                f"{fp32_hours:.1f} h per seed), or --allow_long_run to start anyway."
                if experiment.bf16 and not experiment.native_bf16 and fp32_hours <= LONG_RUN_HOURS
                else "Run it on a GPU, choose --preset cpu, or pass --allow_long_run to start anyway."
            )
        )
