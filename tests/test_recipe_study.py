"""The slow-start study's pieces: the scaled position table, the run names it parses back, and its selection rule."""

import argparse
import json
import os
import re
import subprocess
import sys
import threading

import pytest
import torch
from helpers import tiny_config

from modeling_prjepa import PrJepaModel, sinusoidal_position_table
from prjepa import recipe_study
from prjepa.recipe_study import Recipe
from prjepa.utils import this_machine


def test_position_embedding_scale_scales_the_fixed_table_and_survives_saving(tmp_path):
    model = PrJepaModel(tiny_config(position_embedding_scale=0.03))
    table = model.embeddings.position_embeddings.weight
    torch.testing.assert_close(table, 0.03 * sinusoidal_position_table(*table.shape))
    model.save_pretrained(tmp_path)
    reloaded = PrJepaModel.from_pretrained(tmp_path)
    torch.testing.assert_close(reloaded.embeddings.position_embeddings.weight, table)  # a buffer, rebuilt on load


@pytest.mark.parametrize(
    "overrides",
    [
        dict(position_embedding_scale=0.0),
        dict(position_embedding_scale=-1.0),
        dict(position_embedding_type="learned", position_embedding_scale=0.5),
    ],
)
def test_position_embedding_scale_refuses_what_it_cannot_mean(overrides):
    with pytest.raises(ValueError, match="position_embedding_scale"):
        tiny_config(**overrides)


def fake_run(output_dir, recipe: Recipe, losses: list[float], finished: bool) -> None:
    """A run folder as run_pretrain.py leaves it: a trainer state with one eval entry per loss."""
    run_dir = os.path.join(output_dir, recipe.name)
    state_dir = run_dir if finished else os.path.join(run_dir, f"checkpoint-{len(losses)}")
    os.makedirs(state_dir)
    history = [{"step": step + 1, "eval_mlm_loss": loss} for step, loss in enumerate(losses)]
    with open(os.path.join(state_dir, "trainer_state.json"), "w") as file:
        json.dump({"log_history": history}, file)
    if finished:
        open(os.path.join(run_dir, "train_results.json"), "w").close()


def test_report_parses_every_run_back_and_chooses_the_lowest_final_loss_per_objective(tmp_path):
    runs = {
        Recipe(positions="sin-scaled", tied=True, learning_rate=2e-3): ([7.0, 6.1], True),
        Recipe(positions="sin"): ([7.0, 5.9, 6.5], True),  # best along the way, not at the end: not chosen
        Recipe(positions="learned", batch_size=16): ([6.0], False),  # lower, but unfinished: not a candidate
        Recipe(objective="hybrid"): ([6.9, 6.4], True),
    }
    for recipe, (losses, finished) in runs.items():
        fake_run(tmp_path / "runs", recipe, losses, finished)
    assert set(recipe_study.runs_in(str(tmp_path / "runs"))) == set(runs)

    recipe_study.report(str(tmp_path / "runs"), str(tmp_path / "report"))
    study = json.loads((tmp_path / "report" / "study.json").read_text())
    assert study["chosen"] == {
        "mlm": Recipe(positions="sin-scaled", tied=True, learning_rate=2e-3).name,
        "hybrid": Recipe(objective="hybrid").name,
    }
    table = (tmp_path / "report" / "study.md").read_text()
    assert "| 6.100 | 0.01M | **yes** |" in table and "| 6.500 | 0.01M |  |" in table
    assert "| 6.000 | 0.00M of 2.00M |  |" in table  # the unfinished run
    # Along the run: the first evaluation, and the one at half the budget where the run got that far.
    assert "| at 0.25M tokens | at 1.00M tokens | at the end | tokens seen | chosen |" in table
    assert "| mlm | sin | untied | 0.001 | 32 | 7.000 | – | 6.500 | 0.01M |  |" in table
    assert (tmp_path / "report" / "mlm_loss_vs_tokens.png").stat().st_size > 0


def test_imported_runs_count_as_finished_with_their_recorded_curves(tmp_path):
    recipe = Recipe(positions="learned", tied=True, batch_size=16)
    fake_run(tmp_path / "runs", recipe, [7.0, 6.3], finished=True)
    fake_run(tmp_path / "runs", Recipe(), [7.0], finished=False)  # unfinished: not recorded as done
    recipe_study.report(str(tmp_path / "runs"), str(tmp_path / "report"))

    recipe_study.import_runs(str(tmp_path / "report" / "study.json"), str(tmp_path / "fresh"))
    assert recipe_study.runs_in(str(tmp_path / "fresh")) == [recipe]
    assert recipe_study.is_finished(recipe, str(tmp_path / "fresh"))
    assert recipe_study.validation_curve(recipe, str(tmp_path / "fresh")) == [(16 * 128, 7.0), (32 * 128, 6.3)]


def write_study_text(folder) -> None:
    """The texts `study_arguments` names, relative to `folder`."""
    for split in ("train", "validation"):
        (folder / split).mkdir()
        (folder / split / "book.txt").write_text("the cat sat on the mat\n")


def test_import_counts_runs_only_for_a_study_of_the_same_settings(tmp_path, monkeypatch):
    monkeypatch.setattr(recipe_study, "study", lambda args: None)  # the training that would follow the import
    monkeypatch.chdir(tmp_path)
    write_study_text(tmp_path)
    runs, report_dir = tmp_path / "runs", tmp_path / "report"
    recipe_study.record_settings(study_arguments(runs, seed=1))
    fake_run(runs, Recipe(), [7.0, 6.3], finished=True)
    recipe_study.report(str(runs), str(report_dir))
    study = ["--train_file", "train/*.txt", "--validation_file", "validation/*.txt"]
    study += ["--tokenizer_name", "bert-base-uncased", "--import_runs", str(report_dir / "study.json")]

    # The record's own settings: imported. Another seed: refused before anything is written.
    recipe_study.main([*study, "--output_dir", str(tmp_path / "same"), "--seed", "1"])
    assert recipe_study.is_finished(Recipe(), str(tmp_path / "same"))
    with pytest.raises(ValueError, match=r"records a study made with other settings \(seed: 1 there, 0 now\)"):
        recipe_study.main([*study, "--output_dir", str(tmp_path / "other"), "--seed", "0"])
    assert not (tmp_path / "other").exists()  # nor its settings, which would refuse the right import next
    # The record's files spelled otherwise (absolute paths here) are its settings too.
    absolute = ["--train_file", str(tmp_path / "train" / "*.txt"), "--validation_file", str(tmp_path / "validation")]
    recipe_study.main(
        [*study, *absolute[:3], absolute[3] + "/*.txt", "--output_dir", str(tmp_path / "also"), "--seed", "1"]
    )
    assert recipe_study.is_finished(Recipe(), str(tmp_path / "also"))
    # A folder holding another study is refused before the import writes into it.
    recipe_study.record_settings(study_arguments(tmp_path / "taken", seed=2))
    with pytest.raises(ValueError, match=r"holds a study made with other settings \(seed: 2 there, 1 now\)"):
        recipe_study.main([*study, "--output_dir", str(tmp_path / "taken"), "--seed", "1"])
    assert not (tmp_path / "taken" / Recipe().name).exists()


def test_a_study_folder_takes_its_files_however_spelled_but_not_other_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_study_text(tmp_path)
    (tmp_path / "link").symlink_to(tmp_path / "train")
    recipe_study.record_settings(study_arguments(tmp_path / "runs"))
    # `**` as `datasets` reads it (any depth, none included), which Python's glob does not.
    spellings = (str(tmp_path / "train" / "*.txt"), "link/*.txt", "train/book.txt", "./train/*.txt", "train/**/*.txt")
    for spelling in spellings:
        recipe_study.check_settings(study_arguments(tmp_path / "runs", train_file=spelling))
    (tmp_path / "tokenizer").mkdir()
    (tmp_path / "tokenizer-link").symlink_to(tmp_path / "tokenizer")
    recipe_study.record_settings(study_arguments(tmp_path / "local", tokenizer_name="tokenizer"))
    recipe_study.check_settings(study_arguments(tmp_path / "local", tokenizer_name=str(tmp_path / "tokenizer-link")))
    with pytest.raises(ValueError, match=r"tokenizer_name: 'tokenizer' there, 'bert-base-uncased' now"):
        recipe_study.check_settings(study_arguments(tmp_path / "local"))
    (tmp_path / "train" / "more.txt").write_text("a dog ran in the park\n")  # now the record's pattern matches more
    for other in ("train/book.txt", "validation/*.txt", "missing/*.txt"):
        with pytest.raises(
            ValueError, match=r"other settings \(train_file: 'train/\*.txt' there, '" + re.escape(other)
        ):
            recipe_study.check_settings(study_arguments(tmp_path / "runs", train_file=other))


def test_import_refuses_a_study_measured_on_another_budget(tmp_path):
    (tmp_path / "study.json").write_text(json.dumps({"token_budget": 1, "sequence_length": 128, "runs": []}))
    with pytest.raises(ValueError, match="1-token budget"):
        recipe_study.import_runs(str(tmp_path / "study.json"), str(tmp_path / "runs"))


def study_arguments(output_dir, **changes) -> argparse.Namespace:
    arguments = dict(
        output_dir=str(output_dir),
        train_file="train/*.txt",
        validation_file="validation/*.txt",
        tokenizer_name="bert-base-uncased",
        seed=0,
        parallel_runs=2,
        threads_per_run=1,
    )
    return argparse.Namespace(**{**arguments, **changes})


def test_a_first_run_that_fails_before_training_stops_the_study_with_its_error(tmp_path, monkeypatch):
    """The later runs wait for the first to tokenize the corpus; if it fails before that, its error ends the wait."""

    def failing_train(recipe, args):
        raise subprocess.CalledProcessError(1, ["prjepa.pretraining", recipe.name])

    monkeypatch.setattr(recipe_study, "train", failing_train)
    errors = []

    def run_study() -> None:
        try:
            recipe_study.train_all([Recipe(), Recipe(tied=True)], study_arguments(tmp_path))
        except Exception as error:  # kept for the assertion below, whatever its type
            errors.append(error)

    # In a thread, so that a study left waiting for a log line that never comes fails the test instead of hanging it.
    study = threading.Thread(target=run_study, daemon=True)
    study.start()
    study.join(timeout=60)
    assert not study.is_alive(), "the study still waits for the failed run's tokenization"
    assert len(errors) == 1 and isinstance(errors[0], subprocess.CalledProcessError), errors
    assert "prjepa.pretraining" in str(errors[0])


def test_a_run_that_fails_stops_the_study_with_the_end_of_its_log(tmp_path, monkeypatch):
    failing = "import sys; print('ValueError: --train_file nope.txt matches no file'); sys.exit(3)"
    monkeypatch.setattr(recipe_study, "pretrain_command", lambda recipe, args: [sys.executable, "-c", failing])
    with pytest.raises(RuntimeError, match=r"stopped with exit status 3; the end of its log, .*\.log:\n.*matches no"):
        recipe_study.train(Recipe(), study_arguments(tmp_path))


def test_bad_study_options_are_refused_before_the_folder_records_a_study(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(recipe_study, "study", lambda args: pytest.fail("the study started"))
    monkeypatch.chdir(tmp_path)
    write_study_text(tmp_path)
    study = ["--output_dir", "runs", "--train_file", "train/*.txt", "--validation_file", "validation/*.txt"]
    for option in ("--parallel_runs", "--threads_per_run"):
        with pytest.raises(ValueError, match=f"{option} 0 must be at least 1"):
            recipe_study.main([*study, option, "0"])
    with pytest.raises(ValueError, match=r"--train_file trian/\*\.txt matches no file"):
        recipe_study.main([*study, "--train_file", "trian/*.txt"])
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=r"--output_dir file/runs lies under .*file, a file, not a folder"):
        recipe_study.main([*study, "--output_dir", "file/runs"])
    with pytest.raises(ValueError, match=r"--report file is a file, not a folder: choose another --report"):
        recipe_study.main(["--output_dir", "runs", "--report", "file"])
    assert not (tmp_path / "runs").exists()


def test_a_study_folder_is_reused_only_with_the_same_seed_data_and_tokenizer(tmp_path, monkeypatch):
    trained = []
    monkeypatch.setattr(recipe_study, "train_all", lambda recipes, args: trained.extend(recipes))
    monkeypatch.setattr(recipe_study, "best", lambda recipes, output_dir: recipes[0])
    recipe_study.study(study_arguments(tmp_path))
    recipe_study.study(study_arguments(tmp_path))  # the same study again: resumes
    with pytest.raises(ValueError, match=r"seed: 0 there, 1 now.*another --output_dir"):
        recipe_study.study(study_arguments(tmp_path, seed=1))
    with pytest.raises(ValueError, match=r"train_file: 'train/\*.txt' there, 'other.txt' now"):
        recipe_study.study(study_arguments(tmp_path, train_file="other.txt"))
    assert len(trained) == 2 * 9


def test_each_run_records_the_machines_that_trained_it_and_the_report_names_them(tmp_path, monkeypatch):
    args, recipe = study_arguments(tmp_path / "runs"), Recipe(tied=True)
    run_dir = tmp_path / "runs" / recipe.name
    # Stands in for pretraining, which refuses to start in a non-empty folder without a checkpoint.
    refuses_a_used_folder = (
        f"import os, sys; sys.exit(os.path.isdir({str(run_dir)!r}) and bool(os.listdir({str(run_dir)!r})))"
    )
    monkeypatch.setattr(
        recipe_study, "pretrain_command", lambda recipe, args: [sys.executable, "-c", refuses_a_used_folder]
    )
    here = this_machine()
    elsewhere = {**here, "cpu_count": 64, "processor": "Other CPU", "torch": "0.0", "gpu": "NVIDIA H200"}
    recipe_study.train(recipe, args)
    assert recipe_study.recorded_machines(recipe.name, args.output_dir) == [here]
    # Resumed on another machine, then again there: each machine is named once, in the order they trained it.
    monkeypatch.setattr(recipe_study, "this_machine", lambda: elsewhere)
    recipe_study.train(recipe, args)
    recipe_study.train(recipe, args)
    assert recipe_study.recorded_machines(recipe.name, args.output_dir) == [here, elsewhere]

    fake_run(tmp_path / "runs", recipe, [7.0, 6.3], finished=True)
    fake_run(tmp_path / "runs", Recipe(), [7.0, 6.5], finished=True)  # trained before machines were recorded
    recipe_study.report(args.output_dir, str(tmp_path / "report"))
    rows = json.loads((tmp_path / "report" / "study.json").read_text())["runs"]
    assert {row["name"]: row["machines"] for row in rows} == {recipe.name: [here, elsewhere], Recipe().name: []}
    lines = (tmp_path / "report" / "study.md").read_text().splitlines()
    assert f"- not recorded: {Recipe().name}" in lines
    assert any(
        line.startswith("- Other CPU, 64 CPU cores and a NVIDIA H200,") and "torch 0.0" in line and recipe.name in line
        for line in lines
    )
    assert any(line.startswith(f"- {here['processor']}, {here['cpu_count']} CPU cores,") for line in lines)

    recipe_study.import_runs(str(tmp_path / "report" / "study.json"), str(tmp_path / "fresh"))
    assert recipe_study.recorded_machines(recipe.name, str(tmp_path / "fresh")) == [here, elsewhere]
    assert recipe_study.describe_machines(
        [{"name": "a", "machines": [here]}, {"name": "b", "machines": [here]}]
    ).endswith(": every run")
