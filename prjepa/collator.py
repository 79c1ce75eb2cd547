"""Pretraining collator for PrJEPA: right-pads tokenized examples, applies BERT-style MLM corruption and samples the
JEPA context and target blocks (docs/method.md §2), all as tensor operations over the whole batch."""

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import get_worker_info
from transformers import PreTrainedTokenizerBase

from configuration_prjepa import PrJepaConfig

from .utils import check_tokenizer_has_vocabulary

# Every coordinate of a batch's position (seed, epoch, batch index, rank) is an unsigned 64-bit int, fed to
# numpy's SeedSequence as two 32-bit words (low, high). SeedSequence splits a Python int into as many 32-bit words
# as it needs and zero-pads short entropy, so plain SeedSequence([seed, epoch, index, rank]) would collide, e.g.
# (2**32, 0, 5, 0) with (0, 1, 5·2**32, 0), and [1, 2] with [1, 2, 0]; fixed-width words, 8 of them (more than
# its pool of 4), make the entropy a one-to-one function of the position.
COORDINATE_LIMIT = 1 << 64
WORD_MASK = (1 << 32) - 1


@dataclass
class DataCollatorForPrJepa:
    """Builds the batch `PrJepaForPreTraining.forward` takes from tokenized examples of any lengths.

    Each example has `input_ids` (a list of ints, a 1-D array or tensor) and may have `attention_mask` and
    `special_tokens_mask`; other keys are ignored. Output, right-padded to the longest example (rounded up to
    `pad_to_multiple_of`), all `torch.long`:
        input_ids, attention_mask, masked_input_ids, labels `(B, L)`;
        for `config.objective == "hybrid"` also context_indices, context_mask `(B, Kc)` and
        target_indices, target_mask `(B, num_target_blocks, Kt)` (index tensors padded with 0, masks 1 = valid).

    Content tokens: the real (attention_mask 1) tokens that are not special, where special means one of the
    tokenizer's special ids (`[UNK]` included, as in transformers) or marked in the example's `special_tokens_mask`.
    Every choice below is made among the content tokens only; padding, `[CLS]` and `[SEP]` are never chosen.

    MLM (BERT's rule): each content token is chosen independently with probability `mlm_probability` (the collator's,
    else the config's: a loss may be measured at another rate than the model trained at); a sequence with content but no
    chosen token gets its one token with the lowest draw instead, so that every non-empty sequence has an MLM label
    (this lifts the expected count from p·n to p·n + (1 − p)^n, negligible beyond ~30 tokens). Each chosen token
    independently becomes `[MASK]` (80%), a uniformly random non-special token id of the tokenizer (10%, which may by
    chance be the original) or stays (10%); `labels` hold the original id at every chosen position and -100 elsewhere.

    JEPA blocks, sampled in each sequence's content coordinates (its content tokens numbered 0..n-1, so a block is
    contiguous in the text and skips an inner `[SEP]` of a sentence pair):
        - per batch, one target scale s_t ~ U(target_block_scale) and one context scale s_c ~ U(context_block_scale);
        - per sequence, sizes are fractions of ITS OWN content length n, rounded half up and clamped to [1, n]:
          target size t = clamp(floor(s_t·n + 0.5), 1, n), context span size c = clamp(floor(s_c·n + 0.5), 1, n);
          so every target block of a sequence has the same size, and short sequences get proportionally short blocks;
        - `num_target_blocks` target blocks of size t at independent uniform starts (they may overlap, as in
          I-JEPA); one context span of size c at a uniform start;
        - context = the span minus every target position. If fewer than `min_context_tokens` remain, the context
          becomes every content token outside the targets; if even that is too few (a very short sequence), JEPA is
          off for that row: its context_mask and target_mask are all zero, it still gets MLM and adds nothing to
          L_JEPA.

    Randomness never touches the global torch RNG. Each call seeds a private generator with `batch_seed(seed, epoch,
    global batch index, process_index)`, a numpy SeedSequence over those four coordinates (see `batch_seed`), so a
    batch depends only on its position and on the examples, not on what was collated before nor on the process or
    its PYTHONHASHSEED: prefetching or skipping batches on resume changes nothing. `seed` is an int in [0, 2**64).
    `set_position(epoch, batch_index, process_index)` says the next call collates batch `batch_index` of `epoch`; every
    call advances the index by one. A DataLoader copies the collator into each worker when its iterator is created;
    worker w of W collates batches w, w + W, ..., so its k-th call uses index `batch_index + k·W + w` and the batches
    equal those of `num_workers=0`. Call `set_position` before iterating each epoch: otherwise non-persistent workers
    restart from the main process's copy and repeat the previous epoch's masks.
    """

    tokenizer: PreTrainedTokenizerBase
    config: PrJepaConfig
    pad_to_multiple_of: int | None = None
    seed: int = 0
    mlm_probability: float | None = None
    _epoch: int = field(default=0, init=False, repr=False)
    _first_index: int = field(default=0, init=False, repr=False)
    _process_index: int = field(default=0, init=False, repr=False)
    _calls: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.seed < COORDINATE_LIMIT:
            raise ValueError(f"seed must be an int in [0, 2**64), got {self.seed}.")
        if self.mlm_probability is not None and not 0.0 < self.mlm_probability < 1.0:
            raise ValueError(
                f"mlm_probability must be in (0, 1), or None for the config's ({self.config.mlm_probability}), got "
                f"{self.mlm_probability}."
            )
        self.config.check_tokenizer(self.tokenizer)
        # MLM's random replacements are drawn from the tokens that are not special.
        check_tokenizer_has_vocabulary(self.tokenizer, "the collator's tokenizer", "Pass the model's tokenizer.")
        self.pad_token_id = self._token_id("pad")
        self.mask_token_id = self._token_id("mask")
        if self.pad_to_multiple_of is not None and self.pad_to_multiple_of < 1:
            raise ValueError(f"pad_to_multiple_of must be a positive int or None, got {self.pad_to_multiple_of}.")
        special_ids = sorted(set(self.tokenizer.all_special_ids))
        # A lookup table over the vocabulary: one index_select instead of torch.isin, which is ~10x slower here.
        self.is_special_id = torch.zeros(self.config.vocab_size, dtype=torch.bool)
        self.is_special_id[special_ids] = True
        self.replacement_ids = torch.tensor(sorted(set(range(len(self.tokenizer))) - set(special_ids)))
        # Columns: target block, context span; fractions of a sequence's content length.
        self.scale_low, self.scale_high = torch.tensor(
            [self.config.target_block_scale, self.config.context_block_scale], dtype=torch.float64
        ).unbind(dim=1)
        self.scale_range = self.scale_high - self.scale_low
        self.span_kinds = torch.tensor([0] * self.config.num_target_blocks + [1])

    @property
    def masking_rate(self) -> float:
        """The probability with which each content token is chosen for MLM."""
        return self.config.mlm_probability if self.mlm_probability is None else self.mlm_probability

    def _token_id(self, name: str) -> int:
        token_id = getattr(self.tokenizer, f"{name}_token_id", None)
        if token_id is None:
            token_id = getattr(self.config, f"{name}_token_id")
        if token_id is None:
            raise ValueError(
                f"Neither the tokenizer nor the config has a {name} token id, which MLM pretraining needs. Use a "
                f"tokenizer with a {name} token (e.g. bert-base-uncased) or set PrJepaConfig.{name}_token_id."
            )
        return token_id

    def set_position(self, epoch: int, batch_index: int, process_index: int = 0) -> None:
        """The next batch collated is batch `batch_index` (0-based, counting every batch of the epoch, trained or
        skipped) of `epoch` on the process of rank `process_index`."""
        if min(epoch, batch_index, process_index) < 0 or max(epoch, batch_index, process_index) >= COORDINATE_LIMIT:
            raise ValueError(
                "set_position needs non-negative epoch, batch_index and process_index below 2**64, got "
                f"{(epoch, batch_index, process_index)}."
            )
        self._epoch, self._first_index, self._process_index, self._calls = epoch, batch_index, process_index, 0

    def _next_generator(self) -> torch.Generator:
        worker = get_worker_info()
        stride, offset = (1, 0) if worker is None else (worker.num_workers, worker.id)
        index = self._first_index + self._calls * stride + offset
        self._calls += 1
        return torch.Generator().manual_seed(batch_seed(self.seed, self._epoch, index, self._process_index))

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        generator = self._next_generator()
        input_ids, attention_mask, marked_special = self._pad(examples)
        content = self._content(input_ids, attention_mask, marked_special)
        masked_input_ids, labels = self._mask_tokens(input_ids, content, generator)
        batch = dict(
            input_ids=input_ids, attention_mask=attention_mask, masked_input_ids=masked_input_ids, labels=labels
        )
        if self.config.objective == "hybrid":
            batch.update(self._sample_blocks(content, generator))
        return batch

    def _pad(self, examples: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """→ input_ids, attention_mask (long) and the examples' special_tokens_mask (bool, `None` if no example has
        one), each `(B, L)`."""
        if not examples:
            raise ValueError("DataCollatorForPrJepa got an empty list of examples.")
        if any("input_ids" not in example for example in examples):
            raise ValueError(
                "Every example needs 'input_ids'; tokenize the dataset first (e.g. dataset.map(tokenizer_function))."
            )
        lengths = [len(example["input_ids"]) for example in examples]
        for key in ("attention_mask", "special_tokens_mask"):
            for example, length in zip(examples, lengths):
                if key in example and len(example[key]) != length:
                    raise ValueError(f"An example's {key} has length {len(example[key])} but its input_ids {length}.")
        width = max(lengths)
        if width == 0:
            raise ValueError("DataCollatorForPrJepa got a batch in which every example is empty (no input_ids).")
        if self.pad_to_multiple_of is not None:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        real = torch.arange(width) < torch.tensor(lengths)[:, None]

        def right_padded(key: str, missing_value: int, pad_value: int) -> torch.Tensor:
            values = [example.get(key, [missing_value] * length) for example, length in zip(examples, lengths)]
            return torch.full(real.shape, pad_value).masked_scatter_(real, _flatten(values, sum(lengths)))

        def present(key: str) -> bool:
            return any(key in example for example in examples)

        input_ids = right_padded("input_ids", self.pad_token_id, self.pad_token_id)
        attention_mask = right_padded("attention_mask", 1, 0) if present("attention_mask") else real.long()
        # Every view numbers positions from the row's start: a sentence after padding would train at positions
        # shifted by its padding, not at those it has alone, where the probe and any later use encode it.
        if (attention_mask[:, 1:] > attention_mask[:, :-1]).any():
            raise ValueError(
                "An example's attention_mask has padding before real tokens (left padding). Pretraining needs them "
                "first: tokenize without padding (the collator pads), or with the tokenizer's padding_side='right'."
            )
        marked_special = right_padded("special_tokens_mask", 0, 0).bool() if present("special_tokens_mask") else None
        return input_ids, attention_mask, marked_special

    def _content(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, marked_special: torch.Tensor | None
    ) -> torch.Tensor:
        """The content tokens `(B, L)` (bool): real, not a special id, not marked special by the example."""
        smallest, largest = input_ids.aminmax()
        if smallest < 0 or largest >= len(self.is_special_id):
            bad = int(smallest if smallest < 0 else largest)
            raise ValueError(
                f"Token id {bad} is outside the model's vocabulary (vocab_size={self.config.vocab_size}): the data was "
                "tokenized with another tokenizer. Re-tokenize it with the model's tokenizer."
            )
        is_special = self.is_special_id.index_select(0, input_ids.flatten()).view_as(input_ids)
        content = attention_mask.bool() & ~is_special
        return content if marked_special is None else content & ~marked_special

    def _mask_tokens(
        self, input_ids: torch.Tensor, content: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """input_ids, content `(B, L)` → masked_input_ids, labels `(B, L)` (see the class docstring for the rule)."""
        draw = torch.rand(content.shape, generator=generator).masked_fill_(~content, 2.0)
        # A content token is chosen when its draw is below the masking rate; the row's lowest draw is always at or
        # below the threshold, which adds one token only to rows that would otherwise have none.
        threshold = draw.amin(dim=1, keepdim=True).clamp(min=self.masking_rate)
        chosen = (draw <= threshold) & content

        action = torch.rand(content.shape, generator=generator)
        replacement_draw = torch.randint(len(self.replacement_ids), (content.numel(),), generator=generator)
        # index_select, not take or fancy indexing: those are several times slower on small CPU tensors.
        replacements = self.replacement_ids.index_select(0, replacement_draw).view_as(input_ids)
        corrupted = torch.where(action < 0.8, self.mask_token_id, torch.where(action < 0.9, replacements, input_ids))
        masked_input_ids = torch.where(chosen, corrupted, input_ids)
        labels = torch.where(chosen, input_ids, -100)
        return masked_input_ids, labels

    def _sample_blocks(self, content: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """content `(B, L)` → context_indices, context_mask `(B, Kc)`; target_indices, target_mask `(B, T, Kt)`."""
        num_blocks = self.config.num_target_blocks
        # content_count[b, i]: content tokens among positions 0..i, so a content token's content coordinate is
        # content_count - 1, and the row's content length n is the last column.
        content_count = content.cumsum(dim=1)
        num_content = content_count[:, -1:]
        scales = (self.scale_low + self.scale_range * torch.rand(2, dtype=torch.float64, generator=generator)).clamp(
            self.scale_low, self.scale_high
        )
        # Sizes (B, 2) of a target block and of the context span: rounded half up, within [1, n] (0 when n = 0).
        sizes = torch.minimum((scales * num_content + 0.5).long().clamp(min=1), num_content)
        span_sizes = sizes.index_select(1, self.span_kinds)  # (B, T + 1): T target blocks, then the context span
        start_draws = torch.rand(span_sizes.shape, dtype=torch.float64, generator=generator)
        span_starts = (start_draws * (num_content - span_sizes + 1)).long()

        # (B, T + 1, L); a non-content position shares the coordinate of the content token before it, so every use
        # below is restricted to content positions.
        coordinate = (content_count - 1)[:, None, :]
        in_span = (coordinate >= span_starts[..., None]) & (coordinate < (span_starts + span_sizes)[..., None])
        outside_targets = content & ~in_span[:, :num_blocks].any(dim=1)
        context = in_span[:, num_blocks] & outside_targets
        too_small = context.sum(dim=1, keepdim=True) < self.config.min_context_tokens
        context = torch.where(too_small, outside_targets, context)
        num_context = context.sum(dim=1, keepdim=True)
        active = num_context >= self.config.min_context_tokens  # (B, 1)
        context_indices, context_mask = _positions_of(context & active, max(int((num_context * active).max()), 1))

        target_size = sizes[:, :1] * active  # (B, 1): 0 for rows without JEPA
        offsets = torch.arange(max(int(target_size.max()), 1))
        target_mask = (offsets < target_size[..., None]).expand(-1, num_blocks, -1)  # (B, T, Kt)
        target_coordinates = torch.where(target_mask, span_starts[:, :num_blocks, None] + offsets, 0)
        # torch.searchsorted on the running count would do too, but it is parallelised so finely that it stalls for
        # milliseconds on a busy CPU; a compaction plus a gather stays cheap.
        content_positions, _ = _positions_of(content, content.shape[1])
        target_indices = content_positions.gather(1, target_coordinates.flatten(1)).view_as(target_mask) * target_mask
        return dict(
            context_indices=context_indices,
            context_mask=context_mask.long(),
            target_indices=target_indices,
            target_mask=target_mask.long(),
        )


def batch_seed(seed: int, epoch: int, batch_index: int, process_index: int) -> int:
    """The torch seed of one batch: a 64-bit int (for `torch.Generator.manual_seed`) drawn from
    `numpy.random.SeedSequence` over the entropy words (seed, epoch, batch_index, process_index), in that order, each
    coordinate (an int in [0, 2**64)) as its low then its high 32-bit word; the seed is the first generated uint32
    word plus the second shifted left by 32. SeedSequence is numpy's documented mixer of entropy into seeds, the same
    in every process; `hash()` is not documented as a mixing function at all (and hash(-1) == hash(-2))."""
    words = [word for value in (seed, epoch, batch_index, process_index) for word in (value & WORD_MASK, value >> 32)]
    low, high = np.random.SeedSequence(words).generate_state(2, dtype=np.uint32).tolist()
    return low | high << 32


def _flatten(values: list[Any], total: int) -> torch.Tensor:
    """Concatenates sequences of ints (lists, arrays or tensors) into one 1-D long tensor of `total` elements."""
    if all(isinstance(value, torch.Tensor) for value in values):
        return torch.cat([value.view(-1) for value in values]).long()
    # np.fromiter over the chained ints is ~7x faster than torch.tensor on a list of Python ints.
    return torch.from_numpy(np.fromiter(itertools.chain.from_iterable(values), dtype=np.int64, count=total))


def _positions_of(member: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The positions where `member` `(B, L)` is true, packed to the left in order: → positions `(B, width)` (0 past
    the row's count) and a bool mask of the filled slots. `width` must be at least the largest row count."""
    batch_size, length = member.shape
    running_count = member.cumsum(dim=1)
    # Members go to slots 0, 1, ... by running count; everything else to a discard slot at `width`.
    destination = torch.where(member, running_count - 1, width)
    positions = torch.arange(length).expand(batch_size, -1)
    packed = torch.zeros(batch_size, width + 1, dtype=torch.long).scatter_(1, destination, positions)[:, :width]
    return packed, torch.arange(width) < running_count[:, -1:]
