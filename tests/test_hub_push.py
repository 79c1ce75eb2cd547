"""Pushing a checkpoint with its model card through the real `huggingface_hub` client (to the in-process fake Hub),
then loading it back by repo id in a fresh Python process that cannot import this project."""

import hashlib
import json
import subprocess
import sys
import textwrap

import torch
from fake_hub import fake_hub_fixture  # noqa: F401
from helpers import tiny_config
from safetensors.torch import load_file

from modeling_prjepa import PrJepaForPreTraining
from prjepa.model_card import pretraining_model_card

TEXTS = ["the cat sat on the mat", "paris is the capital of france and she ran in the park"]

CHILD = textwrap.dedent(
    """
    import importlib.abc, json, re, sys

    # The project may be pip-installed (as in CI): the code must still come from the pushed repo.
    class RefuseProjectModules(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name in ("configuration_prjepa", "modeling_prjepa", "model_card_prjepa"):
                raise ImportError(f"{name} must come from the pushed repo, not from this project")

    sys.meta_path.insert(0, RefuseProjectModules())

    import torch
    from huggingface_hub import ModelCard
    from safetensors.torch import save_file
    from transformers import AutoModel, AutoTokenizer

    repo_id, texts, outputs_path = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    tokenizer = AutoTokenizer.from_pretrained(repo_id, trust_remote_code=True)
    online = AutoModel.from_pretrained(repo_id, trust_remote_code=True).eval()
    target = AutoModel.from_pretrained(repo_id, trust_remote_code=True, encoder="target").eval()
    assert type(online).__module__.startswith("transformers_modules"), type(online).__module__
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        tensors = {"input_ids": batch.input_ids, "online": online(**batch).last_hidden_state,
                   "target": target(**batch).last_hidden_state}
    save_file(tensors, outputs_path)

    card = ModelCard.load(repo_id)
    snippet = re.search(r"```python\\n(.*?)```", card.text, re.DOTALL).group(1)
    exec(snippet, {})  # the card's loading snippet runs as written
    print(json.dumps(card.data.to_dict()))
    """
)


def pushed_checkpoint(repo_id: str, tokenizer) -> PrJepaForPreTraining:
    """A tiny hybrid model whose online and target encoders differ, pushed with its tokenizer and model card."""
    torch.manual_seed(0)
    model = PrJepaForPreTraining(tiny_config()).eval()
    with torch.no_grad():
        for parameter in model.prjepa.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    log_history = [
        {"step": 1, "loss": 3.5, "jepa_loss": 1.0, "mlm_loss": 6.0, "jepa_weight": 0.5, "ema_momentum": 0.996},
        {"step": 2, "loss": 3.2, "jepa_loss": 0.9, "mlm_loss": 5.5, "jepa_weight": 0.49, "ema_momentum": 0.998},
    ]
    card = pretraining_model_card(
        model.config, log_history, {"learning_rate": 5e-4}, ["nyu-mll/glue"], 4096, "tiny-wordpiece", repo_id, "mit"
    )
    model.push_to_hub(repo_id)
    tokenizer.push_to_hub(repo_id)
    card.push_to_hub(repo_id)
    return model


def test_pushed_checkpoint_loads_by_repo_id_in_a_clean_process(fake_hub, tokenizer, tmp_path):
    repo_id = "prjepa-tests/tiny-hybrid"
    model = pushed_checkpoint(repo_id, tokenizer)
    files = fake_hub.files(repo_id)
    expected = {
        "config.json",
        "model.safetensors",
        "configuration_prjepa.py",
        "modeling_prjepa.py",
        "README.md",
        "tokenizer_config.json",
    }
    assert expected <= set(files)
    # The weights went through LFS: uploaded to the storage URL the batch API handed out, not inline in the commit.
    assert fake_hub.lfs_files(repo_id) == {"model.safetensors"}
    assert ("PUT", f"/fake-lfs-storage/{hashlib.sha256(files['model.safetensors']).hexdigest()}") in fake_hub.requests

    (tmp_path / "elsewhere").mkdir()
    environ = {key: value for key, value in fake_hub.environ(tmp_path / "hf_home").items() if key != "PYTHONPATH"}
    outputs_path = tmp_path / "outputs.safetensors"
    result = subprocess.run(
        [sys.executable, "-c", CHILD, repo_id, json.dumps(TEXTS), str(outputs_path)],
        cwd=tmp_path / "elsewhere",
        env=environ,
        stdin=subprocess.DEVNULL,  # never wait at transformers' interactive trust_remote_code prompt
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Do you wish to run the custom code?" not in result.stdout

    outputs = load_file(outputs_path)
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    assert torch.equal(outputs["input_ids"], batch.input_ids)
    with torch.no_grad():
        assert torch.equal(outputs["online"], model.prjepa(batch.input_ids, batch.attention_mask).last_hidden_state)
        target = model.target_encoder(batch.input_ids, batch.attention_mask).last_hidden_state
        assert torch.equal(outputs["target"], target)
    assert not torch.equal(outputs["online"], outputs["target"])
    metadata = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"prjepa", "jepa", "hybrid"} <= set(metadata["tags"])
    assert metadata["datasets"] == ["nyu-mll/glue"] and metadata["license"] == "mit"
