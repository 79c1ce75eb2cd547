"""Pretraining step time under bf16 autocast vs fp32, for the experiment's cpu preset (its model and recipe).

run_experiment.py pretrains the cpu preset under bf16 autocast where the device computes bf16 natively (a CPU with
AVX512-BF16 or AMX); elsewhere autocast emulates bf16 and is slower than fp32. Each (precision, objective) runs
`bench_pretrain.time_objective` in a fresh process; the precisions alternate (fp32 first in even rounds) so that
machine noise hits both alike. Printed per objective: median step time of each precision and their ratio, and the
pretraining time of one seed (both objectives, the preset's steps) each implies. The experiment's time estimate uses
the ratio as prjepa.experiment.NATIVE_BF16_CPU_STEP_RATIO.

Whether bf16 changes the loss curve takes training: `--loss_curves FP32_RUN BF16_RUN` reads two experiment results
folders (run_experiment.py's, one pretrained in each precision) and prints, per objective and evaluation step, the
validation MLM loss of each (mean ± standard deviation over the seeds each holds) and whether their difference exceeds
the seed spread (the sum of the two standard deviations; with one seed on a side, the other side's alone).

    python benchmarks/bench_precision.py [--steps 10] [--rounds 2] [--threads 2]
    python benchmarks/bench_precision.py --loss_curves results/cpu-fp32 results/cpu
"""

import argparse
import glob
import json
import os
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_pretrain import time_objective  # noqa: E402

from prjepa.experiment import EXPERIMENT_PRESETS, exceeds_spread, native_bf16  # noqa: E402
from prjepa.utils import mean_and_spread  # noqa: E402

PRECISIONS = ("fp32", "bf16")


def evaluation_losses(run: str, objective: str) -> dict[int, list[float]]:
    """Step → the validation MLM loss of each seed's pretraining run of `objective` in an experiment results folder."""
    losses: dict[int, list[float]] = {}
    records = sorted(glob.glob(os.path.join(run, "seed-*", f"pretrain-{objective}", "trainer_state.json")))
    if not records:
        raise SystemExit(f"{run} holds no pretraining record of {objective} (seed-*/pretrain-{objective}).")
    for record in records:
        with open(record) as file:
            for entry in json.load(file)["log_history"]:
                if "eval_mlm_loss" in entry:
                    losses.setdefault(entry["step"], []).append(entry["eval_mlm_loss"])
    return losses


def compare_loss_curves(fp32_run: str, bf16_run: str) -> None:
    for objective in ("hybrid", "mlm"):
        curves = {"fp32": evaluation_losses(fp32_run, objective), "bf16": evaluation_losses(bf16_run, objective)}
        print(f"{objective}: validation MLM loss, fp32 ({fp32_run}) vs bf16 autocast ({bf16_run})")
        for step in sorted(set(curves["fp32"]) & set(curves["bf16"])):
            stats = {precision: mean_and_spread(curves[precision][step]) for precision in PRECISIONS}
            cells = [
                f"{precision} {stat['mean']:.3f} ± {stat['std']:.3f} (seeds: {len(stat['values'])})"
                for precision, stat in stats.items()
            ]
            # exceeds_spread needs two seeds on its first side: put the side with more there.
            more, fewer = sorted(stats.values(), key=lambda stat: len(stat["values"]), reverse=True)
            exceeds = exceeds_spread(more, fewer)
            verdict = {
                None: "one seed each: no spread to compare with",
                True: "beyond the seed spread",
                False: "within the seed spread",
            }[exceeds]
            difference = stats["bf16"]["mean"] - stats["fp32"]["mean"]
            print(f"  step {step:>6}: {', '.join(cells)}; bf16 - fp32 {difference:+.3f}, {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--experiment_preset", default="cpu")
    parser.add_argument("--loss_curves", nargs=2, metavar=("FP32_RUN", "BF16_RUN"))
    args = parser.parse_args()
    if args.loss_curves:
        compare_loss_curves(*args.loss_curves)
        return
    preset = EXPERIMENT_PRESETS[args.experiment_preset]
    args.batch_size, args.seq_len = preset.per_device_train_batch_size, preset.max_seq_length
    args.tokenizer, args.device = None, "cpu"
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # read by the fresh processes at start-up
    print(
        f"experiment preset {args.experiment_preset}: {preset.model_preset} with {preset.config_overrides or 'defaults'}, "
        f"batch {args.batch_size} x {args.seq_len}, {args.threads} threads, torch {torch.__version__}, CPU with "
        f"{'native' if native_bf16('cpu') else 'no native (emulated)'} bf16; {args.steps} steps x {args.rounds} rounds"
    )
    step_ms = {}
    spawn = get_context("spawn")  # a fresh interpreter per run, not a fork that inherits this process's heap
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn, max_tasks_per_child=1) as pool:
        for objective in ("mlm", "hybrid"):
            times: dict[str, list[float]] = {precision: [] for precision in PRECISIONS}
            for round_index in range(args.rounds):
                for precision in PRECISIONS if round_index % 2 == 0 else reversed(PRECISIONS):
                    run = pool.submit(
                        time_objective,
                        preset.model_preset,
                        objective,
                        args,
                        count_flops=False,
                        bf16=precision == "bf16",
                        config_overrides=preset.config_overrides,
                    ).result()
                    times[precision] += run["step"]
            step_ms[objective] = {precision: 1000 * statistics.median(times[precision]) for precision in PRECISIONS}
            fp32, bf16 = step_ms[objective]["fp32"], step_ms[objective]["bf16"]
            print(f"{objective:>6}: fp32 {fp32:8.1f} ms/step, bf16 {bf16:8.1f} ms/step, bf16 / fp32 {bf16 / fp32:.2f}x")
    both = {precision: sum(step_ms[objective][precision] for objective in step_ms) for precision in PRECISIONS}
    for precision, milliseconds in both.items():
        minutes = preset.steps * milliseconds / 60_000
        print(f"{precision}: pretraining both objectives for {preset.steps:,} steps takes {minutes:.0f} min")
    print(f"both objectives, bf16 / fp32: {both['bf16'] / both['fp32']:.2f}x")


if __name__ == "__main__":
    main()
