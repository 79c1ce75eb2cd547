# Both objectives past the cpu preset's budget, one seed: the published recipes (results/cpu: seed 0, bf16; peak
# learning rate 1e-3 for MLM-only, 5e-4 for the hybrid) for 8,000 steps instead of 1,200, i.e. 32.7M tokens instead
# of 4.9M (the cosine schedule and its 10% warm-up stretched over the longer run; about 2.1 passes over the Gutenberg
# training text), probed along the run with the experiment's probe settings. Run from a checkout where the
# ../shared/data/ and ../shared/tokenizers/ paths below resolve (the pretraining ran at 741ddac, the rest at the
# commits that added these files, with the same probe code).
STEPS="0 1000 2000 3000 4000 6000"
FEATURES=/work/runs/work/cpu-long/features

pretrain() {  # objective, peak learning rate, output folder
    python run_pretrain.py --preset mini --objective $1 --tokenizer_name ../shared/tokenizers/bert-base-uncased \
        --train_file '../shared/data/text/gutenberg/train/*.txt' --validation_file '../shared/data/text/gutenberg/validation/*.txt' \
        --max_steps 8000 --config_overrides position_embedding_type=learned,tie_word_embeddings=True --max_seq_length 128 \
        --per_device_train_batch_size 32 --learning_rate $2 --warmup_steps 0.1 --lr_scheduler_type cosine \
        --weight_decay 0.05 --bf16 true --use_cpu true --seed 0 --data_seed 0 --logging_steps 10 --snapshot_steps $STEPS \
        --eval_strategy steps --eval_steps 1000 --save_steps 200 --save_total_limit 2 --do_train --do_eval \
        --max_eval_samples 500 --report_to none --disable_tqdm true --output_dir $3
    python -c "from prjepa.experiment.stages import record_run; record_run('$3', 'results/cpu-long/pretrain-$1', [${STEPS// /, }])"
}

probe() {  # output folder under results/cpu-long, then the models (and any further probe arguments)
    local output=$1
    shift
    python run_glue_probe.py --model_name_or_path "$@" --task_name sst2 stsb --glue_path ../shared/data/glue \
        --max_train_samples 20000 --seed 0 --cache_dir $FEATURES --output_dir results/cpu-long/$output
}

snapshots() {  # a run's snapshots, then the finished encoder
    for step in $STEPS; do echo $1/snapshot-$step; done
    echo $1
}

# MLM-only, with the allocator setting of the experiment's --keep_freed_memory (faster MLM-only steps; it changes no
# number). Its snapshots and final encoder on their last hidden state, as the experiment's curves; then the
# initialisation (the random-init control, identical to results/cpu's seed 0) and the final encoder on their embedding
# layer alone.
RUN=/work/runs/work/cpu-long/seed-0/mlm
GLIBC_TUNABLES=glibc.malloc.trim_threshold=17179869184:glibc.malloc.mmap_max=0 pretrain mlm 0.001 $RUN
probe probe $(snapshots $RUN)
probe layer-0 $RUN/snapshot-0 $RUN --hidden_layer 0

# The hybrid, without the allocator setting (the experiment's default; it slows hybrid steps). Its initialisation is
# MLM-only's encoder (same seed), so the control is probed once, above.
HYBRID=/work/runs/work/cpu-long/seed-0/hybrid
pretrain hybrid 0.0005 $HYBRID
probe probe-hybrid $(snapshots $HYBRID)
probe layer-0-hybrid $HYBRID --hidden_layer 0

# summary.md, probe_curves.png and training_logs.png: both runs' scores and validation MLM loss against tokens seen,
# with the random-init control (their shared initialisation) and the issue's target (the control + 5 points), and the
# logged λ, losses and effective rank against the step.
RUN=$RUN HYBRID=$HYBRID python - <<'PYTHON'
import json
import os

from prjepa.curves import plot_probe_curves, plot_training_logs, probe_curves, training_logs
from prjepa.plot_style import legend_outside
from prjepa.utils import markdown_table

RESULTS = "results/cpu-long"
SCORES = (("sst2", "accuracy", "SST-2 accuracy"), ("stsb", "spearmanr", "STS-B Spearman"))
# label → (run folder, record, probe results along the run, probe results of the embedding layer)
RUNS = {
    "hybrid": (os.environ["HYBRID"], "pretrain-hybrid", "probe-hybrid", "layer-0-hybrid"),
    "MLM-only": (os.environ["RUN"], "pretrain-mlm", "probe", "layer-0"),
}
PUBLISHED_TOKENS = 4_911_367  # results/cpu: the cpu preset's budget per encoder


def read(*path: str) -> dict:
    with open(os.path.join(*path)) as file:
        return json.load(file)


def score(results: dict, model: str, task: str, metric: str) -> float:
    tasks = {entry["model"]: entry["tasks"] for entry in results["models"]}[model]
    return 100 * tasks[task]["poolings"]["mean"]["scores"]["validation"][metric]


points, losses, probes = {}, {}, []
for label, (run, record, probe, _) in RUNS.items():
    state = read(RESULTS, record, "trainer_state.json")
    losses[label] = {entry["step"]: entry["eval_mlm_loss"] for entry in state["log_history"] if "eval_mlm_loss" in entry}
    steps = sorted(int(name[5:-5]) for name in os.listdir(os.path.join(RESULTS, record, "snapshots")))
    points[label] = [
        (f"{run}/snapshot-{step}", step, read(RESULTS, record, "snapshots", f"step-{step}.json")["num_input_tokens_seen"])
        for step in steps
    ] + [(run, state["global_step"], state["num_input_tokens_seen"])]
    probes += read(RESULTS, probe, "results.json")["models"]
curves = probe_curves([points], [{"models": probes}])
control = {task: curves[task]["MLM-only"][0]["mean"] for task, _, _ in SCORES}
score_at = {
    (task, label): {point["step"]: point["mean"] for point in curves[task][label]} for task, _, _ in SCORES for label in RUNS
}

rows = []
for _, step, tokens in points["MLM-only"]:
    cells = [f"{step:,}", f"{tokens / 1e6:.1f}"]
    cells += [f"{losses[label][step]:.3f}" if step in losses[label] else "–" for label in RUNS]
    for task, _, _ in SCORES:
        for label in RUNS:
            value = score_at[task, label][step]
            cells.append(f"{value:.1f} ({value - control[task]:+.1f})")
    rows.append(cells)
headers = ["step", "tokens seen (M)", *(f"validation MLM loss, {label}" for label in RUNS)]
headers += [f"{name}, {label}" for _, _, name in SCORES for label in RUNS]
# The embedding layer of the initialisation (probed beside the MLM-only run) and of each finished encoder.
embedded = [("random-init (step 0)", "layer-0", f"{RUNS['MLM-only'][0]}/snapshot-0")]
embedded += [(f"{label} (step {points[label][-1][1]:,})", layer, run) for label, (run, _, _, layer) in RUNS.items()]
layer_results = {layer: read(RESULTS, layer, "results.json") for _, layer, _ in embedded}
embedding_rows = [
    [name, *(f"{score(layer_results[layer], model, task, metric):.1f}" for task, metric, _ in SCORES)]
    for name, layer, model in embedded
]
with open(os.path.join(RESULTS, "summary.md"), "w") as file:
    file.write("Scores with their gain over the random-init control (step 0, both runs' shared initialisation) in brackets.\n\n")
    file.write(markdown_table(headers, rows))
    file.write("\n\nThe target, the random-init control + 5 points: SST-2 "
               f"{control['sst2'] + 5:.1f}, STS-B {control['stsb'] + 5:.1f}. The same encoders' embedding layer alone "
               "(`--hidden_layer 0`, mean-pooled):\n\n")
    file.write(markdown_table(["encoder", *(name for _, _, name in SCORES)], embedding_rows))

majority = {task: probes[0]["tasks"][task].get("majority", {}).get("validation", {}) for task, _, _ in SCORES}
figure = plot_probe_curves(curves, majority)
for axes, (task, _, _) in zip(figure.axes, SCORES):
    axes.axhline(control[task] + 5, color="tab:red", linestyle="-.", linewidth=1, label="target (random init + 5)")
    axes.axvline(PUBLISHED_TOKENS / 1e6, color="grey", linestyle=":", linewidth=1, label="cpu preset's budget")
    legend_outside(axes)
figure.savefig(os.path.join(RESULTS, "probe_curves.png"), dpi=120)
logs = training_logs({label: [os.path.join(RESULTS, record)] for label, (_, record, _, _) in RUNS.items()})
plot_training_logs(logs).savefig(os.path.join(RESULTS, "training_logs.png"), dpi=120)
PYTHON
