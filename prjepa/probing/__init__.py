"""Frozen-encoder probing (docs/method.md §4.1): features extracted once and cached on disk, pooled, and scored by a
linear model whose regularisation is chosen by cross-validation on the training split only.

The pieces are public so that other evaluations reuse them rather than copy them:

    encoder = load_encoder("path/to/checkpoint", encoder="target")
    task = load_task_data("sst2", glue_path="../shared/data/glue", max_train_samples=20_000)
    train = extract_features(encoder, task.texts("train")["sentence"], ["mean", TOKENS], cache_dir="cache")
    probe = fit_linear_probe(train["mean"], task.labels("train"), is_regression=False, grid=[0.01, 0.1, 1.0])
    pooler = train_pooler("attention", train[TOKENS], task.labels("train"), is_regression=False, max_positions=128)
    validation = extract_features(encoder, task.texts("validation")["sentence"], [TOKENS], cache_dir="cache")
    pooled = pool_tokens(pooler, validation[TOKENS])  # (n, hidden)

Modules: `tasks` (GLUE and custom task data), `arguments` (the command-line arguments the probe and the
representation analysis share), `encoders` (loading), `features` (extraction and its cache), `poolers` (trained
poolers), `linear_probe` (the cross-validated probe and the GLUE metric), `results` (library versions and model-card
entries), and `glue_probe`, the probe command.
"""

from .arguments import EncoderArguments, TaskDataArguments
from .encoders import (
    ENCODERS,
    ONLINE_ENCODER,
    LoadedEncoder,
    check_text_encoder,
    load_encoder,
    tokenizer_fingerprint,
    weights_fingerprint,
)
from .features import (
    CACHE_FORMAT_VERSION,
    FIXED_POOLINGS,
    POOLINGS,
    TOKENS,
    TRAINED_POOLINGS,
    Texts,
    TokenFeatures,
    combine_views,
    default_cache_dir,
    extract_features,
    extract_task_features,
    feature_cache_key,
    pair_features,
    tokenize_texts,
)
from .linear_probe import (
    LOCAL_GLUE_METRIC,
    LinearProbe,
    check_classes,
    cosine_spearman,
    fit_linear_probe,
    load_glue_metric,
)
from .poolers import (
    AttentionPooler,
    PoolerTraining,
    WeightedPooler,
    make_pooler,
    pool_tokens,
    single_torch_thread,
    train_pooler,
)
from .results import (
    PROBE_LIBRARIES,
    check_same_encoders,
    earlier_results,
    glue_eval_result,
    probe_description,
    update_model_card,
)
from .tasks import (
    CUSTOM_TASK,
    GLUE_TASKS,
    PAIR_ENCODINGS,
    PROBLEM_TYPES,
    GlueTask,
    TaskData,
    check_task_name,
    load_task_data,
    seeded_subset,
)

__all__ = [
    "CACHE_FORMAT_VERSION",
    "CUSTOM_TASK",
    "ENCODERS",
    "FIXED_POOLINGS",
    "GLUE_TASKS",
    "LOCAL_GLUE_METRIC",
    "ONLINE_ENCODER",
    "PAIR_ENCODINGS",
    "POOLINGS",
    "PROBE_LIBRARIES",
    "PROBLEM_TYPES",
    "TOKENS",
    "TRAINED_POOLINGS",
    "AttentionPooler",
    "EncoderArguments",
    "GlueTask",
    "LinearProbe",
    "LoadedEncoder",
    "PoolerTraining",
    "TaskData",
    "TaskDataArguments",
    "Texts",
    "TokenFeatures",
    "WeightedPooler",
    "check_classes",
    "check_same_encoders",
    "check_task_name",
    "check_text_encoder",
    "combine_views",
    "cosine_spearman",
    "default_cache_dir",
    "earlier_results",
    "extract_features",
    "extract_task_features",
    "feature_cache_key",
    "fit_linear_probe",
    "glue_eval_result",
    "load_encoder",
    "load_glue_metric",
    "load_task_data",
    "make_pooler",
    "pair_features",
    "pool_tokens",
    "probe_description",
    "seeded_subset",
    "single_torch_thread",
    "tokenize_texts",
    "tokenizer_fingerprint",
    "train_pooler",
    "update_model_card",
    "weights_fingerprint",
]
