"""Shared fixtures: a tiny WordPiece tokenizer and a tiny BERT folder (session-scoped, so never mutated)."""

import pytest
import torch
from helpers import VOCAB


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> str:
    directory = tmp_path_factory.mktemp("tokenizer")
    (directory / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    return str(directory)


@pytest.fixture(scope="session")
def tokenizer(tokenizer_dir):
    from transformers import BertTokenizer

    return BertTokenizer.from_pretrained(tokenizer_dir)


@pytest.fixture(scope="session")
def bert_dir(tmp_path_factory, tokenizer) -> str:
    """A plain transformers BertModel over the tiny vocabulary, with the tiny tokenizer, saved to a folder."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    directory = tmp_path_factory.mktemp("bert")
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)
