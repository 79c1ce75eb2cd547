"""Test helpers shared by the test modules: a tiny vocabulary, tiny configs, a hand-built pretraining batch and
writers of small data files."""

import os

import torch
from transformers import TrainerCallback

from configuration_prjepa import PrJepaConfig

WORDS = "the cat sat on mat a dog ran in park paris is capital of france and she he it was".split()
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = SPECIAL_TOKENS + WORDS + [f"##{letter}" for letter in "abcdefghijklmnopqrstuvwxyz"]


def tiny_config(**overrides) -> PrJepaConfig:
    """A two-layer config over the tiny vocabulary, with its special-token ids."""
    values = dict(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        predictor_hidden_size=16,
        predictor_num_hidden_layers=2,
        pad_token_id=0,
        cls_token_id=2,
        sep_token_id=3,
        mask_token_id=4,
    )
    values.update(overrides)
    return PrJepaConfig(**values)


def pretraining_batch(batch_size: int = 3, seq_len: int = 20, seed: int = 0) -> dict[str, torch.Tensor]:
    """A batch in the pretraining collator's format: the last sequence is padded after 12 tokens, MLM labels at two
    positions per sequence, one context span and two target blocks per sequence (the last block partly padding)."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(len(SPECIAL_TOKENS), len(VOCAB), (batch_size, seq_len), generator=generator)
    attention_mask = torch.ones(batch_size, seq_len, dtype=torch.long)
    attention_mask[-1, 12:] = 0
    input_ids[-1, 12:] = 0
    labels = torch.full((batch_size, seq_len), -100)
    masked_input_ids = input_ids.clone()
    for position in (3, 7):
        labels[:, position] = input_ids[:, position]
        masked_input_ids[:, position] = 4
    context_indices = torch.tensor([0, 1, 2, 3, 4, 5, 10, 11]).repeat(batch_size, 1)
    context_mask = torch.ones_like(context_indices)
    target_indices = torch.tensor([[6, 7, 8], [12, 13, 14]]).repeat(batch_size, 1, 1)
    target_mask = torch.ones_like(target_indices)
    target_indices[-1, 1] = torch.tensor([9, 0, 0])
    target_mask[-1, 1, 1:] = 0
    return dict(
        input_ids=input_ids,
        attention_mask=attention_mask,
        masked_input_ids=masked_input_ids,
        labels=labels,
        context_indices=context_indices,
        context_mask=context_mask,
        target_indices=target_indices,
        target_mask=target_mask,
    )


def write_csv(path, columns: dict[str, list]) -> str:
    """A CSV file of `columns` (name → values); returns its path."""
    import datasets

    datasets.Dataset.from_dict(columns).to_csv(str(path), index=False)
    return str(path)


def write_glue_folder(root, task: str, splits: dict[str, dict[str, list]], label) -> str:
    """Adds one task to a folder laid out like nyu-mll/glue (parquet files per split, README configs listing every
    task in the folder); `label` is the label column's `datasets` feature. Returns the folder."""
    import datasets

    (root / task).mkdir(parents=True)
    for split, columns in splits.items():
        texts = {name: datasets.Value("string") for name in columns if name != "label"}
        dataset = datasets.Dataset.from_dict(columns, features=datasets.Features(texts | {"label": label}))
        dataset.to_parquet(str(root / task / f"{split}-00000-of-00001.parquet"))
    configs = ""
    for task_dir in sorted(path for path in root.iterdir() if path.is_dir()):
        split_names = sorted(file.name.split("-")[0] for file in task_dir.glob("*.parquet"))
        files = "".join(f"  - split: {split}\n    path: {task_dir.name}/{split}-*\n" for split in split_names)
        configs += f"- config_name: {task_dir.name}\n  data_files:\n{files}"
    (root / "README.md").write_text(f"---\nconfigs:\n{configs}---\n")
    return str(root)


class StepRecorder(TrainerCallback):
    """The global step after each optimizer step a `train()` call takes: a resume that started again from step 0 would
    take every step, and train deterministically to the same weights."""

    def __init__(self):
        self.steps = []

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(state.global_step)


def locked(folder) -> bool:
    """Whether some other open of `folder` holds its lock (`prjepa.folder_lock`); POSIX only."""
    import fcntl

    probe = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(probe)
    return False
