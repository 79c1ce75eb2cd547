"""Frozen-encoder probing (SPEC §4): features extracted once and cached on disk, pooled, and scored by a linear model
whose regularisation is chosen by cross-validation on the training split only.

The pieces are public so that other evaluations reuse them rather than copy them:

    encoder = load_encoder("path/to/checkpoint", encoder="target")
    task = load_task_data("sst2", glue_path="../shared/data/glue", max_train_samples=20_000)
    train = extract_features(encoder, task.texts("train")["sentence"], ["mean", TOKENS], cache_dir="cache")
    probe = fit_linear_probe(train["mean"], task.labels("train"), is_regression=False, grid=[0.01, 0.1, 1.0])
    pooler = train_pooler("attention", train[TOKENS], task.labels("train"), is_regression=False, max_positions=128)
    validation = extract_features(encoder, task.texts("validation")["sentence"], [TOKENS], cache_dir="cache")
    pooled = pool_tokens(pooler, validation[TOKENS])  # (n, hidden)
"""

import contextlib
import importlib.resources
import functools
import hashlib
import inspect
import json
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import datasets
import evaluate
import numpy as np
import torch
import torch.nn.functional as F
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    BatchEncoding,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from configuration_prjepa import PrJepaConfig
from modeling_prjepa import PrJepaModel, pool_hidden_states

logger = logging.getLogger(__name__)

FIXED_POOLINGS = ("mean", "max", "cls")
TRAINED_POOLINGS = ("weighted", "attention")
POOLINGS = FIXED_POOLINGS + TRAINED_POOLINGS
# What `extract_features` returns instead of a pooled vector: every real token's state, for the trained poolers.
TOKENS = "tokens"
PAIR_ENCODINGS = ("separate", "joint")

LOCAL_GLUE_METRIC = str(importlib.resources.files("prjepa") / "metrics" / "glue")
# Part of every cache key: bump it when what is stored for a key changes, so old files are never read as new ones.
CACHE_FORMAT_VERSION = 1


def default_cache_dir() -> str:
    """`$PRJEPA_CACHE`, else `$XDG_CACHE_HOME/prjepa/features`, else `~/.cache/prjepa/features`."""
    if "PRJEPA_CACHE" in os.environ:
        return os.environ["PRJEPA_CACHE"]
    cache_home = os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache"))
    return os.path.join(cache_home, "prjepa", "features")


# --------------------------------------------------------------------------------------------------------------------
# Tasks


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
    splits: dict[str, datasets.Dataset]
    validation_splits: tuple[str, ...]
    label_names: list[str] | None
    train_size_before_subsampling: int

    def labels(self, split: str) -> np.ndarray:
        """`(n,)` int64 class ids, or float32 scores for regression."""
        return np.asarray(self.splits[split]["label"], dtype=np.float32 if self.is_regression else np.int64)

    def texts(self, split: str, pair_encoding: str = "separate") -> dict[str, list[str] | list[tuple[str, str]]]:
        """Texts to encode, by view name: one list per text column, or, for a pair with `pair_encoding="joint"`, one
        list of `(first, second)` tuples under `"first+second"`."""
        if pair_encoding not in PAIR_ENCODINGS:
            raise ValueError(f"pair_encoding must be one of {PAIR_ENCODINGS}, got {pair_encoding!r}.")
        columns = {column: list(self.splits[split][column]) for column in self.text_columns}
        if len(columns) == 2 and pair_encoding == "joint":
            return {"+".join(columns): list(zip(*columns.values()))}
        return columns


def _read_files(data_files: dict[str, str]) -> datasets.DatasetDict:
    builders = {
        ".csv": ("csv", {}),
        ".tsv": ("csv", {"delimiter": "\t"}),
        ".json": ("json", {}),
        ".jsonl": ("json", {}),
        ".parquet": ("parquet", {}),
    }
    extensions = {os.path.splitext(path)[1].lower() for path in data_files.values()}
    if len(extensions) != 1 or next(iter(extensions)) not in builders:
        raise ValueError(f"Cannot read {sorted(data_files.values())}: give files of one type among {sorted(builders)}.")
    builder, options = builders[extensions.pop()]
    return datasets.load_dataset(builder, data_files=data_files, **options)


def _load_glue(name: str, glue_path: str) -> datasets.DatasetDict:
    try:
        return datasets.load_dataset(glue_path, name)
    except (OSError, ConnectionError, ValueError) as error:
        raise ValueError(
            f"Could not load GLUE task {name!r} from {glue_path!r}: {error}. Without Hub access, pass --glue_path "
            "pointing to a local copy laid out like nyu-mll/glue."
        ) from error


def _glue_splits(
    task_name: str, glue_path: str, files: dict[str, str], require_train: bool
) -> tuple[dict[str, datasets.Dataset], datasets.ClassLabel | None]:
    """The task's training and validation splits, `files` replacing any of them; and the label feature."""
    glue = _load_glue(task_name, glue_path)
    wanted = ("train",) + GLUE_TASKS[task_name].validation_splits
    splits = {split: glue[split] for split in wanted if split in glue} | dict(_read_files(files) if files else {})
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


def _check_columns(dataset: datasets.Dataset, columns: Sequence[str], source: str) -> None:
    missing = [column for column in columns if column not in dataset.column_names]
    if missing:
        raise ValueError(
            f"Column {missing[0]!r} not found in {source}; columns found: {dataset.column_names}. Name existing "
            "columns with --text_columns / --label_column."
        )


def _check_texts(dataset: datasets.Dataset, columns: Sequence[str], source: str) -> None:
    for column in columns:
        for row, text in enumerate(dataset[column]):
            if not isinstance(text, str):
                raise ValueError(f"Row {row} of {source} has no text in column {column!r}: {dataset[row]}.")


def _check_scores(dataset: datasets.Dataset, source: str) -> None:
    for row, score in enumerate(dataset["label"]):
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise ValueError(f"Row {row} of {source} has a non-numeric score {score!r}: {dataset[row]}.")


def _infer_regression(train: datasets.Dataset) -> bool:
    """Float labels that are not all whole numbers mean regression; integers, booleans and strings mean classes."""
    scores = list(train["label"])
    return all(isinstance(score, float) for score in scores) and any(not score.is_integer() for score in scores)


def _encode_labels(
    splits: dict[str, datasets.Dataset], label_feature: datasets.ClassLabel | None, task_name: str
) -> list[str]:
    """Replaces every split's labels by class ids from 0 and returns the class names. GLUE labels may be given as ids
    or names; a custom task's classes are the sorted values of its training labels (validation labels without a
    training split)."""
    if label_feature is not None:
        label_names = list(label_feature.names)
        label_index = {name: index for index, name in enumerate(label_names)} | {i: i for i in range(len(label_names))}
    else:
        reference = splits["train"] if "train" in splits else splits["validation"]
        classes = sorted({label for label in reference["label"] if label is not None})
        label_names = [str(label) for label in classes]
        label_index = {label: index for index, label in enumerate(classes)}
    for split, dataset in splits.items():
        for row, label in enumerate(dataset["label"]):
            if label not in label_index:
                raise ValueError(
                    f"Row {row} of the {split!r} split of {task_name!r} has label {label!r}, outside the label set "
                    f"{dict(enumerate(label_names))}: {dataset[row]}. Test splits hide their labels (-1) and cannot "
                    "be scored; give a labelled split."
                )
        ids = [label_index[label] for label in dataset["label"]]
        splits[split] = dataset.remove_columns("label").add_column("label", ids)
    return label_names


def seeded_subset(dataset: datasets.Dataset, max_samples: int | None, seed: int) -> datasets.Dataset:
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
    `text_columns` and `label_column`; `problem_type` (`"classification"` | `"regression"`) then overrides the
    detection from the labels. `train_file` / `validation_file` also replace a GLUE task's splits (e.g. MNLI's
    training split, absent from the offline mirror). `max_train_samples` keeps a random subset (seeded) of the
    training split. `require_train=False` accepts a task without a training split (e.g. for measurements that
    fit nothing); its label set and type then come from the validation split.

    Raises `ValueError` naming the problem: an unknown task, a missing split, a missing column, a missing text, or a
    label outside the label set.
    """
    files = {split: path for split, path in (("train", train_file), ("validation", validation_file)) if path}
    task_name = task_name or CUSTOM_TASK
    if task_name == CUSTOM_TASK:
        needed = ["train", "validation"] if require_train else ["validation"]
        if not set(needed) <= set(files) or not text_columns:
            options = ", ".join(f"--{split}_file" for split in needed)
            raise ValueError(f"A custom task needs {options} and --text_columns.")
        if problem_type not in (None, "classification", "regression"):
            raise ValueError(f"problem_type must be 'classification' or 'regression', got {problem_type!r}.")
        splits, label_feature = dict(_read_files(files)), None
    elif task_name in GLUE_TASKS:
        if problem_type is not None:
            raise ValueError(f"GLUE task {task_name!r} has a fixed label type; problem_type is for custom tasks.")
        splits, label_feature = _glue_splits(task_name, glue_path, files, require_train)
    else:
        raise ValueError(
            f"Unknown task {task_name!r}; choose among {sorted(GLUE_TASKS)} or 'all', or give --train_file."
        )

    columns = tuple(text_columns or GLUE_TASKS[task_name].text_columns)
    if not 1 <= len(columns) <= 2:
        raise ValueError(f"Give one text column or a pair, got {list(columns)}.")
    for split, dataset in splits.items():
        source = f"the {split!r} split of {task_name!r}"
        _check_columns(dataset, columns + (label_column,), source)
        _check_texts(dataset, columns, source)
        if label_column != "label":
            splits[split] = dataset.rename_column(label_column, "label")

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
            _check_scores(dataset, f"the {split!r} split of {task_name!r}")
    else:
        label_names = _encode_labels(splits, label_feature, task_name)

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


# --------------------------------------------------------------------------------------------------------------------
# Encoders


@dataclass
class EncoderArguments:
    """How every compared encoder is loaded (command-line arguments of the probe and of the representation analysis)."""

    encoder: str = field(
        default="online",
        metadata={
            "help": "For PrJEPA pretraining checkpoints: the online or the EMA target encoder.",
            "choices": ["online", "target"],
        },
    )
    tokenizer_name: str | None = field(default=None, metadata={"help": "Tokenizer for every model, if not its own."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow non-PrJEPA models' code from the Hub."})
    device: str | None = field(default=None, metadata={"help": "Default: cuda if available, else cpu."})


@dataclass
class TaskDataArguments:
    """Where a task's data come from and how long its texts may be (command-line arguments of the probe and of the
    representation analysis); each script adds the task names it accepts."""

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
            "choices": ["classification", "regression"],
        },
    )
    max_seq_length: int = field(default=128, metadata={"help": "Tokens per sequence (pairs: per joint sequence)."})
    max_train_samples: int | None = field(
        default=None,
        metadata={"help": "Random subset of the training split (seeded); bounds time and token-feature memory."},
    )

    def load_task(self, task_name: str | None, seed: int, require_train: bool = True) -> TaskData:
        """`load_task_data` for one GLUE task (or the custom task, `None`) with these arguments."""
        return load_task_data(
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


class LoadedEncoder(NamedTuple):
    """A frozen encoder in eval mode on its device, its tokenizer, and fingerprints of both (what computes its
    features), taken once at loading."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    fingerprint: str
    tokenizer_fingerprint: str


def weights_fingerprint(model: nn.Module) -> str:
    """sha256 of the model's class, config and every tensor of its state dict (names, dtypes, shapes, bytes): equal
    fingerprints mean equal features, whatever file, Hub commit or encoder (online/target) the weights came from."""
    digest = hashlib.sha256(type(model).__name__.encode())
    config = getattr(model, "config", None)
    if config is not None:
        settings = config.to_dict()
        for volatile in ("_name_or_path", "transformers_version"):
            settings.pop(volatile, None)
        digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """sha256 of the tokenizer's serialisation (vocabulary, normaliser, special tokens, post-processor)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # Truncation and padding settings change with every call; they are per-call arguments, not the tokenizer.
        settings = json.loads(backend.to_str())
        settings.pop("truncation", None)
        settings.pop("padding", None)
        serialised = json.dumps(settings, sort_keys=True)
    else:
        vocabulary = sorted(tokenizer.get_vocab().items())
        serialised = json.dumps([type(tokenizer).__name__, vocabulary, tokenizer.all_special_tokens])
    return hashlib.sha256(serialised.encode()).hexdigest()


def check_text_encoder(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, name: str) -> None:
    """Raises `ValueError` unless `model` maps the tokenizer's `input_ids` to `last_hidden_state` `(batch, seq, dim)`
    and the tokenizer's ids fit its embedding table."""
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if isinstance(embeddings, nn.Embedding) and len(tokenizer) > embeddings.num_embeddings:
        raise ValueError(
            f"The tokenizer has {len(tokenizer)} tokens but {name!r} embeds only {embeddings.num_embeddings}: it is "
            "not this model's tokenizer. Pass the right one with --tokenizer_name."
        )
    if "input_ids" not in inspect.signature(model.forward).parameters:
        raise ValueError(f"{name!r} ({type(model).__name__}) takes no input_ids: it is not a text encoder.")
    with torch.inference_mode():
        inputs = tokenizer(["a probe"], return_tensors="pt").to(model.device)
        hidden = getattr(model(**inputs, return_dict=True), "last_hidden_state", None)
    if not isinstance(hidden, torch.Tensor) or hidden.dim() != 3:
        raise ValueError(
            f"{name!r} ({type(model).__name__}) returns no last_hidden_state of shape (batch, seq, dim): it is not an "
            "encoder whose hidden states can be probed."
        )


def load_encoder(
    model_name_or_path: str,
    encoder: str = "online",
    tokenizer_name: str | None = None,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
) -> LoadedEncoder:
    """A frozen encoder (eval mode, no gradients) and its tokenizer, from a Hub id or a folder.

    PrJEPA checkpoints load with this project's classes (`encoder="target"` takes a pretraining checkpoint's EMA
    target encoder); anything else through `AutoModel` (the encoder half of an encoder-decoder). The tokenizer comes
    from `tokenizer_name`, else from the model's own files.
    """
    if encoder not in ("online", "target"):
        raise ValueError(f"encoder must be 'online' or 'target', got {encoder!r}.")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    options = dict(revision=revision, trust_remote_code=trust_remote_code)
    config = AutoConfig.from_pretrained(model_name_or_path, **options)
    if config.model_type == PrJepaConfig.model_type:
        model = PrJepaModel.from_pretrained(model_name_or_path, encoder=encoder, revision=revision, dtype=dtype)
    elif encoder == "target":
        raise ValueError(
            f"--encoder target needs a PrJEPA pretraining checkpoint; {model_name_or_path!r} is a "
            f"{config.model_type!r} model with a single encoder. Use --encoder online."
        )
    else:
        try:
            model = AutoModel.from_pretrained(model_name_or_path, dtype=dtype, **options)
        except ValueError as error:
            raise ValueError(
                f"{model_name_or_path!r} ({config.model_type}) has no AutoModel class: it is not an encoder this probe "
                f"can read ({error})."
            ) from error
        if config.is_encoder_decoder:
            model = model.get_encoder()
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_name or model_name_or_path, **options)
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(
            f"Could not load a tokenizer from {tokenizer_name or model_name_or_path!r} ({error}); pass the model's "
            "tokenizer with --tokenizer_name."
        ) from error
    if isinstance(model.config, PrJepaConfig):
        model.config.check_tokenizer(tokenizer)
    model = model.to(device).eval().requires_grad_(False)
    check_text_encoder(model, tokenizer, model_name_or_path)
    return LoadedEncoder(model, tokenizer, weights_fingerprint(model), tokenizer_fingerprint(tokenizer))


# --------------------------------------------------------------------------------------------------------------------
# Feature extraction and its cache


@dataclass
class TokenFeatures:
    """Unpooled last-layer states of `n` texts, stored ragged so that memory grows with real tokens, not padding.

    states: `(total_tokens, hidden)` float32, the real tokens of text 0, then of text 1, …
    lengths: `(n,)` int64, real tokens per text.
    """

    states: np.ndarray
    lengths: np.ndarray
    offsets: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def hidden_size(self) -> int:
        return self.states.shape[1]

    def padded(self, indices: Sequence[int] | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The texts at `indices` as zero-padded states `(b, longest, hidden)` and a 1/0 mask `(b, longest)`."""
        indices = np.asarray(indices)
        lengths = self.lengths[indices]
        states = np.zeros((len(indices), int(lengths.max()), self.hidden_size), dtype=np.float32)
        mask = np.zeros(states.shape[:2], dtype=np.int64)
        for row, (start, length) in enumerate(zip(self.offsets[indices], lengths)):
            states[row, :length] = self.states[start : start + length]
            mask[row, :length] = 1
        return torch.from_numpy(states), torch.from_numpy(mask)


Texts = Sequence[str] | Sequence[tuple[str, str]]


def tokenize_texts(tokenizer: PreTrainedTokenizerBase, texts: Texts, max_seq_length: int) -> BatchEncoding:
    """Unpadded token ids (and the tokenizer's other inputs) of strings, or of `(first, second)` pairs as one
    sequence, truncated to `max_seq_length`: exactly what the encoder sees in `extract_features`."""
    pairs = isinstance(texts[0], (tuple, list))
    firsts = [text[0] for text in texts] if pairs else list(texts)
    seconds = [text[1] for text in texts] if pairs else None
    return tokenizer(firsts, seconds, truncation=True, max_length=max_seq_length)


def _hidden_state_batches(
    encoder: LoadedEncoder, texts: Texts, max_seq_length: int, batch_size: int
) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """Yields `(indices (b,), last_hidden_state (b, seq, hidden) float32, attention_mask (b, seq))`, longest texts
    first so that each batch pads little (and an out-of-memory error comes at once); `indices` restore the order."""
    encodings = tokenize_texts(encoder.tokenizer, texts, max_seq_length)
    lengths = np.array([len(ids) for ids in encodings["input_ids"]])
    order = np.argsort(-lengths, kind="stable")
    model = encoder.model
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            batch = encoder.tokenizer.pad(
                {key: [values[i] for i in indices] for key, values in encodings.items()},
                padding_side="right",
                return_tensors="pt",
            ).to(model.device)
            hidden = model(**batch, return_dict=True).last_hidden_state
            yield indices, hidden.float(), batch["attention_mask"]


def _compute_features(
    encoder: LoadedEncoder, texts: Texts, poolings: Sequence[str], max_seq_length: int, batch_size: int
) -> dict[str, np.ndarray | TokenFeatures]:
    features: dict[str, np.ndarray] = {}
    token_states: list[np.ndarray | None] = [None] * len(texts)
    fixed = [pooling for pooling in poolings if pooling != TOKENS]
    for indices, hidden, mask in _hidden_state_batches(encoder, texts, max_seq_length, batch_size):
        for pooling in fixed:
            vectors = pool_hidden_states(hidden, mask, pooling).cpu().numpy()
            if pooling not in features:
                features[pooling] = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            features[pooling][indices] = vectors
        if TOKENS in poolings:
            hidden = hidden.cpu().numpy()
            for row, (index, length) in enumerate(zip(indices, mask.sum(dim=1).tolist())):
                token_states[index] = hidden[row, :length]
    if TOKENS in poolings:
        lengths = np.array([len(states) for states in token_states], dtype=np.int64)
        features[TOKENS] = TokenFeatures(np.concatenate(token_states), lengths)
    return features


def feature_cache_key(encoder: LoadedEncoder, texts: Texts, max_seq_length: int) -> str:
    """Hex key of everything that determines the features: weights, tokenizer, max length and the texts themselves
    (so a task, split, subsample or pair mode never reuses another's features)."""
    digest = hashlib.sha256()
    settings = [CACHE_FORMAT_VERSION, encoder.fingerprint, encoder.tokenizer_fingerprint, max_seq_length]
    digest.update(json.dumps(settings).encode())
    digest.update(json.dumps(list(texts)).encode())
    return digest.hexdigest()[:24]


def _cache_path(cache_dir: str, name: str, pooling: str, key: str) -> str:
    readable = re.sub(r"[^A-Za-z0-9_.+-]", "_", name)
    return os.path.join(cache_dir, f"{readable}.{pooling}.{key}." + ("npz" if pooling == TOKENS else "npy"))


def _load_cached(path: str) -> np.ndarray | TokenFeatures:
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as stored:
            return TokenFeatures(stored["states"], stored["lengths"])
    return np.load(path, allow_pickle=False)


def _save_cached(path: str, features: np.ndarray | TokenFeatures) -> None:
    # Written under a temporary name and renamed, so an interrupted run never leaves a truncated file behind.
    temporary = f"{path}.tmp{os.getpid()}{os.path.splitext(path)[1]}"
    if isinstance(features, TokenFeatures):
        np.savez(temporary, states=features.states, lengths=features.lengths)
    else:
        np.save(temporary, features)
    os.replace(temporary, path)


def extract_features(
    encoder: LoadedEncoder,
    texts: Texts,
    poolings: Sequence[str] = ("mean",),
    *,
    max_seq_length: int = 128,
    batch_size: int = 64,
    cache_dir: str | None = None,
    name: str = "features",
) -> dict[str, np.ndarray | TokenFeatures]:
    """Features of `texts` (strings, or `(first, second)` pairs encoded jointly as one sequence), by pooling.

    poolings: any of `"mean"`, `"max"`, `"cls"` → `(n, hidden)` float32 arrays (padding excluded), and `TOKENS` →
        a `TokenFeatures` of every real token, for the trained poolers. One encoder pass serves them all.
    cache_dir: where features are stored (`.npy` / `.npz`) under a key of the weights, the tokenizer, the max length
        and the texts; `None` disables the cache. `name` (task, split, column) only makes the file names readable.
    """
    unknown = [pooling for pooling in poolings if pooling not in FIXED_POOLINGS + (TOKENS,)]
    if unknown:
        raise ValueError(
            f"Cannot extract {unknown}: extract_features takes {FIXED_POOLINGS + (TOKENS,)}; trained poolings "
            f"{TRAINED_POOLINGS} pool {TOKENS!r} features with train_pooler / pool_tokens."
        )
    if len(texts) == 0:
        raise ValueError(f"No texts to encode for {name!r}.")
    paths = {}
    if cache_dir is not None:
        key = feature_cache_key(encoder, texts, max_seq_length)
        paths = {pooling: _cache_path(cache_dir, name, pooling, key) for pooling in poolings}
    features = {pooling: _load_cached(path) for pooling, path in paths.items() if os.path.exists(path)}
    missing = [pooling for pooling in poolings if pooling not in features]
    if missing:
        computed = _compute_features(encoder, texts, missing, max_seq_length, batch_size)
        if cache_dir is not None:
            os.makedirs(cache_dir, exist_ok=True)
            for pooling in missing:
                _save_cached(paths[pooling], computed[pooling])
        features.update(computed)
    return {pooling: features[pooling] for pooling in poolings}


def pair_features(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """InferSent/SentEval pair features: `(n, d)`, `(n, d)` → `[u, v, |u − v|, u ⊙ v]` `(n, 4d)`."""
    return torch.cat([first, second, (first - second).abs(), first * second], dim=-1)


def combine_views(views: Sequence[np.ndarray]) -> np.ndarray:
    """One view's `(n, d)` features unchanged, or a separately encoded pair's `(n, 4d)` `pair_features`."""
    if len(views) == 1:
        return views[0]
    return pair_features(*(torch.from_numpy(view) for view in views)).numpy()


# --------------------------------------------------------------------------------------------------------------------
# Trained poolers


def _softmax_pool(states: torch.Tensor, mask: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Σ_t softmax(logits)_t · states_t over the real tokens t.

    states `(b, seq, d)`, mask (1 real / 0 padding) and logits `(b, seq)` → `(b, d)`."""
    weights = logits.masked_fill(~mask.bool(), float("-inf")).softmax(dim=-1)
    return torch.einsum("bs,bsd->bd", weights, states)


class WeightedPooler(nn.Module):
    """Learned weighted mean: one logit per position, softmax over the real tokens. Starts as the plain mean."""

    def __init__(self, hidden_size: int, max_positions: int):
        super().__init__()
        self.position_logits = nn.Parameter(torch.zeros(max_positions))

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """states `(b, seq, hidden)`, mask `(b, seq)` 1/0 → `(b, hidden)`."""
        if states.shape[1] > len(self.position_logits):
            raise ValueError(
                f"Sequences of {states.shape[1]} tokens exceed the pooler's {len(self.position_logits)} positions; "
                "build it with max_positions of at least the extraction's max_seq_length."
            )
        return _softmax_pool(states, mask, self.position_logits[: states.shape[1]].expand(mask.shape))


class AttentionPooler(nn.Module):
    """Attention pooling: a learned query scores key-projected tokens, and the softmax of the scores over the real
    tokens weights the token states. Starts as the plain mean (zero query)."""

    def __init__(self, hidden_size: int):
        super().__init__()
        # No key bias: it would add the same score to every token, which the softmax cancels.
        self.key = nn.Linear(hidden_size, hidden_size, bias=False)
        self.query = nn.Parameter(torch.zeros(hidden_size))

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """states `(b, seq, hidden)`, mask `(b, seq)` 1/0 → `(b, hidden)`."""
        # q·(W x) = (Wᵀq)·x: one vector product per token instead of projecting every token.
        scores = states @ (self.key.weight.t() @ self.query) / math.sqrt(states.shape[-1])
        return _softmax_pool(states, mask, scores)


def make_pooler(kind: str, hidden_size: int, max_positions: int) -> nn.Module:
    """A `WeightedPooler` (`"weighted"`) or an `AttentionPooler` (`"attention"`), both starting as the mean."""
    if kind == "weighted":
        return WeightedPooler(hidden_size, max_positions)
    if kind == "attention":
        return AttentionPooler(hidden_size)
    raise ValueError(f"Unknown trained pooling {kind!r}; choose one of {TRAINED_POOLINGS}.")


def _pooled_views(pooler: nn.Module, views: Sequence[TokenFeatures], indices: np.ndarray) -> torch.Tensor:
    pooled = [pooler(*view.padded(indices)) for view in views]
    return pooled[0] if len(pooled) == 1 else pair_features(*pooled)


@torch.no_grad()
def _pool_all(pooler: nn.Module, views: Sequence[TokenFeatures], batch_size: int = 256) -> torch.Tensor:
    chunks = np.array_split(np.arange(len(views[0])), math.ceil(len(views[0]) / batch_size))
    return torch.cat([_pooled_views(pooler, views, chunk) for chunk in chunks])


@contextlib.contextmanager
def single_torch_thread() -> Iterator[None]:
    """Runs torch on one intra-op thread (restored after). The poolers' ops are small, so a thread pool spends more
    time handing work over than computing, disastrously on a busy CPU: `train_pooler` on 5,000 texts took 35 s with
    two threads and 1.2 s with one on a shared 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@single_torch_thread()
def pool_tokens(pooler: nn.Module, tokens: TokenFeatures, batch_size: int = 256) -> np.ndarray:
    """Pools every text of `tokens` with a (trained) pooler → `(n, hidden)` float32."""
    return _pool_all(pooler, [tokens], batch_size).numpy()


@single_torch_thread()
def train_pooler(
    kind: str,
    tokens: TokenFeatures | Sequence[TokenFeatures],
    labels: np.ndarray,
    *,
    is_regression: bool,
    max_positions: int,
    epochs: int = 5,
    learning_rate: float = 1e-2,
    weight_decay: float = 1e-2,
    batch_size: int = 128,
    seed: int = 0,
) -> nn.Module:
    """Trains a `kind` pooler jointly with a linear head on the training split and returns the pooler frozen.

    tokens: the training texts' `TokenFeatures`, or one per sentence of a separately encoded pair (one pooler pools
        both; the head sees their `pair_features`).
    labels: `(n,)` class ids from 0, or scores.
    The head reads pooled features standardised with statistics of the initial (mean) pooling, fixed during
    training; AdamW with decoupled weight decay; cross-entropy, or squared error on standardised scores.
    """
    views = [tokens] if isinstance(tokens, TokenFeatures) else list(tokens)
    if any(len(view) != len(labels) for view in views):
        raise ValueError(f"{[len(view) for view in views]} texts but {len(labels)} labels.")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        pooler = make_pooler(kind, views[0].hidden_size, max_positions)
        initial = _pool_all(pooler, views)
        # A feature constant under mean pooling keeps scale 1 (as in StandardScaler), not a huge 1/std.
        center, spread = initial.mean(dim=0), initial.std(dim=0)
        scale = torch.where(spread > 1e-6, spread, torch.ones_like(spread))
        head = nn.Linear(initial.shape[1], 1 if is_regression else int(labels.max()) + 1)
    targets = torch.from_numpy(labels)
    if is_regression:
        targets = ((targets - targets.mean()) / targets.std().clamp(min=1e-6)).float()
    parameters = list(pooler.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(labels), generator=generator).split(batch_size):
            outputs = head((_pooled_views(pooler, views, batch.numpy()) - center) / scale)
            if is_regression:
                loss = F.mse_loss(outputs.squeeze(-1), targets[batch])
            else:
                loss = F.cross_entropy(outputs, targets[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return pooler.eval().requires_grad_(False)


# --------------------------------------------------------------------------------------------------------------------
# Linear probe


@dataclass
class LinearProbe:
    """A standardise → logistic regression (classes) / ridge (scores) pipeline refit on the whole training split.

    regularisation: the chosen C (inverse L2 strength, logistic regression) or alpha (L2 strength, ridge).
    cv_scores: mean k-fold score on the training split for every grid value (`scoring` names the scorer).
    """

    model: Pipeline
    regularisation_name: str
    regularisation: float
    cv_scores: dict[float, float]
    scoring: str
    folds: int

    def predict(self, features: np.ndarray) -> np.ndarray:
        """`(n, d)` → `(n,)` class ids or scores."""
        return self.model.predict(features)

    @property
    def at_grid_edge(self) -> bool:
        """The chosen value is the grid's smallest or largest: a wider grid might have scored better."""
        return len(self.cv_scores) > 1 and self.regularisation in (min(self.cv_scores), max(self.cv_scores))


def fit_linear_probe(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    is_regression: bool,
    grid: Sequence[float],
    folds: int = 5,
    seed: int = 0,
    scoring: str | None = None,
) -> LinearProbe:
    """Chooses the L2 strength by `folds`-fold cross-validation on the training data alone (stratified for classes,
    shuffled with `seed`), then refits on all of it. features `(n, d)`, labels `(n,)`; `scoring` is a scikit-learn
    scorer name (default accuracy / R²). Nothing of the validation split is seen."""
    if len(grid) == 0:
        raise ValueError("The regularisation grid is empty; give at least one value.")
    if is_regression:
        name, estimator, splitter = "alpha", Ridge(), KFold(folds, shuffle=True, random_state=seed)
    else:
        smallest = min(Counter(labels.tolist()).values())
        if smallest < 2:
            raise ValueError(
                "A class has a single training example; k-fold cross-validation needs at least two per class."
            )
        folds = min(folds, smallest)
        # lbfgs fits the multinomial model for more than two classes.
        name, estimator = "C", LogisticRegression(max_iter=1000)
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    pipeline = Pipeline([("scale", StandardScaler()), ("head", estimator)])
    search = GridSearchCV(pipeline, {f"head__{name}": list(grid)}, scoring=scoring, cv=splitter, error_score="raise")
    # Threaded BLAS makes these small solves slower, not faster: on 2 cores beside torch's thread pool one fit took
    # 13x longer with two BLAS threads than with one.
    with threadpool_limits(limits=1, user_api="blas"):
        search.fit(features, labels)
    cv_scores = {float(value): float(score) for value, score in zip(grid, search.cv_results_["mean_test_score"])}
    return LinearProbe(
        model=search.best_estimator_,
        regularisation_name=name,
        regularisation=float(search.best_params_[f"head__{name}"]),
        cv_scores=cv_scores,
        scoring=scoring or ("r2" if is_regression else "accuracy"),
        folds=folds,
    )


# --------------------------------------------------------------------------------------------------------------------
# Metrics and model cards


@functools.cache
def load_glue_metric(config_name: str) -> tuple[evaluate.EvaluationModule, str]:
    """The Hub's `glue` metric for `config_name`, or this project's copy (`metrics/glue`) when the Hub cannot be
    reached; with the name of the implementation used."""
    try:
        return evaluate.load("glue", config_name), "glue (Hugging Face Hub)"
    except (OSError, ImportError) as error:
        logger.info("Hub glue metric unavailable (%s); using %s", error, LOCAL_GLUE_METRIC)
        return evaluate.load(LOCAL_GLUE_METRIC, config_name), f"glue (local: {LOCAL_GLUE_METRIC})"


def probe_description(pooling: str, encoder: str = "online", pair_encoding: str | None = None) -> str:
    """How a score was obtained, e.g. `"linear probe, mean pooling, target encoder"`; tells model-index entries of
    different probes apart."""
    parts = ["linear probe", f"{pooling} pooling"]
    if encoder != "online":
        parts.append(f"{encoder} encoder")
    if pair_encoding == "joint":
        parts.append("joint pair encoding")
    return ", ".join(parts)


def glue_eval_result(task: str, split: str, metric: str, value: float, description: str) -> EvalResult:
    """A model-index entry for one GLUE score (dataset `glue`, the task as config)."""
    return EvalResult(
        task_type="text-classification",
        dataset_type="glue",
        dataset_name=f"GLUE {task.upper()}",
        dataset_config=task,
        dataset_split=split,
        metric_type=metric,
        metric_value=round(value, 4),
        metric_name=f"{metric} ({description})",
        metric_config=description,
    )


def update_model_card(
    model_name_or_path: str, eval_results: Sequence[EvalResult], push_to_hub_repo: str | None = None
) -> ModelCard:
    """Merges `eval_results` into the `model-index` of a model's card and saves it: a folder's README.md (created if
    absent), or a Hub repo's card. An entry replaces an older one for the same task, dataset, split, metric and
    probe; every other entry, metadata field and the card's text are kept. `push_to_hub_repo` pushes the card."""
    local = os.path.isdir(model_name_or_path)
    card_path = os.path.join(model_name_or_path, "README.md")
    if local and os.path.exists(card_path):
        card = ModelCard.load(card_path)
    elif local:
        name = os.path.basename(os.path.normpath(model_name_or_path))
        card = ModelCard(f"---\n{ModelCardData(model_name=name).to_yaml()}\n---\n\n# {name}\n")
    else:
        card = ModelCard.load(model_name_or_path)
    previous = card.data.eval_results or []
    kept = [old for old in previous if not any(new.is_equal_except_value(old) for new in eval_results)]
    card.data.eval_results = kept + list(eval_results)
    card.data.model_name = card.data.model_name or os.path.basename(os.path.normpath(model_name_or_path))
    if local:
        card.save(card_path)
    if push_to_hub_repo is not None:
        card.push_to_hub(push_to_hub_repo)
    return card
