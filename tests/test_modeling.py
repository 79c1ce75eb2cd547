"""The PrJEPA models: numerics against independent computations, the pretraining losses, the EMA target encoder, the
attention implementations, tuple outputs and host reads, save/load through every Auto class, and the errors for bad
input."""

import collections
import json
import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import pretraining_batch, tiny_config
from torch.overrides import TorchFunctionMode
from transformers import (
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
    BertConfig,
    BertModel,
    pipeline,
)

import modeling_prjepa
from configuration_prjepa import PRESETS, PrJepaConfig
from modeling_prjepa import (
    PrJepaForMaskedLM,
    PrJepaForPreTraining,
    PrJepaForSequenceClassification,
    PrJepaModel,
    PrJepaSelfAttention,
    TokenLayout,
    pool_hidden_states,
    sinusoidal_position_table,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_padded_sentence_gives_the_same_vectors_at_real_positions():
    model = PrJepaModel(tiny_config()).eval()
    sentence = torch.randint(5, 40, (1, 10))
    padded = torch.zeros(1, 64, dtype=torch.long)
    padded[0, :10] = sentence
    mask = torch.zeros(1, 64, dtype=torch.long)
    mask[0, :10] = 1
    with torch.no_grad():
        alone = model(sentence).last_hidden_state
        in_padding = model(padded, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(in_padding[:, :10], alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("pooling", ["mean", "max", "cls"])
def test_classifier_pooling_ignores_padding(pooling):
    model = PrJepaForSequenceClassification(tiny_config(classifier_pooling=pooling, num_labels=3)).eval()
    sentence = torch.randint(5, 40, (1, 7))
    padded = torch.cat([sentence, torch.zeros(1, 9, dtype=torch.long)], dim=1)
    mask = (padded != 0).long()
    with torch.no_grad():
        alone = model(sentence).logits
        in_padding = model(padded, attention_mask=mask).logits
    torch.testing.assert_close(in_padding, alone, atol=1e-5, rtol=0)


def test_pooling_a_row_without_real_tokens_gives_zero_and_leaves_the_others():
    states = torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0]])
    for strategy in ("mean", "max"):
        pooled = pool_hidden_states(states, mask, strategy)
        assert torch.equal(pooled[1], torch.zeros(8))
    torch.testing.assert_close(pool_hidden_states(states, mask, "max")[0], states[0, :3].amax(dim=0), rtol=0, atol=0)


def test_hidden_states_run_from_the_embeddings_to_last_hidden_state():
    """As transformers' language models return them: the residual stream before each layer, then the output."""
    model = PrJepaModel(tiny_config()).eval()
    ids, mask = _inputs()
    real = mask.bool()
    with torch.no_grad():
        out = model(ids, mask, output_hidden_states=True)
        embeddings = model.embeddings(ids, None, None, mask)
    assert len(out.hidden_states) == model.config.num_hidden_layers + 1
    assert torch.equal(out.hidden_states[-1], out.last_hidden_state)
    torch.testing.assert_close(out.hidden_states[0][real], embeddings[real], rtol=0, atol=0)
    assert torch.equal(out.hidden_states[0][~real], torch.zeros_like(out.hidden_states[0][~real]))
    assert not torch.allclose(out.hidden_states[1], out.hidden_states[0])


def test_left_and_right_padding_give_the_same_vectors_at_real_positions():
    """Default positions count real tokens, so a left-padded sentence is encoded as the same sentence right-padded;
    right padding keeps positions 0..n-1, bit for bit."""
    model = PrJepaModel(tiny_config()).eval()
    sentence = torch.randint(5, 40, (6,))
    right = torch.cat([sentence, torch.zeros(4, dtype=torch.long)])[None]
    left = torch.cat([torch.zeros(4, dtype=torch.long), sentence])[None]
    right_mask, left_mask = (right != 0).long(), (left != 0).long()
    with torch.no_grad():
        from_right = model(right, attention_mask=right_mask).last_hidden_state
        from_left = model(left, attention_mask=left_mask).last_hidden_state
        explicit = model(right, attention_mask=right_mask, position_ids=torch.arange(10)[None]).last_hidden_state
    torch.testing.assert_close(from_left[:, 4:], from_right[:, :6], atol=1e-5, rtol=0)
    assert torch.equal(from_right, explicit)


@pytest.mark.parametrize("pooling", ["mean", "max", "cls"])
def test_classifier_gives_the_same_logits_for_left_and_right_padding(pooling):
    model = PrJepaForSequenceClassification(tiny_config(classifier_pooling=pooling, num_labels=3)).eval()
    sentences = [torch.randint(5, 40, (length,)) for length in (7, 4)]
    right = torch.stack([F.pad(sentence, (0, 12 - len(sentence))) for sentence in sentences])
    left = torch.stack([F.pad(sentence, (12 - len(sentence), 0)) for sentence in sentences])
    with torch.no_grad():
        from_right = model(right, attention_mask=(right != 0).long()).logits
        from_left = model(left, attention_mask=(left != 0).long()).logits
    torch.testing.assert_close(from_left, from_right, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "labels, num_labels, expected_problem",
    [
        (torch.tensor([0.5, 3.0]), 1, "regression"),
        (torch.tensor([2, 0]), 3, "single_label_classification"),
        (torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]), 3, "multi_label_classification"),
    ],
)
def test_classifier_loss_is_berts_for_each_problem_type(labels, num_labels, expected_problem):
    """What fine-tuning with transformers' run_glue.py relies on: the loss from the labels' kind, as BERT's."""
    model = PrJepaForSequenceClassification(tiny_config(num_labels=num_labels)).eval()
    ids = torch.randint(5, 40, (2, 8))
    output = model(ids, labels=labels)
    logits = output.logits
    expected = {
        "regression": lambda: F.mse_loss(logits.squeeze(-1), labels),
        "single_label_classification": lambda: F.cross_entropy(logits, labels),
        "multi_label_classification": lambda: F.binary_cross_entropy_with_logits(logits, labels),
    }[expected_problem]()
    assert model.config.problem_type == expected_problem
    torch.testing.assert_close(output.loss, expected)


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_attention_matches_plain_softmax_reference(attn_implementation):
    config = tiny_config(attn_implementation=attn_implementation)
    attention = PrJepaSelfAttention(config, hidden_size=32, num_heads=4, layer_index=1).eval()
    hidden = torch.randn(2, 6, 32)
    keep = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], dtype=torch.bool)

    query, key, value = attention.qkv(hidden).split(32, dim=-1)
    heads = lambda tensor: tensor.view(2, 6, 4, 8).transpose(1, 2)  # noqa: E731
    scores = heads(query) @ heads(key).transpose(-1, -2) / math.sqrt(8)
    probabilities = scores.masked_fill(~keep[:, None, None, :], float("-inf")).softmax(-1)
    context = (probabilities @ heads(value)).transpose(1, 2).reshape(2, 6, 32)
    expected = attention.proj(context)

    layout = TokenLayout(keep.long(), batch=2, seq=6)
    actual, weights = attention(layout.unpad(hidden), layout)  # the real tokens only, packed
    torch.testing.assert_close(actual, expected[keep], atol=1e-6, rtol=1e-5)
    if attn_implementation == "sdpa":
        assert weights is None
    else:  # the rows of real queries; a padding query's own row is never read
        real_rows = weights.transpose(1, 2)[keep]
        torch.testing.assert_close(real_rows, probabilities.transpose(1, 2)[keep], atol=1e-6, rtol=0)


def test_packed_batch_matches_each_sequence_alone_in_outputs_and_gradients():
    """Padding anywhere (also inside a row, as in a predictor batch) changes neither the real tokens' outputs nor any
    weight's gradient: the batch equals its sequences encoded one by one, each holding only its real tokens at their
    positions in the batch."""
    model = PrJepaModel(tiny_config())
    ids = torch.randint(5, 40, (3, 9))
    mask = torch.tensor([[1] * 9, [1, 1, 1, 0, 0, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0, 0, 0, 0]])
    weights = torch.randn(3, 9, 32)  # a loss that weighs every real output differently

    # Positions given, as in a predictor batch: by default they would count real tokens only, closing the gap.
    batched = model(ids, attention_mask=mask, position_ids=torch.arange(9).expand(3, -1)).last_hidden_state
    (batched * weights * mask[..., None]).sum().backward()
    batched_grads = {name: parameter.grad.clone() for name, parameter in model.named_parameters()}
    model.zero_grad()
    for row in range(3):
        positions = mask[row].nonzero().T
        alone = model(ids[row, positions[0]][None], position_ids=positions).last_hidden_state
        torch.testing.assert_close(batched[row, positions[0]], alone[0], atol=1e-5, rtol=0)
        (alone[0] * weights[row, positions[0]]).sum().backward()  # gradients accumulate over the rows
    for name, parameter in model.named_parameters():
        torch.testing.assert_close(batched_grads[name], parameter.grad, atol=1e-5, rtol=1e-4, msg=name)
    assert torch.all(batched[mask == 0] == 0)


def test_inputs_embeds_equal_input_ids():
    model = PrJepaModel(tiny_config()).eval()
    ids = torch.randint(5, 40, (2, 7))
    with torch.no_grad():
        from_ids = model(ids).last_hidden_state
        from_embeddings = model(inputs_embeds=model.get_input_embeddings()(ids)).last_hidden_state
    torch.testing.assert_close(from_embeddings, from_ids, atol=0, rtol=0)
    with pytest.raises(ValueError, match="exactly one of input_ids and inputs_embeds"):
        model(ids, inputs_embeds=model.get_input_embeddings()(ids))


def test_sinusoidal_table_formula():
    table = sinusoidal_position_table(50, 8)
    position, i = 7, 2
    frequency = 1 / 10000 ** (2 * i / 8)
    assert table[position, i].item() == pytest.approx(math.sin(position * frequency), abs=1e-6)
    assert table[position, 4 + i].item() == pytest.approx(math.cos(position * frequency), abs=1e-6)
    interleaved = sinusoidal_position_table(50, 8, "interleaved")  # the original's: sin, cos of each frequency
    assert interleaved[position, 2 * i].item() == pytest.approx(math.sin(position * frequency), abs=1e-6)
    assert interleaved[position, 2 * i + 1].item() == pytest.approx(math.cos(position * frequency), abs=1e-6)


def test_the_paper_preset_has_the_originals_table_and_mlm_head_while_saved_configs_keep_theirs():
    paper = PrJepaConfig.from_preset("paper", vocab_size=40, max_position_embeddings=16)
    assert (paper.sinusoidal_layout, paper.mlm_head_layer_norm_eps, paper.layer_norm_eps) == ("interleaved", 1e-5, 1e-6)
    model = PrJepaForPreTraining(paper)
    assert torch.equal(
        model.prjepa.embeddings.position_embeddings.weight, sinusoidal_position_table(16, 512, "interleaved")
    )
    assert model.mlm_head.layer_norm.eps == 1e-5
    # A config saved before these fields existed reads as it was trained: sines then cosines, one eps everywhere.
    saved = tiny_config().to_dict()
    for field in ("sinusoidal_layout", "mlm_head_layer_norm_eps"):
        del saved[field]
    earlier = PrJepaConfig.from_dict(saved)
    assert (earlier.sinusoidal_layout, earlier.mlm_head_layer_norm_eps) == ("halves", earlier.layer_norm_eps)
    with pytest.raises(ValueError, match="sinusoidal_layout must be one of"):
        tiny_config(sinusoidal_layout="alternating")
    # The head's eps follows layer_norm_eps set by a string (run_pretrain's --config_overrides) where it followed it.
    config = tiny_config()
    config.update_from_string("layer_norm_eps=1e-05")
    assert config.mlm_head_layer_norm_eps == 1e-5
    paper.update_from_string("layer_norm_eps=1e-07")
    assert paper.mlm_head_layer_norm_eps == 1e-5
    config.update_from_string("layer_norm_eps=1e-06,mlm_head_layer_norm_eps=1e-04")
    assert (config.layer_norm_eps, config.mlm_head_layer_norm_eps) == (1e-6, 1e-4)


def test_a_config_updated_or_changed_after_construction_is_checked_and_keeps_its_defaults_following():
    # The predictor's head count follows the encoder's as the eps does; a string is checked as the constructor checks.
    config = PrJepaConfig.from_preset("mini")
    config.update_from_string("hidden_size=512,num_attention_heads=8,intermediate_size=2048")
    assert config.predictor_num_attention_heads == 8
    config.update_from_string("num_attention_heads=4,predictor_num_attention_heads=2")
    assert (config.num_attention_heads, config.predictor_num_attention_heads) == (4, 2)
    with pytest.raises(ValueError, match=r"objective must be one of \('hybrid', 'mlm'\), got 'hybird'"):
        config.update_from_string("objective=hybird")
    with pytest.raises(
        ValueError, match=r"'hiden_size' \(did you mean 'hidden_size'\?\) in 'hiden_size=128': not a PrJepaConfig field"
    ):
        config.update_from_string("hiden_size=128")
    assert config.hidden_size == 512
    # A field that takes numbers takes a fraction where it holds a whole number now (a JSON file's 1); an integer field
    # takes none.
    config = tiny_config(loss_weighting="fixed", jepa_weight=1, hidden_dropout_prob=0)
    config.update_from_string("jepa_weight=0.25,hidden_dropout_prob=0.1")
    assert (config.jepa_weight, config.hidden_dropout_prob) == (0.25, 0.1)
    with pytest.raises(ValueError, match=r"num_hidden_layers takes an integer \(now 2\), got '2.5'"):
        config.update_from_string("num_hidden_layers=2.5")
    with pytest.raises(ValueError, match=r"predictor_num_attention_heads=6 .* \(predictor_num_attention_heads is "):
        PrJepaConfig.from_preset("mini").update_from_string("hidden_size=384,num_attention_heads=6")
    # A field set directly on a built config meets the model's check, instead of a silent fallback.
    config = tiny_config()
    config.loss_weighting = "fixd"
    with pytest.raises(ValueError, match="loss_weighting must be one of"):
        PrJepaForPreTraining(config)
    for field in ("position_embedding_scale", "layer_norm_eps", "initializer_range"):
        with pytest.raises(ValueError, match=f"{field} must be positive and finite, got inf"):
            tiny_config(**{field: math.inf})


@pytest.mark.parametrize(
    "override", ["layer_norm_eps=1e-05", "hidden_size=64,num_attention_heads=8", "mlm_head_layer_norm_eps=1e-07"]
)
def test_settings_given_to_from_pretrained_move_the_fields_following_them_as_a_string_update_does(tmp_path, override):
    tiny_config().save_pretrained(tmp_path)
    values = {
        key: type(getattr(tiny_config(), key))(value)
        for key, value in (pair.split("=") for pair in override.split(","))
    }
    updated = tiny_config()
    updated.update_from_string(override)
    assert PrJepaConfig.from_pretrained(tmp_path, **values).to_dict() == updated.to_dict()
    # A field set apart from its leader stays apart.
    tiny_config(mlm_head_layer_norm_eps=1e-7).save_pretrained(tmp_path)
    assert PrJepaConfig.from_pretrained(tmp_path, layer_norm_eps=1e-5).mlm_head_layer_norm_eps == 1e-7


def test_initialisation_scales_residual_outputs_by_depth():
    model = PrJepaModel(
        tiny_config(num_hidden_layers=4, hidden_size=256, intermediate_size=1024, max_position_embeddings=8)
    )
    for index, layer in enumerate(model.encoder.layer, start=1):
        expected = 0.02 / math.sqrt(2 * index)
        assert layer.attention.proj.weight.std().item() == pytest.approx(expected, rel=0.05)
        assert layer.mlp.fc2.weight.std().item() == pytest.approx(expected, rel=0.05)
        assert layer.attention.qkv.weight.std().item() == pytest.approx(0.02, rel=0.05)


def test_context_view_encodes_only_given_positions():
    """Encoding gathered positions equals encoding a sequence that holds exactly those tokens at those positions."""
    model = PrJepaModel(tiny_config(position_embedding_type="learned")).eval()
    ids = torch.randint(5, 40, (1, 12))
    positions = torch.tensor([[0, 2, 3, 7, 11]])
    with torch.no_grad():
        gathered = model(ids.gather(1, positions), position_ids=positions).last_hidden_state
        only_those = torch.zeros(1, 12, dtype=torch.long)
        mask = torch.zeros(1, 12, dtype=torch.long)
        only_those[0, positions[0]] = ids[0, positions[0]]
        mask[0, positions[0]] = 1
        full = model(only_those, attention_mask=mask, position_ids=torch.arange(12)[None]).last_hidden_state
    torch.testing.assert_close(gathered, full[:, positions[0]], atol=1e-5, rtol=0)


# --- pretraining losses ---------------------------------------------------------------------------------------------


def test_sparse_mlm_loss_equals_cross_entropy_on_full_logits():
    batch = pretraining_batch()
    sparse = PrJepaForMaskedLM(tiny_config(sparse_prediction=True)).eval()
    dense = PrJepaForMaskedLM(tiny_config()).eval()
    dense.load_state_dict(sparse.state_dict())
    sparse_out = sparse(batch["masked_input_ids"], batch["attention_mask"], labels=batch["labels"])
    dense_out = dense(batch["masked_input_ids"], batch["attention_mask"], labels=batch["labels"])
    reference = F.cross_entropy(dense_out.logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=-100)
    torch.testing.assert_close(sparse_out.loss, reference)
    torch.testing.assert_close(dense_out.loss, reference)
    assert sparse_out.logits.shape == (int((batch["labels"] != -100).sum()), tiny_config().vocab_size)
    # By default the logits line up with the labels, as transformers' MLM evaluation (run_mlm.py) indexes them.
    labelled = batch["labels"] != -100
    predictions = dense_out.logits.argmax(-1)
    assert predictions.shape == batch["labels"].shape
    assert torch.equal(predictions[labelled], sparse_out.logits.argmax(-1))

    pretraining = PrJepaForPreTraining(tiny_config(objective="mlm")).eval()
    pretraining.prjepa.load_state_dict(sparse.prjepa.state_dict())
    pretraining.mlm_head.load_state_dict(sparse.mlm_head.state_dict())
    torch.testing.assert_close(pretraining(**batch).mlm_loss, reference)


def test_mlm_loss_honours_num_items_in_batch():
    batch = pretraining_batch()
    model = PrJepaForMaskedLM(tiny_config())
    mean_loss = model(batch["masked_input_ids"], batch["attention_mask"], labels=batch["labels"]).loss
    count = int((batch["labels"] != -100).sum())
    summed = model(
        batch["masked_input_ids"], batch["attention_mask"], labels=batch["labels"], num_items_in_batch=4 * count
    ).loss
    torch.testing.assert_close(summed, mean_loss / 4)
    # A batch without labels in a window without any (the Trainer's count 0, an int or a tensor) gives 0, not 0 / 0.
    unlabelled = torch.full_like(batch["labels"], -100)
    for nothing in (0, torch.tensor(0)):
        loss = model(batch["masked_input_ids"], batch["attention_mask"], labels=unlabelled, num_items_in_batch=nothing)
        assert loss.loss.item() == 0.0


def test_learned_lambda_is_sigmoid_of_w_and_its_gradient_follows_the_loss_gap():
    model = PrJepaForPreTraining(tiny_config())
    with torch.no_grad():
        model.loss_weighting.jepa_logit.fill_(0.7)
    out = model(**pretraining_batch())
    weight = torch.sigmoid(torch.tensor(0.7))
    torch.testing.assert_close(out.jepa_weight, weight)
    torch.testing.assert_close(out.loss, weight * out.jepa_loss + (1 - weight) * out.mlm_loss)
    out.loss.backward()
    expected_gradient = weight * (1 - weight) * (out.jepa_loss - out.mlm_loss).detach()
    torch.testing.assert_close(model.loss_weighting.jepa_logit.grad, expected_gradient)


def test_fixed_lambda():
    model = PrJepaForPreTraining(tiny_config(loss_weighting="fixed", jepa_weight=0.3))
    out = model(**pretraining_batch())
    assert out.jepa_weight.item() == pytest.approx(0.3)
    torch.testing.assert_close(out.loss, 0.3 * out.jepa_loss + 0.7 * out.mlm_loss)
    assert not [name for name, _ in model.loss_weighting.named_parameters()]


def test_uncertainty_weighting():
    model = PrJepaForPreTraining(tiny_config(loss_weighting="uncertainty"))
    with torch.no_grad():
        model.loss_weighting.log_variances.copy_(torch.tensor([0.2, -0.1]))
    out = model(**pretraining_batch())
    expected = math.exp(-0.2) * out.jepa_loss + math.exp(0.1) * out.mlm_loss + 0.1
    torch.testing.assert_close(out.loss, expected)
    assert out.jepa_weight.item() == pytest.approx(math.exp(-0.2) / (math.exp(-0.2) + math.exp(0.1)), rel=1e-5)


@pytest.mark.parametrize("loss_weighting", ["learned", "uncertainty"])
def test_a_batch_without_mlm_labels_trains_only_the_jepa_terms_weight(loss_weighting):
    model = PrJepaForPreTraining(tiny_config(loss_weighting=loss_weighting))
    with torch.no_grad():
        for parameter in model.loss_weighting.parameters():
            parameter.fill_(0.3)
    batch = pretraining_batch()
    batch["labels"] = torch.full_like(batch["labels"], -100)  # nothing masked: L_MLM is 0, unmeasured
    out = model(**batch)
    assert out.mlm_loss.item() == 0 and out.jepa_loss.item() > 0 and torch.isfinite(out.loss)
    out.loss.backward()
    if loss_weighting == "learned":
        assert model.loss_weighting.jepa_logit.grad.item() == 0
    else:
        expected = torch.tensor([1 - math.exp(-0.3) * out.jepa_loss.item(), 0.0])
        torch.testing.assert_close(model.loss_weighting.log_variances.grad, expected)


@pytest.mark.parametrize("loss_weighting", ["learned", "uncertainty"])
def test_a_batch_without_jepa_targets_trains_only_the_mlm_terms_weight(loss_weighting):
    model = PrJepaForPreTraining(tiny_config(loss_weighting=loss_weighting))
    with torch.no_grad():
        for parameter in model.loss_weighting.parameters():
            parameter.fill_(0.3)
    batch = pretraining_batch()
    batch["target_mask"] = torch.zeros_like(batch["target_mask"])  # every row too short for a target block
    out = model(**batch)
    assert out.jepa_loss.item() == 0
    out.loss.backward()
    if loss_weighting == "learned":
        # L = λ·0 + (1 − λ)·L_MLM: unchanged in value, but λ must not move towards the unmeasured JEPA term.
        torch.testing.assert_close(out.loss, (1 - torch.sigmoid(torch.tensor(0.3))) * out.mlm_loss)
        assert model.loss_weighting.jepa_logit.grad.item() == 0
    else:
        # s_MLM still learns from the measured MLM loss: d/ds (exp(−s)·L + s) = 1 − exp(−s)·L.
        expected = torch.tensor([0.0, 1 - math.exp(-0.3) * out.mlm_loss.item()])
        torch.testing.assert_close(model.loss_weighting.log_variances.grad, expected)


def test_mlm_objective_builds_no_target_encoder_or_predictor():
    model = PrJepaForPreTraining(tiny_config(objective="mlm"))
    assert model.target_encoder is None and model.predictor is None
    assert not [key for key in model.state_dict() if key.startswith(("target_encoder", "predictor", "loss_weighting"))]
    batch = {key: value for key, value in pretraining_batch().items() if "context" not in key and "target" not in key}
    out = model(**batch)
    assert out.loss is out.mlm_loss and out.jepa_loss is None and out.jepa_weight.item() == 0


def test_hybrid_without_block_indices_is_refused():
    batch = {key: value for key, value in pretraining_batch().items() if "target" not in key}
    with pytest.raises(ValueError, match="target_indices"):
        PrJepaForPreTraining(tiny_config())(**batch)


@pytest.mark.parametrize("jepa_loss", ["cosine", "smooth_l1", "mse"])
def test_jepa_loss_ignores_padded_slots_and_empty_sequences(jepa_loss):
    model = PrJepaForPreTraining(tiny_config(jepa_loss=jepa_loss)).eval()
    batch = pretraining_batch()
    reference = model(**batch).jepa_loss

    wider = dict(batch)  # extra padded index slots change nothing
    wider["context_indices"] = F.pad(batch["context_indices"], (0, 3))
    wider["context_mask"] = F.pad(batch["context_mask"], (0, 3))
    wider["target_indices"] = F.pad(batch["target_indices"], (0, 2))
    wider["target_mask"] = F.pad(batch["target_mask"], (0, 2))
    torch.testing.assert_close(model(**wider).jepa_loss, reference)

    first_and_last = {key: value[[0, 2]] for key, value in batch.items()}
    for empty in ("target_mask", "context_mask"):  # a sequence without targets or without context adds nothing
        emptied = {key: value.clone() for key, value in batch.items()}
        emptied[empty][1] = 0
        torch.testing.assert_close(model(**emptied).jepa_loss, model(**first_and_last).jepa_loss, msg=empty)


def test_each_jepa_loss_kind_equals_its_formula_over_the_real_target_tokens():
    predictions = torch.tensor([[[0.0, 3.0], [0.5, 0.5], [9.0, 9.0]]])  # (1, 3 target slots, hidden 2)
    targets = torch.tensor([[[0.2, 0.0], [0.5, -0.5], [0.0, 0.0]]])
    mask = torch.tensor([[1, 1, 0]])  # the third slot is padding
    differences = [(-0.2, 3.0), (0.0, 1.0)]  # prediction − target of the two real slots
    smooth_l1 = [sum(0.5 * d**2 if abs(d) < 1 else abs(d) - 0.5 for d in slot) / 2 for slot in differences]
    mse = [sum(d**2 for d in slot) / 2 for slot in differences]
    cosine = [1 - 0.0, 1 - 0.0]  # both pairs are orthogonal
    for kind, per_token in [("smooth_l1", smooth_l1), ("mse", mse), ("cosine", cosine)]:
        actual = modeling_prjepa.jepa_prediction_loss(predictions, targets, mask, kind)
        assert actual.item() == pytest.approx(sum(per_token) / 2), kind


def test_jepa_loss_equals_a_per_block_reference():
    """L_JEPA recomputed from the public parts, one target block at a time: the context view encoded from the masked
    ids at the context positions, each block predicted in a predictor pass of its own (blocks never see each other),
    1 − cos against the LayerNorm-ed target states, averaged over the real target tokens."""
    # Weights at std 0.5 (not 0.02) so that the loss depends clearly on which token sits at which context position.
    model = PrJepaForPreTraining(tiny_config(initializer_range=0.5)).eval()
    batch = pretraining_batch()
    batch["context_mask"][1, 6:] = 0  # a context with padding slots
    with torch.no_grad():
        targets = model.target_encoder(batch["input_ids"], batch["attention_mask"]).last_hidden_state
        targets = F.layer_norm(targets, targets.shape[-1:])
        context_ids = batch["masked_input_ids"].gather(1, batch["context_indices"])
        context = model.prjepa(
            context_ids, batch["context_mask"], position_ids=batch["context_indices"]
        ).last_hidden_state
        losses = []
        for row in range(3):
            real_context = batch["context_mask"][row].bool()
            for block in range(2):
                real_targets = batch["target_mask"][row, block].bool()
                positions = batch["target_indices"][row, block][real_targets]
                prediction = model.predictor(
                    context[row, real_context][None],
                    batch["context_indices"][row, real_context][None],
                    torch.ones(1, int(real_context.sum()), dtype=torch.long),
                    positions[None, None],
                    torch.ones(1, 1, len(positions), dtype=torch.long),
                )[0, 0]
                losses.append(1 - F.cosine_similarity(prediction, targets[row, positions], dim=-1))
        expected = torch.cat(losses).mean()
        actual = model(**batch).jepa_loss
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)


def test_cosine_jepa_loss_is_zero_when_the_predictor_hits_the_normalised_target():
    """The targets are the target encoder's states of the padded sequence under its attention mask: an oracle built
    without the mask (padding attended to) is far from zero loss."""
    # Weights at std 0.5 so that attending to the padding would change the targets clearly.
    model = PrJepaForPreTraining(tiny_config(initializer_range=0.5)).eval()
    batch = pretraining_batch(batch_size=1, seq_len=16)  # padded after 12 tokens
    with torch.no_grad():
        targets = model.target_encoder(batch["input_ids"], batch["attention_mask"]).last_hidden_state
        targets = F.layer_norm(targets, targets.shape[-1:])
        unmasked = model.target_encoder(batch["input_ids"]).last_hidden_state
        unmasked = F.layer_norm(unmasked, unmasked.shape[-1:])
    # Replace the predictor by an oracle that returns the normalised targets at the requested positions.
    model.predictor.forward = lambda context, cpos, cmask, tpos, tmask: targets[0][tpos]
    assert model(**batch).jepa_loss.item() == pytest.approx(0.0, abs=1e-6)
    model.predictor.forward = lambda context, cpos, cmask, tpos, tmask: unmasked[0][tpos]
    assert model(**batch).jepa_loss.item() > 1e-2


def test_instance_normalised_targets_match_instance_norm_of_each_sequence_alone():
    """jepa_target_norm='instance': an oracle predictor that returns torch's instance norm of each sequence's real
    target states (computed one sequence at a time, padding cut off) gives zero loss under MSE, so the targets are
    exactly those, padding never enters a sequence's statistics, and the pooled embeddings stay the raw states'."""
    model = PrJepaForPreTraining(tiny_config(jepa_target_norm="instance", jepa_loss="mse")).eval()
    batch = pretraining_batch()  # the last sequence is padded after 12 tokens
    with torch.no_grad():
        states = model.target_encoder(batch["input_ids"], batch["attention_mask"]).last_hidden_state
        normalised = torch.zeros_like(states)
        lengths = batch["attention_mask"].sum(1).tolist()
        for row, length in enumerate(lengths):
            real = states[row, :length].T[None]  # (1, hidden, tokens): features as channels
            normalised[row, :length] = F.instance_norm(real, eps=model.config.layer_norm_eps)[0].T
    model.predictor.forward = lambda context, cpos, cmask, tpos, tmask: normalised[
        torch.arange(len(tpos))[:, None, None], tpos
    ]
    out = model(**batch)
    assert out.jepa_loss.item() == pytest.approx(0.0, abs=1e-6)
    raw_means = torch.stack([states[row, :length].mean(0) for row, length in enumerate(lengths)])
    torch.testing.assert_close(out.pooled_embeddings, raw_means)
    layer_normed = PrJepaForPreTraining(tiny_config(jepa_loss="mse")).eval()
    layer_normed.load_state_dict(model.state_dict())
    layer_normed.predictor.forward = model.predictor.forward
    assert layer_normed(**batch).jepa_loss.item() > 0.1  # the two norms give different targets


# --- target encoder ---------------------------------------------------------------------------------------------------


def test_target_encoder_starts_as_copy_and_gets_no_gradient():
    model = PrJepaForPreTraining(tiny_config())
    for target, online in zip(model.target_encoder.parameters(), model.prjepa.parameters()):
        assert torch.equal(target, online) and not target.requires_grad
    before = [parameter.clone() for parameter in model.target_encoder.parameters()]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    model(**pretraining_batch()).loss.backward()
    optimizer.step()
    assert all(parameter.grad is None for parameter in model.target_encoder.parameters())
    assert all(torch.equal(old, new) for old, new in zip(before, model.target_encoder.parameters()))
    assert model.predictor.mask_token.grad is not None and model.loss_weighting.jepa_logit.grad is not None


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_target_encoder_numbers_positions_as_the_online_views_do(padding_side):
    """At initialisation the target encoder is the online encoder, so on unmasked ids it must give the full view's
    states at every real token; with left padding too, where positions counted from the first real token would give
    each target another position than the predictor queries."""
    model = PrJepaForPreTraining(tiny_config())
    batch = pretraining_batch()
    if padding_side == "left":  # the last row's 8 padding slots moved to its start
        for key in ("input_ids", "attention_mask"):
            batch[key][-1] = batch[key][-1].roll(8)
    batch["masked_input_ids"] = batch["input_ids"].clone()
    states = {}

    def keep(name):  # the first call's output: the online encoder runs the full view first, then the context view
        def hook(module, args, output):
            states.setdefault(name, output[0])

        return hook

    model.target_encoder.register_forward_hook(keep("target"))
    model.prjepa.encoder.register_forward_hook(keep("online"))
    with torch.no_grad():
        model(**batch)
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(states["target"][real], states["online"][real])


def test_ema_update_equals_momentum_formula_for_every_parameter():
    model = PrJepaForPreTraining(tiny_config())
    with torch.no_grad():
        for parameter in model.prjepa.parameters():
            parameter.add_(torch.randn_like(parameter))
    targets = [parameter.clone() for parameter in model.target_encoder.parameters()]
    onlines = [parameter.clone() for parameter in model.prjepa.parameters()]
    model.update_target_encoder(0.9)
    names = [name for name, _ in model.target_encoder.named_parameters()]
    assert len(names) == len(onlines) > 0
    for name, new, old, online in zip(names, model.target_encoder.parameters(), targets, onlines):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * online, atol=1e-6, rtol=1e-6, msg=name)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_ema_update_of_low_precision_weights_is_refused_with_the_fix(dtype):
    """In bf16, (1 − m)·(online − target) at m = 0.996 is mostly lost to rounding: the target would barely move."""
    model = PrJepaForPreTraining(tiny_config())
    with torch.no_grad():
        for parameter in model.prjepa.parameters():
            parameter.add_(1e-3 * torch.randn_like(parameter))
    model.to(dtype)
    before = [parameter.clone() for parameter in model.target_encoder.parameters()]
    with pytest.raises(ValueError, match=rf"{dtype}.*float32.*--bf16"):
        model.update_target_encoder(0.996)
    assert all(torch.equal(old, new) for old, new in zip(before, model.target_encoder.parameters()))


def test_ema_momentum_schedule_is_linear_in_the_step_and_held_past_the_end():
    config = tiny_config(ema_momentum_start=0.99, ema_momentum_end=0.999)
    # Off-centre points too: a cosine schedule between the same ends agrees with the linear one at 0, ½ and 1.
    for step, expected in [(0, 0.99), (25, 0.99225), (50, 0.9945), (80, 0.9972), (100, 0.999)]:
        assert config.ema_momentum(step, 100) == pytest.approx(expected, abs=1e-12), step
    assert config.ema_momentum(150, 100) == pytest.approx(0.999, abs=1e-12)


def test_target_encoder_stays_in_eval_mode_under_dropout():
    torch.manual_seed(0)
    model = PrJepaForPreTraining(tiny_config(hidden_dropout_prob=0.5)).train()
    assert model.prjepa.training and not any(module.training for module in model.target_encoder.modules())
    batch = pretraining_batch()
    inputs = dict(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    with torch.no_grad():
        # Dropout at 0.5 acts on the online encoder; the target encoder computes one fixed function, its eval one.
        assert not torch.equal(model.prjepa(**inputs).last_hidden_state, model.prjepa(**inputs).last_hidden_state)
        targets = [model.target_encoder(**inputs).last_hidden_state for _ in range(2)]
        assert torch.equal(targets[0], targets[1])
        torch.testing.assert_close(targets[0], model.eval().target_encoder(**inputs).last_hidden_state, rtol=0, atol=0)


def test_gradient_checkpointing_gives_the_same_gradients():
    batch = pretraining_batch()
    plain = PrJepaForPreTraining(tiny_config())
    checkpointed = PrJepaForPreTraining(tiny_config())
    checkpointed.load_state_dict(plain.state_dict())
    checkpointed.activation_checkpointing_enable()
    assert all(layer.gradient_checkpointing for layer in checkpointed.prjepa.encoder.layer)
    # A checkpointed layer runs its forward again during backward: the online encoder's first attention runs for the
    # full and the context views, so twice per step without checkpointing and four times with it.
    calls = {}
    for name, model in (("plain", plain), ("checkpointed", checkpointed)):
        calls[name] = []
        model.prjepa.encoder.layer[0].attention.register_forward_hook(lambda *args, seen=calls[name]: seen.append(1))
    plain(**batch).loss.backward()
    checkpointed(**batch).loss.backward()
    assert (len(calls["plain"]), len(calls["checkpointed"])) == (2, 4)
    for (name, a), b in zip(plain.named_parameters(), checkpointed.parameters()):
        if a.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, msg=name)


# --- attention implementations, tuple outputs, host reads ----------------------------------------------------------


def _count_eager_calls(monkeypatch) -> list:
    """Makes every call of the eager attention function append to the returned list."""
    calls, eager = [], modeling_prjepa.eager_attention_forward

    def counting(*args, **kwargs):
        calls.append(1)
        return eager(*args, **kwargs)

    monkeypatch.setattr(modeling_prjepa, "eager_attention_forward", counting)
    return calls


def test_eager_and_sdpa_loaded_by_name_give_the_same_losses_and_gradients(tmp_path, monkeypatch):
    PrJepaForPreTraining(tiny_config(initializer_range=0.5)).save_pretrained(tmp_path)
    batch = pretraining_batch()
    batch["context_mask"][1, 6:] = 0  # padding inside the context view and the predictor batch too
    eager_calls = _count_eager_calls(monkeypatch)
    results = {}
    for implementation in ("sdpa", "eager"):
        model = AutoModelForPreTraining.from_pretrained(tmp_path, attn_implementation=implementation).eval()
        assert model.config._attn_implementation == implementation
        calls_before = len(eager_calls)
        out = model(**batch)
        out.loss.backward()
        # Target encoder, full view and context view (2 layers each), predictor (2 layers): 8 attention calls.
        assert len(eager_calls) - calls_before == (8 if implementation == "eager" else 0)
        grads = {name: parameter.grad for name, parameter in model.named_parameters() if parameter.grad is not None}
        results[implementation] = (out, grads)
    (sdpa, sdpa_grads), (eager, eager_grads) = results["sdpa"], results["eager"]
    for field in ("loss", "jepa_loss", "mlm_loss", "pooled_embeddings"):
        torch.testing.assert_close(eager[field], sdpa[field], atol=1e-5, rtol=1e-5, msg=field)
    assert eager_grads.keys() == sdpa_grads.keys() and len(sdpa_grads) > 0
    for name, grad in sdpa_grads.items():
        torch.testing.assert_close(eager_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)


def test_eager_and_sdpa_encoders_agree_with_and_without_padding():
    ids, mask = _inputs()
    sdpa = PrJepaModel(tiny_config()).eval()
    eager = PrJepaModel(tiny_config(attn_implementation="eager")).eval()
    eager.load_state_dict(sdpa.state_dict())
    with torch.no_grad():
        for attention_mask in (mask, None):  # without padding there is no mask at all, so nothing may turn causal
            expected = sdpa(ids, attention_mask).last_hidden_state
            torch.testing.assert_close(eager(ids, attention_mask).last_hidden_state, expected, atol=1e-5, rtol=0)


def test_output_attentions_under_eager_are_each_layers_softmax():
    model = PrJepaModel(tiny_config(attn_implementation="eager", initializer_range=0.5)).eval()
    ids, mask = _inputs()
    real = mask.bool()
    with torch.no_grad():
        out = model(ids, mask, output_hidden_states=True, output_attentions=True)
        assert len(out.attentions) == 2
        for layer, residual, weights in zip(model.encoder.layer, out.hidden_states, out.attentions):
            assert weights.shape == (2, 4, 9, 9)
            query, key, _ = layer.attention.qkv(layer.norm1(residual)).split(32, dim=-1)
            heads = lambda tensor: tensor.view(2, 9, 4, 8).transpose(1, 2)  # noqa: E731
            scores = heads(query) @ heads(key).transpose(-1, -2) / math.sqrt(8)
            expected = scores.masked_fill(~real[:, None, None, :], float("-inf")).softmax(-1)
            torch.testing.assert_close(weights.transpose(1, 2)[real], expected.transpose(1, 2)[real], atol=1e-5, rtol=0)
            torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 9))
            assert torch.all(weights[1, :, :, 6:] == 0)  # padding keys, from every query
        # Weights at std 0.5 make attention far from uniform, so the layers must differ.
        assert not torch.allclose(out.attentions[0], out.attentions[1], atol=1e-3)

        masked_lm = PrJepaForMaskedLM(model.config).eval()
        masked_lm.prjepa.load_state_dict(model.state_dict())
        for got, expected in zip(masked_lm(ids, mask, output_attentions=True).attentions, out.attentions):
            torch.testing.assert_close(got, expected)
    with_config_default = PrJepaModel(tiny_config(attn_implementation="eager", output_attentions=True)).eval()
    assert len(with_config_default(ids, mask).attentions) == 2


def test_output_attentions_under_sdpa_is_refused_with_the_fix_and_eager_can_be_set_later():
    ids, mask = _inputs()
    model = PrJepaForSequenceClassification(tiny_config(num_labels=2)).eval()
    assert model.config._attn_implementation == "sdpa"
    with pytest.raises(ValueError, match=r"attn_implementation='eager'.*set_attn_implementation\('eager'\)"):
        model(ids, mask, output_attentions=True)
    with torch.no_grad():
        sdpa_logits = model(ids, mask).logits
        model.set_attn_implementation("eager")
        out = model(ids, mask, output_attentions=True)
    assert len(out.attentions) == 2 and out.attentions[0].shape == (2, 4, 9, 9)
    torch.testing.assert_close(out.logits, sdpa_logits, atol=1e-5, rtol=0)


@pytest.mark.parametrize("implementation", ["flash_attention_2", "flex_attention", "paged|eager", "my_kernel"])
def test_other_attention_implementations_are_refused(tmp_path, implementation):
    message = rf"attn_implementation='sdpa' \(the default\) or 'eager'.*not '{re.escape(implementation)}'"
    with pytest.raises(ValueError, match=message):
        PrJepaForPreTraining(tiny_config(attn_implementation=implementation))
    PrJepaModel(tiny_config()).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=message):
        AutoModel.from_pretrained(tmp_path, attn_implementation=implementation)
    model = AutoModel.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match=message):
        model.set_attn_implementation(implementation)
    assert model.config._attn_implementation == "sdpa"


@pytest.mark.parametrize(
    "model_class", [PrJepaModel, PrJepaForMaskedLM, PrJepaForSequenceClassification, PrJepaForPreTraining]
)
def test_return_dict_false_gives_the_output_as_a_tuple(model_class):
    """Asked for per call or through `config.return_dict`; the pretraining model's own encoder calls keep working."""
    config = tiny_config(num_labels=3, attn_implementation="eager")
    model = model_class(config).eval()
    if model_class is PrJepaForPreTraining:
        inputs = pretraining_batch()
    else:
        ids, mask = _inputs()
        inputs = dict(input_ids=ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
    with torch.no_grad():
        expected = model(**inputs).to_tuple()
        per_call = model(**inputs, return_dict=False)
        model.config.return_dict = False
        from_config = model(**inputs)
        assert not isinstance(model(**inputs, return_dict=True), tuple)
    if model_class is not PrJepaForPreTraining:  # the attentions come last, one per layer
        assert type(expected[-1]) is tuple and len(expected[-1]) == 2
    for outputs in (per_call, from_config):
        assert type(outputs) is tuple and len(outputs) == len(expected)
        for got, want in zip(outputs, expected):
            torch.testing.assert_close(got, want)


class HostReads(TorchFunctionMode):
    """Counts the torch calls that make the host wait for the device (on GPU), by name: reading a value
    (`item`, `bool`, `int`, ...), sizes known only from the data (`nonzero`, boolean-mask indexing) and host-to-device
    copies of Python data (`torch.tensor`, `new_tensor`)."""

    READS = {"__bool__", "__int__", "__float__", "__index__", "item", "tolist", "numpy", "cpu"}
    READS |= {"nonzero", "masked_select", "unique", "tensor", "as_tensor", "new_tensor"}

    def __init__(self):
        super().__init__()
        self.calls = collections.Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name == "__getitem__":
            index = args[1] if isinstance(args[1], tuple) else (args[1],)
            if any(isinstance(part, torch.Tensor) and part.dtype == torch.bool for part in index):
                self.calls["boolean index"] += 1
        elif name in self.READS:
            self.calls[name] += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("loss_weighting", ["learned", "fixed", "uncertainty"])
def test_a_pretraining_step_reads_the_device_only_where_it_must(loss_weighting):
    hybrid = PrJepaForPreTraining(tiny_config(loss_weighting=loss_weighting))
    batch = pretraining_batch()
    with HostReads() as reads:
        hybrid(**batch).loss.backward()
    # bool: the id checks of the target view, the online view and (positions) the context view. int: the real-token
    # count of each padded layout (target view, full view, context view, predictor). nonzero: the MLM positions.
    assert reads.calls == {"__bool__": 3, "__int__": 4, "nonzero": 1}

    mlm = PrJepaForPreTraining(tiny_config(objective="mlm", loss_weighting=loss_weighting))
    batch = {key: value for key, value in batch.items() if "context" not in key and "target" not in key}
    with HostReads() as reads:
        mlm(**batch).loss.backward()
    assert reads.calls == {"__bool__": 1, "__int__": 1, "nonzero": 1}


def test_encoder_reads_the_device_once_for_its_checks_and_once_for_its_layout():
    model = PrJepaModel(tiny_config()).eval()
    ids, mask = _inputs()
    calls = {}
    for name, kwargs in {
        "ids": {},
        "ids and mask": dict(attention_mask=mask),
        "ids, positions and mask": dict(attention_mask=mask, position_ids=torch.arange(9).expand(2, 9)),
    }.items():
        with torch.no_grad(), HostReads() as reads:
            model(ids, **kwargs)
        calls[name] = dict(reads.calls)
    assert calls == {
        "ids": {"__bool__": 1},
        "ids and mask": {"__bool__": 1, "__int__": 1},
        "ids, positions and mask": {"__bool__": 1, "__int__": 1},  # one read checks ids and positions together
    }


# --- save / load ------------------------------------------------------------------------------------------------------


def _inputs():
    ids = torch.randint(5, 40, (2, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    return ids, mask


@pytest.mark.parametrize(
    "auto_class, model_class",
    [
        (AutoModel, PrJepaModel),
        (AutoModelForMaskedLM, PrJepaForMaskedLM),
        (AutoModelForSequenceClassification, PrJepaForSequenceClassification),
        (AutoModelForPreTraining, PrJepaForPreTraining),
    ],
)
def test_save_load_round_trip_through_auto_class(tmp_path, auto_class, model_class):
    model = model_class(tiny_config(num_labels=3)).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert {"modeling_prjepa.py", "configuration_prjepa.py"} <= {path.name for path in tmp_path.iterdir()}
    loaded, info = auto_class.from_pretrained(tmp_path, output_loading_info=True)
    assert type(loaded) is model_class and not any(info.values())
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    if model_class is PrJepaForPreTraining:
        batch = pretraining_batch()
        assert torch.equal(model(**batch).loss, loaded.eval()(**batch).loss)
    else:
        ids, mask = _inputs()
        assert torch.equal(model(ids, mask)[0], loaded.eval()(ids, mask)[0])


def test_encoder_loads_from_pretraining_checkpoint_with_nothing_missing(tmp_path):
    pretraining = PrJepaForPreTraining(tiny_config())
    with torch.no_grad():
        for parameter in pretraining.target_encoder.parameters():
            parameter.add_(1.0)  # make the two encoders distinguishable
    pretraining.save_pretrained(tmp_path)
    online, info = AutoModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["mismatched_keys"]
    target = AutoModel.from_pretrained(tmp_path, encoder="target")
    for (name, o), t, expected_o, expected_t in zip(
        online.state_dict().items(),
        target.state_dict().values(),
        pretraining.prjepa.state_dict().values(),
        pretraining.target_encoder.state_dict().values(),
    ):
        assert torch.equal(o, expected_o) and torch.equal(t, expected_t), name
    classifier = AutoModelForSequenceClassification.from_pretrained(tmp_path, encoder="target", num_labels=2)
    assert torch.equal(classifier.prjepa.encoder.norm.weight, pretraining.target_encoder.encoder.norm.weight)


def test_resize_token_embeddings_resizes_the_target_encoder_too(tmp_path):
    """The target keeps its EMA rows and starts new ones from the online encoder; new ids then run through both
    encoders, the EMA update and a save/load round trip."""
    model = PrJepaForPreTraining(tiny_config())
    with torch.no_grad():
        for parameter in model.target_encoder.parameters():
            parameter.add_(torch.randn_like(parameter))  # a target that has drifted from the online encoder
    old_vocab = model.config.vocab_size
    old_target = model.target_encoder.get_input_embeddings().weight.clone()
    model.resize_token_embeddings(old_vocab + 8)

    online, target = model.prjepa.get_input_embeddings().weight, model.target_encoder.get_input_embeddings().weight
    assert target.shape == online.shape == (old_vocab + 8, 32) and not target.requires_grad
    assert torch.equal(target[:old_vocab], old_target) and torch.equal(target[old_vocab:], online[old_vocab:])

    batch = pretraining_batch()
    batch["input_ids"][0, 0] = batch["masked_input_ids"][0, 0] = old_vocab + 3
    assert torch.isfinite(model(**batch).jepa_loss)
    targets, onlines = target.clone(), online.clone()
    model.update_target_encoder(0.9)
    torch.testing.assert_close(model.target_encoder.get_input_embeddings().weight, 0.9 * targets + 0.1 * onlines)

    model.save_pretrained(tmp_path)
    loaded, info = PrJepaForPreTraining.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info.values())
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    assert torch.equal(model.eval()(**batch).loss, loaded(**batch).loss)

    kept = model.target_encoder.get_input_embeddings().weight[: old_vocab - 2].clone()
    model.resize_token_embeddings(old_vocab - 2)  # shrinking keeps the first rows
    assert torch.equal(model.target_encoder.get_input_embeddings().weight, kept)


def test_pretraining_model_from_encoder_checkpoint_starts_target_from_online(tmp_path):
    PrJepaForMaskedLM(tiny_config()).save_pretrained(tmp_path)
    model = PrJepaForPreTraining.from_pretrained(tmp_path)
    for target, online in zip(model.target_encoder.parameters(), model.prjepa.parameters()):
        assert torch.equal(target, online) and not target.requires_grad


def test_fill_mask_pipeline_reports_the_models_probabilities(tokenizer):
    model = PrJepaForMaskedLM(tiny_config()).eval()
    fill = pipeline("fill-mask", model=model, tokenizer=tokenizer)
    predictions = fill("the cat [MASK] on the mat", top_k=3)
    encoded = tokenizer("the cat [MASK] on the mat", return_tensors="pt")
    with torch.no_grad():
        logits = model(**encoded).logits[0, 3]
    probabilities, token_ids = logits.softmax(-1).topk(3)
    assert [prediction["token"] for prediction in predictions] == token_ids.tolist()
    assert [prediction["score"] for prediction in predictions] == pytest.approx(probabilities.tolist(), rel=1e-5)


# --- configuration and bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(num_attention_heads=5), "num_attention_heads"),
        (dict(predictor_hidden_size=20, predictor_num_attention_heads=3), "predictor_num_attention_heads"),
        (dict(target_block_scale=(0.3, 0.2)), "target_block_scale"),
        (dict(context_block_scale=(0.5, 1.2)), "context_block_scale"),
        (dict(target_block_scale=(0.0, 0.2)), "target_block_scale"),
        (dict(objective="contrastive"), "objective"),
        (dict(loss_weighting="adaptive"), "loss_weighting"),
        (dict(jepa_loss="l3"), "jepa_loss"),
        (dict(jepa_target_norm="batch"), "jepa_target_norm"),
        (dict(position_embedding_type="rotary"), "position_embedding_type"),
        (dict(mlm_probability=1.5), "mlm_probability"),
        (dict(ema_momentum_start=0.999, ema_momentum_end=0.99), "ema_momentum"),
        (dict(jepa_weight=2.0), "jepa_weight"),
        (dict(classifier_pooling="attention"), "classifier_pooling"),
        (dict(hidden_size=0), r"hidden_size must be a positive integer \(>= 1\), got 0"),
        (dict(hidden_size=-32), r"hidden_size must be a positive integer \(>= 1\), got -32"),
        (dict(predictor_hidden_size=0), r"predictor_hidden_size must be a positive integer \(>= 1\)"),
        (dict(layer_norm_eps=0.0), r"layer_norm_eps must be positive and finite, got 0.0"),
        (dict(layer_norm_eps=-1.0), r"layer_norm_eps must be positive and finite"),
        (dict(initializer_range=0.0), r"initializer_range must be positive and finite, got 0.0"),
        (dict(initializer_range=-0.02), r"initializer_range must be positive and finite"),
        (dict(classifier_dropout=1.5), r"classifier_dropout must be in \[0, 1\), got 1.5"),
        (dict(classifier_dropout=-0.1), r"classifier_dropout must be in \[0, 1\)"),
        (dict(min_context_tokens=64), r"min_context_tokens must be in \[1, max_position_embeddings\) = \[1, 64\)"),
        (dict(min_context_tokens=0), r"min_context_tokens must be in \[1, max_position_embeddings\)"),
        (dict(target_block_scale=(0.5, 1.0)), r"target_block_scale must satisfy 0 < min <= max < 1"),
    ],
)
def test_impossible_config_values_raise_value_error_naming_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        tiny_config(**overrides)


def test_whole_number_weights_and_momenta_are_accepted_from_code_and_from_a_hand_edited_config(tmp_path):
    """λ and the EMA momenta reach their bounds 0 and 1, which a person writes as integers."""
    config = tiny_config(loss_weighting="fixed", jepa_weight=1, ema_momentum_start=1, ema_momentum_end=1)
    assert (config.jepa_weight, config.ema_momentum_start, config.ema_momentum_end) == (1.0, 1.0, 1.0)
    tiny_config().save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**saved, "jepa_weight": 0, "ema_momentum_end": 1}))
    loaded = PrJepaConfig.from_pretrained(tmp_path)
    assert (loaded.jepa_weight, loaded.ema_momentum_end) == (0.0, 1.0)


def test_from_pretrained_checks_the_settings_it_is_given_as_the_constructor_does(tmp_path):
    PrJepaForPreTraining(tiny_config()).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="objective must be one of"):
        PrJepaForPreTraining.from_pretrained(tmp_path, objective="Hybrid")
    with pytest.raises(ValueError, match="jepa_weight"):
        PrJepaConfig.from_pretrained(tmp_path, jepa_weight=5.0)
    config, unused = PrJepaConfig.from_pretrained(
        tmp_path, objective="mlm", target_block_scale=[0.1, 0.2], not_a_field=1, return_unused_kwargs=True
    )
    assert (config.objective, config.target_block_scale, unused) == ("mlm", (0.1, 0.2), {"not_a_field": 1})
    assert PrJepaForPreTraining.from_pretrained(tmp_path, objective="mlm").target_encoder is None


def test_config_accepts_the_boundaries_of_each_valid_range():
    """The largest context scale (I-JEPA's reaches 1), no classifier dropout, the largest min_context_tokens."""
    config = tiny_config(context_block_scale=(0.85, 1.0), classifier_dropout=0.0, min_context_tokens=63)
    assert config.context_block_scale == (0.85, 1.0) and config.min_context_tokens == 63
    assert PrJepaConfig().classifier_dropout is None  # defaults unchanged


def test_presets_are_the_sizes_the_readme_tables():
    """README, Sizes: each row's hidden / layers / heads and predictor width × depth; every encoder with 64-wide heads
    and an MLP 4 times its width, the predictor with the encoder's head count."""
    readme = Path(__file__).resolve().parents[1].joinpath("README.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| (\d+) / (\d+) / (\d+) \| (\d+) × (\d+) \|", readme, flags=re.MULTILINE)
    assert {row[0] for row in rows} == set(PRESETS)
    for name, *sizes in rows:
        config = PrJepaConfig.from_preset(name)
        hidden, layers, heads, predictor_width, predictor_depth = map(int, sizes)
        assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (hidden, layers, heads)
        assert (config.predictor_hidden_size, config.predictor_num_hidden_layers) == (predictor_width, predictor_depth)
        assert config.hidden_size // config.num_attention_heads == 64 and config.intermediate_size == 4 * hidden
        assert config.predictor_num_attention_heads == heads
    base = PrJepaConfig.from_preset("base", objective="mlm")
    assert (base.hidden_size, base.objective) == (768, "mlm")  # overrides pass through
    with pytest.raises(ValueError, match="preset"):
        PrJepaConfig.from_preset("huge")


def test_config_json_round_trip(tmp_path):
    config = tiny_config(target_block_scale=(0.15, 0.2), loss_weighting="uncertainty")
    config.save_pretrained(tmp_path)
    loaded = PrJepaConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict() and loaded.target_block_scale == (0.15, 0.2)


def test_token_ids_outside_vocabulary_are_refused():
    model = PrJepaModel(tiny_config())
    with pytest.raises(ValueError, match="outside the model's vocabulary"):
        model(torch.tensor([[2, 5, tiny_config().vocab_size]]))


def test_sequence_longer_than_positions_is_refused():
    model = PrJepaModel(tiny_config(max_position_embeddings=16))
    with pytest.raises(ValueError, match="max_position_embeddings=16"):
        model(torch.randint(5, 40, (1, 17)))


@pytest.mark.parametrize("bad_position", [16, -1])
def test_position_ids_outside_the_table_are_refused(bad_position):
    model = PrJepaModel(tiny_config(max_position_embeddings=16))
    ids = torch.randint(5, 40, (1, 4))
    positions = torch.tensor([[0, 3, bad_position, 5]])
    with pytest.raises(ValueError, match=rf"Position id {bad_position} is outside.*max_position_embeddings=16"):
        model(ids, position_ids=positions)
    with pytest.raises(ValueError, match=rf"Position id {bad_position} is outside"):
        model(inputs_embeds=model.get_input_embeddings()(ids), position_ids=positions)
    bad_ids = ids.clone()
    bad_ids[0, 1] = tiny_config().vocab_size
    with pytest.raises(ValueError, match="outside the model's vocabulary"):  # the token error comes first
        model(bad_ids, position_ids=positions)
    model(ids, position_ids=torch.tensor([[0, 3, 15, 5]]))  # the last position is in the table


def test_mismatched_tokenizer_is_refused(tokenizer):
    tiny_config().check_tokenizer(tokenizer)
    with pytest.raises(ValueError, match="vocab_size"):
        tiny_config(vocab_size=20).check_tokenizer(tokenizer)
    with pytest.raises(ValueError, match="mask_token_id"):
        tiny_config(mask_token_id=7).check_tokenizer(tokenizer)


def test_truncated_checkpoint_error_names_the_checkpoint(tmp_path):
    PrJepaModel(tiny_config()).save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ValueError, match="truncated or corrupt") as error:
        PrJepaModel.from_pretrained(tmp_path)
    assert str(tmp_path) in str(error.value)


def test_non_prjepa_checkpoint_is_refused(tmp_path):
    BertModel(
        BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    ).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="no PrJEPA online encoder") as error:
        PrJepaModel.from_pretrained(tmp_path)
    assert str(tmp_path) in str(error.value)


@pytest.mark.parametrize(
    "checkpoint",
    [
        lambda: PrJepaModel(tiny_config()),  # its keys carry no prefix at all
        lambda: PrJepaForMaskedLM(tiny_config()),
        lambda: PrJepaForPreTraining(tiny_config(objective="mlm")),
    ],
    ids=["encoder", "masked_lm", "mlm_pretraining"],
)
@pytest.mark.parametrize("auto_class", [AutoModel, AutoModelForSequenceClassification])
def test_target_encoder_option_on_checkpoint_without_one_is_refused(tmp_path, checkpoint, auto_class):
    checkpoint().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"no PrJEPA target encoder.*leave out encoder='target'"):
        auto_class.from_pretrained(tmp_path, encoder="target")
