"""PyTorch PrJEPA: one pre-LayerNorm transformer encoder trained with JEPA latent prediction plus masked language
modelling ("Predict and Reconstruct"; the method is described in this project's docs/method.md).

Self-contained (only torch, transformers and `configuration_prjepa`): `save_pretrained` copies this file into every
checkpoint so that the Auto classes load it with `trust_remote_code=True` without this project installed.

Attention follows `config._attn_implementation` (`attn_implementation=` at loading, or `set_attn_implementation`):
`"sdpa"` (the default) or `"eager"`, the only one that returns attention probabilities (`output_attentions=True`).
"""

import math
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
    PreTrainedModel,
)
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutput, MaskedLMOutput, SequenceClassifierOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

try:
    from .configuration_prjepa import ENCODERS, POOLING_STRATEGIES, PrJepaConfig
except ImportError:
    from configuration_prjepa import ENCODERS, POOLING_STRATEGIES, PrJepaConfig


def sinusoidal_position_table(num_positions: int, dim: int, layout: str = "halves") -> torch.Tensor:
    """Fixed 1-D sin/cos table `(num_positions, dim)` at frequencies 10000^(−2i/dim): sines in the first half and
    cosines in the second (`"halves"`, MAE's layout), or sine and cosine of frequency i in columns 2i and 2i + 1
    (`"interleaved"`, the original code's)."""
    frequencies = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
    angles = torch.arange(num_positions, dtype=torch.float64)[:, None] * frequencies[None, :]
    if layout == "interleaved":
        return torch.stack([angles.sin(), angles.cos()], dim=2).flatten(1).float()
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


class TokenLayout:
    """Where the real tokens of a padded `(batch, seq)` batch are. Per-token work (norms, projections, MLPs) runs on
    the real tokens only, packed as `(n_tokens, dim)`, and attention on the padded layout: a JEPA context view or a
    predictor batch is a quarter padding, which would otherwise cost a quarter of its compute. Without padding
    `pad` and `unpad` are views and there is no attention mask, so SDPA picks its fastest kernel.

    `attention_mask` is `(batch, 1, 1, seq)` boolean, True = attend, or `None` when there is no padding."""

    def __init__(self, attention_mask: torch.Tensor | None, batch: int, seq: int):
        """attention_mask `(batch, seq)`, 1 real / 0 padding, or `None` (all real)."""
        self.batch, self.seq = batch, seq
        self.attention_mask = self.real_indices = self.padding_indices = None
        if attention_mask is None:
            return
        real = attention_mask.bool()
        # The layout's one host read: the packed size is the number of real tokens. Knowing it, both index lists
        # come from nonzero_static, which does not wait for the device as nonzero does.
        num_real = int(real.sum())
        if num_real == batch * seq:
            return
        flat = real.flatten()
        self.real_indices = flat.nonzero_static(size=num_real).squeeze(1)
        self.padding_indices = (~flat).nonzero_static(size=batch * seq - num_real).squeeze(1)
        # A row without any real token (an empty JEPA context) would make softmax NaN; its outputs are never read.
        self.attention_mask = (real | ~real.any(dim=-1, keepdim=True))[:, None, None, :]

    def unpad(self, padded: torch.Tensor) -> torch.Tensor:
        """`(batch, seq, dim)` → `(n_tokens, dim)`."""
        flat = padded.reshape(self.batch * self.seq, -1)
        return flat if self.real_indices is None else flat.index_select(0, self.real_indices)

    def pad(self, tokens: torch.Tensor) -> torch.Tensor:
        """`(n_tokens, dim)` → `(batch, seq, dim)`, 0 at padding positions (finite, so masked keys stay harmless)."""
        if self.real_indices is not None:
            padded = tokens.new_empty(self.batch * self.seq, tokens.shape[-1]).index_fill_(0, self.padding_indices, 0)
            tokens = padded.index_copy_(0, self.real_indices, tokens)
        return tokens.view(self.batch, self.seq, -1)


def pool_hidden_states(
    hidden_states: torch.Tensor, attention_mask: torch.Tensor | None, strategy: str = "mean"
) -> torch.Tensor:
    """Pools `(batch, seq, dim)` token states into `(batch, dim)` over real tokens only.

    strategy: `"mean"` (average of real tokens), `"max"` (element-wise max over real tokens) or `"cls"` (first real
    token, where a left-padded batch holds its `[CLS]`).
    """
    if strategy == "cls":
        if attention_mask is None:
            return hidden_states[:, 0]
        first_real = attention_mask.long().argmax(dim=1)  # argmax returns the first of equal maxima
        return hidden_states[torch.arange(len(first_real), device=first_real.device), first_real]
    if attention_mask is None:
        attention_mask = hidden_states.new_ones(hidden_states.shape[:2])
    real = attention_mask.bool().unsqueeze(-1)
    if strategy == "mean":
        total = (hidden_states * real).sum(dim=1)
        return total / real.sum(dim=1).clamp(min=1).to(hidden_states.dtype)
    if strategy == "max":
        pooled = hidden_states.masked_fill(~real, torch.finfo(hidden_states.dtype).min).amax(dim=1)
        return pooled.masked_fill(~real.any(dim=1), 0)  # a row without real tokens pools to 0, as with "mean"
    raise ValueError(f"Unknown pooling strategy {strategy!r}; use one of {POOLING_STRATEGIES}.")


class PrJepaPositionEmbeddings(nn.Module):
    """Position table of width `dim`: fixed sinusoidal (a non-persistent buffer) or learned (a parameter)."""

    def __init__(self, config: PrJepaConfig, dim: int):
        super().__init__()
        self.learned = config.position_embedding_type == "learned"
        table = torch.zeros(config.max_position_embeddings, dim)
        if self.learned:
            self.weight = nn.Parameter(table)
        else:
            self.weight = nn.Buffer(table, persistent=False)

    def forward(self, position_ids: torch.LongTensor) -> torch.Tensor:
        """position_ids `(batch, seq)` → `(batch, seq, dim)`."""
        return F.embedding(position_ids, self.weight)


class PrJepaEmbeddings(nn.Module):
    """Token embedding plus position embedding. No token-type embedding: a pair is one `[CLS] a [SEP] b [SEP]`."""

    def __init__(self, config: PrJepaConfig):
        super().__init__()
        self.config = config
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = PrJepaPositionEmbeddings(config, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """input_ids `(batch, seq)`, or their token embeddings `inputs_embeds` `(batch, seq, hidden)`; position_ids
        `(batch, seq)`, default: each real token's index among its sequence's real tokens when `attention_mask`
        `(batch, seq)` is given, else `0..seq-1` → `(batch, seq, hidden)`."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids and inputs_embeds.")
        self._check_ranges(input_ids, position_ids)
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        if position_ids is None:
            length, max_positions = inputs_embeds.shape[1], self.config.max_position_embeddings
            if length > max_positions:
                raise ValueError(
                    f"Sequence length {length} exceeds max_position_embeddings={max_positions}. Truncate the input "
                    f"(e.g. tokenizer(..., truncation=True, max_length={max_positions}))."
                )
            if attention_mask is None:
                position_ids = torch.arange(length, device=inputs_embeds.device)[None, :]
            else:
                # Counted from the first real token, so that a left-padded sentence gets the positions of the same
                # sentence unpadded; right padding keeps 0..n-1 at the real tokens. Padding slots are never read.
                position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        return self.dropout(inputs_embeds + self.position_embeddings(position_ids))

    def embed_tokens(self, input_ids: torch.LongTensor) -> torch.Tensor:
        """input_ids `(batch, seq)` → token embeddings `(batch, seq, hidden)`, without positions."""
        self._check_ranges(input_ids, None)
        return self.word_embeddings(input_ids)

    def _check_ranges(self, input_ids: torch.LongTensor | None, position_ids: torch.LongTensor | None) -> None:
        """Raises `ValueError` for a token id outside the vocabulary or a position id outside the position table.

        Either would otherwise surface as an opaque IndexError on CPU, or on GPU as a device-side assert that leaves
        the CUDA context unusable; a wrong tokenizer is a common mistake. The check costs one host read per call, for
        both tables together.
        """
        vocab_size, max_positions = self.config.vocab_size, self.config.max_position_embeddings
        outside = [
            ((ids < 0) | (ids >= size)).any()
            for ids, size in ((input_ids, vocab_size), (position_ids, max_positions))
            if ids is not None
        ]
        if not outside or not torch.stack(outside).any():
            return
        if input_ids is not None and outside[0]:
            bad = input_ids[(input_ids < 0) | (input_ids >= vocab_size)][0].item()
            raise ValueError(
                f"Token id {bad} is outside the model's vocabulary (vocab_size={vocab_size}). The tokenizer does not "
                "match this model: use the tokenizer it was trained with (see PrJepaConfig.check_tokenizer)."
            )
        bad = position_ids[(position_ids < 0) | (position_ids >= max_positions)][0].item()
        raise ValueError(
            f"Position id {bad} is outside the position table (max_position_embeddings={max_positions}): positions "
            f"run from 0 to {max_positions - 1}."
        )


class PrJepaResidualProjection(nn.Linear):
    """The last linear layer of a residual branch; its weight starts with std / sqrt(2·layer_index) so that the
    residual stream does not grow with depth."""

    def __init__(self, in_features: int, out_features: int, layer_index: int):
        super().__init__(in_features, out_features)
        self.layer_index = layer_index


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention written out, for `attn_implementation="eager"`.

    query, key, value `(batch, heads, seq, head_dim)`; attention_mask `(batch, 1, 1, seq)` boolean, True = attend, or
    `None` → the output `(batch, seq, heads, head_dim)` (the layout of the library's `sdpa_attention_forward`) and the
    attention probabilities `(batch, heads, seq, seq)`.
    """
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        # The dtype's lowest value, not -inf: masked keys still get exactly 0, and a fully masked row stays finite.
        scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
    weights = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = F.dropout(weights, p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


class PrJepaSelfAttention(nn.Module):
    """Multi-head self-attention with a fused qkv projection; the attention itself is the function that
    `config._attn_implementation` names (`"sdpa"` or `"eager"`)."""

    def __init__(self, config: PrJepaConfig, hidden_size: int, num_heads: int, layer_index: int):
        super().__init__()
        self.config = config
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.scaling = self.head_dim**-0.5
        # Read by the library's sdpa_attention_forward, which otherwise treats an unmasked batch as causal.
        self.is_causal = False
        self.attention_dropout = config.attention_probs_dropout_prob
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size, bias=config.qkv_bias)
        self.proj = PrJepaResidualProjection(hidden_size, hidden_size, layer_index)
        self.proj_dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, layout: TokenLayout) -> tuple[torch.Tensor, torch.Tensor | None]:
        """hidden_states `(n_tokens, hidden)`, the real tokens of `layout` → `(n_tokens, hidden)`, and the attention
        probabilities `(batch, heads, seq, seq)` under eager (`None` under sdpa). The projections run on the real
        tokens, the attention itself on the padded layout."""
        hidden = hidden_states.shape[-1]
        qkv = layout.pad(self.qkv(hidden_states))
        batch, seq, _ = qkv.shape
        qkv = qkv.view(batch, seq, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (batch, heads, seq, head_dim)
        attention_interface = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        context, attention_weights = attention_interface(
            self,
            query,
            key,
            value,
            layout.attention_mask,
            dropout=self.attention_dropout if self.training else 0.0,
            scaling=self.scaling,
        )
        context = layout.unpad(context.reshape(batch, seq, hidden))
        return self.proj_dropout(self.proj(context)), attention_weights


class PrJepaMLP(nn.Module):
    def __init__(self, config: PrJepaConfig, hidden_size: int, intermediate_size: int, layer_index: int):
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        self.act = ACT2FN[config.hidden_act]
        self.fc2 = PrJepaResidualProjection(intermediate_size, hidden_size, layer_index)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.act(self.fc1(hidden_states))))


class PrJepaLayer(GradientCheckpointingLayer):
    """Pre-LayerNorm block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(
        self, config: PrJepaConfig, hidden_size: int, num_heads: int, intermediate_size: int, layer_index: int
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)
        self.attention = PrJepaSelfAttention(config, hidden_size, num_heads, layer_index)
        self.norm2 = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)
        self.mlp = PrJepaMLP(config, hidden_size, intermediate_size, layer_index)

    def forward(self, hidden_states: torch.Tensor, layout: TokenLayout) -> tuple[torch.Tensor, torch.Tensor | None]:
        """hidden_states `(n_tokens, hidden)` → `(n_tokens, hidden)` and the attention probabilities (eager only)."""
        attention_output, attention_weights = self.attention(self.norm1(hidden_states), layout)
        hidden_states = hidden_states + attention_output
        return hidden_states + self.mlp(self.norm2(hidden_states)), attention_weights


class PrJepaEncoder(nn.Module):
    """A stack of `PrJepaLayer`s and a final LayerNorm; used at encoder width and at predictor width."""

    def __init__(self, config: PrJepaConfig, hidden_size: int, num_heads: int, intermediate_size: int, num_layers: int):
        super().__init__()
        self.layer = nn.ModuleList(
            [PrJepaLayer(config, hidden_size, num_heads, intermediate_size, index + 1) for index in range(num_layers)]
        )
        self.norm = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> BaseModelOutput:
        """hidden_states `(batch, seq, hidden)`, attention_mask `(batch, seq)` → `last_hidden_state` (after the final
        norm) and, on request, `num_layers + 1` hidden states: the residual stream before every layer, then
        `last_hidden_state` itself (as transformers' language models end theirs), and every layer's attention
        probabilities `(batch, heads, seq, seq)` (eager attention only). Padding positions of the hidden states are 0.

        The states are collected here rather than by the library's output-capturing hooks: the layers work on the
        packed real tokens, and only the padded layout is a per-layer output worth returning."""
        layout = TokenLayout(attention_mask, *hidden_states.shape[:2])
        tokens = layout.unpad(hidden_states)
        all_hidden_states = () if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer in self.layer:
            if output_hidden_states:
                all_hidden_states += (layout.pad(tokens),)
            tokens, attention_weights = layer(tokens, layout)
            if output_attentions:
                all_attentions += (attention_weights,)
        last_hidden_state = layout.pad(self.norm(tokens))
        if output_hidden_states:
            all_hidden_states += (last_hidden_state,)
        return BaseModelOutput(
            last_hidden_state=last_hidden_state, hidden_states=all_hidden_states, attentions=all_attentions
        )


class PrJepaPredictor(nn.Module):
    """Predicts target-encoder states at target positions from the context tokens' encoder states (I-JEPA style).

    Input: each context token's state projected to the predictor width plus its position embedding, followed by one
    shared mask token per target position plus that position's embedding; output: the states at the target slots,
    projected back to the encoder width.
    """

    def __init__(self, config: PrJepaConfig):
        super().__init__()
        width = config.predictor_hidden_size
        self.embed = nn.Linear(config.hidden_size, width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.position_embeddings = PrJepaPositionEmbeddings(config, width)
        self.encoder = PrJepaEncoder(
            config, width, config.predictor_num_attention_heads, 4 * width, config.predictor_num_hidden_layers
        )
        self.proj = nn.Linear(width, config.hidden_size)

    def forward(
        self,
        context_states: torch.Tensor,
        context_positions: torch.LongTensor,
        context_mask: torch.Tensor,
        target_positions: torch.LongTensor,
        target_mask: torch.Tensor,
    ) -> torch.Tensor:
        """context_states `(batch, n_context, hidden)`; context_positions/mask `(batch, n_context)`;
        target_positions/mask `(batch, num_blocks, n_target)` → predictions `(batch, num_blocks, n_target, hidden)`.
        Masks are 1 for real slots, 0 for padding. Each target block is predicted in its own pass over the context
        (as in I-JEPA): the blocks do not see each other."""
        batch, num_blocks, n_target = target_positions.shape
        context = self.embed(context_states) + self.position_embeddings(context_positions)
        queries = self.mask_token + self.position_embeddings(target_positions.flatten(0, 1))
        # The context is embedded once, then repeated: one sequence per (example, block).
        context, context_mask = (
            context.repeat_interleave(num_blocks, dim=0),
            context_mask.repeat_interleave(num_blocks, dim=0),
        )
        hidden_states = torch.cat([context, queries.to(context.dtype)], dim=1)
        attention_mask = torch.cat([context_mask, target_mask.flatten(0, 1)], dim=1)
        hidden_states = self.encoder(hidden_states, attention_mask).last_hidden_state
        return self.proj(hidden_states[:, context.shape[1] :]).view(batch, num_blocks, n_target, -1)


class PrJepaMLMHead(nn.Module):
    """The original's "token regressor": Linear(D, D) → activation → LayerNorm → Linear(D, vocab)."""

    def __init__(self, config: PrJepaConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = ACT2FN[config.hidden_act]
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.mlm_head_layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`(..., hidden)` → logits `(..., vocab_size)`."""
        return self.decoder(self.layer_norm(self.act(self.dense(hidden_states))))


class PrJepaLossWeighting(nn.Module):
    """Combines L_JEPA and L_MLM and reports λ, the JEPA term's share of the weight.

    - `learned`: L = λ·L_JEPA + (1 − λ)·L_MLM with λ = sigmoid(w), w learnable from 0 (the paper's choice).
    - `fixed`: the same with λ = `config.jepa_weight`.
    - `uncertainty`: L = Σ_i exp(−s_i)·L_i + s_i with learnable s = (s_JEPA, s_MLM) from 0 (Kendall et al., 2018);
      λ = exp(−s_JEPA) / (exp(−s_JEPA) + exp(−s_MLM)).

    A batch without JEPA targets, or without MLM labels (that loss is then 0, unmeasured), leaves the parameters that
    weigh it without gradient: λ would otherwise be pushed towards the unmeasured term, and its s away from it, by a
    loss that was never computed.
    """

    def __init__(self, config: PrJepaConfig):
        super().__init__()
        self.mode = config.loss_weighting
        self.fixed_weight = config.jepa_weight
        if self.mode == "learned":
            self.jepa_logit = nn.Parameter(torch.zeros(()))
        elif self.mode == "uncertainty":
            self.log_variances = nn.Parameter(torch.zeros(2))

    def forward(
        self,
        jepa_loss: torch.Tensor,
        mlm_loss: torch.Tensor,
        has_jepa_targets: torch.Tensor,
        has_mlm_labels: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scalar losses and scalar bools (whether the batch had any JEPA target, any MLM label) → (total loss, λ
        detached)."""
        # torch.where rather than an `if`: no wait for the device, and the parameters stay in the graph (DDP).
        if self.mode == "uncertainty":
            trained = torch.stack([has_jepa_targets, has_mlm_labels])
            log_variances = torch.where(trained, self.log_variances, self.log_variances.detach())
            precisions = torch.exp(-log_variances)
            loss = precisions[0] * jepa_loss + precisions[1] * mlm_loss + log_variances.sum()
            return loss, (precisions[0] / precisions.sum()).detach()
        if self.mode == "learned":
            weight = torch.sigmoid(self.jepa_logit)
            weight = torch.where(has_jepa_targets & has_mlm_labels, weight, weight.detach())
        else:
            weight = jepa_loss.new_full((), self.fixed_weight)  # a fill on the device; new_tensor would copy and wait
        return weight * jepa_loss + (1 - weight) * mlm_loss, weight.detach()


def masked_lm_loss(
    logits: torch.Tensor, labels: torch.LongTensor, num_items_in_batch: torch.Tensor | int | None = None
) -> torch.Tensor:
    """Cross-entropy over labelled tokens: logits `(..., vocab)`, labels `(...)` with -100 where not predicted.

    The mean over labelled tokens, or their sum divided by `num_items_in_batch` when given (the Trainer's count over
    all devices and accumulated micro-batches). 0 when nothing is labelled.
    """
    loss = F.cross_entropy(logits.flatten(0, -2).float(), labels.flatten(), ignore_index=-100, reduction="sum")
    if num_items_in_batch is None:
        num_items_in_batch = (labels != -100).sum()
    if isinstance(num_items_in_batch, torch.Tensor):
        return loss / num_items_in_batch.clamp(min=1)
    return loss / max(num_items_in_batch, 1)


def select_labelled(hidden_states: torch.Tensor, labels: torch.LongTensor) -> tuple[torch.Tensor, torch.LongTensor]:
    """hidden_states `(batch, seq, hidden)`, labels `(batch, seq)` (-100 where not predicted) → the states
    `(n_labelled, hidden)` and labels `(n_labelled,)` at the labelled positions, in row-major order.

    One host read (the number of labelled tokens) for both; boolean-mask indexing would read once per tensor.
    """
    labels = labels.flatten()
    positions = (labels != -100).nonzero().squeeze(1)
    return hidden_states.flatten(0, 1).index_select(0, positions), labels.index_select(0, positions)


def jepa_prediction_loss(
    predictions: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, kind: str
) -> torch.Tensor:
    """Mean over real target tokens of the per-token loss; 0 (still in the graph) when there is none.

    predictions, targets `(..., n_target, hidden)`; mask `(..., n_target)`; kind: `cosine` (1 − cos), `smooth_l1`,
    `mse` (both averaged over the hidden dimension).
    """
    predictions, targets = predictions.float(), targets.float()
    if kind == "cosine":
        per_token = 1 - F.cosine_similarity(predictions, targets, dim=-1)
    elif kind == "smooth_l1":
        per_token = F.smooth_l1_loss(predictions, targets, reduction="none").mean(-1)
    else:
        per_token = F.mse_loss(predictions, targets, reduction="none").mean(-1)
    weights = mask.to(per_token.dtype)
    return (per_token * weights).sum() / weights.sum().clamp(min=1)


def normalize_over_tokens(states: torch.Tensor, attention_mask: torch.Tensor, eps: float) -> torch.Tensor:
    """Each feature standardised over its sequence's real tokens (instance norm that ignores padding):
    states `(batch, seq, hidden)`, attention_mask `(batch, seq)` → `(batch, seq, hidden)`."""
    weights = attention_mask[..., None].to(states.dtype)
    count = weights.sum(1, keepdim=True).clamp(min=1)
    mean = (states * weights).sum(1, keepdim=True) / count
    variance = ((states - mean).square() * weights).sum(1, keepdim=True) / count
    return (states - mean) * torch.rsqrt(variance + eps)


class PrJepaPreTrainedModel(PreTrainedModel):
    config_class = PrJepaConfig
    config: PrJepaConfig
    base_model_prefix = "prjepa"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["PrJepaLayer"]
    # Pretraining-only parts are expected leftovers when a pretraining checkpoint opens as an encoder or a classifier.
    _keys_to_ignore_on_load_unexpected = [r"^target_encoder\.", r"^predictor\.", r"^loss_weighting\.", r"^mlm_head\."]

    def __init__(self, config: PrJepaConfig, *args, **kwargs):
        # A field set on a built config (`config.objective = ...`) bypasses the constructor's checks: a misspelt
        # objective or loss weighting would otherwise build a model that silently falls back to another one.
        config.validate_architecture()
        super().__init__(config, *args, **kwargs)

    def _check_and_adjust_attn_implementation(
        self, attn_implementation: str | None, is_init_check: bool = False, allow_all_kernels: bool = False
    ) -> str:
        # Checked before the library resolves the name, which for any model would also accept a paged, a registered
        # or a Hub-kernel function: the attention here (a boolean key mask on the padded layout) is written for two.
        if attn_implementation not in (None, "sdpa", "eager"):
            raise ValueError(
                f"{self.__class__.__name__} supports attn_implementation='sdpa' (the default) or 'eager' (which also "
                f"returns attention probabilities), not {attn_implementation!r}."
            )
        return super()._check_and_adjust_attn_implementation(attn_implementation, is_init_check, allow_all_kernels)

    def _init_weights(self, module: nn.Module) -> None:
        """Truncated normal (std `initializer_range`) for linear and embedding weights, zero biases, unit norms; each
        layer's attention-output and MLP-output weights drawn with std / sqrt(2·layer_index)."""
        std = self.config.initializer_range
        if isinstance(module, PrJepaResidualProjection):
            init.trunc_normal_(module.weight, std=std / math.sqrt(2 * module.layer_index))
            init.zeros_(module.bias)
        elif isinstance(module, (nn.Linear, nn.Embedding)):
            init.trunc_normal_(module.weight, std=std)
            if getattr(module, "bias", None) is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, PrJepaPositionEmbeddings):
            if module.learned:
                init.trunc_normal_(module.weight, std=std)
            else:
                table = sinusoidal_position_table(*module.weight.shape, self.config.sinusoidal_layout)
                table = table * self.config.position_embedding_scale
                init.copy_(module.weight, table)
        elif isinstance(module, PrJepaPredictor):
            init.trunc_normal_(module.mask_token, std=std)
        elif isinstance(module, PrJepaLossWeighting):
            for parameter in module.parameters():
                init.zeros_(parameter)

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike | None,
        *args: Any,
        encoder: str = "online",
        output_loading_info: bool = False,
        **kwargs: Any,
    ) -> "PrJepaPreTrainedModel | tuple[PrJepaPreTrainedModel, dict[str, Any]]":
        """`PreTrainedModel.from_pretrained`, plus:

        - `encoder="target"` loads a pretraining checkpoint's EMA target encoder in place of its online encoder
          (I-JEPA evaluates the target encoder), and raises `ValueError` for a checkpoint that holds none;
        - a corrupt weights file, or a checkpoint without PrJEPA encoder weights (another architecture), raises
          `ValueError` naming the checkpoint instead of leaving a randomly initialised encoder.
        """
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}.")
        if encoder == "online":
            encoder_prefix = "" if issubclass(cls, PrJepaModel) else f"{cls.base_model_prefix}."
            model, loading_info = cls._load_checked(
                pretrained_model_name_or_path, args, kwargs, "online", encoder_prefix
            )
            model._after_loading(loading_info)
        else:
            # Renaming the checkpoint's keys cannot tell whether it holds a target encoder: the loader falls back to a
            # key's own name when the renamed one does not exist, so an encoder checkpoint's weights would fill the
            # "target". A model holding only `target_encoder` finds those weights missing instead.
            holder, loading_info = PrJepaTargetEncoderHolder._load_checked(
                pretrained_model_name_or_path, args, kwargs, "target", "target_encoder."
            )
            if issubclass(cls, PrJepaModel):
                model = holder.target_encoder
            else:
                model, loading_info = cls.from_pretrained(
                    pretrained_model_name_or_path, *args, output_loading_info=True, **kwargs
                )
                model.prjepa.load_state_dict(holder.target_encoder.state_dict())
        return (model, loading_info) if output_loading_info else model

    @classmethod
    def _load_checked(
        cls, pretrained_model_name_or_path, args: tuple, kwargs: dict, encoder: str, encoder_prefix: str
    ) -> tuple["PrJepaPreTrainedModel", dict]:
        """`PreTrainedModel.from_pretrained` with its loading info; raises `ValueError` for an unreadable weights file
        or when weights under `encoder_prefix` are missing."""
        try:
            model, loading_info = super().from_pretrained(
                pretrained_model_name_or_path, *args, output_loading_info=True, **kwargs
            )
        except Exception as error:
            if not type(error).__module__.startswith("safetensors"):
                raise
            raise ValueError(
                f"Cannot read the weights of {pretrained_model_name_or_path!r}: {error}. The file is truncated or "
                "corrupt; save or download the checkpoint again."
            ) from error
        missing = sorted(key for key in loading_info["missing_keys"] if key.startswith(encoder_prefix))
        if missing:
            fix = (
                "Only a hybrid pretraining checkpoint holds the EMA target encoder: load this one's online encoder "
                "(leave out encoder='target')."
                if encoder == "target"
                else "Load it with its own model class (e.g. AutoModel), or pass a PrJEPA checkpoint."
            )
            raise ValueError(
                f"{pretrained_model_name_or_path!r} holds no PrJEPA {encoder} encoder: {len(missing)} encoder weights "
                f"are missing (e.g. {missing[:3]}). {fix}"
            )
        return model, loading_info

    def _after_loading(self, loading_info: dict) -> None:
        """Hook for heads whose state depends on what the checkpoint held."""


class PrJepaModel(PrJepaPreTrainedModel):
    """The PrJEPA encoder: embeddings, pre-LayerNorm layers, final LayerNorm.

    To encode only some positions of each sequence (the JEPA context view), pass the ids at those positions as
    `input_ids` and their original positions as `position_ids`; the other positions are never materialised.
    """

    def __init__(self, config: PrJepaConfig):
        super().__init__(config)
        self.embeddings = PrJepaEmbeddings(config)
        self.encoder = PrJepaEncoder(
            config, config.hidden_size, config.num_attention_heads, config.intermediate_size, config.num_hidden_layers
        )
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> BaseModelOutput | tuple[torch.Tensor, ...]:
        """input_ids `(batch, seq)`, or their token embeddings `inputs_embeds` `(batch, seq, hidden)` (positions are
        added here); attention_mask `(batch, seq)`, 1 real / 0 padding; position_ids `(batch, seq)` (default: each
        token's index among its sequence's real tokens, so left and right padding give the same vectors; `0..seq-1`
        without a mask). `token_type_ids` is accepted for tokenizer compatibility and ignored (PrJEPA has no segment
        embedding). Returns `last_hidden_state` `(batch, seq, hidden)`, 0 at padding, optionally `hidden_states` and,
        under eager attention, `attentions` (one `(batch, heads, seq, seq)` tensor per layer); a tuple of the same
        with `return_dict=False`."""
        output_hidden_states = (
            self.config.output_hidden_states if output_hidden_states is None else output_hidden_states
        )
        output_attentions = self.config.output_attentions if output_attentions is None else output_attentions
        if output_attentions and self.config._attn_implementation != "eager":
            raise ValueError(
                f"output_attentions=True needs eager attention, and this model uses "
                f"{self.config._attn_implementation!r}: load it with attn_implementation='eager' or call "
                "model.set_attn_implementation('eager') (same outputs, slower)."
            )
        embeddings = self.embeddings(input_ids, position_ids, inputs_embeds, attention_mask)
        return self.encoder(embeddings, attention_mask, output_hidden_states, output_attentions)


class PrJepaTargetEncoderHolder(PrJepaPreTrainedModel):
    """Only the EMA target encoder of a pretraining checkpoint, under its checkpoint name `target_encoder`: what the
    encoder classes' `from_pretrained(..., encoder="target")` loads the target through."""

    _keys_to_ignore_on_load_unexpected = [r"^prjepa\.", r"^predictor\.", r"^loss_weighting\.", r"^mlm_head\."]

    def __init__(self, config: PrJepaConfig):
        super().__init__(config)
        self.target_encoder = PrJepaModel(config)
        self.post_init()


@dataclass
class PrJepaForPreTrainingOutput(ModelOutput):
    """
    loss: λ-weighted total (or the MLM loss alone for `objective="mlm"`).
    jepa_loss: mean over target tokens of the latent prediction loss (`None` for `objective="mlm"`).
    mlm_loss: mean cross-entropy over MLM-labelled tokens.
    jepa_weight: λ, the JEPA term's weight (0 for `objective="mlm"`).
    pooled_embeddings `(batch, hidden)`: mean over real tokens of the target encoder's last hidden states of the
        unmasked ids (the online encoder's of the masked ids for `objective="mlm"`), detached; the trainer's collapse
        signal reads them.
    has_jepa_targets: scalar bool, whether the batch had any JEPA target with context (without one, `jepa_loss` is 0,
        unmeasured; `None` for `objective="mlm"`).
    """

    loss: torch.Tensor | None = None
    jepa_loss: torch.Tensor | None = None
    mlm_loss: torch.Tensor | None = None
    jepa_weight: torch.Tensor | None = None
    pooled_embeddings: torch.Tensor | None = None
    has_jepa_targets: torch.Tensor | None = None


class PrJepaForPreTraining(PrJepaPreTrainedModel):
    """Online encoder (`prjepa`), EMA target encoder, predictor, MLM head and loss weighting.

    `forward` takes the batch built by the pretraining collator:
        input_ids `(batch, seq)`: the original, unmasked ids (the target encoder's view);
        attention_mask `(batch, seq)`: 1 for real tokens, 0 for padding;
        masked_input_ids `(batch, seq)`: the MLM-corrupted ids (the online encoder's view);
        labels `(batch, seq)`: original ids at MLM-chosen positions, -100 elsewhere;
        context_indices, context_mask `(batch, n_context)`: positions of the context tokens, padded; mask 1 = real;
        target_indices, target_mask `(batch, num_target_blocks, n_target)`: positions of each target block, padded.
    The four index tensors are needed for `objective="hybrid"` only. A sequence whose context or targets are all
    padding adds nothing to L_JEPA.

    The target encoder receives no gradient; call `update_target_encoder(momentum)` after every optimizer step.
    """

    _tied_weights_keys = {"mlm_head.decoder.weight": "prjepa.embeddings.word_embeddings.weight"}
    # The loss combines two token means; under several processes it must not be rescaled by a global token count.
    accepts_loss_kwargs = False

    def __init__(self, config: PrJepaConfig):
        super().__init__(config)
        self.prjepa = PrJepaModel(config)
        self.mlm_head = PrJepaMLMHead(config)
        self.hybrid = config.objective == "hybrid"
        if self.hybrid:
            self.target_encoder = PrJepaModel(config)
            self.target_encoder.requires_grad_(False)
            self.predictor = PrJepaPredictor(config)
            self.loss_weighting = PrJepaLossWeighting(config)
        else:
            self.target_encoder = self.predictor = self.loss_weighting = None
        self.post_init()
        self.reset_target_encoder()

    def _after_loading(self, loading_info: dict) -> None:
        # A checkpoint without a target encoder (an encoder or MLM checkpoint) starts one from its online encoder.
        if any(key.startswith("target_encoder.") for key in loading_info["missing_keys"]):
            self.reset_target_encoder()
        if self.target_encoder is not None:
            self.target_encoder.requires_grad_(False)  # loading re-creates the parameters

    @torch.no_grad()
    def reset_target_encoder(self) -> None:
        """Makes the target encoder an exact copy of the online encoder."""
        if self.target_encoder is not None:
            self.target_encoder.load_state_dict(self.prjepa.state_dict())

    def get_output_embeddings(self) -> nn.Linear:
        return self.mlm_head.decoder

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.mlm_head.decoder = new_embeddings

    def _resize_token_embeddings(
        self, new_num_tokens: int | None, pad_to_multiple_of: int | None = None, mean_resizing: bool = True
    ) -> nn.Embedding:
        # The library resizes the input and output embeddings only, but sets the vocab_size that the target encoder
        # shares: its old table would then fail on the new ids and in the EMA update. Its kept rows keep their EMA
        # values; new rows start as the online encoder's, as the whole target does at initialisation.
        embeddings = super()._resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        if self.target_encoder is not None:
            old_weight = self.target_encoder.get_input_embeddings().weight.detach()
            weight = embeddings.weight.detach().clone()
            kept = min(len(old_weight), len(weight))
            weight[:kept] = old_weight[:kept]
            self.target_encoder.set_input_embeddings(nn.Embedding.from_pretrained(weight, freeze=True))
        return embeddings

    def train(self, mode: bool = True) -> "PrJepaForPreTraining":
        super().train(mode)
        if self.target_encoder is not None:
            self.target_encoder.eval()  # the target is a fixed function between EMA updates: no dropout
        return self

    @torch.no_grad()
    def update_target_encoder(self, momentum: float) -> None:
        """target ← momentum·target + (1 − momentum)·online, for every encoder parameter, in one foreach op.

        Raises `ValueError` when the target encoder's weights are of lower precision than float32.
        """
        if self.target_encoder is None:
            raise ValueError("objective='mlm' has no target encoder to update.")
        # In bf16 or fp16, (1 − m)·(online − target) with m ≥ 0.996 is mostly below half a unit in the last place, so
        # most target weights would never move and JEPA would silently regress onto a frozen target. Refused rather
        # than kept in an fp32 copy: a second, hidden copy of the target doubles its memory and must be saved and
        # resumed beside the weights, while fp32 weights under bf16 autocast (the original's recipe) need neither.
        dtype = self.target_encoder.dtype
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(
                f"The target encoder's weights are {dtype}, too coarse for the EMA update: with momentum near 1 most "
                "weights would never change. Keep the weights in float32 and train in mixed precision (bf16 "
                "autocast, e.g. --bf16) instead of loading or casting the model to a low-precision dtype."
            )
        target = list(self.target_encoder.parameters())
        online = [parameter.detach() for parameter in self.prjepa.parameters()]
        torch._foreach_lerp_(target, online, 1.0 - momentum)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor,
        masked_input_ids: torch.LongTensor,
        labels: torch.LongTensor,
        context_indices: torch.LongTensor | None = None,
        context_mask: torch.Tensor | None = None,
        target_indices: torch.LongTensor | None = None,
        target_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> PrJepaForPreTrainingOutput | tuple[torch.Tensor, ...]:
        block_inputs = (context_indices, context_mask, target_indices, target_mask)
        if self.hybrid and any(tensor is None for tensor in block_inputs):
            raise ValueError(
                "objective='hybrid' needs context_indices, context_mask, target_indices and target_mask; build the "
                "batch with the pretraining collator (DataCollatorForPrJepa)."
            )
        if self.hybrid:
            # A sequence without context (possible with another collator) has nothing to predict its targets from;
            # they count as padding, so that it adds nothing to L_JEPA.
            target_mask = target_mask * context_mask.any(dim=-1)[:, None, None]
            targets, pooled_embeddings = self._jepa_targets(input_ids, attention_mask, target_indices)
        # One token-embedding lookup for both online views: the context view's are gathered from it.
        token_embeddings = self.prjepa.embeddings.embed_tokens(masked_input_ids)
        # Embedded without the mask, so with positions 0..seq-1 as one row (the collator pads on the right): the
        # learned position table's gradient is then summed over the batch before the lookup, as it always was.
        # Positions derived from the mask, (batch, seq), have the same values but sum in another order, and training
        # would no longer reproduce earlier runs bit for bit.
        full_view = self.prjepa.encoder(
            self.prjepa.embeddings(inputs_embeds=token_embeddings), attention_mask
        ).last_hidden_state
        # The vocabulary projection only where there is something to predict (about 15% of the tokens).
        labelled_states, labelled_ids = select_labelled(full_view, labels)
        mlm_loss = masked_lm_loss(self.mlm_head(labelled_states), labelled_ids)
        if not self.hybrid:
            pooled_embeddings = pool_hidden_states(full_view.detach(), attention_mask, "mean")
            return PrJepaForPreTrainingOutput(
                loss=mlm_loss,
                mlm_loss=mlm_loss,
                jepa_weight=mlm_loss.new_zeros(()),
                pooled_embeddings=pooled_embeddings,
            )

        context_embeddings = token_embeddings.gather(1, context_indices[..., None].expand(-1, -1, targets.shape[-1]))
        context = self.prjepa(
            attention_mask=context_mask,
            position_ids=context_indices,
            inputs_embeds=context_embeddings,
            return_dict=True,
        ).last_hidden_state
        predictions = self.predictor(context, context_indices, context_mask, target_indices, target_mask)
        jepa_loss = jepa_prediction_loss(predictions, targets, target_mask, self.config.jepa_loss)
        has_jepa_targets = target_mask.any()
        loss, jepa_weight = self.loss_weighting(jepa_loss, mlm_loss, has_jepa_targets, (labels != -100).any())
        return PrJepaForPreTrainingOutput(
            loss=loss,
            jepa_loss=jepa_loss,
            mlm_loss=mlm_loss,
            jepa_weight=jepa_weight,
            pooled_embeddings=pooled_embeddings,
            has_jepa_targets=has_jepa_targets,
        )

    @torch.no_grad()
    def _jepa_targets(
        self, input_ids: torch.LongTensor, attention_mask: torch.Tensor, target_indices: torch.LongTensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The target encoder's states of the unmasked ids, normalised as `config.jepa_target_norm` says, at each
        target block: target_indices `(batch, num_blocks, n_target)` → `(batch, num_blocks, n_target, hidden)`; and the
        raw states' mean over each sequence's real tokens, `(batch, hidden)`."""
        # Positions from the row's start, as the online views number theirs (the full view's 0..seq-1, the context
        # view's context_indices): counted from the first real token instead, a left-padded row would give each
        # target another position than the predictor queries.
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)[None]
        states = self.target_encoder(input_ids, attention_mask, positions, return_dict=True).last_hidden_state
        pooled = pool_hidden_states(states, attention_mask, "mean")
        if self.config.jepa_target_norm == "instance":  # needs every real token, so before the gather
            states = normalize_over_tokens(states.float(), attention_mask, self.config.layer_norm_eps)
        batch, num_blocks, n_target = target_indices.shape
        flat_indices = target_indices.reshape(batch, num_blocks * n_target, 1).expand(-1, -1, states.shape[-1])
        targets = states.gather(1, flat_indices).view(batch, num_blocks, n_target, -1).float()
        if self.config.jepa_target_norm == "layer":  # per token, so only the gathered ones
            targets = F.layer_norm(targets, targets.shape[-1:])
        return targets, pooled


class PrJepaForMaskedLM(PrJepaPreTrainedModel):
    """Encoder plus MLM head; `pipeline("fill-mask")` works with it.

    Logits are `(batch, seq, vocab_size)`, as BERT's, which transformers' MLM evaluation expects; with `labels` and
    `config.sparse_prediction`, they are computed only at labelled positions and returned flattened,
    `(n_labelled, vocab_size)` (less memory and compute when training with this class).
    """

    _tied_weights_keys = {"mlm_head.decoder.weight": "prjepa.embeddings.word_embeddings.weight"}

    def __init__(self, config: PrJepaConfig):
        super().__init__(config)
        self.prjepa = PrJepaModel(config)
        self.mlm_head = PrJepaMLMHead(config)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.mlm_head.decoder

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.mlm_head.decoder = new_embeddings

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
        **kwargs,
    ) -> MaskedLMOutput | tuple[torch.Tensor, ...]:
        """input_ids, attention_mask, labels `(batch, seq)` (labels -100 where not predicted); `hidden_states` and
        `attentions` as in `PrJepaModel`."""
        outputs = self.prjepa(
            input_ids,
            attention_mask,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )
        hidden_states = outputs.last_hidden_state
        if labels is not None and self.config.sparse_prediction:
            hidden_states, labels = select_labelled(hidden_states, labels)
        logits = self.mlm_head(hidden_states)
        loss = None if labels is None else masked_lm_loss(logits, labels, num_items_in_batch)
        return MaskedLMOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


class PrJepaForSequenceClassification(PrJepaPreTrainedModel):
    """Encoder, pooling (`config.classifier_pooling`), dropout and a linear classifier; losses as in BERT
    (regression, single-label or multi-label, from `config.problem_type`)."""

    # The loss is a per-batch mean; the Trainer must average it over accumulation steps itself.
    accepts_loss_kwargs = False

    def __init__(self, config: PrJepaConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.prjepa = PrJepaModel(config)
        dropout = config.hidden_dropout_prob if config.classifier_dropout is None else config.classifier_dropout
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput | tuple[torch.Tensor, ...]:
        """input_ids, attention_mask `(batch, seq)`; labels `(batch,)` → logits `(batch, num_labels)`; `hidden_states`
        and `attentions` as in `PrJepaModel`."""
        outputs = self.prjepa(
            input_ids,
            attention_mask,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )
        pooled = pool_hidden_states(outputs.last_hidden_state, attention_mask, self.config.classifier_pooling)
        logits = self.classifier(self.dropout(pooled))
        loss = None if labels is None else self.loss_function(labels, logits, self.config)
        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


for _auto_class, _model_class in (
    (AutoModel, PrJepaModel),
    (AutoModelForPreTraining, PrJepaForPreTraining),
    (AutoModelForMaskedLM, PrJepaForMaskedLM),
    (AutoModelForSequenceClassification, PrJepaForSequenceClassification),
):
    _auto_class.register(PrJepaConfig, _model_class, exist_ok=True)
    _model_class.register_for_auto_class(_auto_class.__name__)
PrJepaConfig.register_for_auto_class()

__all__ = [
    "PrJepaPreTrainedModel",
    "PrJepaModel",
    "PrJepaForPreTraining",
    "PrJepaForMaskedLM",
    "PrJepaForSequenceClassification",
    "pool_hidden_states",
    "sinusoidal_position_table",
]
