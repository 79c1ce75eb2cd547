# Both objectives past the cpu preset's budget, seeds 0, 1 and 2: the published recipes (results/cpu: bf16 for seed 0,
# fp32 for seeds 1 and 2; peak learning rate 1e-3 for MLM-only, 5e-4 for the hybrid) for 8,000 steps instead of 1,200,
# i.e. 32.7M tokens instead of 4.9M (the cosine schedule and its 10% warm-up stretched over the longer run; about 2.1
# passes over the Gutenberg training text), probed along the run with the experiment's probe settings. Run from a
# checkout where the ../shared/data/ and ../shared/tokenizers/ paths below resolve (seed 0's pretraining ran at 741ddac,
# seeds 1 and 2's at d6c815c in every session, the rest at the commits that added these files, with the same probe
# code).
STEPS="0 1000 2000 3000 4000 6000"
FEATURES=/work/runs/work/cpu-long/features

pretrain() {  # objective, peak learning rate, output folder, seed, bf16 (true or false), record folder under
              # results/cpu-long: the run to its end, then its record
    python run_pretrain.py --preset mini --objective $1 --tokenizer_name ../shared/tokenizers/bert-base-uncased \
        --train_file '../shared/data/text/gutenberg/train/*.txt' --validation_file '../shared/data/text/gutenberg/validation/*.txt' \
        --max_steps 8000 --config_overrides position_embedding_type=learned,tie_word_embeddings=True --max_seq_length 128 \
        --per_device_train_batch_size 32 --learning_rate $2 --warmup_steps 0.1 --lr_scheduler_type cosine \
        --weight_decay 0.05 --bf16 $5 --use_cpu true --seed $4 --data_seed $4 --logging_steps 10 --snapshot_steps $STEPS \
        --eval_strategy steps --eval_steps 1000 --save_steps 200 --save_total_limit 2 --do_train --do_eval \
        --max_eval_samples 500 --report_to none --disable_tqdm true --output_dir $3 || return
    python -c "from prjepa.experiment.stages import record_run; record_run('$3', 'results/cpu-long/$6', [${STEPS// /, }])"
}

probe() {  # probe seed (the run's, as the experiment's), output folder under results/cpu-long, then the models (and
           # any further probe arguments)
    local seed=$1 output=$2
    shift 2
    python run_glue_probe.py --model_name_or_path "$@" --task_name sst2 stsb --glue_path ../shared/data/glue \
        --max_train_samples 20000 --seed $seed --cache_dir $FEATURES --output_dir results/cpu-long/$output
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
GLIBC_TUNABLES=glibc.malloc.trim_threshold=17179869184:glibc.malloc.mmap_max=0 pretrain mlm 0.001 $RUN 0 true pretrain-mlm
probe 0 probe $(snapshots $RUN)
probe 0 layer-0 $RUN/snapshot-0 $RUN --hidden_layer 0

# The hybrid, without the allocator setting (the experiment's default; it slows hybrid steps). Its initialisation is
# MLM-only's encoder (same seed), so the control is probed once, above.
HYBRID=/work/runs/work/cpu-long/seed-0/hybrid
pretrain hybrid 0.0005 $HYBRID 0 true pretrain-hybrid
probe 0 probe-hybrid $(snapshots $HYBRID)
probe 0 layer-0-hybrid $HYBRID --hidden_layer 0

# MLM-only, seed 1: the same recipe and schedule, in fp32 (its machine's CPU emulated bf16, 23x slower there:
# benchmarks/bench_precision.py). It ran in two sessions: stopped by SIGTERM after step 4,209 (it saved
# checkpoint-4209), then the same command resumed it from that checkpoint to the end. Probed with seed 1, as the
# experiment probes its seed 1.
SEED1=/work/runs/work/cpu-long/seed-1/mlm
GLIBC_TUNABLES=glibc.malloc.trim_threshold=17179869184:glibc.malloc.mmap_max=0 pretrain mlm 0.001 $SEED1 1 false seed-1/pretrain-mlm
probe 1 seed-1/probe $(snapshots $SEED1)
probe 1 seed-1/layer-0 $SEED1/snapshot-0 $SEED1 --hidden_layer 0
# The probe's own spread, the encoders fixed: seed 1's snapshots and final encoder under four more probe seeds (each
# draws another 20,000-sentence SST-2 training subset and other cross-validation folds; STS-B's training split is used
# whole). And its initialisation and final encoder on SST-2 with the whole training split (67,349 sentences), probe
# seed 1.
for probe_seed in 0 2 3 4; do
    probe $probe_seed seed-1/probe-seed-$probe_seed $(snapshots $SEED1)
done
python run_glue_probe.py --model_name_or_path $SEED1/snapshot-0 $SEED1 --task_name sst2 --glue_path ../shared/data/glue \
    --seed 1 --cache_dir $FEATURES --output_dir results/cpu-long/seed-1/probe-whole-sst2

# The hybrid, seed 1: the same recipe, schedule and precision as MLM-only's seed 1, over three sessions (stopped by
# SIGTERM after steps 2,036 and 6,059, each time resumed from that checkpoint by the same command). Its initialisation
# has MLM-only seed 1's encoder (only the MLM head's dense layer, which no probe reads, differs), so its step 0 scores
# as that control does.
SEED1_HYBRID=/work/runs/work/cpu-long/seed-1/hybrid
pretrain hybrid 0.0005 $SEED1_HYBRID 1 false seed-1/pretrain-hybrid
probe 1 seed-1/probe-hybrid $(snapshots $SEED1_HYBRID)
probe 1 seed-1/layer-0-hybrid $SEED1_HYBRID --hidden_layer 0

# Seed 2: both runs as seed 1's (fp32, the allocator setting for MLM-only), probed with seed 2, everything from the
# checkout at d6c815c. MLM-only ran in two sessions (stopped by SIGTERM after step 4,193, resumed from that checkpoint);
# the hybrid in three sessions (stopped by SIGTERM after steps 1,903 and 5,916, each time resumed from that checkpoint;
# its recorded training time includes about 8 minutes paused by SIGSTOP while MLM-only's probes ran).
SEED2=/work/runs/work/cpu-long/seed-2/mlm
GLIBC_TUNABLES=glibc.malloc.trim_threshold=17179869184:glibc.malloc.mmap_max=0 pretrain mlm 0.001 $SEED2 2 false seed-2/pretrain-mlm
probe 2 seed-2/probe $(snapshots $SEED2)
probe 2 seed-2/layer-0 $SEED2/snapshot-0 $SEED2 --hidden_layer 0
SEED2_HYBRID=/work/runs/work/cpu-long/seed-2/hybrid
pretrain hybrid 0.0005 $SEED2_HYBRID 2 false seed-2/pretrain-hybrid
probe 2 seed-2/probe-hybrid $(snapshots $SEED2_HYBRID)
probe 2 seed-2/layer-0-hybrid $SEED2_HYBRID --hidden_layer 0

# The final encoders and their random-init control on SST-2's whole training split (67,349 sentences, each seed's probe
# seed), for seeds 1 and 2 (seed 0's checkpoints were not kept); seed 1's MLM-only run and control are probed above.
python run_glue_probe.py --model_name_or_path $SEED1_HYBRID --task_name sst2 --glue_path ../shared/data/glue \
    --seed 1 --cache_dir $FEATURES --output_dir results/cpu-long/seed-1/probe-whole-sst2-hybrid
python run_glue_probe.py --model_name_or_path $SEED2/snapshot-0 $SEED2 $SEED2_HYBRID --task_name sst2 \
    --glue_path ../shared/data/glue --seed 2 --cache_dir $FEATURES --output_dir results/cpu-long/seed-2/probe-whole-sst2

# summary.md, probe_curves.png and training_logs.png: the runs' scores and validation MLM loss against tokens seen,
# with the random-init control and the issue's target (the control + 5 points), and the logged λ, losses and
# effective rank against the step; the plots draw each objective's mean over the three seeds with their spread.
RUN=$RUN HYBRID=$HYBRID SEED1=$SEED1 SEED1_HYBRID=$SEED1_HYBRID SEED2=$SEED2 SEED2_HYBRID=$SEED2_HYBRID python - <<'PYTHON'
import os

from prjepa.curves import plot_probe_curves, plot_training_logs, probe_curves, training_logs
from prjepa.experiment.plan import read_json
from prjepa.plot_style import legend_outside
from prjepa.utils import markdown_table, mean_and_spread

RESULTS = "results/cpu-long"
SCORES = (("sst2", "accuracy", "SST-2 accuracy"), ("stsb", "spearmanr", "STS-B Spearman"))
OBJECTIVES, SEEDS = ("hybrid", "MLM-only"), (0, 1, 2)
# (objective, seed) → (run folder, record, probe results along the run, probe results of the embedding layer)
RUNS = {
    ("hybrid", 0): (os.environ["HYBRID"], "pretrain-hybrid", "probe-hybrid", "layer-0-hybrid"),
    ("hybrid", 1): (os.environ["SEED1_HYBRID"], "seed-1/pretrain-hybrid", "seed-1/probe-hybrid", "seed-1/layer-0-hybrid"),
    ("hybrid", 2): (os.environ["SEED2_HYBRID"], "seed-2/pretrain-hybrid", "seed-2/probe-hybrid", "seed-2/layer-0-hybrid"),
    ("MLM-only", 0): (os.environ["RUN"], "pretrain-mlm", "probe", "layer-0"),
    ("MLM-only", 1): (os.environ["SEED1"], "seed-1/pretrain-mlm", "seed-1/probe", "seed-1/layer-0"),
    ("MLM-only", 2): (os.environ["SEED2"], "seed-2/pretrain-mlm", "seed-2/probe", "seed-2/layer-0"),
}
SECOND = ("MLM-only", 1)  # the run probed under five probe seeds
PUBLISHED_TOKENS = 4_911_367  # results/cpu: the cpu preset's budget per encoder


def score(results: dict, model: str, task: str, metric: str) -> float:
    tasks = {entry["model"]: entry["tasks"] for entry in results["models"]}[model]
    return 100 * tasks[task]["poolings"]["mean"]["scores"]["validation"][metric]


def name(run: tuple[str, int]) -> str:
    return f"{run[0]}, seed {run[1]}"


def mean_sd(values: list[float]) -> str:
    summary = mean_and_spread(values)
    return f"{summary['mean']:+.1f} ± {summary['std']:.1f}"


# Each run's points: its snapshots, then its finished encoder.
points, losses, probes = {}, {}, {seed: [] for seed in SEEDS}
for run, (folder, record, probe, _) in RUNS.items():
    state = read_json(os.path.join(RESULTS, record), "trainer_state.json")
    losses[run] = {entry["step"]: entry["eval_mlm_loss"] for entry in state["log_history"] if "eval_mlm_loss" in entry}
    snapshots = os.path.join(RESULTS, record, "snapshots")
    points[run] = [
        (f"{folder}/snapshot-{step}", step, read_json(snapshots, f"step-{step}.json")["num_input_tokens_seen"])
        for step in sorted(int(entry[5:-5]) for entry in os.listdir(snapshots))
    ]
    points[run].append((folder, state["global_step"], state["num_input_tokens_seen"]))
    probes[run[1]] += read_json(os.path.join(RESULTS, probe), "results.json")["models"]
curves = probe_curves(
    [{objective: points[objective, seed] for objective in OBJECTIVES} for seed in SEEDS],
    [{"models": probes[seed]} for seed in SEEDS],
)
# Each run's score at each step, and its gain over its own initialisation (each seed's two runs share theirs).
score_at = {
    (task, (objective, seed)): {point["step"]: point["values"][index] for point in curves[task][objective]}
    for task, _, _ in SCORES
    for objective in OBJECTIVES
    for index, seed in enumerate(SEEDS)
}
gain = {key: {step: value - values[0] for step, value in values.items()} for key, values in score_at.items()}
steps = [(point["step"], point["tokens"]) for point in curves["sst2"]["MLM-only"]]

loss_rows = [
    [f"{step:,}", f"{tokens / 1e6:.1f}", *(f"{losses[run][step]:.3f}" if step in losses[run] else "–" for run in RUNS)]
    for step, tokens in steps
]
task_tables = {}
for task, _, _ in SCORES:
    rows = []
    for step, tokens in steps:
        cells = [f"{step:,}", f"{tokens / 1e6:.1f}"]
        cells += [f"{score_at[task, run][step]:.1f} ({gain[task, run][step]:+.1f})" for run in RUNS]
        cells += [mean_sd([gain[task, (objective, seed)][step] for seed in SEEDS]) for objective in OBJECTIVES]
        cells.append(mean_sd([score_at[task, ("hybrid", seed)][step] - score_at[task, ("MLM-only", seed)][step] for seed in SEEDS]))
        rows.append(cells)
    task_tables[task] = rows
task_headers = ["step", "tokens seen (M)", *map(name, RUNS), *(f"{objective} gain" for objective in OBJECTIVES)]
task_headers.append("hybrid − MLM-only")
# The embedding layer of each seed's initialisation (probed beside its MLM-only run) and of each run's last encoder.
embedded = []
for seed in SEEDS:
    embedded.append((f"random-init, seed {seed} (step 0)", RUNS["MLM-only", seed][3], points["MLM-only", seed][0][0]))
    embedded += [
        (f"{name(run)} (step {points[run][-1][1]:,})", RUNS[run][3], points[run][-1][0]) for run in RUNS if run[1] == seed
    ]
layer_results = {layer: read_json(os.path.join(RESULTS, layer), "results.json") for _, layer, _ in embedded}
embedding_rows = [
    [label, *(f"{score(layer_results[layer], model, task, metric):.1f}" for task, metric, _ in SCORES)]
    for label, layer, model in embedded
]
# MLM-only's seed 1 under five probe seeds, the encoders fixed (probe seed 1: the run's own probe): each point's score
# under each probe seed, and its gain over the control under the same probe seed.
probe_folders = [RUNS[SECOND][2] if probe_seed == 1 else f"seed-1/probe-seed-{probe_seed}" for probe_seed in range(5)]
under_probe_seeds = [read_json(os.path.join(RESULTS, folder), "results.json") for folder in probe_folders]
control_model, final_model = points[SECOND][0][0], points[SECOND][-1][0]
seed_scores = {
    (task, model): [score(results, model, task, metric) for results in under_probe_seeds]
    for task, metric, _ in SCORES
    for model, _, _ in points[SECOND]
}
seed_gains = {
    (task, model): [value - control_score for value, control_score in zip(values, seed_scores[task, control_model])]
    for (task, model), values in seed_scores.items()
}
columns = {}
for task, _, label in SCORES:
    columns[f"{label}, random-init"] = seed_scores[task, control_model]
    columns[f"{label}, step {points[SECOND][-1][1]:,}"] = seed_scores[task, final_model]
    columns[f"{label}, gain"] = seed_gains[task, final_model]
signs = ["+" if label.endswith("gain") else "" for label in columns]
probe_seed_rows = [
    [str(probe_seed), *(f"{values[probe_seed]:{sign}.1f}" for sign, values in zip(signs, columns.values()))]
    for probe_seed in range(5)
]
spreads = [mean_and_spread(values) for values in columns.values()]
probe_seed_rows.append(
    ["mean ± sd", *(f"{spread['mean']:{sign}.1f} ± {spread['std']:.1f}" for sign, spread in zip(signs, spreads))]
)
averaged_rows = []
for model, step, tokens in points[SECOND]:
    cells = [f"{step:,}", f"{tokens / 1e6:.1f}"]
    for task, _, _ in SCORES:
        scores, gains = mean_and_spread(seed_scores[task, model]), mean_and_spread(seed_gains[task, model])
        cells += [f"{scores['mean']:.1f} ± {scores['std']:.1f}", f"{gains['mean']:+.1f} ± {gains['std']:.1f}"]
    averaged_rows.append(cells)
averaged_headers = ["step", "tokens seen (M)", *(f"{label}{part}" for _, _, label in SCORES for part in ("", ", gain"))]
control = {task: [score_at[task, ("MLM-only", seed)][0] for seed in SEEDS] for task, _, _ in SCORES}
# The final encoders and their control on SST-2's whole training split: encoder → (results folder, model) by seed.
WHOLE_ENCODERS = ("random-init", "hybrid", "MLM-only")
WHOLE = {
    seed: {
        "random-init": (f"seed-{seed}/probe-whole-sst2", points["MLM-only", seed][0][0]),
        "hybrid": (f"seed-{seed}/probe-whole-sst2" + ("-hybrid" if seed == 1 else ""), points["hybrid", seed][-1][0]),
        "MLM-only": (f"seed-{seed}/probe-whole-sst2", points["MLM-only", seed][-1][0]),
    }
    for seed in (1, 2)
}
whole_rows = []
for seed, encoders in WHOLE.items():
    results = {encoder: read_json(os.path.join(RESULTS, folder), "results.json") for encoder, (folder, _) in encoders.items()}
    accuracy = {encoder: score(results[encoder], model, "sst2", "accuracy") for encoder, (_, model) in encoders.items()}
    whole_size = results["random-init"]["models"][0]["tasks"]["sst2"]["train_size"]
    differences = [accuracy["hybrid"] - accuracy["random-init"], accuracy["MLM-only"] - accuracy["random-init"],
                   accuracy["hybrid"] - accuracy["MLM-only"]]
    whole_rows.append([str(seed), *(f"{accuracy[encoder]:.1f}" for encoder in WHOLE_ENCODERS),
                       *(f"{difference:+.1f}" for difference in differences)])
with open(os.path.join(RESULTS, "summary.md"), "w") as file:
    file.write("Seed 0 pretrained under bf16 autocast, seeds 1 and 2 in fp32. Validation MLM loss (500 Gutenberg validation "
               "sequences):\n\n")
    file.write(markdown_table(["step", "tokens seen (M)", *map(name, RUNS)], loss_rows))
    targets = "; ".join(
        f"SST-2 {sst2 + 5:.1f}, STS-B {stsb + 5:.1f} (seed {seed})" for seed, sst2, stsb in zip(SEEDS, *control.values())
    )
    file.write(f"\n\nThe target, the random-init control + 5 points: {targets}.")
    for task, _, label in SCORES:
        file.write(f"\n\n{label}, with each run's gain over its random-init control (step 0: each seed's "
                   "initialisation, which its two runs share) in brackets, and over the three seeds the mean ± standard "
                   "deviation of each objective's gain and of the hybrid − MLM-only difference:\n\n")
        file.write(markdown_table(task_headers, task_tables[task]))
    file.write("\n\nThe same encoders' embedding layer alone (`--hidden_layer 0`, mean-pooled):\n\n")
    file.write(markdown_table(["encoder", *(label for _, _, label in SCORES)], embedding_rows))
    file.write("\n\nThe probe's own spread: the initialisation and final encoder of MLM-only's seed 1 under five probe "
               "seeds (each another SST-2 training subset and other cross-validation folds):\n\n")
    file.write(markdown_table(["probe seed", *columns], probe_seed_rows))
    file.write("\n\nIts curve under the five probe seeds (mean ± standard deviation over probe seeds):\n\n")
    file.write(markdown_table(averaged_headers, averaged_rows))
    file.write(f"\n\nThe final encoders (step {points[SECOND][-1][1]:,}) and their random-init control on SST-2's whole "
               f"training split ({whole_size:,} sentences, each seed's probe seed; seeds 1 and 2, as seed 0's "
               "checkpoints were not kept), accuracy:\n\n")
    file.write(markdown_table(["seed", *WHOLE_ENCODERS, "hybrid gain", "MLM-only gain", "hybrid − MLM-only"], whole_rows))
    file.write("\n")

majority = {task: probes[0][0]["tasks"][task].get("majority", {}).get("validation", {}) for task, _, _ in SCORES}
figure = plot_probe_curves(curves, majority)
for axes, (task, _, _) in zip(figure.axes, SCORES):
    target = mean_and_spread(control[task])["mean"] + 5
    axes.axhline(target, color="tab:red", linestyle="-.", linewidth=1, label="target (random init + 5)")
    axes.axvline(PUBLISHED_TOKENS / 1e6, color="grey", linestyle=":", linewidth=1, label="cpu preset's budget")
    legend_outside(axes)
figure.savefig(os.path.join(RESULTS, "probe_curves.png"), dpi=120)
records = {objective: [os.path.join(RESULTS, RUNS[objective, seed][1]) for seed in SEEDS] for objective in OBJECTIVES}
plot_training_logs(training_logs(records)).savefig(os.path.join(RESULTS, "training_logs.png"), dpi=120)
PYTHON
