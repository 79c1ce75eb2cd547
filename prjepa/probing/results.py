"""How probe results are recorded: the libraries that computed them, whether a rerun would only repeat them, and
model-index entries that put GLUE scores on a model card, merged into the card of a folder or a Hub repo."""

import json
import os
from collections.abc import Sequence
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .encoders import ONLINE_ENCODER

# What a probe's (and the representation analysis's) results record the versions of, beside Python's.
PROBE_LIBRARIES = ("torch", "transformers", "datasets", "evaluate", "sklearn", "scipy", "numpy")


def earlier_results(output_dir: str, result_files: Sequence[str], args: dict[str, Any]) -> dict[str, Any] | None:
    """The results `output_dir` already holds (`result_files`, the first a JSON recording its `"args"`) when they were
    computed with the same `args` (`--overwrite_output_dir` aside): rerunning them is a no-op once their encoders'
    fingerprints are found unchanged (`check_same_encoders`). None when the folder holds no results; an error
    naming the differing arguments when it holds other results, which are never replaced unasked."""
    existing = [name for name in result_files if os.path.exists(os.path.join(output_dir, name))]
    if not existing:
        return None
    with open(os.path.join(output_dir, result_files[0])) as file:
        earlier = json.load(file)
    asked, recorded = json.loads(json.dumps(args, default=str)), earlier.get("args", {})
    differing = sorted(
        name
        for name in set(asked) | set(recorded)
        if name != "overwrite_output_dir" and asked.get(name) != recorded.get(name)
    )
    if differing or len(existing) < len(result_files):
        reason = f"with other arguments ({', '.join(differing)})" if differing else "incomplete"
        raise ValueError(
            f"{output_dir} already holds results ({', '.join(existing)}), {reason}; pass --overwrite_output_dir to "
            "replace them, or choose another --output_dir."
        )
    return earlier


def check_same_encoders(output_dir: str, recorded: dict[str, str], current: dict[str, str]) -> None:
    """`recorded` and `current` fingerprints by model: results of the same arguments measured other weights when any
    differs (a checkpoint trained again), so a rerun must recompute them, which only --overwrite_output_dir allows."""
    changed = [model for model, fingerprint in current.items() if recorded.get(model) != fingerprint]
    if changed:
        raise ValueError(
            f"{output_dir} holds results of these arguments for other weights of {', '.join(changed)} (trained again "
            "since?); pass --overwrite_output_dir to measure the current ones, or choose another --output_dir."
        )


def probe_description(
    pooling: str, encoder: str = ONLINE_ENCODER, pair_encoding: str | None = None, hidden_layer: int | None = None
) -> str:
    """How a score was obtained, e.g. `"linear probe, mean pooling, target encoder"`; tells model-index entries of
    different probes apart."""
    parts = ["linear probe", f"{pooling} pooling"]
    if encoder != ONLINE_ENCODER:
        parts.append(f"{encoder} encoder")
    if hidden_layer is not None:
        parts.append(f"hidden layer {hidden_layer}")
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
