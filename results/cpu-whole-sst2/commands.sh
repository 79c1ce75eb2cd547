# The published run's encoders (results/cpu: hybrid, MLM-only and their shared initialisation, the random-init control,
# kept under --work_dir /work/runs/work) probed on SST-2 as the experiment probes them, but trained on the whole
# training split (67,349 sentences) instead of its 20,000-sentence subset: the subset's share of the probe's spread
# (README, "Both objectives to 32.7M tokens") drops out. Each seed with its own probe seed.
for seed in 0 1 2; do
    python run_glue_probe.py --model_name_or_path /work/runs/work/cpu/seed-$seed/hybrid /work/runs/work/cpu/seed-$seed/mlm \
        /work/runs/work/cpu/seed-$seed/mlm/snapshot-0 --task_name sst2 --glue_path ../shared/data/glue --seed $seed \
        --cache_dir /work/runs/work/cpu/features --output_dir results/cpu-whole-sst2/seed-$seed
done

# summary.md: each encoder's SST-2 accuracy and gain over the control with the whole split (these files) beside the
# published probe's 20,000-sentence subset (results/cpu/seed-*/probe), mean ± sd over the three seeds.
python - > results/cpu-whole-sst2/summary.md <<'PYTHON'
import json

from prjepa.utils import markdown_table, mean_and_spread

ENCODERS = {"hybrid": "hybrid", "MLM-only": "mlm", "random-init": "mlm/snapshot-0"}
SPLITS = {"20,000-sentence subset (published)": "results/cpu/seed-{}/probe", "whole split": "results/cpu-whole-sst2/seed-{}"}


def accuracy(folder: str, seed: int, encoder: str) -> float:
    with open(f"{folder.format(seed)}/results.json") as file:
        models = {model["model"]: model["tasks"] for model in json.load(file)["models"]}
    return 100 * models[f"/work/runs/work/cpu/seed-{seed}/{encoder}"]["sst2"]["poolings"]["mean"]["scores"]["validation"]["accuracy"]


def cell(values: list[float]) -> str:
    spread = mean_and_spread(values)
    return f"{spread['mean']:+.1f} ± {spread['std']:.1f} ({', '.join(f'{value:+.1f}' for value in values)})"


rows = []
for split, folder in SPLITS.items():
    scores = {name: [accuracy(folder, seed, encoder) for seed in range(3)] for name, encoder in ENCODERS.items()}
    control = scores["random-init"]
    for name, values in scores.items():
        spread = mean_and_spread(values)
        level = f"{spread['mean']:.1f} ± {spread['std']:.1f} ({', '.join(f'{value:.1f}' for value in values)})"
        gain = "–" if name == "random-init" else cell([value - base for value, base in zip(values, control)])
        rows.append([split, name, level, gain])
print(markdown_table(["SST-2 training split", "encoder", "accuracy", "gain over random-init"], rows))
PYTHON
