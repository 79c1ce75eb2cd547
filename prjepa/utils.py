"""Small helpers shared by the light packages (geometry, the model card) and the heavy ones (probing, the experiment):
markdown tables, seed statistics, atomic file writes, library versions, whether the device computes bf16 natively,
the tokenizer fingerprint, the standardised linear head of every probe and the single BLAS thread it fits with.
Standard library at import time, so that the trainer, which reaches this module through the model card, loads nothing
that pretraining does not need.
"""

import argparse
import contextlib
import dataclasses
import hashlib
import importlib
import json
import logging
import math
import os
import platform
import signal
import statistics
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline
    from transformers import HfArgumentParser, PreTrainedTokenizerBase

# A tokenizer's special tokens that a PrJEPA config records by id. configuration_prjepa.PrJepaConfig.check_tokenizer
# loops over the same fields itself: that file is copied into every checkpoint and imports nothing from here.
SPECIAL_TOKEN_FIELDS = ("pad_token_id", "cls_token_id", "sep_token_id", "mask_token_id")


def lazy_exports(package: str, import_structure: dict[str, Sequence[str]]) -> Callable[[str], Any]:
    """A package's module `__getattr__` (PEP 562) that imports each exported name from its module on first use, as
    transformers' `_LazyModule` does: `import_structure` maps a module (relative to `package`, or absolute) to the names
    it exports. Importing one light module of a package then loads nothing heavy, so that a script's `--help` reads
    only what its argument parser needs."""
    modules = {name: module for module, names in import_structure.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in modules:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(modules[name], package), name)

    return __getattr__


def markdown_table(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table (no trailing newline); every cell is `str()`-ed and its `|` escaped, so that a model
    path or a metric name holding one cannot split a cell."""

    def line(cells: Sequence[Any]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header), *map(line, rows)])


def mean_and_spread(values: Sequence[float]) -> dict[str, Any]:
    """Mean over seeds, sample standard deviation (0 for a single seed) and the values themselves; of several values
    one not finite makes both NaN (a collapsed encoder's constant predictions give a NaN correlation, and
    statistics.stdev raises on NaN in Python 3.11)."""
    values = list(values)
    if len(values) > 1 and not all(math.isfinite(value) for value in values):
        return {"mean": math.nan, "std": math.nan, "values": values}
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "values": values,
    }


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = "") -> Iterator[str]:
    """A temporary name (ending in `suffix`, for writers that add an extension) to write `path` under; renamed over
    `path` when the block ends, removed when it raises: a process stopped while writing leaves the old file or the new
    one, never a truncated one that a rerun would fail to read, nor the temporary file."""
    temporary = f"{path}.tmp{os.getpid()}{suffix}"
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_atomically(path: str, text: str) -> None:
    """Writes `text` to `path` through `atomic_path`."""
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as file:
        file.write(text)


def library_versions(*modules: str) -> dict[str, str]:
    """Python's version and each named module's `__version__` (importing it), in that order."""
    return {"python": platform.python_version()} | {name: importlib.import_module(name).__version__ for name in modules}


def cpu_model() -> str:
    """The CPU's model name where the system names it (Linux), else the architecture: machines of one architecture
    round differently (vector widths, native bf16), so records name the model."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as file:
        for line in file:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


# The libraries whose versions a pretraining run's numbers depend on.
TRAINING_LIBRARIES = ("torch", "transformers", "datasets", "accelerate")


def this_machine() -> dict[str, Any]:
    """This machine and the versions of the training libraries: what a record names as the machine a stage or a run
    ran on."""
    import torch

    description = {
        "platform": platform.platform(),
        **library_versions(*TRAINING_LIBRARIES),
        "cpu_count": os.cpu_count(),
        "processor": cpu_model(),
    }
    if torch.cuda.is_available():
        description["gpu"] = torch.cuda.get_device_name(0)
    return description


def describe_machine(machine: dict[str, Any], in_full: bool = False) -> str:
    """A machine record (`this_machine`) as a report names it: its cores and GPU ("2 CPU cores", "8 CPU cores and a
    <GPU>"); in full also its processor, platform and library versions, which a rerun's numbers are compared by."""
    hardware = f"{machine['cpu_count']} CPU cores" + (f" and a {machine['gpu']}" if "gpu" in machine else "")
    if not in_full:
        return hardware
    versions = ", ".join(f"{name} {machine[name]}" for name in ("python", *TRAINING_LIBRARIES))
    return f"{machine['processor']}, {hardware}, {machine['platform']}; {versions}"


# The signals that stop a run early and resumably (`kill PID`, Ctrl-C, a closed terminal): pretraining saves a
# checkpoint on them, and the experiment passes them on to its running stage.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


# A pretraining step of the experiment's cpu preset (its model and batch, 2 cores) under bf16 autocast over the same
# step in fp32, both objectives together (benchmarks/bench_precision.py): on a CPU with AVX512-BF16 (hybrid 0.78x,
# MLM-only 0.69x), and on one without native bf16 (an AMD EPYC with AVX2 only), where autocast emulates it (hybrid
# 22.0x, MLM-only 25.5x).
NATIVE_BF16_CPU_STEP_RATIO = 0.75
EMULATED_BF16_CPU_STEP_RATIO = 23.3


def native_bf16(device: str) -> bool:
    """Whether `device` ("cuda" or "cpu") computes bf16 natively rather than by emulation."""
    import torch

    if device == "cuda":
        return torch.cuda.is_bf16_supported()
    capabilities = torch.cpu.get_capabilities()
    return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))


def standardised_linear_model(is_regression: bool = False, **head_options: Any) -> "Pipeline":
    """Standardisation (fitted on the training data) → ridge regression for scores or logistic regression for classes;
    `head_options` go to the estimator (e.g. `C`, or a grid over `head__C` from outside). Every linear probe of the
    project is this pipeline, so that the GLUE probe and the geometry's token and semantic probes fit alike."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    head = Ridge(**head_options) if is_regression else LogisticRegression(max_iter=1000, **head_options)
    return Pipeline([("scale", StandardScaler()), ("head", head)])


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """Runs BLAS and LAPACK on one thread inside the block. Threaded BLAS makes the probes' many small solves and the
    spectrum's eigendecomposition slower, not faster, on a shared CPU: on a busy 2-core machine beside torch's thread
    pool, a probe fit took 13x longer with two BLAS threads than with one, a 50-class token probe at 5,000 × 768 80 s
    instead of 8.5 s, and a 768 × 768 eigendecomposition 1.9 s instead of 0.8 s."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


class ScriptHelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Each argument's default, as HfArgumentParser shows it, and the description laid out as written."""


def option_names(dataclass_types: Sequence[type]) -> list[str]:
    """A script's options (`--name`), one per field of its argument dataclasses."""
    return [f"--{argument.name}" for arguments in dataclass_types for argument in dataclasses.fields(arguments)]


def option_name(argument: str, options: Collection[str]) -> str | None:
    """The option a command-line `argument` names as HfArgumentParser reads it, among the script's `options`
    (`--name`): from `--name`, `--name=value`, the dashed `--na-me`, or a prefix of one option, which argparse takes
    for it; None for a value."""
    if not argument.startswith("--"):
        return None
    option = "--" + argument.split("=", 1)[0][2:].replace("-", "_")
    expansions = [name for name in options if name.startswith(option)]
    return expansions[0] if option not in options and len(expansions) == 1 else option


def script_parser(dataclass_types: type | Sequence[type], description: str | None) -> "HfArgumentParser":
    """A script's argument parser: the dataclasses' fields, and `description` (its module docstring, with the
    examples) at the top of `--help`."""
    from transformers import HfArgumentParser  # not at the top: this module imports the standard library only

    return HfArgumentParser(dataclass_types, description=description, formatter_class=ScriptHelpFormatter)


def parse_command_line(parser: "HfArgumentParser", argv: list[str] | None) -> tuple:
    """`parser.parse_args_into_dataclasses(argv)`, where arguments that no option takes are an error naming the first
    of them, and existing paths left over after an option that takes one path are named as a glob the shell
    expanded: the parser's own error lists every file, which can run to thousands of lines, and leaves the cause to
    guess."""
    argv = sys.argv[1:] if argv is None else argv
    *parsed, unused = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    if not unused:
        return tuple(parsed)
    if (glob := expanded_glob(parser, argv, unused)) is not None:
        option, paths = glob
        raise ValueError(
            f"{option} takes one value, but {len(paths)} paths followed it ({first_names(paths)}): the shell expanded "
            f"an unquoted glob. Quote it (e.g. {option} 'data/*.txt') so that it reaches the script."
        )
    raise ValueError(
        f"Unrecognised arguments: {first_names(unused)}. Check the options' spelling (--help lists them), and quote a "
        "value that holds spaces or a glob."
    )


def expanded_glob(parser: "HfArgumentParser", argv: list[str], unused: list[str]) -> tuple[str, list[str]] | None:
    """The option and its paths when `unused` is a run of existing paths in `argv` right after an option that takes
    exactly one value, given a path too: what the shell leaves of an unquoted glob. None otherwise."""
    start = next(
        (index for index in range(len(argv) - len(unused), 0, -1) if argv[index : index + len(unused)] == unused), None
    )
    if start is None:
        return None  # the arguments came from elsewhere (an arguments file)
    before = argv[start - 1]
    if not before.startswith("--") and start < 2:
        return None
    option, _, value = before.partition("=") if before.startswith("--") else (argv[start - 2], "", before)
    action = parser._option_string_actions.get(option)  # argparse has no public lookup of an option's action
    if action is None or action.nargs is not None or not value or value.startswith("--"):
        return None
    paths = [value, *unused]
    return (option, paths) if all(os.path.exists(path) for path in paths) else None


@contextlib.contextmanager
def collapsed_warnings(logger: logging.Logger, context: str) -> Iterator[None]:
    """Logs the warnings raised inside as one line per category, with its count and first message, instead of one
    line each (a grid search can raise one scikit-learn ConvergenceWarning per fold and grid value)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    counts = Counter(warning.category.__name__ for warning in caught)
    for category, count in counts.items():
        first = next(str(warning.message) for warning in caught if warning.category.__name__ == category)
        logger.warning("%s: %d × %s (first: %s)", context, count, category, (first.splitlines() or [""])[0])


def tokenizer_fingerprint(tokenizer: "PreTrainedTokenizerBase") -> str:
    """sha256 of the tokenizer's serialisation (vocabulary, normaliser, special tokens, post-processor), wherever it
    was read from: it keys the probe's feature cache and is among a pretraining run's recorded settings."""
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


def check_counts(**counts: int) -> None:
    """Refuses a count (by option name) below 1."""
    for option, value in counts.items():
        if value < 1:
            raise ValueError(f"--{option} {value} must be at least 1.")


def check_folders(**folders: str | None) -> None:
    """Refuses an option's folder (by option name) that is a file or lies under one (or under anything else that is
    not a folder, a dangling link included): writing there would fail once the work is done. None: the option is not
    set."""
    for option, path in folders.items():
        if path is None:
            continue
        if not path:
            raise ValueError(f"--{option} is empty: name a folder.")
        existing = path  # not normalised: the system reads "file/../x" through file
        while existing and not os.path.lexists(existing):
            existing = os.path.dirname(existing)
        if existing and not os.path.isdir(existing):
            what = "a file, not a folder" if os.path.isfile(existing) else "not a folder"
            where = "is" if os.path.normpath(existing) == os.path.normpath(path) else f"lies under {existing},"
            raise ValueError(f"--{option} {path} {where} {what}: choose another --{option}.")


def first_names(names: Sequence[str], count: int = 5) -> str:
    """`names` for a message: the first `count`, joined by commas, and how many more there are."""
    return ", ".join(names[:count]) + (f" and {len(names) - count} more" if len(names) > count else "")


# What `save_pretrained` writes for every tokenizer: a local folder holding neither has no tokenizer to load.
SAVED_TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json")


def check_tokenizer_folder(source: str, described: str, fix: str) -> None:
    """Raises `ValueError` naming `fix` when `source` is a local folder without `SAVED_TOKENIZER_FILES`. For a loader
    that failed: transformers then blames a missing sentencepiece or tiktoken, which would not help (a folder of a
    model's config.json and a vocabulary file alone still loads, so the files' absence is no error by itself)."""
    if not os.path.isdir(source) or any(os.path.isfile(os.path.join(source, name)) for name in SAVED_TOKENIZER_FILES):
        return
    found = sorted(os.listdir(source))
    held = first_names(found) if found else "nothing"
    raise ValueError(
        f"{described} is a folder that holds no tokenizer files (neither {' nor '.join(SAVED_TOKENIZER_FILES)}, which "
        f"tokenizer.save_pretrained writes; it holds {held}). {fix}"
    )


def check_tokenizer_has_vocabulary(tokenizer: "PreTrainedTokenizerBase", source: str, fix: str) -> None:
    """Raises `ValueError` naming `fix` when every token of `tokenizer` is a special token: transformers builds such a
    tokenizer from a folder without tokenizer files instead of failing, and it reads every word as unknown."""
    special = set(tokenizer.all_special_ids)
    if set(range(len(tokenizer))) <= special:
        raise ValueError(
            f"The tokenizer from {source} holds only its {len(tokenizer)} special tokens "
            f"({', '.join(tokenizer.all_special_tokens)}): no vocabulary was found there, so every word would read as "
            f"{tokenizer.unk_token}. {fix}"
        )
