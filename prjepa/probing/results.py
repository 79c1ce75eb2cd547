"""How probe results are recorded: the libraries that computed them, and model-index entries that put GLUE scores on
a model card, merged into the card of a folder or a Hub repo."""

import os
from collections.abc import Sequence

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .encoders import ONLINE_ENCODER

# What a probe's (and the representation analysis's) results record the versions of, beside Python's.
PROBE_LIBRARIES = ("torch", "transformers", "datasets", "evaluate", "sklearn", "scipy", "numpy")


def probe_description(pooling: str, encoder: str = ONLINE_ENCODER, pair_encoding: str | None = None) -> str:
    """How a score was obtained, e.g. `"linear probe, mean pooling, target encoder"`; tells model-index entries of
    different probes apart."""
    parts = ["linear probe", f"{pooling} pooling"]
    if encoder != ONLINE_ENCODER:
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
