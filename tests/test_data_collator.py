"""DataCollatorForPrJepa: every batch property checked against a plain-Python reading of the rules, masking rates
against their binomial spread, counter-based determinism (also across DataLoader workers), and the model taking
the batch."""

import itertools
import math

import numpy as np
import pytest
import torch
from helpers import SPECIAL_TOKENS, VOCAB, tiny_config
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from modeling_prjepa import PrJepaForPreTraining
from prjepa.collator import DataCollatorForPrJepa, batch_seed

PAD, UNK, CLS, SEP, MASK = range(len(SPECIAL_TOKENS))
WORD_IDS = range(len(SPECIAL_TOKENS), len(VOCAB))
HYPOTHESIS = settings(max_examples=40, deadline=None, database=None)  # examples are not replayed across runs


def half_up(value: float) -> int:
    return math.floor(value + 0.5)


def size_rule(scale: float, n: int) -> int:
    """The documented block-size rule: round half up, clamp to [1, n]."""
    return min(max(half_up(scale * n), 1), n)


@st.composite
def examples_strategy(draw) -> list[dict]:
    """1-6 tokenized examples: empty, `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`, with words and `[UNK]`s; some carry
    an attention_mask (possibly with trailing masked-out tokens) or a special_tokens_mask marking extra tokens."""
    examples = []
    for _ in range(draw(st.integers(1, 6))):
        words = st.lists(st.sampled_from([*WORD_IDS, UNK]), max_size=40)
        kind = draw(st.sampled_from(["empty", "single", "pair"]))
        if kind == "empty":
            input_ids = []
        elif kind == "single":
            input_ids = [CLS, *draw(words), SEP]
        else:
            input_ids = [CLS, *draw(words), SEP, *draw(words), SEP]
        example = {"input_ids": input_ids, "token_type_ids": [0] * len(input_ids)}
        if input_ids and draw(st.booleans()):
            # Tokens outside the attention mask, padding or not, must never be chosen.
            padding = draw(st.lists(st.sampled_from([PAD, WORD_IDS[0]]), max_size=3))
            example = {"input_ids": input_ids + padding, "attention_mask": [1] * len(input_ids) + [0] * len(padding)}
        if input_ids and draw(st.booleans()):
            length = len(example["input_ids"])
            marked = draw(st.lists(st.booleans(), min_size=length, max_size=length))
            structural = [token in (CLS, SEP) for token in example["input_ids"]]
            example["special_tokens_mask"] = [int(is_special or mark) for is_special, mark in zip(structural, marked)]
        examples.append(example)
    return examples


@st.composite
def config_strategy(draw):
    def scale(high: float) -> tuple[float, float]:
        low = draw(st.floats(0.05, 0.9))
        return (low, draw(st.floats(low, high)))

    return tiny_config(
        target_block_scale=scale(0.95),
        context_block_scale=scale(1.0),  # a context span may cover the whole sequence (I-JEPA's scale reaches 1)
        num_target_blocks=draw(st.integers(1, 4)),
        min_context_tokens=draw(st.integers(1, 8)),
    )


def content_positions(example: dict) -> list[int]:
    """The real, non-special positions of an example, read straight from the rules."""
    attention = example.get("attention_mask", [1] * len(example["input_ids"]))
    special = example.get("special_tokens_mask", [0] * len(example["input_ids"]))
    return [
        i
        for i, token in enumerate(example["input_ids"])
        if attention[i] and not special[i] and token not in range(len(SPECIAL_TOKENS))
    ]


def consistent_scale_exists(sizes: list[tuple[int, int]], low: float, high: float) -> bool:
    """Whether one scale s in [low, high] gives every (size, n) pair under `size_rule`: the intersection of the
    intervals of s that round to each size is not empty."""
    lower, upper = low, high
    for size, n in sizes:
        if size > 1:
            lower = max(lower, (size - 0.5) / n)
        if size < n:
            upper = min(upper, (size + 0.5) / n)
    return lower <= upper + 1e-12


def check_batch(batch: dict[str, torch.Tensor], examples: list[dict], config) -> None:
    width = batch["input_ids"].shape[1]
    for row, example in enumerate(examples):
        ids, length = example["input_ids"], len(example["input_ids"])
        assert batch["input_ids"][row].tolist() == ids + [PAD] * (width - length)
        attention = example.get("attention_mask", [1] * length)
        assert batch["attention_mask"][row].tolist() == attention + [0] * (width - length)
        content = content_positions(example)

        chosen = (batch["labels"][row] != -100).nonzero().flatten().tolist()
        assert set(chosen) <= set(content), "MLM chose a special or padding token"
        assert bool(chosen) == bool(content), "a sequence with content needs at least one MLM label"
        assert all(batch["labels"][row, i] == ids[i] for i in chosen)
        masked = batch["masked_input_ids"][row].tolist()
        changed = [i for i in range(width) if masked[i] != batch["input_ids"][row, i]]
        assert set(changed) <= set(chosen)
        assert all(masked[i] == MASK or masked[i] in WORD_IDS or masked[i] == UNK for i in chosen)
        assert all(masked[i] != UNK or ids[i] == UNK for i in chosen), "a random replacement was a special token"

        if config.objective != "hybrid":
            continue
        check_jepa_row(batch, row, content, config)


def check_jepa_row(batch: dict[str, torch.Tensor], row: int, content: list[int], config) -> None:
    n = len(content)
    rank = {position: k for k, position in enumerate(content)}
    context_mask, target_mask = batch["context_mask"][row], batch["target_mask"][row]
    for mask, indices in ((context_mask, batch["context_indices"][row]), (target_mask, batch["target_indices"][row])):
        flat_mask, flat_indices = mask.reshape(-1, mask.shape[-1]), indices.reshape(-1, indices.shape[-1])
        assert (flat_mask.cummin(dim=-1).values == flat_mask).all(), "valid slots must come first"
        assert (flat_indices[flat_mask == 0] == 0).all(), "padded index slots must be 0"

    context = batch["context_indices"][row][context_mask.bool()].tolist()
    if not context_mask.any():
        assert not target_mask.any(), "a row without context must have no targets either"
        largest_targets = config.num_target_blocks * size_rule(config.target_block_scale[1], n)
        assert n == 0 or n - largest_targets < config.min_context_tokens, "long enough for JEPA, yet given no blocks"
        return
    assert n > config.min_context_tokens, "too short for JEPA, yet given blocks"
    assert set(context) <= set(content), "context outside the content tokens"
    assert context == sorted(set(context)), "context indices must be increasing and unique"
    assert len(context) >= config.min_context_tokens

    blocks = [batch["target_indices"][row, j][target_mask[j].bool()].tolist() for j in range(config.num_target_blocks)]
    sizes = {len(block) for block in blocks}
    assert len(sizes) == 1 and min(sizes) >= 1, "every target block of a row has the same, positive size"
    low, high = config.target_block_scale
    assert size_rule(low, n) <= len(blocks[0]) <= size_rule(high, n)
    targets = set()
    for block in blocks:
        assert set(block) <= set(content), "target outside the content tokens"
        ranks = [rank[position] for position in block]
        assert ranks == list(range(ranks[0], ranks[0] + len(ranks))), "a target block must be contiguous content"
        targets |= set(block)
    assert not targets & set(context), "context and targets overlap"

    # The context is a contiguous content span minus the targets, or (fallback) all content outside the targets.
    first, last = rank[context[0]], rank[context[-1]]
    inside = {content[k] for k in range(first, last + 1)}
    assert inside <= set(context) | targets, "the context is not a span minus targets"
    if set(context) != set(content) - targets:
        assert last - first + 1 <= size_rule(config.context_block_scale[1], n)


@HYPOTHESIS
@given(
    examples=examples_strategy(),
    config=config_strategy(),
    seed=st.integers(0, 2**32),
    pad_to=st.sampled_from([None, 8]),
)
def test_batches_follow_every_masking_rule(tokenizer, examples, config, seed, pad_to):
    collator = DataCollatorForPrJepa(tokenizer, config, pad_to_multiple_of=pad_to, seed=seed)
    if not any(example["input_ids"] for example in examples):
        with pytest.raises(ValueError, match="every example is empty"):
            collator(examples)
        return
    batch = collator(examples)
    assert set(batch) == {
        "input_ids", "attention_mask", "masked_input_ids", "labels",
        "context_indices", "context_mask", "target_indices", "target_mask",
    }  # fmt: skip
    assert all(value.dtype == torch.long for value in batch.values())
    width = max(len(example["input_ids"]) for example in examples)
    assert batch["input_ids"].shape[1] == (width if pad_to is None else -(-width // pad_to) * pad_to)
    assert batch["target_mask"].shape[:2] == (len(examples), config.num_target_blocks)
    check_batch(batch, examples, config)


@HYPOTHESIS
@given(lengths=st.lists(st.integers(1, 60), min_size=2, max_size=8), config=config_strategy(), seed=st.integers(0, 9))
def test_one_block_scale_per_batch_sizes_each_row_by_its_own_length(tokenizer, lengths, config, seed):
    examples = [{"input_ids": [CLS, *[WORD_IDS[0]] * length, SEP]} for length in lengths]
    batch = DataCollatorForPrJepa(tokenizer, config, seed=seed)(examples)
    active = batch["target_mask"][:, 0, 0].bool()
    sizes = [(int(batch["target_mask"][row, 0].sum()), n) for row, n in enumerate(lengths) if active[row]]
    assert consistent_scale_exists(sizes, *config.target_block_scale)


def test_context_is_one_span_of_the_context_scale_minus_the_targets(tokenizer):
    # Fixed scales: every row of 60 content tokens gets a context span of exactly 18 and two target blocks of 6, so
    # at least 6 context tokens remain and the fallback (all content outside the targets, 48 tokens or more) never
    # applies. The context must be one 18-token window minus the targets, for every seed.
    config = tiny_config(
        target_block_scale=(0.1, 0.1), context_block_scale=(0.3, 0.3), num_target_blocks=2, min_context_tokens=1
    )
    n, span = 60, 18
    examples = [{"input_ids": [CLS, *[WORD_IDS[0]] * n, SEP]}] * 4
    for seed in range(25):
        batch = DataCollatorForPrJepa(tokenizer, config, seed=seed)(examples)
        for row in range(len(examples)):
            context = set(batch["context_indices"][row][batch["context_mask"][row].bool()].tolist())
            targets = set(batch["target_indices"][row][batch["target_mask"][row].bool()].tolist())
            windows = [set(range(1 + start, 1 + start + span)) - targets for start in range(n - span + 1)]
            assert context in windows, f"seed {seed}, row {row}: the context is not an {span}-token span minus targets"


def test_rows_long_enough_always_get_jepa_and_rows_too_short_never(tokenizer):
    config = tiny_config(min_context_tokens=4, num_target_blocks=2, target_block_scale=(0.1, 0.25))
    examples = [{"input_ids": [CLS, *[WORD_IDS[0]] * n, SEP]} for n in (0, 1, 4, 40, 60)]
    collator = DataCollatorForPrJepa(tokenizer, config)
    for _ in range(20):
        active = collator(examples)["context_mask"].any(dim=1).tolist()
        assert active[:3] == [False, False, False] and active[3:] == [True, True]


def test_mlm_and_replacement_rates_match_their_probabilities(tokenizer):
    """Over 150 batches: the chosen fraction matches p·n + (1 − p)^n per row, and the [MASK] / random / kept split of
    the chosen tokens is 80/10/10 (a random draw equal to the original counts as kept), each within 4 binomial
    standard deviations."""
    config = tiny_config(mlm_probability=0.15)
    collator = DataCollatorForPrJepa(tokenizer, config, seed=1)
    generator = torch.Generator().manual_seed(0)
    chosen = masked = replaced = expected = variance = 0
    lengths = []
    for _ in range(150):
        examples = []
        for _ in range(8):
            n = int(torch.randint(1, 60, (1,), generator=generator))
            words = torch.randint(WORD_IDS[0], len(VOCAB), (n,), generator=generator).tolist()
            examples.append({"input_ids": [CLS, *words, SEP]})
            lengths.append(n)
            expected += n * 0.15 + 0.85**n
            variance += n * 0.15 * 0.85
        batch = collator(examples)
        selected = batch["labels"] != -100
        chosen += int(selected.sum())
        masked += int((batch["masked_input_ids"][selected] == MASK).sum())
        replaced += int(((batch["masked_input_ids"] != batch["input_ids"]) & (batch["masked_input_ids"] != MASK)).sum())
    assert abs(chosen - expected) < 4 * math.sqrt(variance)
    replace_probability = 0.1 * (1 - 1 / len(WORD_IDS))
    for count, probability in ((masked, 0.8), (replaced, replace_probability)):
        assert abs(count - probability * chosen) < 4 * math.sqrt(chosen * probability * (1 - probability))


def test_the_collators_own_masking_rate_masks_as_a_config_with_that_rate(tokenizer):
    examples = [{"input_ids": [CLS, *list(WORD_IDS) * 3, SEP]}] * 8
    own_rate = DataCollatorForPrJepa(tokenizer, tiny_config(mlm_probability=0.15), seed=5, mlm_probability=0.5)
    config_rate = DataCollatorForPrJepa(tokenizer, tiny_config(mlm_probability=0.5), seed=5)
    for _ in range(3):
        first, second = own_rate(examples), config_rate(examples)
        assert all(torch.equal(first[key], second[key]) for key in first)
    assert 0.4 < (first["labels"] != -100).float().mean() < 0.6
    with pytest.raises(ValueError, match=r"mlm_probability must be in \(0, 1\), or None for the config's \(0\.15\)"):
        DataCollatorForPrJepa(tokenizer, tiny_config(mlm_probability=0.15), mlm_probability=1.0)


def test_every_row_with_content_gets_one_label_even_when_the_coin_flips_choose_none(tokenizer):
    # A single content token is chosen by the coin flip with probability 0.15 only.
    examples = [{"input_ids": [CLS, WORD_IDS[0], SEP]}] * 64
    labels = DataCollatorForPrJepa(tokenizer, tiny_config())(examples)["labels"]
    assert (labels[:, 1] == WORD_IDS[0]).all() and (labels[:, [0, 2]] == -100).all()


def random_examples(count: int, seed: int = 0) -> list[dict]:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, 30, (count,), generator=generator).tolist()
    words = [torch.randint(WORD_IDS[0], len(VOCAB), (n,), generator=generator).tolist() for n in lengths]
    return [{"input_ids": [CLS, *sequence, SEP]} for sequence in words]


def assert_batches_equal(first: dict, second: dict) -> None:
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def batches_differ(first: dict, second: dict) -> bool:
    keys = ("masked_input_ids", "context_indices", "target_indices")
    return any(not torch.equal(first[key], second[key]) for key in keys)


def collator_at(tokenizer, epoch: int, index: int, process: int = 0, seed: int = 0) -> DataCollatorForPrJepa:
    collator = DataCollatorForPrJepa(tokenizer, tiny_config(), seed=seed)
    collator.set_position(epoch, index, process)
    return collator


def test_batch_depends_only_on_seed_and_position(tokenizer):
    examples = random_examples(16)
    reference = collator_at(tokenizer, 2, 5)(examples)
    torch.manual_seed(123)  # the global RNG must not matter ...
    state = torch.get_rng_state()
    assert_batches_equal(collator_at(tokenizer, 2, 5)(examples), reference)
    assert torch.equal(torch.get_rng_state(), state)  # ... nor be touched
    # hash() reduces ints modulo 2**61 - 1, so a hash-derived seed gave these last two the reference's masks.
    others = (
        dict(epoch=3, index=5), dict(epoch=2, index=6), dict(epoch=2, index=5, process=1),
        dict(epoch=2, index=5, seed=1), dict(epoch=2, index=5, seed=2**61 - 1), dict(epoch=2, index=5 + 2**61 - 1),
    )  # fmt: skip
    for other in others:
        assert batches_differ(collator_at(tokenizer, **other)(examples), reference), other


def test_batch_seed_is_a_seed_sequence_over_two_32_bit_words_per_coordinate(tokenizer):
    """The seed written out by hand from the documented recipe, for a position with coordinates past 32 bits."""
    seed, epoch, index, process = 2**40 + 7, 3, 2**32 + 9, 1
    words = [7, 2**8, 3, 0, 9, 1, 1, 0]
    low, high = np.random.SeedSequence(words).generate_state(2, dtype=np.uint32)
    assert batch_seed(seed, epoch, index, process) == int(low) + (int(high) << 32)
    collator = collator_at(tokenizer, epoch, index, process, seed=seed)
    assert collator._next_generator().initial_seed() == int(low) + (int(high) << 32)
    assert collator._next_generator().initial_seed() == batch_seed(seed, epoch, index + 1, process)
    # A pinned value: it changes only if the recipe (or numpy's SeedSequence) does, which would break resuming a run
    # started before the change.
    assert batch_seed(0, 0, 0, 0) == 3783394973971166492


def test_positions_differing_in_one_coordinate_get_different_seeds():
    """Every single-coordinate change from two base positions, to values at the 32-bit word boundary, at hash()'s
    modulus 2**61 - 1 and at the top of the range; plus the pair that plain SeedSequence([seed, epoch, index, rank])
    maps to the same entropy words."""
    values = (0, 1, 2, 2**32 - 1, 2**32, 2**32 + 1, 2**61 - 1, 2**63, 2**64 - 1)
    positions = set()
    for base in ((0, 0, 0, 0), (7, 3, 11, 2)):
        for coordinate, value in itertools.product(range(4), values):
            positions.add(base[:coordinate] + (value,) + base[coordinate + 1 :])
    positions |= {(2**32, 0, 5, 0), (0, 1, 5 * 2**32, 0)}
    assert len({batch_seed(*position) for position in positions}) == len(positions)


def test_each_call_advances_the_position_so_resuming_mid_epoch_reproduces_the_batches(tokenizer):
    batches = [random_examples(4, seed) for seed in range(5)]
    collator = collator_at(tokenizer, 1, 0)
    uninterrupted = [collator(examples) for examples in batches]
    resumed = collator_at(tokenizer, 1, 3)  # batches 0-2 were trained before the restart and are skipped uncollated
    for examples, expected in zip(batches[3:], uninterrupted[3:]):
        assert_batches_equal(resumed(examples), expected)
    repeated = collator_at(tokenizer, 1, 0)
    assert batches_differ(repeated(batches[0]), repeated(batches[0])), "the position must advance with every call"


def test_dataloader_workers_yield_the_same_batches_as_the_main_process(tokenizer):
    dataset = random_examples(12)

    def batches(num_workers: int) -> list[dict]:
        collator = collator_at(tokenizer, 1, 4)
        return list(DataLoader(dataset, batch_size=2, collate_fn=collator, num_workers=num_workers))

    in_process = batches(0)
    for expected, actual in zip(in_process, batches(2), strict=True):
        assert_batches_equal(actual, expected)


def test_list_array_and_tensor_inputs_give_the_same_batch(tokenizer):
    examples = random_examples(5)
    as_tensors = [{"input_ids": torch.tensor(example["input_ids"])} for example in examples]
    as_arrays = [{"input_ids": np.array(example["input_ids"])} for example in examples]
    mixed = [as_tensors[0], as_arrays[1], *examples[2:]]
    reference = collator_at(tokenizer, 0, 0)(examples)
    for inputs in (as_tensors, as_arrays, mixed):
        assert_batches_equal(collator_at(tokenizer, 0, 0)(inputs), reference)


@pytest.mark.parametrize("objective", ["hybrid", "mlm"])
def test_collated_batch_trains_the_model_with_finite_losses(tokenizer, objective):
    config = tiny_config(objective=objective)
    examples = random_examples(6) + [{"input_ids": [CLS, SEP]}, {"input_ids": []}]
    batch = DataCollatorForPrJepa(tokenizer, config)(examples)
    if objective == "mlm":
        assert set(batch) == {"input_ids", "attention_mask", "masked_input_ids", "labels"}
    model = PrJepaForPreTraining(config)
    output = model(**batch)
    output.loss.backward()
    assert torch.isfinite(output.loss) and output.mlm_loss > 0
    assert all(torch.isfinite(parameter.grad).all() for parameter in model.parameters() if parameter.grad is not None)
    if objective == "hybrid":
        assert output.jepa_loss > 0


def test_rows_without_jepa_blocks_leave_the_jepa_loss_unchanged(tokenizer):
    config = tiny_config()
    examples = random_examples(6, seed=3) + [{"input_ids": [CLS, WORD_IDS[0], SEP]}, {"input_ids": [CLS, SEP]}]
    batch = DataCollatorForPrJepa(tokenizer, config)(examples)
    active = batch["context_mask"].any(dim=1)
    assert not active.all() and active.any()
    model = PrJepaForPreTraining(config).eval()
    with torch.no_grad():
        everything = model(**batch).jepa_loss
        active_only = model(**{key: value[active] for key, value in batch.items()}).jepa_loss
    torch.testing.assert_close(everything, active_only)


def test_bad_input_is_refused_with_a_clear_error(tokenizer):
    collator = DataCollatorForPrJepa(tokenizer, tiny_config())
    with pytest.raises(ValueError, match="empty list"):
        collator([])
    with pytest.raises(ValueError, match="needs 'input_ids'"):
        collator([{"text": "the cat"}])
    with pytest.raises(ValueError, match="attention_mask has length 2 but its input_ids 3"):
        collator([{"input_ids": [CLS, WORD_IDS[0], SEP], "attention_mask": [1, 1]}])
    with pytest.raises(ValueError, match=f"Token id {len(VOCAB)} is outside the model's vocabulary"):
        collator([{"input_ids": [CLS, len(VOCAB), SEP]}])
    # Left padding (a tokenizer with padding_side="left"): the views would number the real tokens differently.
    left_padded = tokenizer("the cat sat", padding="max_length", max_length=8, padding_side="left")
    assert left_padded["attention_mask"][0] == 0
    with pytest.raises(ValueError, match="padding before real tokens .* padding_side='right'"):
        collator([dict(left_padded), {"input_ids": [CLS, WORD_IDS[0], SEP]}])
    collator([dict(tokenizer("the cat sat", padding="max_length", max_length=8))])  # right padding is the collator's
    with pytest.raises(ValueError, match="pad_to_multiple_of"):
        DataCollatorForPrJepa(tokenizer, tiny_config(), pad_to_multiple_of=0)
    with pytest.raises(ValueError, match="mask_token_id"):
        DataCollatorForPrJepa(tokenizer, tiny_config(mask_token_id=7))
    with pytest.raises(ValueError, match="non-negative"):
        collator.set_position(0, -1)
    # The seed's words hold 64 bits: a negative or wider seed or position would alias another one.
    with pytest.raises(ValueError, match=r"below 2\*\*64"):
        collator.set_position(2**64, 0)
    for seed in (-1, 2**64):
        with pytest.raises(ValueError, match=r"seed must be an int in \[0, 2\*\*64\)"):
            DataCollatorForPrJepa(tokenizer, tiny_config(), seed=seed)
