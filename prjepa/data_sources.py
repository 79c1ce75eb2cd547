"""Where data comes from: the demo sample shipped with the package, the pretraining text's default and the check that
its flags name one source, the checks that local data files can be read, and a check, before any compute, that the
local paths the arguments name exist and that the Hub can be reached when an argument names something on it."""

import codecs
import os
from collections.abc import Iterable

from huggingface_hub import constants, get_token
from huggingface_hub.utils import HFValidationError, get_session, validate_repo_id

# prjepa/demo_data/README.md gives provenance, licences and sizes.
DEMO_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo_data")
DEMO_TRAIN_FILE = os.path.join(DEMO_DATA, "text", "train", "*.txt")
DEMO_VALIDATION_FILE = os.path.join(DEMO_DATA, "text", "validation", "*.txt")
DEMO_GLUE = os.path.join(DEMO_DATA, "glue")
DEMO_TOKENIZER = os.path.join(DEMO_DATA, "bert-base-uncased")
DEMO_GLUE_TASKS = ("sst2", "stsb")

# The paper's corpus: the pretraining text when neither --dataset_name nor --train_file is given.
DEFAULT_TEXT_DATASET = ("Salesforce/wikitext", "wikitext-103-raw-v1")
# The paper's tokenizer: the default when neither --tokenizer_name nor a checkpoint gives one.
DEFAULT_TOKENIZER = "bert-base-uncased"

LOCAL_DATA_FLAGS = (
    "--train_file/--validation_file (local text, globs allowed), --glue_path (a local GLUE copy), "
    "--tokenizer_name and --model_name_or_path (local folders)"
)


def check_text_sources(
    train_file: str | None,
    validation_file: str | None,
    dataset_name: str | None,
    dataset_config_name: str | None,
    training: bool = True,
) -> None:
    """Stops when the pretraining text's flags contradict each other, before any default fills them in. run_mlm.py
    would quietly prefer one source over the other; two explicit sources, or a validation file or a configuration
    without what it belongs to, are mistakes to name, not to guess at. `training`: the text trains a model (a
    validation file alone serves an evaluation only)."""
    if train_file is not None and (dataset_name is not None or dataset_config_name is not None):
        raise ValueError(
            f"--train_file {train_file} and --dataset_name/--dataset_config_name {dataset_name}/{dataset_config_name} "
            "name two training sources; give one of them."
        )
    if validation_file is not None and train_file is None and training:
        raise ValueError(
            f"--validation_file {validation_file} is read only together with --train_file when training (a Hub dataset "
            "brings its own validation split); pass --train_file too, or drop --validation_file."
        )
    if validation_file is not None and dataset_name is not None:
        raise ValueError(
            f"--validation_file {validation_file} and --dataset_name {dataset_name} name two validation sources; give "
            "one of them."
        )
    if dataset_config_name is not None and dataset_name is None:
        raise ValueError(
            f"--dataset_config_name {dataset_config_name} needs --dataset_name: name the dataset it configures (e.g. "
            f"--dataset_name {DEFAULT_TEXT_DATASET[0]} for WikiText)."
        )


def check_dataset_revision(dataset_revision: str | None, dataset_name: str | None) -> None:
    """Stops when --dataset_revision is given for text that is not a Hub dataset (local files, a dataset folder, or a
    demo sample), where it would pin nothing; called once the defaults have filled in the text."""
    if dataset_revision is not None and (dataset_name is None or os.path.exists(dataset_name)):
        raise ValueError(
            f"--dataset_revision {dataset_revision} names a version of a Hub dataset, and the text read is local "
            "(--train_file / --validation_file, a --dataset_name folder, or the demo sample): drop it."
        )


# File extensions and the `datasets` builder that reads them.
DATA_FILE_BUILDERS = {
    "txt": "text",
    "text": "text",
    "csv": "csv",
    "json": "json",
    "jsonl": "json",
    "parquet": "parquet",
}


# Bytes read at a time when checking that a text file is UTF-8.
DECODE_CHUNK = 1 << 20


def check_data_file(option: str, path: str) -> None:
    """A local data file or glob that cannot be read is an error naming it, before anything is loaded: an unknown
    extension, a glob matching nothing, an empty file, a text file that is not UTF-8. Remote URLs are left to
    `datasets`."""
    if data_file_builder(path) is None:
        raise ValueError(f"{option} {path}: unsupported extension; use one of {sorted(DATA_FILE_BUILDERS)}.")
    if "://" in path:
        return
    files = local_data_files(path)
    if not files:
        raise ValueError(f"{option} {path} matches no file; check the path (quote a glob so the shell leaves it).")
    for file_path in files:
        if os.path.getsize(file_path) == 0:
            raise ValueError(f"{option}: {file_path} is empty; remove it from the glob or give another file.")
        if data_file_builder(file_path) in ("text", "csv", "json"):
            check_utf8(option, file_path)


def local_data_files(pattern: str) -> list[str]:
    """The local files `datasets` reads for a data file path or glob, relative ones from the working directory, as
    absolute paths, sorted; empty when it matches none. Its glob differs from Python's (`**` at any depth, hidden files
    left out), so every check of what an option names asks it."""
    from datasets.data_files import resolve_pattern

    try:
        return sorted(resolve_pattern(pattern, base_path=os.getcwd()))
    except FileNotFoundError:
        return []


def check_utf8(option: str, file_path: str) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0  # of the chunk being decoded, for the byte the error names
    with open(file_path, "rb") as file:
        try:
            while chunk := file.read(DECODE_CHUNK):
                decoder.decode(chunk)
                offset += len(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as error:
            raise ValueError(
                f"{option}: {file_path} is not UTF-8 ({error.reason} at about byte {offset + error.start}); convert "
                "it, e.g. `iconv -f latin1 -t utf-8`."
            ) from None


def data_file_builder(path: str) -> str | None:
    """The `datasets` builder for a data file path or glob ('text', 'csv', 'json', 'parquet'), None if unknown."""
    return DATA_FILE_BUILDERS.get(path.rsplit(".", 1)[-1].lower())


def hub_unreachable_reason(timeout: float = 5.0) -> str | None:
    """Why the Hub cannot be reached, or None when it answers (or offline mode reads the local cache instead)."""
    if constants.HF_HUB_OFFLINE:
        return None
    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception as error:  # any failure to get an answer, whatever the HTTP client's exception types
        return f"{type(error).__name__}: {error}"
    return None


def check_push_access(
    token: str | None,
    without_pushing: str = "drop --push_to_hub and upload the output folder later (`hf upload`)",
    token_option: str | None = "--hub_token",
) -> None:
    """Stops with one line when `--push_to_hub` could not push (the Hub unreachable, offline mode, no token): before
    any data is read, where the first push would fail only after it. `without_pushing` says how to go on without the
    push; `token_option`, the script's option that passes a token, if any."""
    if constants.HF_HUB_OFFLINE:
        raise SystemExit(
            "--push_to_hub needs the Hugging Face Hub, but HF_HUB_OFFLINE is set: unset it to push, or "
            f"{without_pushing}."
        )
    reason = hub_unreachable_reason()
    if reason is not None:
        raise SystemExit(
            f"--push_to_hub needs the Hugging Face Hub ({constants.ENDPOINT}), which cannot be reached ({reason}): "
            f"run where the Hub is reachable, or {without_pushing}."
        )
    if (token or get_token()) is None:
        sources = ["run `hf auth login`", "set HF_TOKEN", *([f"pass {token_option}"] if token_option else [])]
        raise SystemExit(
            f"--push_to_hub needs a Hugging Face token with write access: {', '.join(sources[:-1])} or {sources[-1]}."
        )


def is_hub_id(value: str) -> bool:
    """Whether `value` has the form of a Hub id, "name" or "owner/name" (huggingface_hub's own rule): an absolute
    path, one starting with ./ or ../, or one with more separators has not, and so can only be a local path."""
    try:
        validate_repo_id(value)
    except HFValidationError:
        return False
    return True


def check_hub_reachable(sources: Iterable[tuple[str, str | None]]) -> None:
    """Stops with one line when some `(flag, value)` in `sources` is a local path that does not exist, or names Hub
    data while the Hub cannot be reached (naming the local-data flags): before the libraries' retries pile up and
    before any compute."""
    absent = [(flag, value) for flag, value in sources if value and not os.path.exists(value)]
    missing = [(flag, value) for flag, value in absent if not is_hub_id(value)]
    if missing:
        named = ", ".join(f"{flag} {value}" for flag, value in missing)
        raise SystemExit(f"No such file or folder: {named} (a local path by its form, not a Hub id).")
    if not absent:
        return
    reason = hub_unreachable_reason()
    if reason is not None:
        named = ", ".join(f"{flag} {value}" for flag, value in absent)
        names = (
            "names Hub data (no local file or folder of that name exists here)"
            if len(absent) == 1
            else "name Hub data (no local files or folders of those names exist here)"
        )
        raise SystemExit(
            f"The Hugging Face Hub ({constants.ENDPOINT}) cannot be reached ({reason}), and {named} {names}. "
            f"Pass local copies instead: {LOCAL_DATA_FLAGS}; or, when they are in your Hugging Face cache already, "
            "set HF_HUB_OFFLINE=1 to read them from there; or run `python run_experiment.py` alone, whose demo "
            "preset uses the sample shipped with the package."
        )
