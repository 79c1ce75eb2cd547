#!/usr/bin/env python
"""The slow-start study: MLM validation loss against tokens seen for candidate `mini` pretraining recipes.

Phase 1 crosses the position embedding (fixed sin/cos, the same table scaled to the token embeddings' size, learned)
with an untied or tied MLM decoder, at one learning rate and batch size. Phase 2 varies the learning rate and the
batch size around the phase-1 winner and trains the hybrid objective with the overall winner. Every run sees the same
token budget, and the recipe is chosen by one rule: the lowest validation MLM loss at the end of the budget
(pretraining validation loss only; no GLUE score takes part). The hybrid trains MLM-only's winner, its one candidate
here; the same rule chooses its learning rate in the collapse screen (README).

Runs are resumable (each is a `run_pretrain.py` output folder; a finished one is skipped), by default two at a time with
one thread each. An output folder holds one study: its seed, data and tokenizer are recorded there, and a study with
others is refused (the same files under another path, relative or absolute, are the same data). Each run's machine and
library versions are recorded beside it (`machines/`), since the same recipe's numbers differ between environments.
`--report` writes the table, naming those machines, and the plot.

    python run_recipe_study.py --output_dir experiments/recipe-study \\
        --train_file "../shared/data/text/gutenberg/train/*.txt" \\
        --validation_file "../shared/data/text/gutenberg/validation/*.txt" \\
        --tokenizer_name ../shared/tokenizers/bert-base-uncased
    python run_recipe_study.py --output_dir experiments/recipe-study --report results/recipe-study
"""

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, replace
from typing import Any

from .data_sources import check_data_file, local_data_files
from .plot_style import legend_outside, series_styles
from .utils import (
    ScriptHelpFormatter,
    atomic_path,
    check_counts,
    check_folders,
    describe_machine,
    markdown_table,
    this_machine,
    write_atomically,
)

TOKEN_BUDGET = 2_000_000
SEQUENCE_LENGTH = 128
EVALUATIONS = 8
TABLED_EVALUATIONS = (1, EVALUATIONS // 2)  # besides the last: the start of the run, and half the budget
POSITION_VARIANTS = {
    "sin": {},
    "sin-scaled": {"position_embedding_scale": 0.03},  # table RMS ≈ 0.02, the token embeddings' std
    "learned": {"position_embedding_type": "learned"},
}


@dataclass(frozen=True)
class Recipe:
    positions: str = "sin"
    tied: bool = False
    learning_rate: float = 1e-3
    batch_size: int = 32
    objective: str = "mlm"

    @property
    def name(self) -> str:
        return (
            f"{self.objective}-pos_{self.positions}-{'tied' if self.tied else 'untied'}-lr_{self.learning_rate:g}"
            f"-bs_{self.batch_size}"
        )

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * SEQUENCE_LENGTH

    @property
    def steps(self) -> int:
        return TOKEN_BUDGET // self.tokens_per_step

    @property
    def eval_steps(self) -> int:
        return max(self.steps // EVALUATIONS, 1)

    def config_overrides(self) -> str:
        values = {**POSITION_VARIANTS[self.positions], "tie_word_embeddings": self.tied}
        return ",".join(f"{key}={value}" for key, value in values.items())


def pretrain_command(recipe: Recipe, args: argparse.Namespace) -> list[str]:
    eval_steps = recipe.eval_steps
    return [
        sys.executable,
        "-m",
        "prjepa.pretraining",
        "--preset",
        "mini",
        "--objective",
        recipe.objective,
        "--config_overrides",
        recipe.config_overrides(),
        "--tokenizer_name",
        args.tokenizer_name,
        "--train_file",
        args.train_file,
        "--validation_file",
        args.validation_file,
        "--max_seq_length",
        str(SEQUENCE_LENGTH),
        "--max_steps",
        str(recipe.steps),
        "--per_device_train_batch_size",
        str(recipe.batch_size),
        "--per_device_eval_batch_size",
        "64",
        "--learning_rate",
        str(recipe.learning_rate),
        "--warmup_steps",
        "0.1",
        "--lr_scheduler_type",
        "cosine",
        "--weight_decay",
        "0.05",
        "--seed",
        str(args.seed),
        "--data_seed",
        str(args.seed),
        "--logging_steps",
        str(max(eval_steps // 4, 1)),
        "--eval_strategy",
        "steps",
        "--eval_steps",
        str(eval_steps),
        "--save_steps",
        str(eval_steps),
        "--save_total_limit",
        "1",
        "--do_train",
        "--do_eval",
        "--max_eval_samples",
        "500",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
        "--preprocessing_num_workers",
        "2",
        "--output_dir",
        os.path.join(args.output_dir, recipe.name),
    ]


def is_finished(recipe: Recipe, output_dir: str) -> bool:
    return os.path.exists(os.path.join(output_dir, recipe.name, "train_results.json"))


def machines_path(run_name: str, output_dir: str) -> str:
    # Beside the run's folder, not in it: pretraining refuses a non-empty folder without a checkpoint.
    return os.path.join(output_dir, "machines", f"{run_name}.json")


def recorded_machines(run_name: str, output_dir: str) -> list[dict[str, Any]]:
    """The machines (`utils.this_machine`) that trained the run, in order; empty for a run trained before they were
    recorded."""
    path = machines_path(run_name, output_dir)
    if not os.path.exists(path):
        return []
    with open(path) as file:
        return json.load(file)


def record_machines(run_name: str, output_dir: str, machines: list[dict[str, Any]]) -> None:
    """Adds each of `machines` to the run's record once, before it trains there: a run resumed elsewhere names
    both."""
    recorded = recorded_machines(run_name, output_dir)
    added = [machine for machine in machines if machine not in recorded]
    if added:
        os.makedirs(os.path.dirname(machines_path(run_name, output_dir)), exist_ok=True)
        write_atomically(machines_path(run_name, output_dir), json.dumps([*recorded, *added], indent=1))


# Lines of a failed run's log shown in the study's error (its traceback's last frames and the error itself).
FAILED_LOG_LINES = 15


def train(recipe: Recipe, args: argparse.Namespace) -> None:
    if is_finished(recipe, args.output_dir):
        return
    os.makedirs(os.path.join(args.output_dir, "logs"), exist_ok=True)
    record_machines(recipe.name, args.output_dir, [this_machine()])
    environment = {**os.environ, "OMP_NUM_THREADS": str(args.threads_per_run), "TOKENIZERS_PARALLELISM": "false"}
    with open(log_path(recipe, args.output_dir), "a") as log:
        finished = subprocess.run(pretrain_command(recipe, args), stdout=log, stderr=subprocess.STDOUT, env=environment)
    if finished.returncode != 0:  # its reason is in its log, not in the exit status
        with open(log_path(recipe, args.output_dir)) as log:
            last_lines = log.read().splitlines()[-FAILED_LOG_LINES:]
        raise RuntimeError(
            f"The run {recipe.name} stopped with exit status {finished.returncode}; the end of its log, "
            f"{log_path(recipe, args.output_dir)}:\n" + "\n".join(last_lines)
        )


def train_all(recipes: list[Recipe], args: argparse.Namespace) -> None:
    pending = [recipe for recipe in recipes if not is_finished(recipe, args.output_dir)]
    if not pending:
        return
    # The first run tokenizes the corpus into the datasets cache that every later run reuses.
    first, rest = pending[0], pending[1:]
    with ThreadPoolExecutor(args.parallel_runs) as pool:
        futures = [pool.submit(train, first, args)]
        if rest:
            wait_for_tokenization(first, args.output_dir, futures[0])
        futures += [pool.submit(train, recipe, args) for recipe in rest]
        for future in futures:
            future.result()


def log_path(recipe: Recipe, output_dir: str) -> str:
    return os.path.join(output_dir, "logs", f"{recipe.name}.log")


def wait_for_tokenization(recipe: Recipe, output_dir: str, run: Future) -> None:
    """Until the run's log shows its training started (its data is tokenized and cached); a run that ended before
    that raises its error here rather than leaving the study waiting for a line that never comes."""
    log = pathlib.Path(log_path(recipe, output_dir))
    while not (log.exists() and "Effective batch size" in log.read_text()):
        if run.done():
            run.result()
            return
        wait([run], timeout=10)


def trainer_state_path(recipe: Recipe, output_dir: str) -> str | None:
    """The finished run's trainer state, else its last checkpoint's (a run still going), else None."""
    from transformers.trainer_utils import get_last_checkpoint  # not at the top: --help needs no torch

    run_dir = os.path.join(output_dir, recipe.name)
    if is_finished(recipe, output_dir):
        return os.path.join(run_dir, "trainer_state.json")
    checkpoint = get_last_checkpoint(run_dir) if os.path.isdir(run_dir) else None
    return os.path.join(checkpoint, "trainer_state.json") if checkpoint else None


def validation_curve(recipe: Recipe, output_dir: str) -> list[tuple[int, float]]:
    """(tokens seen, validation MLM loss) at every evaluation of the run, from its trainer state."""
    with open(trainer_state_path(recipe, output_dir)) as file:
        history = json.load(file)["log_history"]
    return [
        (entry["step"] * recipe.tokens_per_step, entry["eval_mlm_loss"])
        for entry in history
        if "eval_mlm_loss" in entry
    ]


def final_loss(recipe: Recipe, output_dir: str) -> float:
    return validation_curve(recipe, output_dir)[-1][1]


def best(recipes: list[Recipe], output_dir: str) -> Recipe:
    """The selection rule: the lowest validation MLM loss at the end of the token budget."""
    return min(recipes, key=lambda recipe: final_loss(recipe, output_dir))


SETTINGS_FILE = "study_settings.json"


def study_settings(args: argparse.Namespace) -> dict[str, Any]:
    """What makes two studies' runs of the same recipe the same run."""
    return {
        "seed": args.seed,
        "train_file": args.train_file,
        "validation_file": args.validation_file,
        "tokenizer_name": args.tokenizer_name,
        "token_budget": TOKEN_BUDGET,
        "sequence_length": SEQUENCE_LENGTH,
    }


# Paths: two spellings (relative, absolute, through a link) of the same files or folder are the same setting.
DATA_FILE_SETTINGS = ("train_file", "validation_file")
FOLDER_SETTINGS = ("tokenizer_name",)


def same_setting(name: str, recorded: Any, value: Any) -> bool:
    if recorded == value or not (isinstance(recorded, str) and isinstance(value, str)):
        return recorded == value
    if name in DATA_FILE_SETTINGS:
        recorded_files, files = (
            sorted(map(os.path.realpath, local_data_files(pattern))) for pattern in (recorded, value)
        )
        return bool(files) and recorded_files == files
    if name in FOLDER_SETTINGS:
        return os.path.isdir(value) and os.path.realpath(recorded) == os.path.realpath(value)
    return False


def settings_differences(recorded: dict[str, Any], settings: dict[str, Any]) -> str:
    """The settings that differ, as `name: old there, new now`; empty when none does."""
    return ", ".join(
        f"{name}: {recorded.get(name)!r} there, {value!r} now"
        for name, value in settings.items()
        if not same_setting(name, recorded.get(name), value)
    )


def recorded_settings(output_dir: str) -> dict[str, Any] | None:
    """The `study_settings` the study in `output_dir` recorded; None before any study ran there."""
    path = os.path.join(output_dir, SETTINGS_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as file:
        return json.load(file)


def check_settings(args: argparse.Namespace) -> None:
    """Runs are named by recipe alone, so a folder is reused only by a study of the same seed, data and tokenizer: a
    folder whose recorded settings (`record_settings`) differ is refused before a run is skipped as finished."""
    recorded = recorded_settings(args.output_dir)
    differing = recorded is not None and settings_differences(recorded, study_settings(args))
    if differing:
        raise ValueError(
            f"{args.output_dir} holds a study made with other settings ({differing}); its runs would be reused as "
            "this study's. Choose another --output_dir."
        )


def record_settings(args: argparse.Namespace) -> None:
    """The first study in a folder records its settings there, for `check_settings`."""
    check_settings(args)
    if recorded_settings(args.output_dir) is None:
        os.makedirs(args.output_dir, exist_ok=True)
        write_atomically(os.path.join(args.output_dir, SETTINGS_FILE), json.dumps(study_settings(args), indent=1))


def study(args: argparse.Namespace) -> list[Recipe]:
    record_settings(args)
    phase_1 = [Recipe(positions=positions, tied=tied) for tied in (False, True) for positions in POSITION_VARIANTS]
    train_all(phase_1, args)
    winner = best(phase_1, args.output_dir)
    phase_2 = [replace(winner, learning_rate=2e-3), replace(winner, batch_size=16)]
    train_all(phase_2, args)
    mlm_recipes = phase_1 + phase_2
    chosen = best(mlm_recipes, args.output_dir)
    hybrid = replace(chosen, objective="hybrid")
    train_all([hybrid], args)
    return [*mlm_recipes, hybrid]


RUN_NAME = re.compile(
    r"(?P<objective>\w+)-pos_(?P<positions>[\w-]+?)-(?P<decoder>tied|untied)-lr_(?P<lr>[\d.e-]+)-bs_(?P<bs>\d+)"
)
PLATEAU_TARGET = 6.0  # the bar for having left the unigram plateau


def runs_in(output_dir: str) -> list[Recipe]:
    """Every run of the study found in `output_dir` that has evaluated at least once."""
    recipes = []
    for name in sorted(os.listdir(output_dir)):
        match = RUN_NAME.fullmatch(name)
        if match is None:
            continue
        recipe = Recipe(
            positions=match["positions"],
            tied=match["decoder"] == "tied",
            learning_rate=float(match["lr"]),
            batch_size=int(match["bs"]),
            objective=match["objective"],
        )
        if trainer_state_path(recipe, output_dir) and validation_curve(recipe, output_dir):
            recipes.append(recipe)
    return recipes


def import_runs(study_file: str, output_dir: str, settings: dict[str, Any] | None = None) -> None:
    """Recreate the finished runs recorded in an earlier report's `study.json` as run folders in `output_dir`.

    The study then resumes on a machine that lost the runs themselves: a recorded run counts as finished and keeps
    its measured curve, so only the runs missing from the record are trained. A folder already there is left alone.
    A record of a study with other `settings` (`study_settings`) is refused: its runs are not this study's.
    """
    with open(study_file) as file:
        study = json.load(file)
    if settings is not None and "settings" in study:
        differing = settings_differences(study["settings"], settings)
        if differing:
            raise ValueError(
                f"{study_file} records a study made with other settings ({differing}): its runs would be counted as "
                "this study's. Import a record of a study with these settings, or rerun without --import_runs."
            )
    elif settings is not None:
        print(
            f"{study_file} does not record its study's seed, data and tokenizer (a report from before they were "
            "recorded): its runs are taken as this study's, which only holds if they match.",
            file=sys.stderr,
        )
    if (study["token_budget"], study["sequence_length"]) != (TOKEN_BUDGET, SEQUENCE_LENGTH):
        raise ValueError(
            f"{study_file} was measured with a {study['token_budget']}-token budget at sequence length "
            f"{study['sequence_length']}, this study uses {TOKEN_BUDGET} at {SEQUENCE_LENGTH}: its runs cannot be "
            "compared with new ones. Rerun the study without --import_runs."
        )
    for row in study["runs"]:
        run_dir = os.path.join(output_dir, row["name"])
        if not row["finished"] or os.path.exists(run_dir):
            continue
        os.makedirs(run_dir)
        tokens_per_step = row["batch_size"] * SEQUENCE_LENGTH
        history = [{"step": tokens // tokens_per_step, "eval_mlm_loss": loss} for tokens, loss in row["curve"]]
        with open(os.path.join(run_dir, "trainer_state.json"), "w") as file:
            json.dump({"log_history": history}, file, indent=1)
        with open(os.path.join(run_dir, "train_results.json"), "w") as file:
            json.dump({"imported_from": os.path.abspath(study_file)}, file)
        record_machines(row["name"], output_dir, row.get("machines", []))


def report(output_dir: str, report_dir: str) -> None:
    """`study.json` (every curve), `study.md` (the table) and `mlm_loss_vs_tokens.png` in `report_dir`."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    os.makedirs(report_dir, exist_ok=True)
    recipes = runs_in(output_dir)
    rows = []
    for recipe in recipes:
        curve = validation_curve(recipe, output_dir)
        rows.append(
            {
                "name": recipe.name,
                **asdict(recipe),
                "finished": is_finished(recipe, output_dir),
                "planned_tokens": recipe.steps * recipe.tokens_per_step,
                "tokens": curve[-1][0],
                "final_validation_mlm_loss": curve[-1][1],
                "curve": curve,
                "machines": recorded_machines(recipe.name, output_dir),
            }
        )
    finished = {
        objective: [row for row in rows if row["finished"] and row["objective"] == objective]
        for objective in ("mlm", "hybrid")
    }
    chosen = {
        objective: min(candidates, key=lambda row: row["final_validation_mlm_loss"])["name"]
        for objective, candidates in finished.items()
        if candidates
    }
    recorded = recorded_settings(output_dir)
    rule = best.__doc__.split(": ", 1)[1]
    study = {
        **({} if recorded is None else {"settings": recorded}),
        "token_budget": TOKEN_BUDGET,
        "sequence_length": SEQUENCE_LENGTH,
        "rule": rule,
        "chosen": chosen,
        "runs": rows,
    }
    write_atomically(os.path.join(report_dir, "study.json"), json.dumps(study, indent=1))
    # Every recipe evaluates at the same tokens (eval_steps × tokens_per_step is a fixed share of the budget).
    tabled_tokens = {n: n * Recipe().eval_steps * Recipe().tokens_per_step for n in TABLED_EVALUATIONS}
    header = [
        "objective",
        "positions",
        "MLM decoder",
        "LR",
        "batch",
        *(f"at {tokens / 1e6:.2f}M tokens" for tokens in tabled_tokens.values()),
        "at the end",
        "tokens seen",
        "chosen",
    ]
    table = []
    for row in sorted(rows, key=lambda row: (row["objective"] != "mlm", row["final_validation_mlm_loss"])):
        tokens = f"{row['tokens'] / 1e6:.2f}M" + ("" if row["finished"] else f" of {row['planned_tokens'] / 1e6:.2f}M")
        decoder = "tied" if row["tied"] else "untied"
        table.append(
            [
                row["objective"],
                row["positions"],
                decoder,
                f"{row['learning_rate']:g}",
                row["batch_size"],
                *(f"{row['curve'][n - 1][1]:.3f}" if len(row["curve"]) >= n else "–" for n in tabled_tokens),
                f"{row['final_validation_mlm_loss']:.3f}",
                tokens,
                "**yes**" if row["name"] in chosen.values() else "",
            ]
        )
    caption = (
        f"Validation MLM loss of `mini` recipes along a {TOKEN_BUDGET / 1e6:.0f}M-token budget "
        f"(seq {SEQUENCE_LENGTH}); chosen per objective: {rule}"
    )
    write_atomically(
        os.path.join(report_dir, "study.md"),
        f"{caption}\n\n{markdown_table(header, table)}\n\n{describe_machines(rows)}\n",
    )

    figure = Figure(figsize=(11, 5), layout="constrained")
    axes = figure.add_subplot()
    styles = series_styles([row["name"] for row in rows])
    for row in rows:
        tokens, losses = zip(*row["curve"])
        axes.plot(
            [value / 1e6 for value in tokens],
            losses,
            markersize=5,
            linewidth=2.5 if row["name"] in chosen.values() else 1.2,
            label=row["name"],
            # The line style tells the decoder apart; the marker, the recipe (curves on one plateau coincide).
            **{**styles[row["name"]], "linestyle": "--" if row["tied"] else "-"},
        )
    axes.axhline(PLATEAU_TARGET, color="grey", linestyle=":", label=f"target {PLATEAU_TARGET}")
    axes.set_xlabel("tokens seen (millions)")
    axes.set_ylabel("validation MLM loss")
    axes.set_title(f"mini encoder, {TOKEN_BUDGET / 1e6:.0f}M-token budget, Gutenberg validation")
    legend_outside(axes)
    axes.grid(alpha=0.3)
    with atomic_path(os.path.join(report_dir, "mlm_loss_vs_tokens.png")) as temporary:
        figure.savefig(temporary, dpi=120, format="png")


def describe_machines(rows: list[dict[str, Any]]) -> str:
    """Which machines and library versions trained the report's runs: the same recipe's numbers differ between
    environments, so a reader needs these to compare a rerun with the table."""
    runs_by_machine: dict[str, list[str]] = {}
    for row in rows:
        for described in [describe_machine(machine, in_full=True) for machine in row["machines"]] or ["not recorded"]:
            runs_by_machine.setdefault(described, []).append(row["name"])
    lines = [
        f"- {described}: {'every run' if len(names) == len(rows) else ', '.join(names)}"
        for described, names in runs_by_machine.items()
    ]
    return "Trained on:\n\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=ScriptHelpFormatter)
    parser.add_argument("--output_dir", required=True, help="Where the runs' folders go (resumable).")
    parser.add_argument("--train_file", help="Pretraining text (globs allowed); needed to train.")
    parser.add_argument("--validation_file", help="Validation text whose MLM loss chooses; needed to train.")
    parser.add_argument("--tokenizer_name", default="bert-base-uncased", help="Tokenizer Hub id or folder.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of every run (weights, data order, masks).")
    parser.add_argument("--parallel_runs", type=int, default=2, help="Runs trained at the same time.")
    parser.add_argument("--threads_per_run", type=int, default=1, help="OMP_NUM_THREADS of each run.")
    parser.add_argument("--report", metavar="DIR", help="Write the table and plot of the finished runs to DIR.")
    parser.add_argument(
        "--import_runs",
        metavar="STUDY_JSON",
        help="Count the finished runs recorded in an earlier report's study.json as done (their curves as measured) "
        "and train only the rest.",
    )
    args = parser.parse_args(argv)
    check_folders(output_dir=args.output_dir, report=args.report)
    if args.report is None:
        if args.train_file is None or args.validation_file is None:
            parser.error("--train_file and --validation_file are needed to train.")
        check_counts(parallel_runs=args.parallel_runs, threads_per_run=args.threads_per_run)
        # Before the folder records this study's settings: a mistyped path would otherwise claim it.
        check_data_file("--train_file", args.train_file)
        check_data_file("--validation_file", args.validation_file)
        if args.import_runs:
            check_settings(args)  # before anything is written into a folder that holds another study
            import_runs(args.import_runs, args.output_dir, study_settings(args))
        study(args)
    else:
        if args.import_runs:
            parser.error("--import_runs counts recorded runs as trained, for training; leave it out with --report.")
        report(args.output_dir, args.report)
