"""Convert a checkpoint of the original PrJEPA research code into a `PrJepaForPreTraining` checkpoint.

The original file is a `torch.save` dict with the state dicts `encoder`, `predictor`, `target_encoder` and
`token_regressor`, the raw loss-weight logit `loss_weight` (λ = sigmoid(w)), the training `config` and the `epoch`.
Sizes are read off the tensor shapes and every tensor is checked; only the head counts cannot be inferred, so they
come from --num_attention_heads, else from the checkpoint's config, else hidden_size // 64 (every original preset).

    python convert_original_checkpoint.py --checkpoint_path text_jepa-final.pth.tar --output_dir prjepa-original \\
        --tokenizer_name bert-base-uncased
"""

import argparse
import pickle
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from configuration_prjepa import SINUSOIDAL_LAYOUTS, PrJepaConfig

from .utils import SPECIAL_TOKEN_FIELDS, check_folders

# The model (transformers' modeling takes over a second to import) loads where it is built, not with `--help`.
if TYPE_CHECKING:
    from modeling_prjepa import PrJepaForPreTraining

# Original state dict → the prefix of its module in PrJepaForPreTraining.
STATE_DICTS = {
    "encoder": "prjepa.",
    "target_encoder": "target_encoder.",
    "predictor": "predictor.",
    "token_regressor": "mlm_head.",
}
BLOCK_PARTS = {
    "norm1": "norm1",
    "attn.qkv": "attention.qkv",
    "attn.proj": "attention.proj",
    "norm2": "norm2",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}
# The original stores position tables with a leading batch dimension, (1, positions, width); ours are 2-D.
POSITION_KEYS = ("pos_embed", "pred_pos_embed")
# The original's MLM head ("token regressor") has PyTorch's default LayerNorm eps, its blocks 1e-6.
ORIGINAL_MLM_HEAD_EPS = 1e-5
# Names a YAML config might give the head counts; the original's config usually has none.
HEAD_NAMES = ("num_attention_heads", "num_heads", "n_heads")
PREDICTOR_HEAD_NAMES = ("predictor_num_attention_heads", "predictor_num_heads", "pred_num_heads", "pred_heads")
# Read off the tensors: overriding them could only build a model the weights do not fit.
INFERRED_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "intermediate_size",
    "max_position_embeddings",
    "predictor_hidden_size",
    "predictor_num_hidden_layers",
    "qkv_bias",
    "position_embedding_type",
    "position_embedding_scale",  # the original's table is checked at scale 1, then rebuilt from the config
    "sinusoidal_layout",
    "objective",
    "loss_weighting",
)


class CheckpointConversionError(ValueError):
    """The file is not an original PrJEPA checkpoint of the expected layout."""


def is_mlm_only(checkpoint: dict[str, Any]) -> bool:
    """Whether the original trained this checkpoint MLM-only (its `training_mode="mlm"`): it then saved no target
    encoder, `loss_weight` None and an untrained predictor."""
    if "training_mode" in checkpoint:
        return checkpoint["training_mode"] == "mlm"
    return "target_encoder" not in checkpoint and checkpoint.get("loss_weight", 0) is None


def load_original_checkpoint(path: str | Path) -> dict[str, Any]:
    """Loads and sanity-checks the original checkpoint, hybrid or MLM-only (`is_mlm_only`); DDP `module.` prefixes
    are stripped from the state dicts."""

    def not_a_checkpoint(reason: str) -> CheckpointConversionError:
        return CheckpointConversionError(
            f"{path} is not a PyTorch checkpoint (a file written by torch.save), or it is damaged ({reason}). Check "
            "--checkpoint_path: it names the original code's torch.save file (e.g. text_jepa-final.pth.tar)."
        )

    try:
        # weights_only: a checkpoint from elsewhere must not be able to run code while it is read.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as error:  # no such file, a folder, no permission
        raise CheckpointConversionError(f"{path} cannot be read: {error}. Check --checkpoint_path.") from error
    except pickle.UnpicklingError as error:
        # torch's message advises loading with weights_only=False, which would let the file run any code: neither it
        # nor the error it is chained to is passed on.
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if unsafe is None:
            raise not_a_checkpoint("not what torch.save writes") from None
        raise CheckpointConversionError(
            f"{path} holds objects of type {unsafe.group(1)}, which this converter does not create: reading only "
            "tensors and plain Python values keeps a file from elsewhere from running code as it loads. Save the "
            "checkpoint again from the original code with plain values in their place (the config as a dict, say)."
        ) from None
    except Exception as error:  # torch's readers raise RuntimeError, EOFError, … for files they cannot parse
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise not_a_checkpoint(reason) from error
    if not isinstance(checkpoint, dict):
        raise CheckpointConversionError(f"{path} holds a {type(checkpoint).__name__}, not a checkpoint dict.")
    required = ("encoder", "token_regressor") if is_mlm_only(checkpoint) else (*STATE_DICTS, "loss_weight")
    missing = [key for key in required if key not in checkpoint]
    if missing:
        raise CheckpointConversionError(
            f"{path} is not an original PrJEPA checkpoint: it lacks {missing} (it has {sorted(map(str, checkpoint))})."
        )
    for name in (name for name in STATE_DICTS if name in checkpoint):
        state_dict = checkpoint[name]
        if not isinstance(state_dict, dict) or not all(
            isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state_dict.items()
        ):
            raise CheckpointConversionError(f"{path}: '{name}' is not a state dict of named tensors.")
        if state_dict and all(key.startswith("module.") for key in state_dict):
            checkpoint[name] = {key.removeprefix("module."): value for key, value in state_dict.items()}
    return checkpoint


def _shape(checkpoint: dict[str, Any], name: str, key: str, ndim: int, path: str | Path) -> tuple[int, ...]:
    tensor = checkpoint[name].get(key)
    if tensor is None or tensor.ndim != ndim:
        found = "is missing" if tensor is None else f"has shape {tuple(tensor.shape)}"
        raise CheckpointConversionError(f"{path}: {name}.{key} {found}; expected a {ndim}-D tensor.")
    return tuple(tensor.shape)


def _count_blocks(state_dict: dict[str, torch.Tensor], prefix: str) -> int:
    # Gaps in the numbering come out later as missing keys.
    indices = [int(match[1]) for key in state_dict if (match := re.match(rf"{prefix}\.(\d+)\.", key))]
    return max(indices, default=-1) + 1


def _sinusoidal_layout(table: torch.Tensor | None) -> str | None:
    """The layout (`SINUSOIDAL_LAYOUTS`) of a fixed sin/cos table `(1, positions, dim)`, or None for another table."""
    from modeling_prjepa import sinusoidal_position_table

    if table is None or table.ndim != 3 or table.shape[0] != 1 or table.shape[2] % 2:
        return None
    for layout in SINUSOIDAL_LAYOUTS:
        reference = sinusoidal_position_table(*table.shape[1:], layout)
        # 1e-4: a table computed in float32 rather than float64 is off by up to ~3e-5 at 512 positions; a learned
        # table is off by far more.
        if torch.allclose(table[0].float(), reference, rtol=0, atol=1e-4):
            return layout
    return None


def _find_int(tree: Any, names: tuple[str, ...], option: str) -> int | None:
    """The integer stored under one of `names` anywhere in a nested dict/list (the YAML layout is not fixed); an error
    naming `option` when the config holds several different ones (e.g. one per preset), since any pick could be
    wrong."""
    found = sorted(set(_ints_under(tree, names)))
    if len(found) > 1:
        raise CheckpointConversionError(
            f"The checkpoint's config gives several values under {'/'.join(names)}: {found}. Pass {option} to say "
            "which the model was trained with."
        )
    return found[0] if found else None


def _ints_under(tree: Any, names: tuple[str, ...]) -> Iterator[int]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key in names and isinstance(value, int) and not isinstance(value, bool):
                yield value
            else:
                yield from _ints_under(value, names)
    elif isinstance(tree, (list, tuple)):
        for child in tree:
            yield from _ints_under(child, names)


def _jepa_logit(value: Any, path: str | Path) -> torch.Tensor:
    """The raw scalar w from `loss_weight`: a number, a one-element tensor, or a (state) dict holding one."""
    if isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = torch.tensor(float(value))
    if not isinstance(value, torch.Tensor) or value.numel() != 1 or not value.is_floating_point():
        raise CheckpointConversionError(
            f"{path}: loss_weight must be the scalar logit w (a number, a one-element float tensor or a dict holding "
            f"one), got {value!r}."
        )
    return value.detach().reshape(()).float()


def infer_config(
    checkpoint: dict[str, Any],
    path: str | Path,
    num_attention_heads: int | None = None,
    predictor_num_attention_heads: int | None = None,
    **overrides: Any,
) -> PrJepaConfig:
    """The `PrJepaConfig` whose model the checkpoint's tensors fit; `overrides` set fields the shapes do not fix."""
    if fixed := sorted(set(overrides) & set(INFERRED_FIELDS)):
        raise ValueError(f"{fixed} are read from the checkpoint's tensors and cannot be overridden.")
    vocab_size, hidden_size = _shape(checkpoint, "encoder", "token_embed.token_embed.weight", 2, path)
    max_positions = _shape(checkpoint, "encoder", "pos_embed", 3, path)[1]
    intermediate_size = _shape(checkpoint, "encoder", "blocks.0.mlp.fc1.weight", 2, path)[0]
    num_layers = _count_blocks(checkpoint["encoder"], "blocks")
    mlm_only = is_mlm_only(checkpoint)
    if mlm_only and predictor_num_attention_heads is not None:
        raise ValueError(
            f"{path} is an MLM-only checkpoint (training_mode 'mlm'), whose predictor is not converted: drop "
            "--predictor_num_attention_heads."
        )
    if mlm_only:  # its predictor, if saved, never trained: not converted (and not built: any width heads divide)
        predictor = dict(predictor_hidden_size=hidden_size)
        print("MLM-only checkpoint (training_mode 'mlm'): the encoder and MLM head are converted, not the predictor.")
    else:
        predictor = dict(
            predictor_hidden_size=_shape(checkpoint, "predictor", "predictor_embed.weight", 2, path)[0],
            predictor_num_hidden_layers=_count_blocks(checkpoint["predictor"], "predictor_blocks"),
        )
        if predictor["predictor_num_hidden_layers"] == 0:
            raise CheckpointConversionError(f"{path}: predictor has no predictor_blocks.{{i}}.* keys.")

    original_config = checkpoint.get("config")
    if num_attention_heads is None:
        configured = _find_int(original_config, HEAD_NAMES, "--num_attention_heads")
        num_attention_heads = configured if configured is not None else max(1, hidden_size // 64)
        source = "the checkpoint's config" if configured is not None else "hidden_size // 64"
        print(f"num_attention_heads={num_attention_heads} (from {source}; shapes do not determine it)")
    elif others := sorted(set(_ints_under(original_config, HEAD_NAMES)) - {num_attention_heads}):
        # The original training script ignored its preset, so its config can be wrong: the caller's value wins.
        print(f"Note: using num_attention_heads={num_attention_heads}; the checkpoint's config says {others}.")
    if not mlm_only:
        if predictor_num_attention_heads is None:
            predictor_num_attention_heads = _find_int(
                original_config, PREDICTOR_HEAD_NAMES, "--predictor_num_attention_heads"
            )
        if predictor_num_attention_heads is None:
            predictor_num_attention_heads = num_attention_heads
        predictor["predictor_num_attention_heads"] = predictor_num_attention_heads

    tables = [checkpoint["encoder"]["pos_embed"]]
    if not mlm_only:
        tables += [checkpoint["target_encoder"].get("pos_embed"), checkpoint["predictor"].get("pred_pos_embed")]
    layouts = {_sinusoidal_layout(table) for table in tables}
    position_embedding_type = "sinusoidal" if len(layouts) == 1 and None not in layouts else "learned"
    if position_embedding_type == "learned":
        print("Note: the position tables are not fixed sin/cos tables; they are copied as learned embeddings.")

    try:
        return PrJepaConfig(
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            num_hidden_layers=num_layers,
            num_attention_heads=num_attention_heads,
            intermediate_size=intermediate_size,
            max_position_embeddings=max_positions,
            position_embedding_type=position_embedding_type,
            **({"sinusoidal_layout": layouts.pop()} if position_embedding_type == "sinusoidal" else {}),
            qkv_bias="blocks.0.attn.qkv.bias" in checkpoint["encoder"],
            **predictor,
            objective="mlm" if mlm_only else "hybrid",
            loss_weighting="learned",
            **{"mlm_head_layer_norm_eps": ORIGINAL_MLM_HEAD_EPS, **overrides},
        )
    except ValueError as error:
        raise CheckpointConversionError(f"{path}: the inferred model is impossible: {error}") from error


def _linear(original: str, ours: str) -> dict[str, str]:
    return {f"{original}.weight": f"{ours}.weight", f"{original}.bias": f"{ours}.bias"}


def _blocks(original: str, ours: str, num_layers: int, qkv_bias: bool) -> dict[str, str]:
    names = {}
    for index in range(num_layers):
        for part, our_part in BLOCK_PARTS.items():
            names.update(_linear(f"{original}.{index}.{part}", f"{ours}.{index}.{our_part}"))
        if not qkv_bias:
            del names[f"{original}.{index}.attn.qkv.bias"]
    return names


def key_map(config: PrJepaConfig) -> dict[str, dict[str, str]]:
    """For each original state dict: original parameter name → our parameter name (without the model prefix)."""
    encoder = {
        "token_embed.token_embed.weight": "embeddings.word_embeddings.weight",
        "pos_embed": "embeddings.position_embeddings.weight",
        **_blocks("blocks", "encoder.layer", config.num_hidden_layers, config.qkv_bias),
        **_linear("norm", "encoder.norm"),
    }
    predictor = {
        **_linear("predictor_embed", "embed"),
        "mask_token": "mask_token",
        "pred_pos_embed": "position_embeddings.weight",
        **_blocks("predictor_blocks", "encoder.layer", config.predictor_num_hidden_layers, config.qkv_bias),
        **_linear("predictor_norm", "encoder.norm"),
        **_linear("predictor_proj", "proj"),
    }
    regressor = {**_linear("proj", "dense"), **_linear("norm", "layer_norm"), **_linear("regress", "decoder")}
    if config.objective == "mlm":
        return {"encoder": encoder, "token_regressor": regressor}
    return {"encoder": encoder, "target_encoder": encoder, "predictor": predictor, "token_regressor": regressor}


def convert_state_dict(
    checkpoint: dict[str, Any], model: "PrJepaForPreTraining", path: str | Path
) -> dict[str, torch.Tensor]:
    """Renames and reshapes every original tensor into `model`'s state dict, after checking names and shapes."""
    # Buffers too: a fixed sinusoidal table is a buffer, and the checkpoint's copy must still have its shape.
    expected = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    learned_positions = model.config.position_embedding_type == "learned"
    state_dict, problems = {}, []
    for name, names in key_map(model.config).items():
        original = checkpoint[name]
        problems += [f"missing {name}.{key}" for key in names if key not in original]
        problems += [f"unexpected {name}.{key}" for key in original if key not in names]
        for key, ours in names.items():
            if key not in original:
                continue
            target_shape = expected[STATE_DICTS[name] + ours].shape
            shape = (1, *target_shape) if key in POSITION_KEYS else tuple(target_shape)
            tensor = original[key]
            if key == "pred_pos_embed" and tensor.ndim == 3 and tensor.shape[1] > shape[1]:
                # The original builds its predictor's table for 512 positions whatever the sequence length; the
                # positions past the encoder's are never read.
                tensor = tensor[:, : shape[1]]
            if tuple(tensor.shape) != shape:
                problems.append(f"{name}.{key} has shape {tuple(original[key].shape)}, expected {shape}")
            elif learned_positions or key not in POSITION_KEYS:
                state_dict[STATE_DICTS[name] + ours] = tensor.reshape(target_shape)
    if problems:
        raise CheckpointConversionError(f"{path} does not fit the model its shapes imply:\n  " + "\n  ".join(problems))
    if model.config.objective == "hybrid":
        state_dict["loss_weighting.jepa_logit"] = _jepa_logit(checkpoint["loss_weight"], path)
    return state_dict


def convert_original_checkpoint(
    checkpoint_path: str | Path,
    output_dir: str | Path,
    num_attention_heads: int | None = None,
    predictor_num_attention_heads: int | None = None,
    tokenizer_name: str | None = None,
    overwrite_output_dir: bool = False,
    config_overrides: dict[str, Any] | None = None,
) -> "PrJepaForPreTraining":
    """Converts the original checkpoint at `checkpoint_path`, saves it to `output_dir` and returns the model.

    num_attention_heads: encoder heads (default: the checkpoint's config, else hidden_size // 64).
    predictor_num_attention_heads: predictor heads (default: the checkpoint's config, else the encoder's).
    tokenizer_name: a tokenizer to save beside the model; the config takes its special-token ids.
    overwrite_output_dir: allow writing into a non-empty `output_dir`.
    config_overrides: other `PrJepaConfig` fields (e.g. special-token ids); the sizes always come from the tensors.
    """
    from modeling_prjepa import PrJepaForPreTraining

    check_folders(output_dir=str(output_dir))
    output_dir = Path(output_dir)
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite_output_dir:
        raise FileExistsError(f"{output_dir} exists and is not an empty directory; pass --overwrite_output_dir.")
    checkpoint = load_original_checkpoint(checkpoint_path)
    overrides = dict(config_overrides or {})
    tokenizer = None
    if tokenizer_name is not None:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tokenizer_name)
        for name in SPECIAL_TOKEN_FIELDS:
            overrides.setdefault(name, getattr(tokenizer, name))
    config = infer_config(checkpoint, checkpoint_path, num_attention_heads, predictor_num_attention_heads, **overrides)
    if tokenizer is not None:
        config.check_tokenizer(tokenizer)

    model = PrJepaForPreTraining(config)
    model.load_state_dict(convert_state_dict(checkpoint, model, checkpoint_path))
    model.eval()
    model.save_pretrained(output_dir)
    if tokenizer is not None:
        tokenizer.save_pretrained(output_dir)
    jepa = (
        f"predictor {config.predictor_hidden_size}x{config.predictor_num_hidden_layers}, λ = "
        f"{torch.sigmoid(model.loss_weighting.jepa_logit).item():.4f}"
        if config.objective == "hybrid"
        else "MLM-only"
    )
    print(
        f"Converted {checkpoint_path} (epoch {checkpoint.get('epoch', '?')}): hidden {config.hidden_size}, "
        f"{config.num_hidden_layers} layers, {config.num_attention_heads} heads, {jepa} → {output_dir}"
    )
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint_path", required=True, help="the original torch.save checkpoint (.pth.tar)")
    parser.add_argument("--output_dir", required=True, help="where save_pretrained writes the converted model")
    parser.add_argument("--num_attention_heads", type=int, help="encoder heads (default: config, else hidden // 64)")
    parser.add_argument("--predictor_num_attention_heads", type=int, help="predictor heads (default: the encoder's)")
    parser.add_argument("--tokenizer_name", help="tokenizer to save beside the model, e.g. bert-base-uncased")
    parser.add_argument("--overwrite_output_dir", action="store_true", help="write into a non-empty output_dir")
    args = parser.parse_args(argv)
    try:
        convert_original_checkpoint(**vars(args))
    except (ValueError, FileExistsError) as error:
        raise SystemExit(f"error: {error}") from None
