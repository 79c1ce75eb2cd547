"""Pretraining step time under bf16 autocast vs fp32, for the experiment's cpu preset (its model and recipe).

run_experiment.py pretrains the cpu preset under bf16 autocast where the device computes bf16 natively (a CPU with
AVX512-BF16 or AMX); elsewhere autocast emulates bf16 and is slower than fp32. Each (precision, objective) runs
`bench_pretrain.time_objective` in a fresh process; the precisions alternate (fp32 first in even rounds) so that
machine noise hits both alike. Printed per objective: median step time of each precision and their ratio, and the
pretraining time of one seed (both objectives, the preset's steps) each implies. The experiment's time estimate uses
the ratio as prjepa.utils.NATIVE_BF16_CPU_STEP_RATIO, or EMULATED_BF16_CPU_STEP_RATIO where the CPU emulates bf16.

Whether bf16 changes the loss curve takes training: `--loss_curves FIRST SECOND` compares two groups of pretraining
runs, each `LABEL=DIR[,DIR...]` naming experiment results folders (run_experiment.py's, or folders laid out like them:
seed-N/pretrain-OBJECTIVE/trainer_state.json), each seed once per group. Printed per objective and evaluation step:
the validation MLM loss of each group (mean ± standard deviation over the seeds that reached the step) and whether
their difference exceeds the seed spread (the sum of the two standard deviations; with one seed on a side, the other
side's alone). Then, for the hybrid, the collapse screen: per seed, the lowest logged effective rank of the batch
embeddings and the lowest JEPA loss over the steps every run logged (runs stopped early shorten the window for all),
and how many seeds per group fell below `--collapse_rank` (10: results/cpu-lr1e-3's collapsed seed stayed at 5.5-9.4,
the others at 14 or more; MLM-only runs at the preset's LR dip to 7-12 on the unigram plateau and recover, so the
screen is the hybrid's). The groups need not differ in precision (e.g. two EMA momenta); `--seeds` restricts both to
the same seeds. Last, per seed, the step where its training MLM loss leaves the second plateau (the README's rule for
the runs past the budget: the first step from 800 on where the mean over the last 100 steps is 0.1 below its lowest
value at least 100 steps earlier), with the tokens seen by then.

`--against OVERRIDES` times, the same way, the preset's fp32 step against the fp32 step with those config overrides
added (e.g. `mlm_probability=0.4`: each masked token costs a projection onto the vocabulary), for a recipe change's
cost in the preset's time budget.

    python benchmarks/bench_precision.py [--steps 10] [--rounds 2] [--threads 2] [--against mlm_probability=0.4]
    python benchmarks/bench_precision.py --loss_curves fp32=results/cpu-fp32 bf16=results/cpu-lr1e-3
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

from prjepa.experiment.presets import EXPERIMENT_PRESETS  # noqa: E402
from prjepa.experiment.report import exceeds_spread  # noqa: E402
from prjepa.model_card import trajectory  # noqa: E402
from prjepa.utils import mean_and_spread, native_bf16  # noqa: E402

PRECISIONS = ("fp32", "bf16")


def timed_variants(config_overrides: str, against: str | None) -> dict[str, tuple[bool, str]]:
    """Label → (bf16, config overrides) of the two steps timed side by side: fp32 and bf16 of the preset's config, or
    with `against` its fp32 step and that step with `against`'s overrides added."""
    if against is None:
        return {precision: (precision == "bf16", config_overrides) for precision in PRECISIONS}
    return {"preset": (False, config_overrides), against: (False, ",".join(filter(None, (config_overrides, against))))}


def run_group(text: str) -> tuple[str, list[str]]:
    """`LABEL=DIR[,DIR...]` → (label, folders)."""
    label, separator, folders = text.partition("=")
    if not (label and separator and folders):
        raise argparse.ArgumentTypeError(f"expected LABEL=DIR[,DIR...], got {text!r}")
    return label, folders.split(",")


def pretraining_logs(runs: list[str], objective: str, seeds: list[int] | None = None) -> dict[int, list[dict]]:
    """Seed → the log history of its pretraining run of `objective`, over experiment results folders (a folder may
    hold one objective only); only `seeds` when given."""
    logs: dict[int, list[dict]] = {}
    for run in runs:
        if not glob.glob(os.path.join(run, "seed-*", "pretrain-*", "trainer_state.json")):
            raise SystemExit(f"{run} holds no pretraining record (seed-*/pretrain-*/trainer_state.json).")
        for record in glob.glob(os.path.join(run, "seed-*", f"pretrain-{objective}", "trainer_state.json")):
            seed = int(record.split(os.sep)[-3].removeprefix("seed-"))
            if seeds is not None and seed not in seeds:
                continue
            if seed in logs:
                raise SystemExit(f"Seed {seed} of {objective} is in two of {runs}: give each seed once per group.")
            with open(record) as file:
                logs[seed] = json.load(file)["log_history"]
    return dict(sorted(logs.items()))


def evaluation_losses(logs: dict[int, list[dict]]) -> dict[int, list[float]]:
    """Step → the validation MLM loss of each seed that evaluated at that step."""
    losses: dict[int, list[float]] = {}
    for history in logs.values():
        for entry in history:
            if "eval_mlm_loss" in entry:
                losses.setdefault(entry["step"], []).append(entry["eval_mlm_loss"])
    return losses


def compare_loss_curves(logs: dict[str, dict[int, list[dict]]], objective: str) -> None:
    """Per evaluation step both groups reached: each group's validation MLM loss over seeds and their difference."""
    curves = {label: evaluation_losses(by_seed) for label, by_seed in logs.items()}
    first, second = curves
    print(f"{objective}: validation MLM loss, {first} vs {second}")
    for step in sorted(set(curves[first]) & set(curves[second])):
        stats = {label: mean_and_spread(curve[step]) for label, curve in curves.items()}
        cells = [
            f"{label} {stat['mean']:.3f} ± {stat['std']:.3f} (seeds: {len(stat['values'])})"
            for label, stat in stats.items()
        ]
        # exceeds_spread needs two seeds on its first side: put the side with more there.
        more, fewer = sorted(stats.values(), key=lambda stat: len(stat["values"]), reverse=True)
        verdict = {
            None: "one seed each: no spread to compare with",
            True: "beyond the seed spread",
            False: "within the seed spread",
        }[exceeds_spread(more, fewer)]
        difference = stats[second]["mean"] - stats[first]["mean"]
        print(f"  step {step:>6}: {', '.join(cells)}; {second} - {first} {difference:+.3f}, {verdict}")


def screen_collapse(logs: dict[str, dict[int, list[dict]]], collapse_rank: float) -> None:
    """Per seed of each group: the lowest effective rank and JEPA loss over the steps every run logged."""
    histories = [history for by_seed in logs.values() for history in by_seed.values()]
    window = min(trajectory(history, "effective_rank").last[0] for history in histories)
    print(
        f"hybrid: collapse screen over steps 1-{window} (lowest effective rank of the batch embeddings, "
        "lowest JEPA loss)"
    )
    for label, by_seed in logs.items():
        collapsed = []
        for seed, history in by_seed.items():
            within = [entry for entry in history if entry["step"] <= window]
            rank_step, rank = trajectory(within, "effective_rank").minimum
            jepa_step, jepa = trajectory(within, "jepa_loss").minimum
            if rank < collapse_rank:
                collapsed.append(seed)
            print(
                f"  {label} seed {seed}: rank {rank:5.1f} (step {rank_step}), JEPA loss {jepa:.3f} (step {jepa_step})"
            )
        seeds = ", ".join(map(str, collapsed)) or "none"
        print(
            f"  {label}: effective rank below {collapse_rank:g} in {len(collapsed)} of {len(by_seed)} seeds ({seeds})"
        )


def plateau_exit(history: list[dict], window: int = 100, drop: float = 0.1, start: int = 800) -> dict | None:
    """The first log entry from step `start` on where the mean training MLM loss over the last `window` steps is `drop`
    below its lowest value at least `window` steps earlier; None while the run is on the plateau still."""
    logs = [entry for entry in history if "mlm_loss" in entry]
    means: dict[int, float] = {}
    for index, entry in enumerate(logs):
        recent = [earlier["mlm_loss"] for earlier in logs[: index + 1] if earlier["step"] > entry["step"] - window]
        means[entry["step"]] = statistics.fmean(recent)
        lowest_before = min((mean for step, mean in means.items() if step <= entry["step"] - window), default=None)
        if entry["step"] >= start and lowest_before is not None and means[entry["step"]] <= lowest_before - drop:
            return entry
    return None


def report_plateau_exits(logs: dict[str, dict[int, list[dict]]], objective: str) -> None:
    """Per seed of each group: where `plateau_exit` finds its training MLM loss leaving the second plateau."""
    print(f"{objective}: where the training MLM loss leaves the second plateau")
    for label, by_seed in logs.items():
        for seed, history in by_seed.items():
            entry = plateau_exit(history)
            where = (
                f"step {entry['step']:,} ({entry['num_input_tokens_seen'] / 1e6:.1f}M tokens)"
                if entry
                else f"not by its last logged step, {history[-1]['step']:,}"
            )
            print(f"  {label} seed {seed}: {where}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--experiment_preset", default="cpu")
    parser.add_argument("--loss_curves", nargs=2, type=run_group, metavar=("LABEL=DIR[,DIR...]", "LABEL=DIR[,DIR...]"))
    parser.add_argument("--collapse_rank", type=float, default=10.0)
    parser.add_argument("--seeds", type=int, nargs="+", help="compare these seeds only (default: every seed found)")
    parser.add_argument("--against", metavar="OVERRIDES", help="time the fp32 step with these config overrides added")
    args = parser.parse_args()
    if args.loss_curves:
        groups = dict(args.loss_curves)
        if len(groups) < 2:
            parser.error("--loss_curves needs two different labels.")
        for objective in ("hybrid", "mlm"):
            logs = {label: pretraining_logs(folders, objective, args.seeds) for label, folders in groups.items()}
            if not all(logs.values()):
                print(f"{objective}: no pretraining record in both groups, skipped")
                continue
            compare_loss_curves(logs, objective)
            if objective == "hybrid":
                screen_collapse(logs, args.collapse_rank)
            report_plateau_exits(logs, objective)
        return
    preset = EXPERIMENT_PRESETS[args.experiment_preset]
    args.batch_size, args.seq_len = preset.per_device_train_batch_size, preset.max_seq_length
    args.tokenizer, args.device = None, "cpu"
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # read by the fresh processes at start-up
    print(
        f"experiment preset {args.experiment_preset}: {preset.model_preset} with "
        f"{preset.config_overrides or 'defaults'}, batch {args.batch_size} x {args.seq_len}, {args.threads} threads, "
        f"torch {torch.__version__}, CPU with "
        f"{'native' if native_bf16('cpu') else 'no native (emulated)'} bf16; {args.steps} steps x {args.rounds} rounds"
    )
    variants = timed_variants(preset.config_overrides, args.against)
    (first, _), (second, _) = variants.items()
    step_ms = {}
    spawn = get_context("spawn")  # a fresh interpreter per run, not a fork that inherits this process's heap
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn, max_tasks_per_child=1) as pool:
        for objective in ("mlm", "hybrid"):
            times: dict[str, list[float]] = {label: [] for label in variants}
            for round_index in range(args.rounds):
                for label in variants if round_index % 2 == 0 else reversed(variants):
                    bf16, config_overrides = variants[label]
                    run = pool.submit(
                        time_objective,
                        preset.model_preset,
                        objective,
                        args,
                        count_flops=False,
                        bf16=bf16,
                        config_overrides=config_overrides,
                    ).result()
                    times[label] += run["step"]
            step_ms[objective] = {label: 1000 * statistics.median(times[label]) for label in variants}
            before, after = step_ms[objective][first], step_ms[objective][second]
            print(
                f"{objective:>6}: {first} {before:8.1f} ms/step, {second} {after:8.1f} ms/step, "
                f"{second} / {first} {after / before:.2f}x"
            )
    both = {label: sum(step_ms[objective][label] for objective in step_ms) for label in variants}
    for label, milliseconds in both.items():
        minutes = preset.steps * milliseconds / 60_000
        print(f"{label}: pretraining both objectives for {preset.steps:,} steps takes {minutes:.0f} min")
    print(f"both objectives, {second} / {first}: {both[second] / both[first]:.2f}x")


if __name__ == "__main__":
    main()
