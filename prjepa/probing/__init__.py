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
poolers), `linear_probe` (the cross-validated probe and the GLUE metric), `results` (writing results, reusing finished
ones, library versions and model-card entries), and `glue_probe`, the probe command.

The names below load with their module on first use, so that the probe's `--help` does not load torch, datasets or
scikit-learn.
"""

from ..utils import lazy_exports

_import_structure = {
    ".arguments": ["EncoderArguments", "TaskDataArguments"],
    ".encoders": [
        "ENCODERS",
        "ONLINE_ENCODER",
        "LoadedEncoder",
        "check_text_encoder",
        "code_fingerprint",
        "encoding_fingerprint",
        "load_encoder",
        "tokenizer_fingerprint",
        "weights_fingerprint",
    ],
    ".features": [
        "CACHE_FORMAT_VERSION",
        "FIXED_POOLINGS",
        "POOLINGS",
        "TOKENS",
        "TRAINED_POOLINGS",
        "Texts",
        "TokenFeatures",
        "combine_views",
        "default_cache_dir",
        "extract_features",
        "extract_task_features",
        "feature_cache_key",
        "pair_features",
        "tokenize_texts",
    ],
    ".linear_probe": [
        "LOCAL_GLUE_METRIC",
        "LinearProbe",
        "check_classes",
        "check_scores",
        "cosine_spearman",
        "fit_linear_probe",
        "load_glue_metric",
    ],
    ".poolers": [
        "AttentionPooler",
        "PoolerTraining",
        "WeightedPooler",
        "make_pooler",
        "pool_tokens",
        "single_torch_thread",
        "train_pooler",
    ],
    ".results": [
        "PROBE_LIBRARIES",
        "check_same_data",
        "check_same_encoders",
        "earlier_results",
        "encoder_fingerprints",
        "glue_eval_result",
        "probe_description",
        "update_model_card",
        "write_results",
    ],
    ".tasks": [
        "CUSTOM_TASK",
        "GLUE_TASKS",
        "PAIR_ENCODINGS",
        "PROBLEM_TYPES",
        "GlueTask",
        "TaskData",
        "check_joint_pair_length",
        "check_task_name",
        "load_task_data",
        "seeded_subset",
    ],
}
__getattr__ = lazy_exports(__name__, _import_structure)

__all__ = sorted(name for names in _import_structure.values() for name in names)
