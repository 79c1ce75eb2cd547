"""How probe results are recorded: the libraries that computed them, whether a rerun would only repeat them, and
model-index entries that put GLUE scores on a model card, merged into the card of a folder or a Hub repo."""

import contextlib
import json
import logging
import math
import os
from collections.abc import Sequence
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.errors import EntryNotFoundError

from ..utils import atomic_path, write_atomically
from .arguments import RESULT_NEUTRAL_ARGUMENTS
from .encoders import ONLINE_ENCODER, LoadedEncoder

logger = logging.getLogger(__name__)

# What a probe's (and the representation analysis's) results record the versions of, beside Python's.
PROBE_LIBRARIES = ("torch", "transformers", "datasets", "evaluate", "sklearn", "scipy", "numpy")


def earlier_results(output_dir: str, result_files: Sequence[str], args: dict[str, Any]) -> dict[str, Any] | None:
    """The results `output_dir` already holds (`result_files`, the first a JSON recording its `"args"`) when they were
    computed with the same `args` (a path however spelled), those that cannot change a result
    (`RESULT_NEUTRAL_ARGUMENTS`) aside: rerunning them is a no-op once their encoders' fingerprints are found unchanged
    (`check_same_encoders`). None when the folder holds no finished results: none at all, or an unfinished set (the
    JSON, written last by `write_results`, missing or unreadable, or a file beside it missing), which a rerun replaces,
    saying so. An error naming the differing arguments when it holds results of other arguments, which are never
    replaced unasked."""
    existing = [name for name in result_files if os.path.exists(os.path.join(output_dir, name))]
    if not existing:
        return None
    try:
        with open(os.path.join(output_dir, result_files[0])) as file:
            earlier = json.load(file)
        if not isinstance(earlier, dict):
            raise ValueError(f"a JSON {type(earlier).__name__}, not an object")
    except FileNotFoundError:
        found = f"{', '.join(existing)} without {result_files[0]}"
    except (OSError, ValueError) as error:  # json.JSONDecodeError is a ValueError
        found = f"{result_files[0]} unreadable: {error}"
    else:
        if not isinstance(earlier.get("args"), dict):
            raise ValueError(
                f"{output_dir} holds a {result_files[0]} that records no arguments: not results of this script. "
                "Choose another --output_dir, or pass --overwrite_output_dir to replace it."
            )
        asked, recorded = json.loads(json.dumps(args, default=str)), earlier["args"]
        differing = sorted(
            name
            for name in set(asked) | set(recorded)
            if name not in RESULT_NEUTRAL_ARGUMENTS
            and _resolved_paths(asked.get(name)) != _resolved_paths(recorded.get(name))
        )
        if differing:
            raise ValueError(
                f"{output_dir} already holds results ({', '.join(existing)}), with other arguments "
                f"({', '.join(differing)}); pass --overwrite_output_dir to replace them, or choose another "
                "--output_dir."
            )
        missing = [name for name in result_files if name not in existing]
        if not missing:
            return earlier
        found = f"{', '.join(existing)} without {', '.join(missing)}"
    # Only a run stopped while writing leaves these (or an older version's writes, not atomic): nothing of value.
    logger.warning(f"{output_dir} holds an unfinished run ({found}): running it again, replacing it.")
    return None


def _resolved_paths(value: Any) -> Any:
    """An argument's value with each string naming an existing file or folder, alone or as a `LABEL=PATH` pair, as its
    real path (in a list too), so that another spelling of it (relative, with a trailing slash, through a link)
    compares as the same."""
    if isinstance(value, list):
        return [_resolved_paths(item) for item in value]
    if not isinstance(value, str) or not value:
        return value
    if os.path.exists(value):
        return os.path.realpath(value)
    label, separator, path = value.partition("=")
    return f"{label}={os.path.realpath(path)}" if separator and path and os.path.exists(path) else value


def write_results(output_dir: str, result_files: Sequence[str], results: dict[str, Any], *texts: str) -> None:
    """Writes `results` as JSON to `result_files[0]` and each of `texts` to the file of the same rank after it. Each
    file is written atomically (`write_atomically`), and the JSON last, an earlier one removed first, so that a run
    stopped at any point leaves no truncated file, and a JSON only beside the rest: `earlier_results` reads a folder
    without it as unfinished."""
    # Serialised before anything is written: results that JSON cannot represent leave the folder as it was.
    contents = dict(zip(result_files[1:], texts, strict=True)) | {result_files[0]: json.dumps(results, indent=2)}
    os.makedirs(output_dir, exist_ok=True)
    # An earlier run's JSON (an --overwrite_output_dir run's) beside this run's other files would read as finished.
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(output_dir, result_files[0]))
    for name, content in contents.items():
        write_atomically(os.path.join(output_dir, name), content)


# What `check_same_encoders` compares: the fingerprints each model's record in the results holds (named as the
# `LoadedEncoder` attributes they come from), by what they take.
ENCODER_FINGERPRINTS = {"fingerprint": "weights", "tokenizer_fingerprint": "tokenizer"}


def encoder_fingerprints(encoder: LoadedEncoder) -> dict[str, str]:
    """The fingerprints of `encoder`'s weights and tokenizer, under the keys a model's record in the results has."""
    return {key: getattr(encoder, key) for key in ENCODER_FINGERPRINTS}


def check_same_encoders(
    output_dir: str, recorded: dict[str, dict[str, Any]], current: dict[str, dict[str, str]]
) -> None:
    """`recorded` (each model's record in the results) and `current` (`encoder_fingerprints`) by model: results of the
    same arguments measured other encoders when a weights or tokenizer fingerprint differs (a checkpoint trained
    again, tokenizer files replaced) or was not recorded (results of a version that recorded no tokenizer), so a rerun
    must recompute them, which only --overwrite_output_dir allows."""
    by_path = {_resolved_paths(model): record for model, record in recorded.items()}
    stored = {model: by_path.get(_resolved_paths(model), {}) for model in current}
    differing = [
        f"{what} of {model}" + (" (not recorded)" if key not in stored[model] else "")
        for model, fingerprints in current.items()
        for key, what in ENCODER_FINGERPRINTS.items()
        if stored[model].get(key) != fingerprints[key]
    ]
    if differing:
        raise ValueError(
            f"{output_dir} holds results of these arguments for other {', '.join(differing)} (trained again or "
            "replaced since?); pass --overwrite_output_dir to measure the current ones, or choose another --output_dir."
        )


def check_same_data(output_dir: str, recorded: dict[str, str] | None, current: dict[str, str]) -> None:
    """`recorded` (the results' data fingerprints, by task or dataset) against `current` (`TaskData.fingerprint`):
    results of the same arguments measured other data when one differs (files replaced at the same path), so a rerun
    must recompute them, which only --overwrite_output_dir allows. Results of a version that recorded none are reused
    as they are, saying so."""
    if recorded is None:
        logger.warning(f"{output_dir} records no fingerprint of its data (an older version's results): reused as is.")
        return
    differing = sorted(name for name, fingerprint in current.items() if recorded.get(name) != fingerprint)
    if differing:
        raise ValueError(
            f"{output_dir} holds results of these arguments measured on other data for {', '.join(differing)} (its "
            "files replaced since?); pass --overwrite_output_dir to measure the current data, or choose another "
            "--output_dir."
        )


def probe_description(
    pooling: str,
    encoder: str = ONLINE_ENCODER,
    pair_encoding: str | None = None,
    hidden_layer: int | None = None,
    train_subset: tuple[int, int] | None = None,
) -> str:
    """How a score was obtained, e.g. `"linear probe, mean pooling, target encoder"`; tells model-index entries of
    different probes apart. `train_subset`: (examples kept, examples in the training split) when the probe trained
    on part of it."""
    parts = ["linear probe", f"{pooling} pooling"]
    if train_subset is not None and train_subset[0] < train_subset[1]:
        parts.append(f"trained on {train_subset[0]:,} of {train_subset[1]:,} examples")
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
    """Merges `eval_results` into the `model-index` of a model's card and returns it: a folder's README.md (created if
    absent, and saved), or a Hub repo's card. With `push_to_hub_repo` they are also merged into that repo's own card,
    which is pushed (a folder's card only where the repo has none yet). An entry replaces an older one for the same
    task, dataset, split, metric and probe, and an undefined one (NaN) removes it; every other entry, metadata field
    and the card's text are kept."""
    local = os.path.isdir(model_name_or_path)
    name = os.path.basename(os.path.normpath(model_name_or_path))
    card_path = os.path.join(model_name_or_path, "README.md")
    if local and os.path.exists(card_path):
        card = ModelCard.load(card_path)
    elif local:
        card = ModelCard(f"---\n{ModelCardData(model_name=name).to_yaml()}\n---\n\n# {name}\n")
    else:
        card = ModelCard.load(model_name_or_path)
    _merge(card, eval_results, name)
    if local:
        with atomic_path(card_path) as temporary:  # a probe stopped while writing leaves the card as it was
            card.save(temporary)
    if push_to_hub_repo is not None:
        if local or push_to_hub_repo != model_name_or_path:
            try:
                pushed = ModelCard.load(push_to_hub_repo)
            except EntryNotFoundError:  # a repo without a card yet takes this one
                pushed = ModelCard(card.content)
            _merge(pushed, eval_results, name)
        else:
            pushed = card
        pushed.push_to_hub(push_to_hub_repo)
    return card


def _merge(card: ModelCard, eval_results: Sequence[EvalResult], model_name: str) -> None:
    previous = card.data.eval_results or []
    kept = [old for old in previous if not any(new.is_equal_except_value(old) for new in eval_results)]
    card.data.eval_results = kept + [new for new in eval_results if not math.isnan(new.metric_value)] or None
    card.data.model_name = card.data.model_name or model_name
