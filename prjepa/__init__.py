"""PrJEPA: pretrain text encoders with JEPA latent prediction plus masked language modelling, and measure what that
does to their representations.

The model and its configuration are the top-level modules `modeling_prjepa` and `configuration_prjepa`, which
`save_pretrained` copies into every checkpoint; this package holds everything else (collator, trainer, probing,
geometry, the experiment) and re-exports the pretraining API.
"""

from configuration_prjepa import PrJepaConfig
from modeling_prjepa import (
    PrJepaForMaskedLM,
    PrJepaForPreTraining,
    PrJepaForSequenceClassification,
    PrJepaModel,
)

from .collator import DataCollatorForPrJepa
from .trainer import PrJepaTrainer
from .training_args import PrJepaTrainingArguments

__version__ = "0.1.0"

__all__ = [
    "DataCollatorForPrJepa",
    "PrJepaConfig",
    "PrJepaForMaskedLM",
    "PrJepaForPreTraining",
    "PrJepaForSequenceClassification",
    "PrJepaModel",
    "PrJepaTrainer",
    "PrJepaTrainingArguments",
]
