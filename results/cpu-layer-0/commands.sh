# The encoders of the run published then (results/cpu-lr1e-3: both objectives at 1e-3, kept under --work_dir
# /work/runs/work; its hybrids were moved to cpu-lr1e-3/seed-N/hybrid when the republished run took cpu/seed-N/hybrid,
# while the MLM-only runs and the initialisation are shared by both runs),
# probed on the output of their embedding layer (--hidden_layer 0) with the experiment's probe settings.
for seed in 0 1 2; do
    python run_glue_probe.py --model_name_or_path /work/runs/work/cpu-lr1e-3/seed-$seed/hybrid /work/runs/work/cpu/seed-$seed/mlm \
        /work/runs/work/cpu/seed-$seed/mlm/snapshot-0 --hidden_layer 0 --task_name sst2 stsb \
        --glue_path ../shared/data/glue --max_train_samples 20000 --seed $seed --cache_dir /work/runs/work/cpu/features \
        --output_dir results/cpu-layer-0/seed-$seed
done

# summary.md: each encoder's scores from its embeddings (these files) beside those from its last hidden state (the
# published probe, results/cpu-lr1e-3/seed-*/probe), mean ± sd over the three seeds.
python - > results/cpu-layer-0/summary.md <<'PYTHON'
import json

from prjepa.utils import markdown_table, mean_and_spread

ENCODERS = {"hybrid": "hybrid", "MLM-only": "mlm", "random-init": "mlm/snapshot-0"}
SCORES = (("sst2", "accuracy"), ("stsb", "spearmanr"))
FEATURES = {"last hidden state": "results/cpu-lr1e-3/seed-{}/probe", "embeddings (layer 0)": "results/cpu-layer-0/seed-{}"}


def scores(folder: str, seed: int, encoder: str) -> list[float]:
    with open(f"{folder.format(seed)}/results.json") as file:
        models = {model["model"]: model["tasks"] for model in json.load(file)["models"]}
    tasks = models[f"/work/runs/work/cpu/seed-{seed}/{encoder}"]
    return [100 * tasks[task]["poolings"]["mean"]["scores"]["validation"][metric] for task, metric in SCORES]


rows = []
for name, encoder in ENCODERS.items():
    for layer, folder in FEATURES.items():
        per_seed = [scores(folder, seed, encoder) for seed in range(3)]
        cells = []
        for column in range(len(SCORES)):
            spread = mean_and_spread([values[column] for values in per_seed])
            seeds = ", ".join(f"{value:.1f}" for value in spread["values"])
            cells.append(f"{spread['mean']:.1f} ± {spread['std']:.1f} ({seeds})")
        rows.append([name, layer, *cells])
print(markdown_table(["encoder", "features", "SST-2 accuracy", "STS-B Spearman"], rows))
PYTHON
