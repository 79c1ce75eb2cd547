"""A saved checkpoint loads through every Auto class with `trust_remote_code=True` in a fresh Python process that
cannot import this project, and gives bit-identical outputs; the loaded code honours `attn_implementation`; its
tokenizer loads without `trust_remote_code`."""

import os
import subprocess
import sys
import textwrap

import torch
from helpers import pretraining_batch, tiny_config
from safetensors.torch import load_file, save_file

from modeling_prjepa import PrJepaForMaskedLM, PrJepaForPreTraining, PrJepaForSequenceClassification, PrJepaModel

CHILD = textwrap.dedent(
    """
    import builtins, importlib.abc, os, sys

    def no_prompt(prompt=""):
        # A question nobody is there to answer would hang a user's script: it ends this process, past any except.
        sys.stderr.write(f"prompted: {prompt}")
        os._exit(3)

    builtins.input = no_prompt

    class RefuseProjectModules(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name in ("modeling_prjepa", "configuration_prjepa"):
                raise ImportError(f"{name} must come from the checkpoint, not from this project")

    sys.meta_path.insert(0, RefuseProjectModules())
    import torch
    from safetensors.torch import load_file, save_file
    import transformers

    pretraining_dir, classifier_dir, inputs_path, outputs_path = sys.argv[1:]
    batch = load_file(inputs_path)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    outputs = {}
    # Before any model: once the checkpoint's code has loaded, the prjepa type is registered and AutoTokenizer asks
    # nothing whatever the flag. The tokenizer is plain BERT; either explicit flag loads it without the custom-code
    # question, which only a left-out flag raises (README "Models"). False first, as True runs the config's code.
    for trust_remote_code in (False, True):
        tokenizer = transformers.AutoTokenizer.from_pretrained(pretraining_dir, trust_remote_code=trust_remote_code)
        assert type(tokenizer).__module__.startswith("transformers.models.bert"), type(tokenizer)
        outputs[f"tokenized_{trust_remote_code}"] = torch.tensor(tokenizer("the cat sat on the mat")["input_ids"])
    for name, auto_class, checkpoint in [
        ("pretraining", "AutoModelForPreTraining", pretraining_dir),
        ("encoder", "AutoModel", pretraining_dir),
        ("masked_lm", "AutoModelForMaskedLM", pretraining_dir),
        ("classifier", "AutoModelForSequenceClassification", classifier_dir),
    ]:
        model = getattr(transformers, auto_class).from_pretrained(checkpoint, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        with torch.no_grad():
            outputs[name] = model(**batch).loss if name == "pretraining" else model(ids, attention_mask=mask)[0]

    eager = transformers.AutoModel.from_pretrained(pretraining_dir, trust_remote_code=True, attn_implementation="eager")
    switched = transformers.AutoModel.from_pretrained(pretraining_dir, trust_remote_code=True)
    switched.set_attn_implementation("eager")
    assert eager.config._attn_implementation == switched.config._attn_implementation == "eager"
    with torch.no_grad():
        eager_out = eager.eval()(ids, attention_mask=mask, output_attentions=True)
        switched_attentions = switched.eval()(ids, attention_mask=mask, output_attentions=True).attentions
    assert all(torch.equal(a, b) for a, b in zip(eager_out.attentions, switched_attentions))
    outputs["eager_encoder"] = eager_out.last_hidden_state
    outputs["eager_attentions"] = torch.stack(eager_out.attentions)
    try:
        transformers.AutoModel.from_pretrained(
            pretraining_dir, trust_remote_code=True, attn_implementation="flash_attention_2"
        )
    except ValueError as error:
        assert "attn_implementation='sdpa'" in str(error), error
    else:
        raise AssertionError("attn_implementation='flash_attention_2' was accepted")
    save_file({name: value.contiguous() for name, value in outputs.items()}, outputs_path)
    """
)


def test_every_auto_class_loads_with_trust_remote_code_in_a_clean_process(tmp_path, tokenizer):
    torch.manual_seed(0)
    pretraining = PrJepaForPreTraining(tiny_config()).eval()
    pretraining.save_pretrained(tmp_path / "pretraining")
    tokenizer.save_pretrained(tmp_path / "pretraining")
    classifier = PrJepaForSequenceClassification(tiny_config(num_labels=3)).eval()
    classifier.save_pretrained(tmp_path / "classifier")
    masked_lm = PrJepaForMaskedLM.from_pretrained(tmp_path / "pretraining").eval()
    batch = pretraining_batch()
    save_file(batch, tmp_path / "inputs.safetensors")
    (tmp_path / "child.py").write_text(CHILD)
    (tmp_path / "elsewhere").mkdir()

    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1")
    paths = [tmp_path / name for name in ("pretraining", "classifier", "inputs.safetensors", "outputs.safetensors")]
    result = subprocess.run(
        [sys.executable, str(tmp_path / "child.py"), *map(str, paths)],
        cwd=tmp_path / "elsewhere",
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = load_file(paths[-1])

    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        assert torch.equal(outputs["pretraining"], pretraining(**batch).loss)
        assert torch.equal(outputs["encoder"], pretraining.prjepa(ids, mask).last_hidden_state)
        assert torch.equal(outputs["masked_lm"], masked_lm(ids, mask).logits)
        assert torch.equal(outputs["classifier"], classifier(ids, mask).logits)
        eager = PrJepaModel.from_pretrained(tmp_path / "pretraining", attn_implementation="eager").eval()
        eager_attentions = torch.stack(eager(ids, mask, output_attentions=True).attentions)
        assert torch.equal(outputs["eager_attentions"], eager_attentions)
    torch.testing.assert_close(outputs["eager_encoder"], outputs["encoder"], atol=1e-5, rtol=0)
    for trust_remote_code in (True, False):
        tokenized = outputs[f"tokenized_{trust_remote_code}"].tolist()
        assert tokenized == tokenizer("the cat sat on the mat")["input_ids"]
