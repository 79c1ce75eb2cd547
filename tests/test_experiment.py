"""run_experiment.py: a fair comparison (only the objective and its chosen learning rate differ), budget refusal,
resumable stages, the report, and the README's results agreeing with the committed result files."""

import contextlib
import dataclasses
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from datasets import ClassLabel, Dataset, Value
from helpers import tiny_config, write_glue_folder
from safetensors.torch import load_file

from prjepa.collator import DataCollatorForPrJepa
from prjepa.experiment import main as run_experiment
from prjepa.experiment import plan, report, stages
from prjepa.experiment.plan import Experiment, ExperimentArguments
from prjepa.experiment.presets import EXPERIMENT_PRESETS, ExperimentPreset
from prjepa.pretraining import parse_arguments as parse_pretraining_arguments
from prjepa.resume import RUN_SETTINGS
from prjepa.utils import mean_and_spread, this_machine

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = "the cat sat on mat a dog ran in park paris is capital of france and she he it was".split()


def test_the_two_encoders_differ_only_in_the_objective_and_its_chosen_learning_rate():
    experiment = Experiment(ExperimentArguments(preset="cpu", train_file="train/*.txt"))
    hybrid, mlm = (experiment.pretraining_arguments(3, objective) for objective in ("hybrid", "mlm"))
    differences = [(a, b) for a, b in zip(hybrid, mlm) if a != b]
    assert len(hybrid) == len(mlm)
    assert differences == [
        ("hybrid", "mlm"),
        ("0.0005", "0.001"),  # each objective's peak learning rate as the collapse screen chose it
        (experiment.checkpoint(3, "hybrid"), experiment.checkpoint(3, "mlm")),
    ]
    assert hybrid[hybrid.index("--seed") + 1] == hybrid[hybrid.index("--data_seed") + 1] == "3"


def test_the_launcher_and_a_hub_dataset_without_configuration_make_commands_run_pretrain_accepts(monkeypatch):
    monkeypatch.setattr(plan, "native_bf16", lambda device: False)  # fp32 on this CPU
    launched = Experiment(
        ExperimentArguments(preset="cpu", dataset_name="wikitext", launcher="torchrun --nproc_per_node 2")
    )
    command = launched.pretraining_arguments(0, "mlm")
    assert "--dataset_config_name" not in command and None not in command
    # Several CPU processes form one DDP world only with --use_cpu (run_pretrain refuses them without it).
    _, _, training_args = parse_pretraining_arguments(command)
    assert training_args.use_cpu and not training_args.bf16
    # The launcher sets the processes, so the tokens per step: a run finished under another is not this one.
    alone = Experiment(ExperimentArguments(preset="cpu", dataset_name="wikitext"))
    assert "--use_cpu" not in alone.pretraining_arguments(0, "mlm")  # a single process, as the published runs
    assert alone.pretraining_settings(0, "mlm") == alone.pretraining_arguments(0, "mlm")
    assert launched.pretraining_settings(0, "mlm")[-2:] == ["--launcher", "torchrun --nproc_per_node 2"]


def test_a_work_folder_of_another_length_is_refused_and_one_recorded_without_it_is_left_to_the_run(tmp_path):
    experiment = Experiment(ExperimentArguments(preset="cpu", train_file="train/*.txt", work_dir=str(tmp_path)))
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "run_settings.json").write_text(json.dumps({"training": {"max_steps": 8000, "learning_rate": 1e-3}}))
    with pytest.raises(ValueError, match=r"run holds a run of 8000 steps, not the 1200 steps .*Delete that folder"):
        stages.check_run_length(experiment, str(folder))
    # Settings recorded before the length was: nothing to compare, as run_pretrain itself finds.
    (folder / "run_settings.json").write_text(json.dumps({"training": {"learning_rate": 1e-3}}))
    stages.check_run_length(experiment, str(folder))


def test_a_long_run_writes_few_checkpoints_and_a_run_killed_without_warning_loses_little():
    """The paper preset's ~44,000 steps saved every 50 wrote ~880 checkpoints of ~0.8 GB; a run stopped between two
    checkpoints loses the steps since the last, on the device its preset is for."""
    for name, preset in EXPERIMENT_PRESETS.items():
        experiment = Experiment(ExperimentArguments(preset=name, train_file="train/*.txt"))
        save_steps = int(report.recorded_flag(experiment.pretraining_arguments(0, "hybrid"), "--save_steps"))
        assert preset.steps / save_steps <= 40, name
        seconds_per_step = preset.gpu_seconds_per_step if name == "paper" else preset.cpu_seconds_per_step
        assert save_steps * seconds_per_step <= 5 * 60, name


def test_differing_options_names_options_and_what_precedes_them():
    assert stages.differing_options(["--a", "1", "--b"], ["--b", "--a", "1"]) == []
    assert stages.differing_options(["--a", "1", "2"], ["--a", "1", "--c"]) == ["--a", "--c"]
    leading = stages.differing_options(["python", "--a", "1"], ["torchrun", "--a", "1"])
    assert leading == ["(the arguments before the first option)"]
    assert stages.differing_options(["--save_steps", "50"], ["--save_steps", "1100"]) == []
    # Finished on a GPU in bf16, reported on a CPU computing bf16 (which needs --use_cpu): the precision is the same.
    assert stages.differing_options(["--bf16", "true"], ["--bf16", "true", "--use_cpu", "true"]) == []


def test_a_finished_run_saved_at_another_interval_is_reused_and_one_trained_otherwise_is_not(tmp_path):
    """How often a run saved changes none of its numbers: a run finished under another checkpoint rule (the paper
    preset's runs saved every 50 steps before) stays reusable, while a setting that changes training does not."""
    arguments = dict(preset="paper", train_file="train/*.txt", results_dir=str(tmp_path), stages=["pretrain"])
    experiment = Experiment(ExperimentArguments(**arguments))
    record_finished_runs(experiment)
    path = os.path.join(experiment.run_record(0, "hybrid"), stages.STAGE_RECORD)

    def record_with(option: str, value: str) -> None:
        with open(path) as file:
            record = json.load(file)
        settings = record["settings"]
        settings[settings.index(option) + 1] = value
        with open(path, "w") as file:
            json.dump(record, file)

    record_with("--save_steps", "50")
    record_with("--save_total_limit", "5")
    stages.check_no_stale_stage(experiment)
    # Pinned to a commit of a Hub dataset, to continue a run on the commit it read: forwarded, and nothing goes stale.
    hub = dict(arguments, train_file=None, dataset_name="someone/texts", results_dir=str(tmp_path / "hub"))
    record_finished_runs(Experiment(ExperimentArguments(**hub)))
    pinned = Experiment(ExperimentArguments(**hub, dataset_revision="0123abcd"))
    assert report.recorded_flag(pinned.pretraining_arguments(0, "mlm"), "--dataset_revision") == "0123abcd"
    stages.check_no_stale_stage(pinned)
    # A run that recorded reading that commit stays reusable under it, and is refused under another.
    for objective in ("hybrid", "mlm"):
        with open(os.path.join(pinned.run_record(0, objective), RUN_SETTINGS), "w") as file:
            json.dump({"data": {"train_dataset_revision": "0123abcd"}}, file)
    stages.check_no_stale_stage(pinned)
    moved_on = Experiment(ExperimentArguments(**hub, dataset_revision="4567ef01"))
    with pytest.raises(ValueError, match=r"pretrain hybrid seed 0 \([^)]*\) read commit 0123abcd of the dataset"):
        stages.check_no_stale_stage(moved_on)
    with pytest.raises(ValueError, match="--dataset_revision 0123abcd names a version of a Hub dataset"):
        ExperimentArguments(**arguments, dataset_revision="0123abcd")
    record_with("--learning_rate", "0.1")
    with pytest.raises(
        ValueError, match=r"pretrain hybrid seed 0 \([^)]*\) has other settings \(differing: --learning_rate\)"
    ):
        stages.check_no_stale_stage(experiment)


def test_a_preset_without_objective_learning_rates_trains_both_at_its_learning_rate():
    experiment = Experiment(ExperimentArguments(preset="paper", dataset_name="wikitext"))
    hybrid, mlm = (experiment.pretraining_arguments(0, objective) for objective in ("hybrid", "mlm"))
    assert hybrid[hybrid.index("--learning_rate") + 1] == mlm[mlm.index("--learning_rate") + 1] == "5e-05"


def test_objective_learning_rates_must_name_a_compared_objective():
    with pytest.raises(ValueError, match=r"objective_learning_rates names \['jepa'\]; the objectives are"):
        dataclasses.replace(EXPERIMENT_PRESETS["cpu"], objective_learning_rates={"jepa": 5e-4})


def test_max_steps_replaces_the_presets_steps_everywhere_they_are_used():
    preset = EXPERIMENT_PRESETS["cpu"]
    experiment = Experiment(ExperimentArguments(preset="cpu", train_file="train/*.txt", max_steps=2000))
    arguments = experiment.pretraining_arguments(0, "mlm")
    assert arguments[arguments.index("--max_steps") + 1] == "2000"
    assert arguments[arguments.index("--eval_steps") + 1] == "500"
    snapshots = arguments[arguments.index("--snapshot_steps") + 1 : arguments.index("--eval_strategy")]
    assert snapshots == ["0", "500", "1000", "1500"]
    assert experiment.preset.estimated_hours("cpu") > preset.estimated_hours("cpu")
    assert EXPERIMENT_PRESETS["cpu"] == preset  # the preset itself is untouched
    with pytest.raises(ValueError, match="--max_steps must be at least 1"):
        ExperimentArguments(preset="cpu", max_steps=0)


@pytest.mark.parametrize(
    "preset, flag, native, expected",
    [
        ("cpu", "auto", True, True),
        ("cpu", "auto", False, False),
        ("cpu", "false", True, False),
        ("demo", "auto", True, False),
        ("demo", "true", False, True),
        ("paper", "auto", False, True),
    ],
)
def test_pretraining_precision_follows_the_preset_the_device_and_the_flag(
    tmp_path, monkeypatch, preset, flag, native, expected
):
    monkeypatch.setattr(plan, "native_bf16", lambda device: native)
    (tmp_path / "train.txt").write_text("Some text.\n")
    experiment = Experiment(ExperimentArguments(preset=preset, train_file=str(tmp_path / "train.txt"), bf16=flag))
    assert experiment.bf16 is expected
    # The command line is one run_pretrain.py accepts on this machine (transformers refuses bf16 on a CPU unless told
    # the device is one), and it trains in the precision decided.
    _, _, training_args = parse_pretraining_arguments(experiment.pretraining_arguments(0, "hybrid"))
    assert training_args.bf16 is expected
    # Only native bf16 shortens the estimate: emulated, it is slower than fp32, so the long-run refusal must not
    # let an emulated run past on the strength of the native speed-up.
    fp32_hours = experiment.preset.estimated_hours(experiment.device)
    assert (experiment.estimated_hours() < fp32_hours) is (expected and native and experiment.device == "cpu")
    # Emulated bf16 is many times slower than fp32: its estimate must say so, for the long-run refusal to see it.
    assert (experiment.estimated_hours() > fp32_hours) is (expected and not native and experiment.device == "cpu")


def record_finished_runs(experiment: Experiment) -> None:
    """Records of seed 0's two runs as the experiment's pretraining stage leaves them finished, with its settings."""
    for objective in ("hybrid", "mlm"):
        record = experiment.run_record(0, objective)
        os.makedirs(record)
        for name, content in {
            "train_results.json": {},
            "trainer_state.json": {"global_step": 1200, "max_steps": 1200},
            "experiment_stage.json": {"settings": experiment.pretraining_settings(0, objective), "seconds": 1.0},
        }.items():
            with open(os.path.join(record, name), "w") as file:
                json.dump(content, file)


def test_an_unfinished_run_started_with_other_settings_is_refused_before_any_stage(tmp_path, monkeypatch):
    """run_pretrain would refuse to continue it only once its stage came, naming --overwrite_output_dir, which the
    experiment does not take."""
    monkeypatch.setattr(plan, "native_bf16", lambda device: False)
    arguments = dict(
        preset="cpu",
        train_file="train/*.txt",
        results_dir=str(tmp_path / "results"),
        work_dir=str(tmp_path / "work"),
        stages=["pretrain"],
    )
    fp32 = Experiment(ExperimentArguments(**arguments))
    stages.start_run(fp32, 0, "hybrid")
    os.makedirs(os.path.join(fp32.checkpoint(0, "hybrid"), "checkpoint-642"))  # stopped midway
    stages.check_no_stale_stage(fp32)  # continued with the settings it started with

    monkeypatch.setattr(plan, "native_bf16", lambda device: True)
    with pytest.raises(
        ValueError,
        match=r"unfinished run in \S*hybrid was started with other settings \(differing: --bf16\).*--bf16 true or",
    ):
        stages.check_no_stale_stage(Experiment(ExperimentArguments(**arguments)))
    stages.check_no_stale_stage(Experiment(ExperimentArguments(**arguments, bf16="false")))
    shutil.rmtree(fp32.checkpoint(0, "hybrid"))  # deleted, as the error says: the run starts anew
    stages.check_no_stale_stage(Experiment(ExperimentArguments(**arguments)))


def test_a_finished_run_of_the_other_precision_is_refused_naming_the_flag(tmp_path, monkeypatch):
    monkeypatch.setattr(plan, "native_bf16", lambda device: False)
    arguments = dict(preset="cpu", train_file="train/*.txt", results_dir=str(tmp_path), stages=["pretrain"])
    fp32 = Experiment(ExperimentArguments(**arguments))
    record_finished_runs(fp32)
    stages.check_no_stale_stage(fp32)  # the same machine: nothing stale

    monkeypatch.setattr(plan, "native_bf16", lambda device: True)
    with pytest.raises(ValueError, match=r"pretrain hybrid seed 0 .*precision differs.*--bf16 true or false"):
        stages.check_no_stale_stage(Experiment(ExperimentArguments(**arguments)))
    stages.check_no_stale_stage(Experiment(ExperimentArguments(**arguments, bf16="false")))

    # The converse: runs finished in bf16, now on a CPU that emulates it. The flag the stale check names passes the
    # long-run refusal too, since nothing is pretrained again (only runs still to train would take the long estimate).
    bf16_runs = dict(arguments, results_dir=str(tmp_path / "bf16"))
    record_finished_runs(Experiment(ExperimentArguments(**bf16_runs)))
    monkeypatch.setattr(plan, "native_bf16", lambda device: False)
    emulated = Experiment(ExperimentArguments(**bf16_runs, bf16="true"))
    stages.check_no_stale_stage(emulated)
    stages.check_budget(emulated)
    with pytest.raises(SystemExit, match="This CPU emulates bf16"):  # runs still to train are refused
        stages.check_budget(
            Experiment(ExperimentArguments(**dict(arguments, results_dir=str(tmp_path / "new")), bf16="true"))
        )


def test_the_hybrid_minus_mlm_difference_is_taken_per_seed(tmp_path):
    """The two encoders of a seed share initialisation, data order and masks: a hybrid one point above MLM-only in
    every seed is a difference of 1 ± 0, however much the seeds differ from each other."""
    experiment = Experiment(ExperimentArguments(preset="cpu", train_file="train/*.txt", results_dir=str(tmp_path)))
    experiment.args.seeds = 2
    scores = {
        0: {"hybrid": 0.61, "mlm": 0.60, "random-init": 0.55},
        1: {"hybrid": 0.71, "mlm": 0.70, "random-init": 0.56},
    }
    for seed, by_label in scores.items():
        models = [
            {
                "model": experiment.models(seed)[label],
                "tasks": {"sst2": {"poolings": {"mean": {"scores": {"validation": {"accuracy": score}}}}}},
            }
            for label, score in by_label.items()
        ]
        os.makedirs(experiment.seed_results(seed, "probe"))
        with open(os.path.join(experiment.seed_results(seed, "probe"), "results.json"), "w") as file:
            json.dump({"models": models}, file)
    (row,) = report.probe_comparison(experiment)
    assert row["paired_difference"]["mean"] == pytest.approx(1.0) == pytest.approx(row["difference"])
    assert row["paired_difference"]["std"] == pytest.approx(0.0, abs=1e-9)
    assert row["hybrid"]["std"] == pytest.approx(7.07, abs=0.01) and row["exceeds_seed_spread"] is False


def test_both_objectives_see_the_same_mlm_masks(tokenizer):
    """The collator draws MLM masks before JEPA blocks from the same seeded stream, so the MLM-only baseline is
    corrupted exactly like the hybrid run."""
    examples = [{"input_ids": [2] + [5 + (i * 7 + j) % 40 for j in range(20)] + [3]} for i in range(6)]
    batches = []
    for objective in ("hybrid", "mlm"):
        collator = DataCollatorForPrJepa(tokenizer, tiny_config(objective=objective), seed=11)
        collator.set_position(2, 5)
        batches.append(collator(examples))
    assert torch.equal(batches[0]["masked_input_ids"], batches[1]["masked_input_ids"])
    assert torch.equal(batches[0]["labels"], batches[1]["labels"])


def test_emulated_bf16_is_refused_before_starting_naming_fp32(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(plan, "native_bf16", lambda device: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the refusal concerns CPU-only machines
    arguments = dict(preset="cpu", train_file=str(tmp_path / "train.txt"))
    (tmp_path / "train.txt").write_text("Some text.\n")
    experiment = Experiment(ExperimentArguments(**arguments, bf16="true"))
    fp32_hours = experiment.preset.estimated_hours("cpu")
    with pytest.raises(
        SystemExit, match=rf"emulates bf16 \(--bf16 true\): pass --bf16 false .*about {fp32_hours:.1f} h"
    ):
        stages.check_budget(experiment)
    assert "emulated on this device" in capsys.readouterr().out
    stages.check_budget(Experiment(ExperimentArguments(**arguments, bf16="false")))
    stages.check_budget(Experiment(ExperimentArguments(**arguments, bf16="true", allow_long_run=True)))


def test_a_preset_too_slow_for_this_machine_is_refused_before_starting(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the refusal concerns CPU-only machines
    experiment = Experiment(ExperimentArguments(preset="paper"))
    with pytest.raises(SystemExit, match=r"about \d+ h .*days.* --allow_long_run"):
        stages.check_budget(experiment)
    assert "Estimated wall time on this machine (cpu)" in capsys.readouterr().out
    stages.check_budget(Experiment(ExperimentArguments(preset="paper", allow_long_run=True)))
    stages.check_budget(Experiment(ExperimentArguments(preset="paper", stages=["report"])))


def test_an_accelerate_launcher_that_would_start_one_cpu_process_is_refused_before_the_hub(tmp_path, monkeypatch):
    """Without a distributed mode (--multi_gpu, or a config file whose distributed_type sets one) or an mpirun
    hostfile, `accelerate launch --num_processes N` starts one process on a machine without GPUs (measured: WORLD_SIZE
    unset), which would pretrain alone at a fraction of the intended speed."""
    if torch.cuda.is_available():
        pytest.skip("the refusal concerns machines without GPUs; with GPUs accelerate enables --multi_gpu itself")
    default_config = tmp_path / "default-config.yaml"
    for module in ("accelerate.commands.launch", "accelerate.commands.config.config_args"):
        monkeypatch.setattr(f"{module}.default_config_file", str(default_config))
    monkeypatch.setattr(sys.modules["prjepa.experiment"], "check_hub_reachable", lambda *a: pytest.fail("Hub checked"))
    folders = ["--results_dir", str(tmp_path / "results"), "--work_dir", str(tmp_path / "work")]
    for launcher in ("accelerate launch --num_processes 2", "/venv/bin/accelerate-launch --num-processes=4 --debug"):
        with pytest.raises(
            SystemExit, match=r"would start one process, not \d.*--launcher 'accelerate launch --multi_gpu"
        ):
            run_experiment(["--preset", "cpu", "--launcher", launcher, *folders])
    assert not (tmp_path / "results").exists()

    def check(launcher: str, **arguments) -> None:
        stages.check_launcher(Experiment(ExperimentArguments(preset="cpu", launcher=launcher, **arguments)))

    results = dict(results_dir=str(tmp_path / "results"), work_dir=str(tmp_path / "work"))
    (tmp_path / "multi-gpu.yaml").write_text("distributed_type: MULTI_GPU\nnum_processes: 2\n")
    # What `accelerate config default` writes on a CPU machine, and a multi-CPU config without a hostfile.
    (tmp_path / "one-process.yaml").write_text("distributed_type: 'NO'\nnum_processes: 2\n")
    (tmp_path / "multi-cpu.yaml").write_text("distributed_type: MULTI_CPU\nnum_processes: 2\n")
    (tmp_path / "hostfile").write_text("localhost slots=2\n")
    for launcher in (
        "accelerate launch --multi_gpu --num_processes 2",
        "accelerate launch --num_processes 1",
        f"accelerate launch --config_file {tmp_path / 'multi-gpu.yaml'}",
        f"accelerate launch --mpirun_hostfile {tmp_path / 'hostfile'} --num_processes 2",
        "torchrun --nproc_per_node 2",
    ):
        check(launcher, **results)
    for launcher in (
        f"accelerate launch --config_file {tmp_path / 'one-process.yaml'}",
        f"accelerate launch --config_file {tmp_path / 'multi-cpu.yaml'}",
        f"accelerate launch --cpu --config_file {tmp_path / 'multi-gpu.yaml'}",
        "env OMP_NUM_THREADS=1 accelerate launch --num_processes 2",
        "env -i -u HOME OMP_NUM_THREADS=1 /usr/bin/accelerate launch --num_processes 2",
        f"{sys.executable} -m accelerate.commands.launch --num_processes 2",
    ):
        with pytest.raises(SystemExit, match="would start one process, not 2"):
            check(launcher, **results)
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        check(f"accelerate launch --config_file {tmp_path / 'missing.yaml'} --num_processes 2", **results)
    # Nothing left to pretrain: the launcher starts nothing.
    check("accelerate launch --num_processes 2", **results, stages=["report"])
    # A default config file of the user's decides how accelerate launches, unless --cpu sets it aside.
    default_config.write_text("distributed_type: MULTI_GPU\n")
    check("accelerate launch --num_processes 2", **results)
    with pytest.raises(SystemExit, match="would start one process, not 2"):
        check("accelerate launch --cpu --num_processes 2", **results)


def test_training_text_that_cannot_be_read_is_refused_before_any_stage_or_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules["prjepa.experiment"], "pretrain", lambda *args: pytest.fail("a stage started"))
    folders = ["--results_dir", str(tmp_path / "results"), "--work_dir", str(tmp_path / "work")]
    local = ["--preset", "demo", "--glue_path", plan.DEMO_GLUE, "--tokenizer_name", plan.DEMO_TOKENIZER, *folders]
    with pytest.raises(ValueError, match=r"--train_file .*/missing/\*\.txt matches no file"):
        run_experiment([*local, "--train_file", str(tmp_path / "missing" / "*.txt")])
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match=r"--validation_file: .*empty\.txt is empty"):
        run_experiment([*local, "--train_file", plan.DEMO_TRAIN_FILE, "--validation_file", str(tmp_path / "empty.txt")])
    # So is a GLUE copy that lacks a task the measuring stages read: before the encoders are pretrained for them.
    shutil.copytree(plan.DEMO_GLUE, tmp_path / "glue", ignore=shutil.ignore_patterns("stsb"))
    without_stsb = [*local, "--glue_path", str(tmp_path / "glue"), "--train_file", plan.DEMO_TRAIN_FILE]
    with pytest.raises(ValueError, match=r"The local GLUE copy '.*/glue' lacks 'stsb': it has no stsb/ folder"):
        run_experiment(without_stsb)
    # The shell's expansion of an unquoted glob, as run_pretrain names it (one parser for every script).
    texts = [str(tmp_path / "empty.txt"), str(tmp_path / "glue" / "README.md")]
    with pytest.raises(ValueError, match=r"--train_file takes one value, but 2 paths followed it .*unquoted glob"):
        run_experiment([*local, "--train_file", *texts])
    # A results or work folder in the place of a file: both made only once the first stage starts.
    (tmp_path / "file").write_text("")
    demo = [*local, "--train_file", plan.DEMO_TRAIN_FILE]
    with pytest.raises(ValueError, match=r"--results_dir .*file/results/demo lies under .*file, a file, not a folder"):
        run_experiment([*demo, "--results_dir", str(tmp_path / "file" / "results")])
    with pytest.raises(ValueError, match=r"--work_dir .*file/demo lies under .*file, a file, not a folder: choose"):
        run_experiment([*demo, "--work_dir", str(tmp_path / "file")])
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "mine").write_text("")  # the run's own folder
    with pytest.raises(ValueError, match=r"--results_dir .*results/mine is a file, not a folder"):
        run_experiment([*demo, "--run_name", "mine"])
    (tmp_path / "results" / "mine").unlink()
    (tmp_path / "results").rmdir()
    assert not (tmp_path / "results").exists() and not (tmp_path / "work").exists()
    # Only an unfinished pretraining run reads the text: reporting finished stages does not.
    stages.check_text_files(
        Experiment(ExperimentArguments(preset="demo", train_file=str(tmp_path / "moved.txt"), stages=["report"]))
    )


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_stopped_experiment_stops_its_running_stage_instead_of_leaving_it_behind(tmp_path, signal_number):
    """`kill PID` of the experiment alone: its stage gets the signal and is waited for, so that nothing goes on
    writing into the folders a rerun resumes."""
    stage = tmp_path / "stage.py"
    stage.write_text(
        "import os, pathlib, signal, sys\n"
        "here = pathlib.Path(sys.argv[1])\n"
        "def stop(number, frame):\n"
        "    here.joinpath('stopped').write_text(signal.Signals(number).name)\n"
        "    sys.exit(128 + number)\n"
        "for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):\n"
        "    signal.signal(number, stop)\n"
        "here.joinpath('pid.partial').write_text(str(os.getpid()))\n"
        "os.replace(here / 'pid.partial', here / 'pid')\n"  # whole once it exists: the signal may come at once
        "while True:\n"
        "    signal.pause()\n"
    )
    experiment = tmp_path / "experiment.py"
    experiment.write_text(
        "import sys\n"
        "from prjepa.experiment.stages import run_stage\n"
        f"command = [sys.executable, {str(stage)!r}, {str(tmp_path)!r}]\n"
        f"run_stage('pretrain hybrid seed 0', {str(tmp_path / 'record')!r}, [], 'done', command)\n"
    )
    repository = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # this checkout's package, not another's
    environment = {**os.environ, "PYTHONPATH": repository}
    parent = subprocess.Popen([sys.executable, str(experiment)], stderr=subprocess.PIPE, text=True, env=environment)
    deadline = time.monotonic() + 120  # a parent that hangs before its stage starts fails the test, not the suite
    try:
        while not (tmp_path / "pid").exists():  # the stage has started and set its handlers
            if time.monotonic() > deadline:
                pytest.fail("the experiment's stage did not start within 120 s")
            # Waiting on the parent, not spinning: on two cores a busy loop would slow the start it waits for.
            with contextlib.suppress(subprocess.TimeoutExpired):
                parent.wait(timeout=0.05)
                pytest.fail(f"the experiment ended before its stage started: {parent.stderr.read()}")
        parent.send_signal(signal_number)
        _, errors = parent.communicate(timeout=60)
    finally:
        if (tmp_path / "pid").exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int((tmp_path / "pid").read_text()), signal.SIGKILL)
        parent.kill()
    # The stage got the signal and ended before its parent, which names the rerun.
    assert (tmp_path / "stopped").read_text() == signal.Signals(signal_number).name
    assert parent.returncode == 1
    assert f"[pretrain hybrid seed 0] stopped by {signal.Signals(signal_number).name}: rerun the same command" in errors


def test_token_count_labels_tell_close_points_apart_and_keep_two_decimals_otherwise():
    assert report.token_count_labels([0, 1_228_800, 2_457_600]) == ["0.00M tokens", "1.23M tokens", "2.46M tokens"]
    assert report.token_count_labels([0, 4_096, 8_192, 12_288]) == [
        "0.000M tokens",
        "0.004M tokens",
        "0.008M tokens",
        "0.012M tokens",
    ]


def test_seed_statistics_and_the_spread_mark():
    tight = mean_and_spread([70.0, 70.2])
    other = mean_and_spread([60.0, 60.4])
    assert tight["mean"] == pytest.approx(70.1) and tight["std"] == pytest.approx(0.1414, rel=1e-3)
    assert report.exceeds_spread(tight, other) is True
    assert report.exceeds_spread(tight, mean_and_spread([69.0, 71.0])) is False
    assert report.exceeds_spread(mean_and_spread([1.0]), other) is None
    # A collapsed encoder's constant predictions give a NaN correlation: the seed statistics say NaN and the mark is
    # unknown, instead of the report stopping (statistics.stdev raises on NaN in Python 3.11).
    collapsed = mean_and_spread([math.nan, 59.0, 60.0])
    assert math.isnan(collapsed["mean"]) and math.isnan(collapsed["std"]) and len(collapsed["values"]) == 3
    assert report.exceeds_spread(collapsed, other) is None and report.exceeds_spread(other, collapsed) is None


@pytest.fixture(scope="module")
def tiny_glue(tmp_path_factory):
    """sst2 and stsb laid out like nyu-mll/glue, with text the tiny tokenizer knows."""
    root = tmp_path_factory.mktemp("glue")

    def sentences(size, offset=0):
        return [" ".join(WORDS[(i * 3 + j + offset) % len(WORDS)] for j in range(4 + i % 5)) for i in range(size)]

    sizes = {"train": 48, "validation": 24}
    write_glue_folder(
        root,
        "sst2",
        {split: {"sentence": sentences(n), "label": [i % 2 for i in range(n)]} for split, n in sizes.items()},
        ClassLabel(names=["negative", "positive"]),
    )
    write_glue_folder(
        root,
        "stsb",
        {
            split: {"sentence1": sentences(n), "sentence2": sentences(n, 5), "label": [float(i % 6) for i in range(n)]}
            for split, n in sizes.items()
        },
        Value("float32"),
    )
    return root


@pytest.fixture
def tiny_preset(monkeypatch):
    preset = ExperimentPreset(
        description="tiny test budget",
        model_preset="mini",
        max_seq_length=24,
        per_device_train_batch_size=4,
        max_steps=3,
        learning_rate=1e-3,
        warmup_steps=0.0,
        lr_scheduler_type="linear",
        weight_decay=0.0,
        # 128 positions: the probe reads up to 128 tokens per sequence.
        config_overrides="hidden_size=32,num_hidden_layers=2,num_attention_heads=4,intermediate_size=64,"
        "predictor_hidden_size=16,predictor_num_hidden_layers=2,max_position_embeddings=128",
        probe_tasks=("sst2", "stsb"),
        probe_max_train_samples=40,
        analysis_tasks=("sst2",),
        analysis_max_samples=24,
        analysis_poolings=("mean", "weighted"),
        cpu_seconds_per_step=1.0,
        evaluation_seconds=60,
    )
    monkeypatch.setitem(EXPERIMENT_PRESETS, "tiny", preset)
    return preset


def test_experiment_end_to_end_then_resumed_without_recomputing(
    tmp_path, tiny_glue, tiny_preset, tokenizer, capsys, monkeypatch
):
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    (tmp_path / "train.txt").write_text("\n".join(" ".join(WORDS[i:] + WORDS[:i]) for i in range(40)) + "\n")
    monkeypatch.chdir(tmp_path)
    argv = [
        "--preset",
        "tiny",
        "--train_file",
        "train.txt",
        "--validation_file",
        "train.txt",
        "--glue_path",
        str(tiny_glue),
        "--tokenizer_name",
        str(tmp_path / "tokenizer"),
        "--keep_freed_memory",
        "true",
    ]
    run_experiment(argv)

    results = tmp_path / "results" / "tiny"
    summary = json.loads((results / "comparison.json").read_text())
    assert {(row["task"], row["metric"]) for row in summary["probe"]} >= {("sst2", "accuracy"), ("stsb", "spearmanr")}
    assert summary["tokens_seen"]["hybrid"] == summary["tokens_seen"]["mlm"]
    assert len(summary["tokens_seen"]["mlm"]) == 1 and summary["tokens_seen"]["mlm"][0] > 0
    assert [(row["dataset"], row["pooling"]) for row in summary["uniformity"]] == [
        ("sst2", "mean"),
        ("sst2", "weighted"),
    ]
    table = (results / "comparison.md").read_text()
    sst2 = next(row for row in summary["probe"] if row["task"] == "sst2" and row["metric"] == "accuracy")
    assert f"| sst2 | accuracy | {sst2['hybrid']['mean']:.1f} | {sst2['mlm']['mean']:.1f} |" in table
    mlm_loss = summary["runs"]["mlm"]["eval_mlm_loss"]["mean"]
    assert f"| MLM-only | {tiny_preset.learning_rate:g} | {mlm_loss:.3f} |" in table  # as the run recorded it
    commands = (results / "commands.sh").read_text()
    assert "--objective hybrid" in commands and "--objective mlm" in commands and "run_glue_probe.py" in commands
    pretraining = [line for line in commands.splitlines() if "run_pretrain.py" in line]
    assert len(pretraining) == 2 and all(
        line.startswith(f"GLIBC_TUNABLES={plan.KEEP_FREED_MEMORY} ") for line in pretraining
    )
    assert summary["machines"] == [this_machine()] and summary["wall_hours"] > 0

    # The random-init control is the runs' shared initialisation, a third column everywhere.
    assert f"| {sst2['random-init']['mean']:.1f} |" in table
    assert sst2["gain_over_control"]["hybrid"]["mean"] == pytest.approx(
        sst2["hybrid"]["mean"] - sst2["random-init"]["mean"]
    )
    uniformity = summary["uniformity"][0]
    assert set(uniformity["centred_uniformity"]) == set(uniformity["anisotropy"]) == {"hybrid", "mlm", "random-init"}
    hybrid_start = load_file(
        str(tmp_path / "experiments" / "tiny" / "seed-0" / "hybrid" / "snapshot-0" / "model.safetensors")
    )
    control = load_file(str(tmp_path / "experiments" / "tiny" / "seed-0" / "mlm" / "snapshot-0" / "model.safetensors"))
    for key, value in control.items():
        if key.startswith("prjepa."):
            torch.testing.assert_close(hybrid_start[key], value, rtol=0, atol=0)
    # Curves: the initialisation, the kept snapshots and the finished encoder, in step order; step 0 is the control.
    for task, metric in (("sst2", "accuracy"), ("stsb", "spearmanr")):
        for objective in ("hybrid", "mlm"):
            points = summary["curves"][task][objective]
            assert [point["step"] for point in points] == [0, 1, 2, 3]
            assert [point["tokens"] for point in points] == sorted(point["tokens"] for point in points)
            control_score = next(row for row in summary["probe"] if (row["task"], row["metric"]) == (task, metric))
            assert points[0]["mean"] == pytest.approx(control_score["random-init"]["mean"])
            assert points[-1]["mean"] == pytest.approx(control_score[objective]["mean"])
    assert summary["training_logs"]["hybrid"]["jepa_weight"] and "jepa_loss" not in summary["training_logs"]["mlm"]
    assert (
        summary["runs"]["mlm"]["eval_mlm_loss"]["mean"] > 0
        and summary["runs"]["hybrid"]["tokens_per_second"]["mean"] > 0
    )
    assert (results / "probe_curves.png").stat().st_size > 0 and (results / "training_logs.png").stat().st_size > 0

    stamps = {path: path.stat().st_mtime_ns for path in (tmp_path / "experiments").rglob("model.safetensors")}
    capsys.readouterr()
    run_experiment(argv)
    # Two pretraining runs, probe, analysis, curves.
    assert capsys.readouterr().out.count("finished earlier, reused") == 5
    assert stamps == {path: path.stat().st_mtime_ns for path in stamps}

    # The results folder alone carries every record: with the work folder gone, a rerun reuses every stage and the
    # report comes out the same.
    comparison = (results / "comparison.md").read_text()
    shutil.move(tmp_path / "experiments", tmp_path / "elsewhere")
    capsys.readouterr()
    run_experiment(argv)
    assert capsys.readouterr().out.count("finished earlier, reused") == 5
    assert (results / "comparison.md").read_text() == comparison
    shutil.move(tmp_path / "elsewhere", tmp_path / "experiments")

    # A report alone reads every finished stage from disk, the curves included, and checks the pretraining records
    # against the settings first: a report never states settings its runs were not made with.
    run_experiment([*argv, "--stages", "report"])
    assert (results / "comparison.md").read_text() == comparison
    # commands.sh's first line reruns the whole experiment, not the report alone that wrote it.
    assert (results / "commands.sh").read_text().splitlines()[0] == "python run_experiment.py " + shlex.join(argv)
    assert json.loads((results / "comparison.json").read_text())["runs"]["hybrid"]["precisions"] == ["fp32"]
    with pytest.raises(ValueError, match=r"pretrain hybrid seed 0 \(.*\) has other settings") as refusal:
        run_experiment([*argv, "--stages", "report", "--max_steps", "7"])
    # In the same error, every stage that measured the encoders to be pretrained again (not in a second one later).
    for stage in ("probe", "analysis", "curves"):
        assert re.search(
            rf"{stage} seed 0 \(.*?\) measured encoders that are to be pretrained again", str(refusal.value)
        )

    # A point of the curves that was not kept is named, not silently dropped from the curve, before any stage runs.
    shutil.rmtree(results / "seed-0" / "curves")
    shutil.move(results / "seed-0" / "probe", tmp_path / "probe")
    shutil.rmtree(tmp_path / "experiments" / "tiny" / "seed-0" / "hybrid" / "snapshot-1")
    with pytest.raises(FileNotFoundError, match=r"missing: hybrid step 1 \(.*its record \(among .*pretrain-hybrid"):
        run_experiment([*argv, "--stages", "probe", "curves"])
    assert not (results / "seed-0" / "probe").exists()
    shutil.move(tmp_path / "probe", results / "seed-0" / "probe")
    # A report without curves gives no command for them.
    assert (results / "commands.sh").read_text().count("run_glue_probe.py") == 2  # the probe's and the curves'
    run_experiment([*argv, "--stages", "report"])
    assert (results / "commands.sh").read_text().count("run_glue_probe.py") == 1

    with pytest.raises(ValueError, match=r"pretrain hybrid seed 0 \(.*\) has other settings \(differing: .*tokenizer"):
        run_experiment(argv[:-2] + ["--tokenizer_name", str(tmp_path / "tokenizer") + "/"])

    # An encoder's weights replaced in the work folder after its run recorded them (trained again outside the
    # experiment), or its config or tokenizer edited: what the finished stages measured is not what the folder holds
    # now. Refused before any stage runs, naming the file.
    seed_work = tmp_path / "experiments" / "tiny" / "seed-0"
    changes = {
        seed_work / "mlm" / "model.safetensors": lambda: (seed_work / "hybrid" / "model.safetensors").read_bytes(),
        seed_work / "hybrid" / "config.json": lambda: (
            (seed_work / "hybrid" / "config.json").read_bytes().replace(b'"gelu"', b'"relu"')
        ),
        seed_work / "mlm" / "snapshot-1" / "tokenizer.json": lambda: (
            (seed_work / "mlm" / "snapshot-1" / "tokenizer.json").read_bytes().replace(b'"the"', b'"teh"')
        ),
    }
    for path, changed in changes.items():
        original, replacement = path.read_bytes(), changed()
        assert replacement != original
        path.write_bytes(replacement)
        relative = re.escape(str(path.relative_to(tmp_path)))
        with pytest.raises(ValueError, match=rf"{relative} differs from what its run recorded"):
            run_experiment(argv)
        path.write_bytes(original)
    # A tokenizer file deleted (loading then reads the others alone) or added (its entries then count too) can change
    # how texts are tokenized as surely as an edit.
    tokenizer_file = seed_work / "hybrid" / "tokenizer.json"
    shutil.move(tokenizer_file, tmp_path / "tokenizer.json")
    gone = re.escape(str(tokenizer_file.relative_to(tmp_path)))
    with pytest.raises(ValueError, match=rf"{gone} is gone, which its run recorded"):
        run_experiment(argv)
    shutil.move(tmp_path / "tokenizer.json", tokenizer_file)
    added = seed_work / "mlm" / "special_tokens_map.json"
    assert not added.exists()
    added.write_text(json.dumps({"mask_token": "[UNK]"}))
    with pytest.raises(
        ValueError, match=rf"{re.escape(str(added.relative_to(tmp_path)))} was added after its run recorded"
    ):
        run_experiment(argv)
    added.unlink()

    # Encoders to be pretrained again (a run's record gone) make every stage that measured them stale: refused,
    # all of them named, before any stage runs.
    stamps = {path: path.stat().st_mtime_ns for path in (tmp_path / "experiments").rglob("model.safetensors")}
    shutil.rmtree(results / "seed-0" / "pretrain-mlm")
    with pytest.raises(ValueError, match=r"probe seed 0 .*pretrained again; analysis seed 0 .*pretrained again"):
        run_experiment(argv)
    assert stamps == {path: path.stat().st_mtime_ns for path in stamps}
    # Without them, measuring a run not recorded is refused: its results could never be reported.
    for stage in ("probe", "analysis"):
        shutil.rmtree(results / "seed-0" / stage)
    with pytest.raises(ValueError, match=r"The probe of seed 0 measures .* not recorded .*add pretrain to --stages"):
        run_experiment([*argv, "--stages", "probe"])
    assert not (results / "seed-0" / "probe").exists()
    # Before anything is made, for every seed: a new run's folder, or seed 1's probe when seed 0 measures nothing.
    with pytest.raises(ValueError, match=r"The analysis of seed 0 measures .*add pretrain to --stages"):
        run_experiment([*argv, "--run_name", "fresh", "--stages", "analysis", "probe"])
    assert not (results.parent / "fresh").exists()
    # A run of another length left in the work folder is not continued as this one: refused before any stage as
    # started with other settings, and, where the experiment recorded none (an older version), as of another length.
    shutil.rmtree(results / "seed-0" / "pretrain-hybrid")
    with pytest.raises(ValueError, match=r"seed-0/hybrid was started with other settings \(differing: --max_steps"):
        run_experiment([*argv, "--stages", "pretrain", "--max_steps", "5"])
    for started in seed_work.glob("*-experiment_stage.json"):
        started.unlink()
    with pytest.raises(ValueError, match=r"seed-0/hybrid holds a run of 3 steps, not the 5 steps .*Delete that folder"):
        run_experiment([*argv, "--stages", "pretrain", "--max_steps", "5"])
    assert stamps == {path: path.stat().st_mtime_ns for path in stamps}


def test_a_report_of_unfinished_stages_names_them_and_the_stages_to_add_before_writing_anything(tmp_path, tiny_preset):
    results = tmp_path / "results"
    argv = ["--preset", "tiny", "--results_dir", str(results), "--work_dir", str(tmp_path / "work")]
    with pytest.raises(
        ValueError,
        match=r"not finished: pretrain hybrid seed 0, pretrain mlm seed 0, probe seed 0, analysis seed 0\. Run them "
        "with --stages pretrain probe analysis report ",
    ):
        run_experiment([*argv, "--stages", "report"])
    assert not results.exists()

    # Seed 0 pretrained with its curves measured, seed 1 not begun: the stages asked for count as done, and the
    # curves of seed 1 are missing too, since a report shows every seed's curves or none.
    experiment = Experiment(ExperimentArguments(preset="tiny", results_dir=str(results), seeds=2))
    record_finished_runs(experiment)
    curves = experiment.seed_results(0, "curves")
    os.makedirs(curves)
    for name in ("results.json", stages.STAGE_RECORD):
        with open(os.path.join(curves, name), "w") as file:
            json.dump({"settings": []}, file)
    with pytest.raises(
        ValueError,
        match=r"not finished: pretrain hybrid seed 1, pretrain mlm seed 1, curves seed 1 \(other seeds' curves are "
        r"measured.*\)\. Run them with --stages pretrain probe analysis curves report ",
    ):
        report.check_report_inputs(experiment, ["probe", "analysis", "report"])
    report.check_report_inputs(experiment, ["pretrain", "probe", "analysis", "curves", "report"])


def test_a_finished_measuring_stage_is_stale_once_the_glue_files_it_read_are_replaced(tmp_path, tiny_glue, tiny_preset):
    """Files replaced under the same --glue_path are other data: the stages that read them are named before any stage
    runs, instead of being reused with the scores of data no longer there (the probe's own check of its data is
    never reached, since a finished stage is not run again)."""
    glue = tmp_path / "glue"
    shutil.copytree(tiny_glue, glue)
    arguments = dict(preset="tiny", train_file="train.txt", glue_path=str(glue), results_dir=str(tmp_path / "results"))
    experiment = Experiment(ExperimentArguments(**arguments))
    record_finished_runs(experiment)
    for stage, marker in stages.MEASURING_STAGE_MARKERS.items():
        os.makedirs(experiment.seed_results(0, stage))
        record = {"settings": stages.measuring_settings(experiment, 0, stage), "seconds": 1.0}
        for name, content in {marker: {}, stages.STAGE_RECORD: record}.items():
            with open(os.path.join(experiment.seed_results(0, stage), name), "w") as file:
                json.dump(content, file)
    stages.check_no_stale_stage(Experiment(ExperimentArguments(**arguments)))  # the same data: reused

    validation = glue / "stsb" / "validation-00000-of-00001.parquet"
    rescored = Dataset.from_parquet(str(validation)).map(lambda row: {"label": 5.0 - row["label"]})
    rescored.to_parquet(str(validation))
    # The analysis reads SST-2 alone, which did not change.
    with pytest.raises(
        ValueError,
        match=r"probe seed 0 \([^)]*\) has other settings \(differing: --data_fingerprint\); curves seed 0 \([^)]*\) "
        r"has other settings \(differing: --data_fingerprint\)\. Use another --run_name",
    ):
        stages.check_no_stale_stage(Experiment(ExperimentArguments(**arguments)))


def test_a_preset_by_epochs_keeps_its_snapshots_at_fractions_of_the_steps_it_takes(
    tmp_path, tiny_glue, tiny_preset, tokenizer, monkeypatch
):
    """Training by epochs, a run's steps depend on its data and its number of processes (8 processes take an eighth of
    one's), so the preset's planned steps cannot place its snapshots: the run places them at fractions of the steps it
    takes, and the curves read them from its record."""
    by_epochs = dataclasses.replace(tiny_preset, max_steps=-1, num_train_epochs=1, planned_steps=400)
    monkeypatch.setitem(EXPERIMENT_PRESETS, "tiny", by_epochs)
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    (tmp_path / "train.txt").write_text("\n".join(" ".join(WORDS[i:] + WORDS[:i]) for i in range(40)) + "\n")
    monkeypatch.chdir(tmp_path)
    data = dict(train_file="train.txt", glue_path=str(tiny_glue), tokenizer_name=str(tmp_path / "tokenizer"))
    argv = ["--preset", "tiny", *(part for name, value in data.items() for part in (f"--{name}", value))]
    run_experiment([*argv, "--stages", "pretrain"])

    experiment = Experiment(ExperimentArguments(preset="tiny", **data))
    steps = json.loads((tmp_path / "results" / "tiny" / "seed-0" / "pretrain-mlm" / "trainer_state.json").read_text())
    steps = steps["global_step"]
    assert 4 <= steps < by_epochs.planned_steps
    kept = sorted({round(fraction * steps) for fraction in by_epochs.snapshot_fractions})
    for objective in ("hybrid", "mlm"):
        points = experiment.curve_points(0, objective)
        assert list(points) == [*kept, steps]
        assert all(os.path.isdir(path) for path in points.values())
        assert set(experiment.curve_tokens(0, objective)) == set(points)


def test_speed_and_wall_time_count_every_attempt_of_a_resumed_run(tmp_path, tiny_preset):
    """A run resumed once: its last call trained 100 s of its 400 s, so its speed is tokens / 400 s, and the seed's
    wall time is the finished stages' recorded seconds (last attempts) plus the 300 s of the earlier attempt."""
    args = ExperimentArguments(preset="tiny", results_dir=str(tmp_path), stages=["report"])
    experiment = Experiment(args)
    for objective, (runtime, seconds, stage) in {"hybrid": (100.0, 400.0, 130.0), "mlm": (50.0, 50.0, 70.0)}.items():
        record = experiment.run_record(0, objective)
        os.makedirs(record)
        for name, content in {
            "trainer_state.json": {"num_input_tokens_seen": 8000},
            "train_results.json": {"train_runtime": runtime, "train_seconds": seconds},
            "eval_results.json": {"eval_mlm_loss": 6.0},
            "experiment_stage.json": {"settings": ["--learning_rate", "0.001"], "seconds": stage},
        }.items():
            with open(os.path.join(record, name), "w") as file:
                json.dump(content, file)
    assert report.run_statistics(experiment, "hybrid")["tokens_per_second"]["mean"] == 8000 / 400
    assert report.run_statistics(experiment, "mlm")["tokens_per_second"]["mean"] == 8000 / 50
    for stage, seconds in {"probe": 20.0, "analysis": 30.0}.items():
        os.makedirs(experiment.seed_results(0, stage))
        with open(os.path.join(experiment.seed_results(0, stage), "experiment_stage.json"), "w") as file:
            json.dump({"settings": [], "seconds": seconds}, file)
    assert report.seed_wall_seconds(experiment, 0, with_curves=False) == 130 + 70 + 300 + 20 + 30
    # A stage that found its run finished (its record lost after training) recorded an evaluation's seconds: the
    # run's training time still counts.
    stage_record = os.path.join(experiment.run_record(0, "hybrid"), "experiment_stage.json")
    with open(stage_record, "w") as file:
        json.dump({"settings": ["--learning_rate", "0.001"], "seconds": 5.0}, file)
    assert report.seed_wall_seconds(experiment, 0, with_curves=False) == 400 + 70 + 20 + 30


def test_a_stage_stopped_while_recording_itself_runs_again_instead_of_breaking_the_rerun(tmp_path, monkeypatch):
    stage = tmp_path / "probe"
    command = [sys.executable, "-c", f"open({str(stage / 'results.json')!r}, 'a').write('x')"]
    stage.mkdir()
    with monkeypatch.context() as patch:
        # A value JSON cannot hold stops the writing of the record partway.
        patch.setattr(stages, "this_machine", lambda: {"cpu": object()})
        with pytest.raises(TypeError, match="not JSON serializable"):
            stages.run_stage("probe", str(stage), ["--seed", "0"], "results.json", command)
    assert not stages.finished_stage(str(stage), "results.json")
    assert stages.run_stage("probe", str(stage), ["--seed", "0"], "results.json", command) > 0
    assert json.loads((stage / stages.STAGE_RECORD).read_text())["settings"] == ["--seed", "0"]
    assert (stage / "results.json").read_text() == "xx"
    assert stages.run_stage("probe", str(stage), ["--seed", "0"], "results.json", command) == 0.0  # finished: reused


def test_the_report_names_the_machines_the_stages_ran_on_not_the_one_writing_it(tmp_path):
    here = this_machine()
    elsewhere = {**here, "cpu_count": 64, "gpu": "NVIDIA H200"}
    records = {"pretrain": elsewhere, "probe": here, "analysis": elsewhere, "curves": None}
    for stage, ran_on in records.items():
        (tmp_path / stage).mkdir()
        record = {"settings": [], "seconds": 1.0, **({"machine": ran_on} if ran_on else {})}
        (tmp_path / stage / stages.STAGE_RECORD).write_text(json.dumps(record))
    machines = report.recorded_machines([str(tmp_path / stage) for stage in records])
    # A record from before records named the machine counts as this one.
    assert machines == [elsewhere, here]
    assert report.describe_machines(machines) == f"64 CPU cores and a NVIDIA H200 and on {os.cpu_count()} CPU cores"
    assert report.describe_machines([here, {**here, "platform": "other"}]) == f"{os.cpu_count()} CPU cores"


def test_the_report_states_every_seeds_token_count():
    assert report.describe_counts([4_096, 4_096]) == "4,096"
    assert report.describe_counts([4_911_367, 4_911_313, 4_912_459]) == "4,911,313 to 4,912,459 by seed"


def test_the_published_token_counts_are_the_seeds_run_records():
    results = os.path.join(REPO, "results", "cpu")
    with open(os.path.join(results, "comparison.json")) as file:
        summary = json.load(file)
    for objective, counts in summary["tokens_seen"].items():
        recorded = []
        for seed in range(summary["settings"]["seeds"]):
            with open(os.path.join(results, f"seed-{seed}", f"pretrain-{objective}", "trainer_state.json")) as file:
                recorded.append(json.load(file)["num_input_tokens_seen"])
        assert counts == recorded


def test_readme_results_are_the_committed_result_files():
    """The README embeds results/cpu/comparison.md (and any other committed result table) verbatim between markers."""
    readme = open(os.path.join(REPO, "README.md")).read()
    embedded = dict(re.findall(r"<!-- (results/[^ ]+\.md) -->\n(.*?)<!-- end -->", readme, re.S))
    assert "results/cpu/comparison.md" in embedded, "README.md lacks the results block"
    for path, text in embedded.items():
        with open(os.path.join(REPO, path)) as file:
            assert text == file.read(), f"README.md's copy of {path} differs from the file"


def test_the_committed_results_are_marked_published():
    """So that the README's reproduction command writes `cpu-reproduction` instead of reusing or rewriting them."""
    assert os.path.exists(os.path.join(REPO, "results", "cpu", plan.PUBLISHED))
    results = os.path.join(REPO, "results")
    assert ExperimentArguments(preset="cpu", results_dir=results).run_name == "cpu-reproduction"


def test_a_published_run_is_never_the_default_output(tmp_path):
    results = tmp_path / "results"
    assert ExperimentArguments(preset="cpu", results_dir=str(results)).run_name == "cpu"
    (results / "cpu").mkdir(parents=True)
    (results / "cpu" / plan.PUBLISHED).write_text("published")
    assert ExperimentArguments(preset="cpu", results_dir=str(results)).run_name == "cpu-reproduction"
    assert ExperimentArguments(preset="cpu", results_dir=str(results), run_name="cpu").run_name == "cpu"


def test_a_measuring_stage_counts_as_finished_by_the_file_its_script_writes_last():
    from prjepa.geometry import analysis
    from prjepa.probing import glue_probe

    written = {"probe": glue_probe.RESULT_FILES[0], "analysis": analysis.RESULT_FILES[0]}
    assert stages.MEASURING_STAGE_MARKERS == {**written, "curves": written["probe"]}


def test_a_second_experiment_of_a_run_another_process_is_running_stops_before_any_stage(tmp_path, monkeypatch):
    import fcntl

    results = tmp_path / "results" / "cpu"
    results.mkdir(parents=True)
    monkeypatch.setattr(sys.modules["prjepa.experiment"], "check_launcher", lambda *a: pytest.fail("checked on"))
    holder = os.open(results, os.O_RDONLY)  # as the first experiment's process holds it
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        with pytest.raises(ValueError, match=r"Another process is running in --results_dir/--run_name .*results/cpu"):
            run_experiment(["--preset", "cpu", "--results_dir", str(tmp_path / "results"), "--work_dir", str(tmp_path)])
    finally:
        os.close(holder)
    assert os.listdir(results) == []
