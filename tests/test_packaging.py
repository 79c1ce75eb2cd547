"""The installed distribution: exactly three top-level names, the GLUE metric and the console scripts inside it."""

import configparser
import os
import subprocess
import sys
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_wheel(directory) -> zipfile.ZipFile:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(directory),
            REPO,
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = [name for name in os.listdir(directory) if name.endswith(".whl")]
    return zipfile.ZipFile(os.path.join(directory, wheel))


def test_wheel_installs_exactly_the_package_and_the_two_checkpoint_modules(tmp_path):
    wheel = build_wheel(tmp_path)
    names = wheel.namelist()
    (top_level,) = [name for name in names if name.endswith(".dist-info/top_level.txt")]
    assert sorted(wheel.read(top_level).decode().split()) == ["configuration_prjepa", "modeling_prjepa", "prjepa"]
    roots = {name.split("/")[0] for name in names if ".dist-info/" not in name}
    assert roots == {"prjepa", "configuration_prjepa.py", "modeling_prjepa.py"}
    assert "prjepa/metrics/glue/glue.py" in names  # package data that evaluate.load reads by path
    (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
    scripts = configparser.ConfigParser()
    scripts.read_string(wheel.read(entry_points).decode())
    assert dict(scripts["console_scripts"]) == {
        "prjepa-pretrain": "prjepa.pretraining:main",
        "prjepa-probe": "prjepa.probing.glue_probe:main",
        "prjepa-analyze": "prjepa.geometry.analysis:main",
        "prjepa-experiment": "prjepa.experiment:main",
        "prjepa-convert": "prjepa.convert:main",
    }


def test_pretraining_imports_no_analysis_dependency():
    probe = (
        "import sys, prjepa, prjepa.pretraining; "
        "print(sorted(m for m in ('matplotlib', 'sklearn', 'prjepa.geometry', 'prjepa.probing') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
    assert result.stdout.strip() == "[]"


def test_public_api_imports_from_the_package():
    from configuration_prjepa import PrJepaConfig as TopLevelConfig
    from prjepa import DataCollatorForPrJepa, PrJepaConfig, PrJepaForPreTraining, PrJepaTrainer

    assert PrJepaConfig is TopLevelConfig  # one class, so checkpoints and the library agree
    assert {DataCollatorForPrJepa.__module__, PrJepaTrainer.__module__} == {"prjepa.collator", "prjepa.trainer"}
    assert PrJepaForPreTraining.__module__ == "modeling_prjepa"
