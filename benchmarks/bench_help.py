"""Seconds each script's `--help` takes in a fresh process (target: under 3 s on 2 cores), beside `import torch`
measured in the same run. The parsers that need the model configuration's choices or `TrainingArguments` load torch
with them, so torch's import time is the floor of those scripts' help; the console scripts (`prjepa-pretrain`, ...)
run the same `main` as the scripts here.

Every command runs `--rounds` times, the commands interleaved round by round so that machine noise hits them alike;
printed per command: the median wall seconds, the median CPU seconds (user + system) of its process, and its wall time
as a multiple of `import torch`'s.

    python benchmarks/bench_help.py [--rounds 5]
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = (
    "run_pretrain.py",
    "run_glue_probe.py",
    "run_representation_analysis.py",
    "run_experiment.py",
    "run_recipe_study.py",
    "convert_original_checkpoint.py",
)
TORCH_REFERENCE = 'python -c "import torch"'


def commands() -> dict[str, list[str]]:
    scripts = {f"{script} --help": [sys.executable, script, "--help"] for script in SCRIPTS}
    return scripts | {TORCH_REFERENCE: [sys.executable, "-c", "import torch"]}


def timed(command: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run of `command` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="runs of each command (default: 5)")
    args = parser.parse_args()
    to_time = commands()
    runs = {name: [] for name in to_time}
    for _ in range(args.rounds):
        for name, command in to_time.items():
            runs[name].append(timed(command))
    print(f"median of {args.rounds} fresh processes, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    torch_wall = statistics.median(wall for wall, _ in runs[TORCH_REFERENCE])
    print(f"{'command':<45} {'wall s':>7} {'CPU s':>7} {'x torch':>8}")
    for name, measured in runs.items():
        walls, cpus = zip(*measured)
        wall = statistics.median(walls)
        print(f"{name:<45} {wall:7.2f} {statistics.median(cpus):7.2f} {wall / torch_wall:8.2f}")


if __name__ == "__main__":
    main()
