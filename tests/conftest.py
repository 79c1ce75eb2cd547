"""Shared fixtures: a tiny WordPiece tokenizer and a tiny BERT folder (session-scoped, so never mutated); and a
`datasets` cache and Hypothesis storage of the session's own, so that the tests' files pile up neither in the user's
cache nor in the checkout."""

import os
import shutil
import tempfile

import pytest
import torch
from helpers import VOCAB


def pytest_configure(config):
    # Before any test module imports `datasets`, which reads its cache folder once; child processes inherit it.
    config.session_storage = tempfile.mkdtemp(prefix="prjepa-tests-")
    os.environ["HF_DATASETS_CACHE"] = config.session_storage
    os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(config.session_storage, "hypothesis"))
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def pytest_unconfigure(config):
    shutil.rmtree(getattr(config, "session_storage", ""), ignore_errors=True)


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
