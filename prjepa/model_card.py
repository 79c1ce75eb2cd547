"""The model card (README.md) pushed with a pretrained PrJEPA checkpoint: Hub metadata, the architecture, how λ and
the EMA target moved during the run, the last logged losses, the data and hyper-parameters, and how to load and probe
the model.
"""

import math
import os
from dataclasses import dataclass
from typing import Any

import torch
from huggingface_hub import ModelCard, ModelCardData

from configuration_prjepa import PrJepaConfig
from modeling_prjepa import PrJepaForPreTraining

from .data_sources import is_hub_id
from .utils import markdown_table

MODEL_ID_PLACEHOLDER = "<namespace>/<model-name>"
# The transformers the checkpoint's own code needs (its modules and APIs), as setup.cfg requires it.
MODEL_CODE_REQUIREMENT = "transformers>=5.24"
# A dataset given by one of these names is a local file even when the name alone would pass as a Hub id.
LOCAL_DATA_SUFFIXES = (".txt", ".raw", ".json", ".jsonl", ".csv", ".tsv", ".parquet", ".arrow", ".gz", ".zst", ".xz")
TRAINING_KEYS = ("loss", "jepa_loss", "mlm_loss", "effective_rank")
EVAL_KEYS = ("eval_loss", "eval_mlm_loss", "eval_perplexity", "eval_jepa_loss", "eval_mlm_probability")
WEIGHTED_SUM = "L = λ·L_JEPA + (1 − λ)·L_MLM"
WEIGHTING_DESCRIPTIONS = {
    "learned": f"{WEIGHTED_SUM} with λ = sigmoid(w), w learned from 0 (the paper's choice)",
    "uncertainty": "uncertainty weighting L = Σ exp(−s_i)·L_i + s_i (Kendall et al., 2018), s learned from 0; λ is "
    "the JEPA term's share exp(−s_JEPA) / (exp(−s_JEPA) + exp(−s_MLM))",
}


# A collapse: the logged effective rank below half its first value at ten logs in a row. Fixed on the cpu preset's runs
# committed under results/ at the time: it flags the five hybrid runs whose rank fell below 10 for good and none of the
# others, the MLM-only runs' dip of a few logs on the unigram plateau included. Of the runs committed since, it flags two
# MLM-only runs of the plateau screen: at LR 2e-3 (rank below 10 until it was stopped) and with the scaled sin/cos table
# (a dip of 11 logs, then back to 21.85), which the card then says rose back (tests/test_model_card.py checks five).
COLLAPSE_FRACTION, COLLAPSE_LOGS = 0.5, 10


@dataclass(frozen=True)
class Trajectory:
    """A value logged during training: each field is a (step, value) pair."""

    first: tuple[int, float]
    minimum: tuple[int, float]
    maximum: tuple[int, float]
    last: tuple[int, float]


def trajectory(log_history: list[dict[str, float]], key: str) -> Trajectory | None:
    """First, lowest, highest (earliest step on ties) and last value of `key` over the entries that log it; `None`
    if none does."""
    points = [(entry.get("step"), entry[key]) for entry in log_history if key in entry]
    if any(step is None for step, _ in points):
        raise ValueError(f"Every log_history entry with {key!r} needs its 'step' (TrainerState.log_history has it).")
    if not points:
        return None
    return Trajectory(
        first=points[0],
        minimum=min(points, key=lambda point: point[1]),
        maximum=max(points, key=lambda point: point[1]),
        last=points[-1],
    )


def rank_collapse(log_history: list[dict[str, float]]) -> str | None:
    """A sentence saying when the logged `effective_rank` stayed below `COLLAPSE_FRACTION` of its first value for
    `COLLAPSE_LOGS` logs in a row, and another if its last logged value is back above that line; `None` if it never
    did (or was not logged)."""
    rank = trajectory(log_history, "effective_rank")
    if rank is None:
        return None
    in_a_row = 0
    for entry in log_history:
        if "effective_rank" in entry:
            in_a_row = in_a_row + 1 if entry["effective_rank"] < COLLAPSE_FRACTION * rank.first[1] else 0
            if in_a_row == COLLAPSE_LOGS:
                recovered = rank.last[1] >= COLLAPSE_FRACTION * rank.first[1]
                return (
                    f"The representations collapsed: the effective rank of the batch embeddings stayed below "
                    f"{COLLAPSE_FRACTION:g} × its first logged value ({_number(rank.first[1])} at step "
                    f"{rank.first[0]}) for {COLLAPSE_LOGS} logs in a row by step {entry['step']}, and fell to "
                    f"{_number(rank.minimum[1])} (step {rank.minimum[0]}; RankMe, logged as `effective_rank`)."
                    + (
                        f" It rose back to {_number(rank.last[1])} by the last log (step {rank.last[0]})."
                        if recovered
                        else ""
                    )
                )
    return None


def is_hub_dataset_id(name: str) -> bool:
    """Whether `name` reads as a Hub dataset id (`name` or `namespace/name`) rather than a local path or pattern."""
    local = os.path.exists(name) or name.lower().endswith(LOCAL_DATA_SUFFIXES) or any(char in name for char in "*?[~")
    return not local and is_hub_id(name)


def parameter_counts(config: PrJepaConfig) -> dict[str, int]:
    """Parameters of the encoder, its token embedding, the MLM head (its own: a decoder tied to the token embedding
    counts once, in the encoder) and (hybrid) the predictor, from the config alone (the model is built on the meta
    device, without memory)."""
    with torch.device("meta"):
        model = PrJepaForPreTraining(config)
    encoder_parameters = {id(parameter) for parameter in model.prjepa.parameters()}
    counts = {
        "encoder": sum(parameter.numel() for parameter in model.prjepa.parameters()),
        "token_embedding": model.prjepa.get_input_embeddings().weight.numel(),
        "mlm_head": sum(
            parameter.numel() for parameter in model.mlm_head.parameters() if id(parameter) not in encoder_parameters
        ),
    }
    if model.predictor is not None:
        counts["predictor"] = sum(parameter.numel() for parameter in model.predictor.parameters())
    return counts


def _number(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}g}" if math.isfinite(value) else str(value)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _lambda_summary(config: PrJepaConfig, log_history: list[dict[str, float]]) -> str:
    if config.loss_weighting == "fixed":
        return f"Loss weighting: {WEIGHTED_SUM} with λ fixed at {_number(config.jepa_weight)}."
    weighting = WEIGHTING_DESCRIPTIONS[config.loss_weighting]
    lam = trajectory(log_history, "jepa_weight")
    if lam is None:
        return f"Loss weighting: {weighting}. λ was not logged."
    # An extreme at either end of the course is its start or its end, already named.
    ends = {lam.first[0], lam.last[0]}
    extremes = [
        f"a {name} of {_number(value)} (step {step})"
        for name, (step, value) in (("minimum", lam.minimum), ("maximum", lam.maximum))
        if step not in ends
    ]
    through = f" through {' and '.join(extremes)}" if extremes else ""
    return (
        f"Loss weighting: {weighting}. λ moved from {_number(lam.first[1])} (step {lam.first[0]}){through} to "
        f"{_number(lam.last[1])} (step {lam.last[0]})."
    )


TARGET_NORM_DESCRIPTIONS = {
    "layer": "each LayerNorm-ed without affine parameters",
    "instance": "each feature standardised over its sequence's real tokens (instance norm)",
}


def _ema_summary(config: PrJepaConfig, log_history: list[dict[str, float]]) -> str:
    summary = (
        "EMA target encoder: target ← m·target + (1 − m)·online after every optimizer step, m rising linearly "
        f"from {config.ema_momentum_start} to {config.ema_momentum_end} over the run"
    )
    momentum = trajectory(log_history, "ema_momentum")
    if momentum is not None:
        summary += f" (last logged m = {_number(momentum.last[1], digits=6)} at step {momentum.last[0]})"
    return (
        f"{summary}. The JEPA targets are its last hidden states, {TARGET_NORM_DESCRIPTIONS[config.jepa_target_norm]}."
    )


def _results_table(log_history: list[dict[str, float]]) -> str:
    rows = []
    for key in TRAINING_KEYS + EVAL_KEYS:
        logged = trajectory(log_history, key)
        if logged is not None:
            rows.append((f"`{key}`", _number(logged.last[1]), logged.last[0]))
    if not rows:
        return "Nothing was logged."
    return markdown_table(("metric (last logged)", "value", "step"), rows)


def _usage(config: PrJepaConfig, model_id: str) -> str:
    target_line = (
        f'target = AutoModel.from_pretrained("{model_id}", trust_remote_code=True, encoder="target")  '
        "# EMA target encoder\n"
        if config.objective == "hybrid"
        else ""
    )
    return (
        "```python\n"
        "import torch\n"
        "from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer, pipeline\n\n"
        "# AutoTokenizer reads the model's config, which is custom code too: without the flag it asks interactively.\n"
        f'tokenizer = AutoTokenizer.from_pretrained("{model_id}", trust_remote_code=True)\n'
        f'encoder = AutoModel.from_pretrained("{model_id}", trust_remote_code=True)  # online encoder\n'
        f"{target_line}"
        'inputs = tokenizer(["Predict and reconstruct."], return_tensors="pt")\n'
        "with torch.no_grad():\n"
        "    hidden = encoder(**inputs).last_hidden_state  # (batch, seq, hidden)\n"
        "mask = inputs.attention_mask.unsqueeze(-1)\n"
        "sentence_vectors = (hidden * mask).sum(1) / mask.sum(1)  # mean over real tokens: (batch, hidden)\n\n"
        f'masked_lm = AutoModelForMaskedLM.from_pretrained("{model_id}", trust_remote_code=True)\n'
        'fill_mask = pipeline("fill-mask", model=masked_lm, tokenizer=tokenizer)\n'
        'print(fill_mask(f"paris is the {tokenizer.mask_token} of france."))\n'
        "```"
    )


def _model_section(config: PrJepaConfig, tokenizer_name: str) -> str:
    counts = parameter_counts(config)
    rows = [
        (
            "encoder",
            f"{config.hidden_size} hidden, {_count(config.num_hidden_layers, 'layer')}, "
            f"{_count(config.num_attention_heads, 'head')}, MLP {config.intermediate_size}, "
            f"{config.position_embedding_type} positions up to "
            f"{config.max_position_embeddings} tokens, pre-LayerNorm",
        ),
        (
            "encoder parameters",
            f"{_number(counts['encoder'])} ({_number(counts['token_embedding'])} of them the token embedding)",
        ),
        (
            "MLM head parameters",
            _number(counts["mlm_head"])
            + (" (decoder tied to the token embedding)" if config.tie_word_embeddings else ""),
        ),
    ]
    if "predictor" in counts:
        rows.append(
            (
                "predictor",
                f"{config.predictor_hidden_size} wide, {_count(config.predictor_num_hidden_layers, 'layer')}, "
                f"{_count(config.predictor_num_attention_heads, 'head')}, {_number(counts['predictor'])} "
                "parameters (pretraining only)",
            )
        )
    rows.append(
        (
            "weights file",
            "`model.safetensors` holds the encoder and the MLM head"
            + (
                ", and for further pretraining the EMA target encoder (a second copy of the encoder), the predictor "
                "and the loss weighting; the encoder and fill-mask classes load only what they use"
                if "predictor" in counts
                else ""
            ),
        )
    )
    # A local folder is named by its own name: its path means nothing on the reader's machine.
    where = " (a local folder of that name)" if os.path.isdir(tokenizer_name) else ""
    name = os.path.basename(os.path.normpath(tokenizer_name)) if where else tokenizer_name
    rows.append(("tokenizer", f"`{name}`{where} (vocabulary {_number(config.vocab_size)})"))
    return "## Model\n\n" + markdown_table(("part", "details"), rows)


def _local_name(path: str) -> str:
    """`/home/alice/corpus/train/*.txt` → `train/*.txt`."""
    parts = os.path.normpath(path).split(os.sep)
    return "/".join(parts[-2:])


def _training_section(
    log_history: list[dict[str, float]],
    hyperparameters: dict[str, Any],
    datasets: list[str],
    dataset_config: str | None,
    tokens_seen: int,
) -> str:
    configuration = f" (configuration `{dataset_config}`)" if dataset_config else ""
    # A local path is named by its last two parts: the full path would publish the trainer's directory layout.
    data = "\n".join(
        f"- `{name}`{configuration}" if is_hub_dataset_id(name) else f"- `{_local_name(name)}` (local files)"
        for name in dict.fromkeys(datasets)  # once each: training and validation may be the same files
    )
    if "max_train_samples" in hyperparameters:
        data += f"\n- training truncated to its first {_number(hyperparameters['max_train_samples'])} sequences"
    hyperparameter_rows = [(f"`{name}`", _number(value, digits=6)) for name, value in hyperparameters.items()]
    return (
        f"## Training\n\nTokens seen: {_number(tokens_seen) if tokens_seen else 'not recorded'}. Data:\n\n"
        f"{data or '- (not recorded)'}\n\n"
        f"{_results_table(log_history)}\n\n"
        + (f"**Warning.** {collapse}\n\n" if (collapse := rank_collapse(log_history)) else "")
        + "### Hyper-parameters\n\n"
        + (markdown_table(("name", "value"), hyperparameter_rows) if hyperparameter_rows else "Not recorded.")
    )


def pretraining_model_card(
    config: PrJepaConfig,
    log_history: list[dict[str, float]],
    hyperparameters: dict[str, Any],
    datasets: list[str],
    tokens_seen: int,
    tokenizer_name: str,
    model_id: str | None = None,
    license: str | None = None,
    dataset_config: str | None = None,
) -> ModelCard:
    """The README.md of a pretrained PrJEPA checkpoint.

    log_history: `TrainerState.log_history` (training entries with `step`, `loss`, and for a hybrid run `jepa_loss`,
        `mlm_loss`, `jepa_weight`, `ema_momentum`, `effective_rank`; evaluation entries with `eval_*` keys).
    hyperparameters: name → value, shown as a table in the given order.
    datasets: Hub dataset ids (listed in the metadata and the text) or local paths (the text only).
    dataset_config: the Hub dataset's configuration (e.g. `wikitext-103-raw-v1`), named beside it.
    model_id: the repository id used in the loading snippets; a placeholder if `None`.
    """
    if isinstance(datasets, str):
        raise TypeError(f"datasets must be a list of names, got the string {datasets!r}; pass [{datasets!r}].")
    hybrid = config.objective == "hybrid"
    tags = ["prjepa", "masked-language-modeling"] + (["jepa", "hybrid"] if hybrid else ["mlm-only"])
    metadata = ModelCardData(
        library_name="transformers",
        pipeline_tag="fill-mask",
        tags=tags,
        datasets=[name for name in datasets if is_hub_dataset_id(name)] or None,
        license=license,
    )
    objective = (
        'the hybrid objective of "Predict and Reconstruct" (Boukhari, 2026): JEPA latent prediction of target '
        "blocks from a context view plus masked language modelling, on one shared encoder"
        if hybrid
        else 'masked language modelling only (the MLM-only baseline of "Predict and Reconstruct": the same encoder '
        "without the JEPA branch)"
    )
    sections = [
        f"# {model_id.split('/')[-1] if model_id else 'PrJEPA encoder'}",
        f"A text encoder pretrained with {objective}. The checkpoint carries its own modelling code, so it loads "
        f"with `trust_remote_code=True` and needs only PyTorch and `{MODEL_CODE_REQUIREMENT}` installed.",
        _model_section(config, tokenizer_name),
    ]
    if hybrid:
        objective_section = f"{_lambda_summary(config, log_history)}\n\n{_ema_summary(config, log_history)}"
        sections.append(f"## Objective\n\n{objective_section}")
    model_id = model_id or MODEL_ID_PLACEHOLDER
    sections += [
        _training_section(log_history, hyperparameters, datasets, dataset_config, tokens_seen),
        "## Usage\n\n" + _usage(config, model_id),
        "## Evaluation\n\n"
        "Linear probes on GLUE (frozen encoder), with the PrJEPA repository; `--update_model_card --push_to_hub` adds "
        "the results to this card on the Hub (with write access to the repo; without them the scores go to "
        "`probe_results/` only):\n\n"
        "```bash\n"
        f"python run_glue_probe.py --model_name_or_path {model_id} --task_name sst2 mrpc stsb --update_model_card "
        "--push_to_hub\n"
        "```",
    ]
    return ModelCard(f"---\n{metadata.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")
