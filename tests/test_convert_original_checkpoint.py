"""convert_original_checkpoint: a tiny random checkpoint in the original research code's layout must, once converted,
give the outputs of an independent re-implementation of the original forward pass (written below from its layout,
not from our modules)."""

import argparse
import math

import pytest
import torch
import torch.nn.functional as F
from helpers import VOCAB as TOKENIZER_VOCAB
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

from modeling_prjepa import PrJepaForPreTraining, PrJepaModel
from prjepa.convert import CheckpointConversionError, convert_original_checkpoint, main

VOCAB, HIDDEN, LAYERS, HEADS, POSITIONS = 50, 32, 2, 2, 16
PRED_HIDDEN, PRED_LAYERS = 16, 2
EPS = 1e-6
REGRESSOR_EPS = 1e-5  # the token regressor's nn.LayerNorm keeps PyTorch's default
SPECIAL_IDS = dict(pad_token_id=0, cls_token_id=1, sep_token_id=2, mask_token_id=3)
LOGIT = 0.7  # the original's raw loss weight w
STATE_DICTS = ("encoder", "predictor", "target_encoder", "token_regressor")


# ---- the original's layout and forward pass -------------------------------------------------------------------------


def sincos_table(num_positions: int, dim: int) -> torch.Tensor:
    """The original's 1-D sin-cos table (its pos_encode.py: sines in the even columns, cosines in the odd ones) with
    its batch dimension: (1, positions, dim)."""
    position = torch.arange(num_positions, dtype=torch.float32)[:, None]
    div_term = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * -(math.log(10000.0) / dim))
    table = torch.zeros(num_positions, dim)
    table[:, 0::2] = torch.sin(position * div_term)
    table[:, 1::2] = torch.cos(position * div_term)
    return table[None]


def halves_table(num_positions: int, dim: int) -> torch.Tensor:
    """MAE's layout of the same table: every sine, then every cosine."""
    return torch.cat([sincos_table(num_positions, dim)[..., 0::2], sincos_table(num_positions, dim)[..., 1::2]], dim=-1)


def random_checkpoint(seed: int = 0, learned_positions: bool = False, vocab_size: int = VOCAB) -> dict:
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * scale

    def linear(name: str, out_features: int, in_features: int) -> dict:
        weight = randn(out_features, in_features, scale=in_features**-0.5)
        return {f"{name}.weight": weight, f"{name}.bias": randn(out_features, scale=0.1)}

    def norm(name: str, dim: int) -> dict:
        # Not the identity, so that swapped norms show in the outputs.
        return {f"{name}.weight": 1 + randn(dim, scale=0.2), f"{name}.bias": randn(dim, scale=0.2)}

    def blocks(prefix: str, dim: int, depth: int) -> dict:
        params = {}
        for i in range(depth):
            params |= norm(f"{prefix}.{i}.norm1", dim) | linear(f"{prefix}.{i}.attn.qkv", 3 * dim, dim)
            params |= linear(f"{prefix}.{i}.attn.proj", dim, dim) | norm(f"{prefix}.{i}.norm2", dim)
            params |= linear(f"{prefix}.{i}.mlp.fc1", 4 * dim, dim) | linear(f"{prefix}.{i}.mlp.fc2", dim, 4 * dim)
        return params

    def positions(dim: int) -> torch.Tensor:
        return randn(1, POSITIONS, dim, scale=0.5) if learned_positions else sincos_table(POSITIONS, dim)

    def encoder() -> dict:
        return {
            "token_embed.token_embed.weight": randn(vocab_size, HIDDEN),
            "pos_embed": positions(HIDDEN),
            **blocks("blocks", HIDDEN, LAYERS),
            **norm("norm", HIDDEN),
        }

    predictor = {
        **linear("predictor_embed", PRED_HIDDEN, HIDDEN),
        "mask_token": randn(1, 1, PRED_HIDDEN),
        "pred_pos_embed": positions(PRED_HIDDEN),
        **blocks("predictor_blocks", PRED_HIDDEN, PRED_LAYERS),
        **norm("predictor_norm", PRED_HIDDEN),
        **linear("predictor_proj", HIDDEN, PRED_HIDDEN),
    }
    regressor = linear("proj", HIDDEN, HIDDEN) | norm("norm", HIDDEN) | linear("regress", vocab_size, HIDDEN)
    return {
        "encoder": encoder(),
        "predictor": predictor,
        "target_encoder": encoder(),  # drawn apart from the online encoder, so that a mix-up shows
        "token_regressor": regressor,
        "loss_weight": torch.tensor(LOGIT),
        "config": {"meta": {"model_name": "text_transformer_tiny", "pred_depth": PRED_LAYERS, "num_heads": HEADS}},
        "epoch": 2,
    }


def layer_norm(x: torch.Tensor, p: dict, name: str, eps: float = EPS) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], p[f"{name}.weight"], p[f"{name}.bias"], eps)


def linear(x: torch.Tensor, p: dict, name: str) -> torch.Tensor:
    return x @ p[f"{name}.weight"].T + p[f"{name}.bias"]


def block(x: torch.Tensor, p: dict, name: str, heads: int) -> torch.Tensor:
    batch, seq, dim = x.shape
    q, k, v = linear(layer_norm(x, p, f"{name}.norm1"), p, f"{name}.attn.qkv").split(dim, dim=-1)
    q, k, v = (t.reshape(batch, seq, heads, dim // heads).transpose(1, 2) for t in (q, k, v))
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(dim // heads), dim=-1)
    x = x + linear((weights @ v).transpose(1, 2).reshape(batch, seq, dim), p, f"{name}.attn.proj")
    return x + linear(F.gelu(linear(layer_norm(x, p, f"{name}.norm2"), p, f"{name}.mlp.fc1")), p, f"{name}.mlp.fc2")


def reference_encoder(p: dict, ids: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
    positions = torch.arange(ids.shape[1]) if positions is None else positions
    x = p["token_embed.token_embed.weight"][ids] + p["pos_embed"][0][positions]
    for i in range(LAYERS):
        x = block(x, p, f"blocks.{i}", HEADS)
    return layer_norm(x, p, "norm")


def reference_predictor(p: dict, z: torch.Tensor, context: torch.Tensor, target: torch.Tensor, heads: int = HEADS):
    x = linear(z, p, "predictor_embed") + p["pred_pos_embed"][0][context]
    queries = p["mask_token"] + p["pred_pos_embed"][0][target]
    x = torch.cat([x, queries], dim=1)
    for i in range(PRED_LAYERS):
        x = block(x, p, f"predictor_blocks.{i}", heads)
    return linear(layer_norm(x, p, "predictor_norm")[:, z.shape[1] :], p, "predictor_proj")


def predict_one_block(predictor, z: torch.Tensor, context: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Our predictor on one target block per sequence, without padding: target `(n, n_target)`."""
    return predictor(z, context, torch.ones_like(context), target[:, None], torch.ones_like(target[:, None]))[:, 0]


def reference_regressor(p: dict, h: torch.Tensor) -> torch.Tensor:
    return linear(layer_norm(F.gelu(linear(h, p, "proj")), p, "norm", REGRESSOR_EPS), p, "regress")


def close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5)


# ---- fixtures -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def original() -> dict:
    return random_checkpoint()


@pytest.fixture(scope="module")
def converted_dir(original, tmp_path_factory):
    path = tmp_path_factory.mktemp("original") / "text_jepa-final.pth.tar"
    torch.save(original, path)
    output_dir = tmp_path_factory.mktemp("converted")
    convert_original_checkpoint(path, output_dir, config_overrides=SPECIAL_IDS)  # heads from the checkpoint's config
    return output_dir


@pytest.fixture(scope="module")
def converted(converted_dir) -> PrJepaForPreTraining:
    return PrJepaForPreTraining.from_pretrained(converted_dir).eval()


@pytest.fixture(scope="module")
def saved_tokenizer_dir(tokenizer, tmp_path_factory) -> str:
    """conftest's tiny tokenizer saved with its config, so that AutoTokenizer can open it by path."""
    directory = str(tmp_path_factory.mktemp("saved_tokenizer"))
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def ids() -> torch.Tensor:
    return torch.randint(0, VOCAB, (3, POSITIONS), generator=torch.Generator().manual_seed(1))


def save(checkpoint: object, tmp_path, name: str = "checkpoint.pth.tar"):
    path = tmp_path / name
    torch.save(checkpoint, path)
    return path


# ---- equivalence --------------------------------------------------------------------------------------------------


@torch.no_grad()
def test_encoder_matches_original(converted, original, ids):
    close(converted.prjepa(ids).last_hidden_state, reference_encoder(original["encoder"], ids))
    # The JEPA context view: a subset of positions encoded alone.
    positions = torch.tensor([[1, 2, 3, 7, 8, 12]]).expand(3, -1)
    context = ids.gather(1, positions)
    expected = reference_encoder(original["encoder"], context, positions)
    close(converted.prjepa(context, position_ids=positions).last_hidden_state, expected)


@torch.no_grad()
def test_target_encoder_matches_original(converted, original, ids):
    close(converted.target_encoder(ids).last_hidden_state, reference_encoder(original["target_encoder"], ids))
    target = PrJepaModel.from_pretrained(converted.name_or_path, encoder="target").eval()
    close(target(ids).last_hidden_state, reference_encoder(original["target_encoder"], ids))


@torch.no_grad()
def test_mlm_logits_match_original(converted_dir, original, ids):
    model = AutoModelForMaskedLM.from_pretrained(converted_dir).eval()
    expected = reference_regressor(original["token_regressor"], reference_encoder(original["encoder"], ids))
    close(model(ids).logits, expected)


@torch.no_grad()
def test_predictor_matches_original(converted, original):
    z = torch.randn(2, 5, HIDDEN, generator=torch.Generator().manual_seed(2))
    context = torch.tensor([[0, 1, 2, 6, 7], [3, 4, 5, 9, 15]])
    target = torch.tensor([[3, 4, 5], [10, 11, 12]])
    actual = predict_one_block(converted.predictor, z, context, target)
    close(actual, reference_predictor(original["predictor"], z, context, target))


def test_loss_weight_and_config(converted):
    close(torch.sigmoid(converted.loss_weighting.jepa_logit), torch.sigmoid(torch.tensor(LOGIT)))
    config = converted.config
    # The original's fixed table, in its layout: a buffer again, not a parameter to train.
    assert (config.position_embedding_type, config.sinusoidal_layout) == ("sinusoidal", "interleaved")
    assert not any("position_embeddings" in name for name, _ in converted.named_parameters())
    assert config.mlm_head_layer_norm_eps == REGRESSOR_EPS and config.layer_norm_eps == EPS
    assert (config.vocab_size, config.hidden_size, config.num_hidden_layers) == (VOCAB, HIDDEN, LAYERS)
    assert (config.num_attention_heads, config.intermediate_size) == (HEADS, 4 * HIDDEN)
    assert config.max_position_embeddings == POSITIONS
    predictor = (config.predictor_hidden_size, config.predictor_num_hidden_layers, config.predictor_num_attention_heads)
    assert predictor == (PRED_HIDDEN, PRED_LAYERS, HEADS)
    assert config.mask_token_id == SPECIAL_IDS["mask_token_id"]
    assert not any(parameter.requires_grad for parameter in converted.target_encoder.parameters())


@torch.no_grad()
def test_auto_model_opens_the_encoder(converted_dir, original, ids):
    model = AutoModel.from_pretrained(converted_dir).eval()
    assert isinstance(model, PrJepaModel)
    close(model(ids).last_hidden_state, reference_encoder(original["encoder"], ids))


@pytest.mark.parametrize(
    "loss_weight",
    [torch.tensor([LOGIT]), {"w": torch.tensor(LOGIT)}, {"module.loss_weight": torch.tensor([LOGIT])}, LOGIT],
    ids=["1-element", "dict", "ddp-state-dict", "float"],
)
def test_loss_weight_forms(loss_weight, tmp_path):
    checkpoint = random_checkpoint() | {"loss_weight": loss_weight}
    model = convert_original_checkpoint(save(checkpoint, tmp_path), tmp_path / "out", config_overrides=SPECIAL_IDS)
    close(torch.sigmoid(model.loss_weighting.jepa_logit), torch.sigmoid(torch.tensor(LOGIT)))


@torch.no_grad()
def test_ddp_prefix_and_head_flags(tmp_path, ids):
    checkpoint = random_checkpoint(seed=3)
    reference = {name: dict(checkpoint[name]) for name in STATE_DICTS}
    for name in STATE_DICTS:
        checkpoint[name] = {f"module.{key}": value for key, value in checkpoint[name].items()}
    checkpoint["config"] = {"meta": {"pred_depth": PRED_LAYERS}}  # no head counts: the flags must supply them
    model = convert_original_checkpoint(
        save(checkpoint, tmp_path),
        tmp_path / "out",
        num_attention_heads=HEADS,
        predictor_num_attention_heads=4,
        config_overrides=SPECIAL_IDS,
    )
    close(model.prjepa(ids).last_hidden_state, reference_encoder(reference["encoder"], ids))
    z = torch.randn(1, 4, HIDDEN, generator=torch.Generator().manual_seed(6))
    context, target = torch.tensor([[0, 1, 2, 3]]), torch.tensor([[8, 9]])
    actual = predict_one_block(model.predictor, z, context, target)
    close(actual, reference_predictor(reference["predictor"], z, context, target, heads=4))


@torch.no_grad()
def test_predictor_heads_from_config_and_nearly_sinusoidal_tables(tmp_path):
    checkpoint = random_checkpoint(seed=5)
    exact = dict(checkpoint["predictor"])
    checkpoint["config"] = {"meta": {"num_heads": HEADS, "pred_num_heads": 4}}
    # A table computed in float32 rather than float64 (off by up to ~3e-5) is still the fixed table.
    for name, key in (("encoder", "pos_embed"), ("target_encoder", "pos_embed"), ("predictor", "pred_pos_embed")):
        checkpoint[name][key] = checkpoint[name][key] + 3e-5
    model = convert_original_checkpoint(save(checkpoint, tmp_path), tmp_path / "out", config_overrides=SPECIAL_IDS)
    assert (model.config.position_embedding_type, model.config.sinusoidal_layout) == ("sinusoidal", "interleaved")
    assert model.config.predictor_num_attention_heads == 4
    z = torch.randn(1, 4, HIDDEN, generator=torch.Generator().manual_seed(6))
    context, target = torch.tensor([[0, 1, 2, 3]]), torch.tensor([[8, 9]])
    actual = predict_one_block(model.predictor, z, context, target)
    close(actual, reference_predictor(exact, z, context, target, heads=4))


def test_a_config_with_several_head_counts_needs_the_callers(tmp_path):
    checkpoint = random_checkpoint(seed=5)
    checkpoint["config"] = {"presets": {"small": {"num_heads": HEADS}, "large": {"num_heads": 2 * HEADS}}}
    path = save(checkpoint, tmp_path)
    with pytest.raises(CheckpointConversionError, match=rf"\[{HEADS}, {2 * HEADS}\]\. Pass --num_attention_heads"):
        convert_original_checkpoint(path, tmp_path / "out", config_overrides=SPECIAL_IDS)
    model = convert_original_checkpoint(path, tmp_path / "out", num_attention_heads=HEADS, config_overrides=SPECIAL_IDS)
    assert model.config.num_attention_heads == model.config.predictor_num_attention_heads == HEADS


@torch.no_grad()
def test_learned_positions_are_copied(tmp_path, ids, capsys):
    checkpoint = random_checkpoint(seed=4, learned_positions=True)
    convert_original_checkpoint(save(checkpoint, tmp_path), tmp_path / "out", config_overrides=SPECIAL_IDS)
    assert "learned" in capsys.readouterr().out
    model = PrJepaForPreTraining.from_pretrained(tmp_path / "out").eval()
    assert model.config.position_embedding_type == "learned"
    assert torch.equal(model.prjepa.embeddings.position_embeddings.weight, checkpoint["encoder"]["pos_embed"][0])
    target_table = model.target_encoder.embeddings.position_embeddings.weight
    assert torch.equal(target_table, checkpoint["target_encoder"]["pos_embed"][0])
    assert torch.equal(model.predictor.position_embeddings.weight, checkpoint["predictor"]["pred_pos_embed"][0])
    close(model.prjepa(ids).last_hidden_state, reference_encoder(checkpoint["encoder"], ids))


@torch.no_grad()
def test_each_sinusoidal_layout_is_recognised_and_a_mixture_is_copied_as_learned(tmp_path, ids, capsys):
    checkpoint = random_checkpoint(seed=7)
    for name, key, dim in (("encoder", "pos_embed", HIDDEN), ("target_encoder", "pos_embed", HIDDEN)):
        checkpoint[name][key] = halves_table(POSITIONS, dim)
    checkpoint["predictor"]["pred_pos_embed"] = halves_table(POSITIONS, PRED_HIDDEN)
    model = convert_original_checkpoint(save(checkpoint, tmp_path), tmp_path / "out", config_overrides=SPECIAL_IDS)
    assert (model.config.position_embedding_type, model.config.sinusoidal_layout) == ("sinusoidal", "halves")
    close(model.prjepa.eval()(ids).last_hidden_state, reference_encoder(checkpoint["encoder"], ids))
    # Tables of two layouts are not one fixed table: copied, as learned ones.
    checkpoint["predictor"]["pred_pos_embed"] = sincos_table(POSITIONS, PRED_HIDDEN)
    mixed = convert_original_checkpoint(save(checkpoint, tmp_path), tmp_path / "mixed", config_overrides=SPECIAL_IDS)
    assert mixed.config.position_embedding_type == "learned" and "learned" in capsys.readouterr().out


@torch.no_grad()
@pytest.mark.parametrize("learned_positions", [False, True])
def test_the_originals_512_position_predictor_table_fits_a_shorter_encoder(tmp_path, learned_positions):
    """The original builds its predictor's table for 512 positions whatever its sequence length."""
    checkpoint = random_checkpoint(seed=9, learned_positions=learned_positions)
    longer = torch.randn(1, 512, PRED_HIDDEN) if learned_positions else sincos_table(512, PRED_HIDDEN)
    checkpoint["predictor"]["pred_pos_embed"] = longer
    model = convert_original_checkpoint(save(checkpoint, tmp_path), tmp_path / "out", config_overrides=SPECIAL_IDS)
    assert model.config.max_position_embeddings == POSITIONS
    z = torch.randn(1, 4, HIDDEN, generator=torch.Generator().manual_seed(6))
    context, target = torch.tensor([[0, 1, 2, 3]]), torch.tensor([[8, 9, 15]])
    actual = predict_one_block(model.predictor, z, context, target)
    close(actual, reference_predictor(checkpoint["predictor"], z, context, target))


@torch.no_grad()
def test_an_mlm_only_checkpoint_converts_to_the_mlm_only_model(tmp_path, ids, capsys):
    """The original's training_mode "mlm" saves no target encoder, loss_weight None and its untrained predictor."""
    checkpoint = random_checkpoint(seed=8)
    del checkpoint["target_encoder"]
    checkpoint.update(loss_weight=None, training_mode="mlm")
    # Head counts for the predictor that is not converted neither stop the conversion nor are taken.
    checkpoint["config"] = {"meta": {"num_heads": HEADS, "presets": [{"pred_num_heads": 2}, {"pred_num_heads": 4}]}}
    path = save(checkpoint, tmp_path)
    with pytest.raises(ValueError, match="MLM-only checkpoint .* drop --predictor_num_attention_heads"):
        convert_original_checkpoint(path, tmp_path / "out", predictor_num_attention_heads=2)
    model = convert_original_checkpoint(path, tmp_path / "out", config_overrides=SPECIAL_IDS)
    assert model.config.objective == "mlm" and model.predictor is None and model.target_encoder is None
    assert "not the predictor" in capsys.readouterr().out
    masked_lm = AutoModelForMaskedLM.from_pretrained(tmp_path / "out").eval()
    expected = reference_regressor(checkpoint["token_regressor"], reference_encoder(checkpoint["encoder"], ids))
    close(masked_lm(ids).logits, expected)


# ---- refusals -----------------------------------------------------------------------------------------------------


def transpose_fc2(checkpoint: dict) -> None:
    checkpoint["target_encoder"]["blocks.1.mlp.fc2.weight"] = checkpoint["target_encoder"]["blocks.1.mlp.fc2.weight"].T


def narrow_pred_pos(checkpoint: dict) -> None:
    checkpoint["predictor"]["pred_pos_embed"] = sincos_table(POSITIONS - 1, PRED_HIDDEN)


@pytest.mark.parametrize(
    "corrupt, named",
    [
        (transpose_fc2, "target_encoder.blocks.1.mlp.fc2.weight has shape (128, 32), expected (32, 128)"),
        (narrow_pred_pos, "predictor.pred_pos_embed has shape (1, 15, 16), expected (1, 16, 16)"),
        (lambda c: c["predictor"].pop("predictor_norm.bias"), "missing predictor.predictor_norm.bias"),
        (lambda c: c["encoder"].pop("blocks.0.attn.qkv.weight"), "missing encoder.blocks.0.attn.qkv.weight"),
        (lambda c: c["token_regressor"].update(bias=torch.zeros(3)), "unexpected token_regressor.bias"),
        (lambda c: c["encoder"].update({"blocks.2.norm1.bias": torch.ones(HIDDEN)}), "missing encoder.blocks.2.norm2"),
        (lambda c: c.pop("token_regressor"), "lacks ['token_regressor']"),
        (lambda c: c.update(loss_weight=torch.zeros(2)), "loss_weight"),
    ],
    ids=[
        "wrong-shape",
        "wrong-positions",
        "missing-key",
        "missing-qkv",
        "leftover-key",
        "extra-layer",
        "missing-state-dict",
        "bad-loss-weight",
    ],
)
def test_mismatched_checkpoint_is_refused(corrupt, named, tmp_path):
    checkpoint = random_checkpoint()
    corrupt(checkpoint)
    path = save(checkpoint, tmp_path)
    with pytest.raises(CheckpointConversionError) as error:
        convert_original_checkpoint(path, tmp_path / "out", num_attention_heads=HEADS, config_overrides=SPECIAL_IDS)
    assert str(path) in str(error.value) and named in str(error.value)
    assert not (tmp_path / "out").exists()


def truncated_checkpoint(path) -> None:
    torch.save(random_checkpoint(), path)
    path.write_bytes(path.read_bytes()[:1000])


NOT_A_CHECKPOINT = r"is not a PyTorch checkpoint \(a file written by torch.save\), or it is damaged"


@pytest.mark.parametrize(
    "write, named",
    [
        (lambda path: path.write_bytes(b"not a checkpoint\n"), NOT_A_CHECKPOINT + r" \(not what torch.save writes\)"),
        (lambda path: path.write_bytes(bytes(range(256))), NOT_A_CHECKPOINT),
        (lambda path: path.write_bytes(b""), NOT_A_CHECKPOINT + r" \(EOFError\)"),
        (truncated_checkpoint, NOT_A_CHECKPOINT + r" \(PytorchStreamReader failed reading zip archive"),
        (lambda path: torch.save([torch.zeros(2)], path), "holds a list, not a checkpoint dict"),
        (
            lambda path: torch.save({"encoder": {}, "config": argparse.Namespace(lr=1e-3)}, path),
            r"holds objects of type argparse.Namespace, which this converter does not create: .* Save the checkpoint "
            r"again from the original code with plain values in their place",
        ),
    ],
    ids=["text-file", "binary", "empty", "truncated", "list", "unsafe-object"],
)
def test_non_checkpoint_file_is_refused(write, named, tmp_path):
    path = tmp_path / "file.pth.tar"
    write(path)
    with pytest.raises(CheckpointConversionError, match=rf"file.pth.tar {named}") as error:
        convert_original_checkpoint(path, tmp_path / "out")
    # torch's advice to load with weights_only=False would let a file from elsewhere run code: never passed on.
    assert "weights_only" not in str(error.value) and "weights_only" not in str(error.value.__cause__)
    assert not (tmp_path / "out").exists()


def test_the_cli_names_a_file_that_is_not_a_checkpoint_as_such(tmp_path):
    path = tmp_path / "garbage.pth.tar"
    path.write_bytes(b"garbage")
    with pytest.raises(SystemExit, match=rf"^error: {path} {NOT_A_CHECKPOINT} .* Check --checkpoint_path") as error:
        main(["--checkpoint_path", str(path), "--output_dir", str(tmp_path / "out")])
    assert "weights_only" not in str(error.value)


@pytest.mark.parametrize("field", ["hidden_size", "position_embedding_scale"])
def test_fields_the_checkpoint_fixes_cannot_be_overridden(field, tmp_path):
    # The sin/cos table is checked against the original's at scale 1; a scaled one would change every output.
    with pytest.raises(ValueError, match=f"{field}.*read from the checkpoint's tensors"):
        convert_original_checkpoint(save(random_checkpoint(), tmp_path), tmp_path / "out", config_overrides={field: 2})
    assert not (tmp_path / "out").exists()


def test_non_empty_output_dir_is_refused(tmp_path):
    path = save(random_checkpoint(), tmp_path)
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    (output_dir / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite_output_dir"):
        convert_original_checkpoint(path, output_dir, config_overrides=SPECIAL_IDS)
    assert sorted(p.name for p in output_dir.iterdir()) == ["keep.txt"]
    convert_original_checkpoint(path, output_dir, overwrite_output_dir=True, config_overrides=SPECIAL_IDS)
    assert (output_dir / "model.safetensors").exists()


@torch.no_grad()
def test_cli_saves_model_and_tokenizer(saved_tokenizer_dir, tmp_path, ids):
    checkpoint = random_checkpoint(vocab_size=len(TOKENIZER_VOCAB))
    path = save(checkpoint, tmp_path)
    main(
        ["--checkpoint_path", str(path), "--output_dir", str(tmp_path / "out"), "--tokenizer_name", saved_tokenizer_dir]
    )
    model = PrJepaForPreTraining.from_pretrained(tmp_path / "out").eval()
    # The special-token ids come from the tokenizer (the conftest vocabulary: [PAD] 0, [CLS] 2, [SEP] 3, [MASK] 4).
    config = model.config
    assert (config.pad_token_id, config.cls_token_id, config.sep_token_id, config.mask_token_id) == (0, 2, 3, 4)
    assert len(AutoTokenizer.from_pretrained(tmp_path / "out")) == len(TOKENIZER_VOCAB)
    close(model.prjepa(ids).last_hidden_state, reference_encoder(checkpoint["encoder"], ids))
    with pytest.raises(SystemExit, match="not an empty directory"):
        main(["--checkpoint_path", str(path), "--output_dir", str(tmp_path / "out")])
    # A file there is no folder to overwrite: its error must not suggest --overwrite_output_dir.
    (tmp_path / "file").write_text("mine")
    for output_dir, flags in [("file", []), ("file", ["--overwrite_output_dir"]), ("file/model", [])]:
        with pytest.raises(
            SystemExit, match=r"--output_dir .*file.* a file, not a folder: choose another --output_dir"
        ):
            main(["--checkpoint_path", str(path), "--output_dir", str(tmp_path / output_dir), *flags])
    assert (tmp_path / "file").read_text() == "mine"


def test_cli_refuses_a_tokenizer_larger_than_the_vocabulary(saved_tokenizer_dir, tmp_path):
    path = save(random_checkpoint(vocab_size=len(TOKENIZER_VOCAB) - 1), tmp_path)
    with pytest.raises(SystemExit, match="vocab_size"):
        main(
            [
                "--checkpoint_path",
                str(path),
                "--output_dir",
                str(tmp_path / "out"),
                "--tokenizer_name",
                saved_tokenizer_dir,
            ]
        )
    assert not (tmp_path / "out").exists()
