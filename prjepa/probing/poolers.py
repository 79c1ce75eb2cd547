"""Trained poolers: a learned weighted mean over positions and attention pooling with a learned query, both starting
as the plain mean, trained jointly with a linear head on a task's token features and then frozen."""

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils.logging import tqdm

from .features import TRAINED_POOLINGS, TokenFeatures, pair_features


def _softmax_pool(states: torch.Tensor, mask: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Σ_t softmax(logits)_t · states_t over the real tokens t.

    states `(b, seq, d)`, mask (1 real / 0 padding) and logits `(b, seq)` → `(b, d)`."""
    weights = logits.masked_fill(~mask.bool(), float("-inf")).softmax(dim=-1)
    return torch.einsum("bs,bsd->bd", weights, states)


class WeightedPooler(nn.Module):
    """Learned weighted mean: one logit per position, softmax over the real tokens. Starts as the plain mean."""

    def __init__(self, max_positions: int):
        super().__init__()
        self.position_logits = nn.Parameter(torch.zeros(max_positions))

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """states `(b, seq, hidden)`, mask `(b, seq)` 1/0 → `(b, hidden)`."""
        if states.shape[1] > len(self.position_logits):
            raise ValueError(
                f"Sequences of {states.shape[1]} tokens exceed the pooler's {len(self.position_logits)} positions; "
                "build it with max_positions of at least the extraction's max_seq_length."
            )
        return _softmax_pool(states, mask, self.position_logits[: states.shape[1]].expand(mask.shape))


class AttentionPooler(nn.Module):
    """Attention pooling: a learned query scores key-projected tokens, and the softmax of the scores over the real
    tokens weights the token states. Starts as the plain mean (zero query)."""

    def __init__(self, hidden_size: int):
        super().__init__()
        # No key bias: it would add the same score to every token, which the softmax cancels.
        self.key = nn.Linear(hidden_size, hidden_size, bias=False)
        self.query = nn.Parameter(torch.zeros(hidden_size))

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """states `(b, seq, hidden)`, mask `(b, seq)` 1/0 → `(b, hidden)`."""
        # q·(W x) = (Wᵀq)·x: one vector product per token instead of projecting every token.
        scores = states @ (self.key.weight.t() @ self.query) / math.sqrt(states.shape[-1])
        return _softmax_pool(states, mask, scores)


def make_pooler(kind: str, hidden_size: int, max_positions: int) -> nn.Module:
    """A `WeightedPooler` (`"weighted"`) or an `AttentionPooler` (`"attention"`), both starting as the mean."""
    if kind == "weighted":
        return WeightedPooler(max_positions)
    if kind == "attention":
        return AttentionPooler(hidden_size)
    raise ValueError(f"Unknown trained pooling {kind!r}; choose one of {TRAINED_POOLINGS}.")


def _pooled_views(pooler: nn.Module, views: Sequence[TokenFeatures], indices: np.ndarray) -> torch.Tensor:
    pooled = [pooler(*view.padded(indices)) for view in views]
    return pooled[0] if len(pooled) == 1 else pair_features(*pooled)


@torch.no_grad()
def _pool_all(
    pooler: nn.Module, views: Sequence[TokenFeatures], rows: np.ndarray, batch_size: int = 256
) -> torch.Tensor:
    chunks = np.array_split(rows, math.ceil(len(rows) / batch_size))
    return torch.cat([_pooled_views(pooler, views, chunk) for chunk in chunks])


@contextlib.contextmanager
def single_torch_thread() -> Iterator[None]:
    """Runs torch on one intra-op thread (restored after). The poolers' ops are small, so a thread pool spends more
    time handing work over than computing, disastrously on a busy CPU: `train_pooler` on 5,000 texts took 35 s with
    two threads and 1.2 s with one on a shared 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@single_torch_thread()
def pool_tokens(pooler: nn.Module, tokens: TokenFeatures, batch_size: int = 256) -> np.ndarray:
    """Pools every text of `tokens` with a (trained) pooler → `(n, hidden)` float32."""
    return _pool_all(pooler, [tokens], np.arange(len(tokens)), batch_size).numpy()


@dataclass(frozen=True)
class PoolerTraining:
    """How `train_pooler` trains: AdamW (decoupled weight decay) for `epochs` over shuffled batches, seeded. The
    defaults are the probe's `--pooler_*` defaults and what the representation analysis trains with."""

    epochs: int = 5
    learning_rate: float = 1e-2
    weight_decay: float = 1e-2
    batch_size: int = 128
    seed: int = 0


@single_torch_thread()
def train_pooler(
    kind: str,
    tokens: TokenFeatures | Sequence[TokenFeatures],
    labels: np.ndarray,
    *,
    is_regression: bool,
    max_positions: int,
    training: PoolerTraining = PoolerTraining(),
    rows: np.ndarray | None = None,
) -> nn.Module:
    """Trains a `kind` pooler jointly with a linear head on the training split and returns the pooler frozen.

    tokens: the training texts' `TokenFeatures`, or one per sentence of a separately encoded pair (one pooler pools
        both; the head sees their `pair_features`).
    labels: `(n,)` class ids from 0, or scores.
    rows: the indices of the texts to train on (default: all), e.g. the training folds of a cross-validation.
    The head reads pooled features standardised with statistics of the initial (mean) pooling, fixed during
    training; cross-entropy, or squared error on standardised scores.
    """
    views = [tokens] if isinstance(tokens, TokenFeatures) else list(tokens)
    if any(len(view) != len(labels) for view in views):
        raise ValueError(f"{[len(view) for view in views]} texts but {len(labels)} labels.")
    rows = np.arange(len(labels)) if rows is None else np.asarray(rows)
    with torch.random.fork_rng():
        torch.manual_seed(training.seed)
        pooler = make_pooler(kind, views[0].hidden_size, max_positions)
        initial = _pool_all(pooler, views, rows)
        # A feature constant under mean pooling keeps scale 1 (as in StandardScaler), not a huge 1/std.
        center, spread = initial.mean(dim=0), initial.std(dim=0)
        scale = torch.where(spread > 1e-6, spread, torch.ones_like(spread))
        head = nn.Linear(initial.shape[1], 1 if is_regression else int(labels.max()) + 1)
    targets = torch.from_numpy(labels[rows])
    if is_regression:
        targets = ((targets - targets.mean()) / targets.std().clamp(min=1e-6)).float()
    parameters = list(pooler.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=training.learning_rate, weight_decay=training.weight_decay)
    generator = torch.Generator().manual_seed(training.seed)
    for _ in tqdm(range(training.epochs), desc=f"Training the {kind} pooler", unit="epoch"):
        for batch in torch.randperm(len(rows), generator=generator).split(training.batch_size):
            outputs = head((_pooled_views(pooler, views, rows[batch.numpy()]) - center) / scale)
            if is_regression:
                loss = F.mse_loss(outputs.squeeze(-1), targets[batch])
            else:
                loss = F.cross_entropy(outputs, targets[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return pooler.eval().requires_grad_(False)
