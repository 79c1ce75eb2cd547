"""What an `accelerate launch` command line starts: the experiment checks its `--launcher` with it before any stage,
and run_pretrain the launch that started it. accelerate starts several processes only for a distributed mode
(--multi_gpu, FSDP, DeepSpeed, Megatron-LM, from its options or a config file whose distributed_type sets one) or an
mpirun hostfile; otherwise, on a machine without GPUs, the one process it starts trains alone."""

import argparse
import logging
import os

# env's options that take the next word as their value (GNU coreutils).
ENV_OPTIONS_WITH_VALUES = frozenset({"-u", "--unset", "-C", "--chdir", "-S", "--split-string"})
ACCELERATE_PROGRAMS = ("accelerate", "accelerate-launch")


def accelerate_launch_options(launcher: list[str]) -> list[str] | None:
    """The options of an `accelerate launch` command line (named as `accelerate launch`, `accelerate-launch` or
    `python -m accelerate.commands.launch`, by path too, run by a python interpreter too, after any `env` prefix and
    its options); None for another launcher."""
    if launcher[:1] and os.path.basename(launcher[0]) == "env":
        launcher = launcher[1:]
        while launcher and (launcher[0].startswith("-") or "=" in launcher[0]):
            launcher = launcher[2:] if launcher[0] in ENV_OPTIONS_WITH_VALUES else launcher[1:]
    program = os.path.basename(launcher[0]) if launcher else ""
    if program.startswith("python"):
        if launcher[1:3] == ["-m", "accelerate.commands.launch"]:
            return launcher[3:]
        if len(launcher) > 1 and os.path.basename(launcher[1]) in ACCELERATE_PROGRAMS:  # the console script, run
            return accelerate_launch_options(launcher[1:])
        return None
    if program == "accelerate-launch":
        return launcher[1:]
    if program == "accelerate" and launcher[1:2] == ["launch"]:
        return launcher[2:]
    return None


def resolved_launch(arguments: list[str]) -> argparse.Namespace:
    """accelerate's own reading of `accelerate launch` arguments (its options, the script and the script's), a config
    file counting for what it sets."""
    # Not at the top: accelerate loads torch, which the experiment's command line does without.
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    launch, _ = launch_command_parser().parse_known_args(arguments)
    launch_logger = logging.getLogger("accelerate.commands.launch")
    level = launch_logger.level
    launch_logger.setLevel(logging.ERROR)  # its note on defaults it filled in comes again at each launch
    try:
        launch, _, _ = _validate_launch_command(launch)
    finally:
        launch_logger.setLevel(level)
    return launch


def starts_one_of_several(launch: argparse.Namespace) -> bool:
    """Whether a resolved launch (`resolved_launch`) asks for several processes but, on a machine without GPUs,
    starts one."""
    distributed = launch.multi_gpu or launch.use_fsdp or launch.use_deepspeed or launch.use_megatron_lm
    return launch.num_processes > 1 and not (distributed and not launch.cpu) and launch.mpirun_hostfile is None


def parent_command() -> list[str]:
    """The command line of the process that started this one; empty where it cannot be read."""
    import psutil

    try:
        return psutil.Process(os.getppid()).cmdline()
    except psutil.Error:
        return []
