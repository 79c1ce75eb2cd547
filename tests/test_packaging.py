"""The installed distribution: exactly three top-level names, the GLUE metric and the console scripts inside it; and
the repository itself: no file refers to one outside it, and every citation of the method document names one of its
sections."""

import configparser
import dataclasses
import importlib
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

METHOD_DOCUMENT = "docs/method.md"
TEXT_SUFFIXES = (".py", ".md", ".cfg", ".toml", ".sh")
# A reference to a file outside the repository: the old machine-local method file, in any form (a section, its file
# name, "the project's ..."), or any path under the machines' shared folder other than the data and tokenizers that
# commands read from there. (Written so that this file does not match itself.)
OUTSIDE_REFERENCE = re.compile(r"\bS[P]EC\b|\.\./shared\b(?!/(?:data|tokenizers)/)")
SECTION_CITATION = re.compile(r"docs/method\.md §(\d+(?:\.\d+)*)")
SECTION_HEADING = re.compile(r"^#{2,} (\d+(?:\.\d+)*)\.? ", re.MULTILINE)
# Each script's module (its console script's entry point) and the thin wrapper at the repository's root.
SCRIPTS = {
    "prjepa.pretraining": "run_pretrain.py",
    "prjepa.probing.glue_probe": "run_glue_probe.py",
    "prjepa.geometry.analysis": "run_representation_analysis.py",
    "prjepa.experiment": "run_experiment.py",
    "prjepa.recipe_study": "run_recipe_study.py",
    "prjepa.convert": "convert_original_checkpoint.py",
}
PARSERS_WITHOUT_TORCH = ("prjepa.experiment", "prjepa.recipe_study")


# What a build of the distribution reads.
PACKAGING_INPUTS = (
    "setup.cfg",
    "pyproject.toml",
    "README.md",
    "configuration_prjepa.py",
    "modeling_prjepa.py",
    "prjepa",
)


def build_wheel(directory) -> zipfile.ZipFile:
    """Builds from a copy of the sources, so that setuptools' build folders are not left in the checkout."""
    source = os.path.join(directory, "source")
    for name in PACKAGING_INPUTS:
        path = os.path.join(REPO, name)
        if os.path.isdir(path):
            shutil.copytree(path, os.path.join(source, name), ignore=shutil.ignore_patterns("__pycache__"))
        else:
            os.makedirs(source, exist_ok=True)
            shutil.copy(path, source)
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
            source,
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
        "prjepa-recipe-study": "prjepa.recipe_study:main",
    }
    # Every root script is one of them installed.
    roots = [name for name in os.listdir(REPO) if name.startswith("run_") or name == "convert_original_checkpoint.py"]
    for script in roots:
        with open(os.path.join(REPO, script)) as file:
            (module,) = re.findall(r"^from (prjepa[\w.]*) import main$", file.read(), flags=re.MULTILINE)
        assert f"{module}:main" in scripts["console_scripts"].values(), script


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


def tracked_text_files() -> list[str]:
    """The repository's tracked `TEXT_SUFFIXES` files that exist in the work tree, relative to the root."""
    try:
        listing = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    paths = [path for path in listing.stdout.split("\0") if path.endswith(TEXT_SUFFIXES)]
    return sorted(path for path in paths if os.path.isfile(os.path.join(REPO, path)))


def numbered_lines(path: str):
    with open(os.path.join(REPO, path), encoding="utf-8") as file:
        yield from enumerate(file, 1)


def outside_references(paths: list[str]) -> list[str]:
    return [
        f"{path}:{number}: {line.strip()}"
        for path in paths
        for number, line in numbered_lines(path)
        if OUTSIDE_REFERENCE.search(line)
    ]


def test_no_file_refers_outside_the_repository():
    assert outside_references(tracked_text_files()) == []


def test_every_method_document_citation_names_one_of_its_sections():
    with open(os.path.join(REPO, METHOD_DOCUMENT), encoding="utf-8") as file:
        document = file.read()
    sections = set(SECTION_HEADING.findall(document))
    assert {str(number) for number in range(1, 9)} <= sections
    citations = [
        (f"{path}:{number}", section)
        for path in tracked_text_files()
        for number, line in numbered_lines(path)
        for section in SECTION_CITATION.findall(line)
    ]
    assert citations, f"nothing cites {METHOD_DOCUMENT}"
    # The document's own cross-references ("§4.1", "(§8.2)") resolve too.
    citations += [(METHOD_DOCUMENT, section) for section in re.findall(r"§(\d+(?:\.\d+)*)", document)]
    assert [f"{where}: §{section}" for where, section in citations if section not in sections] == []


@pytest.mark.parametrize("module_name, script", SCRIPTS.items())
def test_every_scripts_help_renders_with_its_description_and_an_example(module_name, script, capsys):
    module = importlib.import_module(module_name)
    with pytest.raises(SystemExit) as stop:
        module.main(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert module.__doc__.splitlines()[0] in text and f"    python {script} " in text and "(default:" in text
    # An example continued on the next line keeps its backslash: a lone one in the docstring joins the two lines.
    assert " \\\n        --" in text


def test_every_script_wraps_its_modules_main():
    for module_name, script in SCRIPTS.items():
        with open(os.path.join(REPO, script)) as file:
            assert f"from {module_name} import main" in file.read(), script


# What a script's --help must not load: the data, metric, plotting and model libraries are loaded by the work itself.
# torch comes with the parsers that need the model configuration's choices or TrainingArguments.
LOADED_BY_THE_WORK = (
    "datasets",
    "evaluate",
    "sklearn",
    "scipy",
    "matplotlib",
    "modeling_prjepa",
    "transformers.trainer",
)
HELP_IMPORTS = """
import contextlib, importlib, io, sys
module = importlib.import_module(sys.argv[1])
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    module.main(["--help"])
print(sorted(name for name in sys.argv[2:] if name in sys.modules))
"""


@pytest.mark.parametrize("module_name", SCRIPTS)
def test_help_loads_only_what_the_parser_needs(module_name):
    unwanted = LOADED_BY_THE_WORK + (("torch",) if module_name in PARSERS_WITHOUT_TORCH else ())
    command = [sys.executable, "-c", HELP_IMPORTS, module_name, *unwanted]
    result = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO)
    assert result.stdout.strip() == "[]"


def field_default(arguments, name: str):
    return next(field.default for field in dataclasses.fields(arguments) if field.name == name)


@pytest.mark.skipif(not os.path.exists(os.path.join(REPO, ".git")), reason="needs a git checkout of the repository")
def test_default_output_folders_are_ignored_and_published_results_are_not():
    """Read from the scripts' own defaults, so that a new preset or a changed default is checked too."""
    from prjepa.experiment.plan import PUBLISHED, ExperimentArguments
    from prjepa.experiment.presets import EXPERIMENT_PRESETS
    from prjepa.geometry.analysis import AnalysisArguments
    from prjepa.probing.glue_probe import ProbeArguments
    from prjepa.training_args import PrJepaTrainingArguments

    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO).returncode == 0

    results, work = (field_default(ExperimentArguments, name) for name in ("results_dir", "work_dir"))
    published = [name for name in EXPERIMENT_PRESETS if os.path.exists(os.path.join(REPO, results, name, PUBLISHED))]
    assert published == ["cpu"]
    defaults = [f"{results}/{name}/x" for name in EXPERIMENT_PRESETS if name not in published]
    defaults += [f"{results}/{name}-reproduction/x" for name in published]
    defaults += [f"{work}/{name}/x" for name in EXPERIMENT_PRESETS]
    defaults += [f"{PrJepaTrainingArguments(use_cpu=True).output_dir}/x"]  # run_pretrain.py without --output_dir
    defaults += [f"{field_default(arguments, 'output_dir')}/x" for arguments in (ProbeArguments, AnalysisArguments)]
    # Examples in the README and --help: run_pretrain.py's and the converter's folders, the recipe study's runs.
    defaults += ["prjepa-mini-smoke/x", "prjepa-original/x", f"{work}/recipe-study/x"]
    assert [path for path in defaults if not ignored(path)] == []
    assert not ignored("results/cpu/comparison.md") and not ignored("results/recipe-study/study.md")
