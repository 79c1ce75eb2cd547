"""The pretraining model card: Hub metadata that survives a parse, and a text whose numbers match the run's log."""

import configparser
import glob
import json
import os
import random
import re
import shlex

import numpy as np
import pytest
from helpers import tiny_config
from huggingface_hub import ModelCard

from modeling_prjepa import PrJepaForPreTraining
from prjepa.model_card import (
    MODEL_CODE_REQUIREMENT,
    is_hub_dataset_id,
    parameter_counts,
    pretraining_model_card,
    rank_collapse,
    trajectory,
)
from prjepa.probing import glue_probe
from prjepa.utils import script_parser

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAMBDA_SENTENCE = re.compile(
    r"λ moved from (\S+) \(step (\d+)\) through a minimum of (\S+) \(step (\d+)\) and a maximum of (\S+) "
    r"\(step (\d+)\) to (\S+) \(step (\d+)\)"
)


def synthetic_log_history(num_logs: int = 40, seed: int = 0, objective: str = "hybrid") -> list[dict[str, float]]:
    """Training logs every 10 steps with a random λ, an evaluation every 100 steps, and the Trainer's final summary."""
    rng = random.Random(seed)
    history = []
    for index in range(1, num_logs + 1):
        step = 10 * index
        entry = {
            "step": step,
            "loss": rng.uniform(2, 9),
            "mlm_loss": rng.uniform(2, 9),
            "effective_rank": rng.uniform(1, 30),
        }
        if objective == "hybrid":
            entry.update(
                jepa_loss=rng.uniform(0, 2), jepa_weight=rng.uniform(0.05, 0.95), ema_momentum=0.996 + 4e-6 * step
            )
        else:
            entry["jepa_weight"] = 0.0  # what the trainer logs for the MLM-only baseline
        history.append(entry)
        if step % 100 == 0:
            history.append(
                {
                    "step": step,
                    "eval_loss": rng.uniform(2, 9),
                    "eval_mlm_loss": rng.uniform(2, 9),
                    "eval_perplexity": rng.uniform(10, 1000),
                }
            )
    history.append({"step": 10 * num_logs, "train_loss": 5.0, "train_runtime": 100.0})
    return history


def card_for(objective: str = "hybrid", **overrides) -> ModelCard:
    arguments = dict(
        config=tiny_config(objective=objective),
        log_history=synthetic_log_history(objective=objective),
        hyperparameters={"learning_rate": 5e-4, "per_device_train_batch_size": 32, "max_steps": 400, "bf16": True},
        datasets=["nyu-mll/glue"],
        tokens_seen=1_638_400,
        tokenizer_name="bert-base-uncased",
        model_id="someone/prjepa-tiny",
        license="apache-2.0",
    )
    arguments.update(overrides)
    return pretraining_model_card(**arguments)


def test_metadata_survives_a_parse_round_trip():
    card = card_for()
    parsed = ModelCard(str(card))
    expected = {
        "library_name": "transformers",
        "pipeline_tag": "fill-mask",
        "tags": ["prjepa", "masked-language-modeling", "jepa", "hybrid"],
        "datasets": ["nyu-mll/glue"],
        "license": "apache-2.0",
    }
    assert parsed.data.to_dict() == card.data.to_dict() == expected
    assert parsed.text == card.text
    assert 'AutoModel.from_pretrained("someone/prjepa-tiny", trust_remote_code=True, encoder="target")' in card.text
    assert "--model_name_or_path someone/prjepa-tiny --task_name sst2 mrpc stsb --update_model_card" in card.text


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lambda_summary_matches_the_log(seed):
    history = synthetic_log_history(seed=seed)
    card = card_for(log_history=history)
    logged = [(entry["step"], entry["jepa_weight"]) for entry in history if "jepa_weight" in entry]
    steps, values = np.array([step for step, _ in logged]), np.array([value for _, value in logged])
    expected = [
        values[0],
        steps[0],
        values.min(),
        steps[values.argmin()],
        values.max(),
        steps[values.argmax()],
        values[-1],
        steps[-1],
    ]

    match = LAMBDA_SENTENCE.search(card.text)
    assert match is not None, card.text
    for written, value in zip(match.groups(), expected, strict=True):
        assert float(written) == pytest.approx(value, rel=1e-3)
    assert "learned" in card.text and "0.996 to 1.0" in card.text


def test_a_lambda_that_only_rises_is_described_by_its_ends():
    history = [{"step": step, "loss": 1.0, "jepa_weight": 0.5 + step / 1e4} for step in (5, 10, 15, 20)]
    card = card_for(log_history=history)
    assert "λ moved from 0.5005 (step 5) to 0.502 (step 20)." in card.text
    falls_then_ends_highest = [
        {"step": 1, "jepa_weight": 0.5},
        {"step": 2, "jepa_weight": 0.4},
        {"step": 3, "jepa_weight": 0.7},
    ]
    card = card_for(log_history=falls_then_ends_highest)
    assert "λ moved from 0.5 (step 1) through a minimum of 0.4 (step 2) to 0.7 (step 3)." in card.text


def test_the_model_section_counts_a_single_layer_as_one():
    card = card_for(config=tiny_config(num_hidden_layers=1, predictor_num_hidden_layers=1, num_attention_heads=1))
    assert "32 hidden, 1 layer, 1 head, MLP" in card.text and "16 wide, 1 layer, 1 head," in card.text


def test_the_card_names_the_transformers_the_project_requires():
    card = card_for()
    install_requires = configparser.ConfigParser()
    install_requires.read(os.path.join(REPO, "setup.cfg"))
    required = install_requires["options"]["install_requires"].split()
    assert MODEL_CODE_REQUIREMENT in required and f"needs only PyTorch and `{MODEL_CODE_REQUIREMENT}`" in card.text


def test_data_named_twice_is_listed_once_and_a_truncation_is_stated():
    hyperparameters = {"learning_rate": 5e-4, "max_train_samples": 400}
    card = card_for(datasets=["books/*.txt", "books/*.txt"], hyperparameters=hyperparameters)
    assert card.text.count("- `books/*.txt` (local files)") == 1
    assert "- training truncated to its first 400 sequences" in card.text
    assert "truncated" not in card_for().text


def test_trajectory_takes_the_earliest_step_of_a_tie_and_needs_steps():
    history = [{"step": 1, "x": 0.3}, {"step": 2, "x": 0.1}, {"step": 3, "x": 0.1}, {"step": 4, "x": 0.3}]
    summary = trajectory(history, "x")
    assert (summary.first, summary.minimum, summary.maximum, summary.last) == ((1, 0.3), (2, 0.1), (1, 0.3), (4, 0.3))
    assert trajectory(history, "missing") is None
    with pytest.raises(ValueError, match="'step'"):
        trajectory([{"x": 1.0}], "x")


def test_last_logged_losses_and_eval_perplexity_are_reported():
    history = synthetic_log_history()
    card = card_for(log_history=history)
    last_eval = [entry for entry in history if "eval_perplexity" in entry][-1]
    row = re.search(r"\| `eval_perplexity` \| (\S+) \| (\d+) \|", card.text)
    assert float(row.group(1)) == pytest.approx(last_eval["eval_perplexity"], rel=1e-3)
    assert int(row.group(2)) == last_eval["step"]
    last_train = [entry for entry in history if "mlm_loss" in entry][-1]
    row = re.search(r"\| `mlm_loss` \| (\S+) \| (\d+) \|", card.text)
    assert float(row.group(1)) == pytest.approx(last_train["mlm_loss"], rel=1e-3)


def test_mlm_objective_omits_lambda_and_the_target_encoder():
    card = card_for("mlm")
    assert card.data.tags == ["prjepa", "masked-language-modeling", "mlm-only"]
    for hybrid_only in ("λ", "EMA", "## Objective", 'encoder="target"', "predictor"):
        assert hybrid_only not in card.text
    assert "| weights file | `model.safetensors` holds the encoder and the MLM head |" in card.text
    assert "the EMA target encoder (a second copy of the encoder), the predictor" in card_for().text


def test_fixed_weighting_states_its_lambda_and_uncertainty_its_loss():
    card = card_for(config=tiny_config(loss_weighting="fixed", jepa_weight=0.3))
    assert "L = λ·L_JEPA + (1 − λ)·L_MLM with λ fixed at 0.3." in card.text
    assert LAMBDA_SENTENCE.search(card.text) is None
    card = card_for(config=tiny_config(loss_weighting="uncertainty"))
    assert "Kendall" in card.text and "L = λ·L_JEPA" not in card.text and LAMBDA_SENTENCE.search(card.text)


def test_the_card_names_how_the_jepa_targets_are_normalised():
    assert "last hidden states, each LayerNorm-ed without affine parameters." in card_for().text
    instance = card_for(config=tiny_config(jepa_target_norm="instance")).text
    assert "each feature standardised over its sequence's real tokens (instance norm)." in instance
    assert "LayerNorm-ed" not in instance


def rank_log(ranks: list[float], first_step: int = 10) -> list[dict[str, float]]:
    """Training logs every 10 steps with these effective ranks, an evaluation entry after every fifth."""
    history = []
    for index, rank in enumerate(ranks):
        history.append({"step": first_step + 10 * index, "loss": 3.0, "effective_rank": rank})
        if index % 5 == 4:
            history.append({"step": first_step + 10 * index, "eval_loss": 3.0})
    return history


def test_rank_collapse_needs_ten_low_logs_in_a_row():
    assert rank_collapse(rank_log([20.0] + [9.0] * 9 + [11.0] + [9.0] * 9)) is None  # 10.0 is half of 20
    collapse = rank_collapse(rank_log([20.0, 18.0] + [9.0] * 4 + [4.0] + [9.5] * 5))
    assert collapse is not None
    assert "(20 at step 10) for 10 logs in a row by step 120, and fell to 4 (step 70;" in collapse
    assert "rose back" not in collapse
    recovered = rank_collapse(rank_log([20.0] + [9.0] * 10 + [10.0, 15.0]))
    assert recovered.endswith("`effective_rank`). It rose back to 15 by the last log (step 130).")
    assert rank_collapse(rank_log([20.0] + [9.0] * 10 + [15.0, 9.5])).endswith("`effective_rank`).")
    assert rank_collapse([{"step": 1, "loss": 1.0}]) is None


@pytest.mark.parametrize(
    "run, collapsed_by",
    [("seed-2/pretrain-hybrid", 320), ("seed-0/pretrain-hybrid", None), ("seed-2/pretrain-mlm", None)],
)
def test_rank_collapse_on_the_runs_at_1e_3(run, collapsed_by):
    """Seed 2's hybrid run collapsed (rank 27 → 6–9 from step 310 on); seed 0's did not, and the MLM-only run's dip to
    7.3 on the unigram plateau lasted a few logs."""
    with open(os.path.join(REPO, "results", "cpu-lr1e-3", run, "trainer_state.json")) as file:
        collapse = rank_collapse(json.load(file)["log_history"])
    assert (collapse is None) == (collapsed_by is None)
    if collapsed_by is not None:
        assert f"in a row by step {collapsed_by}," in collapse


@pytest.mark.parametrize(
    "run, collapsed_by, rose_back_to",
    [("lr2e-3/seed-0/pretrain-mlm", 160, None), ("sin-scaled/seed-0/pretrain-mlm", 170, "21.85")],
)
def test_rank_collapse_on_the_plateau_screens_flagged_runs(run, collapsed_by, rose_back_to):
    """The two MLM-only runs of the plateau screen the rule flags: at LR 2e-3 the rank stayed below 10 until the run
    was stopped; with the scaled sin/cos table it dipped for 11 logs and rose back."""
    with open(os.path.join(REPO, "results", "cpu-plateau-screen", run, "trainer_state.json")) as file:
        collapse = rank_collapse(json.load(file)["log_history"])
    assert f"in a row by step {collapsed_by}," in collapse
    assert ("rose back" in collapse) == (rose_back_to is not None)
    if rose_back_to is not None:
        assert f"It rose back to {rose_back_to} by the last log (step 1200)." in collapse


def test_the_rule_flags_exactly_the_committed_runs_the_readme_names():
    """README (Pretraining): the five hybrid runs whose rank fell below 10 for good and two MLM-only runs of the plateau
    screen; no other run committed under results/."""
    flagged = set()
    for path in glob.glob(os.path.join(REPO, "results", "**", "trainer_state.json"), recursive=True):
        with open(path) as file:
            if rank_collapse(json.load(file)["log_history"]) is not None:
                flagged.add(os.path.relpath(os.path.dirname(path), os.path.join(REPO, "results")))
    assert flagged == {
        "cpu-lr1e-3/seed-2/pretrain-hybrid",
        "cpu-collapse-screen/bf16/seed-3/pretrain-hybrid",
        "cpu-collapse-screen/fp32/seed-3/pretrain-hybrid",
        "cpu-collapse-screen/ema0.999/bf16/seed-2/pretrain-hybrid",
        "cpu-collapse-screen/instance-norm/bf16/seed-0/pretrain-hybrid",
        "cpu-plateau-screen/lr2e-3/seed-0/pretrain-mlm",
        "cpu-plateau-screen/sin-scaled/seed-0/pretrain-mlm",
    }


def test_the_card_warns_of_a_collapse():
    assert "**Warning.** The representations collapsed" not in card_for().text
    card = card_for(log_history=rank_log([20.0] + [5.0] * 10))
    assert "**Warning.** The representations collapsed" in card.text


def test_a_single_dataset_string_is_refused():
    with pytest.raises(TypeError, match=r"pass \['nyu-mll/glue'\]"):
        card_for(datasets="nyu-mll/glue")


def test_local_data_stays_out_of_the_metadata(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_corpus").mkdir()  # a local folder whose name alone would pass as a Hub id
    local = ["my_corpus", str(tmp_path / "train.txt"), "data/*.txt", "../shared/data/glue", "wiki.valid.raw"]
    card = card_for(datasets=["nyu-mll/glue", *local, "wikitext"])
    assert ModelCard(str(card)).data.datasets == ["nyu-mll/glue", "wikitext"]
    # Named by their last two parts: the trainer's own directories stay off the published card.
    shown = ["my_corpus", f"{tmp_path.name}/train.txt", "data/*.txt", "data/glue", "wiki.valid.raw"]
    for name in shown:
        assert f"- `{name}` (local files)" in card.text
    assert str(tmp_path.parent) not in card.text
    assert not is_hub_dataset_id("a/b/c") and is_hub_dataset_id("Salesforce/wikitext")


def test_tokens_seen_that_were_not_counted_are_not_published_as_zero():
    assert "Tokens seen: not recorded." in card_for(tokens_seen=0).text
    assert "Tokens seen: 1,638,400." in card_for().text


def test_a_hub_dataset_is_named_with_its_configuration():
    """WikiText-103 and WikiText-2 share a dataset id: the configuration tells the reader which one trained it."""
    card = card_for(datasets=["Salesforce/wikitext"], dataset_config="wikitext-103-raw-v1")
    assert "- `Salesforce/wikitext` (configuration `wikitext-103-raw-v1`)" in card.text
    assert "- `Salesforce/wikitext`\n" in card_for(datasets=["Salesforce/wikitext"]).text


def test_no_license_and_no_hub_data_leave_their_keys_out():
    card = card_for(license=None, datasets=["corpus.jsonl"])
    assert set(ModelCard(str(card)).data.to_dict()) == {"library_name", "pipeline_tag", "tags"}
    assert "license" not in str(card).split("---")[1]


def test_parameter_counts_match_a_built_model():
    config = tiny_config()
    model = PrJepaForPreTraining(config)
    counts = parameter_counts(config)
    assert counts == {
        "encoder": sum(parameter.numel() for parameter in model.prjepa.parameters()),
        "token_embedding": config.vocab_size * config.hidden_size,
        "mlm_head": sum(parameter.numel() for parameter in model.mlm_head.parameters()),
        "predictor": sum(parameter.numel() for parameter in model.predictor.parameters()),
    }
    assert f"{counts['encoder']:,}" in card_for().text
    assert "predictor" not in parameter_counts(tiny_config(objective="mlm"))


def test_a_tied_decoder_is_counted_once_in_the_encoder_not_again_in_the_mlm_head():
    untied, tied = parameter_counts(tiny_config()), parameter_counts(tiny_config(tie_word_embeddings=True))
    model = PrJepaForPreTraining(tiny_config(tie_word_embeddings=True))
    assert model.mlm_head.decoder.weight is model.prjepa.get_input_embeddings().weight
    assert tied["encoder"] == untied["encoder"]
    assert tied["mlm_head"] == untied["mlm_head"] - tied["token_embedding"]
    assert "(decoder tied to the token embedding)" in card_for(config=tiny_config(tie_word_embeddings=True)).text
    assert "decoder tied" not in card_for().text


def test_a_local_tokenizer_folder_is_named_by_its_name_not_its_path(tmp_path):
    folder = tmp_path / "tokenizers" / "bert-base-uncased"
    folder.mkdir(parents=True)
    text = card_for(tokenizer_name=str(folder) + "/").text
    assert "`bert-base-uncased` (a local folder of that name)" in text
    assert str(tmp_path) not in text
    assert "`bert-base-uncased` (vocabulary" in card_for().text


def test_the_evaluation_command_runs_as_written_for_the_hub_model(tmp_path, monkeypatch):
    """The card's probe command names the Hub repo; the probe accepts it as it stands (the card of a Hub model can only
    be updated by pushing it)."""
    monkeypatch.chdir(tmp_path)  # no folder of the repo's name is read instead of the Hub model
    [command] = re.findall(r"```bash\n(python run_glue_probe\.py .*)\n```", card_for().text)
    argv = shlex.split(command)[2:]  # after "python run_glue_probe.py"
    parser = script_parser((glue_probe.ModelArguments, glue_probe.DataArguments, glue_probe.ProbeArguments), None)
    model_args, data_args, probe_args = parser.parse_args_into_dataclasses(args=argv)
    assert model_args.model_name_or_path == ["someone/prjepa-tiny"] and probe_args.update_model_card
    glue_probe.check_card_arguments(model_args, probe_args, data_args)


@pytest.mark.parametrize(
    "models, options, message",
    [
        (
            ["FOLDER"],
            ["--push_to_hub"],
            r"add --update_model_card and --hub_model_id \(the repo for folder '.*model'\)\.$",
        ),
        (["someone/prjepa-tiny"], ["--push_to_hub"], r"pushes the updated model card: add --update_model_card\.$"),
        (
            ["FOLDER"],
            ["--push_to_hub", "--update_model_card"],
            r"folder '.*model' needs the target repo: add --hub_model_id",
        ),
        (["someone/prjepa-tiny"], ["--update_model_card"], r"can only be updated by pushing it: add --push_to_hub"),
        (["FOLDER", "OTHER"], ["--update_model_card", "--push_to_hub", "--hub_model_id", "me/m"], "names one repo"),
        (["FOLDER", "OTHER"], ["--push_to_hub"], r"add --update_model_card\.$"),  # no repo for two: refused next
        (["FOLDER"], ["--update_model_card", "--hub_model_id", "me/m"], r"add --push_to_hub, or drop --hub_model_id"),
    ],
)
def test_card_options_that_cannot_be_carried_out_are_named_with_every_flag_missing(tmp_path, models, options, message):
    folders = {"FOLDER": tmp_path / "model", "OTHER": tmp_path / "other"}
    for folder in folders.values():
        folder.mkdir()
    paths = [str(folders[model]) if model in folders else model for model in models]
    argv = ["--model_name_or_path", *paths, "--task_name", "sst2", *options]
    parser = script_parser((glue_probe.ModelArguments, glue_probe.DataArguments, glue_probe.ProbeArguments), None)
    model_args, data_args, probe_args = parser.parse_args_into_dataclasses(args=argv)
    with pytest.raises(ValueError, match=message):
        glue_probe.check_card_arguments(model_args, probe_args, data_args)
