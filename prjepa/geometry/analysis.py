"""Representation geometry (docs/method.md §4.2) of frozen encoders side by side: eigenvalue spectrum and spectral
entropy, effective rank, token vs semantic probe, alignment and uniformity, class distances and anisotropy, per
dataset and pooling, with bootstrap confidence intervals and the uniformity ratio of two models (the paper's "5–10×
more uniform"):

    python run_representation_analysis.py --models hybrid=prjepa-hybrid mlm=prjepa-mlm \\
        --task_name sst2 cola stsb --glue_path ../shared/data/glue --max_samples 1000 --max_train_samples 5000 \\
        --output_dir analysis_results

Loading, feature extraction, pooling, the feature cache and pooler training are the probe's (`prjepa.probing`); every
metric, table and plot is `prjepa.geometry`'s. How each example becomes the one vector that is measured:

- Sentence pairs (MRPC, STS-B, RTE, ...) are encoded jointly as one sequence `[CLS] a [SEP] b [SEP]` and pooled like
  a single sentence, so that every example is one point in the encoder's own space, as for single-sentence tasks.
  (The probe's `[u, v, |u − v|, u ⊙ v]` is built for a classifier: its four blocks have different scales, which
  distances and spectra would weigh arbitrarily.)
- Continuous labels (STS-B scores) are rounded to the nearest integer, halves up (STS-B: six classes 0–5), for the
  metrics that need classes: semantic probe, alignment, class distances. Trained poolers regress the scores.
- The token probe's target is each example's most frequent non-special token in what the encoder reads (after
  truncation), tokenised by the first model's tokenizer, so that every model is asked for the same targets.
- `weighted` and `attention` poolers are trained on the task's training split for its label with the probe's trainer,
  then frozen, before the evaluation split is measured; `--untrained_poolers` measures them at a random
  initialisation instead, as the original did.

Writes `analysis.json` (every number, the settings, sample counts, library versions), `analysis.md` and PNG plots to
`--output_dir`; `main(argv)` returns the JSON dict.
"""

import json
import logging
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from ..data_sources import check_hub_reachable
from ..probing import (
    CUSTOM_TASK,
    FIXED_POOLINGS,
    GLUE_TASKS,
    POOLINGS,
    PROBE_LIBRARIES,
    TOKENS,
    TRAINED_POOLINGS,
    EncoderArguments,
    LoadedEncoder,
    PoolerTraining,
    TaskData,
    TaskDataArguments,
    Texts,
    check_joint_pair_length,
    check_same_data,
    check_same_encoders,
    default_cache_dir,
    earlier_results,
    encoder_fingerprints,
    extract_task_features,
    load_encoder,
    make_pooler,
    pool_tokens,
    seeded_subset,
    tokenize_texts,
    train_pooler,
    write_results,
)
from ..probing.arguments import check_no_repeated_models, check_no_repeats, check_seed
from ..utils import (
    atomic_path,
    check_counts,
    check_folders,
    library_versions,
    markdown_table,
    parse_command_line,
    script_parser,
)
from .metrics import most_frequent_tokens
from .report import MIN_RELIABLE_SAMPLES, compare_models, render_markdown

logger = logging.getLogger(__name__)

PAIR_RULE = "joint: the pair is encoded as one sequence [CLS] a [SEP] b [SEP] and pooled like one sentence"
SCORE_RULE = "continuous labels rounded to the nearest integer (halves up) for the class metrics"
TOKEN_RULE = "most frequent non-special token of the encoded sequence, from the first model's tokenizer"
UNTRAINED_RULE = "untrained: random initialisation (position logits and query ~ N(0, 1)), as in the original"
TRAINED_RULE = "trained on the training split for the task's label, then frozen"
CENTRING_RULE = "each resample centred on its own mean feature (first order in the centre)"
RESULT_FILES = ("analysis.json", "analysis.md")
MODEL_SPEC = re.compile(r"([A-Za-z0-9_.-]+)=(.+)")


@dataclass(kw_only=True)
class ModelArguments(EncoderArguments):
    models: list[str] = field(
        metadata={"help": "LABEL=PATH_OR_ID pairs, e.g. hybrid=out/hybrid mlm=out/mlm bert=bert-base-uncased."}
    )


@dataclass
class DataArguments(TaskDataArguments):
    task_name: list[str] = field(
        default_factory=list,
        metadata={"help": f"GLUE tasks ({', '.join(GLUE_TASKS)}); none for a custom dataset (--validation_file)."},
    )
    split: str = field(
        default="validation",
        metadata={"help": "Labelled split to measure; 'validation' is MNLI's validation_matched."},
    )
    max_samples: int | None = field(
        default=None, metadata={"help": "Random subset (seeded) of the evaluation split to measure."}
    )


@dataclass
class AnalysisArguments:
    pooling: list[str] = field(
        default_factory=lambda: ["mean", "max", "weighted", "attention"],
        metadata={"help": "Poolings to measure.", "choices": list(POOLINGS)},
    )
    untrained_poolers: bool = field(
        default=False, metadata={"help": "Measure weighted/attention poolers at random initialisation (the original)."}
    )
    ratio: list[str] | None = field(
        default=None,
        metadata={"help": "Two model labels, numerator first, for the uniformity ratio (default: the first two)."},
    )
    num_resamples: int = field(default=1000, metadata={"help": "Bootstrap resamples for the confidence intervals."})
    seed: int = field(default=0, metadata={"help": "Seeds subsamples, poolers, resamples and probe splits."})
    batch_size: int = field(default=64, metadata={"help": "Encoder batch size."})
    cache_dir: str = field(
        default_factory=default_cache_dir, metadata={"help": "Feature cache (shared with the probe)."}
    )
    output_dir: str = field(default="analysis_results", metadata={"help": "Where the JSON, markdown and plots go."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Replace results already in --output_dir."})


@dataclass
class AnalysisDataset:
    """A task as analysed: its evaluation split (subsampled), and its training split when poolers are trained."""

    name: str
    task: TaskData
    split: str
    split_size: int  # rows of the evaluation split before --max_samples

    @property
    def num_samples(self) -> int:
        return len(self.task.splits[self.split])

    def texts(self, split: str) -> tuple[str, Texts]:
        """The view name (column, or `first+second` for a pair) and the texts the encoder reads, pairs jointly."""
        ((view, texts),) = self.task.texts(split, pair_encoding="joint").items()
        return view, texts

    def class_labels(self) -> np.ndarray:
        """`(num_samples,)` class ids of the evaluation split; scores rounded to the nearest integer, halves up."""
        labels = self.task.labels(self.split)
        return np.floor(labels + 0.5).astype(np.int64) if self.task.is_regression else labels

    def summary(self, trained_poolers: bool) -> dict:
        return {
            "task": self.task.name,
            "split": self.split,
            "num_samples": self.num_samples,
            "split_size": self.split_size,
            "text_columns": list(self.task.text_columns),
            "is_regression": self.task.is_regression,
            "num_classes": int(len(np.unique(self.class_labels()))),
            "pooler_training_samples": len(self.task.splits["train"]) if trained_poolers else None,
        }


# --------------------------------------------------------------------------------------------------------------------
# Arguments


def parse_models(specs: list[str]) -> dict[str, str]:
    """`["hybrid=path", ...]` → `{"hybrid": "path", ...}`, in the order given."""
    models = {}
    for spec in specs:
        match = MODEL_SPEC.fullmatch(spec)
        if match is None:
            raise ValueError(
                f"--models takes LABEL=PATH_OR_ID pairs, the label made of letters, digits, '_', '-' or '.' (e.g. "
                f"hybrid=out/prjepa-hybrid mlm=out/prjepa-mlm); got {spec!r}."
            )
        label, path = match.groups()
        if label in models:
            raise ValueError(f"Model label {label!r} appears twice in --models; give each model its own label.")
        models[label] = path
    check_no_repeated_models("--models", list(models.values()))
    return models


def uniformity_ratio_models(ratio: list[str] | None, labels: list[str]) -> tuple[str, str] | None:
    """The (numerator, denominator) labels of the uniformity ratio: `ratio`, else the first two models."""
    if ratio is None:
        return (labels[0], labels[1]) if len(labels) >= 2 else None
    if len(ratio) != 2 or ratio[0] == ratio[1] or not set(ratio) <= set(labels):
        raise ValueError(
            f"--ratio takes two different model labels among {labels}, numerator first (e.g. --ratio hybrid mlm); "
            f"got {ratio}."
        )
    return ratio[0], ratio[1]


def check_arguments(data_args: DataArguments, analysis_args: AnalysisArguments) -> None:
    """Refuses what would fail, before any data or model is loaded (task names and data files
    are checked by `TaskDataArguments.load_tasks`, also before anything loads)."""
    for option in ("max_samples", "max_train_samples"):
        value = getattr(data_args, option)
        if value is not None and value < 2:
            raise ValueError(f"--{option} must be at least 2; got {value}.")
    check_counts(num_resamples=analysis_args.num_resamples, batch_size=analysis_args.batch_size)
    check_seed(analysis_args.seed)
    check_no_repeats("--pooling", analysis_args.pooling)
    check_folders(output_dir=analysis_args.output_dir, cache_dir=analysis_args.cache_dir)
    trained = " and ".join(pooling for pooling in analysis_args.pooling if pooling in TRAINED_POOLINGS)
    if data_args.split == "train" and trains_poolers(analysis_args):
        raise ValueError(
            f"--split train measures the training split, which the {trained} poolers are trained on with its labels: "
            f"measure a held-out split (--split validation), pass --untrained_poolers, or leave {trained} out of "
            "--pooling."
        )
    # A custom dataset's poolers train on its --train_file: a --validation_file alone has no training split.
    custom = not data_args.task_name and data_args.validation_file
    if custom and not data_args.train_file and trains_poolers(analysis_args):
        fixed = [pooling for pooling in analysis_args.pooling if pooling in FIXED_POOLINGS] or ["mean"]
        raise ValueError(
            f"The {trained} poolers in --pooling are trained on the dataset's training "
            "split, and a --validation_file alone has none: pass --train_file, or measure them untrained "
            f"(--untrained_poolers), or leave them out (--pooling {' '.join(fixed)})."
        )


def trains_poolers(analysis_args: AnalysisArguments) -> bool:
    return not analysis_args.untrained_poolers and any(pooling in TRAINED_POOLINGS for pooling in analysis_args.pooling)


# --------------------------------------------------------------------------------------------------------------------
# Data


def evaluation_split(task: TaskData, split: str) -> str:
    """`split` if the task has it labelled; `validation` also names a task's first validation split (MNLI)."""
    if split in task.splits:
        return split
    if split == "validation":
        return task.validation_splits[0]
    raise ValueError(f"Task {task.name!r} has no labelled split {split!r}; choose among {sorted(task.splits)}.")


def load_datasets(data_args: DataArguments, analysis_args: AnalysisArguments) -> list[AnalysisDataset]:
    """Every dataset loaded and checked, and its evaluation split subsampled, before any model is loaded."""
    require_train = trains_poolers(analysis_args) or data_args.split == "train"
    loaded = []
    for task in data_args.load_tasks(data_args.task_name, analysis_args.seed, require_train):
        split = evaluation_split(task, data_args.split)
        split_size = len(task.splits[split])
        task.splits[split] = seeded_subset(task.splits[split], data_args.max_samples, analysis_args.seed)
        if task.name == CUSTOM_TASK:
            stem = os.path.splitext(os.path.basename(data_args.validation_file))[0]
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", stem)
        else:
            name = task.name
        if len(task.splits[split]) < 2:
            raise ValueError(
                f"{name}'s {split} split holds {len(task.splits[split])} text: the geometry needs at least 2 (pairs, "
                "a spread); give a larger split."
            )
        loaded.append(AnalysisDataset(name, task, split, split_size))
    return loaded


def dataset_warnings(dataset: AnalysisDataset, analysis_args: AnalysisArguments) -> list[str]:
    """What makes this dataset's numbers weak or partly undefined, said once per dataset."""
    warnings = []
    if dataset.num_samples < MIN_RELIABLE_SAMPLES:
        warnings.append(
            f"{dataset.name}: only {dataset.num_samples} samples (< {MIN_RELIABLE_SAMPLES}); every estimate is "
            "unstable: measure more samples"
        )
    if len(np.unique(dataset.class_labels())) < 2:
        warnings.append(
            f"{dataset.name}: a single class in the {dataset.split!r} split; the semantic probe and the class "
            "distances are not applicable"
        )
    if trains_poolers(analysis_args) and not dataset.task.is_regression:
        if len(np.unique(dataset.task.labels("train"))) < 2:
            warnings.append(
                f"{dataset.name}: a single class in the training split; the trained poolers have nothing to learn "
                "and stay at their initial mean pooling"
            )
    return warnings


def token_labels(tokenizer: PreTrainedTokenizerBase, dataset: AnalysisDataset, max_seq_length: int) -> np.ndarray:
    """`(num_samples,)` the token probe's targets: each example's most frequent non-special token id."""
    _, texts = dataset.texts(dataset.split)
    token_ids = tokenize_texts(tokenizer, texts, max_seq_length)["input_ids"]
    return most_frequent_tokens(token_ids, tokenizer.all_special_ids)


# --------------------------------------------------------------------------------------------------------------------
# Features


def untrained_pooler(kind: str, hidden_size: int, max_positions: int, seed: int) -> nn.Module:
    """A `weighted` or `attention` pooler at a random initialisation, as the original measured them.

    The probe's poolers start as the plain mean (zero position logits, zero query), which would make an untrained
    pooler mean pooling again; here the position logits or the query are drawn from N(0, 1) (the attention pooler's
    key projection keeps nn.Linear's random initialisation). Seeded, so every model of one width gets the same one.
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        pooler = make_pooler(kind, hidden_size, max_positions)
        nn.init.normal_(pooler.position_logits if kind == "weighted" else pooler.query)
    return pooler.eval().requires_grad_(False)


def pooled_features(
    encoder: LoadedEncoder, dataset: AnalysisDataset, data_args: DataArguments, analysis_args: AnalysisArguments
) -> dict[str, np.ndarray]:
    """`(num_samples, hidden)` features of the evaluation split under each requested pooling, through the probe's
    feature cache; trained poolers are first fitted on the training split's token states."""

    def extract(split: str, poolings: list[str]) -> dict:
        (features,) = extract_task_features(  # pairs encoded jointly: one view
            encoder,
            dataset.task,
            split,
            poolings,
            pair_encoding="joint",
            max_seq_length=data_args.max_seq_length,
            batch_size=analysis_args.batch_size,
            cache_dir=analysis_args.cache_dir,
        )
        return features

    fixed = [pooling for pooling in analysis_args.pooling if pooling in FIXED_POOLINGS]
    learned = [pooling for pooling in analysis_args.pooling if pooling in TRAINED_POOLINGS]
    evaluation = extract(dataset.split, analysis_args.pooling)
    pooled = {pooling: evaluation[pooling] for pooling in fixed}
    if trains_poolers(analysis_args):
        training_tokens = extract("train", learned)[TOKENS]
    for kind in learned:
        if analysis_args.untrained_poolers:
            hidden_size = evaluation[TOKENS].hidden_size
            pooler = untrained_pooler(kind, hidden_size, data_args.max_seq_length, analysis_args.seed)
        else:
            pooler = train_pooler(
                kind,
                training_tokens,
                dataset.task.labels("train"),
                is_regression=dataset.task.is_regression,
                max_positions=data_args.max_seq_length,
                training=PoolerTraining(seed=analysis_args.seed),
            )
        pooled[kind] = pool_tokens(pooler, evaluation[TOKENS])
    return {pooling: pooled[pooling] for pooling in analysis_args.pooling}


# --------------------------------------------------------------------------------------------------------------------
# Outputs


def write_plots(results: dict, poolings: list[str], output_dir: str) -> list[str]:
    """Saves every plot as PNG in `output_dir`; returns the file names."""
    from .plots import (  # matplotlib loads for the plots only, not with --help
        plot_alignment_uniformity,
        plot_effective_rank,
        plot_eigenvalue_spectra,
        plot_pooling_ablation,
        plot_probe_accuracies,
    )

    figures = {}
    for dataset, by_pooling in results.items():
        figures[f"spectrum_{dataset}.png"] = plot_eigenvalue_spectra(by_pooling, dataset)
        by_pooling_models = {pooling: comparison["models"] for pooling, comparison in by_pooling.items()}
        figures[f"pooling_ablation_{dataset}.png"] = plot_pooling_ablation(by_pooling_models, dataset)
    for pooling in poolings:
        by_dataset = {dataset: by_pooling[pooling]["models"] for dataset, by_pooling in results.items()}
        figures[f"effective_rank_{pooling}.png"] = plot_effective_rank(by_dataset, pooling)
        figures[f"alignment_uniformity_{pooling}.png"] = plot_alignment_uniformity(by_dataset, pooling)
        figures[f"probes_{pooling}.png"] = plot_probe_accuracies(by_dataset, pooling)
    for name, figure in figures.items():
        with atomic_path(os.path.join(output_dir, name)) as temporary:  # written whole, like the result files
            figure.savefig(temporary, dpi=120, format="png")
    return list(figures)


def remove_previous_analysis(output_dir: str) -> None:
    """--overwrite_output_dir: removes the previous analysis, its JSON first (a run stopped here then leaves a folder
    that reads as unfinished), the plots it lists and its Markdown, so that none of its files is taken for the new
    analysis's (a plot of a pooling no longer measured, say)."""
    path = os.path.join(output_dir, RESULT_FILES[0])
    try:
        with open(path) as file:
            plots = json.load(file).get("plots", [])
    except (OSError, ValueError, AttributeError):  # none, unreadable, or not an object
        plots = []
    for name in [RESULT_FILES[0], *plots, *RESULT_FILES[1:]]:
        previous = os.path.join(output_dir, os.path.basename(str(name)))
        if os.path.isfile(previous):
            os.remove(previous)


def settings_markdown(analysis: dict) -> str:
    """The header of `analysis.md`: models, how features and labels were made, the datasets, the warnings."""
    settings = analysis["settings"]
    models = ", ".join(f"**{label}** = `{record['path']}`" for label, record in analysis["models"].items())
    ratio = settings["uniformity_ratio"]
    lines = [
        f"Models: {models} ({settings['encoder']} encoder)."
        + (f" Uniformity ratio: {ratio[0]} / {ratio[1]}." if ratio else ""),
        f"Poolings: {', '.join(settings['poolings'])}"
        + (
            f"; weighted/attention poolers {settings['poolers']}."
            if any(pooling in TRAINED_POOLINGS for pooling in settings["poolings"])
            else "."
        ),
        f"Pairs: {settings['pair_rule']}. Scores: {settings['score_rule']}. Token probe: {settings['token_rule']}.",
        f"Seed {settings['seed']}, {settings['num_resamples']} bootstrap resamples (centred uniformity: "
        f"{settings['centred_uniformity_resamples']}), at most {settings['max_seq_length']} tokens per sequence.",
        "",
    ]
    header = ["dataset", "split", "samples measured", "split size", "classes", "pooler training samples"]
    rows = [
        [
            name,
            record["split"],
            record["num_samples"],
            record["split_size"],
            record["num_classes"],
            "–" if record["pooler_training_samples"] is None else record["pooler_training_samples"],
        ]
        for name, record in analysis["datasets"].items()
    ]
    lines += [markdown_table(header, rows), ""] + [f"⚠ {warning}" for warning in analysis["warnings"]]
    return "\n".join(lines).rstrip()


def load_model(path: str, model_args: ModelArguments, max_seq_length: int) -> LoadedEncoder:
    return load_encoder(
        path,
        model_args.encoder,
        model_args.tokenizer_name,
        device=model_args.device,
        trust_remote_code=model_args.trust_remote_code,
        max_seq_length=max_seq_length,
    )


def encode(
    models: dict[str, str],
    datasets: list[AnalysisDataset],
    model_args: ModelArguments,
    data_args: DataArguments,
    analysis_args: AnalysisArguments,
) -> tuple[dict, dict, dict, list[str]]:
    """Loads one model at a time and pools its features of every dataset. Returns `features[dataset][model][pooling]`
    `(num_samples, hidden)`, the token probe's targets per dataset, a record per model, and warnings."""
    features = {dataset.name: {} for dataset in datasets}
    targets, records, warnings = {}, {}, []
    for label, path in models.items():
        start = time.perf_counter()
        encoder = load_model(path, model_args, data_args.max_seq_length)
        record = {"path": path, **encoder_fingerprints(encoder)}
        if not records:
            first_label, first_tokenizer = label, record["tokenizer_fingerprint"]
            targets = {
                dataset.name: token_labels(encoder.tokenizer, dataset, data_args.max_seq_length) for dataset in datasets
            }
        elif record["tokenizer_fingerprint"] != first_tokenizer:
            warnings.append(f"{label} has another tokenizer than {first_label}, whose tokens the token probe asks for")
        for dataset in datasets:
            features[dataset.name][label] = pooled_features(encoder, dataset, data_args, analysis_args)
        records[label] = record | {"seconds": round(time.perf_counter() - start, 2)}
        print(f"[{label}] features of {len(datasets)} datasets in {records[label]['seconds']:.1f} s")
        del encoder  # frees this model before the next one loads
    return features, targets, records, warnings


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO, stream=sys.stdout)
    parser = script_parser((ModelArguments, DataArguments, AnalysisArguments), __doc__)
    model_args, data_args, analysis_args = parse_command_line(parser, argv)
    models = parse_models(model_args.models)
    ratio = uniformity_ratio_models(analysis_args.ratio, list(models))
    check_arguments(data_args, analysis_args)
    args = {**asdict(model_args), **asdict(data_args), **asdict(analysis_args)}
    output_dir = analysis_args.output_dir
    earlier = None if analysis_args.overwrite_output_dir else earlier_results(output_dir, RESULT_FILES, args)
    started = time.perf_counter()
    datasets = load_datasets(data_args, analysis_args)
    data_fingerprints = {dataset.name: dataset.task.fingerprint() for dataset in datasets}
    encoders = [("--models", path) for path in models.values()]
    check_hub_reachable([*encoders, ("--tokenizer_name", model_args.tokenizer_name)])

    # Every model loads once before any is encoded, so that a bad one stops the run before work is spent.
    def checked_fingerprints(path: str) -> dict[str, str]:
        encoder = load_model(path, model_args, data_args.max_seq_length)
        for dataset in datasets:  # pairs are encoded as one sequence (PAIR_RULE)
            check_joint_pair_length(dataset.task, data_args.max_seq_length, encoder.tokenizer)
        return encoder_fingerprints(encoder)

    fingerprints = {label: checked_fingerprints(path) for label, path in models.items()}
    if earlier is not None:
        check_same_encoders(output_dir, earlier["models"], fingerprints)
        check_same_data(output_dir, earlier.get("data_fingerprints"), data_fingerprints)
        print(
            f"{output_dir} already holds these results (same arguments, weights, tokenizers and data): nothing to do."
        )
        return earlier
    features, targets, model_records, tokenizer_warnings = encode(
        models, datasets, model_args, data_args, analysis_args
    )
    warnings = [warning for dataset in datasets for warning in dataset_warnings(dataset, analysis_args)]
    warnings += tokenizer_warnings
    for warning in warnings:
        logger.warning(warning)

    start = time.perf_counter()
    results = {
        dataset.name: {
            pooling: compare_models(
                {label: by_pooling[pooling] for label, by_pooling in features[dataset.name].items()},
                dataset.class_labels(),
                targets[dataset.name],
                ratio=ratio,
                num_resamples=analysis_args.num_resamples,
                seed=analysis_args.seed,
            )
            for pooling in analysis_args.pooling
        }
        for dataset in datasets
    }
    geometry_seconds = round(time.perf_counter() - start, 2)

    trained = trains_poolers(analysis_args)
    analysis = {
        "settings": {
            "encoder": model_args.encoder,
            "poolings": analysis_args.pooling,
            "poolers": UNTRAINED_RULE if analysis_args.untrained_poolers else TRAINED_RULE,
            "untrained_poolers": analysis_args.untrained_poolers,
            "pooler_training": asdict(PoolerTraining(seed=analysis_args.seed)) if trained else None,
            "pair_rule": PAIR_RULE,
            "score_rule": SCORE_RULE,
            "token_rule": TOKEN_RULE,
            "centred_uniformity_resamples": CENTRING_RULE,
            "uniformity_ratio": list(ratio) if ratio else None,
            "seed": analysis_args.seed,
            "num_resamples": analysis_args.num_resamples,
            "max_seq_length": data_args.max_seq_length,
            "min_reliable_samples": MIN_RELIABLE_SAMPLES,
        },
        "args": args,
        "versions": library_versions(*PROBE_LIBRARIES, "matplotlib"),
        "models": model_records,
        "datasets": {dataset.name: dataset.summary(trained) for dataset in datasets},
        "data_fingerprints": data_fingerprints,
        "warnings": warnings,
        "results": results,
    }
    if analysis_args.overwrite_output_dir:
        remove_previous_analysis(analysis_args.output_dir)
    os.makedirs(analysis_args.output_dir, exist_ok=True)
    analysis["plots"] = write_plots(results, analysis_args.pooling, analysis_args.output_dir)
    analysis["seconds"] = {"geometry": geometry_seconds, "total": round(time.perf_counter() - started, 2)}
    markdown = render_markdown(results, title="Representation analysis", preamble=settings_markdown(analysis))
    write_results(analysis_args.output_dir, RESULT_FILES, analysis, markdown + "\n")
    print(
        f"Wrote {analysis_args.output_dir}/analysis.json, analysis.md and {len(analysis['plots'])} plots in "
        f"{analysis['seconds']['total']:.0f} s."
    )
    return analysis


if __name__ == "__main__":
    main()
