"""Where a pretraining run keeps its snapshots (`--snapshot_steps`): a folder per step, holding the model and a state file.
Standard library only, so that the experiment's command line finds a run's snapshots without loading torch."""

import math
import os
from collections.abc import Sequence

SNAPSHOT_STATE = "snapshot_state.json"
SNAPSHOT_PREFIX = "snapshot-"


def snapshot_dir(output_dir: str, step: int) -> str:
    return os.path.join(output_dir, f"{SNAPSHOT_PREFIX}{step}")


def resolve_snapshot_steps(snapshot_steps: Sequence[float], max_steps: int) -> list[int]:
    """The optimizer steps of `--snapshot_steps` in a run of `max_steps` steps, sorted: a value below 1 is a ratio of
    the run's steps, rounded up as `TrainingArguments` reads an `eval_steps` or `save_steps` ratio (so the same ratio
    lands on the same step); any other is a step.
    Ratios let a run that trains by epochs place its snapshots before it knows its length, which depends on the data
    and on the number of processes."""
    return sorted({math.ceil(value * max_steps) if value < 1 else int(value) for value in snapshot_steps})
