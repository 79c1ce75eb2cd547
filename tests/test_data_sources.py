"""The demo sample shipped with the package (loads like real data, is what its README says, is packaged) and the
stop before compute when Hub data is asked for and the Hub cannot be reached."""

import configparser
import fnmatch
import glob
import hashlib
import os
import re

import datasets
import pytest
from transformers import AutoTokenizer

from prjepa import data_sources, pretraining
from prjepa.data_sources import (
    DEMO_DATA,
    DEMO_GLUE,
    DEMO_GLUE_TASKS,
    DEMO_TOKENIZER,
    DEMO_TRAIN_FILE,
    DEMO_VALIDATION_FILE,
    check_hub_reachable,
)
from prjepa.experiment import main as run_experiment
from prjepa.experiment import stages as experiment_stages
from prjepa.experiment.plan import DATA_ARGUMENTS, ExperimentArguments
from prjepa.geometry import analysis
from prjepa.probing import glue_probe

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GLUE_MIRROR = os.path.join(REPO, "..", "shared", "data", "glue")
BERT_VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"


def demo_files() -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(root, name), DEMO_DATA)
        for root, _, names in os.walk(DEMO_DATA)
        for name in names
        if "__pycache__" not in root
    )


def test_the_demo_sample_stays_small_and_every_file_is_package_data():
    files = demo_files()
    assert sum(os.path.getsize(os.path.join(DEMO_DATA, name)) for name in files) <= 5 * 1024 * 1024
    setup = configparser.ConfigParser()
    setup.read(os.path.join(REPO, "setup.cfg"))
    patterns = [line.strip() for line in setup["options.package_data"]["prjepa"].splitlines() if line.strip()]
    unpackaged = [
        name for name in files if not any(fnmatch.fnmatch(os.path.join("demo_data", name), p) for p in patterns)
    ]
    assert unpackaged == []


def read_anew(glue_path: str, task: str, cache_dir: str) -> datasets.DatasetDict:
    """`datasets` caches a local GLUE copy by its folder's name and file patterns (huggingface/datasets#2956): another
    test's folder named `glue`, cached in the shared cache, would be read in this one's place."""
    return datasets.load_dataset(glue_path, task, cache_dir=cache_dir)


def test_the_demo_glue_loads_like_the_hub_dataset(tmp_path):
    sst2, stsb = (read_anew(DEMO_GLUE, task, str(tmp_path)) for task in DEMO_GLUE_TASKS)
    assert {split: len(rows) for split, rows in sst2.items()} == {"train": 2000, "validation": 872}
    assert {split: len(rows) for split, rows in stsb.items()} == {"train": 2000, "validation": 1500}
    assert sst2["train"].features["label"].names == ["negative", "positive"]
    assert stsb["train"].column_names == ["sentence1", "sentence2", "label", "idx"]
    assert 0.0 <= min(stsb["validation"]["label"]) and max(stsb["validation"]["label"]) <= 5.0
    # Both labels present in a sample drawn at random, not the first rows of one class.
    assert 0.3 < sum(sst2["train"]["label"]) / 2000 < 0.7


@pytest.mark.skipif(not os.path.isdir(GLUE_MIRROR), reason="the shared GLUE mirror (GLUE_MIRROR) is absent here")
def test_the_demo_glue_rows_are_glues_own(tmp_path):
    for task in DEMO_GLUE_TASKS:
        demo, full = read_anew(DEMO_GLUE, task, str(tmp_path / "demo")), read_anew(GLUE_MIRROR, task, str(tmp_path))
        assert demo["validation"].to_list() == full["validation"].to_list()
        by_idx = {row["idx"]: row for row in full["train"]}
        assert all(by_idx[row["idx"]] == row for row in demo["train"])


def test_the_demo_tokenizer_is_bert_base_uncased():
    with open(os.path.join(DEMO_TOKENIZER, "vocab.txt"), "rb") as file:
        assert hashlib.sha256(file.read()).hexdigest() == BERT_VOCAB_SHA256
    tokenizer = AutoTokenizer.from_pretrained(DEMO_TOKENIZER)
    assert len(tokenizer) == 30522 and tokenizer.mask_token_id == 103
    assert tokenizer.tokenize("Paris is the CAPITAL") == ["paris", "is", "the", "capital"]


def test_the_demo_text_loads_through_the_text_builder():
    assert len(glob.glob(DEMO_TRAIN_FILE)) == 9 and len(glob.glob(DEMO_VALIDATION_FILE)) == 1
    text = datasets.load_dataset("text", data_files={"train": DEMO_TRAIN_FILE, "validation": DEMO_VALIDATION_FILE})
    assert len(text["train"]) > 5000 and len(text["validation"]) > 100
    assert not any("Project Gutenberg License" in line for line in text["train"]["text"])


def test_unset_data_arguments_take_the_presets_defaults():
    demo = ExperimentArguments()
    assert demo.preset == "demo"
    assert (demo.train_file, demo.validation_file, demo.dataset_name) == (DEMO_TRAIN_FILE, DEMO_VALIDATION_FILE, None)
    assert (demo.glue_path, demo.tokenizer_name) == (DEMO_GLUE, DEMO_TOKENIZER)
    hub = ExperimentArguments(preset="cpu")
    assert (hub.dataset_name, hub.dataset_config_name, hub.train_file) == (
        "Salesforce/wikitext",
        "wikitext-103-raw-v1",
        None,
    )
    assert (hub.glue_path, hub.tokenizer_name) == ("nyu-mll/glue", "bert-base-uncased")
    # With the demo preset asked for, the user's own text replaces the demo text entirely; a dataset keeps its own
    # configuration.
    own = ExperimentArguments(preset="demo", train_file="mine/*.txt")
    assert (own.train_file, own.validation_file, own.glue_path) == ("mine/*.txt", None, DEMO_GLUE)
    other = ExperimentArguments(preset="cpu", dataset_name="someone/texts")
    assert other.dataset_config_name is None


# What each data argument needs beside it to name a source on its own.
COMPANIONS = {
    "validation_file": {"train_file": "mine/*.txt"},
    "dataset_config_name": {"dataset_name": "someone/texts"},
    "dataset_revision": {"dataset_name": "someone/texts"},
}


@pytest.mark.parametrize("name", DATA_ARGUMENTS)
def test_any_data_argument_without_a_preset_runs_the_cpu_preset_without_the_demo_sample(name):
    given = {name: "mine", **COMPANIONS.get(name, {})}
    arguments = ExperimentArguments(**given)
    assert arguments.preset == "cpu"
    data = [getattr(arguments, other) or "" for other in DATA_ARGUMENTS]
    assert not any(value.startswith(DEMO_DATA) for value in data)
    assert ExperimentArguments(preset="demo", **given).preset == "demo"


@pytest.mark.parametrize("preset", ["demo", "cpu"])
def test_the_experiment_refuses_text_sources_that_contradict_each_other(preset):
    """As run_pretrain.py does, and before a default replaces what was given: a lone validation file would have been
    swapped for the demo's, a lone configuration for WikiText's, and a Hub dataset dropped for the training file."""
    with pytest.raises(ValueError, match=r"--validation_file mine\.txt is read only together with --train_file"):
        ExperimentArguments(preset=preset, validation_file="mine.txt")
    with pytest.raises(ValueError, match="--dataset_config_name wikitext-2-raw-v1 needs --dataset_name"):
        ExperimentArguments(preset=preset, dataset_config_name="wikitext-2-raw-v1")
    with pytest.raises(ValueError, match="name two training sources; give one of them"):
        ExperimentArguments(preset=preset, train_file="mine/*.txt", dataset_name="someone/texts")


def test_hub_ids_are_checked_and_local_paths_never(monkeypatch, tmp_path):
    def must_not_probe(*args, **kwargs):
        raise AssertionError("probed the Hub for local paths")

    monkeypatch.setattr(data_sources, "hub_unreachable_reason", must_not_probe)
    check_hub_reachable([("--glue_path", str(tmp_path)), ("--dataset_name", None)])

    monkeypatch.setattr(data_sources, "hub_unreachable_reason", lambda: None)
    check_hub_reachable([("--glue_path", "nyu-mll/glue")])

    monkeypatch.setattr(data_sources, "hub_unreachable_reason", lambda: "ConnectError: Name or service not known")
    with pytest.raises(SystemExit) as stop:
        check_hub_reachable([("--glue_path", str(tmp_path)), ("--tokenizer_name", "bert-base-uncased")])
    message = str(stop.value)
    # One flag names Hub data (the sentence says so in the singular), and a mistyped local folder reads as one.
    assert "--tokenizer_name bert-base-uncased names Hub data (no local file or folder of that name exists" in message
    assert "--glue_path" not in message.split("names Hub data")[0]
    assert "--train_file" in message and "ConnectError" in message and "\n" not in message
    assert "HF_HUB_OFFLINE=1" in message  # a warm cache needs no Hub


@pytest.mark.parametrize("path", ["./glue", "../glue", "{tmp}/glue", "data/glue/sst2", "glue/", "~/glue"])
def test_a_missing_path_that_cannot_be_a_hub_id_is_named_missing_without_asking_the_hub(monkeypatch, tmp_path, path):
    def must_not_probe(*args, **kwargs):
        raise AssertionError("probed the Hub for a local path")

    monkeypatch.setattr(data_sources, "hub_unreachable_reason", must_not_probe)
    monkeypatch.chdir(tmp_path)
    path = path.format(tmp=tmp_path)
    with pytest.raises(SystemExit, match="No such file or folder") as stop:
        check_hub_reachable([("--glue_path", path), ("--tokenizer_name", "bert-base-uncased")])
    assert f"--glue_path {path} " in str(stop.value) and "bert-base-uncased" not in str(stop.value)


def test_the_experiment_stops_before_any_stage_when_the_hub_cannot_be_reached(monkeypatch, tmp_path):
    monkeypatch.setattr(data_sources, "hub_unreachable_reason", lambda: "ConnectError: Name or service not known")
    monkeypatch.setattr(experiment_stages, "run_stage", lambda *args, **kwargs: pytest.fail("a stage started"))
    results = tmp_path / "results"
    with pytest.raises(SystemExit, match="--dataset_name Salesforce/wikitext"):
        run_experiment(["--preset", "cpu", "--results_dir", str(results), "--work_dir", str(tmp_path / "w")])
    assert not results.exists()


def test_the_experiment_given_only_a_text_file_asks_the_hub_for_the_rest_not_the_demo_sample(monkeypatch, tmp_path):
    monkeypatch.setattr(data_sources, "hub_unreachable_reason", lambda: "ConnectError: Name or service not known")
    monkeypatch.setattr(experiment_stages, "run_stage", lambda *args, **kwargs: pytest.fail("a stage started"))
    (tmp_path / "train.txt").write_text("the cat sat on the mat\n")
    argv = ["--train_file", str(tmp_path / "train.txt"), "--results_dir", str(tmp_path / "results")]
    with pytest.raises(SystemExit) as stop:
        run_experiment([*argv, "--work_dir", str(tmp_path / "w")])
    assert "--glue_path nyu-mll/glue, --tokenizer_name bert-base-uncased name Hub data" in str(stop.value)


UNREACHABLE = "ConnectError: Name or service not known"
HUB_TOKENIZER = ["--tokenizer_name", "someone/tokenizer"]


@pytest.mark.parametrize(
    "entry_point, argv, named",
    [
        (
            pretraining.main,
            ["--train_file", DEMO_TRAIN_FILE, "--do_train", "--use_cpu"],
            "--tokenizer_name someone/tokenizer",
        ),
        (
            glue_probe.main,
            ["--model_name_or_path", "someone/encoder", "--task_name", "sst2", "--glue_path", DEMO_GLUE],
            "--model_name_or_path someone/encoder, --tokenizer_name someone/tokenizer",
        ),
        (
            analysis.main,
            ["--models", "theirs=someone/encoder", "--task_name", "sst2", "--glue_path", DEMO_GLUE],
            "--models someone/encoder, --tokenizer_name someone/tokenizer",
        ),
    ],
    ids=["pretrain", "probe", "analysis"],
)
def test_every_entry_point_stops_before_any_compute_when_the_hub_cannot_be_reached(
    monkeypatch, tmp_path, entry_point, argv, named
):
    """Each names every Hub id among its arguments, before loading a model or writing anything (the data that
    precede the check here are local)."""
    monkeypatch.setattr(data_sources, "hub_unreachable_reason", lambda: UNREACHABLE)
    output = tmp_path / "out"
    verb = "name" if "," in named else "names"
    with pytest.raises(SystemExit, match=re.escape(f"({UNREACHABLE}), and {named} {verb} Hub data")):
        entry_point([*argv, *HUB_TOKENIZER, "--output_dir", str(output)])
    assert not output.exists()


def test_the_data_file_check_reads_a_glob_as_datasets_does(tmp_path, monkeypatch):
    """`**` matches any depth, the top folder included, as in `datasets`: a recursive glob is accepted, and a bad file
    it names is refused before anything loads, not when `datasets` reaches it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus" / "deeper").mkdir(parents=True)
    (tmp_path / "corpus" / "top.txt").write_text("the cat sat on the mat\n")
    pattern = "corpus/**/*.txt"
    read = datasets.load_dataset_builder("text", data_files={"train": pattern}).config.data_files["train"]
    assert [os.path.relpath(path, tmp_path) for path in read] == [os.path.join("corpus", "top.txt")]
    data_sources.check_data_file("--train_file", pattern)

    (tmp_path / "corpus" / "deeper" / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.txt is not UTF-8"):
        data_sources.check_data_file("--train_file", pattern)
    with pytest.raises(ValueError, match=r"--train_file elsewhere/\*\*/\*.txt matches no file"):
        data_sources.check_data_file("--train_file", "elsewhere/**/*.txt")
