"""run_representation_analysis.py end to end on tiny encoders and synthetic data: every metric per (model, dataset,
pooling), features checked against an independent encoding, the probe's cache reused, trained vs untrained poolers,
and the bad-input paths."""

import json
import math
import os
import random
import shutil

import datasets
import numpy as np
import pytest
import torch
from helpers import WORDS, tiny_config, write_csv, write_glue_folder
from transformers import BertModel, BertTokenizer

from modeling_prjepa import PrJepaModel
from prjepa import geometry, probing
from prjepa.geometry import analysis as analysis_script
from prjepa.probing import features as feature_extraction
from prjepa.probing import poolers

TOPICS = ["dog", "park", "paris"]
POOLINGS = ["mean", "max", "weighted", "attention"]


@pytest.fixture(scope="module")
def prjepa_dir(tmp_path_factory, tokenizer):
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("prjepa")
    PrJepaModel(tiny_config()).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


def topic_texts(count: int, seed: int) -> tuple[list[str], list[int]]:
    """Texts whose most frequent token is their topic word (it occurs twice, every other word once), cycling over
    three topics; label 1 when "cat" occurs, balanced within each topic."""
    rng = random.Random(seed)
    fillers = [word for word in WORDS if word not in TOPICS + ["cat"]]
    texts, labels = [], []
    for index in range(count):
        topic, label = TOPICS[index % 3], (index // 3) % 2
        words = rng.sample(fillers, rng.randint(2, 5)) + [topic, topic] + ["cat"] * label
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


def mean_pooled_uniformity(model_dir: str, texts: list, max_length: int) -> float:
    """Wang & Isola uniformity (t = 2) of the mean-pooled last hidden states, computed here from scratch: padding
    masked, pairs encoded jointly, every pair i ≠ j of samples."""
    tokenizer = BertTokenizer.from_pretrained(model_dir)
    model = BertModel.from_pretrained(model_dir).eval()
    firsts = [text[0] if isinstance(text, tuple) else text for text in texts]
    seconds = [text[1] for text in texts] if isinstance(texts[0], tuple) else None
    batch = tokenizer(firsts, seconds, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state.double()
    mask = batch["attention_mask"].unsqueeze(-1).double()
    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1)
    unit = torch.nn.functional.normalize(pooled, dim=1)
    squared_distances = torch.cdist(unit, unit) ** 2
    off_diagonal = ~torch.eye(len(texts), dtype=torch.bool)
    return math.log(torch.exp(-2 * squared_distances[off_diagonal]).mean().item())


@pytest.fixture(scope="module")
def topic_data(tmp_path_factory) -> dict:
    directory = tmp_path_factory.mktemp("topics")
    validation_texts, validation_labels = topic_texts(60, seed=1)
    train_texts, train_labels = topic_texts(90, seed=2)
    return dict(
        validation_texts=validation_texts,
        validation_file=write_csv(directory / "topics.csv", {"sentence": validation_texts, "label": validation_labels}),
        train_file=write_csv(directory / "train.csv", {"sentence": train_texts, "label": train_labels}),
    )


def uniformity_by_model(comparison: dict) -> dict[str, float]:
    return {model: summary["metrics"]["uniformity"]["value"] for model, summary in comparison["models"].items()}


def analysis_args(cache_dir, output_dir, *extra: str) -> list[str]:
    return [
        "--cache_dir",
        str(cache_dir),
        "--output_dir",
        str(output_dir),
        "--num_resamples",
        "50",
        "--max_seq_length",
        "32",
        *extra,
    ]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, prjepa_dir, bert_dir, topic_data) -> dict:
    """Both models, the four poolings, poolers trained on the training file."""
    root = tmp_path_factory.mktemp("trained")
    argv = analysis_args(
        root / "cache",
        root / "out",
        "--models",
        f"hybrid={prjepa_dir}",
        f"mlm={bert_dir}",
        "--train_file",
        topic_data["train_file"],
        "--validation_file",
        topic_data["validation_file"],
        "--text_columns",
        "sentence",
        "--pooling",
        *POOLINGS,
    )
    result = analysis_script.main(argv)
    return dict(result=result, cache_dir=root / "cache", output_dir=root / "out", argv=argv)


# ---------------------------------------------------------------------------------------------------------------------
# End to end


def test_every_metric_per_model_dataset_and_pooling(trained_run, bert_dir, topic_data):
    result = trained_run["result"]
    with open(trained_run["output_dir"] / "analysis.json") as file:
        assert json.load(file) == json.loads(json.dumps(result))
    assert list(result["results"]) == ["topics"]
    assert list(result["results"]["topics"]) == POOLINGS
    for pooling, comparison in result["results"]["topics"].items():
        assert list(comparison["models"]) == ["hybrid", "mlm"]
        for model, summary in comparison["models"].items():
            assert summary["num_samples"] == 60 and summary["num_classes"] == 2
            assert summary["dim"] == (32 if model == "hybrid" else 16)
            metrics = summary["metrics"]
            assert list(metrics) == list(geometry.METRIC_NAMES)
            missing = {key: entry for key, entry in metrics.items() if entry["value"] is None}
            assert not missing, (pooling, model, missing)
            assert not any("warning" in entry for entry in metrics.values())  # 60 samples: no small-N warning
            # The token probe's targets are the topic words (each text's most frequent token): three classes.
            assert metrics["token_probe"]["num_classes"] == 3
        ratio = comparison["uniformity_ratio"]
        uniformity = uniformity_by_model(comparison)
        assert (ratio["numerator"], ratio["denominator"]) == ("hybrid", "mlm")
        assert ratio["value"] == pytest.approx(uniformity["hybrid"] / uniformity["mlm"])
        assert ratio["ci95"][0] <= ratio["value"] <= ratio["ci95"][1]

    # The features are the models' own: the mean-pooled uniformity recomputed here from the raw texts matches.
    measured = result["results"]["topics"]["mean"]["models"]["mlm"]["metrics"]["uniformity"]["value"]
    assert measured == pytest.approx(mean_pooled_uniformity(bert_dir, topic_data["validation_texts"], 32), rel=1e-5)


def test_a_ratio_given_puts_its_first_model_over_its_second(trained_run, tmp_path):
    argv = list(trained_run["argv"])
    argv[argv.index("--output_dir") + 1] = str(tmp_path / "reversed")
    argv[argv.index("--pooling") + 1 : argv.index("--pooling") + 1 + len(POOLINGS)] = ["mean"]
    reversed_run = analysis_script.main([*argv, "--ratio", "mlm", "hybrid"])  # the features come from the cache
    comparison = reversed_run["results"]["topics"]["mean"]
    ratio, uniformity = comparison["uniformity_ratio"], uniformity_by_model(comparison)
    assert (ratio["numerator"], ratio["denominator"]) == ("mlm", "hybrid")
    assert ratio["value"] == pytest.approx(uniformity["mlm"] / uniformity["hybrid"])
    default = trained_run["result"]["results"]["topics"]["mean"]["uniformity_ratio"]["value"]
    assert ratio["value"] == pytest.approx(1 / default)


def test_settings_counts_and_versions_are_recorded(trained_run):
    result = trained_run["result"]
    settings = result["settings"]
    assert settings["untrained_poolers"] is False and "trained" in settings["poolers"]
    assert settings["pooler_training"]["epochs"] > 0
    assert settings["uniformity_ratio"] == ["hybrid", "mlm"]
    assert "joint" in settings["pair_rule"] and "rounded" in settings["score_rule"]
    assert (settings["num_resamples"], settings["seed"]) == (50, 0)
    assert result["datasets"]["topics"] | {"text_columns": None} == {
        "task": "custom",
        "split": "validation",
        "num_samples": 60,
        "split_size": 60,
        "text_columns": None,
        "is_regression": False,
        "num_classes": 2,
        "pooler_training_samples": 90,
    }
    assert {"torch", "transformers", "sklearn", "matplotlib"} <= set(result["versions"])
    assert result["warnings"] == []
    assert result["models"]["hybrid"]["fingerprint"] != result["models"]["mlm"]["fingerprint"]


def test_markdown_puts_the_models_side_by_side(trained_run, prjepa_dir, bert_dir):
    markdown = (trained_run["output_dir"] / "analysis.md").read_text()
    assert prjepa_dir in markdown and bert_dir in markdown
    assert "trained on the training split" in markdown
    assert "| dataset | pooling | hybrid | mlm | ratio (> 1: numerator more uniform) |" in markdown
    uniformity = trained_run["result"]["results"]["topics"]["attention"]["models"]["hybrid"]["metrics"]["uniformity"]
    assert geometry.format_entry(uniformity) in markdown
    for pooling in POOLINGS:
        assert f"## topics — {pooling} pooling" in markdown
    assert markdown.count("| metric | hybrid | mlm |") == len(POOLINGS)


def test_plots_are_written(trained_run):
    plots = trained_run["result"]["plots"]
    expected = {"spectrum_topics.png", "pooling_ablation_topics.png"} | {
        f"{kind}_{pooling}.png" for kind in ("effective_rank", "alignment_uniformity", "probes") for pooling in POOLINGS
    }
    assert set(plots) == expected
    for name in plots:
        with open(trained_run["output_dir"] / name, "rb") as file:
            assert file.read(8) == b"\x89PNG\r\n\x1a\n", name


def test_untrained_poolers_change_only_the_learned_poolings_and_reuse_the_cache(
    trained_run, prjepa_dir, bert_dir, topic_data, tmp_path, monkeypatch
):
    def refuse(*args, **kwargs):
        raise AssertionError("an encoder ran although the first run cached every feature this one needs")

    monkeypatch.setattr(feature_extraction, "_compute_features", refuse)
    untrained = analysis_script.main(
        analysis_args(
            trained_run["cache_dir"],
            tmp_path / "untrained",
            "--models",
            f"hybrid={prjepa_dir}",
            f"mlm={bert_dir}",
            "--validation_file",
            topic_data["validation_file"],
            "--text_columns",
            "sentence",
            "--pooling",
            *POOLINGS,
            "--untrained_poolers",
        )
    )
    settings = untrained["settings"]
    assert settings["untrained_poolers"] is True and "random initialisation" in settings["poolers"]
    assert settings["pooler_training"] is None
    assert untrained["datasets"]["topics"]["pooler_training_samples"] is None

    trained = trained_run["result"]["results"]["topics"]
    before = {pooling: uniformity_by_model(comparison) for pooling, comparison in trained.items()}
    after = {pooling: uniformity_by_model(comparison) for pooling, comparison in untrained["results"]["topics"].items()}
    for pooling in ("mean", "max"):
        assert after[pooling] == before[pooling]
    for pooling in ("weighted", "attention"):
        for model in ("hybrid", "mlm"):
            assert after[pooling][model] != pytest.approx(before[pooling][model])
            # A random pooler is not the mean pooling the probe's poolers start from.
            assert after[pooling][model] != pytest.approx(after["mean"][model])


def test_single_class_small_pair_data_without_a_training_split(tmp_path, bert_dir):
    """Pairs are encoded jointly; one class makes the class metrics not applicable, with the reason; 20 samples
    carry a warning; mean and max pooling need no training split."""
    firsts, _ = topic_texts(20, seed=3)
    seconds, _ = topic_texts(20, seed=4)
    pairs = write_csv(tmp_path / "pairs.csv", {"first": firsts, "second": seconds, "label": [1] * 20})
    result = analysis_script.main(
        analysis_args(
            tmp_path / "cache",
            tmp_path / "out",
            "--models",
            f"bert={bert_dir}",
            "--validation_file",
            pairs,
            "--text_columns",
            "first",
            "second",
            "--pooling",
            "mean",
            "max",
        )
    )
    metrics = result["results"]["pairs"]["mean"]["models"]["bert"]["metrics"]
    for key in ("semantic_probe", "probe_gap", "intra_class_distance", "inter_class_distance", "intra_inter_ratio"):
        assert metrics[key]["value"] is None and "class" in metrics[key]["not_applicable"], key
    assert metrics["alignment"]["value"] > 0  # every pair shares the one label
    assert "warning" in metrics["uniformity"] and "20 samples" in metrics["uniformity"]["warning"]
    assert metrics["uniformity"]["value"] == pytest.approx(
        mean_pooled_uniformity(bert_dir, list(zip(firsts, seconds)), 32), rel=1e-5
    )
    assert "uniformity_ratio" not in result["results"]["pairs"]["mean"]  # one model: no ratio
    assert any("only 20 samples" in warning for warning in result["warnings"])
    assert any("single class" in warning for warning in result["warnings"])
    markdown = (tmp_path / "out" / "analysis.md").read_text()
    assert f"n/a ({metrics['inter_class_distance']['not_applicable']})" in markdown
    assert "⚠ pairs: only 20 samples" in markdown
    assert "Poolings: mean, max.\n" in markdown  # no pooler to train, none described


# ---------------------------------------------------------------------------------------------------------------------
# Data handling and bad input (no model is loaded)


def parse(*argv: str):
    parser = analysis_script.script_parser(
        (analysis_script.ModelArguments, analysis_script.DataArguments, analysis_script.AnalysisArguments), None
    )
    return parser.parse_args_into_dataclasses(args=["--models", "a=x", *argv])


def test_scores_are_rounded_to_classes_and_the_evaluation_split_is_subsampled(tmp_path):
    scores = [0.4, 0.5, 2.49, 2.5, 4.7, 5.0, 1.2, 3.3]
    texts = [f"the cat sat {index}" for index in range(len(scores))]
    path = write_csv(tmp_path / "scores.csv", {"sentence": texts, "label": scores})
    _, data_args, run_args = parse("--validation_file", path, "--text_columns", "sentence", "--pooling", "mean")
    (dataset,) = analysis_script.load_datasets(data_args, run_args)
    assert dataset.task.is_regression
    np.testing.assert_array_equal(dataset.class_labels(), [0, 1, 2, 3, 5, 5, 1, 3])

    _, data_args, run_args = parse(
        "--validation_file", path, "--text_columns", "sentence", "--pooling", "mean", "--max_samples", "5"
    )
    (subsampled,) = analysis_script.load_datasets(data_args, run_args)
    kept = subsampled.texts("validation")[1]
    assert (subsampled.num_samples, subsampled.split_size) == (5, 8)
    assert kept == sorted(kept, key=texts.index) and set(kept) <= set(texts)  # a subset, in the file's order
    assert kept == analysis_script.load_datasets(data_args, run_args)[0].texts("validation")[1]  # seeded


def test_glue_task_without_a_training_split_is_measured_on_its_first_validation_split(tmp_path):
    """mnli's layout (no train split; validation_matched, then validation_mismatched): the geometry reads the first
    validation split, as premise+hypothesis pairs, and trained poolers, which need labelled training text, are
    refused."""
    pairs = {
        "validation_matched": [(f"{WORDS[i]} {WORDS[i + 1]}", f"{WORDS[i + 2]} {WORDS[i]}") for i in range(12)],
        "validation_mismatched": [(f"{WORDS[i + 1]} {WORDS[i]}", WORDS[i + 3]) for i in range(10)],
    }
    splits = {
        split: {
            "premise": [p for p, _ in rows],
            "hypothesis": [h for _, h in rows],
            "label": [i % 3 for i in range(len(rows))],
        }
        for split, rows in pairs.items()
    }
    labels = datasets.ClassLabel(names=["entailment", "neutral", "contradiction"])
    glue = write_glue_folder(tmp_path / "glue", "mnli", splits, labels)
    _, data_args, run_args = parse(
        "--task_name", "mnli", "--glue_path", glue, "--max_samples", "5", "--untrained_poolers"
    )
    (dataset,) = analysis_script.load_datasets(data_args, run_args)
    assert (dataset.split, dataset.num_samples, dataset.split_size) == ("validation_matched", 5, 12)
    view, texts = dataset.texts(dataset.split)
    assert view == "premise+hypothesis" and len(texts) == 5 and set(texts) <= set(pairs["validation_matched"])
    _, data_args, run_args = parse("--task_name", "mnli", "--glue_path", glue)  # trained poolers: needs train
    with pytest.raises(ValueError, match="no labelled 'train' split.*--train_file"):
        analysis_script.load_datasets(data_args, run_args)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--models", "hybrid:path"], "LABEL=PATH_OR_ID"),
        (["--models", "a=x", "a=y"], "appears twice"),
        (["--models", "a=x", "b=y", "--ratio", "a", "c"], "two different model labels among"),
        (["--models", "a=x", "--task_name", "sst3"], r"Unknown task 'sst3'; choose among \['cola', 'mnli'"),
        (["--models", "a=x", "--task_name", "sst2", "cola", "--validation_file", "v.csv"], "one dataset"),
        (["--models", "a=x", "--max_samples", "1"], "at least 2"),
        (["--models", "a=x", "--batch_size", "0"], "--batch_size 0 must be at least 1"),
        (["--models", "a=x", "b=x"], "--models names 'x' more than once"),
        (["--models", "a=x", "--seed", str(2**32)], r"--seed 4294967296: .* from 0 to 2\*\*32 - 1"),
        (["--models", "a=x", "--pooling", "mean", "max", "max"], "--pooling names 'max' more than once"),
        (["--models", "a=x", "--task_name", "sst2", "sst2"], "--task_name names 'sst2' more than once"),
        (["--models", "a=x", "--device", "cuda:64"], "--device cuda:64: this machine has"),
        (["--models", "a=x", "--split", "train"], "--split train measures .* weighted and attention poolers are"),
        (["--models", "a=x", "--split", "train", "--pooling", "mean", "attention"], "leave attention out of"),
    ],
)
def test_bad_arguments_are_refused_before_any_loading(argv, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        analysis_script.main([*argv, "--output_dir", str(tmp_path)])


@pytest.mark.parametrize(
    "output_dir, message",
    [
        ("file", "file is a file, not a folder"),
        ("file/sub", "file/sub lies under .*file, a file, not a folder"),
        ("dangling", "dangling is not a folder"),  # a link to nothing: making the folder there fails
        ("dangling/sub", "dangling/sub lies under .*dangling, not a folder"),
    ],
)
def test_an_output_folder_in_the_place_of_a_file_is_refused_before_any_model_loads(output_dir, message, tmp_path):
    (tmp_path / "file").write_text("")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=rf"--output_dir .*{message}: choose another --output_dir"):
        analysis_script.main(["--models", "a=no-such-model", "--output_dir", str(tmp_path / output_dir)])


def test_a_dataset_of_one_text_is_refused_before_any_model_loads(tmp_path):
    path = write_csv(tmp_path / "one.csv", {"sentence": ["the cat"], "label": [0]})
    argv = ["--models", "a=no-such-model", "--validation_file", path, "--text_columns", "sentence", "--pooling", "mean"]
    with pytest.raises(ValueError, match="one's validation split holds 1 text: the geometry needs at least 2"):
        analysis_script.main([*argv, "--output_dir", str(tmp_path / "out")])


def test_pairs_too_long_for_one_sequence_are_refused_as_models_load(tmp_path, bert_dir, monkeypatch):
    # Pairs are encoded as one sequence, which must hold the tokenizer's special tokens and a token of each text.
    path = write_csv(tmp_path / "pairs.csv", {"first": ["the cat", "a dog"], "second": ["sat", "ran"], "label": [0, 1]})
    argv = ["--models", f"a={bert_dir}", "--validation_file", path, "--text_columns", "first", "second"]
    monkeypatch.setattr(analysis_script, "pooled_features", refuse_to_encode)
    with pytest.raises(ValueError, match="--max_seq_length 4 cannot hold a token of each text .* at least 5"):
        analysis_script.main([*argv, "--pooling", "mean", "--max_seq_length", "4", "--output_dir", str(tmp_path)])


def refuse_to_encode(*args, **kwargs):
    raise AssertionError("features were computed before the arguments were checked")


@pytest.mark.parametrize(
    "pooling, leave_out",
    [
        ([], "--pooling mean max"),
        (["--pooling", "cls", "attention"], "--pooling cls"),
        (["--pooling", "weighted"], "--pooling mean"),
    ],
)
def test_custom_data_needs_a_training_file_for_trained_poolers(tmp_path, pooling, leave_out):
    """The refusal names what the poolers need and the ways around it, not options that were given."""
    path = write_csv(tmp_path / "v.csv", {"sentence": ["the cat", "a dog"], "label": [0, 1]})
    argv = ["--validation_file", path, "--text_columns", "sentence", *pooling]
    trained = " and ".join(name for name in ("weighted", "attention") if not pooling or name in pooling)
    expected = rf"The {trained} poolers .* are trained on the dataset's training split, and a --validation_file alone "
    expected += r"has none: pass --train_file, or measure them untrained \(--untrained_poolers\), or leave them out "
    with pytest.raises(ValueError, match=expected + rf"\({leave_out}\)\.$") as refusal:
        analysis_script.main(["--models", "a=x", *argv, "--output_dir", str(tmp_path / "out")])
    assert "--text_columns" not in str(refusal.value)
    # Measured untrained, or left out, the dataset loads without a training split.
    for way_around in (["--untrained_poolers"], leave_out.split()):
        _, data_args, run_args = parse(*argv, *way_around)
        analysis_script.check_arguments(data_args, run_args)
        [dataset] = analysis_script.load_datasets(data_args, run_args)
        assert "train" not in dataset.task.splits


def test_rerunning_finished_work_is_a_no_op_and_other_work_is_refused(trained_run):
    output_dir, argv = trained_run["output_dir"], trained_run["argv"]
    stamps = {path: path.stat().st_mtime_ns for path in output_dir.iterdir()}
    finished = json.loads((output_dir / "analysis.json").read_text())
    assert analysis_script.main(argv) == finished
    # Another feature cache, batch size or device changes no result: the finished one is reused.
    neutral = ["--cache_dir", str(output_dir.parent / "other-cache"), "--batch_size", "7", "--device", "cpu"]
    assert analysis_script.main([*argv, *neutral]) == finished
    with pytest.raises(ValueError, match=r"with other arguments \(num_resamples\).*--overwrite_output_dir"):
        analysis_script.main([*argv, "--num_resamples", "7"])
    assert stamps == {path: path.stat().st_mtime_ns for path in output_dir.iterdir()}


def small_analysis(tmp_path, model_dir) -> list[str]:
    """The arguments of a quick analysis: one model, mean pooling, 20 texts without a training split."""
    texts, labels = topic_texts(20, seed=5)
    data = write_csv(tmp_path / "data.csv", {"sentence": texts, "label": labels})
    argv = ["--models", f"bert={model_dir}", "--validation_file", data, "--text_columns", "sentence"]
    return analysis_args(tmp_path / "cache", tmp_path / "out", *argv, "--pooling", "mean")


@pytest.mark.parametrize("change", ["tokenizer replaced", "tokenizer not recorded"])
def test_results_of_another_tokenizer_are_not_reused(tmp_path, bert_dir, change):
    model = tmp_path / "model"
    shutil.copytree(bert_dir, model)
    argv = small_analysis(tmp_path, model)
    analysis_script.main(argv)
    if change == "tokenizer replaced":
        tokenizer = json.loads((model / "tokenizer.json").read_text())
        vocabulary = tokenizer["model"]["vocab"]  # same size, "cat" and "dog" read the other way
        vocabulary["cat"], vocabulary["dog"] = vocabulary["dog"], vocabulary["cat"]
        (model / "tokenizer.json").write_text(json.dumps(tokenizer))
        expected = r"for other tokenizer of bert \(trained again or replaced since\?\)"
    else:  # results of a version that compared the weights alone
        analysis = json.loads((tmp_path / "out" / "analysis.json").read_text())
        del analysis["models"]["bert"]["tokenizer_fingerprint"]
        (tmp_path / "out" / "analysis.json").write_text(json.dumps(analysis))
        expected = r"for other tokenizer of bert \(not recorded\)"
    with pytest.raises(ValueError, match=rf"{expected}.*--overwrite_output_dir"):
        analysis_script.main(argv)


def test_overwriting_an_analysis_leaves_none_of_its_plots(tmp_path, bert_dir):
    argv = small_analysis(tmp_path, bert_dir)
    analysis_script.main([*argv, "--pooling", "max"])
    assert (tmp_path / "out" / "probes_max.png").exists()
    analysis = analysis_script.main([*argv, "--overwrite_output_dir"])
    pngs = sorted(path.name for path in (tmp_path / "out").iterdir() if path.suffix == ".png")
    assert pngs == sorted(analysis["plots"]) and "probes_mean.png" in pngs
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == sorted([*pngs, *analysis_script.RESULT_FILES])


@pytest.mark.parametrize("change", ["data replaced", "data not recorded"])
def test_results_of_other_data_are_not_reused(tmp_path, bert_dir, caplog, change):
    argv = small_analysis(tmp_path, bert_dir)
    analysis = analysis_script.main(argv)
    if change == "data replaced":  # the same path, other texts
        texts, labels = topic_texts(20, seed=6)
        write_csv(tmp_path / "data.csv", {"sentence": texts, "label": labels})
        with pytest.raises(ValueError, match=r"measured on other data for data \(.*--overwrite_output_dir"):
            analysis_script.main(argv)
    else:  # results of a version that recorded no data fingerprint are reused, saying so
        del analysis["data_fingerprints"]
        (tmp_path / "out" / "analysis.json").write_text(json.dumps(analysis))
        assert analysis_script.main(argv) == analysis and "records no fingerprint of its data" in caplog.text


@pytest.mark.parametrize("remains", ["analysis.md alone", "truncated analysis.json"])
def test_an_unfinished_run_is_run_again(tmp_path, bert_dir, caplog, remains):
    """What a run stopped while writing leaves is no result: the rerun replaces it, saying so, unasked."""
    argv = small_analysis(tmp_path, bert_dir)
    output = tmp_path / "out"
    output.mkdir()
    if remains == "analysis.md alone":
        (output / "analysis.md").write_text("# Representation analysis\n")
    else:
        (output / "analysis.md").write_text("# Representation analysis\n")
        (output / "analysis.json").write_text('{"settings": {"encoder": "onl')
    with caplog.at_level("WARNING"):
        result = analysis_script.main(argv)
    assert f"{output} holds an unfinished run" in caplog.text
    assert json.loads((output / "analysis.json").read_text()) == json.loads(json.dumps(result))
    assert "| bert |" in (output / "analysis.md").read_text()
    assert analysis_script.main(argv) == json.loads((output / "analysis.json").read_text())  # finished: a no-op


def test_finished_results_are_reused_whatever_the_spelling_of_their_paths(tmp_path, bert_dir, monkeypatch):
    """The same model and data named relative to the working directory, the model folder with a trailing slash."""
    argv = small_analysis(tmp_path, bert_dir)
    analysis = analysis_script.main(argv)
    monkeypatch.chdir(tmp_path)
    respelled = [argument.replace(str(tmp_path) + os.sep, "") for argument in argv]
    respelled[respelled.index("--models") + 1] = f"bert={os.path.relpath(bert_dir)}/"
    assert respelled != argv and analysis_script.main(respelled) == json.loads(json.dumps(analysis))


def test_existing_results_are_not_overwritten(tmp_path):
    (tmp_path / "analysis.json").write_text("{}")
    with pytest.raises(ValueError, match="--overwrite_output_dir"):
        analysis_script.main(["--models", "a=x", "--task_name", "sst2", "--output_dir", str(tmp_path)])
    assert (tmp_path / "analysis.json").read_text() == "{}"


@pytest.mark.parametrize("kind, drawn", [("weighted", "position_logits"), ("attention", "query")])
def test_an_untrained_pooler_is_a_seeded_standard_normal_draw(kind, drawn):
    values = getattr(analysis_script.untrained_pooler(kind, 256, 256, seed=3), drawn).detach()
    assert abs(values.mean().item()) < 0.25 and 0.8 < values.std().item() < 1.2  # N(0, 1), 256 draws
    again = getattr(analysis_script.untrained_pooler(kind, 256, 256, seed=3), drawn)
    other = getattr(analysis_script.untrained_pooler(kind, 256, 256, seed=4), drawn)
    assert torch.equal(values, again) and not torch.equal(values, other)
    before = torch.random.get_rng_state()
    analysis_script.untrained_pooler(kind, 256, 256, seed=3)
    assert torch.equal(torch.random.get_rng_state(), before)  # the global stream is left as it was


def test_pooler_helpers_pool_on_one_thread_and_restore_the_count(monkeypatch):
    pooling_threads = []
    pool_all = poolers._pool_all

    def recording_pool_all(*args, **kwargs):
        pooling_threads.append(torch.get_num_threads())
        return pool_all(*args, **kwargs)

    monkeypatch.setattr(poolers, "_pool_all", recording_pool_all)
    pooler = analysis_script.untrained_pooler("attention", 8, 16, seed=0)
    states = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    tokens = probing.TokenFeatures(states, np.array([2, 3]))
    previous = torch.get_num_threads()
    torch.set_num_threads(3)  # not 1, so that a helper that leaves one thread behind is seen
    try:
        probing.pool_tokens(pooler, tokens)
        assert torch.get_num_threads() == 3
        poolers.train_pooler(
            "attention", tokens, np.array([0, 1]), is_regression=False, max_positions=16,
            training=poolers.PoolerTraining(epochs=1),
        )  # fmt: skip
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(previous)
    assert pooling_threads == [1, 1]
