"""Loading a frozen encoder to probe: a PrJEPA checkpoint (its online or EMA target encoder) or any transformers
encoder, checked to be a text encoder that fits its tokenizer, with fingerprints of the weights and the tokenizer that
key the feature cache (with one of the code that runs the weights)."""

import functools
import hashlib
import inspect
import json
from typing import TYPE_CHECKING, NamedTuple

import torch
import transformers
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerBase

from configuration_prjepa import ENCODERS, PrJepaConfig

from ..utils import check_tokenizer_folder, check_tokenizer_has_vocabulary, first_names, tokenizer_fingerprint

# The models (transformers' modeling takes over a second to import) load inside `load_encoder`: the commands' `--help`
# reads ONLINE_ENCODER from here and needs none of them.
if TYPE_CHECKING:
    from transformers import PreTrainedModel

# The inputs a BERT tokenizer gives its model.
BERT_MODEL_INPUTS = ("input_ids", "token_type_ids", "attention_mask")
# A PrJEPA pretraining checkpoint's two encoders (`PrJepaModel.from_pretrained(encoder=...)`); any other model has the
# online one only.
ONLINE_ENCODER = ENCODERS[0]
# How a model without a usable tokenizer is probed.
TOKENIZER_FIX = "Pass the model's tokenizer with --tokenizer_name: a folder a tokenizer was saved to, or a Hub id."


class LoadedEncoder(NamedTuple):
    """A frozen encoder in eval mode on its device, its tokenizer, and fingerprints of both (what computes its
    features: `weights_fingerprint`, `encoding_fingerprint`), taken once at loading. `hidden_layer` is the hidden
    state its features are read from: `None` for the model's output (`last_hidden_state`), `k` for `hidden_states[k]`
    (0: the embeddings; `k`: the output of layer `k`; the top entry is, for PrJEPA as for most transformers models,
    `last_hidden_state`)."""

    model: "PreTrainedModel"
    tokenizer: PreTrainedTokenizerBase
    fingerprint: str
    tokenizer_fingerprint: str
    hidden_layer: int | None = None


def encoding_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """sha256 of what of `tokenizer` decides an encoder's inputs: its serialisation (`tokenizer_fingerprint`), the
    ends it truncates and pads at, and which of its outputs reach the model (without token_type_ids a BERT reads a
    pair's second text as segment 0). Where these are BERT's, it is `tokenizer_fingerprint`, so that feature caches
    and results recorded before they were fingerprinted keep matching."""
    fingerprint = tokenizer_fingerprint(tokenizer)
    sides = [tokenizer.truncation_side, tokenizer.padding_side]
    inputs = list(tokenizer.model_input_names)
    if sides == ["right", "right"] and inputs == list(BERT_MODEL_INPUTS):
        return fingerprint
    return hashlib.sha256(json.dumps([fingerprint, sides, inputs]).encode()).hexdigest()


def weights_fingerprint(model: nn.Module) -> str:
    """sha256 of the model's class, config and every tensor of its state dict (names, dtypes, shapes, bytes): equal
    fingerprints mean equal features, whatever file, Hub commit or encoder (online/target) the weights came from."""
    digest = hashlib.sha256(type(model).__name__.encode())
    config = getattr(model, "config", None)
    if config is not None:
        settings = config.to_dict()
        for volatile in ("_name_or_path", "transformers_version"):
            settings.pop(volatile, None)
        digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def code_fingerprint(model: nn.Module) -> str:
    """sha256 of what computes `model`'s forward pass besides its weights: the source file of its class (this project's
    modeling_prjepa.py, a checkpoint's own copy loaded with trust_remote_code, transformers' modeling_bert.py, …) and
    the transformers and torch versions, whose layers and kernels that code calls."""
    digest = hashlib.sha256(_class_source_digest(type(model)).encode())
    digest.update(json.dumps([transformers.__version__, torch.__version__]).encode())
    return digest.hexdigest()


@functools.cache
def _class_source_digest(model_class: type) -> str:
    # Read once per class: the file as the class was imported, not as edited while features are computed with it.
    try:
        source = inspect.getsourcefile(model_class)
    except (TypeError, OSError):  # a class of no module file (defined in a notebook or an interactive session)
        source = None
    if source is None:
        raise ValueError(
            f"{model_class.__qualname__} has no source file to fingerprint, so its features cannot be cached apart "
            "from those of other code: define the model class in a module file, or extract features without a cache "
            "(cache_dir=None)."
        )
    with open(source, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


def check_text_encoder(model: "PreTrainedModel", tokenizer: PreTrainedTokenizerBase, name: str) -> None:
    """Raises `ValueError` unless `model` maps the tokenizer's `input_ids` to `last_hidden_state` `(batch, seq, dim)`
    and the tokenizer's ids fit its embedding table."""
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if isinstance(embeddings, nn.Embedding) and len(tokenizer) > embeddings.num_embeddings:
        raise ValueError(
            f"The tokenizer has {len(tokenizer)} tokens but {name!r} embeds only {embeddings.num_embeddings}: it is "
            "not this model's tokenizer. Pass the right one with --tokenizer_name."
        )
    if "input_ids" not in inspect.signature(model.forward).parameters:
        raise ValueError(f"{name!r} ({type(model).__name__}) takes no input_ids: it is not a text encoder.")
    with torch.inference_mode():
        inputs = tokenizer(["a probe"], return_tensors="pt").to(model.device)
        hidden = getattr(model(**inputs, return_dict=True), "last_hidden_state", None)
    if not isinstance(hidden, torch.Tensor) or hidden.dim() != 3:
        raise ValueError(
            f"{name!r} ({type(model).__name__}) returns no last_hidden_state of shape (batch, seq, dim): it is not an "
            "encoder whose hidden states can be probed."
        )


def check_hidden_layer(model: "PreTrainedModel", tokenizer: PreTrainedTokenizerBase, layer: int, name: str) -> None:
    """Raises `ValueError` unless `model` returns `hidden_states` with an entry `layer` (0: the embeddings)."""
    with torch.inference_mode():
        inputs = tokenizer(["a probe"], return_tensors="pt").to(model.device)
        try:
            states = getattr(model(**inputs, output_hidden_states=True, return_dict=True), "hidden_states", None)
        except TypeError:  # a custom forward without the argument
            states = None
    if not states:
        raise ValueError(
            f"{name!r} ({type(model).__name__}) returns no hidden_states, so there is no layer {layer} to read; drop "
            "--hidden_layer to read its last_hidden_state."
        )
    if not 0 <= layer < len(states):
        raise ValueError(
            f"--hidden_layer {layer} is not a layer of {name!r}: it has {len(states) - 1} layers, so give 0 (the "
            f"embeddings) to {len(states) - 1}, or drop --hidden_layer to read its last_hidden_state."
        )


def check_max_seq_length(
    model: "PreTrainedModel", tokenizer: PreTrainedTokenizerBase, max_seq_length: int, name: str
) -> None:
    """Raises `ValueError` when inputs of `max_seq_length` tokens would reach past the model's position table or the
    tokenizer's stated maximum, which fails only once a text that long comes, after other work."""
    limits = {
        "positions": getattr(model.config, "max_position_embeddings", None),
        "tokenizer maximum": tokenizer.model_max_length if tokenizer.model_max_length < 1_000_000 else None,
    }
    found = {what: limit for what, limit in limits.items() if limit is not None and max_seq_length > limit}
    if found:
        limit = min(found.values())
        reasons = ", ".join(f"{what} {value}" for what, value in found.items())
        raise ValueError(
            f"--max_seq_length {max_seq_length} is longer than {name!r} reads ({reasons}): pass --max_seq_length "
            f"{limit} or less."
        )


def load_encoder(
    model_name_or_path: str,
    encoder: str = ONLINE_ENCODER,
    tokenizer_name: str | None = None,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
    hidden_layer: int | None = None,
    max_seq_length: int | None = None,
) -> LoadedEncoder:
    """A frozen encoder (eval mode, no gradients) and its tokenizer, from a Hub id or a folder.

    PrJEPA checkpoints load with this project's classes (`encoder="target"` takes a pretraining checkpoint's EMA
    target encoder); anything else through `AutoModel` (the encoder half of an encoder-decoder), at `revision` of its
    repo. The tokenizer comes from `tokenizer_name` as it is, else from the model's own files at that revision.
    `hidden_layer` chooses the hidden state features are read from (`LoadedEncoder`), checked to exist;
    `max_seq_length`, the longest input it will be given, is checked to fit the model's positions.
    """
    from modeling_prjepa import PrJepaModel

    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}.")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    options = dict(revision=revision, trust_remote_code=trust_remote_code)
    config = AutoConfig.from_pretrained(model_name_or_path, **options)
    if config.model_type == PrJepaConfig.model_type and encoder != ONLINE_ENCODER and config.objective == "mlm":
        # Refused before the weights load: transformers would first print a table of every weight it misses.
        raise ValueError(
            f"--encoder {encoder} reads a hybrid pretraining checkpoint's EMA target encoder, but {model_name_or_path!r} "
            f"was pretrained MLM-only (objective 'mlm') and holds none. Use --encoder {ONLINE_ENCODER}."
        )
    if config.model_type == PrJepaConfig.model_type:
        model = PrJepaModel.from_pretrained(model_name_or_path, encoder=encoder, revision=revision, dtype=dtype)
    elif encoder != ONLINE_ENCODER:
        raise ValueError(
            f"--encoder {encoder} needs a PrJEPA pretraining checkpoint; {model_name_or_path!r} is a "
            f"{config.model_type!r} model with a single encoder. Use --encoder {ONLINE_ENCODER}."
        )
    else:
        try:
            model, loading = AutoModel.from_pretrained(
                model_name_or_path, dtype=dtype, output_loading_info=True, **options
            )
        except ValueError as error:
            raise ValueError(
                f"{model_name_or_path!r} ({config.model_type}) has no AutoModel class: it is not an encoder this probe "
                f"can read ({error})."
            ) from error
        # A pooler head is not part of the hidden states the probe reads; any other missing weight would be random.
        missing = [name for name in loading["missing_keys"] if not name.startswith("pooler.")]
        if missing:
            raise ValueError(
                f"{model_name_or_path!r} leaves {len(missing)} encoder weights missing "
                f"({first_names(sorted(missing))}): they would be randomly "
                "initialised, and the scores would not be the checkpoint's. Point at a complete checkpoint."
            )
        if config.is_encoder_decoder:
            model = model.get_encoder()
    # The revision names a commit of the model's repo, not of another repo its tokenizer comes from.
    tokenizer_options = dict(trust_remote_code=trust_remote_code) if tokenizer_name else options
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_name or model_name_or_path, **tokenizer_options)
    except (OSError, ValueError, TypeError) as error:
        source = tokenizer_name or model_name_or_path
        check_tokenizer_folder(source, repr(source), TOKENIZER_FIX)
        raise ValueError(f"Could not load a tokenizer from {source!r} ({error}). {TOKENIZER_FIX}") from error
    check_tokenizer_has_vocabulary(tokenizer, repr(tokenizer_name or model_name_or_path), TOKENIZER_FIX)
    if isinstance(model.config, PrJepaConfig):
        model.config.check_tokenizer(tokenizer)
    model = model.to(device).eval().requires_grad_(False)
    check_text_encoder(model, tokenizer, model_name_or_path)
    if hidden_layer is not None:
        check_hidden_layer(model, tokenizer, hidden_layer, model_name_or_path)
    if max_seq_length is not None:
        check_max_seq_length(model, tokenizer, max_seq_length, model_name_or_path)
    return LoadedEncoder(model, tokenizer, weights_fingerprint(model), encoding_fingerprint(tokenizer), hidden_layer)
