"""The GLUE linear probe: pooling, feature cache, trained poolers, protocol, data checks, metric and model cards."""

import importlib
import json
import logging
import math
import os
import random
import shutil
import socket
import sys
import types
import warnings
from pathlib import Path

import datasets
import evaluate
import numpy as np
import pytest
import torch
import transformers
from fake_hub import fake_hub_fixture  # noqa: F401
from helpers import WORDS, tiny_config, write_csv, write_glue_folder
from huggingface_hub import HfApi, ModelCard, constants
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef
from transformers import AutoTokenizer, BertModel, RobertaTokenizerFast, ViTConfig, ViTModel

from modeling_prjepa import PrJepaForPreTraining
from prjepa import data_sources, probing
from prjepa.probing import (
    TOKENS,
    AttentionPooler,
    PoolerTraining,
    TokenFeatures,
    WeightedPooler,
    check_joint_pair_length,
    extract_features,
    load_encoder,
    load_task_data,
    pool_tokens,
    train_pooler,
    update_model_card,
)
from prjepa.probing import glue_probe as run_glue_probe
from prjepa.probing import results as results_module
from prjepa.probing.encoders import check_hidden_layer, encoding_fingerprint, weights_fingerprint
from prjepa.probing.features import combine_views, feature_cache_key
from prjepa.probing.linear_probe import cosine_spearman
from prjepa.utils import collapsed_warnings, tokenizer_fingerprint

SHARED_GLUE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "glue")


@pytest.fixture(autouse=True)
def offline_metric(monkeypatch):
    """The Hub's glue metric is unreachable, as on the machines this project is built on."""
    real_load = evaluate.load

    def load(path, *args, **kwargs):
        if path == "glue":
            raise FileNotFoundError("Module 'glue' doesn't exist on the Hugging Face Hub either.")
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(evaluate, "load", load)
    probing.load_glue_metric.cache_clear()
    yield
    probing.load_glue_metric.cache_clear()


@pytest.fixture(scope="module")
def prjepa_dir(tmp_path_factory, tokenizer):
    """A pretraining checkpoint whose EMA target encoder differs from its online encoder."""
    torch.manual_seed(0)
    model = PrJepaForPreTraining(tiny_config())
    with torch.no_grad():
        for parameter in model.prjepa.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    model.update_target_encoder(0.5)
    directory = tmp_path_factory.mktemp("prjepa")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


def sentences(count: int, seed: int, marker: str = "cat") -> tuple[list[str], list[int]]:
    """Random sentences over the tiny vocabulary; label 1 when the marker word occurs."""
    rng = random.Random(seed)
    others = [word for word in WORDS if word != marker]
    texts, labels = [], []
    for index in range(count):
        words = rng.sample(others, rng.randint(2, 7))
        label = index % 2
        if label:
            words.insert(rng.randrange(len(words) + 1), marker)
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


def probe_args(tmp_path, *extra: str) -> list[str]:
    """The tiny models read 64 positions (the probe's default length is 128)."""
    return [
        "--cache_dir",
        str(tmp_path / "cache"),
        "--output_dir",
        str(tmp_path / "out"),
        "--cv_folds",
        "3",
        "--max_seq_length",
        "64",
        *extra,
    ]


# ---------------------------------------------------------------------------------------------------------------------
# Metric


@pytest.mark.parametrize("config", ["cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli"])
def test_local_glue_metric_matches_sklearn_and_scipy(config):
    rng = np.random.default_rng(0)
    if config == "stsb":
        references, predictions = rng.uniform(0, 5, 50), rng.uniform(0, 5, 50)
    else:
        classes = 3 if config == "mnli" else 2
        references, predictions = rng.integers(0, classes, 50), rng.integers(0, classes, 50)
    metric, implementation = probing.load_glue_metric(config)
    scores = metric.compute(predictions=predictions, references=references)

    assert "local" in implementation
    if config == "cola":
        assert scores == pytest.approx({"matthews_correlation": matthews_corrcoef(references, predictions)})
    elif config == "stsb":
        # The metric reads scores as float32, like the Hub's.
        expected = {"pearson": pearsonr(predictions, references)[0], "spearmanr": spearmanr(predictions, references)[0]}
        assert scores == pytest.approx(expected, abs=1e-6)
    elif config in ("mrpc", "qqp"):
        expected = {"accuracy": accuracy_score(references, predictions), "f1": f1_score(references, predictions)}
        assert scores == pytest.approx(expected)
    else:
        assert scores == pytest.approx({"accuracy": accuracy_score(references, predictions)})


def test_local_glue_metric_rejects_unknown_configuration():
    with pytest.raises(KeyError, match="sst2"):
        evaluate.load(probing.LOCAL_GLUE_METRIC, "imdb")


# ---------------------------------------------------------------------------------------------------------------------
# Features and pooling


def test_fixed_poolings_match_per_sentence_computation(prjepa_dir):
    encoder = load_encoder(prjepa_dir)
    texts, _ = sentences(9, seed=1)
    features = extract_features(encoder, texts, ["mean", "max", "cls", TOKENS], batch_size=4)

    for index, text in enumerate(texts):  # one unpadded sentence at a time, in the original order
        hidden = encoder.model(**encoder.tokenizer(text, return_tensors="pt")).last_hidden_state[0].detach()
        torch.testing.assert_close(torch.from_numpy(features["mean"][index]), hidden.mean(0), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(torch.from_numpy(features["max"][index]), hidden.max(0).values, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(torch.from_numpy(features["cls"][index]), hidden[0], atol=1e-5, rtol=1e-5)
        states, mask = features[TOKENS].padded([index])
        assert int(mask.sum()) == len(hidden)
        torch.testing.assert_close(states[0], hidden, atol=1e-5, rtol=1e-5)


def test_a_chosen_layer_is_read_and_cached_apart_from_the_output(prjepa_dir, tmp_path):
    texts, _ = sentences(7, seed=3)
    output = load_encoder(prjepa_dir)
    layers = output.model.config.num_hidden_layers
    extract_features(output, texts, ["mean"], batch_size=3, cache_dir=str(tmp_path))  # cached first: not reused below
    embeddings = extract_features(load_encoder(prjepa_dir, hidden_layer=0), texts, ["mean"], cache_dir=str(tmp_path))
    top = extract_features(load_encoder(prjepa_dir, hidden_layer=layers), texts, [TOKENS], cache_dir=str(tmp_path))

    model = output.model
    for index, text in enumerate(texts):
        ids = output.tokenizer(text, return_tensors="pt")["input_ids"][0]
        positions = model.embeddings.position_embeddings(torch.arange(len(ids))[None])[0]
        expected = (model.embeddings.word_embeddings.weight[ids] + positions).mean(0).detach()
        torch.testing.assert_close(torch.from_numpy(embeddings["mean"][index]), expected, atol=1e-5, rtol=1e-5)
        # The top layer's states are the output itself, after the final LayerNorm, as transformers' models end theirs.
        states, _ = top[TOKENS].padded([index])
        last = model(input_ids=ids[None]).last_hidden_state[0].detach()
        torch.testing.assert_close(states[0], last, atol=1e-5, rtol=1e-5)


def test_a_layer_the_encoder_lacks_is_refused_naming_the_range(prjepa_dir, bert_dir, tmp_path):
    with pytest.raises(ValueError, match="has 2 layers, so give 0 \\(the embeddings\\) to 2"):
        load_encoder(prjepa_dir, hidden_layer=3)
    with pytest.raises(ValueError, match="layers count from 0"):
        run_glue_probe.main(probe_args(tmp_path, "--model_name_or_path", bert_dir, "--hidden_layer", "-1"))


def test_an_encoder_without_hidden_states_has_no_layer_to_read(bert_dir, monkeypatch):
    encoder = load_encoder(bert_dir)
    forward = encoder.model.forward

    def custom_forward(input_ids, attention_mask=None, token_type_ids=None, return_dict=True):
        return forward(input_ids=input_ids, attention_mask=attention_mask, return_dict=return_dict)

    monkeypatch.setattr(encoder.model, "forward", custom_forward)
    with pytest.raises(ValueError, match="returns no hidden_states, so there is no layer 0 to read"):
        check_hidden_layer(encoder.model, encoder.tokenizer, 0, "custom")


def test_joint_pairs_are_one_sequence(bert_dir):
    encoder = load_encoder(bert_dir)
    pairs = [("the cat sat", "on the mat"), ("a dog ran", "in the park and it was")]
    pooled = extract_features(encoder, pairs, ["mean"])["mean"]

    for index, (first, second) in enumerate(pairs):
        inputs = encoder.tokenizer(first, second, return_tensors="pt")
        assert inputs["token_type_ids"].max() == 1
        expected = encoder.model(**inputs).last_hidden_state[0].mean(0).detach()
        torch.testing.assert_close(torch.from_numpy(pooled[index]), expected, atol=1e-5, rtol=1e-5)


def test_token_features_pad_ragged_storage():
    states = np.arange(12, dtype=np.float32).reshape(6, 2)
    tokens = TokenFeatures(states, np.array([1, 3, 2]))
    padded, mask = tokens.padded([2, 0])
    assert padded.tolist() == [[[8, 9], [10, 11]], [[0, 1], [0, 0]]]
    assert mask.tolist() == [[1, 1], [1, 0]]


def test_weighted_pooler_is_softmax_over_real_positions():
    pooler = WeightedPooler(max_positions=6)
    with torch.no_grad():
        pooler.position_logits.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0, 3.0, 1.0]))
    states = torch.randn(1, 5, 3)
    mask = torch.tensor([[1, 1, 1, 0, 0]])

    weights = torch.tensor([0.5, -1.0, 2.0]).exp()
    expected = (weights[:, None] * states[0, :3]).sum(0) / weights.sum()
    torch.testing.assert_close(pooler(states, mask)[0], expected)
    garbage = states.clone()
    garbage[0, 3:] = 100.0
    torch.testing.assert_close(pooler(garbage, mask), pooler(states, mask))


def test_attention_pooler_is_softmax_of_query_over_keys():
    torch.manual_seed(0)
    pooler = AttentionPooler(hidden_size=4)
    states, mask = torch.randn(2, 5, 4), torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])
    torch.testing.assert_close(pooler(states, mask)[1], states[1, :2].mean(0))  # zero query: the plain mean

    with torch.no_grad():
        pooler.query.copy_(torch.randn(4))
    for row, length in enumerate((5, 2)):
        scores = pooler.key(states[row, :length]) @ pooler.query / 2.0
        expected = (scores.softmax(0)[:, None] * states[row, :length]).sum(0)
        torch.testing.assert_close(pooler(states, mask)[row], expected)


def test_weighted_pooler_learns_the_informative_position():
    generator = torch.Generator().manual_seed(0)
    states = torch.randn(400, 6, 4, generator=generator)
    labels = (states[:, 2, 0] > 0).long().numpy()
    tokens = TokenFeatures(states.reshape(-1, 4).numpy(), np.full(400, 6))

    training = PoolerTraining(epochs=20, learning_rate=0.05)
    pooler = train_pooler("weighted", tokens, labels, is_regression=False, max_positions=8, training=training)
    assert int(pooler.position_logits.argmax()) == 2
    assert not any(parameter.requires_grad for parameter in pooler.parameters())
    # Pooled in chunks, each padded to its own longest text: rows stay in order and no padding leaks into a text.
    lengths = np.random.default_rng(0).integers(1, 7, size=400)
    ragged = TokenFeatures(
        np.concatenate([states[row, :length].numpy() for row, length in enumerate(lengths)]), lengths
    )
    logits = pooler.position_logits.numpy()
    expected = []
    for row, length in enumerate(lengths):
        weights = np.exp(logits[:length] - logits[:length].max())
        expected.append(weights / weights.sum() @ states[row, :length].numpy())
    np.testing.assert_allclose(pool_tokens(pooler, ragged, batch_size=7), np.stack(expected), rtol=1e-5, atol=1e-6)


def test_attention_pooler_learns_to_find_the_marked_token():
    generator = torch.Generator().manual_seed(0)
    states = torch.randn(400, 5, 4, generator=generator)
    states[:, :, 1] = -2.0
    marked = torch.randint(0, 5, (400,), generator=generator)
    states[torch.arange(400), marked, 1] = 2.0  # feature 1 marks the token whose feature 0 carries the label
    labels = (states[torch.arange(400), marked, 0] > 0).long().numpy()
    tokens = TokenFeatures(states.reshape(-1, 4).numpy(), np.full(400, 5))

    training = PoolerTraining(epochs=20, learning_rate=0.05)
    pooler = train_pooler("attention", tokens, labels, is_regression=False, max_positions=8, training=training)
    weights = (states @ (pooler.key.weight.t() @ pooler.query) / 2.0).softmax(dim=1)
    assert weights[torch.arange(400), marked].mean() > 0.8


# ---------------------------------------------------------------------------------------------------------------------
# Encoders, fingerprints and the cache


def test_cache_is_reused_and_invalidated_when_weights_change(prjepa_dir, tmp_path, monkeypatch):
    texts, _ = sentences(6, seed=2)
    encoder = load_encoder(prjepa_dir)
    first = extract_features(encoder, texts, ["mean", TOKENS], cache_dir=str(tmp_path), name="task-train-sentence")
    assert sorted(os.listdir(tmp_path))[0].startswith("task-train-sentence.mean.")

    def refuse(*args, **kwargs):
        raise AssertionError("the encoder ran although the features were cached")

    monkeypatch.setattr(encoder.model, "forward", refuse)
    cached = extract_features(encoder, texts, ["mean", TOKENS], cache_dir=str(tmp_path), name="task-train-sentence")
    np.testing.assert_array_equal(cached["mean"], first["mean"])
    np.testing.assert_array_equal(cached[TOKENS].states, first[TOKENS].states)
    with pytest.raises(AssertionError, match="cached"):
        extract_features(encoder, texts[:-1], ["mean"], cache_dir=str(tmp_path))  # other texts: another key
    # A tokenizer cutting long texts from the left, or padding there, gives other features: other keys.
    keys = {feature_cache_key(encoder, texts, 4)}
    for setting, value in [("truncation_side", "left"), ("padding_side", "left")]:
        tokenizer = AutoTokenizer.from_pretrained(prjepa_dir, **{setting: value})
        keys.add(feature_cache_key(encoder._replace(tokenizer_fingerprint=encoding_fingerprint(tokenizer)), texts, 4))
    # So does one that gives the model no token_type_ids (a BERT then reads segment 0 for a pair's second text).
    tokenizer = AutoTokenizer.from_pretrained(prjepa_dir, model_input_names=["input_ids", "attention_mask"])
    keys.add(feature_cache_key(encoder._replace(tokenizer_fingerprint=encoding_fingerprint(tokenizer)), texts, 4))
    assert len(keys) == 4
    assert feature_cache_key(encoder, texts, 5) not in keys  # another length cuts long texts elsewhere

    changed = tmp_path / "changed"
    model = PrJepaForPreTraining.from_pretrained(prjepa_dir)
    with torch.no_grad():
        model.prjepa.encoder.norm.bias.add_(1.0)
    model.save_pretrained(changed)
    encoder.tokenizer.save_pretrained(changed)
    reloaded = load_encoder(str(changed))
    assert reloaded.fingerprint != encoder.fingerprint
    fresh = extract_features(reloaded, texts, ["mean"], cache_dir=str(tmp_path), name="task-train-sentence")
    np.testing.assert_allclose(fresh["mean"], first["mean"] + 1.0, atol=1e-5)


def test_the_cache_key_follows_the_model_code_and_the_library_versions(bert_dir, tokenizer, tmp_path, monkeypatch):
    """The same weights run by fixed model code, or by another transformers or torch, give other features: other
    keys."""
    module_file = tmp_path / "patched_bert.py"

    def encoder_of(code: str) -> probing.LoadedEncoder:
        module_file.write_text(f"from transformers import BertModel\n\n\nclass PatchedBert(BertModel):\n{code}")
        spec = importlib.util.spec_from_file_location("patched_bert", module_file)
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, "patched_bert", module)  # as an import leaves it
        spec.loader.exec_module(module)
        model = module.PatchedBert.from_pretrained(bert_dir).eval()
        return probing.LoadedEncoder(model, tokenizer, weights_fingerprint(model), encoding_fingerprint(tokenizer))

    texts, _ = sentences(4, seed=16)
    encoder = encoder_of("    pass\n")
    key = feature_cache_key(encoder, texts, 16)
    assert feature_cache_key(encoder_of("    pass\n"), texts, 16) == key  # the same code loaded again
    fixed = encoder_of("    def forward(self, *args, **kwargs):\n        return super().forward(*args, **kwargs)\n")
    assert fixed.fingerprint == encoder.fingerprint and feature_cache_key(fixed, texts, 16) != key
    for library in (transformers, torch):
        with monkeypatch.context() as patch:
            patch.setattr(library, "__version__", f"{library.__version__}.post1")
            assert feature_cache_key(encoder, texts, 16) != key
    # The first model's class runs the code it was imported with: the file edited since does not change its key.
    assert feature_cache_key(encoder, texts, 16) == key


def test_a_model_class_without_a_source_file_is_refused_by_the_cache(bert_dir, tokenizer, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))  # a notebook's, of no file
    model = BertModel.from_pretrained(bert_dir).eval()
    model.__class__ = type("SessionBert", (BertModel,), {"__module__": "__main__"})
    encoder = probing.LoadedEncoder(model, tokenizer, weights_fingerprint(model), encoding_fingerprint(tokenizer))
    with pytest.raises(ValueError, match="SessionBert has no source file .* without a cache"):
        extract_features(encoder, ["the cat"], cache_dir=str(tmp_path))


def test_target_encoder_and_dtype_change_the_fingerprint(prjepa_dir):
    online, target = load_encoder(prjepa_dir), load_encoder(prjepa_dir, encoder="target")
    bf16 = load_encoder(prjepa_dir, dtype=torch.bfloat16)
    assert len({online.fingerprint, target.fingerprint, bf16.fingerprint}) == 3
    assert online.fingerprint == load_encoder(prjepa_dir).fingerprint
    texts = ["the cat sat on the mat", "a dog ran"]
    assert not np.allclose(extract_features(online, texts)["mean"], extract_features(target, texts)["mean"])
    # The target's features are the checkpoint's EMA encoder's, mean-pooled over the real tokens.
    target_encoder = PrJepaForPreTraining.from_pretrained(prjepa_dir).target_encoder.eval()
    inputs = target.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        states = target_encoder(inputs["input_ids"], inputs["attention_mask"]).last_hidden_state
    mask = inputs["attention_mask"].unsqueeze(-1).float()
    expected = ((states * mask).sum(1) / mask.sum(1)).numpy()
    np.testing.assert_allclose(extract_features(target, texts)["mean"], expected, rtol=1e-5, atol=1e-6)


def test_the_target_encoder_of_an_mlm_only_checkpoint_is_refused_before_its_weights_load(tmp_path, tokenizer):
    PrJepaForPreTraining(tiny_config(objective="mlm")).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    expected = r"--encoder target reads a hybrid pretraining checkpoint's EMA target encoder, but .* was pretrained "
    with pytest.raises(
        ValueError, match=expected + r"MLM-only \(objective 'mlm'\) and holds none\. Use --encoder online"
    ):
        load_encoder(str(tmp_path), encoder="target")


def test_model_that_is_not_a_text_encoder_is_refused(tmp_path, tokenizer, bert_dir):
    config = ViTConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, image_size=8, patch_size=4
    )
    ViTModel(config).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="takes no input_ids: it is not a text encoder"):
        load_encoder(str(tmp_path), tokenizer_name=bert_dir)
    with pytest.raises(ValueError, match="--encoder online"):
        load_encoder(bert_dir, encoder="target")


def test_a_folder_without_tokenizer_files_is_refused_not_read_as_unknown_words(bert_dir, tmp_path):
    """transformers builds a tokenizer of the 5 special tokens from the config alone: every word would be [UNK]."""
    without = tmp_path / "without-tokenizer"
    without.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(os.path.join(bert_dir, name), without)
    with pytest.raises(ValueError, match=r"holds only its 5 special tokens .*Pass the model's tokenizer with --tok"):
        load_encoder(str(without))
    assert (
        load_encoder(str(without), tokenizer_name=bert_dir).tokenizer.get_vocab()
        == load_encoder(bert_dir).tokenizer.get_vocab()
    )
    # A --tokenizer_name folder without them is named as such, not blamed on a missing sentencepiece.
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "notes.txt").write_text("not a tokenizer")
    with pytest.raises(ValueError, match=r"notes' is a folder that holds no tokenizer files .*it holds notes\.txt"):
        load_encoder(str(without), tokenizer_name=str(tmp_path / "notes"))


# ---------------------------------------------------------------------------------------------------------------------
# Data


def test_unknown_task_lists_the_valid_ones():
    with pytest.raises(ValueError, match="choose among .*'cola'.*'wnli'"):
        load_task_data("sst-2")
    # No task named: a custom task, whose refusal names the options missing, not those given.
    with pytest.raises(
        ValueError, match=r"needs --train_file, --validation_file and --text_columns; give --train_file\.$"
    ):
        load_task_data(None, validation_file="validation.csv", text_columns=["sentence"])


def test_custom_file_errors_name_columns_and_rows(tmp_path):
    train = write_csv(tmp_path / "train.csv", {"text": ["a", "b", "c"], "label": ["pos", "neg", "pos"]})
    validation = write_csv(tmp_path / "validation.csv", {"text": ["d", "e"], "label": ["neg", "neutral"]})
    with pytest.raises(ValueError, match=r"'sentence' not found .*columns found: \['text', 'label'\]"):
        load_task_data(None, train_file=train, validation_file=validation, text_columns=["sentence"])
    with pytest.raises(ValueError, match=r"Row 1 of the 'validation' split .* 'neutral', outside the label set .*'e'"):
        load_task_data(None, train_file=train, validation_file=validation, text_columns=["text"])
    # Whole-number training labels are classes; a fractional validation label is a score, not a hidden test label.
    class_ids = write_csv(tmp_path / "train_ids.csv", {"text": ["a", "b", "c"], "label": [0.0, 1.0, 2.0]})
    scores_file = write_csv(tmp_path / "validation_scores.csv", {"text": ["d", "e"], "label": [2.0, 3.4]})
    expected = r"Row 1 of the 'validation' split .* has the score 3\.4, where the training labels are whole numbers, "
    expected += r"read as the classes \['0\.0', '1\.0', '2\.0'\]\. To fit scores, pass --problem_type regression"
    with pytest.raises(ValueError, match=expected):
        load_task_data(None, train_file=class_ids, validation_file=scores_file, text_columns=["text"])
    scores = load_task_data(
        None, train_file=class_ids, validation_file=scores_file, text_columns=["text"], problem_type="regression"
    )
    assert scores.is_regression and scores.labels("validation").tolist() == pytest.approx([2.0, 3.4])
    # Fractional training classes (a classification asked for) make no claim about whole numbers.
    halves = write_csv(tmp_path / "train_halves.csv", {"text": ["a", "b", "c"], "label": [0.5, 1.5, 0.5]})
    score = write_csv(tmp_path / "validation_score.csv", {"text": ["d"], "label": [3.4]})
    with pytest.raises(ValueError, match=r"has label 3\.4, outside the label set \{0: '0\.5', 1: '1\.5'\}"):
        load_task_data(
            None, train_file=halves, validation_file=score, text_columns=["text"], problem_type="classification"
        )
    # A validation file without the label column is named as such, not read as labels of None (as `datasets` reads a
    # column that a file lacks beside another file that has it).
    unlabelled = write_csv(tmp_path / "unlabelled.csv", {"text": ["d", "e"]})
    expected = r"'label' not found in the 'validation' split of 'custom' \(--validation_file .*unlabelled.csv\); "
    with pytest.raises(ValueError, match=expected + r"columns found: \['text'\]\. Name .*--label_column"):
        load_task_data(None, train_file=train, validation_file=unlabelled, text_columns=["text"])
    # A training file of one class is named, not the first validation row of another class.
    one_class = write_csv(tmp_path / "one_class.csv", {"text": ["a", "b", "c"], "label": ["pos"] * 3})
    expected = r"Every training label of the 'train' split .* \(--train_file .*one_class.csv\) is pos, a single class, "
    expected += r"while row 0 of the 'validation' split .* has 'neg': .* needs two or more there. Give a training file"
    with pytest.raises(ValueError, match=expected):
        load_task_data(None, train_file=one_class, validation_file=validation, text_columns=["text"])
    # Class ids in one file and names in the other share no label: said as such, not as pyarrow's parse error.
    ids = write_csv(tmp_path / "ids.csv", {"text": ["a", "b", "c"], "label": [0, 1, 0]})
    expected = r"label types differ between the files: numbers \(int64\) in the 'train' split .*ids.csv\) and text "
    expected += r"\(.*string\) in the 'validation' split .*\. Give both files labels of one type: class names in both"
    with pytest.raises(ValueError, match=expected):
        load_task_data(None, train_file=ids, validation_file=validation, text_columns=["text"])


def test_glue_task_without_training_split_says_how_to_supply_one(tmp_path):
    texts, labels = sentences(8, seed=3)
    columns = {"premise": texts, "hypothesis": texts[::-1], "label": [label * 2 for label in labels]}
    names = ["entailment", "neutral", "contradiction"]
    splits = {"validation_matched": columns, "validation_mismatched": columns}
    glue = write_glue_folder(tmp_path / "glue", "mnli", splits, datasets.ClassLabel(names=names))
    expected = r"no labelled 'train' split .*--train_file .*'premise', 'hypothesis', 'label'"
    with pytest.raises(ValueError, match=expected):
        load_task_data("mnli", glue_path=glue)

    named = dict(columns, label=[names[label] for label in columns["label"]])  # class names are accepted too
    task = load_task_data("mnli", glue_path=glue, train_file=write_csv(tmp_path / "mnli_train.csv", named))
    assert task.labels("train").tolist() == columns["label"]
    assert task.validation_splits == ("validation_matched", "validation_mismatched")
    # A validation file would be loaded and then scored nowhere: refused, naming the splits that are scored.
    mnli_validation = write_csv(tmp_path / "mnli_validation.csv", named)
    with pytest.raises(ValueError, match=r"scored on \['validation_matched', 'validation_mismatched'\].*custom task"):
        load_task_data("mnli", glue_path=glue, train_file=mnli_validation, validation_file=mnli_validation)


def test_a_task_a_local_glue_copy_lacks_is_named_with_the_ways_to_probe_it(tmp_path):
    """A local copy's missing task is no matter of Hub access: the refusal names the Hub and the custom task instead."""
    texts, labels = sentences(8, seed=3)
    splits = {split: {"sentence": texts, "label": labels} for split in ("train", "validation")}
    glue = write_glue_folder(tmp_path / "glue", "sst2", splits, datasets.ClassLabel(names=["negative", "positive"]))
    expected = r"local GLUE copy .* lacks 'qqp': it has no qqp/ folder, so no training or validation split of it .*"
    expected += r"Probe qqp from the Hub \(--glue_path nyu-mll/glue\), or as a custom task .*: no --task_name, with "
    expected += r"--train_file, --validation_file and --text_columns question1 question2\.$"
    with pytest.raises(ValueError, match=expected) as refusal:
        load_task_data("qqp", glue_path=glue)
    assert "Without Hub access" not in str(refusal.value)
    # A task folder the copy's README.md does not list: the copy is named as not laid out like nyu-mll/glue.
    (tmp_path / "glue" / "rte").mkdir()
    expected = (
        r"GLUE task 'rte' from the local copy .*'rte' not found.* laid out like nyu-mll/glue \(a folder of parquet"
    )
    with pytest.raises(ValueError, match=expected) as refusal:
        load_task_data("rte", glue_path=glue)
    assert "Without Hub access" not in str(refusal.value)


def test_a_local_glue_copy_whose_readme_lists_a_task_without_its_folder_names_that_task(tmp_path):
    """`datasets` resolves a copy's README configs when it loads any task, so one listed config whose folder was
    deleted can stop every other task from loading: the refusal names that config and both fixes, not the task asked
    for, which is there."""
    texts, labels = sentences(8, seed=3)
    splits = {split: {"sentence": texts, "label": labels} for split in ("train", "validation")}
    label = datasets.ClassLabel(names=["negative", "positive"])
    write_glue_folder(tmp_path / "glue", "cola", splits, label)
    glue = write_glue_folder(tmp_path / "glue", "sst2", splits, label)
    shutil.rmtree(tmp_path / "glue" / "cola")
    expected = r"task 'sst2' from the local copy .*: its README.md lists cola without a folder of their files, which "
    expected += r"can stop `datasets` from loading any of its tasks .*"
    expected += r"Restore those folders, or remove their entries from the README's `configs`\.$"
    with pytest.raises(ValueError, match=expected):
        load_task_data("sst2", glue_path=glue)


def test_a_local_glue_copy_is_read_as_its_files_are_now(tmp_path):
    """Files replaced at the same path are the task's data from then on, not what `datasets` cached of the old ones
    (the probe and the analysis would otherwise measure the old data, and their check of it see no change); another
    folder of the same name and layout is its own data."""
    texts, labels = sentences(8, seed=5)
    splits = {split: {"sentence": texts, "label": labels} for split in ("train", "validation")}
    glue = write_glue_folder(tmp_path / "glue", "sst2", splits, datasets.ClassLabel(names=["negative", "positive"]))
    before = load_task_data("sst2", glue_path=glue)
    flipped = datasets.Dataset.from_dict({"sentence": texts, "label": [1 - label for label in labels]})
    flipped.cast(before.splits["validation"].features).to_parquet(
        str(tmp_path / "glue" / "sst2" / "validation-00000-of-00001.parquet")
    )
    after = load_task_data("sst2", glue_path=glue)
    assert after.labels("validation").tolist() == [1 - label for label in labels]
    assert after.fingerprint() != before.fingerprint()
    # Another folder of the same name and layout holds its own data, not the first one's.
    fewer = {split: {"sentence": texts[:6], "label": labels[:6]} for split in splits}
    other = write_glue_folder(
        tmp_path / "other" / "glue", "sst2", fewer, datasets.ClassLabel(names=["negative", "positive"])
    )
    assert load_task_data("sst2", glue_path=other).labels("validation").tolist() == labels[:6]


def test_hidden_test_labels_are_refused(tmp_path):
    texts, labels = sentences(6, seed=4)
    splits = {"train": {"sentence": texts, "label": labels}, "validation": {"sentence": texts, "label": [-1] * 6}}
    glue = write_glue_folder(tmp_path / "glue", "sst2", splits, datasets.ClassLabel(names=["negative", "positive"]))
    expected = r"Row 0 of the 'validation' split of 'sst2' has label -1, outside the label set"
    with pytest.raises(ValueError, match=expected):
        load_task_data("sst2", glue_path=glue)


@pytest.mark.skipif(not os.path.isdir(SHARED_GLUE), reason="the offline GLUE mirror (../shared/data/glue) is absent")
def test_offline_glue_mirror_loads_and_names_missing_splits():
    task = load_task_data("rte", glue_path=SHARED_GLUE, max_train_samples=100)
    assert task.label_names == ["entailment", "not_entailment"]
    assert (len(task.labels("train")), task.train_size_before_subsampling) == (100, 2490)
    with pytest.raises(ValueError, match="no labelled 'train' split.*--train_file"):
        load_task_data("qnli", glue_path=SHARED_GLUE)


# ---------------------------------------------------------------------------------------------------------------------
# The protocol, end to end


def test_custom_classification_task_end_to_end(prjepa_dir, bert_dir, tmp_path):
    train_texts, train_labels = sentences(80, seed=5)
    validation_texts, validation_labels = sentences(40, seed=6)
    names = np.array(["other", "feline"])
    train = write_csv(tmp_path / "train.csv", {"review": train_texts, "sentiment": list(names[train_labels])})
    validation_columns = {"review": validation_texts, "sentiment": list(names[validation_labels])}
    validation = write_csv(tmp_path / "validation.csv", validation_columns)
    args = ["--model_name_or_path", prjepa_dir, bert_dir, "--train_file", train, "--validation_file", validation]
    args += ["--text_columns", "review", "--label_column", "sentiment", "--pooling", "mean", "attention"]
    results = run_glue_probe.main(probe_args(tmp_path, *args, "--max_train_samples", "60"))

    task = results["models"][0]["tasks"]["custom"]
    assert (task["train_size"], task["train_size_before_subsampling"]) == (60, 80)
    assert task["majority"]["validation"]["accuracy"] == 0.5
    assert "local" in task["metric_implementation"]
    mean = task["poolings"]["mean"]
    assert mean["feature_dim"] == 32 and mean["regularisation"]["C"] in mean["cv"]["scores"]
    assert mean["scores"]["validation"]["accuracy"] >= 0.9  # a word's presence is linear in mean-pooled features
    assert task["poolings"]["attention"]["scores"]["validation"]["accuracy"] >= 0.9
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["versions"]["evaluate"] == evaluate.__version__ and saved["models"][0]["fingerprint"]
    table = (tmp_path / "out" / "results.md").read_text().splitlines()
    assert table[0] == "| model | pooling | custom acc |" and table[2] == "| majority class |  | 50.0 |"
    assert [row.split(" | ")[:2] for row in table[3:]] == [
        [f"| {model}", pooling] for model in (prjepa_dir, bert_dir) for pooling in ("mean", "attention")
    ]

    # Finished results are never replaced unasked; the refusal comes before any model or data loads.
    stamps = {path: path.stat().st_mtime_ns for path in (tmp_path / "out").iterdir()}
    other_arguments = (
        r"already holds results \(results.json, results.md\), with other arguments "
        r"\(max_train_samples, model_name_or_path\)"
    )
    with pytest.raises(ValueError, match=rf"{other_arguments}.*--overwrite_output_dir"):
        run_glue_probe.main(probe_args(tmp_path, "--model_name_or_path", str(tmp_path / "no-such-model"), *args[3:]))
    # Rerunning the finished probe is a no-op that says so and returns its results.
    assert run_glue_probe.main(probe_args(tmp_path, *args, "--max_train_samples", "60")) == saved
    # So is naming the same models and files otherwise: relative to the working directory, a folder with a slash.
    respelled = [os.path.relpath(prjepa_dir), str(bert_dir) + "/", "--train_file", os.path.relpath(train)]
    respelled = ["--model_name_or_path", *respelled, *args[args.index("--validation_file") :]]
    assert run_glue_probe.main(probe_args(tmp_path, *respelled, "--max_train_samples", "60")) == saved
    assert stamps == {path: path.stat().st_mtime_ns for path in (tmp_path / "out").iterdir()}
    # Data replaced at the same path are other data: refused, as another encoder would be.
    write_csv(
        tmp_path / "validation.csv",
        {**validation_columns, "sentiment": list(names[[1 - label for label in validation_labels]])},
    )
    with pytest.raises(ValueError, match=r"measured on other data for custom .*--overwrite_output_dir"):
        run_glue_probe.main(probe_args(tmp_path, *args, "--max_train_samples", "60"))
    assert stamps == {path: path.stat().st_mtime_ns for path in (tmp_path / "out").iterdir()}


def test_regularisation_choice_ignores_validation_labels(prjepa_dir, tmp_path):
    texts, labels = sentences(60, seed=7)
    validation_texts, validation_labels = sentences(30, seed=8)
    train = write_csv(tmp_path / "train.csv", {"text": texts, "label": labels})
    permuted = list(np.random.default_rng(0).permutation(validation_labels))
    outcomes = []
    for name, truth in (("true", validation_labels), ("permuted", permuted)):
        validation = write_csv(tmp_path / f"{name}.csv", {"text": validation_texts, "label": truth})
        args = ["--model_name_or_path", prjepa_dir, "--train_file", train, "--validation_file", validation]
        # The second run replaces the first's results, as asked.
        results = run_glue_probe.main(probe_args(tmp_path, *args, "--text_columns", "text", "--overwrite_output_dir"))
        outcomes.append(results["models"][0]["tasks"]["custom"]["poolings"]["mean"])

    assert outcomes[0]["regularisation"] == outcomes[1]["regularisation"]
    assert outcomes[0]["cv"] == outcomes[1]["cv"]
    assert outcomes[0]["scores"] != outcomes[1]["scores"]


def test_trained_poolers_choose_their_regularisation_on_rows_they_were_not_trained_on(
    prjepa_dir, tmp_path, monkeypatch
):
    """Nothing predicts random labels, so the chosen C's cross-validation accuracy must stay at chance. A pooler trained
    on every training row first (128-dimensional token states fit 600 random labels) made it 0.66-0.69."""
    count, rng = 600, np.random.default_rng(0)
    labels = rng.integers(0, 2, count)
    lengths = rng.integers(3, 20, count)
    tokens = TokenFeatures(rng.standard_normal((lengths.sum(), 128)).astype(np.float32), lengths)
    monkeypatch.setattr(run_glue_probe, "extract_task_features", lambda *args, **kwargs: [{TOKENS: tokens}])
    texts, _ = sentences(count, seed=17)
    data = write_csv(tmp_path / "data.csv", {"text": texts, "label": labels.tolist()})
    args = ["--model_name_or_path", prjepa_dir, "--train_file", data, "--validation_file", data]
    args = probe_args(
        tmp_path, *args, "--text_columns", "text", "--pooling", "weighted", "attention", "--cv_folds", "5"
    )
    results = run_glue_probe.main(args)

    majority = max(labels.mean(), 1 - labels.mean())
    chance = majority + 2 * np.sqrt(majority * (1 - majority) / count)
    for pooling, outcome in results["models"][0]["tasks"]["custom"]["poolings"].items():
        assert outcome["cv"]["scores"][outcome["regularisation"]["C"]] <= chance, pooling
    # Results of the older protocol, which records no per-fold poolers, are not reused as this one's.
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    del saved["models"][0]["tasks"]["custom"]["poolings"]["attention"]["cv"]["poolers_trained_per_fold"]
    (tmp_path / "out" / "results.json").write_text(json.dumps(saved))
    expected = rf"regularisation for the attention pooling of {prjepa_dir} was chosen by cross-validation on rows"
    with pytest.raises(ValueError, match=rf"{expected} .*--overwrite_output_dir"):
        run_glue_probe.main(args)


def card_entries(model_dir: str) -> set[tuple[str, str, str]]:
    """(task, metric, probe) of every model-index entry on the card in `model_dir`."""
    card = ModelCard.load(os.path.join(model_dir, "README.md"))
    return {(result.dataset_config, result.metric_type, result.metric_config) for result in card.data.eval_results}


@pytest.mark.filterwarnings("ignore:An input array is constant")  # [CLS] at layer 0 is one vector (below)
def test_plain_bert_on_a_glue_pair_regression_task(bert_dir, tmp_path):
    bert_dir = str(shutil.copytree(bert_dir, tmp_path / "bert"))  # its card is updated: a copy of the shared model
    rng = np.random.default_rng(9)
    firsts, _ = sentences(60, seed=9)
    seconds, _ = sentences(60, seed=10)
    splits = {
        split: {"sentence1": firsts[rows], "sentence2": seconds[rows], "label": rng.uniform(0, 5, 30).tolist()}
        for split, rows in (("train", slice(0, 30)), ("validation", slice(30, 60)))
    }
    glue = write_glue_folder(tmp_path / "glue", "stsb", splits, datasets.Value("float32"))
    args = ["--model_name_or_path", bert_dir, "--task_name", "stsb", "--glue_path", glue]
    args += ["--pooling", "cls", "weighted"]
    results = run_glue_probe.main(probe_args(tmp_path, *args, "--update_model_card"))

    task = results["models"][0]["tasks"]["stsb"]
    assert "majority" not in task
    assert task["poolings"]["cls"]["feature_dim"] == 4 * 16  # [u, v, |u - v|, u * v]
    assert set(task["poolings"]["weighted"]["scores"]["validation"]) == {"pearson", "spearmanr", "cosine_spearmanr"}
    # The features' own similarity: cosine of each validation pair's two sentences against its score.
    encoder = load_encoder(bert_dir)
    first, second = (
        extract_features(encoder, splits["validation"][column], ["cls"])["cls"] for column in ("sentence1", "sentence2")
    )
    first, second = first.astype(np.float64), second.astype(np.float64)  # float32 cosines of near-parallel vectors tie
    cosines = (first * second).sum(1) / np.linalg.norm(first, axis=1) / np.linalg.norm(second, axis=1)
    expected = spearmanr(cosines, splits["validation"]["label"]).statistic
    assert task["poolings"]["cls"]["scores"]["validation"]["cosine_spearmanr"] == pytest.approx(expected, abs=1e-6)
    assert "alpha" in task["poolings"]["cls"]["regularisation"]
    entries = card_entries(bert_dir)
    assert ("stsb", "spearmanr", "linear probe, weighted pooling") in entries and len(entries) == 4

    args = [*args[:-3], "--pooling", "cls", "--hidden_layer", "1", "--output_dir", str(tmp_path / "layer")]
    layered = run_glue_probe.main(probe_args(tmp_path, *args, "--update_model_card"))  # same feature cache
    assert layered["models"][0]["tasks"]["stsb"]["poolings"]["cls"]["scores"] != task["poolings"]["cls"]["scores"]
    assert f"| {bert_dir} (layer 1) | cls |" in (tmp_path / "layer" / "results.md").read_text()
    entries = card_entries(bert_dir)
    assert {
        ("stsb", "spearmanr", "linear probe, cls pooling"),
        ("stsb", "spearmanr", "linear probe, cls pooling, hidden layer 1"),
    } <= entries

    # A probe trained on part of the training split says so, beside (not over) the entry of the whole split.
    base = args[:-6]  # the model, task and data
    subset = [*base, "--pooling", "cls", "--max_train_samples", "20", "--output_dir", str(tmp_path / "subset")]
    run_glue_probe.main(probe_args(tmp_path, *subset, "--update_model_card"))
    entries = card_entries(bert_dir)
    assert {
        ("stsb", "spearmanr", "linear probe, cls pooling"),
        ("stsb", "spearmanr", "linear probe, cls pooling, trained on 20 of 30 examples"),
    } <= entries
    # BERT's embedding layer gives [CLS] the same vector in every sentence: its correlations are undefined, and the
    # card gets no entry for them (YAML's .nan), while the results keep them; nor keeps an earlier value under that
    # name.
    earlier = probing.glue_eval_result(
        "stsb", "validation", "spearmanr", 0.5, "linear probe, cls pooling, hidden layer 0"
    )
    update_model_card(bert_dir, [earlier])
    constant = [*base, "--pooling", "cls", "--hidden_layer", "0", "--output_dir", str(tmp_path / "constant")]
    scores = run_glue_probe.main(probe_args(tmp_path, *constant, "--update_model_card"))["models"][0]["tasks"]["stsb"]
    assert math.isnan(scores["poolings"]["cls"]["scores"]["validation"]["spearmanr"])
    assert not any("hidden layer 0" in probe for _, _, probe in card_entries(bert_dir))
    assert ".nan" not in (Path(bert_dir) / "README.md").read_text()


def test_model_card_update_keeps_other_content(tmp_path):
    (tmp_path / "README.md").write_text(
        "---\nlicense: apache-2.0\nmodel-index:\n- name: mine\n  results:\n  - task: {type: fill-mask}\n"
        "    dataset: {name: Wiki, type: wikitext}\n    metrics:\n    - {type: perplexity, value: 12.5}\n---\n\n"
        "# Mine\n\nHand-written text.\n"
    )
    for value in (0.61, 0.64):
        result = probing.glue_eval_result("rte", "validation", "accuracy", value, "linear probe, mean pooling")
        update_model_card(str(tmp_path), [result])

    card = ModelCard.load(tmp_path / "README.md")
    assert "Hand-written text." in card.text and card.data.license == "apache-2.0"
    values = [(result.metric_type, result.metric_value) for result in card.data.eval_results]
    assert values == [("perplexity", 12.5), ("accuracy", 0.64)]


def test_hub_model_is_probed_and_its_card_pushed(fake_hub, bert_dir, tmp_path, monkeypatch):
    repo_id = HfApi().create_repo("prjepa-tests/tiny-bert").repo_id
    (tmp_path / "upload").mkdir()
    for name in os.listdir(bert_dir):
        (tmp_path / "upload" / name).write_bytes(open(os.path.join(bert_dir, name), "rb").read())
    (tmp_path / "upload" / "README.md").write_text("---\nlicense: mit\n---\n\n# Tiny BERT\n\nKept as written.\n")
    HfApi().upload_folder(repo_id=repo_id, folder_path=tmp_path / "upload")
    texts, labels = sentences(40, seed=11)
    splits = {
        "train": {"sentence1": texts[:30], "sentence2": texts[10:40], "label": labels[:30]},
        "validation": {"sentence1": texts[30:], "sentence2": texts[:10], "label": labels[30:]},
    }
    glue = write_glue_folder(tmp_path / "glue", "rte", splits, datasets.ClassLabel(names=["entailment", "other"]))

    args = ["--model_name_or_path", repo_id, "--task_name", "rte", "--glue_path", glue, "--pair_encoding", "joint"]
    # A push that fails loses no result, and the rerun, which finds them finished, pushes the card.
    with monkeypatch.context() as patch:

        def offline(*args, **kwargs):
            raise OSError("no network")

        patch.setattr(ModelCard, "push_to_hub", offline)
        with pytest.raises(OSError, match="no network"):
            run_glue_probe.main(probe_args(tmp_path, *args, "--update_model_card", "--push_to_hub"))
    assert (tmp_path / "out" / "results.json").exists() and not ModelCard.load(repo_id).data.eval_results
    results = run_glue_probe.main(probe_args(tmp_path, *args, "--update_model_card", "--push_to_hub"))

    card = ModelCard.load(repo_id)
    assert "Kept as written." in card.text and card.data.license == "mit"
    [entry] = card.data.eval_results
    accuracy = results["models"][0]["tasks"]["rte"]["poolings"]["mean"]["scores"]["validation"]["accuracy"]
    assert (entry.dataset_type, entry.dataset_config, entry.dataset_split) == ("glue", "rte", "validation")
    assert (entry.metric_type, entry.metric_value) == ("accuracy", round(accuracy, 4))
    assert entry.metric_config == "linear probe, mean pooling, joint pair encoding"

    # The weights of an older commit are not main's, whose card the scores would go to: refused before any work.
    revision = ["--revision", fake_hub.commits(repo_id)[0], "--output_dir", str(tmp_path / "revision")]
    with pytest.raises(ValueError, match="--revision .* drop --update_model_card"):
        run_glue_probe.main(probe_args(tmp_path, *args, "--update_model_card", "--push_to_hub", *revision))
    assert not (tmp_path / "revision").exists() and ModelCard.load(repo_id).data.eval_results == [entry]

    # A local copy pushed to the repo with --hub_model_id: merged into the repo's card, whose text stays; the folder's
    # own card (created, as it had none) gets the same entries.
    args[1] = str(tmp_path / "upload")
    (tmp_path / "upload" / "README.md").unlink()
    local = ["--update_model_card", "--push_to_hub", "--hub_model_id", repo_id, "--output_dir", str(tmp_path / "local")]
    run_glue_probe.main(probe_args(tmp_path, *args, *local))
    card = ModelCard.load(repo_id)
    assert "Kept as written." in card.text and len(card.data.eval_results) == 1
    assert ModelCard.load(tmp_path / "upload" / "README.md").data.eval_results[0].metric_type == "accuracy"


def test_a_revision_that_pins_no_model_is_refused_and_the_folders_it_leaves_are_named(
    bert_dir, tmp_path, monkeypatch, caplog
):
    """A folder has one version: --revision pins only Hub models, and pinning nothing at all is refused at once."""
    monkeypatch.setattr(run_glue_probe.TaskDataArguments, "load_tasks", lambda *a, **k: pytest.fail("data loaded"))
    args = ["--task_name", "sst2", "--revision", "v1.0"]
    expected = r"--revision v1.0 names a .* of a Hub repo, but every --model_name_or_path is a local folder \(.*bert"
    with pytest.raises(ValueError, match=expected + r".*\), read as it is: drop --revision"):
        run_glue_probe.main(probe_args(tmp_path, "--model_name_or_path", bert_dir, *args))

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(run_glue_probe.TaskDataArguments, "load_tasks", stop)
    with caplog.at_level(logging.WARNING), pytest.raises(Stop):
        run_glue_probe.main(probe_args(tmp_path, "--model_name_or_path", "prjepa-tests/on-the-hub", bert_dir, *args))
    assert f"--revision v1.0 applies to the Hub models only; the local folders {bert_dir} are read as they are" in (
        caplog.text
    )


def test_a_revision_loads_that_commit_of_the_model_and_the_named_tokenizer_as_it_is(fake_hub, bert_dir, tmp_path):
    api = HfApi()
    model_repo = api.create_repo("prjepa-tests/bert-revisions").repo_id
    tokenizer_repo = api.create_repo("prjepa-tests/its-tokenizer").repo_id
    api.upload_folder(repo_id=model_repo, folder_path=bert_dir, allow_patterns=["*.json", "*.safetensors", "*.txt"])
    first = fake_hub.commits(model_repo)[-1]
    retrained = BertModel.from_pretrained(bert_dir)
    torch.nn.init.normal_(retrained.embeddings.word_embeddings.weight)
    retrained.save_pretrained(tmp_path / "retrained")
    api.upload_folder(repo_id=model_repo, folder_path=tmp_path / "retrained")
    api.upload_folder(repo_id=tokenizer_repo, folder_path=bert_dir, allow_patterns=["*token*", "vocab.txt"])

    # The revision names the model's commit, which the tokenizer's own repo does not have.
    encoder = probing.load_encoder(model_repo, tokenizer_name=tokenizer_repo, revision=first)
    assert encoder.fingerprint == weights_fingerprint(BertModel.from_pretrained(bert_dir).eval())
    assert encoder.fingerprint != probing.load_encoder(model_repo, tokenizer_name=tokenizer_repo).fingerprint
    assert encoder.tokenizer_fingerprint == tokenizer_fingerprint(AutoTokenizer.from_pretrained(bert_dir))


def test_repeated_library_warnings_become_one_line_with_the_count(caplog):
    from sklearn.exceptions import ConvergenceWarning

    logger = logging.getLogger("collapse-test")
    with caplog.at_level(logging.WARNING, logger="collapse-test"):
        with collapsed_warnings(logger, "C grid search"):
            for fold in range(7):
                warnings.warn(f"lbfgs failed to converge (fold {fold})", ConvergenceWarning, stacklevel=2)
            warnings.warn("another kind", UserWarning, stacklevel=2)
            warnings.warn("", RuntimeWarning, stacklevel=2)  # an empty message, as some libraries raise
    assert sorted(record.getMessage() for record in caplog.records) == [
        "C grid search: 1 × RuntimeWarning (first: )",
        "C grid search: 1 × UserWarning (first: another kind)",
        "C grid search: 7 × ConvergenceWarning (first: lbfgs failed to converge (fold 0))",
    ]


def test_an_encoder_with_missing_weights_is_refused_naming_them(bert_dir, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    partial = tmp_path / "partial"
    shutil.copytree(bert_dir, partial)
    weights = load_file(partial / "model.safetensors")
    names = [name for name in weights if "layer.1.attention.self.query" in name or name.startswith("pooler.")]
    save_file({name: value for name, value in weights.items() if name not in names}, partial / "model.safetensors")
    with pytest.raises(
        ValueError, match=r"leaves 2 encoder weights missing \(encoder\.layer\.1\.attention\.self\.query"
    ):
        load_encoder(str(partial))
    # Without its pooler head alone, the encoder is whole: the probe reads hidden states, not the pooler.
    weights_without_pooler = {name: value for name, value in weights.items() if not name.startswith("pooler.")}
    save_file(weights_without_pooler, partial / "model.safetensors")
    texts = ["the cat sat on the mat", "a dog ran"]
    expected = extract_features(load_encoder(bert_dir), texts, ["mean"])["mean"]
    np.testing.assert_array_equal(extract_features(load_encoder(str(partial)), texts, ["mean"])["mean"], expected)


def test_every_model_is_validated_before_any_feature_is_extracted(prjepa_dir, bert_dir, tmp_path, monkeypatch):
    texts, labels = sentences(40, seed=9)
    train = write_csv(tmp_path / "train.csv", {"text": texts, "label": labels})
    validation = write_csv(tmp_path / "validation.csv", {"text": texts[:20], "label": labels[:20]})
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text(open(os.path.join(bert_dir, "config.json")).read())  # config, no weights

    monkeypatch.setattr(run_glue_probe, "extract_task_features", lambda *a, **k: pytest.fail("features extracted"))
    args = ["--model_name_or_path", prjepa_dir, str(partial), "--train_file", train, "--validation_file", validation]
    args += ["--text_columns", "text"]
    with pytest.raises((OSError, ValueError), match="partial"):
        run_glue_probe.main(probe_args(tmp_path, *args))
    assert not (tmp_path / "out" / "results.json").exists()


def test_results_of_weights_trained_again_are_not_reused(prjepa_dir, tmp_path):
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(prjepa_dir, checkpoint)
    texts, labels = sentences(30, seed=3)
    data = write_csv(tmp_path / "data.csv", {"text": texts, "label": labels})
    args = probe_args(
        tmp_path, "--model_name_or_path", str(checkpoint), "--train_file", data, "--validation_file", data
    )
    args += ["--text_columns", "text"]
    run_glue_probe.main(args)
    model = PrJepaForPreTraining.from_pretrained(checkpoint)
    with torch.no_grad():
        model.prjepa.embeddings.word_embeddings.weight.add_(1.0)
    model.save_pretrained(checkpoint)
    with pytest.raises(ValueError, match=rf"for other weights of {checkpoint} .*--overwrite_output_dir"):
        run_glue_probe.main(args)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--cv_folds", "1"], "--cv_folds 1: cross-validation needs at least 2 folds"),
        (["--batch_size", "0"], "--batch_size 0 must be at least 1"),
        (["--c_grid", "0"], r"--c_grid \[0.0\] must hold at least one value, all positive"),
        (["--alpha_grid", "10", "nan"], r"--alpha_grid \[10.0, nan\] must hold .* all positive and finite"),
        (["--seed", "-1"], r"--seed -1: the generators it seeds take a seed from 0 to 2\*\*32 - 1"),
        (["--pooler_learning_rate", "0"], "--pooler_learning_rate 0.0 must be positive"),
        (["--pooler_weight_decay", "-0.1"], "--pooler_weight_decay -0.1 must be 0 or more"),
        (["--pooling", "mean", "max", "mean"], "--pooling names 'mean' more than once"),
        (["--device", "gpu"], "--device 'gpu' is not a device torch knows"),
        (["--max_seq_length", "2"], "cannot hold a token"),
        (["--text_columns", "text", "text", "--pair_encoding", "joint", "--max_seq_length", "4"], "of each text of"),
        (
            ["--max_seq_length", "65"],
            r"--max_seq_length 65 is longer than .* reads \(positions 64\): pass --max_seq_le",
        ),
        (["--label_column", "hidden", "--problem_type", "regression"], "Every score of the 'train' split .* is -1.0"),
        (["--max_train_samples", "0"], "leaves no example"),
        (["--label_column", "constant"], r"custom training split holds a single class \(1\)"),
        (["--label_column", "rare"], "class 2 has a single example; 3-fold cross-validation needs at least two"),
        (
            ["--label_column", "score", "--max_train_samples", "5"],
            "training split has 5 examples; 3-fold cross-validation needs at least 6 .*fewer --cv_folds",
        ),
    ],
)
def test_impossible_options_and_labels_are_refused_before_any_feature(
    prjepa_dir, tmp_path, monkeypatch, extra, message
):
    texts, labels = sentences(30, seed=4)
    columns = {"text": texts, "label": labels, "constant": [1] * 30, "rare": [0] * 15 + [1] * 14 + [2]}
    columns["hidden"] = [-1.0] * 30  # a test split's scores
    columns["score"] = [index / 7 for index in range(30)]  # fractional: a regression task
    data = write_csv(tmp_path / "data.csv", columns)
    monkeypatch.setattr(run_glue_probe, "extract_task_features", lambda *a, **k: pytest.fail("features extracted"))
    args = [
        "--model_name_or_path",
        prjepa_dir,
        "--train_file",
        data,
        "--validation_file",
        data,
        "--text_columns",
        "text",
    ]
    with pytest.raises(ValueError, match=message):
        run_glue_probe.main(probe_args(tmp_path, *args, *extra))
    assert not (tmp_path / "out").exists()


def test_repeats_file_folders_and_card_options_that_would_not_apply_are_refused_before_any_feature(
    prjepa_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr(run_glue_probe, "extract_task_features", lambda *a, **k: pytest.fail("features extracted"))
    (tmp_path / "file").write_text("")
    model = ["--model_name_or_path", prjepa_dir]
    cases = [
        (["--model_name_or_path", prjepa_dir, os.path.relpath(prjepa_dir) + "/"], "--model_name_or_path names .* once"),
        ([*model, "--output_dir", str(tmp_path / "file")], r"--output_dir .*file is a file, not a folder"),
        ([*model, "--cache_dir", str(tmp_path / "file")], r"--cache_dir .*file is a file, not a folder"),
        ([*model, "--output_dir", str(tmp_path / "file" / "a" / "b")], r"--output_dir .*/b lies under .*file, a file"),
        ([*model, "--output_dir", str(tmp_path / "file" / ".." / "out")], r"--output_dir .*/out lies under .*file, a"),
        ([*model, "--output_dir", ""], r"--output_dir is empty: name a folder"),
        ([*model, "--task_name", "all", "sst2"], r"--task_name all names every GLUE task: .*not with \['sst2'\]"),
        ([*model, "--task_name", "sst2", "cola", "sst2"], "--task_name names 'sst2' more than once"),
        # The card would be updated locally and the named repo never touched.
        ([*model, "--update_model_card", "--hub_model_id", "me/x"], "--hub_model_id .*: add --push_to_hub"),
        # A card entry for MRPC whose probe read its first sentences alone.
        ([*model, "--task_name", "mrpc", "--text_columns", "sentence1", "--update_model_card"], "reads --text_col"),
        ([*model, "--task_name", "sst2", "--label_column", "idx", "--update_model_card"], "reads --label_column in"),
        ([*model, "--task_name", "all", "--label_column", "idx", "--update_model_card"], "reads --label_column in"),
    ]
    for extra, message in cases:
        with pytest.raises(ValueError, match=message):
            run_glue_probe.main(probe_args(tmp_path, *extra))
        assert not (tmp_path / "out").exists()


def test_joint_pairs_need_room_for_the_tokenizers_own_special_tokens(tmp_path, tokenizer):
    """BERT wraps a pair in three special tokens, RoBERTa in four: the shortest accepted length keeps a token of each
    text, as the tokenizer itself encodes the pair, and one token less is refused."""
    data = write_csv(tmp_path / "pairs.csv", {"first": ["cat", "dog"], "second": ["dog", "cat"], "label": [0, 1]})
    task = load_task_data(None, train_file=data, validation_file=data, text_columns=["first", "second"])
    letters = {letter: index + 4 for index, letter in enumerate("catdog")}
    roberta = RobertaTokenizerFast(vocab={"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, **letters}, merges=[])
    for pair_tokenizer, shortest in [(tokenizer, 5), (roberta, 6)]:
        check_joint_pair_length(task, shortest, pair_tokenizer)
        ids = pair_tokenizer("cat", "dog", truncation=True, max_length=shortest)["input_ids"]
        first, second = (pair_tokenizer.encode(text, add_special_tokens=False)[0] for text in ("cat", "dog"))
        assert [token for token in ids if token not in pair_tokenizer.all_special_ids] == [first, second]
        with pytest.raises(ValueError, match=rf"--max_seq_length {shortest - 1} .* use at least {shortest}"):
            check_joint_pair_length(task, shortest - 1, pair_tokenizer)


@pytest.mark.parametrize("damage", [b"garbage", b""])
def test_a_damaged_feature_cache_entry_is_named_and_recomputed(bert_dir, tmp_path, caplog, damage):
    encoder = load_encoder(bert_dir)
    texts = ["the cat sat on the mat", "a dog ran", "paris is the capital"]
    expected = extract_features(encoder, texts, ["mean", TOKENS], cache_dir=str(tmp_path))
    for path in tmp_path.iterdir():
        path.write_bytes(damage)
    with caplog.at_level(logging.WARNING):
        again = extract_features(encoder, texts, ["mean", TOKENS], cache_dir=str(tmp_path))
    assert caplog.text.count("is damaged") == 2 and "recomputing it" in caplog.text
    np.testing.assert_array_equal(again["mean"], expected["mean"])
    np.testing.assert_array_equal(again[TOKENS].states, expected[TOKENS].states)
    caplog.clear()
    extract_features(encoder, texts, ["mean", TOKENS], cache_dir=str(tmp_path))  # rewritten whole
    assert "is damaged" not in caplog.text


def test_a_cache_write_that_fails_leaves_no_file_behind(bert_dir, tmp_path, monkeypatch):
    encoder = load_encoder(bert_dir)
    texts = ["the cat sat on the mat", "a dog ran"]
    save = np.save

    def full_disk(path, array):
        save(path, array[:1])  # part written, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        extract_features(encoder, texts, ["mean"], cache_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []  # no temporary file, and no entry a later run would read


def test_pair_features_and_the_cosine_score_from_hand_computed_values():
    first, second = np.array([[1.0, -2.0]], np.float32), np.array([[3.0, 1.0]], np.float32)
    np.testing.assert_array_equal(combine_views([first, second]), [[1, -2, 3, 1, 2, 3, 3, -2]])  # [u, v, |u-v|, u*v]
    np.testing.assert_array_equal(combine_views([first]), first)
    # Cosines of these pairs: 1, 0, −1 (whatever the lengths); scores ranked with them or against them.
    u = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    v = np.array([[2.0, 0.0], [5.0, 0.0], [-1.0, 0.0]])
    assert cosine_spearman(u, v, np.array([5.0, 3.0, 1.0])) == pytest.approx(1.0)
    assert cosine_spearman(u, v, np.array([0.0, 2.0, 4.0])) == pytest.approx(-1.0)
    # Near-parallel float32 features: their cosines (1 − 5e-9·i²) differ by less than float32 resolves.
    nearly = np.array([[1.0, 1e-4 * i] for i in range(5)], np.float32)
    along = np.tile(np.array([[1.0, 0.0]], np.float32), (5, 1))
    assert cosine_spearman(along, nearly, np.arange(5.0)) == pytest.approx(-1.0)


def test_the_probe_standardises_features_so_their_scale_does_not_matter():
    """Standardised first, an L2-penalised probe fits a feature scaled by 1,000 exactly as before; unstandardised,
    the penalty would fall on it 10⁶ times more lightly."""
    rng = np.random.default_rng(5)
    features = rng.standard_normal((80, 5))
    labels = (features[:, 0] + 0.5 * features[:, 1] + 0.5 * rng.standard_normal(80) > 0).astype(int)
    scaled = features * np.array([1000.0, 1, 1, 1, 1])
    probes = [
        probing.fit_linear_probe(x, labels, is_regression=False, grid=[0.01, 1.0], folds=3) for x in (features, scaled)
    ]
    assert probes[0].regularisation == probes[1].regularisation and probes[0].cv_scores == probes[1].cv_scores
    np.testing.assert_allclose(
        probes[0].model.predict_proba(features), probes[1].model.predict_proba(scaled), rtol=1e-6, atol=1e-8
    )


def test_a_class_too_small_for_every_fold_cuts_the_folds_saying_so(caplog):
    rng = np.random.default_rng(0)
    features, labels = rng.standard_normal((20, 4)), np.array([0] * 17 + [1] * 3)
    with caplog.at_level(logging.WARNING):
        probe = probing.fit_linear_probe(features, labels, is_regression=False, grid=[1.0], folds=5)
    assert probe.folds == 3
    assert "smallest class has 3 training examples: 3-fold cross-validation instead of 5-fold" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert probing.fit_linear_probe(features, labels, is_regression=False, grid=[1.0], folds=3).folds == 3
    assert "cross-validation instead" not in caplog.text


def test_a_regression_probe_needs_two_scores_in_every_fold():
    rng = np.random.default_rng(0)
    features, scores = rng.standard_normal((6, 4)), rng.standard_normal(6).astype(np.float32)
    probe = probing.fit_linear_probe(features, scores, is_regression=True, grid=[1.0, 10.0], folds=3)
    assert all(np.isfinite(score) for score in probe.cv_scores.values())
    # Five scores leave a fold with one, whose R² is undefined: every grid value would score NaN.
    with pytest.raises(ValueError, match="has 5 examples; 3-fold cross-validation needs at least 6"):
        probing.fit_linear_probe(features[:5], scores[:5], is_regression=True, grid=[1.0, 10.0], folds=3)


@pytest.mark.parametrize(
    "data, replaced",
    [
        ("validation", "--validation_file"),
        ("train", "--train_file"),
        ("custom", "--train_file and --validation_file"),
    ],
)
def test_card_entries_are_refused_for_data_that_are_not_glue(bert_dir, tmp_path, monkeypatch, data, replaced):
    """Scores of a probe trained or scored on a file would be cited as GLUE's on the card: refused before any work."""
    texts, labels = sentences(30, seed=12)
    columns = {"sentence": texts, "label": labels}
    glue = write_glue_folder(
        tmp_path / "glue", "sst2", {"train": columns, "validation": columns}, datasets.Value("int64")
    )
    mine = write_csv(tmp_path / "mine.csv", columns)
    model = tmp_path / "model"
    shutil.copytree(bert_dir, model)
    sources = {
        "validation": ["--task_name", "sst2", "--glue_path", glue, "--validation_file", mine],
        "train": ["--task_name", "sst2", "--glue_path", glue, "--train_file", mine],
        "custom": ["--train_file", mine, "--validation_file", mine, "--text_columns", "sentence"],
    }
    monkeypatch.setattr(run_glue_probe, "extract_task_features", lambda *a, **k: pytest.fail("features extracted"))
    args = ["--model_name_or_path", str(model), *sources[data], "--update_model_card"]
    with pytest.raises(ValueError, match=rf"reads {replaced} in their place: the scores are not GLUE's"):
        run_glue_probe.main(probe_args(tmp_path, *args))
    assert not (model / "README.md").exists()


def sst2_copy_and_model(tmp_path: Path, bert_dir: str, seed: int) -> tuple[str, Path]:
    """A GLUE copy of 30 sst2 sentences (its folder named by the seed: datasets caches a local copy under its folder
    name and task alone, so another test's sst2 in a folder of the same name would be read instead) and a copy of
    `bert_dir` whose card a test may write."""
    texts, labels = sentences(30, seed=seed)
    columns = {"sentence": texts, "label": labels}
    glue = write_glue_folder(
        tmp_path / f"glue-{seed}", "sst2", {"train": columns, "validation": columns}, datasets.Value("int64")
    )
    model = tmp_path / "model"
    shutil.copytree(bert_dir, model)
    return glue, model


def test_a_card_push_that_could_not_happen_is_refused_before_any_work(fake_hub, bert_dir, tmp_path, monkeypatch):
    """The cards are pushed after the whole probe: a push that could not happen stops the run before anything loads,
    in the probe's terms (no --hub_token option, no output folder to upload), not with the Hub client's retries and
    connection error after the compute."""
    glue, model = sst2_copy_and_model(tmp_path, bert_dir, seed=13)
    monkeypatch.setattr(run_glue_probe.TaskDataArguments, "load_tasks", lambda *a, **k: pytest.fail("data loaded"))
    args = ["--model_name_or_path", str(model), "--task_name", "sst2", "--glue_path", glue, "--update_model_card"]
    args = probe_args(tmp_path, *args, "--push_to_hub", "--hub_model_id", "me/x")
    with socket.socket() as closed:  # a port that nothing listens on once the socket is closed
        closed.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
    with monkeypatch.context() as patch:
        patch.setattr(constants, "ENDPOINT", endpoint)
        expected = (
            rf"needs the Hugging Face Hub \({endpoint}\), which cannot be reached \(.*Error.*\): run where .*drop "
        )
        with pytest.raises(SystemExit, match=expected + r"--push_to_hub .*rerunning this command with --push_to_hub"):
            run_glue_probe.main(args)
    with monkeypatch.context() as patch:
        patch.setattr(constants, "HF_HUB_OFFLINE", True)
        with pytest.raises(SystemExit, match=r"HF_HUB_OFFLINE is set: unset it to push, or drop --push_to_hub"):
            run_glue_probe.main(args)
    monkeypatch.setattr(data_sources, "get_token", lambda: None)
    with pytest.raises(
        SystemExit, match=r"needs a Hugging Face token with write access: run `hf auth login` or set HF_TOKEN\.$"
    ):
        run_glue_probe.main(args)
    assert not (tmp_path / "out").exists() and not (model / "README.md").exists()


def test_a_rerun_that_changes_only_where_results_go_or_how_features_are_computed_reuses_them(
    bert_dir, tmp_path, monkeypatch
):
    """Adding --update_model_card (or another batch size, feature cache or device) to a finished probe's command writes
    the cards from the finished results: neither a refusal nor a refit."""
    glue, model = sst2_copy_and_model(tmp_path, bert_dir, seed=15)
    args = probe_args(tmp_path, "--model_name_or_path", str(model), "--task_name", "sst2", "--glue_path", glue)
    finished = json.loads(json.dumps(run_glue_probe.main(args)))  # as results.json holds it
    assert not (model / "README.md").exists()

    monkeypatch.setattr(run_glue_probe, "extract_task_features", lambda *a, **k: pytest.fail("features extracted"))
    monkeypatch.setattr(run_glue_probe, "fit_linear_probe", lambda *a, **k: pytest.fail("probe refitted"))
    neutral = ["--update_model_card", "--batch_size", "7", "--cache_dir", str(tmp_path / "other"), "--device", "cpu"]
    assert run_glue_probe.main([*args, *neutral]) == finished
    [entry] = ModelCard.load(model / "README.md").data.eval_results
    accuracy = finished["models"][0]["tasks"]["sst2"]["poolings"]["mean"]["scores"]["validation"]["accuracy"]
    assert (entry.dataset_config, entry.metric_type, entry.metric_value) == ("sst2", "accuracy", round(accuracy, 4))


def swap_two_words(model_dir) -> None:
    """Replaces the tokenizer behind `model_dir` by one of the same size that reads "cat" and "dog" the other way."""
    tokenizer_file = os.path.join(model_dir, "tokenizer.json")
    with open(tokenizer_file) as file:
        tokenizer = json.load(file)
    vocabulary = tokenizer["model"]["vocab"]
    vocabulary["cat"], vocabulary["dog"] = vocabulary["dog"], vocabulary["cat"]
    with open(tokenizer_file, "w") as file:
        json.dump(tokenizer, file)


@pytest.mark.parametrize("change", ["tokenizer replaced", "truncation side changed", "tokenizer not recorded"])
def test_results_of_another_tokenizer_are_not_reused(prjepa_dir, tmp_path, change):
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(prjepa_dir, checkpoint)
    texts, labels = sentences(30, seed=3)
    data = write_csv(tmp_path / "data.csv", {"text": texts, "label": labels})
    args = probe_args(tmp_path, "--model_name_or_path", str(checkpoint), "--train_file", data)
    args += ["--validation_file", data, "--text_columns", "text"]
    run_glue_probe.main(args)
    if change == "tokenizer replaced":
        swap_two_words(checkpoint)
        expected = rf"for other tokenizer of {checkpoint} \(trained again or replaced since\?\)"
    elif change == "truncation side changed":  # same vocabulary; long texts now lose their start
        settings = json.loads((checkpoint / "tokenizer_config.json").read_text())
        (checkpoint / "tokenizer_config.json").write_text(json.dumps(settings | {"truncation_side": "left"}))
        expected = rf"for other tokenizer of {checkpoint} \(trained again or replaced since\?\)"
    else:  # results of a version that recorded the weights alone
        results = json.loads((tmp_path / "out" / "results.json").read_text())
        del results["models"][0]["tokenizer_fingerprint"]
        (tmp_path / "out" / "results.json").write_text(json.dumps(results))
        expected = rf"for other tokenizer of {checkpoint} \(not recorded\)"
    with pytest.raises(ValueError, match=rf"{expected}.*--overwrite_output_dir"):
        run_glue_probe.main(args)


def test_a_results_file_of_something_else_is_named_as_such_and_kept(tmp_path):
    (tmp_path / "results.json").write_text('{"accuracy": 0.9}')
    with pytest.raises(ValueError, match=r"holds a results.json that records no arguments: not results of this script"):
        results_module.earlier_results(str(tmp_path), ("results.json", "results.md"), {"seed": 0})
    assert (tmp_path / "results.json").read_text() == '{"accuracy": 0.9}'


@pytest.mark.parametrize("remains", ["results.md alone", "truncated results.json", "results.json alone"])
def test_an_unfinished_run_is_run_again(prjepa_dir, tmp_path, caplog, remains):
    """What a run stopped while writing its results leaves (an older version's writes could leave any of these) is no
    result: the rerun replaces it, saying so, without --overwrite_output_dir."""
    texts, labels = sentences(30, seed=13)
    data = write_csv(tmp_path / "data.csv", {"text": texts, "label": labels})
    args = probe_args(tmp_path, "--model_name_or_path", prjepa_dir, "--train_file", data, "--validation_file", data)
    args += ["--text_columns", "text"]
    finished = run_glue_probe.main(args)
    output = tmp_path / "out"
    if remains == "results.md alone":
        (output / "results.json").unlink()
    elif remains == "truncated results.json":
        (output / "results.json").write_text((output / "results.json").read_text()[:200])
    else:
        (output / "results.md").unlink()

    with caplog.at_level(logging.WARNING):
        rerun = run_glue_probe.main(args)
    assert f"{output} holds an unfinished run" in caplog.text
    scores = [results["models"][0]["tasks"]["custom"]["poolings"]["mean"]["scores"] for results in (finished, rerun)]
    assert scores[0] == scores[1]
    saved = json.loads((output / "results.json").read_text())
    assert saved == json.loads(json.dumps(rerun))  # the JSON's float keys become strings
    assert (output / "results.md").read_text().startswith("| model | pooling | custom acc |")
    assert run_glue_probe.main(args) == saved  # finished now: a no-op


def test_a_run_that_fails_while_writing_leaves_no_truncated_results(prjepa_dir, tmp_path, monkeypatch):
    texts, labels = sentences(30, seed=14)
    data = write_csv(tmp_path / "data.csv", {"text": texts, "label": labels})
    args = probe_args(tmp_path, "--model_name_or_path", prjepa_dir, "--train_file", data, "--validation_file", data)
    args += ["--text_columns", "text"]
    with monkeypatch.context() as patch:
        # A value JSON cannot hold stops the writing of results.json partway.
        patch.setattr(run_glue_probe, "library_versions", lambda *names: {"torch": object()})
        with pytest.raises(TypeError, match="not JSON serializable"):
            run_glue_probe.main(args)
    assert not (tmp_path / "out" / "results.json").exists()
    results = run_glue_probe.main(args)
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == json.loads(json.dumps(results))


def test_an_overwrite_stopped_before_its_json_leaves_no_earlier_json_to_reuse(
    prjepa_dir, tmp_path, monkeypatch, caplog
):
    """--overwrite_output_dir with another probe seed, stopped between its Markdown and its JSON: the first command
    run again measures again, instead of reading the new Markdown beside the old JSON as its finished results."""
    texts, labels = sentences(30, seed=15)
    data = write_csv(tmp_path / "data.csv", {"text": texts, "label": labels})
    args = probe_args(tmp_path, "--model_name_or_path", prjepa_dir, "--train_file", data, "--validation_file", data)
    args += ["--text_columns", "text"]
    run_glue_probe.main(args)
    written = results_module.write_atomically

    def stop_at_the_json(path, content):
        if path.endswith("results.json"):
            raise OSError("No space left on device")
        written(path, content)

    monkeypatch.setattr(results_module, "write_atomically", stop_at_the_json)
    with pytest.raises(OSError, match="No space left"):
        run_glue_probe.main([*args, "--seed", "1", "--overwrite_output_dir"])
    monkeypatch.undo()
    with caplog.at_level(logging.WARNING):
        run_glue_probe.main(args)
    assert f"{tmp_path / 'out'} holds an unfinished run (results.md without results.json)" in caplog.text
