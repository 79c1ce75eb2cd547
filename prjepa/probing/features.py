"""Feature extraction from a frozen encoder: the states of its last (or a chosen) layer pooled by a fixed pooling, or
kept per token for the trained poolers, computed in one pass over length-sorted batches and cached on disk under a key
of everything that determines them."""

import hashlib
import json
import logging
import os
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import BatchEncoding, PreTrainedTokenizerBase
from transformers.utils.logging import tqdm

from configuration_prjepa import POOLING_STRATEGIES

from ..utils import atomic_path
from .encoders import LoadedEncoder, code_fingerprint
from .tasks import TaskData

logger = logging.getLogger(__name__)

# Poolings by name: the fixed ones are the model's own (pooled during extraction); the trained ones (`poolers.py`)
# pool the `TOKENS` features, every real token's state, that extraction returns instead of a pooled vector.
FIXED_POOLINGS = POOLING_STRATEGIES
TRAINED_POOLINGS = ("weighted", "attention")
POOLINGS = FIXED_POOLINGS + TRAINED_POOLINGS
TOKENS = "tokens"
# Part of every cache key: bump it when what is stored for a key changes, so old files are never read as new ones.
CACHE_FORMAT_VERSION = 1


def default_cache_dir() -> str:
    """`$PRJEPA_CACHE`, else `$XDG_CACHE_HOME/prjepa/features`, else `~/.cache/prjepa/features`."""
    if "PRJEPA_CACHE" in os.environ:
        return os.environ["PRJEPA_CACHE"]
    cache_home = os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache"))
    return os.path.join(cache_home, "prjepa", "features")


@dataclass
class TokenFeatures:
    """Unpooled hidden states of `n` texts, stored ragged so that memory grows with real tokens, not padding.

    states: `(total_tokens, hidden)` float32, the real tokens of text 0, then of text 1, …
    lengths: `(n,)` int64, real tokens per text.
    """

    states: np.ndarray
    lengths: np.ndarray
    offsets: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def hidden_size(self) -> int:
        return self.states.shape[1]

    def padded(self, indices: Sequence[int] | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The texts at `indices` as zero-padded states `(b, longest, hidden)` and a 1/0 mask `(b, longest)`."""
        indices = np.asarray(indices)
        lengths = self.lengths[indices]
        states = np.zeros((len(indices), int(lengths.max()), self.hidden_size), dtype=np.float32)
        mask = np.zeros(states.shape[:2], dtype=np.int64)
        for row, (start, length) in enumerate(zip(self.offsets[indices], lengths)):
            states[row, :length] = self.states[start : start + length]
            mask[row, :length] = 1
        return torch.from_numpy(states), torch.from_numpy(mask)


Texts = Sequence[str] | Sequence[tuple[str, str]]


def tokenize_texts(tokenizer: PreTrainedTokenizerBase, texts: Texts, max_seq_length: int) -> BatchEncoding:
    """Unpadded token ids (and the tokenizer's other inputs) of strings, or of `(first, second)` pairs as one
    sequence, truncated to `max_seq_length`: exactly what the encoder sees in `extract_features`."""
    pairs = isinstance(texts[0], (tuple, list))
    firsts = [text[0] for text in texts] if pairs else list(texts)
    seconds = [text[1] for text in texts] if pairs else None
    return tokenizer(firsts, seconds, truncation=True, max_length=max_seq_length)


def _hidden_state_batches(
    encoder: LoadedEncoder, texts: Texts, max_seq_length: int, batch_size: int
) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    """Yields `(indices (b,), hidden states (b, seq, hidden) float32, attention_mask (b, seq))`, the encoder's
    `last_hidden_state` or its `hidden_layer`, longest texts first so that each batch pads little (and an
    out-of-memory error comes at once); `indices` restore the order."""
    encodings = tokenize_texts(encoder.tokenizer, texts, max_seq_length)
    lengths = np.array([len(ids) for ids in encodings["input_ids"]])
    order = np.argsort(-lengths, kind="stable")
    model = encoder.model
    with torch.inference_mode():
        for start in tqdm(range(0, len(order), batch_size), desc=f"Encoding {len(order):,} texts", unit="batch"):
            indices = order[start : start + batch_size]
            batch = encoder.tokenizer.pad(
                {key: [values[i] for i in indices] for key, values in encodings.items()},
                padding_side="right",
                return_tensors="pt",
            ).to(model.device)
            if encoder.hidden_layer is None:
                hidden = model(**batch, return_dict=True).last_hidden_state
            else:
                hidden = model(**batch, output_hidden_states=True, return_dict=True).hidden_states[encoder.hidden_layer]
            yield indices, hidden.float(), batch["attention_mask"]


def _compute_features(
    encoder: LoadedEncoder, texts: Texts, poolings: Sequence[str], max_seq_length: int, batch_size: int
) -> dict[str, np.ndarray | TokenFeatures]:
    from modeling_prjepa import pool_hidden_states  # not at the top: the commands' --help reads POOLINGS from here

    features: dict[str, np.ndarray] = {}
    token_states: list[np.ndarray | None] = [None] * len(texts)
    fixed = [pooling for pooling in poolings if pooling != TOKENS]
    for indices, hidden, mask in _hidden_state_batches(encoder, texts, max_seq_length, batch_size):
        for pooling in fixed:
            vectors = pool_hidden_states(hidden, mask, pooling).cpu().numpy()
            if pooling not in features:
                features[pooling] = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            features[pooling][indices] = vectors
        if TOKENS in poolings:
            hidden = hidden.cpu().numpy()
            for row, (index, length) in enumerate(zip(indices, mask.sum(dim=1).tolist())):
                token_states[index] = hidden[row, :length]
    if TOKENS in poolings:
        lengths = np.array([len(states) for states in token_states], dtype=np.int64)
        features[TOKENS] = TokenFeatures(np.concatenate(token_states), lengths)
    return features


def feature_cache_key(encoder: LoadedEncoder, texts: Texts, max_seq_length: int) -> str:
    """Hex key of everything that determines the features: weights, the code that runs them (`code_fingerprint`), layer
    read, tokenizer (`encoding_fingerprint`), max length and the texts themselves (so a task, split, subsample or pair
    mode never reuses another's features)."""
    digest = hashlib.sha256()
    settings = [CACHE_FORMAT_VERSION, encoder.fingerprint, code_fingerprint(encoder.model), encoder.hidden_layer]
    settings += [encoder.tokenizer_fingerprint, max_seq_length]
    digest.update(json.dumps(settings).encode())
    digest.update(json.dumps(list(texts)).encode())
    return digest.hexdigest()[:24]


def _cache_path(cache_dir: str, name: str, pooling: str, key: str) -> str:
    readable = re.sub(r"[^A-Za-z0-9_.+-]", "_", name)
    return os.path.join(cache_dir, f"{readable}.{pooling}.{key}." + ("npz" if pooling == TOKENS else "npy"))


def _load_cached(path: str, num_texts: int) -> np.ndarray | TokenFeatures | None:
    """The cached features at `path`, or None when there are none or the file is damaged (named, then removed so
    that it is recomputed)."""
    if not os.path.exists(path):
        return None
    try:
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as stored:
                features = TokenFeatures(stored["states"], stored["lengths"])
        else:
            features = np.load(path, allow_pickle=False)
        if len(features) != num_texts:
            raise ValueError(f"{len(features)} rows for {num_texts} texts")
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        logger.warning(f"Feature cache entry {path} is damaged ({error}); recomputing it.")
        os.remove(path)
        return None
    return features


def _save_cached(path: str, features: np.ndarray | TokenFeatures) -> None:
    with atomic_path(path, suffix=os.path.splitext(path)[1]) as temporary:  # numpy adds an extension that is missing
        if isinstance(features, TokenFeatures):
            np.savez(temporary, states=features.states, lengths=features.lengths)
        else:
            np.save(temporary, features)


def extract_features(
    encoder: LoadedEncoder,
    texts: Texts,
    poolings: Sequence[str] = ("mean",),
    *,
    max_seq_length: int = 128,
    batch_size: int = 64,
    cache_dir: str | None = None,
    name: str = "features",
) -> dict[str, np.ndarray | TokenFeatures]:
    """Features of `texts` (strings, or `(first, second)` pairs encoded jointly as one sequence), by pooling.

    poolings: any of `"mean"`, `"max"`, `"cls"` → `(n, hidden)` float32 arrays (padding excluded), and `TOKENS` →
        a `TokenFeatures` of every real token, for the trained poolers. One encoder pass serves them all.
    cache_dir: where features are stored (`.npy` / `.npz`) under a key of the weights, the code that runs them, the
        layer read, the tokenizer, the max length and the texts (`feature_cache_key`); `None` disables the cache.
        `name` (task, split, column) only makes the file names readable.
    """
    extractable = FIXED_POOLINGS + (TOKENS,)
    unknown = [pooling for pooling in poolings if pooling not in extractable]
    if unknown:
        raise ValueError(
            f"Cannot extract {unknown}: extract_features takes {extractable}; trained poolings {TRAINED_POOLINGS} "
            f"pool {TOKENS!r} features with train_pooler / pool_tokens."
        )
    if len(texts) == 0:
        raise ValueError(f"No texts to encode for {name!r}.")
    paths = {}
    if cache_dir is not None:
        key = feature_cache_key(encoder, texts, max_seq_length)
        paths = {pooling: _cache_path(cache_dir, name, pooling, key) for pooling in poolings}
    cached = {pooling: _load_cached(path, len(texts)) for pooling, path in paths.items()}
    features = {pooling: value for pooling, value in cached.items() if value is not None}
    missing = [pooling for pooling in poolings if pooling not in features]
    if missing:
        computed = _compute_features(encoder, texts, missing, max_seq_length, batch_size)
        if cache_dir is not None:
            os.makedirs(cache_dir, exist_ok=True)
            for pooling in missing:
                _save_cached(paths[pooling], computed[pooling])
        features.update(computed)
    return {pooling: features[pooling] for pooling in poolings}


def extract_task_features(
    encoder: LoadedEncoder,
    task: TaskData,
    split: str,
    poolings: Sequence[str],
    *,
    pair_encoding: str = "separate",
    max_seq_length: int = 128,
    batch_size: int = 64,
    cache_dir: str | None = None,
) -> list[dict[str, np.ndarray | TokenFeatures]]:
    """`extract_features` of one split of a task for `poolings`, one result per encoded view (a pair encoded
    separately has two): each fixed pooling, and `TOKENS` once for all the trained ones. Cached as
    `<task>-<split>-<view>`, so that the probe and the representation analysis share their features."""
    extracted = [pooling for pooling in poolings if pooling not in TRAINED_POOLINGS]
    if len(extracted) < len(poolings):
        extracted.append(TOKENS)
    return [
        extract_features(
            encoder,
            texts,
            extracted,
            max_seq_length=max_seq_length,
            batch_size=batch_size,
            cache_dir=cache_dir,
            name=f"{task.name}-{split}-{view}",
        )
        for view, texts in task.texts(split, pair_encoding).items()
    ]


def pair_features(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """InferSent/SentEval pair features: `(n, d)`, `(n, d)` → `[u, v, |u − v|, u ⊙ v]` `(n, 4d)`."""
    return torch.cat([first, second, (first - second).abs(), first * second], dim=-1)


def combine_views(views: Sequence[np.ndarray]) -> np.ndarray:
    """One view's `(n, d)` features unchanged, or a separately encoded pair's `(n, 4d)` `pair_features`."""
    if len(views) == 1:
        return views[0]
    return pair_features(*(torch.from_numpy(view) for view in views)).numpy()
