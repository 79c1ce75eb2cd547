# Collapse screen of the cpu preset's hybrid pretraining: results/cpu-lr1e-3/commands.sh's hybrid command of each seed, with
# --snapshot_steps 0 300 and its own --output_dir, stopped once checkpoint-400 is saved (the 1,200-step schedule is
# unchanged, so steps 1-400 are those of a full run). Each run's checkpoint-400/trainer_state.json is copied to
# PRECISION/seed-N/pretrain-hybrid/ (EMA candidates: NAME/PRECISION/seed-N/pretrain-hybrid/). Seeds 0-2 are the full
# runs in results/cpu-lr1e-3 (bf16) and results/cpu-fp32.
# bf16 (fp32: --bf16 false instead of --bf16 true --use_cpu true), seed N:
python run_pretrain.py --preset mini --objective hybrid --tokenizer_name ../shared/tokenizers/bert-base-uncased --train_file '../shared/data/text/gutenberg/train/*.txt' --validation_file '../shared/data/text/gutenberg/validation/*.txt' --max_steps 1200 --config_overrides position_embedding_type=learned,tie_word_embeddings=True --max_seq_length 128 --per_device_train_batch_size 32 --learning_rate 0.001 --warmup_steps 0.1 --lr_scheduler_type cosine --weight_decay 0.05 --bf16 true --use_cpu true --seed N --data_seed N --logging_steps 10 --snapshot_steps 0 300 --eval_strategy steps --eval_steps 300 --save_steps 50 --save_total_limit 2 --do_train --do_eval --max_eval_samples 500 --report_to none --disable_tqdm true --output_dir screen/bf16/seed-N
# EMA momentum candidate: the same with ema_momentum_start=0.999 appended to --config_overrides and --output_dir
# screen-ema0.999/bf16/seed-N (seeds 2 and 3, the two that collapse in bf16).
# Target normalisation candidate (seed 0 only, to step 1,200): the same with jepa_target_norm=instance appended to
# --config_overrides; instance-norm/bf16/seed-0/pretrain-hybrid/ holds its final trainer_state.json.
# Learning-rate candidate: the same with --learning_rate 0.0005 and --output_dir lr5e-4/bf16/seed-N (seed 2 stopped at
# step 400 first, then seeds 0-2 to step 1,200 with --snapshot_steps 0 300 600 900); the MLM-only runs of seeds 0-2 likewise
# (results/cpu-lr1e-3/commands.sh's MLM-only command with --learning_rate 0.0005), in lr5e-4/bf16/seed-N/pretrain-mlm/.
# Continued to step 1,200 (ema0.999 seeds 2 and 3, bf16 seed 3): the same command without stopping it; it resumes from
# the last complete checkpoint, and the final trainer_state.json replaces the step-400 one.
# Readouts (validation MLM loss at each evaluation, lowest effective rank and JEPA loss over steps 1-400):
python benchmarks/bench_precision.py --loss_curves fp32=results/cpu-fp32,results/cpu-collapse-screen/fp32 \
    bf16=results/cpu-lr1e-3,results/cpu-collapse-screen/bf16
python benchmarks/bench_precision.py --loss_curves ema0.996=results/cpu-lr1e-3,results/cpu-collapse-screen/bf16 \
    ema0.999=results/cpu-collapse-screen/ema0.999/bf16 --seeds 2 3
python benchmarks/bench_precision.py --loss_curves layer=results/cpu-lr1e-3 instance=results/cpu-collapse-screen/instance-norm/bf16 \
    --seeds 0
python benchmarks/bench_precision.py --loss_curves lr1e-3=results/cpu-lr1e-3 lr5e-4=results/cpu-collapse-screen/lr5e-4/bf16
