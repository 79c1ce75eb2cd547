"""PrJEPA model configuration.

Self-contained (only torch and transformers): `save_pretrained` copies this file into every checkpoint so that
`AutoConfig.from_pretrained(..., trust_remote_code=True)` works without this project installed.
"""

import dataclasses
import difflib
import math
import typing
from typing import Any

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig

OBJECTIVES = ("hybrid", "mlm")
LOSS_WEIGHTINGS = ("learned", "fixed", "uncertainty")
JEPA_LOSSES = ("cosine", "smooth_l1", "mse")
JEPA_TARGET_NORMS = ("layer", "instance")
POSITION_EMBEDDING_TYPES = ("sinusoidal", "learned")
# Column order of the sin/cos table: sines then cosines (this project's first layout, MAE's), or alternating sine and
# cosine per frequency (the original code's).
SINUSOIDAL_LAYOUTS = ("halves", "interleaved")
POOLING_STRATEGIES = ("mean", "max", "cls")
# Which of a pretraining checkpoint's encoders the encoder classes load: the online one (default) or the EMA target.
ENCODERS = ("online", "target")

# Fields whose `None` means another field's value (the predictor's head count the encoder's, the MLM head's eps the
# encoder's), and which follow that field where they equal it when a config is updated.
FOLLOWING_FIELDS = {"predictor_num_attention_heads": "num_attention_heads", "mlm_head_layer_norm_eps": "layer_norm_eps"}

# Encoder (hidden, layers, heads) of the original code's presets; every preset's encoder uses head width 64 and an MLP
# ratio of 4. "paper" is what the original training script actually built (it ignored the preset name), and "mini" is
# this project's CPU-sized model.
PRESETS: dict[str, dict[str, int]] = {
    "mini": dict(
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
        predictor_hidden_size=128,
        predictor_num_hidden_layers=2,
    ),
    "tiny": dict(hidden_size=192, num_hidden_layers=12, num_attention_heads=3, intermediate_size=768),
    "small": dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536),
    # With the original's exact sin/cos layout and its MLM head's LayerNorm eps (PyTorch's default).
    "paper": dict(
        hidden_size=512,
        num_hidden_layers=6,
        num_attention_heads=8,
        intermediate_size=2048,
        sinusoidal_layout="interleaved",
        mlm_head_layer_norm_eps=1e-5,
    ),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
}

# Written into every saved config so that a checkpoint of any PrJEPA class can be opened with every Auto class
# (`save_pretrained` alone records only the class that was saved).
AUTO_MAP = {
    "AutoConfig": "configuration_prjepa.PrJepaConfig",
    "AutoModel": "modeling_prjepa.PrJepaModel",
    "AutoModelForPreTraining": "modeling_prjepa.PrJepaForPreTraining",
    "AutoModelForMaskedLM": "modeling_prjepa.PrJepaForMaskedLM",
    "AutoModelForSequenceClassification": "modeling_prjepa.PrJepaForSequenceClassification",
}


def _check_choice(field: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"PrJepaConfig.{field} must be one of {choices}, got {value!r}.")


def _fields_following(values: dict[str, Any], changed: set[str]) -> list[str]:
    """The `FOLLOWING_FIELDS` that equal their field in `values` and are left unchanged while it changes: they take its
    new value, so that a config whose predictor heads were the encoder's keeps them so."""
    return [
        field
        for field, leader in FOLLOWING_FIELDS.items()
        if leader in changed and field not in changed and values.get(field) == values.get(leader)
    ]


def _check_heads(width_field: str, width: int, heads_field: str, heads: int) -> None:
    if heads < 1 or width % heads != 0:
        leader = FOLLOWING_FIELDS.get(heads_field)
        unless_set = f" ({heads_field} is {leader} unless set)" if leader else ""
        raise ValueError(
            f"PrJepaConfig.{heads_field}={heads} must be a positive divisor of {width_field}={width}{unless_set}; "
            f"pick a head count that divides the width (e.g. {width_field} // 64)."
        )


def _check_scale(field: str, scale: tuple[float, float], whole_sequence_allowed: bool) -> None:
    if len(scale) != 2:
        raise ValueError(f"PrJepaConfig.{field} must be a pair (min, max), got {scale!r}.")
    low, high = scale
    if not (0.0 < low <= high and (high <= 1.0 if whole_sequence_allowed else high < 1.0)):
        bound = "max <= 1" if whole_sequence_allowed else "max < 1"
        raise ValueError(
            f"PrJepaConfig.{field} must satisfy 0 < min <= {bound} (fractions of a sequence's content length), got "
            f"{scale!r}."
        )


@strict
class PrJepaConfig(PreTrainedConfig):
    r"""
    Configuration of a PrJEPA encoder and of its pretraining heads (predictor, MLM head, loss weighting, EMA target).

    Defaults have the sizes of the encoder the original research code actually trained (hidden 512, 6 layers, 8
    heads, a 192-wide predictor of depth 6); `PrJepaConfig.from_preset("paper")` adds its interleaved sin/cos layout
    and MLM-head eps, and `from_preset(name)` gives the other sizes.

    Encoder:
        vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, hidden_act,
        hidden_dropout_prob, attention_probs_dropout_prob, max_position_embeddings, layer_norm_eps,
        initializer_range: as in BERT, but blocks are pre-LayerNorm with a final LayerNorm.
        position_embedding_type (`"sinusoidal"` | `"learned"`): fixed 1-D sin/cos table or a learned table, for the
            encoder and the predictor alike.
        position_embedding_scale: factor on the fixed sin/cos table (1 = the original's amplitude). Token embeddings
            start at std `initializer_range`, so a table of amplitude 1 outweighs them 50-fold at initialisation.
        sinusoidal_layout (`"halves"` | `"interleaved"`): the fixed table's columns, sines then cosines, or sine and
            cosine alternating per frequency (the original's; the `paper` preset's). The two train alike (a fixed
            permutation of hidden units), but a checkpoint reads its table in its own layout.
        qkv_bias: bias on the fused query/key/value projection.
        mlm_head_layer_norm_eps: the MLM head's LayerNorm eps (`None`: `layer_norm_eps`; the original's is 1e-5).
    Predictor (JEPA branch):
        predictor_hidden_size, predictor_num_hidden_layers, predictor_num_attention_heads (`None`: the encoder's).
    Masking (read by the pretraining collator):
        mlm_probability: fraction of real, non-special tokens chosen for MLM (80% `[MASK]`, 10% random, 10% kept).
        num_target_blocks: contiguous target spans per sequence.
        target_block_scale, context_block_scale: (min, max) block sizes as fractions of each sequence's content
            length (its tokens other than padding and special tokens).
        min_context_tokens: fewest context tokens left once targets are removed from the context block.
    Objective:
        objective (`"hybrid"` | `"mlm"`): JEPA + MLM on one shared encoder, or the MLM-only baseline (no predictor
            and no target encoder are built).
        loss_weighting (`"learned"` | `"fixed"` | `"uncertainty"`): λ = sigmoid(w) with w learnable from 0;
            λ = `jepa_weight`; or homoscedastic uncertainty weighting Σ exp(−s_i)·L_i + s_i (Kendall et al., 2018).
        jepa_weight: λ when `loss_weighting="fixed"`.
        jepa_loss (`"cosine"` | `"smooth_l1"` | `"mse"`): 1 − cos(ẑ, h) or a regression loss, per target token.
        jepa_target_norm (`"layer"` | `"instance"`): the target states h normalised per token over the hidden
            dimension (LayerNorm without affine parameters, the original's), or per feature over each sequence's real
            tokens (instance norm, as data2vec's targets): a direction that every token shares is then no target.
        ema_momentum_start, ema_momentum_end: target-encoder momentum, linear in the optimizer step.
        sparse_prediction: `PrJepaForMaskedLM` given labels projects onto the vocabulary only at labelled positions
            and returns logits of shape `(num_labelled, vocab_size)`; `False` (default) gives BERT's
            `(batch, seq, vocab_size)`, which transformers' MLM evaluation (e.g. `run_mlm.py`'s accuracy) indexes.
            Pretraining (`PrJepaForPreTraining`) always projects only the labelled positions.
    Downstream:
        classifier_pooling (`"mean"` | `"max"` | `"cls"`): how `PrJepaForSequenceClassification` pools tokens.
        classifier_dropout: dropout before its classifier (`None`: `hidden_dropout_prob`).
    """

    model_type = "prjepa"

    vocab_size: int = 30522
    hidden_size: int = 512
    num_hidden_layers: int = 6
    num_attention_heads: int = 8
    intermediate_size: int = 2048
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.0
    attention_probs_dropout_prob: float | int = 0.0
    max_position_embeddings: int = 512
    position_embedding_type: str = "sinusoidal"
    position_embedding_scale: float | int = 1.0
    sinusoidal_layout: str = "halves"
    qkv_bias: bool = True
    layer_norm_eps: float = 1e-6
    mlm_head_layer_norm_eps: float | None = None
    initializer_range: float = 0.02

    predictor_hidden_size: int = 192
    predictor_num_hidden_layers: int = 6
    predictor_num_attention_heads: int | None = None

    mlm_probability: float = 0.15
    num_target_blocks: int = 2
    target_block_scale: tuple[float, float] | list[float] = (0.10, 0.25)
    context_block_scale: tuple[float, float] | list[float] = (0.65, 0.85)
    min_context_tokens: int = 4

    objective: str = "hybrid"
    loss_weighting: str = "learned"
    jepa_weight: float | int = 0.5
    jepa_loss: str = "cosine"
    jepa_target_norm: str = "layer"
    ema_momentum_start: float | int = 0.996
    ema_momentum_end: float | int = 1.0
    sparse_prediction: bool = False

    classifier_pooling: str = "mean"
    classifier_dropout: float | int | None = None

    pad_token_id: int | None = 0
    cls_token_id: int | None = 101
    sep_token_id: int | None = 102
    mask_token_id: int | None = 103
    tie_word_embeddings: bool = False
    auto_map: dict[str, str] | None = None

    def __post_init__(self, **kwargs):
        self.target_block_scale = tuple(self.target_block_scale)
        self.context_block_scale = tuple(self.context_block_scale)
        for field, leader in FOLLOWING_FIELDS.items():
            if getattr(self, field) is None:
                setattr(self, field, getattr(self, leader))
        if self.auto_map is None:
            self.auto_map = dict(AUTO_MAP)
        super().__post_init__(**kwargs)
        # @strict runs this validator too, but wraps its error; calling it here raises the plain ValueError first.
        self.validate_architecture()

    def validate_architecture(self) -> None:
        """Raises `ValueError` naming the first impossible field."""
        # Not at the top: transformers.activations takes about a second to import, which every script's --help, and
        # every reader of a config alone, would otherwise pay.
        from transformers.activations import ACT2FN

        super().validate_architecture()
        # Before the head counts: 0 and negative widths are divisible by any head count.
        positive = (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "intermediate_size",
            "max_position_embeddings",
            "predictor_hidden_size",
            "predictor_num_hidden_layers",
        )
        for field in positive:
            if getattr(self, field) < 1:
                raise ValueError(f"PrJepaConfig.{field} must be a positive integer (>= 1), got {getattr(self, field)}.")
        _check_heads("hidden_size", self.hidden_size, "num_attention_heads", self.num_attention_heads)
        _check_heads(
            "predictor_hidden_size",
            self.predictor_hidden_size,
            "predictor_num_attention_heads",
            self.predictor_num_attention_heads,
        )
        for field in ("layer_norm_eps", "mlm_head_layer_norm_eps", "initializer_range", "position_embedding_scale"):
            if not 0 < getattr(self, field) < math.inf:
                raise ValueError(f"PrJepaConfig.{field} must be positive and finite, got {getattr(self, field)}.")
        if self.hidden_act not in ACT2FN:
            raise ValueError(f"PrJepaConfig.hidden_act {self.hidden_act!r} is not a known activation; use e.g. 'gelu'.")
        _check_choice("position_embedding_type", self.position_embedding_type, POSITION_EMBEDDING_TYPES)
        _check_choice("sinusoidal_layout", self.sinusoidal_layout, SINUSOIDAL_LAYOUTS)
        if self.position_embedding_type == "sinusoidal" and (self.hidden_size % 2 or self.predictor_hidden_size % 2):
            raise ValueError(
                "PrJepaConfig.position_embedding_type='sinusoidal' needs even hidden_size and predictor_hidden_size "
                f"(half sines, half cosines), got {self.hidden_size} and {self.predictor_hidden_size}."
            )
        if self.position_embedding_type != "sinusoidal" and self.position_embedding_scale != 1.0:
            raise ValueError(
                "PrJepaConfig.position_embedding_scale scales the fixed sinusoidal table; a learned table is "
                "initialised with std initializer_range instead. Drop position_embedding_scale or use "
                "position_embedding_type='sinusoidal'."
            )
        _check_choice("objective", self.objective, OBJECTIVES)
        _check_choice("loss_weighting", self.loss_weighting, LOSS_WEIGHTINGS)
        _check_choice("jepa_loss", self.jepa_loss, JEPA_LOSSES)
        _check_choice("jepa_target_norm", self.jepa_target_norm, JEPA_TARGET_NORMS)
        _check_choice("classifier_pooling", self.classifier_pooling, POOLING_STRATEGIES)
        # A target block of the whole sequence would leave no context; a context span of the whole sequence (I-JEPA's
        # context scale reaches 1) still loses the targets.
        _check_scale("target_block_scale", self.target_block_scale, whole_sequence_allowed=False)
        _check_scale("context_block_scale", self.context_block_scale, whole_sequence_allowed=True)
        if not 0.0 < self.mlm_probability < 1.0:
            raise ValueError(f"PrJepaConfig.mlm_probability must be in (0, 1), got {self.mlm_probability}.")
        if self.num_target_blocks < 1:
            raise ValueError(f"PrJepaConfig.num_target_blocks must be at least 1, got {self.num_target_blocks}.")
        # A sequence holds at most max_position_embeddings tokens, at least one of them a target; a larger minimum
        # would turn JEPA off for every sequence, and a learned λ would then drive the MLM weight to 0.
        if not 1 <= self.min_context_tokens < self.max_position_embeddings:
            raise ValueError(
                "PrJepaConfig.min_context_tokens must be in [1, max_position_embeddings) = "
                f"[1, {self.max_position_embeddings}), got {self.min_context_tokens}."
            )
        if not 0.0 <= self.jepa_weight <= 1.0:
            raise ValueError(f"PrJepaConfig.jepa_weight (the fixed λ) must be in [0, 1], got {self.jepa_weight}.")
        if not 0.0 <= self.ema_momentum_start <= self.ema_momentum_end <= 1.0:
            raise ValueError(
                "PrJepaConfig.ema_momentum_start and ema_momentum_end must satisfy 0 <= start <= end <= 1, got "
                f"({self.ema_momentum_start}, {self.ema_momentum_end})."
            )
        for field in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
            value = getattr(self, field)
            if value is not None and not 0.0 <= value < 1.0:
                raise ValueError(f"PrJepaConfig.{field} must be in [0, 1), got {value}.")

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs: Any) -> "PrJepaConfig":
        """As `PreTrainedConfig.from_dict`, except that keyword arguments naming a field (`from_pretrained(path,
        objective="mlm")`) go through the constructor, and so through its checks: transformers would set them on the
        built config, where nothing checks them (a misspelt objective then trained MLM-only without a word). The
        fields that follow another follow its new value as in `update_from_string`."""
        # dtype stays with transformers, which reads "auto" as "as saved".
        fields = {field.name for field in dataclasses.fields(cls)} - {"dtype"}
        overrides = {key: kwargs.pop(key) for key in list(kwargs) if key in fields}
        for field in _fields_following(config_dict, set(overrides)):
            overrides[field] = overrides[FOLLOWING_FIELDS[field]]
        return super().from_dict({**config_dict, **overrides}, **kwargs)

    def update_from_string(self, update_str: str) -> None:
        """As `PreTrainedConfig.update_from_string` (`"layer_norm_eps=1e-5,qkv_bias=false"`), then checked as the
        constructor checks. The fields that default to another one (`FOLLOWING_FIELDS`) follow its new value where
        they followed the old one and the string does not set them."""
        updated = {pair.split("=")[0] for pair in update_str.split(",")}
        unknown = sorted(name for name in updated if not hasattr(self, name))
        if unknown:
            fields = sorted(name for name in vars(self) if not name.startswith("_"))
            named = ", ".join(
                repr(name)
                + "".join(f" (did you mean {guess!r}?)" for guess in difflib.get_close_matches(name, fields, 1))
                for name in unknown
            )
            kind = "not a PrJepaConfig field" if len(unknown) == 1 else "not PrJepaConfig fields"
            raise ValueError(f"{named} in {update_str!r}: {kind}. The fields are: {', '.join(fields)}.")
        float_fields = {
            field.name
            for field in dataclasses.fields(self)
            if field.type is float or float in typing.get_args(field.type)
        }
        # transformers converts a value to its field's current type, and its int() or float() error names neither
        # the field nor the type (nor does its error for a pair without "="); its error for a bool names neither the
        # words it takes, and for a field that is None now it blames the value, whatever the value.
        for pair in update_str.split(","):
            name, given, value = pair.partition("=")
            if not given:
                raise ValueError(f"{pair!r} in {update_str!r} sets no value: write it as {name}=VALUE.")
            current = getattr(self, name)
            if not isinstance(current, (bool, int, float, str)):
                now = "None" if current is None else f"a {type(current).__name__}"
                raise ValueError(
                    f"{pair!r} in {update_str!r}: {name} is {now} now, which a string override cannot set. Set it in "
                    "the config's JSON file instead (config.json; run_pretrain.py reads one given as --config_name)."
                )
            if isinstance(current, bool) and value.lower() not in ("true", "1", "y", "yes", "false", "0", "n", "no"):
                raise ValueError(
                    f"{pair!r} in {update_str!r}: {name} takes true or false (now {current}), got {value!r}."
                )
            if type(current) in (int, float):
                kind = float if name in float_fields else type(current)
                try:
                    kind(value)
                except ValueError:
                    expected = "a number" if kind is float else "an integer"
                    raise ValueError(
                        f"{pair!r} in {update_str!r}: {name} takes {expected} (now {current!r}), got {value!r}."
                    ) from None
        following = _fields_following(vars(self), updated)
        for name in updated & float_fields:
            if type(getattr(self, name)) is int:  # a whole number now: transformers would take the new value as int
                setattr(self, name, float(getattr(self, name)))
        super().update_from_string(update_str)
        for field in following:
            setattr(self, field, getattr(self, FOLLOWING_FIELDS[field]))
        self.validate_architecture()

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "PrJepaConfig":
        """A config of the named size (`mini`, `tiny`, `small`, `paper`, `base`, `large`); `overrides` win."""
        if name not in PRESETS:
            raise ValueError(f"Unknown PrJEPA preset {name!r}; choose one of {sorted(PRESETS)}.")
        return cls(**{**PRESETS[name], **overrides})

    def ema_momentum(self, step: int, total_steps: int) -> float:
        """Target-encoder momentum after `step` of `total_steps` optimizer steps (linear from start to end)."""
        progress = min(max(step / max(total_steps, 1), 0.0), 1.0)
        return self.ema_momentum_start + (self.ema_momentum_end - self.ema_momentum_start) * progress

    def check_tokenizer(self, tokenizer: Any) -> None:
        """Raises `ValueError` if `tokenizer` cannot feed this model: too many tokens, or other special-token ids."""
        if len(tokenizer) > self.vocab_size:
            raise ValueError(
                f"The tokenizer has {len(tokenizer)} tokens but the model's vocab_size is {self.vocab_size}: ids "
                "past the embedding table would fail. Use the tokenizer the model was trained with, or build the "
                "config with vocab_size=len(tokenizer)."
            )
        for name in ("pad_token_id", "cls_token_id", "sep_token_id", "mask_token_id"):
            expected, actual = getattr(self, name), getattr(tokenizer, name, None)
            if expected is not None and actual is not None and expected != actual:
                raise ValueError(
                    f"The tokenizer's {name} is {actual} but the model's config says {expected}: the tokenizer does "
                    "not match the model. Use the model's tokenizer, or set the config's special-token ids from it."
                )


AutoConfig.register(PrJepaConfig.model_type, PrJepaConfig, exist_ok=True)

__all__ = ["PrJepaConfig", "PRESETS"]
