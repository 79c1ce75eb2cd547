"""Probing tasks: the GLUE tasks as the probe reads them, custom tasks from CSV / TSV / JSON lines / Parquet files, and
`load_task_data`, which loads and checks either (columns, texts, labels) before anything is encoded."""

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

# `datasets` (a third of a second to import) loads with the data: the commands' `--help` reads the task names from here.
if TYPE_CHECKING:
    import datasets
    from transformers import PreTrainedTokenizerBase

PAIR_ENCODINGS = ("separate", "joint")
PROBLEM_TYPES = ("classification", "regression")  # of a custom task's labels


@dataclass(frozen=True)
class GlueTask:
    """A GLUE task as the probe reads it.

    text_columns: one column, or a sentence pair.
    metric_names: keys of the `glue` metric's output, the headline first.
    validation_splits: labelled splits that are scored (test splits hide their labels and are never scored).
    cv_scoring: scikit-learn scorer that picks the regularisation on the training folds.
    """

    text_columns: tuple[str, ...]
    metric_names: tuple[str, ...] = ("accuracy",)
    validation_splits: tuple[str, ...] = ("validation",)
    is_regression: bool = False
    cv_scoring: str = "accuracy"


GLUE_TASKS: dict[str, GlueTask] = {
    "cola": GlueTask(("sentence",), ("matthews_correlation",), cv_scoring="matthews_corrcoef"),
    "sst2": GlueTask(("sentence",)),
    "mrpc": GlueTask(("sentence1", "sentence2"), ("f1", "accuracy")),
    "qqp": GlueTask(("question1", "question2"), ("f1", "accuracy")),
    "stsb": GlueTask(("sentence1", "sentence2"), ("spearmanr", "pearson"), is_regression=True, cv_scoring="r2"),
    "mnli": GlueTask(("premise", "hypothesis"), validation_splits=("validation_matched", "validation_mismatched")),
    "qnli": GlueTask(("question", "sentence")),
    "rte": GlueTask(("sentence1", "sentence2")),
    "wnli": GlueTask(("sentence1", "sentence2")),
}
CUSTOM_TASK = "custom"
# Metrics of `metric_names` that are correlations: 0 is chance for them, whatever the label balance (a majority-class
# predictor scores 0 Matthews correlation, and a constant has no Spearman or Pearson correlation at all).
CORRELATION_METRICS = ("matthews_correlation", "spearmanr", "pearson")


@dataclass
class TaskData:
    """A probing task loaded and checked: per split, the text columns and the labels (class ids from 0, or scores).

    splits: `"train"` (unless loaded with `require_train=False` and none was found) and every name in
        `validation_splits`.
    metric_config: the `glue` metric configuration that scores it (custom tasks: `sst2` = accuracy, `stsb` =
        Pearson/Spearman).
    label_names: class names by id (`None` for regression).
    train_size_before_subsampling: rows of the training split before `max_train_samples`.
    """

    name: str
    text_columns: tuple[str, ...]
    is_regression: bool
    metric_config: str
    metric_names: tuple[str, ...]
    cv_scoring: str
    splits: "dict[str, datasets.Dataset]"
    validation_splits: tuple[str, ...]
    label_names: list[str] | None
    train_size_before_subsampling: int

    def labels(self, split: str) -> np.ndarray:
        """`(n,)` int64 class ids, or float32 scores for regression."""
        return np.asarray(self.splits[split]["label"], dtype=np.float32 if self.is_regression else np.int64)

    def fingerprint(self) -> str:
        """sha256 of every split's texts and labels as loaded (after subsampling): equal fingerprints mean the same
        data, whatever files they were read from."""
        digest = hashlib.sha256()
        for split in sorted(self.splits):
            columns = {column: list(self.splits[split][column]) for column in (*self.text_columns, "label")}
            digest.update(json.dumps([split, columns]).encode())
        return digest.hexdigest()

    def texts(self, split: str, pair_encoding: str = "separate") -> dict[str, list[str] | list[tuple[str, str]]]:
        """Texts to encode, by view name: one list per text column, or, for a pair with `pair_encoding="joint"`, one
        list of `(first, second)` tuples under `"first+second"`."""
        if pair_encoding not in PAIR_ENCODINGS:
            raise ValueError(f"pair_encoding must be one of {PAIR_ENCODINGS}, got {pair_encoding!r}.")
        columns = {column: list(self.splits[split][column]) for column in self.text_columns}
        if len(columns) == 2 and pair_encoding == "joint":
            return {"+".join(columns): list(zip(*columns.values()))}
        return columns


def _read_files(data_files: dict[str, str]) -> "dict[str, datasets.Dataset]":
    """Each split from its own file: read together, `datasets` would write every split with the columns and types it
    found in the first file, so a column another file lacks would read as empty (labels of None) and labels of
    another type would fail deep in pyarrow."""
    import datasets

    builders = {
        ".csv": ("csv", {}),
        ".tsv": ("csv", {"delimiter": "\t"}),
        ".json": ("json", {}),
        ".jsonl": ("json", {}),
        ".parquet": ("parquet", {}),
    }
    splits = {}
    for split, path in data_files.items():
        extension = os.path.splitext(path)[1].lower()
        if extension not in builders:
            raise ValueError(f"Cannot read --{split}_file {path}: give a file of one of the types {sorted(builders)}.")
        builder, options = builders[extension]
        splits[split] = datasets.load_dataset(builder, data_files=path, split="train", **options)
    return splits


def _load_glue(name: str, glue_path: str) -> "datasets.DatasetDict":
    import datasets

    # `datasets` caches a folder laid out like nyu-mll/glue under its name and its README's file patterns, not its
    # path or its files' modification times (huggingface/datasets#2956): files replaced at the same path, or another
    # folder of the same name and layout, would be read as the cache holds them. A local copy is therefore read anew
    # each time (a GLUE task's parquet files convert in well under a second), without checking its split sizes
    # against those the cache recorded, which may be another folder's.
    local = os.path.isdir(glue_path)
    try:
        return datasets.load_dataset(
            glue_path,
            name,
            download_mode="force_redownload" if local else None,
            verification_mode="no_checks" if local else None,
        )
    except (OSError, ConnectionError, ValueError) as error:
        # A copy laid out like nyu-mll/glue keeps each task's splits in a folder of the task's name.
        if local and not os.path.isdir(os.path.join(glue_path, name)):
            raise ValueError(
                f"The local GLUE copy {glue_path!r} lacks {name!r}: it has no {name}/ folder, so no training or "
                f"validation split of it ({error}). Probe {name} from the Hub (--glue_path nyu-mll/glue), or as a "
                "custom task from its files (README.md, Probing): no --task_name, with --train_file, --validation_file "
                f"and --text_columns {' '.join(GLUE_TASKS[name].text_columns)}."
            ) from error
        if local and (unfilled := _tasks_listed_without_folder(glue_path)):
            raise ValueError(
                f"Could not load GLUE task {name!r} from the local copy {glue_path!r}: its README.md lists "
                f"{', '.join(unfilled)} without a folder of their files, which can stop `datasets` from loading any "
                f"of its tasks ({error}). Restore those folders, or remove their entries from the README's `configs`."
            ) from error
        if local:
            raise ValueError(
                f"Could not load GLUE task {name!r} from the local copy {glue_path!r}: {error}. Check that the copy is "
                "laid out like nyu-mll/glue (a folder of parquet files per task, listed in its README.md)."
            ) from error
        raise ValueError(
            f"Could not load GLUE task {name!r} from {glue_path!r}: {error}. Without Hub access, pass --glue_path "
            "pointing to a local copy laid out like nyu-mll/glue."
        ) from error


def _tasks_listed_without_folder(glue_path: str) -> list[str]:
    """The configs a local copy's README.md lists whose folder is missing."""
    readme = os.path.join(glue_path, "README.md")
    if not os.path.isfile(readme):
        return []
    with open(readme, encoding="utf-8") as file:
        listed = re.findall(r"config_name:\s*(\S+)", file.read())
    return [task for task in listed if not os.path.isdir(os.path.join(glue_path, task))]


def _glue_splits(
    task_name: str, glue_path: str, files: dict[str, str], require_train: bool
) -> "tuple[dict[str, datasets.Dataset], datasets.ClassLabel | None]":
    """The task's training and validation splits, `files` replacing any of them; and the label feature."""
    import datasets

    glue = _load_glue(task_name, glue_path)
    wanted = ("train",) + GLUE_TASKS[task_name].validation_splits
    splits = {split: glue[split] for split in wanted if split in glue} | _read_files(files)
    for split in wanted if require_train else wanted[1:]:
        if split not in splits:
            option = "--train_file" if split == "train" else "--validation_file"
            columns = list(GLUE_TASKS[task_name].text_columns) + ["label"]
            raise ValueError(
                f"GLUE task {task_name!r} has no labelled {split!r} split in {glue_path!r} (found: {sorted(glue)}). "
                f"Supply one with {option} (CSV, JSON lines or Parquet with columns {columns})."
            )
    label = next(iter(glue.values())).features.get("label")
    return splits, label if isinstance(label, datasets.ClassLabel) else None


def _check_columns(dataset: "datasets.Dataset", columns: Sequence[str], source: str) -> None:
    missing = [column for column in columns if column not in dataset.column_names]
    if missing:
        raise ValueError(
            f"Column {missing[0]!r} not found in {source}; columns found: {dataset.column_names}. Name existing "
            "columns with --text_columns / --label_column."
        )


def _check_texts(dataset: "datasets.Dataset", columns: Sequence[str], source: str) -> None:
    for column in columns:
        for row, text in enumerate(dataset[column]):
            if not isinstance(text, str):
                raise ValueError(f"Row {row} of {source} has no text in column {column!r}: {dataset[row]}.")


def check_joint_pair_length(task: TaskData, max_seq_length: int, tokenizer: "PreTrainedTokenizerBase") -> None:
    """A pair encoded as one sequence (BERT's `[CLS] a [SEP] b [SEP]`, RoBERTa's `<s> a </s></s> b </s>`) needs room
    for the tokenizer's special tokens and a token of each text: shorter, every pair (or its first text) is cut away,
    and every example gets the same features."""
    needed = tokenizer.num_special_tokens_to_add(pair=True) + 2
    if len(task.text_columns) == 2 and max_seq_length < needed:
        raise ValueError(
            f"--max_seq_length {max_seq_length} cannot hold a token of each text of {task.name}'s pairs encoded as "
            f"one sequence beside the tokenizer's {needed - 2} special tokens; use at least {needed}."
        )


def _check_scores(dataset: "datasets.Dataset", source: str) -> None:
    scores = dataset["label"]
    for row, score in enumerate(scores):
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise ValueError(f"Row {row} of {source} has a non-numeric score {score!r}: {dataset[row]}.")
        if not np.isfinite(score):
            raise ValueError(f"Row {row} of {source} has the score {score!r}: give finite scores.")
    # A probe cannot learn from, nor be scored against, one score: a correlation with a constant is undefined.
    if len(scores) and len(set(scores)) == 1:
        raise ValueError(
            f"Every score of {source} is {scores[0]!r}: there is nothing to fit or correlate (a test split hides its "
            "labels as -1). Give a split with its scores."
        )


def _check_label_types(splits: "dict[str, datasets.Dataset]", sources: dict[str, str]) -> None:
    """A custom task's files must give their labels as one kind of value: class names in one file and class ids in
    the other (or scores beside names) share no label, and each row of the second would be refused as outside the
    label set."""
    kinds = {}
    for split, dataset in splits.items():
        dtype = getattr(dataset.features["label"], "dtype", None)
        if dtype in ("string", "large_string"):
            kinds[split] = ("text", dtype)
        elif dtype == "bool" or str(dtype).startswith(("int", "uint", "float")):
            kinds[split] = ("numbers", dtype)
    if len({kind for kind, _ in kinds.values()}) > 1:
        named = " and ".join(f"{kind} ({dtype}) in {sources[split]}" for split, (kind, dtype) in kinds.items())
        raise ValueError(
            f"The label types differ between the files: {named}. Give both files labels of one type: class names in "
            "both, class ids in both, or scores in both."
        )


def _infer_regression(train: "datasets.Dataset") -> bool:
    """Float labels that are not all whole numbers mean regression; integers, booleans and strings mean classes."""
    scores = list(train["label"])
    return all(isinstance(score, float) for score in scores) and any(not score.is_integer() for score in scores)


def _encode_labels(
    splits: "dict[str, datasets.Dataset]", label_feature: "datasets.ClassLabel | None", sources: dict[str, str]
) -> list[str]:
    """Replaces every split's labels by class ids from 0 and returns the class names. GLUE labels may be given as ids
    or names; a custom task's classes are the sorted values of its training labels (validation labels without a
    training split). `sources` names each split in errors."""
    if label_feature is not None:
        label_names = list(label_feature.names)
        label_index = {name: index for index, name in enumerate(label_names)} | {i: i for i in range(len(label_names))}
    else:
        reference = splits["train"] if "train" in splits else splits["validation"]
        classes = sorted({label for label in reference["label"] if label is not None})
        label_names = [str(label) for label in classes]
        label_index = {label: index for index, label in enumerate(classes)}
    # A custom task's classes are its training labels: with one, a validation label outside them shows a training
    # split that cannot train a classifier, not a wrong validation row.
    single_training_class = label_feature is None and "train" in splits and len(label_names) == 1
    # Whole-number training classes beside a fractional validation label: a file of scores, not a hidden test label.
    whole_classes = label_feature is None and all(
        isinstance(label, (int, float)) and float(label).is_integer() for label in label_index
    )
    for split, dataset in splits.items():
        for row, label in enumerate(dataset["label"]):
            if label not in label_index and single_training_class and split != "train":
                raise ValueError(
                    f"Every training label of {sources['train']} is {label_names[0]}, a single class, while row {row} "
                    f"of {sources[split]} has {label!r}: a probe learns to tell classes apart on the training split, "
                    "so it needs two or more there. Give a training file with examples of every class."
                )
            if label not in label_index and whole_classes and isinstance(label, float) and label % 1:
                raise ValueError(
                    f"Row {row} of {sources[split]} has the score {label!r}, where the training labels are whole "
                    f"numbers, read as the classes {label_names}. To fit scores, pass --problem_type regression; to "
                    "fit classes, give class labels in both files."
                )
            if label not in label_index:
                raise ValueError(
                    f"Row {row} of {sources[split]} has label {label!r}, outside the label set "
                    f"{dict(enumerate(label_names))}: {dataset[row]}. Test splits hide their labels (-1) and cannot "
                    "be scored; give a labelled split."
                )
        ids = [label_index[label] for label in dataset["label"]]
        splits[split] = dataset.remove_columns("label").add_column("label", ids)
    return label_names


def check_task_name(task_name: str | None) -> None:
    """Raises `ValueError` unless `task_name` names a GLUE task, or a custom task (`None` or `"custom"`)."""
    if task_name not in (None, CUSTOM_TASK, *GLUE_TASKS):
        raise ValueError(
            f"Unknown task {task_name!r}; choose among {sorted(GLUE_TASKS)}, or name none for a custom task read "
            "from --train_file / --validation_file."
        )


def seeded_subset(dataset: "datasets.Dataset", max_samples: int | None, seed: int) -> "datasets.Dataset":
    """`max_samples` rows drawn at random (seeded) and kept in their original order; the whole dataset when it has
    no more rows than that or `max_samples` is None."""
    if max_samples is None or max_samples >= len(dataset):
        return dataset
    keep = np.sort(np.random.default_rng(seed).choice(len(dataset), max_samples, replace=False))
    return dataset.select(keep)


def load_task_data(
    task_name: str | None,
    *,
    glue_path: str = "nyu-mll/glue",
    train_file: str | None = None,
    validation_file: str | None = None,
    text_columns: Sequence[str] | None = None,
    label_column: str = "label",
    problem_type: str | None = None,
    max_train_samples: int | None = None,
    seed: int = 0,
    require_train: bool = True,
) -> TaskData:
    """Loads and checks a GLUE task (from the Hub id or a local folder laid out like `nyu-mll/glue`), or, with
    `task_name=None`, a custom task from `train_file` / `validation_file` (CSV, TSV, JSON lines or Parquet) with
    `text_columns` and `label_column`; `problem_type` (one of `PROBLEM_TYPES`) then overrides the
    detection from the labels. `train_file` / `validation_file` also replace a GLUE task's splits (e.g. MNLI's
    training split, absent from the offline mirror). `max_train_samples` keeps a random subset (seeded) of the
    training split. `require_train=False` accepts a task without a training split (e.g. for measurements that
    fit nothing); its label set and type then come from the validation split.

    Raises `ValueError` naming the problem: an unknown task (`check_task_name`), a missing split, a missing column,
    a missing text, labels of different types in a custom task's two files, or a label outside the label set.
    """
    check_task_name(task_name)
    files = {split: path for split, path in (("train", train_file), ("validation", validation_file)) if path}
    task_name = task_name or CUSTOM_TASK
    if task_name == CUSTOM_TASK:
        needed = ["train", "validation"] if require_train else ["validation"]
        missing = [f"--{split}_file" for split in needed if split not in files]
        missing += [] if text_columns else ["--text_columns"]
        if missing:
            options = ", ".join(f"--{split}_file" for split in needed)
            raise ValueError(f"A custom task needs {options} and --text_columns; give {' and '.join(missing)}.")
        if problem_type not in (None, *PROBLEM_TYPES):
            raise ValueError(f"problem_type must be one of {PROBLEM_TYPES}, got {problem_type!r}.")
        splits, label_feature = _read_files(files), None
    else:
        if problem_type is not None:
            raise ValueError(f"GLUE task {task_name!r} has a fixed label type; problem_type is for custom tasks.")
        if validation_file and GLUE_TASKS[task_name].validation_splits != ("validation",):
            raise ValueError(
                f"GLUE task {task_name!r} is scored on {list(GLUE_TASKS[task_name].validation_splits)}, which "
                "--validation_file cannot stand for. Probe the file as a custom task instead (no --task_name, with "
                "--train_file, --validation_file and --text_columns), or drop --validation_file."
            )
        splits, label_feature = _glue_splits(task_name, glue_path, files, require_train)

    columns = tuple(text_columns or GLUE_TASKS[task_name].text_columns)
    if not 1 <= len(columns) <= 2:
        raise ValueError(f"Give one text column or a pair, got {list(columns)}.")
    sources = {
        split: f"the {split!r} split of {task_name!r}" + (f" (--{split}_file {files[split]})" if split in files else "")
        for split in splits
    }
    for split, dataset in splits.items():
        _check_columns(dataset, columns + (label_column,), sources[split])
        _check_texts(dataset, columns, sources[split])
        if label_column != "label":
            # The chosen column becomes the labels; a column that happens to be named "label" is not them.
            dataset = dataset.remove_columns([name for name in ("label",) if name in dataset.column_names])
            splits[split] = dataset.rename_column(label_column, "label")
    if task_name == CUSTOM_TASK:
        _check_label_types(splits, sources)

    if task_name in GLUE_TASKS:
        task = GLUE_TASKS[task_name]
    elif problem_type == "regression" or (
        problem_type is None and _infer_regression(splits.get("train", splits["validation"]))
    ):
        task = GlueTask(columns, ("spearmanr", "pearson"), is_regression=True, cv_scoring="r2")
    else:
        task = GlueTask(columns)
    if task.is_regression:
        label_names = None
        for split, dataset in splits.items():
            _check_scores(dataset, sources[split])
    else:
        label_names = _encode_labels(splits, label_feature, sources)

    train_size = len(splits["train"]) if "train" in splits else 0
    if "train" in splits:
        splits["train"] = seeded_subset(splits["train"], max_train_samples, seed)
    return TaskData(
        name=task_name,
        text_columns=columns,
        is_regression=task.is_regression,
        metric_config=task_name if task_name in GLUE_TASKS else ("stsb" if task.is_regression else "sst2"),
        metric_names=task.metric_names,
        cv_scoring=task.cv_scoring,
        splits=splits,
        validation_splits=task.validation_splits,
        label_names=label_names,
        train_size_before_subsampling=train_size,
    )
