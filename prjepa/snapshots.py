"""Where a pretraining run keeps its snapshots (`--snapshot_steps`): a folder per step, holding the model and a state
file. Standard library only, so that the experiment's command line finds a run's snapshots without loading torch."""

import os
from collections.abc import Sequence

SNAPSHOT_STATE = "snapshot_state.json"
SNAPSHOT_PREFIX = "snapshot-"


def snapshot_dir(output_dir: str, step: int) -> str:
    return os.path.join(output_dir, f"{SNAPSHOT_PREFIX}{step}")


def resolve_snapshot_steps(snapshot_steps: Sequence[float], max_steps: int) -> list[int]:
    """The optimizer steps of `--snapshot_steps` in a run of `max_steps` steps, sorted: a value below 1 is a ratio of
    the run's steps, rounded to the nearest step (Python's `round`) and at least step 1 for a ratio above 0, which
    never means the initialisation; any other is a step.
    Ratios let a run that trains by epochs place its snapshots before it knows its length, which depends on the data
    and on the number of processes."""

    def step(value: float) -> int:
        if value >= 1:
            return int(value)
        return max(round(value * max_steps), 1) if value > 0 else round(value * max_steps)

    return sorted(set(map(step, snapshot_steps)))


def check_snapshot_steps(snapshot_steps: Sequence[float], max_steps: int) -> list[int]:
    """The snapshot steps of a run of `max_steps` steps (`resolve_snapshot_steps`); steps past its last one, which would
    never be written, are an error. An epoch-based run knows its number of optimizer steps only once its dataloader
    exists, so the trainer checks again then."""
    steps = resolve_snapshot_steps(snapshot_steps, max_steps)
    unreachable = [step for step in steps if step > max_steps]
    if unreachable:
        raise ValueError(
            f"--snapshot_steps {unreachable} lie after the run's last optimizer step ({max_steps} steps): they would "
            f"never be written. Ask for snapshots at steps up to {max_steps}, or at ratios of the run's steps below "
            "1 (e.g. 0.5), or train longer."
        )
    return steps
