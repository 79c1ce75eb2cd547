"""The experiment's curves: each task's scored split read, a missing point named; in the plots objectives that coincide
stay visible, each score gets the chance line of the metric plotted, and legends sit beside the axes."""

import io
import json
import os
import subprocess
import sys

import pytest

from prjepa.curves import TRAINING_LOG_KEYS, plot_probe_curves, plot_training_logs, probe_curves


def points(metric: str, scores: list[float]) -> list[dict]:
    return [
        {"step": step, "tokens": 4096 * step, "metric": metric, "mean": score, "std": 1.0, "values": [score]}
        for step, score in zip((0, 10, 20), scores)
    ]


def lines_by_label(axes) -> dict:
    return {line.get_label(): line for line in axes.get_lines()}


def assert_apart(first, second) -> None:
    assert first.get_marker() != second.get_marker() and first.get_linestyle() != second.get_linestyle()


def test_objectives_that_coincide_keep_their_own_marker_and_line_style():
    curve = points("accuracy", [50.0, 60.0, 70.0])
    lines = lines_by_label(plot_probe_curves({"sst2": {"hybrid": curve, "mlm": curve}}, {}).axes[0])
    assert_apart(lines["hybrid"], lines["mlm"])
    log = {"mlm_loss": [{"step": step, "mean": 7.0, "std": 0.0, "values": [7.0]} for step in range(0, 100, 5)]}
    logs = plot_training_logs({"hybrid": log, "mlm": log})
    lines = lines_by_label(logs.axes[list(TRAINING_LOG_KEYS).index("mlm_loss")])
    assert_apart(lines["hybrid"], lines["mlm"])


def test_a_correlation_has_its_chance_line_at_zero_and_a_score_the_majority_of_its_own_metric():
    curves = {
        "stsb": {"hybrid": points("spearmanr", [20.0, 30.0, 40.0])},
        "mrpc": {"hybrid": points("f1", [70.0, 75.0, 78.0])},
        "sst2": {"hybrid": points("accuracy", [55.0, 60.0, 65.0])},
    }
    majority = {"mrpc": {"accuracy": 0.68, "f1": 0.81}}  # the probe's majority scores: accuracy first
    stsb, mrpc, sst2 = plot_probe_curves(curves, majority).axes
    chance = lines_by_label(stsb)["chance (correlation 0)"]
    assert list(chance.get_ydata()) == [0, 0] and stsb.get_ylim()[0] <= 0 <= stsb.get_ylim()[1]
    assert list(lines_by_label(mrpc)["majority class"].get_ydata()) == pytest.approx([81.0, 81.0])
    assert mrpc.get_ylim()[1] >= 81.0
    # No majority score recorded for the task: no line rather than another metric's.
    assert "majority class" not in lines_by_label(sst2) and "majority class" not in lines_by_label(stsb)


def test_each_objective_has_its_seed_band_and_the_random_init_score_a_reference_line():
    curve = points("accuracy", [50.0, 60.0, 70.0])
    curve[1]["std"] = 2.5
    axes = plot_probe_curves({"sst2": {"hybrid": curve}}, {}).axes[0]
    assert list(lines_by_label(axes)["random init (step 0)"].get_ydata()) == [50.0, 50.0]
    (band,) = axes.collections  # fill_between: its outline runs along mean + sd, then back along mean − sd
    ys = sorted(band.get_paths()[0].vertices[:, 1])
    assert min(ys) == pytest.approx(49.0) and max(ys) == pytest.approx(71.0)
    assert {57.5, 62.5} <= {round(y, 6) for y in ys}
    steady = plot_probe_curves({"sst2": {"hybrid": [{**point, "std": 0.0} for point in curve]}}, {}).axes[0]
    assert not steady.collections  # one seed: no band


def test_legends_sit_beside_the_axes():
    curve = points("accuracy", [50.0, 60.0, 70.0])
    log = {
        key: [{"step": step, "mean": 1.0, "std": 0.1, "values": [1.0]} for step in (0, 5)] for key in TRAINING_LOG_KEYS
    }
    for figure in (plot_probe_curves({"sst2": {"hybrid": curve}}, {}), plot_training_logs({"hybrid": log})):
        figure.savefig(io.BytesIO(), format="png")
        for axes in figure.axes:
            assert axes.get_legend().get_window_extent().x0 >= axes.get_window_extent().x1


def probe_results(scores_by_path: dict[str, dict[str, dict[str, dict[str, float]]]]) -> dict:
    """A probe's results.json: path → task → split → metric → score (one pooling)."""
    return {
        "models": [
            {
                "model": path,
                "tasks": {task: {"poolings": {"mean": {"scores": by_split}}} for task, by_split in tasks.items()},
            }
            for path, tasks in scores_by_path.items()
        ]
    }


def test_probe_curves_read_each_task_s_scored_split_and_name_a_missing_point():
    results = probe_results(
        {
            "run/snapshot-0": {"mnli": {"validation_matched": {"accuracy": 0.40}, "validation_mismatched": {}}},
            "run": {"mnli": {"validation_matched": {"accuracy": 0.55}, "validation_mismatched": {}}},
        }
    )
    points = {"hybrid": [("run/snapshot-0", 0, 0), ("run", 10, 40960)]}
    curve = probe_curves([points], [results])["mnli"]["hybrid"]
    assert [(point["step"], point["mean"]) for point in curve] == [(0, pytest.approx(40.0)), (10, pytest.approx(55.0))]

    points["hybrid"].insert(1, ("run/snapshot-5", 5, 20480))
    with pytest.raises(ValueError, match=r"Seed 0's probe results lack hybrid step 5 \(run/snapshot-5\)"):
        probe_curves([points], [results])

    # An objective whose checkpoint list lacks a step the other has: named, not drawn as a shorter curve.
    both = {"hybrid": [("run/snapshot-0", 0, 0), ("run", 10, 40960)], "mlm": [("run", 10, 40960)]}
    with pytest.raises(ValueError, match=r"lack mlm step 0 of seed 0, which the others have"):
        probe_curves([both], [results])


def test_training_logs_list_their_keys_in_one_order_whatever_the_string_hashing(tmp_path):
    """comparison.json holds these logs: an identical rerun must write the same file (a set's order follows the hash
    seed)."""
    run = tmp_path / "run"
    run.mkdir()
    entries = [{"step": step, **{key: 0.1 * step for key in reversed(TRAINING_LOG_KEYS)}} for step in (1, 2)]
    (run / "trainer_state.json").write_text(json.dumps({"log_history": entries}))
    script = (
        f"from prjepa.curves import training_logs; print(list(training_logs({{'hybrid': [{str(run)!r}]}})['hybrid']))"
    )
    orders = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(6)
    }
    assert orders == {f"{list(TRAINING_LOG_KEYS)}\n"}
