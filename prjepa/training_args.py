"""`PrJepaTrainingArguments`: the HF `TrainingArguments` of PrJEPA pretraining. Apart from the trainer (as transformers
keeps `training_args.py` apart from `trainer.py`), so that `run_pretrain.py --help` does not load the trainer and the
model."""

import math
from dataclasses import dataclass, field

from transformers import TrainingArguments

from .snapshots import check_snapshot_steps


@dataclass
class PrJepaTrainingArguments(TrainingArguments):
    """`TrainingArguments` plus the output-directory decision that transformers 5 no longer carries, the snapshots that
    curves along the run probe, and the evaluation's masking rate; tokens seen are counted by default (the model card
    reports them)."""

    output_dir: str | None = field(
        default="trainer_output",
        metadata={"help": "Where the checkpoints, the final model with its card, and the run's results are written."},
    )
    include_num_input_tokens_seen: str = field(
        default="non_padding",
        metadata={"help": "Count the tokens seen (for the model card): 'non_padding', 'all', 'no'."},
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Start from scratch in an output directory that already holds files or checkpoints."},
    )
    snapshot_steps: list[float] = field(
        default_factory=list,
        metadata={
            "help": "Optimizer steps after which the model is kept in <output_dir>/snapshot-<step> (0: the "
            "initialisation), whatever --save_total_limit deletes: the points of curves along the run. A value below "
            "1 is a ratio of the run's steps, as for --eval_steps (e.g. 0 0.25 0.5 0.75 for a run by epochs)."
        },
    )

    eval_mlm_probability: float | None = field(
        default=None,
        metadata={
            "help": "Masking rate of the evaluation's MLM masks (default: the model's mlm_probability, the rate it "
            "trains at). A loss at one rate compares runs trained at different rates, e.g. 0.15, BERT's."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if self.eval_mlm_probability is not None and not 0.0 < self.eval_mlm_probability < 1.0:
            raise ValueError(
                f"--eval_mlm_probability must be in (0, 1) (e.g. 0.15), got {self.eval_mlm_probability}; leave it "
                "out to evaluate at the model's own mlm_probability."
            )
        if any(not 0 <= value < math.inf or value > 1 and value != int(value) for value in self.snapshot_steps):
            raise ValueError(
                f"--snapshot_steps must be optimizer steps ≥ 0 or ratios of the run's steps below 1, got "
                f"{self.snapshot_steps}."
            )
        if self.max_steps > 0:
            check_snapshot_steps(self.snapshot_steps, self.max_steps)
