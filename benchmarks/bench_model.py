"""Training-step time of PrJepaForMaskedLM vs transformers' BertForMaskedLM of the same size.

One step = forward + backward + AdamW update on a batch of 32 x 128 tokens with 15% of them labelled. Both models are
timed in the same run, alternating step by step so that machine noise hits both alike; the median step is reported,
in fp32 and under bf16 autocast. Dropout is 0 in both (PrJEPA's default). PrJEPA computes the MLM logits at the
labelled positions only (`sparse_prediction=True`, as pretraining does), where BERT's head computes every position.

    python benchmarks/bench_model.py [--steps 10] [--precision fp32 bf16] [--device cpu]

bf16 is slow on CPUs without native bf16 instructions; there, time it with fewer steps.
"""

import argparse
import statistics
import time
from contextlib import nullcontext

import torch
from transformers import BertConfig, BertForMaskedLM

from configuration_prjepa import PrJepaConfig
from modeling_prjepa import PrJepaForMaskedLM

SIZE = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024, vocab_size=30522)


def make_batch(batch_size: int, seq_len: int, device: str) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(1000, SIZE["vocab_size"], (batch_size, seq_len), generator=generator)
    labels = torch.full_like(input_ids, -100)
    chosen = torch.rand(batch_size, seq_len, generator=generator) < 0.15
    labels[chosen] = input_ids[chosen]
    input_ids[chosen] = 103
    attention_mask = torch.ones_like(input_ids)
    return {
        key: value.to(device)
        for key, value in dict(input_ids=input_ids, attention_mask=attention_mask, labels=labels).items()
    }


def step_timer(model: torch.nn.Module, batch: dict[str, torch.Tensor], bf16: bool, device: str):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16) if bf16 else nullcontext()

    def step() -> float:
        start = time.perf_counter()
        with autocast:
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--precision", nargs="+", choices=["fp32", "bf16"], default=["fp32", "bf16"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    torch.manual_seed(0)
    batch = make_batch(args.batch_size, args.seq_len, args.device)
    # Logits at the labelled positions only, as pretraining computes them (BERT's head computes every position).
    config = PrJepaConfig(**SIZE, max_position_embeddings=args.seq_len, sparse_prediction=True)
    ours = PrJepaForMaskedLM(config).to(args.device)
    bert = BertForMaskedLM(
        BertConfig(
            **SIZE, max_position_embeddings=args.seq_len, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
        )
    ).to(args.device)
    print(
        f"device={args.device} threads={torch.get_num_threads()} torch={torch.__version__} "
        f"batch={args.batch_size}x{args.seq_len}"
    )
    print(
        f"parameters: PrJEPA {sum(p.numel() for p in ours.parameters()):,}  "
        f"BERT {sum(p.numel() for p in bert.parameters()):,}"
    )
    print(f"{'precision':<10} {'PrJEPA ms':>10} {'BERT ms':>10} {'ratio':>7}  (target <= 0.50)")
    for precision in args.precision:
        bf16 = precision == "bf16"
        steps = {"ours": step_timer(ours, batch, bf16, args.device), "bert": step_timer(bert, batch, bf16, args.device)}
        times = {"ours": [], "bert": []}
        for index in range(args.warmup + args.steps):
            for name, step in steps.items():
                elapsed = step()
                if index >= args.warmup:
                    times[name].append(elapsed)
        ours_ms, bert_ms = (1000 * statistics.median(times[name]) for name in ("ours", "bert"))
        print(f"{precision:<10} {ours_ms:>10.1f} {bert_ms:>10.1f} {ours_ms / bert_ms:>7.2f}")


if __name__ == "__main__":
    main()
