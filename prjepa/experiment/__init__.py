#!/usr/bin/env python
"""The paper's experiment end to end: pretrain a hybrid and an MLM-only encoder under identical budgets, probe both on
GLUE, analyse their geometry, and write a comparison a paper can cite.

    python run_experiment.py  # the demo preset: offline, on the sample shipped with the package, ~12 minutes
    python run_experiment.py --preset cpu --train_file "../shared/data/text/gutenberg/train/*.txt" \\
        --validation_file "../shared/data/text/gutenberg/validation/*.txt" \\
        --glue_path ../shared/data/glue --tokenizer_name ../shared/tokenizers/bert-base-uncased

The two pretraining runs differ only in `--objective`, and in `--learning_rate` where the preset sets
`objective_learning_rates`: same model size, data order, masks (the collator draws the MLM masks before the JEPA
blocks from the same seeded stream), steps, tokens and seeds. Both start from the same
encoder weights (same seed), kept as each run's `snapshot-0`: probed and analysed as a third column, this
random-init control shows what pretraining added. Snapshots along the run are probed on a few tasks for curves of
score against tokens seen. `--seeds N` repeats everything per seed and reports mean ± standard deviation. Every stage
writes its outputs once; rerunning continues where an interruption stopped (a pretraining run resumes from its last
checkpoint) and reuses what is finished, and a stage whose recorded settings differ from the current ones is refused
rather than overwritten.

Small outputs go to `--results_dir/<run_name>` (committed for the published run): comparison tables, plots, the
configuration, commands, machine, wall times and tokens seen. Checkpoints and cached features go to
`--work_dir/<run_name>`.
"""

import os
import sys

from ..data_sources import check_hub_reachable
from ..folder_lock import held_folders, hold_folder, release_folders
from ..utils import parse_command_line, script_parser
from .plan import Experiment, ExperimentArguments
from .report import check_report_inputs, write_report
from .stages import (
    analyse,
    check_budget,
    check_curves_to_run,
    check_glue_tasks,
    check_launcher,
    check_measured_runs_recorded,
    check_no_stale_stage,
    check_text_files,
    curves,
    pretrain,
    probe,
)


def main(argv: list[str] | None = None) -> None:
    """Runs the stages asked for; the run's results folder is locked against other processes meanwhile
    (`folder_lock`), so that a second experiment of the same --run_name stops instead of racing the first's stages."""
    held_by_caller = held_folders()
    try:
        run(argv)
    finally:
        release_folders(keep=held_by_caller)


def run(argv: list[str] | None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    (args,) = parse_command_line(script_parser(ExperimentArguments, __doc__), argv)
    experiment = Experiment(args)
    hold_folder(experiment.results, "--results_dir/--run_name")
    check_launcher(experiment)
    check_measured_runs_recorded(experiment)  # local, before the Hub is asked
    if set(args.stages) - {"report"}:
        text = [] if args.train_file else [("--dataset_name", args.dataset_name)]
        check_hub_reachable([*text, ("--glue_path", args.glue_path), ("--tokenizer_name", args.tokenizer_name)])
    check_budget(experiment)
    check_text_files(experiment)
    check_glue_tasks(experiment)
    check_no_stale_stage(experiment)
    if "curves" in args.stages:
        check_curves_to_run(experiment)
    if "report" in args.stages:
        check_report_inputs(experiment, args.stages)
    os.makedirs(experiment.results, exist_ok=True)
    hold_folder(experiment.results, "--results_dir/--run_name")  # made now, if it was not there at the start
    stages = {"pretrain": pretrain, "probe": probe, "analysis": analyse, "curves": curves}
    for seed in range(args.seeds):
        for name, stage in stages.items():
            if name in args.stages:
                stage(experiment, seed)
    if "report" in args.stages:
        write_report(experiment, argv)
