"""Pretraining step time with glibc keeping freed memory (run_experiment.py's --keep_freed_memory) vs glibc's defaults,
for the step the experiment's preset runs (its model, recipe, batch, and bf16 autocast where the preset uses it on this
CPU, as `--bf16 auto` does).

By default glibc returns large freed blocks to the system (mmap'd allocations, heap trimming) and every training
step faults the same activation memory back in. `GLIBC_TUNABLES` with prjepa.experiment.plan.KEEP_FREED_MEMORY keeps it. Each
(setting, objective) runs `bench_pretrain.time_objective` in a fresh process started with or without the tunables
(glibc reads them at start-up only); the settings alternate (defaults first in even rounds) so that machine noise
hits both alike. Printed per objective: median step time of each setting and their ratio, minor page faults per
step, peak resident memory. --keep_freed_memory stays off by default unless the ratio is below 1 for both objectives
in every run by more than the runs' scatter (measured in four runs: the hybrid's 0.99x and 1.04x in two is not; 0.90x
and 0.86x in two later ones).

    python benchmarks/bench_allocator.py [--steps 10] [--rounds 2] [--experiment_preset cpu] [--threads 2]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from prjepa.experiment.plan import KEEP_FREED_MEMORY  # noqa: E402
from prjepa.experiment.presets import EXPERIMENT_PRESETS  # noqa: E402
from prjepa.utils import native_bf16  # noqa: E402

SETTINGS = {"glibc defaults": None, "keep freed memory": KEEP_FREED_MEMORY}


def worker(args: argparse.Namespace) -> None:
    """One timed run in this process; prints its measurements as JSON."""
    from bench_pretrain import time_objective

    preset = EXPERIMENT_PRESETS[args.experiment_preset]
    run = time_objective(
        preset.model_preset,
        args.worker,
        args,
        count_flops=False,
        bf16=args.bf16,
        config_overrides=preset.config_overrides,
    )
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"step": run["step"], "faults": run["faults"], "peak_mib": peak_mib}))


def timed_run(setting: str, objective: str, args: argparse.Namespace) -> dict:
    environment = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    environment.pop("GLIBC_TUNABLES", None)
    if SETTINGS[setting] is not None:
        environment["GLIBC_TUNABLES"] = SETTINGS[setting]
    command = [sys.executable, __file__, "--worker", objective, *forwarded(args)]
    output = subprocess.run(command, env=environment, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def forwarded(args: argparse.Namespace) -> list[str]:
    return ["--steps", str(args.steps), "--warmup", str(args.warmup), "--experiment_preset", args.experiment_preset]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--experiment_preset", choices=sorted(EXPERIMENT_PRESETS), default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", choices=["mlm", "hybrid"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    preset = EXPERIMENT_PRESETS[args.experiment_preset]
    args.batch_size, args.seq_len = preset.per_device_train_batch_size, preset.max_seq_length
    args.tokenizer, args.device = None, "cpu"
    args.bf16 = preset.pretrains_in_bf16(native_bf16("cpu"))
    if args.worker:
        worker(args)
        return
    print(
        f"experiment preset {args.experiment_preset}: {preset.model_preset} with "
        f"{preset.config_overrides or 'defaults'}, batch {args.batch_size} x {args.seq_len}, {args.threads} threads, "
        f"{'bf16 autocast' if args.bf16 else 'fp32'}, CPU; {args.steps} steps x {args.rounds} rounds"
    )
    print(f"keep freed memory: GLIBC_TUNABLES={KEEP_FREED_MEMORY}")
    for objective in ("mlm", "hybrid"):
        runs: dict[str, list[dict]] = {setting: [] for setting in SETTINGS}
        for round_index in range(args.rounds):
            order = list(SETTINGS) if round_index % 2 == 0 else list(reversed(SETTINGS))
            for setting in order:
                runs[setting].append(timed_run(setting, objective, args))
        step_ms = {s: 1000 * statistics.median(t for run in runs[s] for t in run["step"]) for s in SETTINGS}
        for setting in SETTINGS:
            faults = statistics.median(run["faults"] for run in runs[setting])
            peak = max(run["peak_mib"] for run in runs[setting])
            print(
                f"{objective:>6} {setting:<18} {step_ms[setting]:8.1f} ms/step  {faults:10.0f} page faults/step  "
                f"peak {peak:7.0f} MiB"
            )
        ratio = step_ms["keep freed memory"] / step_ms["glibc defaults"]
        print(f"{objective:>6} keep freed memory / defaults: {ratio:.2f}x step time")


if __name__ == "__main__":
    main()
