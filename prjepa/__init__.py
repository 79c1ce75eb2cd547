"""PrJEPA: pretrain text encoders with JEPA latent prediction plus masked language modelling, and measure what that
does to their representations.

The model and its configuration are the top-level modules `modeling_prjepa` and `configuration_prjepa`, which
`save_pretrained` copies into every checkpoint; this package holds everything else (collator, trainer, probing,
geometry, the experiment) and re-exports the pretraining API. The re-exports load on first use, so that importing one
module of the package (a script's `--help`) does not load torch and the model.
"""

from .utils import lazy_exports

_import_structure = {
    "configuration_prjepa": ["PrJepaConfig"],
    "modeling_prjepa": [
        "PrJepaForMaskedLM",
        "PrJepaForPreTraining",
        "PrJepaForSequenceClassification",
        "PrJepaModel",
    ],
    ".collator": ["DataCollatorForPrJepa"],
    ".trainer": ["PrJepaTrainer"],
    ".training_args": ["PrJepaTrainingArguments"],
}
__getattr__ = lazy_exports(__name__, _import_structure)

__version__ = "0.1.0"

__all__ = sorted(name for names in _import_structure.values() for name in names)
