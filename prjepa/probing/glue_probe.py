"""Linear probing of frozen encoders on GLUE (docs/method.md §4.1), for PrJEPA checkpoints and any transformers
encoder.

Features are extracted once per (weights, layer, texts, pooling, max length) and cached; the head is a logistic
regression (ridge for STS-B) on standardised features whose L2 strength is chosen by k-fold cross-validation on the
training split alone, refit on the whole training split and scored once on validation. Several models are compared
side by side:

    python run_glue_probe.py --model_name_or_path prjepa-hybrid prjepa-mlm bert-base-uncased \\
        --task_name sst2 mrpc stsb cola rte --glue_path ../shared/data/glue --max_train_samples 20000 \\
        --output_dir probe_results

Writes `results.json` (every score, the chosen regularisation, feature sizes, timings, library versions) and
`results.md` (one table across tasks) to `--output_dir`.
"""

import logging
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..data_sources import check_hub_reachable, check_push_access
from ..utils import check_counts, check_folders, library_versions, markdown_table, parse_command_line, script_parser
from .arguments import (
    EncoderArguments,
    TaskDataArguments,
    check_no_repeated_models,
    check_no_repeats,
    check_seed,
)
from .encoders import ONLINE_ENCODER, LoadedEncoder, load_encoder
from .features import (
    FIXED_POOLINGS,
    POOLINGS,
    TOKENS,
    TRAINED_POOLINGS,
    combine_views,
    default_cache_dir,
    extract_task_features,
)
from .linear_probe import check_classes, check_scores, cosine_spearman, fit_linear_probe, load_glue_metric
from .poolers import PoolerTraining, pool_tokens, train_pooler
from .results import (
    PROBE_LIBRARIES,
    check_same_data,
    check_same_encoders,
    earlier_results,
    encoder_fingerprints,
    glue_eval_result,
    probe_description,
    update_model_card,
    write_results,
)
from .tasks import GLUE_TASKS, PAIR_ENCODINGS, TaskData, check_joint_pair_length

logger = logging.getLogger(__name__)

RESULT_FILES = ("results.json", "results.md")
METRIC_LABELS = {
    "accuracy": "acc",
    "f1": "F1",
    "matthews_correlation": "MCC",
    "spearmanr": "Spearman",
    "pearson": "Pearson",
}


@dataclass(kw_only=True)
class ModelArguments(EncoderArguments):
    model_name_or_path: list[str] = field(metadata={"help": "One or more Hub ids or folders, compared side by side."})
    revision: str | None = field(
        default=None,
        metadata={
            "help": "Hub revision (branch, tag or commit) of the Hub models (local folders are read as they are: "
            "with folders alone it is refused); other than main, not with --update_model_card (a card lives on main, "
            "beside main's weights)."
        },
    )
    bf16: bool = field(default=False, metadata={"help": "Run the encoder in bfloat16."})
    hidden_layer: int | None = field(
        default=None,
        metadata={
            "help": "Probe the output of this layer (0: the embeddings) instead of the encoder's last hidden state, "
            "e.g. to see what the layers above the embeddings add."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        check_no_repeated_models("--model_name_or_path", self.model_name_or_path)
        if self.hidden_layer is not None and self.hidden_layer < 0:
            raise ValueError(
                f"--hidden_layer {self.hidden_layer}: layers count from 0 (the embeddings) up; drop the option for the "
                "encoder's last hidden state."
            )


@dataclass
class DataArguments(TaskDataArguments):
    task_name: list[str] = field(
        default_factory=list,
        metadata={"help": f"GLUE tasks ({', '.join(GLUE_TASKS)}) or 'all'; none for a custom task (--train_file)."},
    )

    def __post_init__(self):
        super().__post_init__()
        if "all" in self.task_name and len(self.task_name) > 1:
            others = [name for name in self.task_name if name != "all"]
            raise ValueError(f"--task_name all names every GLUE task: give it alone, not with {others}.")

    def task_names(self) -> list[str]:
        """The tasks to probe, `all` read as every GLUE task."""
        return list(GLUE_TASKS) if self.task_name == ["all"] else self.task_name


@dataclass
class ProbeArguments:
    pooling: list[str] = field(
        default_factory=lambda: ["mean"], metadata={"help": "Poolings to probe.", "choices": list(POOLINGS)}
    )
    pair_encoding: str = field(
        default="separate",
        metadata={
            "help": "separate: [u, v, |u-v|, u*v] of two encodings; joint: one sequence.",
            "choices": list(PAIR_ENCODINGS),
        },
    )
    c_grid: list[float] = field(
        default_factory=lambda: [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0],
        metadata={"help": "Logistic regression C values (inverse L2 strength)."},
    )
    alpha_grid: list[float] = field(
        default_factory=lambda: [1.0, 10.0, 100.0, 1e3, 1e4, 1e5],
        metadata={"help": "Ridge alpha values (L2 strength, regression)."},
    )
    cv_folds: int = field(default=5, metadata={"help": "Cross-validation folds on the training split."})
    seed: int = field(default=0, metadata={"help": "Seeds subsampling, folds and pooler training."})
    batch_size: int = field(default=64, metadata={"help": "Encoder batch size."})
    cache_dir: str = field(default_factory=default_cache_dir, metadata={"help": "Feature cache."})
    output_dir: str = field(default="probe_results", metadata={"help": "Where results.json and results.md go."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Replace results already in --output_dir."})
    pooler_epochs: int = field(
        default=PoolerTraining.epochs, metadata={"help": "Epochs of weighted/attention pooler training."}
    )
    pooler_learning_rate: float = field(
        default=PoolerTraining.learning_rate, metadata={"help": "AdamW learning rate of pooler training."}
    )
    pooler_weight_decay: float = field(
        default=PoolerTraining.weight_decay, metadata={"help": "AdamW weight decay of pooler training."}
    )
    update_model_card: bool = field(
        default=False, metadata={"help": "Write GLUE scores into each model's README.md model-index."}
    )
    push_to_hub: bool = field(default=False, metadata={"help": "Push each updated card to the Hub."})
    hub_model_id: str | None = field(
        default=None, metadata={"help": "Repo to push a local folder's card to (with --push_to_hub)."}
    )

    def __post_init__(self):
        check_seed(self.seed)
        check_no_repeats("--pooling", self.pooling)
        check_folders(output_dir=self.output_dir, cache_dir=self.cache_dir)
        if self.cv_folds < 2:
            raise ValueError(f"--cv_folds {self.cv_folds}: cross-validation needs at least 2 folds (5 is the default).")
        check_counts(batch_size=self.batch_size, pooler_epochs=self.pooler_epochs)
        for option in ("c_grid", "alpha_grid"):
            values = getattr(self, option)
            if not values or not all(math.isfinite(value) and value > 0 for value in values):
                raise ValueError(f"--{option} {values} must hold at least one value, all positive and finite.")
        if not (math.isfinite(self.pooler_learning_rate) and self.pooler_learning_rate > 0):
            raise ValueError(f"--pooler_learning_rate {self.pooler_learning_rate} must be positive (default 0.01).")
        if not (math.isfinite(self.pooler_weight_decay) and self.pooler_weight_decay >= 0):
            raise ValueError(f"--pooler_weight_decay {self.pooler_weight_decay} must be 0 or more (default 0.01).")


def task_features(
    encoder: LoadedEncoder, task: TaskData, data_args: DataArguments, probe_args: ProbeArguments
) -> dict[str, list[dict]]:
    """Per split, one `extract_features` result per encoded view (a pair encoded separately has two)."""
    return {
        split: extract_task_features(
            encoder,
            task,
            split,
            probe_args.pooling,
            pair_encoding=probe_args.pair_encoding,
            max_seq_length=data_args.max_seq_length,
            batch_size=probe_args.batch_size,
            cache_dir=probe_args.cache_dir,
        )
        for split in ("train",) + task.validation_splits
    }


def pooled_views(
    pooling: str,
    features: dict[str, list[dict]],
    task: TaskData,
    data_args: DataArguments,
    probe_args: ProbeArguments,
    rows: np.ndarray | None = None,
) -> dict[str, list[np.ndarray]]:
    """Per split, each view's `(n, hidden)` features under `pooling`; a trained pooling is fitted first on the training
    split (its `rows` alone, when given)."""
    if pooling in FIXED_POOLINGS:
        return {split: [view[pooling] for view in views] for split, views in features.items()}
    pooler = train_pooler(
        pooling,
        [view[TOKENS] for view in features["train"]],
        task.labels("train"),
        is_regression=task.is_regression,
        max_positions=data_args.max_seq_length,
        training=PoolerTraining(
            epochs=probe_args.pooler_epochs,
            learning_rate=probe_args.pooler_learning_rate,
            weight_decay=probe_args.pooler_weight_decay,
            seed=probe_args.seed,
        ),
        rows=rows,
    )
    return {split: [pool_tokens(pooler, view[TOKENS]) for view in views] for split, views in features.items()}


def fold_features(
    pooling: str, features: dict[str, list[dict]], task: TaskData, data_args: DataArguments, probe_args: ProbeArguments
) -> Callable[[np.ndarray], np.ndarray] | None:
    """`fit_linear_probe`'s `fold_features` for a trained pooling: the training split pooled by a pooler trained on a
    fold's training rows alone; None for a fixed pooling. A pooler trained on every row has seen the labels each fold
    is scored on: on 600 random labels (128-dimensional token states) the chosen C's cross-validation accuracy was
    0.66-0.69 beside a majority class of 0.51-0.54."""
    if pooling in FIXED_POOLINGS:
        return None
    training = {"train": features["train"]}
    return lambda rows: combine_views(pooled_views(pooling, training, task, data_args, probe_args, rows)["train"])


def probe_task(
    encoder: LoadedEncoder, task: TaskData, data_args: DataArguments, probe_args: ProbeArguments, name: str
) -> dict:
    """Extracts features once, then fits one probe per pooling on train and scores it once per validation split."""
    start = time.perf_counter()
    features = task_features(encoder, task, data_args, probe_args)
    metric, metric_implementation = load_glue_metric(task.metric_config)
    result = {
        "train_size": len(task.labels("train")),
        "train_size_before_subsampling": task.train_size_before_subsampling,
        "validation_sizes": {split: len(task.labels(split)) for split in task.validation_splits},
        "metric_implementation": metric_implementation,
        "feature_seconds": round(time.perf_counter() - start, 2),
        "poolings": {},
    }
    if not task.is_regression:
        majority = np.bincount(task.labels("train")).argmax()
        result["majority"] = {
            split: metric.compute(predictions=np.full(len(task.labels(split)), majority), references=task.labels(split))
            for split in task.validation_splits
        }

    for pooling in probe_args.pooling:
        start = time.perf_counter()
        views = pooled_views(pooling, features, task, data_args, probe_args)
        inputs = {split: combine_views(split_views) for split, split_views in views.items()}
        probe = fit_linear_probe(
            inputs["train"],
            task.labels("train"),
            is_regression=task.is_regression,
            grid=probe_args.alpha_grid if task.is_regression else probe_args.c_grid,
            folds=probe_args.cv_folds,
            seed=probe_args.seed,
            scoring=task.cv_scoring,
            fold_features=fold_features(pooling, features, task, data_args, probe_args),
        )
        scores = {}
        for split in task.validation_splits:
            scores[split] = metric.compute(predictions=probe.predict(inputs[split]), references=task.labels(split))
            if task.is_regression and len(views[split]) == 2:
                scores[split]["cosine_spearmanr"] = cosine_spearman(*views[split], task.labels(split))
            baseline = result.get("majority", {}).get(split, {})
            shown = ", ".join(f"{key} {100 * value:.2f}" for key, value in scores[split].items())
            shown += f" (majority {', '.join(f'{100 * value:.2f}' for value in baseline.values())})" if baseline else ""
            print(
                f"[{name}] {task.name} {split} {pooling}: {shown}; {probe.regularisation_name}={probe.regularisation:g}"
                f" ({probe.folds}-fold CV {probe.scoring} on train {probe.cv_scores[probe.regularisation]:.4f})"
            )
        if probe.at_grid_edge:
            grid = "--alpha_grid" if task.is_regression else "--c_grid"
            chosen = f"{name} {task.name} {pooling}: {probe.regularisation_name}={probe.regularisation:g}"
            logger.warning(f"{chosen} is at an end of {grid}; a wider grid may fit better.")
        cv = {"scoring": probe.scoring, "folds": probe.folds, "scores": probe.cv_scores}
        if pooling in TRAINED_POOLINGS:
            cv["poolers_trained_per_fold"] = True
        result["poolings"][pooling] = {
            "feature_dim": int(inputs["train"].shape[1]),
            "regularisation": {probe.regularisation_name: probe.regularisation, "at_grid_edge": probe.at_grid_edge},
            "cv": cv,
            "fit_seconds": round(time.perf_counter() - start, 2),
            "scores": scores,
        }
    return result


def check_poolers_trained_per_fold(output_dir: str, models: list[dict]) -> None:
    """Results of an older version, whose trained poolers saw every training label before the cross-validation that
    chose their C (their CV records no `poolers_trained_per_fold`), are not this protocol's: a rerun must recompute
    them, which only --overwrite_output_dir allows."""
    earlier = sorted(
        {
            f"{pooling} pooling of {model['model']}"
            for model in models
            for task in model["tasks"].values()
            for pooling, outcome in task["poolings"].items()
            if pooling in TRAINED_POOLINGS and not outcome["cv"].get("poolers_trained_per_fold")
        }
    )
    if earlier:
        raise ValueError(
            f"{output_dir} holds results whose regularisation for the {', '.join(earlier)} was chosen by "
            "cross-validation on rows the pooler had been trained on (an older version's protocol); pass "
            "--overwrite_output_dir to measure them again, or choose another --output_dir."
        )


def model_label(model: dict) -> str:
    """The model's path, with the encoder and layer read when they are not the default ones."""
    details = [model["encoder"]] if model["encoder"] != ONLINE_ENCODER else []
    details += [] if model["hidden_layer"] is None else [f"layer {model['hidden_layer']}"]
    return model["model"] + (f" ({', '.join(details)})" if details else "")


def results_table(models: list[dict], tasks: list[TaskData]) -> str:
    """One row per (model, pooling) plus the majority-class row, one column per scored split; scores × 100."""
    columns = [(task, split) for task in tasks for split in task.validation_splits]
    header = ["model", "pooling"]
    for task, split in columns:
        split_name = "" if split == "validation" else f" {split.removeprefix('validation_')}"
        header.append(f"{task.name}{split_name} " + " / ".join(METRIC_LABELS[metric] for metric in task.metric_names))
        if task.is_regression:
            header.append(f"{task.name}{split_name} cosine Spearman")

    def cells(scores: dict | None, task: TaskData) -> list[str]:
        if scores is None:
            return ["–"] * (2 if task.is_regression else 1)
        values = [" / ".join(f"{100 * scores[metric]:.1f}" for metric in task.metric_names)]
        if task.is_regression:
            values.append(f"{100 * scores['cosine_spearmanr']:.1f}" if "cosine_spearmanr" in scores else "–")
        return values

    majority = [models[0]["tasks"][task.name].get("majority", {}).get(split) for task, split in columns]
    rows = [["majority class", ""] + sum((cells(scores, task) for scores, (task, _) in zip(majority, columns)), [])]
    for model in models:
        for pooling in model["poolings"]:
            row = [model_label(model), pooling]
            for task, split in columns:
                row += cells(model["tasks"][task.name]["poolings"][pooling]["scores"][split], task)
            rows.append(row)
    return markdown_table(header, rows) + "\n"


def model_card_results(model: dict, tasks: list[TaskData], probe_args: ProbeArguments) -> list:
    """model-index entries for every score of one model, each citing GLUE's dataset, task and split:
    `check_card_arguments` has refused data that are not GLUE's own."""
    entries = []
    for task in tasks:
        pair_encoding = probe_args.pair_encoding if len(task.text_columns) == 2 else None
        subset = (len(task.labels("train")), task.train_size_before_subsampling)
        for pooling, outcome in model["tasks"][task.name]["poolings"].items():
            description = probe_description(pooling, model["encoder"], pair_encoding, model["hidden_layer"], subset)
            for split, scores in outcome["scores"].items():
                for metric in task.metric_names:
                    if math.isnan(scores[metric]):  # e.g. a correlation of constant features: no score to cite
                        logger.warning(f"{metric} of {task.name} ({description}) is undefined: left off the card.")
                    entries.append(glue_eval_result(task.name, split, metric, scores[metric], description))
    return entries


def check_card_arguments(model_args: ModelArguments, probe_args: ProbeArguments, data_args: DataArguments) -> None:
    """Refuses card options that cannot be carried out, would cite GLUE for other data, or would put the scores of
    other weights on a card, before any work is done."""
    paths = model_args.model_name_or_path
    if probe_args.push_to_hub and not probe_args.update_model_card:
        folder = paths[0] if len(paths) == 1 and os.path.isdir(paths[0]) else None  # several: refused next
        target = (
            f" and --hub_model_id (the repo for folder {folder!r})" if folder and not probe_args.hub_model_id else ""
        )
        raise ValueError(f"--push_to_hub pushes the updated model card: add --update_model_card{target}.")
    # A card entry cites GLUE's dataset, task and split. Scores of a probe trained (--train_file) or scored
    # (--validation_file) on other data, or of other columns of the task's own, are not GLUE's, however the task is
    # named, and a custom task has no GLUE dataset at all. Refused rather than left off the card: the files describe
    # the run's only task, so leaving it out would turn --update_model_card into a silent no-op found out after the
    # compute.
    replaced = [f"--{split}_file" for split in ("train", "validation") if getattr(data_args, f"{split}_file")]
    glue_tasks = [GLUE_TASKS[name] for name in data_args.task_names() if name in GLUE_TASKS]
    if data_args.text_columns and any(tuple(data_args.text_columns) != task.text_columns for task in glue_tasks):
        replaced.append("--text_columns")
    if glue_tasks and data_args.label_column != "label":
        replaced.append("--label_column")
    if probe_args.update_model_card and replaced:
        raise ValueError(
            f"--update_model_card cites GLUE's own data for every score, but this run reads {' and '.join(replaced)} "
            "in their place: the scores are not GLUE's. Drop --update_model_card (results.json and results.md still "
            "hold the scores), or probe the GLUE task as it is: its own columns and splits (from the Hub's "
            "nyu-mll/glue when a local copy lacks one)."
        )
    if probe_args.hub_model_id and not probe_args.push_to_hub:
        raise ValueError(
            "--hub_model_id names the repo to push the card to: add --push_to_hub, or drop --hub_model_id."
        )
    if probe_args.hub_model_id and len(paths) > 1:
        raise ValueError("--hub_model_id names one repo: probe one --model_name_or_path when pushing a card.")
    for path in paths if probe_args.update_model_card else []:
        # A Hub card is read from and pushed to main, beside main's weights (a folder's weights ignore --revision).
        if not os.path.isdir(path) and model_args.revision not in (None, "main"):
            raise ValueError(
                f"--revision {model_args.revision} probes other weights than {path!r} holds on main, but its card is "
                "read from and pushed to main, where the scores would describe main's weights: drop "
                "--update_model_card (results.json and results.md hold the scores)."
            )
        if os.path.isdir(path) and probe_args.push_to_hub and not probe_args.hub_model_id:
            raise ValueError(f"Pushing the card of folder {path!r} needs the target repo: add --hub_model_id.")
        if not os.path.isdir(path) and not probe_args.push_to_hub:
            raise ValueError(f"The card of Hub model {path!r} can only be updated by pushing it: add --push_to_hub.")


def check_revision(model_args: ModelArguments) -> None:
    """--revision pins a commit of a Hub repo, and a local folder, which has one version, is read as it is: with no
    Hub model to pin, the revision is refused (the results would record a revision that pinned nothing); beside Hub
    models, the folders it does not pin are named."""
    if model_args.revision is None:
        return
    folders = [path for path in model_args.model_name_or_path if os.path.isdir(path)]
    if len(folders) == len(model_args.model_name_or_path):
        raise ValueError(
            f"--revision {model_args.revision} names a branch, tag or commit of a Hub repo, but every "
            f"--model_name_or_path is a local folder ({', '.join(folders)}), read as it is: drop --revision, or name "
            "the Hub repo instead of a local copy."
        )
    if folders:
        logger.warning(
            f"--revision {model_args.revision} applies to the Hub models only; the local folders {', '.join(folders)} "
            "are read as they are."
        )


def main(args: list[str] | None = None) -> dict:
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO, stream=sys.stdout)
    parser = script_parser((ModelArguments, DataArguments, ProbeArguments), __doc__)
    model_args, data_args, probe_args = parse_command_line(parser, args)
    check_revision(model_args)
    check_card_arguments(model_args, probe_args, data_args)
    if probe_args.push_to_hub:  # the cards are pushed after the whole probe: a push that cannot happen stops it first
        check_push_access(
            None,
            "drop --push_to_hub (and --update_model_card for a Hub model) for now: results.json and results.md keep "
            "the scores, and rerunning this command with --push_to_hub where the Hub can be reached reuses them and "
            "only updates and pushes the cards",
            token_option=None,
        )
    args = {**asdict(model_args), **asdict(data_args), **asdict(probe_args)}
    earlier = None if probe_args.overwrite_output_dir else earlier_results(probe_args.output_dir, RESULT_FILES, args)
    if earlier is not None:
        check_poolers_trained_per_fold(probe_args.output_dir, earlier["models"])
    task_names = data_args.task_names()
    started = time.perf_counter()
    # Every task loads first, so that a data problem stops the run before any encoding.
    tasks = data_args.load_tasks(task_names, probe_args.seed)
    data_fingerprints = {task.name: task.fingerprint() for task in tasks}
    models = [("--model_name_or_path", path) for path in model_args.model_name_or_path]
    check_hub_reachable([*models, ("--tokenizer_name", model_args.tokenizer_name)])
    for task in tasks:
        if task.is_regression:
            check_scores(task.labels("train"), probe_args.cv_folds, f"{task.name} training split")
        else:
            check_classes(task.labels("train"), probe_args.cv_folds, f"{task.name} training split", task.label_names)
        kept, total = len(task.labels("train")), task.train_size_before_subsampling
        if kept < total:
            print(f"{task.name}: training split subsampled to {kept} of {total} examples (seed {probe_args.seed})")

    def load(path: str) -> LoadedEncoder:
        return load_encoder(
            path,
            model_args.encoder,
            model_args.tokenizer_name,
            torch.bfloat16 if model_args.bf16 else torch.float32,
            model_args.device,
            model_args.revision,
            model_args.trust_remote_code,
            model_args.hidden_layer,
            data_args.max_seq_length,
        )

    # Every model loads once before any is probed, so that a bad one stops the run before work is spent; one at a
    # time, so that memory holds one model.
    def checked_fingerprints(path: str) -> dict[str, str]:
        encoder = load(path)
        if probe_args.pair_encoding == "joint":
            for task in tasks:
                check_joint_pair_length(task, data_args.max_seq_length, encoder.tokenizer)
        return encoder_fingerprints(encoder)

    fingerprints = {path: checked_fingerprints(path) for path in model_args.model_name_or_path}

    def update_cards(models: list[dict]) -> None:
        # After the results are written: a push that fails (no token, no access, no network) then loses none, and a
        # rerun, which finds them finished, updates the cards again.
        for model in models:
            repo = (probe_args.hub_model_id or model["model"]) if probe_args.push_to_hub else None
            update_model_card(model["model"], model_card_results(model, tasks, probe_args), push_to_hub_repo=repo)

    if earlier is not None:
        check_same_encoders(probe_args.output_dir, {model["model"]: model for model in earlier["models"]}, fingerprints)
        check_same_data(probe_args.output_dir, earlier.get("data_fingerprints"), data_fingerprints)
        print(
            f"{probe_args.output_dir} already holds these results (same arguments, weights, tokenizers and data): "
            "nothing to compute."
        )
        if probe_args.update_model_card:
            update_cards(earlier["models"])
        return earlier
    models = []
    for path in model_args.model_name_or_path:
        start = time.perf_counter()
        encoder = load(path)
        model = {
            "model": path,
            "encoder": model_args.encoder,
            "hidden_layer": model_args.hidden_layer,
            **encoder_fingerprints(encoder),
            "poolings": probe_args.pooling,
            "load_seconds": round(time.perf_counter() - start, 2),
            "tasks": {},
        }
        for task in tasks:
            model["tasks"][task.name] = probe_task(encoder, task, data_args, probe_args, path)
        model["total_seconds"] = round(time.perf_counter() - start, 2)
        models.append(model)
        del encoder  # frees this model before the next one loads

    results = {
        "args": args,
        "versions": library_versions(*PROBE_LIBRARIES),
        "total_seconds": round(time.perf_counter() - started, 2),
        "data_fingerprints": data_fingerprints,
        "models": models,
    }
    table = results_table(models, tasks)
    write_results(probe_args.output_dir, RESULT_FILES, results, table)
    if probe_args.update_model_card:
        update_cards(models)
    print(table)
    print(f"Wrote {probe_args.output_dir}/results.json and results.md in {results['total_seconds']:.0f} s.")
    return results


if __name__ == "__main__":
    main()
