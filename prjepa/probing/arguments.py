"""Command-line arguments that the probe and the representation analysis share: how encoders are loaded and where a
task's data come from; each command adds its own."""

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..data_sources import check_hub_reachable
from .encoders import ENCODERS, ONLINE_ENCODER
from .tasks import PROBLEM_TYPES, TaskData, check_task_name, load_task_data

# Arguments of the probe and of the representation analysis that say where results and features go, what is done
# with the results, or where and in what batches the encoder runs, never what the results are: `earlier_results`
# leaves them out of its comparison, so that a rerun that changes only these (adding --update_model_card, say) finds
# the results finished instead of refusing them. The feature cache, keyed without a device or batch size, already
# serves features computed with any of them: both change only the order of floating-point operations (padding is
# masked; batch sizes 1, 7, 64 and 300 differed by at most 7e-7 on tiny BERT and PrJEPA encoders).
RESULT_NEUTRAL_ARGUMENTS = frozenset(
    {
        "output_dir",
        "overwrite_output_dir",
        "cache_dir",
        "device",
        "batch_size",
        "update_model_card",
        "push_to_hub",
        "hub_model_id",
    }
)


def check_no_repeats(option: str, values: Sequence[str]) -> None:
    """Refuses a value given twice: it would be computed twice, its results listed twice or overwritten."""
    if repeated := sorted(value for value, count in Counter(values).items() if count > 1):
        raise ValueError(f"{option} names {', '.join(map(repr, repeated))} more than once: give each once.")


def check_no_repeated_models(option: str, models: Sequence[str]) -> None:
    """`check_no_repeats` over Hub ids and folders, a folder however its path is spelled."""
    check_no_repeats(option, [os.path.abspath(model) if os.path.isdir(model) else model for model in models])


def check_seed(seed: int) -> None:
    """numpy's and scikit-learn's generators, which subsample, split folds and resample, take seeds in [0, 2**32)."""
    if not 0 <= seed < 2**32:
        raise ValueError(f"--seed {seed}: the generators it seeds take a seed from 0 to 2**32 - 1.")


@dataclass
class EncoderArguments:
    """How every compared encoder is loaded (command-line arguments of the probe and of the representation analysis)."""

    encoder: str = field(
        default=ONLINE_ENCODER,
        metadata={
            "help": "For PrJEPA pretraining checkpoints: the online or the EMA target encoder.",
            "choices": list(ENCODERS),
        },
    )
    tokenizer_name: str | None = field(default=None, metadata={"help": "Tokenizer for every model, if not its own."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow non-PrJEPA models' code from the Hub."})
    device: str | None = field(default=None, metadata={"help": "Default: cuda if available, else cpu."})

    def __post_init__(self):
        if self.device is None:
            return
        try:
            device = torch.device(self.device)
        except RuntimeError as error:
            raise ValueError(
                f"--device {self.device!r} is not a device torch knows ({error}); e.g. cpu or cuda:0."
            ) from None
        if device.type == "cpu":
            return
        # torch.cuda, torch.mps, torch.xpu, …: a device type torch has no module for is not one features come from.
        backend = getattr(torch, device.type, None)
        available = backend is not None and hasattr(backend, "is_available") and backend.is_available()
        count = backend.device_count() if available and hasattr(backend, "device_count") else int(available)
        if (device.index or 0) >= count:
            raise ValueError(
                f"--device {self.device}: this machine has {count} {device.type} device(s); use --device cpu or drop "
                "--device."
            )


@dataclass
class TaskDataArguments:
    """Where a task's data come from and how long its texts may be (command-line arguments of the probe and of the
    representation analysis); each command adds the task names it accepts."""

    glue_path: str = field(
        default="nyu-mll/glue", metadata={"help": "Hub id or local folder laid out like nyu-mll/glue."}
    )
    train_file: str | None = field(
        default=None, metadata={"help": "Custom (or replacement) training split: csv, tsv, json(l) or parquet."}
    )
    validation_file: str | None = field(
        default=None, metadata={"help": "Custom (or replacement) validation split: csv, tsv, json(l) or parquet."}
    )
    text_columns: list[str] | None = field(default=None, metadata={"help": "One text column or a pair (custom)."})
    label_column: str = field(default="label", metadata={"help": "Label column of the custom files."})
    problem_type: str | None = field(
        default=None,
        metadata={
            "help": "Custom tasks: the label type (default: detected).",
            "choices": list(PROBLEM_TYPES),
        },
    )
    max_seq_length: int = field(default=128, metadata={"help": "Tokens per sequence (pairs: per joint sequence)."})
    max_train_samples: int | None = field(
        default=None,
        metadata={"help": "Random subset of the training split (seeded); bounds time and token-feature memory."},
    )

    def __post_init__(self):
        if self.max_seq_length < 3:
            raise ValueError(
                f"--max_seq_length {self.max_seq_length} cannot hold a token between [CLS] and [SEP]; use at least 3."
            )
        if self.max_train_samples is not None and self.max_train_samples < 1:
            raise ValueError(f"--max_train_samples {self.max_train_samples} leaves no example; give at least 1.")

    def glue_source(self, task_names: Sequence[str]) -> list[tuple[str, str]]:
        """`[("--glue_path", path)]` when some task reads GLUE (one is named and files do not replace both of its
        splits), for the Hub check; else nothing."""
        reads_glue = bool(task_names) and not (self.train_file and self.validation_file)
        return [("--glue_path", self.glue_path)] if reads_glue else []

    def load_tasks(self, task_names: Sequence[str], seed: int, require_train: bool = True) -> list[TaskData]:
        """`load_task_data` with these arguments for each named GLUE task, or for the custom task when none is named.
        Every name is checked before any task loads, and every task loads before anything is encoded, so that a data
        problem stops a run at once (and an unreachable Hub, when GLUE is to come from it)."""
        check_no_repeats("--task_name", task_names)
        if (self.train_file or self.validation_file) and len(task_names) > 1:
            raise ValueError("--train_file / --validation_file describe one dataset; give at most one --task_name.")
        for task_name in task_names:
            check_task_name(task_name)
        check_hub_reachable(self.glue_source(task_names))
        return [
            load_task_data(
                task_name,
                glue_path=self.glue_path,
                train_file=self.train_file,
                validation_file=self.validation_file,
                text_columns=self.text_columns,
                label_column=self.label_column,
                problem_type=self.problem_type,
                max_train_samples=self.max_train_samples,
                seed=seed,
                require_train=require_train,
            )
            for task_name in task_names or [None]
        ]
