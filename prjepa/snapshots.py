"""Where a pretraining run keeps its snapshots (`--snapshot_steps`): a folder per step, holding the model and a state file.
Standard library only, so that the experiment's command line finds a run's snapshots without loading torch."""

import os

SNAPSHOT_STATE = "snapshot_state.json"
SNAPSHOT_PREFIX = "snapshot-"


def snapshot_dir(output_dir: str, step: int) -> str:
    return os.path.join(output_dir, f"{SNAPSHOT_PREFIX}{step}")
