"""Where data comes from: the demo sample shipped with the package, and a check, before any compute, that the Hub
can be reached when an argument names something on it."""

import os
from collections.abc import Iterable

from huggingface_hub import constants
from huggingface_hub.utils import get_session

# prjepa/demo_data/README.md gives provenance, licences and sizes.
DEMO_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo_data")
DEMO_TRAIN_FILE = os.path.join(DEMO_DATA, "text", "train", "*.txt")
DEMO_VALIDATION_FILE = os.path.join(DEMO_DATA, "text", "validation", "*.txt")
DEMO_GLUE = os.path.join(DEMO_DATA, "glue")
DEMO_TOKENIZER = os.path.join(DEMO_DATA, "bert-base-uncased")
DEMO_GLUE_TASKS = ("sst2", "stsb")

LOCAL_DATA_FLAGS = (
    "--train_file/--validation_file (local text, globs allowed), --glue_path (a local GLUE copy), "
    "--tokenizer_name and --model_name_or_path (local folders)"
)


def hub_unreachable_reason(timeout: float = 5.0) -> str | None:
    """Why the Hub cannot be reached, or None when it answers (or offline mode reads the local cache instead)."""
    if constants.HF_HUB_OFFLINE:
        return None
    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception as error:  # any failure to get an answer, whatever the HTTP client's exception types
        return f"{type(error).__name__}: {error}"
    return None


def check_hub_reachable(sources: Iterable[tuple[str, str | None]]) -> None:
    """Stops with one line naming the local-data flags when some `(flag, value)` in `sources` is not a local path
    (so a Hub id) and the Hub cannot be reached: before the libraries' retries pile up and before any compute."""
    on_hub = [(flag, value) for flag, value in sources if value and not os.path.exists(value)]
    if not on_hub:
        return
    reason = hub_unreachable_reason()
    if reason is not None:
        named = ", ".join(f"{flag} {value}" for flag, value in on_hub)
        raise SystemExit(
            f"The Hugging Face Hub ({constants.ENDPOINT}) cannot be reached ({reason}), and {named} name Hub data. "
            f"Pass local copies instead: {LOCAL_DATA_FLAGS}; or run `python run_experiment.py` alone, whose demo "
            "preset uses the sample shipped with the package."
        )
