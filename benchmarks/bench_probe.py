"""Wall-clock time of this project's probe protocol vs the original's, on one GLUE task, in one run.

- ours: features extracted once (length-sorted batches), then standardise + logistic regression with C chosen by
  k-fold cross-validation on the training split, refit, scored once on validation;
- original: a LayerNorm + linear head on mean-pooled features trained 15 epochs with AdamW (lr 2e-5, batch 32),
  re-running the frozen encoder on every batch of every epoch and on the validation split after every epoch (best
  epoch reported). Generous to it: the encoder runs without autograd and batches are padded to their longest text.

Both start cold (no feature cache) and use the same encoder, data and pooling; ours is timed before and after the
original and the ratio uses the mean. Default encoder: a randomly initialised `mini` PrJEPA (the time does not depend
on the weights).

    python benchmarks/bench_probe.py [--task_name cola] [--max_train_samples 2000] [--model_name_or_path PATH]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch
from torch import nn

from configuration_prjepa import PrJepaConfig
from modeling_prjepa import PrJepaModel, pool_hidden_states
from prjepa.probing import extract_features, fit_linear_probe, load_encoder, load_glue_metric, load_task_data

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared")


def our_protocol(encoder, texts: dict, labels: dict, metric, args) -> dict:
    with tempfile.TemporaryDirectory() as cache_dir:
        features = {
            split: extract_features(
                encoder, texts[split], ["mean"], max_seq_length=args.max_seq_length, cache_dir=cache_dir
            )["mean"]
            for split in ("train", "validation")
        }
    probe = fit_linear_probe(features["train"], labels["train"], is_regression=False, grid=args.c_grid, seed=args.seed)
    return metric.compute(predictions=probe.predict(features["validation"]), references=labels["validation"])


def original_protocol(encoder, texts: dict, labels: dict, metric, args) -> dict:
    model, tokenizer = encoder.model, encoder.tokenizer
    torch.manual_seed(args.seed)
    hidden_size, num_labels = model.config.hidden_size, int(labels["train"].max()) + 1
    head = nn.Sequential(nn.LayerNorm(hidden_size), nn.Linear(hidden_size, num_labels))
    optimizer = torch.optim.AdamW(head.parameters(), lr=2e-5)

    def pooled(batch_texts: list[str]) -> torch.Tensor:
        inputs = tokenizer(
            batch_texts, padding=True, truncation=True, max_length=args.max_seq_length, return_tensors="pt"
        )
        with torch.inference_mode():
            hidden = model(**inputs.to(model.device)).last_hidden_state
        return pool_hidden_states(hidden.float(), inputs["attention_mask"], "mean").clone()

    best = None
    for _ in range(args.epochs):
        order = np.random.default_rng(args.seed).permutation(len(texts["train"]))
        for start in range(0, len(order), args.batch_size):
            batch = order[start : start + args.batch_size]
            logits = head(pooled([texts["train"][i] for i in batch]))
            loss = nn.functional.cross_entropy(logits, torch.from_numpy(labels["train"][batch]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            starts = range(0, len(texts["validation"]), args.batch_size)
            batches = [texts["validation"][start : start + args.batch_size] for start in starts]
            predictions = torch.cat([head(pooled(batch)).argmax(-1) for batch in batches])
        scores = metric.compute(predictions=predictions.numpy(), references=labels["validation"])
        best = scores if best is None or list(scores.values())[0] > list(best.values())[0] else best
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task_name", default="cola", help="a single-sentence GLUE task (cola or sst2)")
    parser.add_argument("--glue_path", default=os.path.join(SHARED, "data", "glue"))
    parser.add_argument("--model_name_or_path", default=None, help="default: a random-init mini PrJEPA")
    parser.add_argument("--tokenizer_name", default=os.path.join(SHARED, "tokenizers", "bert-base-uncased"))
    parser.add_argument("--max_train_samples", type=int, default=2000)
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--c_grid", type=float, nargs="+", default=[1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not os.path.isdir(args.glue_path):
        sys.exit(f"No GLUE data at {args.glue_path}; pass --glue_path (a local copy laid out like nyu-mll/glue).")

    task = load_task_data(
        args.task_name, glue_path=args.glue_path, max_train_samples=args.max_train_samples, seed=args.seed
    )
    if len(task.text_columns) != 1:
        sys.exit(f"{args.task_name} is a pair task; the benchmark times a single-sentence task (cola or sst2).")
    texts = {split: task.texts(split)[task.text_columns[0]] for split in ("train", "validation")}
    labels = {split: task.labels(split) for split in ("train", "validation")}
    metric, _ = load_glue_metric(task.metric_config)
    with tempfile.TemporaryDirectory() as folder:
        if args.model_name_or_path is None:
            torch.manual_seed(args.seed)
            PrJepaModel(PrJepaConfig.from_preset("mini")).save_pretrained(folder)
        encoder = load_encoder(args.model_name_or_path or folder, tokenizer_name=args.tokenizer_name)

    print(
        f"task={args.task_name} train={len(labels['train'])} validation={len(labels['validation'])} "
        f"encoder={args.model_name_or_path or 'random mini PrJEPA'} threads={torch.get_num_threads()} "
        f"device={encoder.model.device}"
    )
    # Ours runs before and after the original, so that a change in machine load during the long original run
    # moves both sides of the ratio.
    timings: dict[str, list[float]] = {"ours": [], "original": []}
    for name, protocol in (("ours", our_protocol), ("original", original_protocol), ("ours", our_protocol)):
        start = time.perf_counter()
        scores = protocol(encoder, texts, labels, metric, args)
        timings[name].append(time.perf_counter() - start)
        print(f"{name:<9} {timings[name][-1]:8.1f} s   validation {scores}")
    ours = statistics.mean(timings["ours"])
    print(f"speed-up: {timings['original'][0] / ours:.1f}x  (original / mean of ours; target >= 10x)")


if __name__ == "__main__":
    main()
