"""run_pretrain.py end to end on tiny local data: files, packing, arguments files, bad input, resume, 2 processes."""

import copy
import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from itertools import islice
from types import SimpleNamespace

import pytest
import torch
from fake_hub import USER as fake_hub_user_name
from fake_hub import fake_hub_fixture  # noqa: F401
from helpers import StepRecorder, locked, tiny_config
from huggingface_hub import EvalResult, ModelCard, hf_hub_download
from huggingface_hub.utils import filter_repo_objects
from safetensors.torch import load_file
from transformers import AutoModel, BertConfig, TrainerCallback, set_seed
from transformers.testing_utils import CaptureLogger
from transformers.utils import logging as hf_logging

from configuration_prjepa import AUTO_MAP, PrJepaConfig
from modeling_prjepa import PrJepaForPreTraining
from prjepa import data_sources
from prjepa import pretraining as run_pretrain
from prjepa import resume as resume_module
from prjepa import trainer as trainer_module
from prjepa.probing.results import update_model_card
from prjepa.resume import checkpoint_problem, differences, last_complete_checkpoint
from prjepa.training_args import PrJepaTrainingArguments
from prjepa.utils import option_names

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SENTENCES = [
    "the cat sat on the mat",
    "a dog ran in the park and she sat",
    "paris is the capital of france",
    "he was in paris and it was a park",
]


@pytest.fixture(scope="module")
def assets(tmp_path_factory, tokenizer):
    """A saved tokenizer, a saved tiny config and train/validation text files (with empty and blank lines)."""
    root = tmp_path_factory.mktemp("assets")
    tokenizer.save_pretrained(root / "tokenizer")
    tiny_config().save_pretrained(root / "config")
    (root / "train").mkdir()
    for part in range(2):
        lines = [SENTENCES[(part + i) % 4] for i in range(30)] + ["", "   "]
        (root / "train" / f"part{part}.txt").write_text("\n".join(lines) + "\n")
    (root / "validation.txt").write_text("\n".join(SENTENCES * 3) + "\n")
    return root


def arguments(assets, output_dir, *extra: str) -> list[str]:
    return [
        "--config_name",
        str(assets / "config"),
        "--tokenizer_name",
        str(assets / "tokenizer"),
        "--train_file",
        str(assets / "train" / "*.txt"),
        "--validation_file",
        str(assets / "validation.txt"),
        "--output_dir",
        str(output_dir),
        "--max_seq_length",
        "24",
        "--per_device_train_batch_size",
        "4",
        "--do_train",
        "--max_steps",
        "3",
        "--logging_steps",
        "1",
        "--save_steps",
        "3",
        "--report_to",
        "none",
        "--use_cpu",
        "--disable_tqdm",
        "true",
        "--seed",
        "5",
        *extra,
    ]


def evaluation_arguments(assets, output_dir, model=None) -> list[str]:
    """`arguments` of an evaluation without training: of a model built from the config, or of `model`."""
    argv = [a for a in arguments(assets, output_dir, "--do_eval") if a != "--do_train"]
    if model is not None:
        config = argv.index("--config_name")
        argv[config : config + 2] = ["--model_name_or_path", str(model)]
    return argv


def record_steps(monkeypatch) -> list[int]:
    """`StepRecorder`'s steps, over every run started from here on."""
    recorder = StepRecorder()

    class RecordingTrainer(trainer_module.PrJepaTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.add_callback(recorder)

    monkeypatch.setattr(trainer_module, "PrJepaTrainer", RecordingTrainer)
    return recorder.steps


def test_pretraining_run_from_local_text_files(assets, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="run_pretrain"):
        trainer = run_pretrain.main(arguments(assets, tmp_path / "out", "--do_eval", "--license", "apache-2.0"))
    output = tmp_path / "out"

    # Two files of 30 non-empty lines plus an empty and a blank line each: 2 dropped per file.
    assert "train: dropped 4 empty or whitespace-only texts of 64" in caplog.text
    assert "Effective batch size 4 sequences" in caplog.text and "tokens planned" in caplog.text
    # Packing: every sequence is [CLS] … [SEP] and all but each map batch's last are full length.
    lengths = [len(ids) for ids in trainer.train_dataset["input_ids"]]
    assert max(lengths) == 24 and sum(length == 24 for length in lengths) >= len(lengths) - 1
    assert all(ids[0] == 2 and ids[-1] == 3 for ids in trainer.train_dataset["input_ids"])

    state = json.loads((output / "trainer_state.json").read_text())
    logs = [entry for entry in state["log_history"] if "loss" in entry]
    assert len(logs) == 3 and all({"jepa_loss", "mlm_loss", "jepa_weight", "ema_momentum"} <= set(e) for e in logs)
    evaluation = json.loads((output / "eval_results.json").read_text())
    assert evaluation["eval_perplexity"] == pytest.approx(torch.tensor(evaluation["eval_mlm_loss"]).exp().item())
    assert {"model.safetensors", "modeling_prjepa.py", "configuration_prjepa.py", "tokenizer_config.json"} <= set(
        os.listdir(output)
    )
    card = ModelCard.load(output / "README.md")
    assert card.data.license == "apache-2.0" and "prjepa" in card.data.tags
    assert "| `max_seq_length` | 24 |" in card.text  # the sequences' length, which the token count alone hides
    assert state["num_input_tokens_seen"] == sum(len(ids) for ids in trainer.train_dataset["input_ids"][:12])


def test_packing_cuts_long_texts_into_framed_chunks_without_the_tokenizers_length_warning(
    assets, tokenizer, tmp_path, capfd
):
    """The tokenizer warns that a text past its maximum 'will result in indexing errors': packing cuts it first."""
    import datasets

    long_text = " ".join(SENTENCES * 8)
    expected = tokenizer(long_text, add_special_tokens=False)["input_ids"]
    _, data_args, training_args = run_pretrain.parse_arguments(arguments(assets, tmp_path / "out"))
    short = copy.deepcopy(tokenizer)
    short.model_max_length = data_args.max_seq_length
    with CaptureLogger(hf_logging.get_logger("transformers.tokenization_utils_base")) as captured:
        packed = run_pretrain.tokenize(
            datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": [long_text]})}),
            short,
            "text",
            data_args,
            training_args,
        )["train"]["input_ids"]
    assert "Token indices sequence length" not in captured.out
    assert len(expected) > data_args.max_seq_length and all(len(chunk) <= data_args.max_seq_length for chunk in packed)
    assert all(chunk[0] == tokenizer.cls_token_id and chunk[-1] == tokenizer.sep_token_id for chunk in packed)
    assert [token for chunk in packed for token in chunk[1:-1]] == expected


def test_arguments_from_a_yaml_file_and_line_by_line_csv(assets, tmp_path):
    (tmp_path / "train.csv").write_text("id,body\n" + "".join(f"{i},{s}\n" for i, s in enumerate(SENTENCES * 4)))
    settings = dict(
        config_name=str(assets / "config"),
        tokenizer_name=str(assets / "tokenizer"),
        train_file=str(tmp_path / "train.csv"),
        text_column_name="body",
        line_by_line=True,
        validation_split_percentage=0,
        output_dir=str(tmp_path / "out"),
        max_seq_length=24,
        per_device_train_batch_size=4,
        do_train=True,
        max_steps=3,
        save_steps=3,
        report_to="none",
        use_cpu=True,
    )
    (tmp_path / "args.yaml").write_text("".join(f"{key}: {json.dumps(value)}\n" for key, value in settings.items()))

    trainer = run_pretrain.main([str(tmp_path / "args.yaml")])
    rows = trainer.train_dataset["input_ids"]
    assert len(rows) == 16 and rows[2] == trainer.processing_class(SENTENCES[2])["input_ids"]
    assert trainer.state.global_step == 3


def test_a_streamed_csv_is_tokenized_from_its_text_column_alone(assets, tmp_path):
    """A streamed CSV declares no features: its other columns are found in its first row and dropped as they are
    from a loaded one, so both give the same packed sequences."""
    (tmp_path / "train.csv").write_text("id,body\n" + "".join(f"{i},{s}\n" for i, s in enumerate(SENTENCES * 4)))
    csv = ("--train_file", str(tmp_path / "train.csv"), "--text_column_name", "body")
    runs = {}
    # Streamed first: once loaded, `datasets` streams it with the features its cache recorded.
    for name, streaming in (("streamed", ["--streaming"]), ("loaded", [])):
        argv = arguments(assets, tmp_path / name, *csv, "--validation_split_percentage", "0", *streaming)
        index = argv.index("--validation_file")
        del argv[index : index + 2]
        runs[name] = run_pretrain.main(argv)
    rows = list(islice(runs["streamed"].train_dataset, 100))
    assert all(set(row) == {"input_ids"} for row in rows)
    assert [row["input_ids"] for row in rows] == runs["loaded"].train_dataset["input_ids"]
    assert runs["streamed"].state.global_step == 3


def test_a_streamed_run_resumes_exactly_within_its_first_pass_and_is_refused_past_the_streams_end(
    assets, tmp_path, monkeypatch
):
    # 8 sequences in batches of 4: each pass over the stream is 2 steps.
    streamed = ("--streaming", "--max_train_samples", "8", "--max_steps", "5", "--save_steps", "1")
    run_pretrain.main(arguments(assets, tmp_path / "whole", *streamed))
    expected = load_file(tmp_path / "whole" / "model.safetensors")
    assert "- training truncated to its first 8 sequences" in (tmp_path / "whole" / "README.md").read_text()
    for step in (2, 3):
        stopped = tmp_path / f"stopped-{step}"
        shutil.copytree(tmp_path / "whole" / f"checkpoint-{step}", stopped / f"checkpoint-{step}")
        if step == 2:  # the end of the first pass: the second starts from the stream's beginning, as it did
            steps = record_steps(monkeypatch)
            run_pretrain.main(arguments(assets, stopped, *streamed))
            monkeypatch.undo()
            assert steps == [3, 4, 5]
            actual = load_file(stopped / "model.safetensors")
            assert all(torch.equal(expected[key], actual[key]) for key in expected)
        else:  # one step into the second pass, which transformers would start again
            with pytest.raises(ValueError, match=r"had read its whole stream \(epoch 1\.200 at step 3 of 5\)"):
                run_pretrain.main(arguments(assets, stopped, *streamed))
            assert not (stopped / "model.safetensors").exists()


def test_data_files_that_cannot_be_read_are_named_before_anything_loads(assets, tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    (tmp_path / "validation.csv").write_text("text\nthe cat sat\n")
    (tmp_path / "numbers.csv").write_text("text,label\n1,0\n2,1\n")
    (tmp_path / "blank.txt").write_text("\n   \n\n")
    (tmp_path / "blank-first.txt").write_text("\n" * 3 + "the cat sat on the mat\n" * 27)
    cases = [
        (["--train_file", str(tmp_path / "missing" / "*.txt")], "matches no file"),
        (["--train_file", str(tmp_path / "empty.txt")], "empty.txt is empty"),
        (["--train_file", str(tmp_path / "latin1.txt")], r"latin1.txt is not UTF-8 .*at about byte 3"),
        (["--validation_file", str(tmp_path / "validation.csv")], "is text and --validation_file .* is csv"),
        (
            ["--train_file", str(tmp_path / "numbers.csv"), "--validation_file", str(tmp_path / "numbers.csv")],
            r"text column 'text' holds int64, not strings.*--text_column_name",
        ),
        (
            ["--validation_file", str(tmp_path / "blank.txt"), "--do_eval"],
            r"\(--validation_file .*blank.txt\) holds no text once empty lines",
        ),
        (["--validation_split_percentage", "100"], r"must lie in \[0, 100\)"),
    ]
    for extra, message in cases:
        with pytest.raises(ValueError, match=message):
            run_pretrain.main(arguments(assets, tmp_path / "out", *extra))
        assert not (tmp_path / "out").exists()
    held_out = arguments(assets, tmp_path / "out", "--train_file", str(tmp_path / "blank-first.txt"), "--do_eval")
    del held_out[held_out.index("--validation_file") : held_out.index("--validation_file") + 2]
    message = r"\(the first 10% of .*blank-first.txt, held out by --validation_split_percentage; a larger percentage"
    with pytest.raises(ValueError, match=message):
        run_pretrain.main([*held_out, "--validation_split_percentage", "10"])
    assert not (tmp_path / "out").exists()
    # Training text of empty lines alone is named as such, before any advice on how much of it to hold out.
    (tmp_path / "blank-long.txt").write_text("\n  \n" * 30)
    (tmp_path / "control.txt").write_text("\x01\x02\n\u200b\n" * 30)  # not empty lines, but the tokenizer drops them
    training = [argument for argument in held_out if argument != "--do_eval"]
    for name, extra in (
        ("blank.txt", []),  # too few rows to hold out 5% of
        ("blank.txt", ["--validation_split_percentage", "0"]),
        ("blank-long.txt", []),
        ("control.txt", ["--validation_split_percentage", "0"]),
    ):
        with pytest.raises(ValueError) as error:
            run_pretrain.main([*training, "--train_file", str(tmp_path / name), *extra])
        expected = f"(--train_file {tmp_path / name}) holds no text once empty lines are dropped (a line of characters "
        assert expected + "the tokenizer ignores, such as control characters, counts as empty)" in str(error.value)
        assert "--validation_split_percentage" not in str(error.value)
    assert not (tmp_path / "out").exists()


def test_data_sources_are_one_or_the_other(assets, tmp_path):
    """A training run reads a validation file only with a training file, a Hub dataset and a training file cannot
    both be the training data, nor a Hub dataset and a validation file the validation data: none is dropped silently."""
    without_train_file = arguments(assets, tmp_path / "out")
    index = without_train_file.index("--train_file")
    del without_train_file[index : index + 2]
    with pytest.raises(ValueError, match=r"--validation_file .* is read only together with --train_file"):
        run_pretrain.main(without_train_file)
    with pytest.raises(ValueError, match="name two training sources; give one of them"):
        run_pretrain.main(arguments(assets, tmp_path / "out", "--dataset_name", "someone/texts"))
    evaluation = [*without_train_file, "--do_train", "false", "--do_eval", "--dataset_name", "someone/texts"]
    with pytest.raises(ValueError, match="and --dataset_name someone/texts name two validation sources"):
        run_pretrain.main(evaluation)
    assert not (tmp_path / "out").exists()

    # The paper's WikiText-103 when nothing is named; another Hub dataset does not inherit its configuration.
    default = run_pretrain.DataTrainingArguments()
    assert (default.dataset_name, default.dataset_config_name) == ("Salesforce/wikitext", "wikitext-103-raw-v1")
    assert run_pretrain.DataTrainingArguments(dataset_name="someone/texts").dataset_config_name is None
    with pytest.raises(ValueError, match="needs --dataset_name: .* --dataset_name Salesforce/wikitext"):
        run_pretrain.DataTrainingArguments(dataset_config_name="wikitext-2-raw-v1")


def test_an_evaluation_alone_reads_no_training_text(assets, tmp_path, monkeypatch):
    """--do_eval without --do_train takes a --validation_file by itself; given training data too, it tokenizes only
    the validation split (a Hub dataset's own, or the share held out of the training files)."""
    tokenized = []

    def tokenize(raw, *args):
        tokenized.append(sorted(raw))
        return real_tokenize(raw, *args)

    real_tokenize = run_pretrain.tokenize
    monkeypatch.setattr(run_pretrain, "tokenize", tokenize)
    evaluation = evaluation_arguments(assets, tmp_path / "unused")
    for option in ("--train_file", "--validation_file", "--output_dir"):
        del evaluation[evaluation.index(option) : evaluation.index(option) + 2]
    hub = tmp_path / "hub"  # a folder `datasets` reads as a Hub dataset, with its own validation split
    hub.mkdir()
    shutil.copy(assets / "train" / "part0.txt", hub / "train.txt")
    shutil.copy(assets / "validation.txt", hub / "validation.txt")
    train, validation = (
        ("--train_file", str(assets / "train" / "*.txt")),
        ("--validation_file", str(assets / "validation.txt")),
    )
    sources = {
        "alone": validation,
        "with-training-files": (*train, *validation),
        "held-out": train,
        "hub": ("--dataset_name", str(hub)),
    }
    samples = {}
    for name, source in sources.items():
        trainer = run_pretrain.main([*evaluation, *source, "--output_dir", str(tmp_path / name)])
        assert trainer.train_dataset is None
        samples[name] = json.loads((tmp_path / name / "eval_results.json").read_text())["eval_samples"]
    assert tokenized == [["validation"]] * len(sources)
    assert samples["alone"] == samples["with-training-files"] == samples["hub"] > 0
    assert samples["held-out"] == 1  # the first 5% of the 60 non-empty training lines, packed

    # Training still needs training data: a validation file alone is refused.
    with pytest.raises(ValueError, match=r"--validation_file .* is read only together with --train_file when training"):
        run_pretrain.main([*evaluation, *validation, "--output_dir", str(tmp_path / "out"), "--do_train"])


def test_a_missing_validation_split_names_only_the_fixes_that_work_for_the_source(assets, tmp_path):
    """A streamed dataset is never split, and a validation file goes only with a training file."""
    files = arguments(assets, tmp_path / "out", "--do_eval")
    index = files.index("--validation_file")
    del files[index : index + 2]
    hub = list(files)
    index = hub.index("--train_file")
    hub[index : index + 2] = ["--dataset_name", str(assets / "train")]  # a folder `datasets` reads as a Hub dataset
    cases = [
        ([*files, "--streaming"], "pass --validation_file (a streamed dataset is not split, so --validation_split_"),
        ([*files, "--validation_split_percentage", "0"], "pass --validation_file, or a --validation_split_percentage"),
        ([*hub, "--streaming"], "has no validation split and a streamed dataset is not split, so drop --streaming"),
        (
            [*hub, "--validation_split_percentage", "0"],
            "has no validation split, so pass a --validation_split_percentage",
        ),
    ]
    for argv, fix in cases:
        with pytest.raises(ValueError, match="--do_eval needs a validation split") as error:
            run_pretrain.main(argv)
        assert fix in str(error.value) and str(error.value).endswith("; or drop --do_eval.")
        if "--dataset_name" in argv:
            assert "--validation_file" not in str(error.value)
    assert not list(tmp_path.glob("out/**/*"))


def test_an_explicit_checkpoint_that_does_not_exist_is_named_with_the_fix(assets, tmp_path):
    for checkpoint in ("true", str(tmp_path / "nope" / "checkpoint-5")):
        with pytest.raises(
            ValueError, match=rf"--resume_from_checkpoint {checkpoint} is not a folder.*leave the option"
        ):
            run_pretrain.main(arguments(assets, tmp_path / "out", "--resume_from_checkpoint", checkpoint))
    assert not (tmp_path / "out").exists()


def test_streaming_is_refused_with_several_processes_before_anything_loads(assets, tmp_path, monkeypatch):
    monkeypatch.setattr(PrJepaTrainingArguments, "world_size", property(lambda self: 2))
    with pytest.raises(ValueError, match="--streaming is not supported with 2 processes: drop --streaming"):
        run_pretrain.main(arguments(assets, tmp_path / "out", "--streaming"))
    assert not list(tmp_path.glob("out/**/*"))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--text_column_name", "body"], r"'body' is not in the data; columns found: \['text'\]"),
        (["--max_seq_length", "65"], "exceeds the model's max_position_embeddings"),
        (["--torch_compile", "true"], "--torch_compile is not supported"),
        (
            ["--dataloader_num_workers", "1", "--dataloader_persistent_workers", "true"],
            "--dataloader_persistent_workers is not supported",
        ),
        (["--objective", "jepa"], "--objective must be 'hybrid' or 'mlm'"),
        (["--preset", "paper"], r"--preset paper and --config_name .*config both give the model, so the preset would"),
        (["--max_seq_length", "2"], "cannot hold a token between"),
        (["--max_train_samples", "0"], "--max_train_samples 0 leaves no sequence"),
        (["--per_device_train_batch_size", "0"], "--per_device_train_batch_size 0 must be at least 1"),
        (["--label_smoothing_factor", "0.1"], "--label_smoothing_factor 0.1 is not applied by PrJEPA's losses"),
        (["--train_sampling_strategy", "group_by_length"], "group_by_length shuffles with the global random stream"),
        (["--save_only_model", "true"], "--save_only_model saves checkpoints without the optimizer"),
        (["--auto_find_batch_size", "true"], "--auto_find_batch_size starts training again at half the batch"),
        (["--fsdp", "full_shard"], "FSDP and DeepSpeed are not supported .* one process per GPU"),
        (["--do_train", "false"], "Nothing to do: pass --do_train"),
        (
            ["--config_overrides", "hidden_size=abc"],
            r"'hidden_size=abc' in 'hidden_size=abc': hidden_size takes an integer \(now 32\), got 'abc'",
        ),
        (
            ["--config_overrides", "hidden_size=64,mlm_probability=abc"],
            r"'mlm_probability=abc' in .*: mlm_probability takes a number \(now 0\.15\), got 'abc'",
        ),
        (
            ["--config_overrides", "hidden_size"],
            "'hidden_size' in 'hidden_size' sets no value: write it as hidden_size=",
        ),
        (
            ["--config_overrides", "classifier_dropout=0.1"],
            r"'classifier_dropout=0\.1' in .*: classifier_dropout is None now, which a string override cannot set\. "
            r"Set it in the config's JSON file instead \(config\.json; run_pretrain\.py reads one given as --config_name",
        ),
        (
            ["--config_overrides", "qkv_bias=maybe"],
            r"'qkv_bias=maybe' in .*: qkv_bias takes true or false \(now True\), got 'maybe'",
        ),
        (["--do_train", "false", "--do_eval", "--resume_from_checkpoint", "ck"], "pass --model_name_or_path ck"),
        (  # named before the data sources are looked for: the command cannot run whatever they hold
            ["--do_train", "false", "--do_eval", "--resume_from_checkpoint", "ck", "--tokenizer_name", "absent/folder"],
            "pass --model_name_or_path ck",
        ),
    ],
)
def test_bad_input_fails_before_training(assets, tmp_path, extra, message):
    with pytest.raises(ValueError, match=message):
        run_pretrain.main(arguments(assets, tmp_path / "out", *extra))
    assert not list(tmp_path.glob("out/**/*"))  # nothing written (the Trainer may leave the empty folder)


def test_a_glob_the_shell_expanded_and_unknown_arguments_are_named_in_a_line(assets, tmp_path):
    """An unquoted glob reaches the script as the files it matched, all but the first left over: named as such, with
    the first five files, where the parser would list every file and leave the cause to guess."""
    parts = [tmp_path / f"part{index}.txt" for index in range(7)]
    for part in parts:
        part.write_text("the cat sat on the mat\n" * 20)
    expected = (
        rf"--train_file takes one value, but 7 paths followed it \({re.escape(str(parts[0]))}, .*part4\.txt and 2 "
    )
    expected += r"more\): the shell expanded an unquoted glob\. Quote it \(e\.g\. --train_file 'data/\*\.txt'\)"
    with pytest.raises(ValueError, match=expected):
        run_pretrain.main(arguments(assets, tmp_path / "out", "--train_file", *map(str, parts)))
    # The option is the one the run of paths follows, though one of them was given to another option before.
    with pytest.raises(ValueError, match=r"^--train_file takes one value, but 7 paths followed it \(.*part0\.txt, "):
        run_pretrain.main(
            arguments(assets, tmp_path / "out", "--validation_file", str(parts[1]), "--train_file", *map(str, parts))
        )
    # Paths after an option whose own value is no path, or after a flag, are not taken for a glob.
    for option in (["--run_name", "name"], ["--no_dataloader_pin_memory"]):
        with pytest.raises(ValueError, match=r"^Unrecognised arguments: .*part1\.txt, .*part2\.txt\. Check"):
            run_pretrain.main(arguments(assets, tmp_path / "out", *option, str(parts[1]), str(parts[2])))
    with pytest.raises(
        ValueError, match=r"^Unrecognised arguments: --learning_rte, 0\.1\. Check the options' spelling"
    ):
        run_pretrain.main(arguments(assets, tmp_path / "out", "--learning_rte", "0.1"))
    assert not (tmp_path / "out").exists()


def test_a_tokenizer_without_framing_tokens_and_a_file_too_small_to_split_are_refused_before_tokenizing(
    assets, tokenizer, tmp_path, monkeypatch
):
    no_cls = copy.deepcopy(tokenizer)
    no_cls.cls_token = None
    no_cls.save_pretrained(tmp_path / "no-cls")
    argv = arguments(assets, tmp_path / "out")
    argv[argv.index("--tokenizer_name") + 1] = str(tmp_path / "no-cls")
    monkeypatch.setattr(run_pretrain, "tokenize", lambda *args: pytest.fail("tokenized before the check"))
    with pytest.raises(ValueError, match=r"The tokenizer \(BertTokenizer\) has no cls token"):
        run_pretrain.main(argv)
    # A folder without tokenizer files, which transformers reads as the special tokens alone.
    BertConfig().save_pretrained(tmp_path / "no-vocabulary")
    argv[argv.index("--tokenizer_name") + 1] = str(tmp_path / "no-vocabulary")
    with pytest.raises(ValueError, match=r"--tokenizer_name .*no-vocabulary holds only its \d+ special tokens"):
        run_pretrain.main(argv)
    # Folders without them and without a model's config, where transformers blamed a missing sentencepiece.
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "notes.txt").write_text("not a tokenizer")
    for folder, held in (("empty", "nothing"), ("notes", "notes.txt")):
        argv[argv.index("--tokenizer_name") + 1] = str(tmp_path / folder)
        with pytest.raises(ValueError) as error:
            run_pretrain.main(argv)
        assert f"--tokenizer_name {tmp_path / folder} is a folder that holds no tokenizer files" in str(error.value)
        assert f"it holds {held})" in str(error.value) and "sentencepiece" not in str(error.value)
        assert "as --tokenizer_name: a folder a tokenizer was saved to, or a Hub id" in str(error.value)
    (tmp_path / "few.txt").write_text("\n".join(SENTENCES) + "\n")
    argv = arguments(assets, tmp_path / "out", "--train_file", str(tmp_path / "few.txt"))
    del argv[argv.index("--validation_file") : argv.index("--validation_file") + 2]
    message = r"holds 4 rows, so --validation_split_percentage 5 would hold out less than one: pass --validation_split_"
    with pytest.raises(ValueError, match=message):
        run_pretrain.main(argv)
    assert not list(tmp_path.glob("out/**/*"))


def test_a_config_that_does_not_exist_is_named_missing_before_anything_loads(assets, tmp_path):
    """As a missing --tokenizer_name or --model_name_or_path is (was: huggingface_hub's 'Repo id must be in the
    form')."""
    for config in (tmp_path / "missing" / "folder", tmp_path / "missing.json"):
        argv = arguments(assets, tmp_path / "out")
        argv[argv.index("--config_name") + 1] = str(config)
        with pytest.raises(SystemExit, match=rf"No such file or folder: --config_name {re.escape(str(config))} \("):
            run_pretrain.main(argv)
    assert not (tmp_path / "out").exists()


def test_tokenizer_that_does_not_match_the_model_is_refused(assets, tmp_path):
    tiny_config(vocab_size=40).save_pretrained(tmp_path / "config")
    argv = arguments(assets, tmp_path / "out")
    argv[argv.index("--config_name") + 1] = str(tmp_path / "config")
    with pytest.raises(ValueError, match=r"The tokenizer has \d+ tokens but the model's vocab_size is 40"):
        run_pretrain.main(argv)
    assert not (tmp_path / "out").exists()


def test_a_second_run_into_a_folder_another_process_is_running_in_stops_before_it_loads_anything(
    assets, tmp_path, monkeypatch
):
    fcntl = pytest.importorskip("fcntl", reason="advisory locks are POSIX (on Windows the lock does nothing)")

    # A run holds the folder it makes from the moment it writes there.
    record, seen = run_pretrain.record_settings, []
    monkeypatch.setattr(run_pretrain, "record_settings", lambda *a: (record(*a), seen.append(locked(a[0]))))
    run = tmp_path / "run"
    run_pretrain.main(arguments(assets, run, "--max_steps", "1", "--save_steps", "1"))
    assert seen == [True] and not locked(run)
    stamps = {path: path.stat().st_mtime_ns for path in run.rglob("*")}
    # The folder locked as a running run's process holds it (flock: any other open of the folder conflicts).
    holder = os.open(run, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        with pytest.raises(ValueError, match=r"Another process is running in --output_dir .*run .*wait for it to end"):
            run_pretrain.main(arguments(assets, run, "--max_steps", "2", "--save_steps", "1"))
    finally:
        os.close(holder)
    assert stamps == {path: path.stat().st_mtime_ns for path in run.rglob("*")}
    # A run that ended, however, holds nothing: the same command continues it now.
    assert run_pretrain.main(arguments(assets, run, "--max_steps", "2", "--save_steps", "1")).state.global_step == 2
    with pytest.raises(ValueError, match="training.max_steps: 2 in the checkpoint.s run, 1 now"):
        run_pretrain.main(arguments(assets, run, "--max_steps", "1", "--save_steps", "1"))
    assert not locked(run)  # released by the refused run too
    # A folder that did not exist at the start is locked once the run makes it: another run that wrote there
    # meanwhile (a job submitted twice, the first copy ahead) is named, not trained over.
    new, load = tmp_path / "new", run_pretrain.load_raw_datasets

    def other_run_writes_first(*args, **kwargs):
        new.mkdir()
        (new / "run_settings.json").write_text("{}")
        return load(*args, **kwargs)

    monkeypatch.setattr(run_pretrain, "load_raw_datasets", other_run_writes_first)
    with pytest.raises(ValueError, match=r"did not exist when this run started, and another run has written into it"):
        run_pretrain.main(arguments(assets, new))
    assert os.listdir(new) == ["run_settings.json"] and (new / "run_settings.json").read_text() == "{}"


def test_a_run_stopped_before_its_first_checkpoint_starts_again(assets, tmp_path, caplog):
    run = tmp_path / "run"
    argv = arguments(assets, run, "--max_steps", "2", "--save_steps", "2", "--snapshot_steps", "0", "1")
    run_pretrain.main(argv)
    straight = load_file(run / "model.safetensors")
    shutil.copytree(run / "checkpoint-2", tmp_path / "checkpoint-2")

    def stop_after_step_one() -> None:  # what a run killed then leaves: its settings and snapshots
        for path in run.iterdir():
            if path.name not in ("run_settings.json", "snapshot-0", "snapshot-1"):
                shutil.rmtree(path) if path.is_dir() else path.unlink()

    stop_after_step_one()
    with caplog.at_level(logging.WARNING, logger="run_pretrain"):
        trainer = run_pretrain.main(argv)
    assert "stopped before its first checkpoint was complete, so it starts again: removed" in caplog.text
    assert trainer.state.global_step == 2 and [entry["step"] for entry in trainer.state.log_history[:2]] == [1, 2]
    restarted = load_file(run / "model.safetensors")
    assert all(torch.equal(straight[key], restarted[key]) for key in straight)
    # Another run's start is not this one's: refused, as any other output directory.
    stop_after_step_one()
    with pytest.raises(ValueError, match="already exists and is not empty.*--overwrite_output_dir"):
        run_pretrain.main([*argv, "--learning_rate", "0.01"])
    assert sorted(path.name for path in run.iterdir()) == ["run_settings.json", "snapshot-0", "snapshot-1"]
    # Stopped while saving its first checkpoint: the half-written one holds nothing to resume, so the run starts again.
    shutil.copytree(tmp_path / "checkpoint-2", run / "checkpoint-2", ignore=shutil.ignore_patterns("optimizer.pt"))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="run_pretrain"):
        run_pretrain.main(argv)
    assert "so it starts again: removed the previous run's checkpoint-2" in caplog.text
    restarted = load_file(run / "model.safetensors")
    assert all(torch.equal(straight[key], restarted[key]) for key in straight)
    # A half-written checkpoint later than the first save (the one --save_total_limit 1 keeps, damaged since), or
    # one a snapshot outlived, is the run's work: refused, never removed.
    stop_after_step_one()
    shutil.copytree(tmp_path / "checkpoint-2", run / "checkpoint-2", ignore=shutil.ignore_patterns("optimizer.pt"))
    settings = json.loads((run / "run_settings.json").read_text())
    assert run_pretrain.stopped_before_first_checkpoint(str(run), settings, first_save=2)
    assert not run_pretrain.stopped_before_first_checkpoint(str(run), settings, first_save=1)
    assert not run_pretrain.stopped_before_first_checkpoint(str(run), settings, first_save=None)  # saved by epochs
    with pytest.raises(ValueError, match=r"No checkpoint in .* is complete \(checkpoint-2\)"):
        run_pretrain.main([*argv, "--save_steps", "1"])  # the first save at step 1: checkpoint-2 came later
    assert (run / "checkpoint-2").is_dir()
    (run / "snapshot-3").mkdir()
    assert not run_pretrain.stopped_before_first_checkpoint(str(run), settings, first_save=2)
    # A complete first checkpoint is resumed, never removed.
    stop_after_step_one()
    shutil.copytree(tmp_path / "checkpoint-2", run / "checkpoint-2")
    assert not run_pretrain.stopped_before_first_checkpoint(str(run), settings, first_save=2)


def test_output_directory_is_never_overwritten_silently(assets, tmp_path, caplog):
    output = tmp_path / "out"
    output.mkdir()
    (output / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="already exists and is not empty.*--overwrite_output_dir"):
        run_pretrain.main(arguments(assets, output))
    assert (output / "notes.txt").read_text() == "mine"

    run_pretrain.main(arguments(assets, tmp_path / "run", "--max_steps", "2", "--save_steps", "2"))
    with caplog.at_level(logging.INFO, logger="run_pretrain"):
        trainer = run_pretrain.main(arguments(assets, tmp_path / "run", "--max_steps", "3"))
    assert "resuming training at" in caplog.text and trainer.state.global_step == 3
    assert [entry["step"] for entry in trainer.state.log_history if "loss" in entry] == [1, 2, 3]

    # Rerunning the finished run is a no-op that says so: no step past the schedule, the final model untouched.
    files = {path: path.stat().st_mtime_ns for path in (tmp_path / "run").rglob("*") if path.is_file()}
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="run_pretrain"):
        assert run_pretrain.main(arguments(assets, tmp_path / "run", "--max_steps", "3")) is None
    assert "holds a finished run that reached the requested length" in caplog.text
    assert files == {path: path.stat().st_mtime_ns for path in (tmp_path / "run").rglob("*") if path.is_file()}


def test_continuing_a_finished_run_replans_its_schedule_over_the_new_length_and_says_so(assets, tmp_path, caplog):
    """What the warning says, as transformers does it: past one step at the finished schedule's last rate, the
    continued run's learning rate is that of a run planned for the new length from the start."""
    schedule = ("--learning_rate", "1e-2", "--lr_scheduler_type", "cosine", "--warmup_steps", "1", "--save_steps", "4")
    run_pretrain.main(arguments(assets, tmp_path / "run", "--max_steps", "4", *schedule))
    with caplog.at_level(logging.WARNING, logger="run_pretrain"):
        continued = run_pretrain.main(arguments(assets, tmp_path / "run", "--max_steps", "8", *schedule))
    assert "a run that reached its end, for more steps: the learning-rate schedule (cosine)" in caplog.text
    fresh = run_pretrain.main(arguments(assets, tmp_path / "fresh", "--max_steps", "8", *schedule))

    def rates(trainer) -> dict[int, float]:
        return {entry["step"]: entry["learning_rate"] for entry in trainer.state.log_history if "loss" in entry}

    assert rates(continued)[5] == 0.0  # the cosine's end
    assert [rates(continued)[step] for step in (6, 7, 8)] == pytest.approx([rates(fresh)[step] for step in (6, 7, 8)])
    assert rates(continued)[6] > rates(continued)[4]  # the decayed rate rises again


def test_a_push_that_could_not_happen_is_refused_before_the_data_is_read(assets, tmp_path, monkeypatch):
    monkeypatch.setattr(run_pretrain, "load_raw_datasets", lambda *args: pytest.fail("the data was read"))
    monkeypatch.setattr(data_sources, "hub_unreachable_reason", lambda: "ConnectError: Name or service not known")
    with pytest.raises(SystemExit, match=r"--push_to_hub needs the Hugging Face Hub .*\(ConnectError: Name or"):
        run_pretrain.main(arguments(assets, tmp_path / "out", "--push_to_hub"))
    monkeypatch.setattr(data_sources, "hub_unreachable_reason", lambda: None)
    # Offline mode set, the Hub may still be reachable: the fix is to unset it.
    monkeypatch.setattr(data_sources.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(SystemExit, match="HF_HUB_OFFLINE is set: unset it to push"):
        run_pretrain.main(arguments(assets, tmp_path / "out", "--push_to_hub"))
    monkeypatch.setattr(data_sources.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(data_sources, "get_token", lambda: None)
    with pytest.raises(SystemExit, match="--push_to_hub needs a Hugging Face token with write access: .* pass --hub_"):
        run_pretrain.main(arguments(assets, tmp_path / "out", "--push_to_hub"))
    assert not list(tmp_path.glob("out/**/*"))


def test_evaluations_during_training_leave_the_trajectory_unchanged(assets, tmp_path):
    """Evaluating draws from the global random stream; a run evaluated every other step trains the same weights as one
    never evaluated (so a run may also be resumed with another evaluation cadence)."""
    dropout = ("--config_overrides", "hidden_dropout_prob=0.1", "--max_steps", "4")  # dropout draws from the stream
    run_pretrain.main(arguments(assets, tmp_path / "plain", *dropout))
    evaluated = ("--do_eval", "--eval_strategy", "steps", "--eval_steps", "2", *dropout)
    trainer = run_pretrain.main(arguments(assets, tmp_path / "evaluated", *evaluated))
    assert sum("eval_mlm_loss" in entry for entry in trainer.state.log_history) == 3  # steps 2 and 4, and the end
    expected, actual = (
        load_file(tmp_path / "plain" / "model.safetensors"),
        load_file(trainer.args.output_dir + "/model.safetensors"),
    )
    assert all(torch.equal(expected[key], actual[key]) for key in expected)


def test_a_streamed_evaluation_needs_no_length_and_measures_what_a_loaded_one_does(assets, tmp_path):
    results = {}
    for name, streaming in (("streamed", ["--streaming"]), ("loaded", [])):
        evaluation = arguments(assets, tmp_path / name, "--do_train", "false", "--do_eval", *streaming)
        evaluation.remove("--max_steps")
        evaluation.remove("3")
        run_pretrain.main(evaluation)
        results[name] = json.loads((tmp_path / name / "eval_results.json").read_text())
    for key in ("eval_mlm_loss", "eval_jepa_loss", "eval_loss"):
        assert results["streamed"][key] == pytest.approx(results["loaded"][key], rel=1e-6), key
    assert "eval_samples" not in results["streamed"] and results["loaded"]["eval_samples"] > 0


def test_a_run_stopped_after_its_last_checkpoint_is_completed_without_a_step_past_its_end(assets, tmp_path, caplog):
    """A process stopped after saving the last step's checkpoint but before writing the final model (e.g. waiting on a
    checkpoint upload): the same command writes that checkpoint's model as the final one, training nothing; a shorter
    run than the checkpoint has done is refused."""
    schedule = ("--learning_rate", "1e-2", "--lr_scheduler_type", "cosine", "--save_steps", "1")
    run_pretrain.main(arguments(assets, tmp_path / "whole", *schedule))
    stopped = tmp_path / "stopped"
    stopped.mkdir()
    for checkpoint in ("checkpoint-2", "checkpoint-3"):
        shutil.copytree(tmp_path / "whole" / checkpoint, stopped / checkpoint)
    shutil.copy(tmp_path / "whole" / "run_settings.json", stopped)
    with pytest.raises(ValueError, match=r"checkpoint-3 has done 3 steps, more than --max_steps 2"):
        run_pretrain.main(arguments(assets, stopped, *schedule, "--max_steps", "2"))
    with caplog.at_level(logging.WARNING, logger="prjepa.pretraining"):
        completed = run_pretrain.main(arguments(assets, stopped, *schedule))
    assert "holds the run's last step" in caplog.text and completed.state.global_step == 3
    assert not (stopped / "checkpoint-4").exists()
    expected, actual = load_file(tmp_path / "whole" / "model.safetensors"), load_file(stopped / "model.safetensors")
    assert all(torch.equal(expected[key], actual[key]) for key in expected)
    whole = json.loads((tmp_path / "whole" / "train_results.json").read_text())
    train_results = json.loads((stopped / "train_results.json").read_text())
    assert train_results["train_runtime"] == 0.0 and 0 < train_results["train_seconds"] <= whole["train_seconds"]
    assert run_pretrain.main(arguments(assets, stopped, *schedule)) is None  # finished now


def test_a_finished_run_whose_state_or_results_were_cut_short_is_completed_again(assets, tmp_path, caplog):
    """A process stopped while transformers rewrote trainer_state.json or all_results.json in place left them
    truncated; the same command completes the run from its last checkpoint and rewrites them whole."""
    run = tmp_path / "run"
    argv = arguments(assets, run, "--do_eval")
    run_pretrain.main(argv)
    expected = load_file(run / "model.safetensors")
    results = json.loads((run / "all_results.json").read_text())
    for name in ("trainer_state.json", "all_results.json"):
        (run / name).write_text((run / name).read_text()[:40])
    with caplog.at_level(logging.WARNING):
        run_pretrain.main(argv)
    assert "trainer_state.json is damaged" in caplog.text and "all_results.json is damaged" in caplog.text
    actual = load_file(run / "model.safetensors")
    assert all(torch.equal(expected[key], actual[key]) for key in expected)
    assert json.loads((run / "trainer_state.json").read_text())["global_step"] == 3
    rewritten = json.loads((run / "all_results.json").read_text())
    assert rewritten["eval_mlm_loss"] == results["eval_mlm_loss"] and "train_seconds" in rewritten


def test_overwriting_a_run_removes_its_checkpoints_snapshots_and_results(assets, tmp_path, caplog):
    run = tmp_path / "run"
    run_pretrain.main(arguments(assets, run, "--snapshot_steps", "0", "2", "--save_steps", "1"))
    (run / "snapshot-3.partial").mkdir()
    again = ("--snapshot_steps", "0", "2", "--save_steps", "1", "--learning_rate", "1e-2", "--max_steps", "2")
    with caplog.at_level(logging.WARNING):
        run_pretrain.main(arguments(assets, run, *again, "--overwrite_output_dir"))
    removed = "checkpoint-1, checkpoint-2, checkpoint-3, snapshot-0, snapshot-2, snapshot-3.partial, trainer_state.json"
    assert f"--overwrite_output_dir: removed the previous run's {removed}" in caplog.text
    assert "all_results.json, README.md from" in caplog.text  # its card, which the new run's pushes would upload

    assert sorted(path.name for path in run.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    assert sorted(path.name for path in run.glob("snapshot-*")) == ["snapshot-0", "snapshot-2"]
    # Every folder left is the new run's: its last snapshot is its final model, its checkpoints record its settings.
    final, snapshot = load_file(run / "model.safetensors"), load_file(run / "snapshot-2" / "model.safetensors")
    assert final.keys() == snapshot.keys() and all(torch.equal(final[key], snapshot[key]) for key in final)
    for checkpoint in run.glob("checkpoint-*"):
        assert json.loads((checkpoint / "run_settings.json").read_text())["training"]["learning_rate"] == 1e-2
    # Rerunning it without the flag sees the new run, finished.
    assert run_pretrain.main(arguments(assets, run, *again)) is None


def test_evaluating_a_model_in_place_keeps_its_model_card(assets, tmp_path):
    run_pretrain.main(arguments(assets, tmp_path / "run"))
    card = (tmp_path / "run" / "README.md").read_text()
    assert "tokens" in card.lower()
    run_pretrain.main(evaluation_arguments(assets, tmp_path / "run", tmp_path / "run"))
    assert (tmp_path / "run" / "eval_results.json").exists()
    assert (tmp_path / "run" / "README.md").read_text() == card


def test_a_checkpoint_is_evaluated_with_its_own_tokenizer(assets, tokenizer, tmp_path, monkeypatch):
    """Without --tokenizer_name a checkpoint's tokenizer is its own (run_mlm.py's rule), not the paper's from the Hub:
    offline it still loads, and a model trained with another vocabulary gets the one it was trained with."""
    run = tmp_path / "run"
    run_pretrain.main(arguments(assets, run))
    monkeypatch.setattr(data_sources, "hub_unreachable_reason", lambda: "ConnectError: Name or service not known")
    argv = evaluation_arguments(assets, tmp_path / "evaluation")
    for option in ("--config_name", "--tokenizer_name"):
        del argv[argv.index(option) : argv.index(option) + 2]
    trainer = run_pretrain.main([*argv, "--model_name_or_path", str(run)])
    assert trainer.processing_class.get_vocab() == tokenizer.get_vocab()
    assert json.loads((tmp_path / "evaluation" / "eval_results.json").read_text())["eval_mlm_loss"] > 0

    # A checkpoint without a tokenizer (a converted one, say) names the option that gives one.
    shutil.copytree(run, tmp_path / "bare", ignore=shutil.ignore_patterns("tokenizer*", "vocab.txt", "special_*"))
    with pytest.raises(
        ValueError, match=r"Could not load a tokenizer from --model_name_or_path .*bare .* as --tokenizer_name"
    ):
        run_pretrain.main([*argv, "--model_name_or_path", str(tmp_path / "bare"), "--output_dir", str(tmp_path / "e")])
    # The preset default describes a new model; one asked for beside a checkpoint would be ignored.
    with pytest.raises(ValueError, match=r"--preset mini and --model_name_or_path .*run both give the model"):
        run_pretrain.main([*argv, "--model_name_or_path", str(run), "--preset", "mini"])


def test_evaluating_without_training_into_a_finished_run_is_refused_for_any_model_but_its_own(assets, tmp_path):
    run = tmp_path / "run"
    run_pretrain.main(arguments(assets, run))
    results = (run / "all_results.json").read_text()
    fresh, other = evaluation_arguments(assets, run), evaluation_arguments(assets, run, run / "checkpoint-3")
    for argv, evaluated in ((fresh, "a freshly initialised model"), (other, str(run / "checkpoint-3"))):
        with pytest.raises(ValueError, match=re.escape(f"{evaluated}") + ".* which holds a finished run") as error:
            run_pretrain.main(argv)
        assert f"pass --model_name_or_path {run} (or rerun its training command with --do_eval)" in str(error.value)
    assert not (run / "eval_results.json").exists() and (run / "all_results.json").read_text() == results


def test_evaluating_without_training_never_writes_into_an_unfinished_run_nor_over_an_earlier_evaluation(
    assets, tmp_path, caplog
):
    """An unfinished run, resumed, would merge the evaluation's all_results.json into its own; an earlier evaluation's
    results would be replaced, or mixed with the new ones (an MLM-only model reports no eval_jepa_loss)."""
    run = tmp_path / "run"
    run_pretrain.main(arguments(assets, run, "--max_steps", "2", "--save_steps", "1"))
    for path in run.iterdir():  # what a run stopped after its checkpoints leaves
        if not path.name.startswith("checkpoint-") and path.name != "run_settings.json":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    fresh, checkpoint = evaluation_arguments(assets, run), evaluation_arguments(assets, run, run / "checkpoint-1")
    for argv in (fresh, checkpoint, [*fresh, "--overwrite_output_dir"]):
        with pytest.raises(ValueError) as error:
            run_pretrain.main(argv)
        assert "holds an unfinished training run (checkpoint-1, checkpoint-2, run_settings.json)" in str(error.value)
        assert "Choose another --output_dir" in str(error.value)
    assert sorted(path.name for path in run.iterdir()) == ["checkpoint-1", "checkpoint-2", "run_settings.json"]
    run_pretrain.main(arguments(assets, run, "--max_steps", "2", "--save_steps", "1"))  # finished from its checkpoint
    assert not any(key.startswith("eval_") for key in json.loads((run / "all_results.json").read_text()))

    # Over an earlier evaluation of another model, or of the same one (nothing records which model it was), only with
    # --overwrite_output_dir, which removes its results first.
    evaluation = tmp_path / "evaluation"
    hybrid = evaluation_arguments(assets, evaluation)
    run_pretrain.main(hybrid)
    results = {name: (evaluation / name).read_text() for name in ("eval_results.json", "all_results.json")}
    assert "eval_jepa_loss" in results["all_results.json"]
    for argv in (hybrid, [*hybrid, "--objective", "mlm"]):
        with pytest.raises(ValueError) as error:
            run_pretrain.main(argv)
        message = "holds an earlier evaluation's results (eval_results.json, all_results.json), and would replace them"
        assert message in str(error.value)
        assert "pass --overwrite_output_dir to replace them" in str(error.value)
    assert {name: (evaluation / name).read_text() for name in results} == results
    with caplog.at_level(logging.WARNING):
        run_pretrain.main([*hybrid, "--objective", "mlm", "--overwrite_output_dir"])
    assert "removed the previous run's eval_results.json, all_results.json" in caplog.text
    assert "eval_jepa_loss" not in json.loads((evaluation / "all_results.json").read_text())

    # The model in the folder evaluated in place again recomputes its results, as for a finished run.
    model = tmp_path / "model"
    run_files = ("checkpoint-*", "run_settings.json", "trainer_state.json", "*_results.json")
    shutil.copytree(run, model, ignore=shutil.ignore_patterns(*run_files))
    in_place = evaluation_arguments(assets, model, model)
    for _ in range(2):
        run_pretrain.main(in_place)
    assert (model / "eval_results.json").exists() and not (model / "train_results.json").exists()


def test_one_process_that_sees_several_gpus_is_refused_naming_one_process_per_gpu(assets, tmp_path, monkeypatch):
    """transformers would wrap the model in nn.DataParallel, whose per-GPU losses the loss windows cannot add up."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)  # there is no GPU here to select
    argv = [argument for argument in arguments(assets, tmp_path / "out") if argument != "--use_cpu"]
    with pytest.raises(SystemExit, match="This one process sees 2 GPUs") as stop:
        run_pretrain.main(argv)
    for fix in (
        "`torchrun --nproc_per_node 2 run_pretrain.py …`",
        "`accelerate launch --multi_gpu --num_processes 2 run_pretrain.py …`",
        "`CUDA_VISIBLE_DEVICES=0 python run_pretrain.py …`",
    ):
        assert fix in str(stop.value)
    assert not (tmp_path / "out").exists()
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    run_pretrain.check_launch(run_pretrain.parse_arguments(argv)[2])  # one GPU: no DataParallel


def test_processes_that_each_see_a_world_of_one_are_refused(assets, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it; without --use_cpu a CPU run never joins the group
    argv = [argument for argument in arguments(assets, tmp_path / "out") if argument != "--use_cpu"]
    with pytest.raises(SystemExit, match=r"2 processes were launched") as stop:
        run_pretrain.main(argv)
    # --use_cpu is the script's option: before the script, accelerate launch rejects it as its own.
    assert "`accelerate launch --multi_gpu --num_processes 2 run_pretrain.py … --use_cpu`" in str(stop.value)
    assert "`torchrun --nproc_per_node 2 run_pretrain.py … --use_cpu`" in str(stop.value)
    assert not (tmp_path / "out").exists()


def test_accelerate_starting_one_process_where_several_were_asked_for_is_refused(assets, tmp_path, monkeypatch):
    """`accelerate launch --num_processes 2 run_pretrain.py` without --multi_gpu on a machine without GPUs starts one
    process, with this environment (measured with accelerate 1.16), which would train alone with half the batch. Read
    from the launch's own command line, so that a MASTER_ADDR a job's environment sets refuses no one-process run."""
    for name, value in {"ACCELERATE_USE_CPU": "False", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    script = ["run_pretrain.py", "--output_dir", "out"]
    # The console script as its process shows it: the interpreter running bin/accelerate.
    several = [sys.executable, "/venv/bin/accelerate", "launch", "--num_processes", "2", *script]
    monkeypatch.setattr(run_pretrain, "parent_command", lambda: several)
    with pytest.raises(
        SystemExit, match=r"accelerate launch was asked for 2 processes but started this one alone"
    ) as refusal:
        run_pretrain.main(arguments(assets, tmp_path / "out"))
    assert "--cpu" not in str(refusal.value).replace("--use_cpu", "")
    assert not (tmp_path / "out").exists()
    training_args = run_pretrain.parse_arguments(arguments(assets, tmp_path / "out"))[2]
    gone = ["accelerate", "launch", "--config_file", str(tmp_path / "removed.yaml"), "--num_processes", "2", *script]
    for parent in ([*gone[:2], *script], [*gone[:2], "--cpu", *script], ["bash"], gone):
        monkeypatch.setattr(run_pretrain, "parent_command", lambda parent=parent: parent)
        # One process asked for (MASTER_ADDR from the job), no accelerate, or a launch that cannot be read again.
        run_pretrain.check_launch(training_args)
    monkeypatch.setattr(
        run_pretrain, "parent_command", lambda: ["accelerate-launch", "--cpu", "--num_processes", "3", *script]
    )
    # accelerate's --cpu starts one, and it refuses --cpu beside --multi_gpu: the fix drops it.
    with pytest.raises(SystemExit, match=r"asked for 3 processes.*--use_cpu` \(without accelerate's --cpu"):
        run_pretrain.check_launch(training_args)


@pytest.mark.parametrize("native", [False, True])
def test_bf16_on_a_cpu_that_emulates_it_is_warned_about_naming_fp32(assets, tmp_path, monkeypatch, caplog, native):
    monkeypatch.setattr(run_pretrain, "native_bf16", lambda device: native)
    _, _, bf16 = run_pretrain.parse_arguments(arguments(assets, tmp_path / "out", "--bf16", "true"))
    _, _, fp32 = run_pretrain.parse_arguments(arguments(assets, tmp_path / "out"))

    def warnings_of(training_args) -> list[str]:
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            run_pretrain.warn_emulated_bf16(training_args)
        return [record.getMessage() for record in caplog.records if record.name == run_pretrain.logger.name]

    assert warnings_of(fp32) == []
    warnings = warnings_of(bf16)
    assert len(warnings) == (0 if native else 1)
    assert all("emulates it" in warning and "Pass --bf16 false" in warning for warning in warnings)


def test_two_processes_keep_identical_target_encoders_and_the_loss_scale(assets, tmp_path):
    """torchrun, 2 CPU processes (gloo), 2 sequences each, vs one process with 4: same loss and gradient scale at
    step 1 (the masks differ, so only close); evaluation counts each validation sequence once, as eval_loss does."""
    worker = os.path.join(REPO, "tests", "pretrain_and_dump_target.py")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", worker]
    argv = arguments(assets, tmp_path / "ddp", "--per_device_train_batch_size", "2", "--max_steps", "2", "--do_eval")
    environment = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command + argv, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [load_file(str(tmp_path / "ddp" / f"target-rank{rank}.safetensors")) for rank in (0, 1)]
    initial = initial_target_encoder(assets)
    for key, value in ranks[0].items():
        torch.testing.assert_close(ranks[1][key], value, rtol=0, atol=0, msg=key)
    assert any(not torch.equal(value, initial[key]) for key, value in ranks[0].items())

    single = run_pretrain.main(arguments(assets, tmp_path / "single", "--max_steps", "2"))
    ddp_state = json.loads((tmp_path / "ddp" / "trainer_state.json").read_text())
    first = [next(e for e in state["log_history"] if "loss" in e) for state in (ddp_state, single.state.__dict__)]
    assert first[0]["loss"] == pytest.approx(first[1]["loss"], rel=0.15)
    assert first[0]["mlm_loss"] == pytest.approx(first[1]["mlm_loss"], rel=0.15)
    # A loss scaled by the world size before backward would double the gradient.
    assert first[0]["grad_norm"] == pytest.approx(first[1]["grad_norm"], rel=0.25)
    # The validation sequences do not fill both processes' last batches: accelerate pads them with repeats, which
    # eval_loss drops; so must its parts, or the λ-weighted mean of the two would not be eval_loss.
    evaluation = json.loads((tmp_path / "ddp" / "eval_results.json").read_text())
    assert evaluation["eval_samples"] % 16 != 0
    lam = torch.sigmoid(load_file(str(tmp_path / "ddp" / "model.safetensors"))["loss_weighting.jepa_logit"]).item()
    expected = lam * evaluation["eval_jepa_loss"] + (1 - lam) * evaluation["eval_mlm_loss"]
    assert evaluation["eval_loss"] == pytest.approx(expected, rel=1e-5)


def test_a_signal_one_process_catches_stops_every_process_after_the_same_step(assets, tmp_path):
    """torchrun, 2 CPU processes, SIGTERM to rank 1 alone during step 2: both save checkpoint-2 together and exit
    (stopping alone, rank 1 would leave rank 0 in the next all-reduce, and the checkpoint without rank 0's state)."""
    worker = os.path.join(REPO, "tests", "preempt_one_rank.py")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", worker]
    argv = arguments(assets, tmp_path / "ddp", "--per_device_train_batch_size", "2")
    environment = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command + argv, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and output.count("SIGTERM received: saved checkpoint-2") == 1, output[-3000:]
    # A rank's own way out: the first to exit prints it (the launcher then stops the other, so not always both; and the
    # two ranks' output can share a line).
    assert re.search(r"rank [01] stopped with exit code 143", output), [
        line for line in output.splitlines() if "exit" in line or "stopped" in line
    ]
    assert [path.name for path in (tmp_path / "ddp").glob("checkpoint-*")] == ["checkpoint-2"]
    checkpoint = set(os.listdir(tmp_path / "ddp" / "checkpoint-2"))
    assert {
        "model.safetensors",
        "optimizer.pt",
        "trainer_state.json",
        "rng_state_0.pth",
        "rng_state_1.pth",
    } <= checkpoint
    assert not (tmp_path / "ddp" / "model.safetensors").exists()


def initial_target_encoder(assets) -> dict[str, torch.Tensor]:
    """The target encoder at initialisation (seed 5), to show that training moved it."""
    set_seed(5)
    return PrJepaForPreTraining(PrJepaConfig.from_pretrained(assets / "config")).target_encoder.state_dict()


def test_push_to_hub_uploads_a_loadable_model_with_its_card(assets, tmp_path, fake_hub):
    repo_id = f"{fake_hub_user_name}/prjepa-tiny"
    trainer = run_pretrain.main(
        arguments(
            assets,
            tmp_path / "out",
            "--push_to_hub",
            "--hub_model_id",
            repo_id,
            "--hub_token",
            fake_hub.token,
            "--license",
            "mit",
            "--snapshot_steps",
            "0",
            "2",
            "--save_steps",
            "1",
            "--warmup_steps",
            "0.5",
            "--lr_scheduler_type",
            "cosine_with_min_lr",
            "--lr_scheduler_kwargs",
            '{"min_lr": 1e-6}',
        )
    )
    files = fake_hub.files(repo_id)
    assert {"model.safetensors", "modeling_prjepa.py", "configuration_prjepa.py", "README.md"} <= set(files)
    # The pushes during training carry the model code too: a run stopped before its end leaves a loadable repo.
    pushed = [fake_hub.files(repo_id, commit) for commit in fake_hub.commits(repo_id)]
    assert len([revision for revision in pushed if "model.safetensors" in revision]) > 1
    for revision in pushed:
        assert "model.safetensors" not in revision or {"modeling_prjepa.py", "configuration_prjepa.py"} <= set(revision)
    # Neither the checkpoints nor the snapshots (pushed at every save too) nor the run settings (local paths) nor the
    # pickled training arguments (local paths, loadable only with this package).
    out = tmp_path / "out"
    assert (
        (out / "snapshot-2").is_dir() and (out / "run_settings.json").exists() and (out / "training_args.bin").exists()
    )
    assert not any(name.startswith(("checkpoint-", "snapshot-")) for name in files)
    assert "run_settings.json" not in files and "training_args.bin" not in files
    # Nor a folder a stopped save left half-written, as huggingface_hub's own filter applies the patterns.
    left = ["model.safetensors", "snapshot-4.partial/model.safetensors", "run_settings.json.partial"]
    ignored = ["_*", "checkpoint-*", *trainer_module.HUB_IGNORE_PATTERNS]
    assert list(filter_repo_objects(left, ignore_patterns=ignored)) == ["model.safetensors"]

    card = ModelCard.load(repo_id)
    assert {"prjepa", "jepa"} <= set(card.data.tags) and card.data.license == "mit"
    assert card.data.pipeline_tag == "fill-mask" and card.data.library_name == "transformers"
    assert "| `warmup_steps` | 2 |" in card.text  # the ratio 0.5 of 3 steps, as the schedule made it
    assert '| `lr_scheduler_kwargs` | {"min_lr": 1e-06} |' in card.text
    # The pushed config names the pushed code for processes without this project (here the registered classes win).
    assert json.loads(open(hf_hub_download(repo_id, "config.json")).read())["auto_map"] == AUTO_MAP
    encoder = AutoModel.from_pretrained(repo_id, trust_remote_code=True)
    batch = trainer.processing_class(SENTENCES, padding=True, return_tensors="pt")
    expected = trainer.model.prjepa(batch["input_ids"], batch["attention_mask"]).last_hidden_state
    torch.testing.assert_close(
        encoder(batch["input_ids"], batch["attention_mask"]).last_hidden_state, expected, rtol=0, atol=0
    )


def test_resume_is_exact_or_refused(assets, tmp_path, caplog, monkeypatch):
    run = tmp_path / "run"
    run_pretrain.main(arguments(assets, run, "--save_steps", "1"))
    recorded = json.loads((run / "run_settings.json").read_text())
    assert recorded["training"]["learning_rate"] == 5e-5 and recorded["training"]["max_steps"] == 3
    assert json.loads((run / "checkpoint-2" / "run_settings.json").read_text()) == recorded

    # Other settings than the run was started with: refused before any step, naming each difference, whether the
    # finished run is rerun, continued with more steps, or one of its checkpoints resumed into another folder.
    lr_difference = r"training\.learning_rate: 5e-05 in the checkpoint's run, 0\.01 now"
    with pytest.raises(ValueError, match=lr_difference):
        run_pretrain.main(arguments(assets, run, "--learning_rate", "0.01"))
    with pytest.raises(ValueError, match=lr_difference):
        run_pretrain.main(arguments(assets, run, "--max_steps", "4", "--learning_rate", "0.01"))
    with pytest.raises(ValueError, match=r"model\.mlm_probability: 0\.15 in the checkpoint's run, 0\.3 now"):
        run_pretrain.main(arguments(assets, run, "--max_steps", "4", "--config_overrides", "mlm_probability=0.3"))
    # So are the data and loader options that change which sequences make each step; one tokenization process cuts
    # the same packed chunks as none.
    for extra, difference in [
        (("--preprocessing_num_workers", "2"), r"data\.preprocessing_num_workers: 1 in the checkpoint's run, 2 now"),
        (("--streaming",), r"data\.streaming: False in the checkpoint's run, True now"),
        (("--dataloader_drop_last", "true"), r"training\.dataloader_drop_last: False in the checkpoint's run, True"),
        (("--neftune_noise_alpha", "5"), r"training\.neftune_noise_alpha: None in the checkpoint's run, 5\.0 now"),
        (("--optim_args", "foo=1"), r"training\.optim_args: None in the checkpoint's run, 'foo=1' now"),
        (
            ("--accelerator_config", '{"split_batches": true}'),
            r"training\.accelerator_config\.split_batches: False in the checkpoint's run, True now",
        ),
    ]:
        with pytest.raises(ValueError, match=difference):
            run_pretrain.main(arguments(assets, run, *extra))
    assert run_pretrain.main(arguments(assets, run, "--preprocessing_num_workers", "1")) is None
    # Options that change no step are no difference: the accelerator's transfer mode, and how PrJepaForMaskedLM shapes
    # its logits, which every run recorded before its default changed holds as True.
    assert run_pretrain.main(arguments(assets, run, "--accelerator_config", '{"non_blocking": true}')) is None
    for path in run.rglob("run_settings.json"):
        settings = json.loads(path.read_text())
        assert "sparse_prediction" not in settings["model"]
        settings["model"]["sparse_prediction"] = True
        path.write_text(json.dumps(settings))
    assert run_pretrain.main(arguments(assets, run)) is None
    # A record written before a config field existed holds the value every run then had (the sin/cos layout, the MLM
    # head's eps): a run of another value is not its continuation.
    for path in run.rglob("run_settings.json"):
        settings = json.loads(path.read_text())
        del settings["model"]["sinusoidal_layout"], settings["model"]["mlm_head_layer_norm_eps"]
        path.write_text(json.dumps(settings))
    assert run_pretrain.main(arguments(assets, run)) is None
    layout = r"model\.sinusoidal_layout: 'halves' in the checkpoint's run, 'interleaved' now"
    with pytest.raises(ValueError, match=layout):
        run_pretrain.main(
            arguments(assets, run, "--max_steps", "4", "--config_overrides", "sinusoidal_layout=interleaved")
        )
    eps = r"model\.mlm_head_layer_norm_eps: 1e-06 in the checkpoint's run, 1e-05 now"
    with pytest.raises(ValueError, match=eps):
        run_pretrain.main(
            arguments(assets, run, "--max_steps", "4", "--config_overrides", "mlm_head_layer_norm_eps=1e-5")
        )
    elsewhere = ("--resume_from_checkpoint", str(run / "checkpoint-2"), "--learning_rate", "0.01")
    with pytest.raises(ValueError, match=lr_difference):
        run_pretrain.main(arguments(assets, tmp_path / "elsewhere", *elsewhere))
    assert not (tmp_path / "elsewhere").exists()

    # A run stopped after step 2 whose newest checkpoint is damaged: skipped with a message, the last complete one
    # resumed. Its length may not change (the schedule and EMA momentum of every step depend on it).
    stopped = tmp_path / "stopped"
    stopped.mkdir()
    for name in ("checkpoint-1", "checkpoint-2"):
        shutil.copytree(run / name, stopped / name)
    (stopped / "checkpoint-2" / "scheduler.pt").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"training\.max_steps: 3 in the checkpoint's run, 5 now"):
        run_pretrain.main(arguments(assets, stopped, "--max_steps", "5"))
    with caplog.at_level(logging.INFO):  # --num_train_epochs changes nothing beside --max_steps, so it may differ
        trainer = run_pretrain.main(arguments(assets, stopped, "--save_steps", "1", "--num_train_epochs", "5"))
    assert "Skipping" in caplog.text and "scheduler.pt is damaged" in caplog.text
    assert f"resuming training at {stopped / 'checkpoint-1'}" in caplog.text and trainer.state.global_step == 3
    expected, actual = load_file(run / "model.safetensors"), load_file(stopped / "model.safetensors")
    assert all(torch.equal(expected[key], actual[key]) for key in expected)

    # Without its random state a checkpoint would resume with other dropout and sampling: incomplete too.
    shutil.copytree(run / "checkpoint-2", tmp_path / "no-rng")
    assert checkpoint_problem(str(tmp_path / "no-rng")) is None
    (tmp_path / "no-rng" / "rng_state.pth").unlink()
    assert checkpoint_problem(str(tmp_path / "no-rng")) == "missing rng_state.pth"
    # Nor with a damaged random state or copy of the run's settings (another process writes the one, a callback the
    # other, without waiting for the trainer state): skipped too, not a crash of the resume.
    damaged = tmp_path / "damaged"
    for name in ("checkpoint-1", "checkpoint-2"):
        shutil.copytree(run / name, damaged / name)
    random_state = damaged / "checkpoint-2" / "rng_state.pth"
    random_state.write_bytes(random_state.read_bytes()[:100])
    assert checkpoint_problem(str(damaged / "checkpoint-2")).startswith("rng_state.pth is damaged")
    shutil.copy(run / "checkpoint-2" / "rng_state.pth", random_state)
    (damaged / "checkpoint-2" / "run_settings.json").write_text("")
    assert checkpoint_problem(str(damaged / "checkpoint-2")).startswith("run_settings.json is damaged")
    assert last_complete_checkpoint(str(damaged)) == str(damaged / "checkpoint-1")

    # An explicit checkpoint that lacks part of its state is refused, naming the previous complete one, also when
    # resumed into a new folder.
    (run / "checkpoint-3" / "optimizer.pt").unlink()
    for output_dir in (run, tmp_path / "fresh"):
        with pytest.raises(ValueError, match=rf"missing optimizer\.pt.*resume from {run / 'checkpoint-2'}"):
            run_pretrain.main(
                arguments(assets, output_dir, "--max_steps", "4", "--resume_from_checkpoint", str(run / "checkpoint-3"))
            )
    assert not (tmp_path / "fresh").exists()
    # Named from inside the run's folder, as `checkpoint-3`: the previous one is found beside it there.
    monkeypatch.chdir(run)
    with pytest.raises(ValueError, match=rf"missing optimizer\.pt.*resume from {run / 'checkpoint-2'}"):
        run_pretrain.main(arguments(assets, run, "--max_steps", "4", "--resume_from_checkpoint", "checkpoint-3"))


# Every option whose change a resume must refuse (README, Pretraining), listed apart from the code that records them.
RECORDED_TRAINING_OPTIONS = (
    "learning_rate",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "max_grad_norm",
    "optim",
    "optim_args",
    "lr_scheduler_type",
    "lr_scheduler_kwargs",
    "warmup_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "seed",
    "data_seed",
    "bf16",
    "fp16",
    "world_size",
    "average_tokens_across_devices",
    "dataloader_drop_last",
    "train_sampling_strategy",
    "neftune_noise_alpha",
    "accelerator_config",
    "max_steps",
    "num_train_epochs",
)
RECORDED_DATA_OPTIONS = (
    "dataset_name",
    "dataset_config_name",
    "train_file",
    "text_column_name",
    "validation_split_percentage",
    "max_seq_length",
    "line_by_line",
    "max_train_samples",
    "streaming",
    "preprocessing_num_workers",
)


def changed(value):
    """Another value of the same kind."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value * 2 + 3
    return {"changed": 1} if isinstance(value, dict) else "changed"


@pytest.mark.parametrize(
    "section, name",
    [("training", name) for name in RECORDED_TRAINING_OPTIONS] + [("data", name) for name in RECORDED_DATA_OPTIONS],
)
def test_each_recorded_option_changed_alone_is_a_difference_named(
    assets, tokenizer, tmp_path, monkeypatch, section, name
):
    model_args, data_args, training_args = run_pretrain.parse_arguments(arguments(assets, tmp_path / "out"))
    model = run_pretrain.build_model(model_args, tokenizer)
    recorded = run_pretrain.current_settings(model, tokenizer, data_args, training_args, None, training_data=False)
    changed_args = copy.deepcopy(training_args if section == "training" else data_args)
    if name == "world_size":
        monkeypatch.setattr(PrJepaTrainingArguments, "world_size", property(lambda self: 2))
    elif name == "accelerator_config":
        changed_args.accelerator_config.split_batches = not changed_args.accelerator_config.split_batches
    elif name == "num_train_epochs":  # counts only for a run by epochs: max_steps ends one otherwise
        training_args.max_steps = changed_args.max_steps = -1
        recorded = run_pretrain.current_settings(model, tokenizer, data_args, training_args, None, training_data=False)
        changed_args.num_train_epochs = changed(training_args.num_train_epochs)
    else:
        setattr(changed_args, name, changed(getattr(changed_args, name)))
    now = run_pretrain.current_settings(
        model,
        tokenizer,
        changed_args if section == "data" else data_args,
        changed_args if section == "training" else training_args,
        None,
        training_data=False,
    )
    found = differences(recorded, now)
    assert any(entry.startswith(f"{section}.{name}") for entry in found), found


def test_the_recorded_options_are_the_ones_a_resume_compares():
    assert set(RECORDED_TRAINING_OPTIONS) == set(resume_module.TRAJECTORY_ARGUMENTS + resume_module.LENGTH_ARGUMENTS)
    assert set(RECORDED_DATA_OPTIONS) == set(run_pretrain.TRAJECTORY_DATA_ARGUMENTS)


def test_a_schedule_option_added_or_removed_is_a_difference_an_accelerator_field_is_not():
    """`lr_scheduler_kwargs` are the user's: a key set on one side only changes the learning rates (a polynomial
    schedule's power). accelerator_config's fields come and go with accelerate's versions: only shared ones compare."""

    def settings(schedule: dict, accelerator: dict) -> dict:
        return {"training": {"lr_scheduler_kwargs": schedule, "accelerator_config": accelerator}}

    recorded = settings({"lr_end": 1e-7}, {"split_batches": False})
    assert differences(recorded, settings({"lr_end": 1e-7}, {"split_batches": False, "new_field": True})) == []
    assert differences(recorded, settings({"lr_end": 1e-7, "power": 3.0}, {"split_batches": False})) == [
        "training.lr_scheduler_kwargs.power: not set in the checkpoint's run, 3.0 now"
    ]
    assert differences(recorded, settings({"min_lr_rate": 0.5}, {"split_batches": True})) == [
        "training.accelerator_config.split_batches: False in the checkpoint's run, True now",
        "training.lr_scheduler_kwargs.lr_end: 1e-07 in the checkpoint's run, not set now",
        "training.lr_scheduler_kwargs.min_lr_rate: not set in the checkpoint's run, 0.5 now",
    ]


def test_a_resume_reads_the_same_files_however_the_glob_spells_them(assets, tmp_path, monkeypatch):
    """A job script that resumes with an absolute glob where the run began with a relative one reads the same bytes in
    the same order: continued, to the uninterrupted run's weights, not refused as other training data."""
    shutil.copytree(assets / "train", tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    options = ("--max_steps", "2", "--save_steps", "1")
    run_pretrain.main(arguments(assets, "whole", *options, "--train_file", "data/*.txt"))
    stopped = tmp_path / "stopped"  # as a run stopped after its first step leaves it
    shutil.copytree(tmp_path / "whole" / "checkpoint-1", stopped / "checkpoint-1")
    shutil.copy(tmp_path / "whole" / "run_settings.json", stopped)
    resumed = run_pretrain.main(arguments(assets, stopped, *options, "--train_file", str(tmp_path / "data" / "*.txt")))
    assert resumed.state.global_step == 2
    whole, continued = (load_file(folder / "model.safetensors") for folder in (tmp_path / "whole", stopped))
    assert whole.keys() == continued.keys() and all(torch.equal(whole[key], continued[key]) for key in whole)

    # The same bytes are not the same text when another builder reads them (another file type), and files given by URL
    # are recorded by no digest: known by their URL alone.
    def data(train_file: str, files: dict) -> dict:
        return {"data": {"train_file": train_file, "train_files": files}}

    content = {"bytes": 10, "sha256": "0" * 64}
    assert differences(data("d/*.txt", {"d/a.txt": content}), data("/x/d/*.txt", {"/x/d/a.txt": content})) == []
    assert differences(data("d/a.txt", {"d/a.txt": content}), data("d/a.jsonl", {"d/a.jsonl": content}))
    assert differences(data("https://a.org/old.txt", {}), data("https://b.org/new.txt", {})) == [
        "data.train_file: 'https://a.org/old.txt' in the checkpoint's run, 'https://b.org/new.txt' now"
    ]


def test_a_resume_over_other_training_files_is_refused_naming_them(assets, tmp_path, caplog, monkeypatch):
    """The glob is the same, the files under it are not: resuming would skip the trained batches of other data."""
    data = tmp_path / "data"
    shutil.copytree(assets / "train", data)
    monkeypatch.chdir(tmp_path)  # a relative glob: its files are recorded relative to the working directory
    options = ("--train_file", "data/*.txt", "--max_steps", "2", "--save_steps", "1")
    run_pretrain.main(arguments(assets, "whole", *options))
    stopped = tmp_path / "stopped"  # as a run stopped after its first step leaves it
    shutil.copytree(tmp_path / "whole" / "checkpoint-1", stopped / "checkpoint-1")
    shutil.copy(tmp_path / "whole" / "run_settings.json", stopped)
    argv = arguments(assets, stopped, *options)
    recorded = json.loads((stopped / "run_settings.json").read_text())["data"]["train_files"]
    digest = hashlib.sha256((data / "part0.txt").read_bytes()).hexdigest()
    assert recorded["data/part0.txt"] == {"bytes": (data / "part0.txt").stat().st_size, "sha256": digest}
    assert sorted(recorded) == ["data/part0.txt", "data/part1.txt"]

    (data / "part0.txt").write_text((data / "part0.txt").read_text().replace("cat", "dog"))
    with (data / "part1.txt").open("a") as file:
        file.write("the cat sat\n")
    (data / "part2.txt").write_text("a dog ran in the park\n")
    with pytest.raises(ValueError) as error:
        run_pretrain.main(argv)
    size = recorded["data/part1.txt"]["bytes"]
    assert (
        "data.train_files: since the checkpoint's run started, changed data/part0.txt (same size, other content), "
        f"data/part1.txt ({size:,} bytes then, {size + 12:,} now); appeared data/part2.txt. Continue with the recorded "
        "settings"
    ) in str(error.value)
    assert "the training files as they were, or start a new run: pass --overwrite_output_dir" in str(error.value)
    # The finished run is evaluated, not continued: its final model does not depend on the files as they are now.
    run_pretrain.main(arguments(assets, tmp_path / "whole", *options, "--do_eval"))
    assert (tmp_path / "whole" / "eval_results.json").exists()
    (data / "part0.txt").unlink()
    with pytest.raises(ValueError, match="disappeared data/part0.txt"):
        run_pretrain.main(argv)
    assert sorted(path.name for path in stopped.iterdir()) == ["checkpoint-1", "run_settings.json"]

    # A run recorded before the files were: resumed as before, saying that they cannot be checked.
    for path in stopped.rglob("run_settings.json"):
        settings = json.loads(path.read_text())
        del settings["data"]["train_files"], settings["data"]["train_dataset_revision"]
        path.write_text(json.dumps(settings))
    with caplog.at_level(logging.WARNING):
        assert run_pretrain.main(argv).state.global_step == 2
    assert "was written before run settings recorded the training files' contents" in caplog.text


def test_a_hub_dataset_is_recorded_by_its_commit(monkeypatch):
    """Not by the URLs of its files, which `datasets` lists online but not from its cache offline."""
    import datasets

    builder = SimpleNamespace(hash="0123abcd", config=SimpleNamespace(data_files=None))
    loads = []
    monkeypatch.setattr(datasets, "load_dataset_builder", lambda **load: loads.append(load) or builder)
    data_args = run_pretrain.DataTrainingArguments(dataset_name="someone/texts")
    fingerprint = run_pretrain.training_data_fingerprint(data_args, None)
    assert fingerprint == {"train_files": None, "train_dataset_revision": "0123abcd"}
    # Pinned, the dataset is read at that commit.
    run_pretrain.training_data_fingerprint(dataclasses.replace(data_args, dataset_revision="0123abcd"), None)
    assert [load["revision"] for load in loads] == [None, "0123abcd"]
    # Offline, `datasets` reads the newest cached commit whatever the revision: a pinned commit it did not read is
    # refused rather than recorded as trained on.
    with pytest.raises(ValueError, match=f"--dataset_revision {'a' * 40} asks for that commit .* read commit 0123abcd"):
        run_pretrain.training_data_fingerprint(dataclasses.replace(data_args, dataset_revision="a" * 40), None)


def test_a_resume_over_a_dataset_that_moved_on_names_the_commit_to_pin(tmp_path):
    """A Hub dataset gains commits after a run starts; the refusal names the --dataset_revision that continues it."""
    from prjepa.resume import check_settings

    settings = {"data": {"dataset_name": "someone/texts", "train_files": None, "train_dataset_revision": "0123abcd"}}
    recorded = tmp_path / "run_settings.json"
    recorded.write_text(json.dumps(settings))
    check_settings(str(recorded), settings, "checkpoint-2")
    moved = {"data": {**settings["data"], "train_dataset_revision": "4567ef01"}}
    with pytest.raises(
        ValueError, match=r"the dataset at the commit it read \(--dataset_revision 0123abcd\), or start"
    ):
        check_settings(str(recorded), moved, "checkpoint-2")
    # Continued from local files, the run cannot be pinned to a commit: the refusal names the files, not the option.
    local = {"data": {**settings["data"], "train_files": {}, "train_dataset_revision": None}}
    with pytest.raises(ValueError) as error:
        check_settings(str(recorded), local, "checkpoint-2")
    assert "--dataset_revision" not in str(error.value)
    for data in (dict(train_file="texts/*.txt"), dict(dataset_name=str(tmp_path))):  # files, or a dataset folder
        with pytest.raises(ValueError, match="--dataset_revision 0123abcd names a version of a Hub dataset"):
            run_pretrain.DataTrainingArguments(**data, dataset_revision="0123abcd")


def test_an_explicit_checkpoint_of_another_run_goes_only_into_an_empty_or_cleared_output_dir(assets, tmp_path, caplog):
    snapshots = ("--save_steps", "1", "--snapshot_steps", "3")
    source, other = tmp_path / "source", tmp_path / "other"
    run_pretrain.main(arguments(assets, source, *snapshots))
    run_pretrain.main(arguments(assets, other, *snapshots, "--learning_rate", "1e-2"))
    (other / "train_results.json").unlink()  # an unfinished run: its checkpoints and snapshot, no results
    resume = ("--resume_from_checkpoint", str(source / "checkpoint-1"))

    # Resumed into it, the other run's snapshot-3 would be kept as this run's and its settings overwritten.
    files = {path: path.stat().st_mtime_ns for path in other.rglob("*") if path.is_file()}
    with pytest.raises(
        ValueError, match="already holds files that are not .*leave --resume_from_checkpoint out"
    ) as error:
        run_pretrain.main(arguments(assets, other, *snapshots, *resume))
    held = sorted(os.listdir(other))  # the first five named, the others counted
    assert len(held) > 5 and f"({', '.join(held[:5])} and {len(held) - 5} more)" in str(error.value)
    assert files == {path: path.stat().st_mtime_ns for path in other.rglob("*") if path.is_file()}

    # --overwrite_output_dir clears it first, as for a new run: what is left is the resumed run's, exactly.
    with caplog.at_level(logging.WARNING):
        run_pretrain.main(arguments(assets, other, *snapshots, *resume, "--overwrite_output_dir"))
    assert "removed the previous run's checkpoint-1, checkpoint-2, checkpoint-3, snapshot-3" in caplog.text
    assert sorted(path.name for path in other.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3"]
    assert json.loads((other / "run_settings.json").read_text())["training"]["learning_rate"] == 5e-5
    expected, actual = (load_file(run / "snapshot-3" / "model.safetensors") for run in (source, other))
    assert expected.keys() == actual.keys() and all(torch.equal(expected[key], actual[key]) for key in expected)

    # A checkpoint of the run in the output directory resumes there as before, the rest of the folder being its run's.
    (other / "train_results.json").unlink()
    trainer = run_pretrain.main(
        arguments(assets, other, *snapshots, "--resume_from_checkpoint", str(other / "checkpoint-2"))
    )
    assert trainer.state.global_step == 3

    # Clearing a finished run never removes the checkpoint being resumed, wherever in the folder it lies.
    backup = other / "checkpoint-backups" / "checkpoint-2"
    shutil.copytree(source / "checkpoint-2", backup)
    with pytest.raises(ValueError, match=r"holds a finished run .* so --resume_from_checkpoint"):
        run_pretrain.main(arguments(assets, other, *snapshots, "--resume_from_checkpoint", str(backup)))
    trainer = run_pretrain.main(
        arguments(assets, other, *snapshots, "--resume_from_checkpoint", str(backup), "--overwrite_output_dir")
    )
    assert trainer.state.global_step == 3 and checkpoint_problem(str(backup)) is None
    assert sorted(path.name for path in other.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-backups"]


def test_another_runs_last_checkpoint_is_resumed_elsewhere_only_for_more_steps(assets, tmp_path):
    """For the same length it would train nothing and leave a final model without a checkpoint or settings to
    continue from."""
    source, new = tmp_path / "source", tmp_path / "new"
    run_pretrain.main(arguments(assets, source))
    resume = ("--resume_from_checkpoint", str(source / "checkpoint-3"))
    with pytest.raises(ValueError, match=r"checkpoint-3 holds its run's last step, 3: resumed into .*new for the same"):
        run_pretrain.main(arguments(assets, new, *resume))
    assert not new.exists()
    trainer = run_pretrain.main(arguments(assets, new, *resume, "--max_steps", "4", "--save_steps", "4"))
    assert trainer.state.global_step == 4 and (new / "checkpoint-4").is_dir() and (new / "run_settings.json").exists()
    # Its own run's last checkpoint, resumed in place, still writes the final model a stop left unwritten.
    (source / "train_results.json").unlink()
    assert run_pretrain.main(arguments(assets, source, *resume)).state.global_step == 3
    assert (source / "train_results.json").exists()


def test_the_help_names_the_default_output_folder(capsys):
    with pytest.raises(SystemExit):
        run_pretrain.main(["--help"])
    assert "are written. (default: trainer_output)" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_preempted_run_saves_exits_non_zero_and_resumes_exactly(assets, tmp_path, monkeypatch, caplog, signal_number):
    run_pretrain.main(arguments(assets, tmp_path / "straight"))

    class SignalDuringStepTwo(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == 1:  # the second optimizer step is under way
                os.kill(os.getpid(), signal_number)

    class PreemptedTrainer(trainer_module.PrJepaTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.add_callback(SignalDuringStepTwo())

    run = tmp_path / "preempted"
    monkeypatch.setattr(trainer_module, "PrJepaTrainer", PreemptedTrainer)
    handler_before = signal.getsignal(signal_number)
    with pytest.raises(SystemExit) as stop, caplog.at_level(logging.WARNING):
        run_pretrain.main(arguments(assets, run, "--overwrite_output_dir"))
    assert stop.value.code == 128 + signal_number
    # The same command would start again from step 0 and replace the checkpoint just saved.
    assert "Rerun the same command without --overwrite_output_dir" in caplog.text
    assert [path.name for path in run.glob("checkpoint-*")] == ["checkpoint-2"]
    assert not (run / "model.safetensors").exists() and not (run / "train_results.json").exists()
    assert signal.getsignal(signal_number) == handler_before

    monkeypatch.undo()
    steps = record_steps(monkeypatch)
    trainer = run_pretrain.main(arguments(assets, run))
    assert trainer.state.global_step == 3 and steps == [3]
    expected, actual = load_file(tmp_path / "straight" / "model.safetensors"), load_file(run / "model.safetensors")
    assert expected.keys() == actual.keys() and all(torch.equal(expected[key], actual[key]) for key in expected)


def test_a_non_finite_loss_names_the_last_finite_checkpoint_and_a_restart_that_trains(assets, tmp_path, monkeypatch):
    class DivergesAtStepThree(trainer_module.PrJepaTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            return loss * float("nan") if self.state.global_step == 2 else loss

    run = tmp_path / "run"
    monkeypatch.setattr(trainer_module, "PrJepaTrainer", DivergesAtStepThree)
    with pytest.raises(FloatingPointError) as stop:
        run_pretrain.main(arguments(assets, run, "--max_steps", "4", "--save_steps", "1", "--learning_rate", "1e-3"))
    message = str(stop.value)
    assert f"{run / 'checkpoint-2'} is the last checkpoint with finite weights" in message
    command = shlex.split(message.split("run: ")[-1])
    assert command[:2] == ["python", "run_pretrain.py"] and "--config_name" not in command
    assert command[command.index("--learning_rate") + 1] == "0.0001"

    monkeypatch.undo()
    trainer = run_pretrain.main(command[2:])
    assert trainer.state.global_step == 4 and trainer.args.output_dir == f"{run}-from-checkpoint-2"
    assert all(math.isfinite(entry["loss"]) for entry in trainer.state.log_history if "loss" in entry)
    started_from = load_file(run / "checkpoint-2" / "model.safetensors")
    first_step = load_file(tmp_path / "run-from-checkpoint-2" / "checkpoint-1" / "model.safetensors")
    assert any(not torch.equal(started_from[key], first_step[key]) for key in started_from)

    # A run started from an arguments file gets the same advice as edits to a copy of that file.
    advice = run_pretrain.restart_advice(SimpleNamespace(output_dir=str(run), learning_rate=1e-3), ["run.yaml"])
    assert f"copy run.yaml, set model_name_or_path: {run / 'checkpoint-2'}, learning_rate: 0.0001" in advice
    assert f"output_dir: {run}-from-checkpoint-2" in advice and "remove preset, config_name" in advice


def test_the_restart_command_parses_whatever_form_the_options_took(assets, tmp_path):
    argv = arguments(assets, tmp_path / "run", "--overwrite_output_dir", "true", "--resume_from_checkpoint=x")
    argv += ["--overwrite_output_dir", "--do_eval"]  # the bare form, before an option it must keep
    # HfArgumentParser's dashed spellings, apart and with `=`.
    argv += ["--config-overrides", "hidden_size=32", "--resume-from-checkpoint", "y", "--learning-rate=0.5"]
    argv += ["--output-dir", "elsewhere", "--overwrite-output-dir", "true", "--do-eval"]
    # Abbreviations argparse expands, one of them dashed.
    argv += ["--overwrite_out", "--config_over", "hidden_size=32", "--resume-from", "y", "--do_ev", "--learning_r=0.5"]
    run_pretrain.parse_arguments(argv)  # a run started with them
    options = option_names(run_pretrain.ARGUMENT_CLASSES)
    command = run_pretrain.restart_command(argv, options, "run/checkpoint-2", 1e-4, "run-from-checkpoint-2")
    assert command[:2] == ["python", "run_pretrain.py"]
    model_args, _, training_args = run_pretrain.parse_arguments(command[2:])
    assert model_args.model_name_or_path == "run/checkpoint-2" and training_args.output_dir == "run-from-checkpoint-2"
    assert training_args.learning_rate == 1e-4 and training_args.do_eval and training_args.do_train
    assert not training_args.overwrite_output_dir and training_args.resume_from_checkpoint is None
    assert model_args.config_overrides is None
    assert not {"--learning-rate=0.5", "--output-dir", "elsewhere", "--overwrite-output-dir"} & set(command)
    assert not {"--overwrite_out", "--config_over", "--resume-from", "--learning_r=0.5"} & set(command)
    assert "--do_ev" in command


def test_a_training_run_that_plans_no_optimizer_step_is_refused_before_the_data_loads(assets, tmp_path, monkeypatch):
    """transformers would train 0 steps and write the initialisation as a finished run, with its model card."""
    monkeypatch.setattr(run_pretrain, "load_raw_datasets", lambda *args: pytest.fail("the data was loaded"))
    for epochs in ("0", "-1"):
        with pytest.raises(ValueError) as error:
            run_pretrain.main(arguments(assets, tmp_path / "out", "--max_steps", "-1", "--num_train_epochs", epochs))
        assert f"--num_train_epochs {epochs} without --max_steps plans no optimizer step" in str(error.value)
        assert "--num_train_epochs above 0 or --max_steps above 0" in str(error.value)
    assert not list(tmp_path.glob("out/**/*"))


def test_an_output_or_cache_folder_in_the_place_of_a_file_is_refused_before_the_data_loads(
    assets, tmp_path, monkeypatch
):
    """Writing there fails only once the data is tokenized, which on a large corpus takes minutes."""
    monkeypatch.setattr(run_pretrain, "load_raw_datasets", lambda *args: pytest.fail("the data was loaded"))
    (tmp_path / "file").write_text("")
    cases = [
        (tmp_path / "file" / "run", [], r"--output_dir .*file/run lies under .*file, a file, not a folder: choose"),
        (tmp_path / "out", ["--cache_dir", str(tmp_path / "file")], r"--cache_dir .*file is a file, not a folder"),
    ]
    for output_dir, extra, message in cases:
        with pytest.raises(ValueError, match=message):
            run_pretrain.main(arguments(assets, output_dir, *extra))
    assert not (tmp_path / "out").exists()


def test_snapshot_steps_past_an_epoch_based_run_are_refused_before_training(assets, tmp_path):
    epochs = ("--max_steps", "-1", "--num_train_epochs", "2")
    with pytest.raises(ValueError, match=r"--snapshot_steps \[1000\] lie after the run's last optimizer step") as error:
        run_pretrain.main(arguments(assets, tmp_path / "out", *epochs, "--snapshot_steps", "0", "1000"))
    assert not list(tmp_path.glob("out/**/*"))
    # The step count it names is the one the run makes.
    steps = int(re.search(r"\((\d+) steps\)", str(error.value)).group(1))
    trainer = run_pretrain.main(arguments(assets, tmp_path / "run", *epochs, "--snapshot_steps", "0", str(steps)))
    assert trainer.state.global_step == steps and (tmp_path / "run" / f"snapshot-{steps}").is_dir()


def test_rerunning_a_finished_run_still_evaluates_and_pushes_it(assets, tmp_path, fake_hub, monkeypatch):
    run = tmp_path / "run"
    run_pretrain.main(arguments(assets, run))
    # Nothing trains again, so the training text is not tokenized again.
    monkeypatch.setattr(run_pretrain, "check_training_rows", lambda *args: pytest.fail("training rows read"))
    final = (run / "model.safetensors").read_bytes()
    # The finished run probed (run_glue_probe --update_model_card): its card's scores describe the weights pushed.
    probed = EvalResult(
        task_type="text-classification",
        dataset_type="glue",
        dataset_name="GLUE SST-2",
        metric_type="accuracy",
        metric_value=0.61,
    )
    update_model_card(str(run), [probed])
    repo_id = f"{fake_hub_user_name}/prjepa-finished"
    push = ("--push_to_hub", "--hub_model_id", repo_id, "--hub_token", fake_hub.token)
    trainer = run_pretrain.main(arguments(assets, run, "--do_eval", *push))
    assert trainer.state.global_step == 3 and (run / "model.safetensors").read_bytes() == final
    assert fake_hub.files(repo_id)["model.safetensors"] == final
    card = ModelCard.load(repo_id)
    assert "optimizer_steps | 3" in card.text.replace("`", "")
    assert [(entry.metric_type, entry.metric_value) for entry in card.data.eval_results] == [("accuracy", 0.61)]

    # The evaluation is the final model's: the same as evaluating it in place.
    evaluation = json.loads((run / "eval_results.json").read_text())
    run_pretrain.main(evaluation_arguments(assets, tmp_path / "eval", run))
    in_place = json.loads((tmp_path / "eval" / "eval_results.json").read_text())
    assert evaluation["eval_mlm_loss"] == in_place["eval_mlm_loss"]

    with pytest.raises(ValueError, match=r"holds a finished run .* so --resume_from_checkpoint .*checkpoint-3"):
        run_pretrain.main(arguments(assets, run, "--resume_from_checkpoint", str(run / "checkpoint-3")))


def test_data_with_nothing_to_learn_is_refused_and_rows_without_jepa_blocks_are_reported(assets, tmp_path, caplog):
    specials = tmp_path / "specials.txt"
    specials.write_text("[CLS] [SEP]\n[SEP] [PAD] [CLS]\n" * 20)
    for streaming in ([], ["--streaming"]):
        with pytest.raises(ValueError, match="hold no maskable token"):
            argv = [*arguments(assets, tmp_path / "a"), "--train_file", str(specials), "--line_by_line", *streaming]
            run_pretrain.main(argv)
        assert not list(tmp_path.glob("a/**/*"))

    short = tmp_path / "short.txt"
    short.write_text("cat\ndog ran\n" * 20)
    with caplog.at_level(logging.WARNING):
        run_pretrain.main([*arguments(assets, tmp_path / "b"), "--train_file", str(short), "--line_by_line"])
    assert "100% of the first 40 training sequences get no JEPA target block" in caplog.text
    assert "(min_context_tokens)" in caplog.text and "(target_block_scale)" in caplog.text
    caplog.clear()
    # The advice works: with one context token enough, most rows of three words keep one beside their target.
    words = tmp_path / "words.txt"
    words.write_text("the dog ran\n" * 40)
    with caplog.at_level(logging.WARNING):
        run_pretrain.main([*arguments(assets, tmp_path / "d"), "--train_file", str(words), "--line_by_line"])
    assert "100% of the first 40 training sequences get no JEPA target block" in caplog.text
    caplog.clear()
    overrides = ["--config_overrides", "min_context_tokens=1"]
    with caplog.at_level(logging.WARNING):
        run_pretrain.main(
            [*arguments(assets, tmp_path / "e"), "--train_file", str(words), "--line_by_line", *overrides]
        )
    assert "get no JEPA target block" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        run_pretrain.main(arguments(assets, tmp_path / "c"))
    assert "get no JEPA target block" not in caplog.text


def test_a_checkpoint_evaluated_in_place_is_not_read_as_an_unfinished_run(assets, tmp_path):
    """A checkpoint folder holds a copy of its run's settings (run_settings.json), which is no unfinished run there:
    evaluating the checkpoint in place writes its results beside it, and resuming it never reads them."""
    run = tmp_path / "run"
    run_pretrain.main(arguments(assets, run, "--max_steps", "2", "--save_steps", "1"))
    checkpoint = run / "checkpoint-1"
    assert (checkpoint / "run_settings.json").exists()
    for _ in range(2):  # and again, in place, recomputed
        run_pretrain.main(evaluation_arguments(assets, checkpoint, checkpoint))
    assert "eval_loss" in json.loads((checkpoint / "eval_results.json").read_text())
