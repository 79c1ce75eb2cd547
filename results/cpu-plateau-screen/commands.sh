# Plateau screen: does a recipe change move the cpu preset's MLM-only run off the second plateau (validation MLM loss
# about 5.9) within the preset's budget (1,200 steps of 32 x 128 tokens, 4.9M tokens)? Seed 0, fp32, one thread per
# run, two runs at a time. The reference is the preset's own run, results/cpu-fp32/seed-0/pretrain-mlm (its command:
# results/cpu-fp32/commands.sh); each candidate is that command with one change and its own --output_dir. Each run's
# trainer_state.json, train_results.json and eval_results.json are copied to NAME/seed-0/pretrain-mlm/.
# Reference (fp32, seed 0):
python run_pretrain.py --preset mini --objective mlm --tokenizer_name ../shared/tokenizers/bert-base-uncased --train_file '../shared/data/text/gutenberg/train/*.txt' --validation_file '../shared/data/text/gutenberg/validation/*.txt' --max_steps 1200 --config_overrides position_embedding_type=learned,tie_word_embeddings=True --max_seq_length 128 --per_device_train_batch_size 32 --learning_rate 0.001 --warmup_steps 0.1 --lr_scheduler_type cosine --weight_decay 0.05 --bf16 false --seed 0 --data_seed 0 --logging_steps 10 --eval_strategy steps --eval_steps 300 --save_steps 50 --save_total_limit 2 --do_train --do_eval --max_eval_samples 500 --report_to none --disable_tqdm true --output_dir screen/NAME
# The candidates, each appended to that command (later options replace earlier ones):
# lr2e-3:      --learning_rate 0.002   (stopped at step 465, behind the reference from the first evaluation on)
# beta2-0.98:  --adam_beta2 0.98   (RoBERTa's)
# batch-16:    --per_device_train_batch_size 16 --max_steps 2400 --eval_steps 600 --save_steps 100 --logging_steps 20
# batch-8:     --per_device_train_batch_size 8 --max_steps 4800 --eval_steps 1200 --save_steps 200 --logging_steps 40
# sin-scaled:  --config_overrides position_embedding_scale=0.03,tie_word_embeddings=True   (fixed sin/cos table x 0.03)
# init-0.04:   --config_overrides position_embedding_type=learned,tie_word_embeddings=True,initializer_range=0.04
# init-0.08:   --config_overrides position_embedding_type=learned,tie_word_embeddings=True,initializer_range=0.08
# init-0.04, seed 1 (two threads; its reference is results/cpu-fp32/seed-1/pretrain-mlm): the init-0.04 command with
# --seed 1 --data_seed 1, copied to init-0.04/seed-1/pretrain-mlm/.
# batch-16, seeds 1 and 2 (two threads; the recipe study's rerun chose batch 16; their references are results/cpu-fp32/seed-N/pretrain-mlm):
# the batch-16 command with --seed N --data_seed N, copied to batch-16/seed-N/pretrain-mlm/.
# Masking rate (seed 0, one thread per run, two at a time): more masked tokens give more predictions per token seen,
# at the cost of a projection onto the vocabulary per masked token. Each run's loss is measured at 0.15, the
# reference's rate, on the same 500 sequences with the same masks: by tokens, the reference command with
#   --config_overrides position_embedding_type=learned,tie_word_embeddings=True,mlm_probability=RATE --save_steps 100
# for RATE 0.3 and 0.4 (copied to mask-RATE/seed-0/pretrain-mlm/, whose own evaluations are at RATE), then each
# checkpoint-N (N = 300, 600, 900, 1200) evaluated alone at 0.15 (copied to mask-RATE/seed-0/eval-at-0.15/step-N.json):
#   python run_pretrain.py --model_name_or_path screen/mask-RATE/checkpoint-N --validation_file '../shared/data/text/gutenberg/validation/*.txt' --max_seq_length 128 --bf16 false --seed 0 --data_seed 0 --do_eval --eval_mlm_probability 0.15 --max_eval_samples 500 --report_to none --disable_tqdm true --output_dir screen/mask-RATE/eval-N
# Masking 40% at the preset's time (both objectives at 0.4 cost 1.35x the preset's step pair in floating-point work, so
# 890 steps instead of 1,200; timed, 1.45x: about 830), copied to mask-0.4-890-steps/seed-0/pretrain-mlm/ (its evaluations at 0.15 in-run):
#   the reference command with --config_overrides position_embedding_type=learned,tie_word_embeddings=True,mlm_probability=0.4 --max_steps 890 --eval_steps 223 --eval_mlm_probability 0.15
# The floating-point work of one step at each rate (the preset's model and batch; MLM-only 1.29x, 1.47x, 1.65x at
# 0.3, 0.4, 0.5; hybrid 1.28x at 0.4): bench_pretrain.time_objective(..., count_flops=True, config_overrides=
# "position_embedding_type=learned,tie_word_embeddings=True,mlm_probability=RATE") of one step; the time, side by side:
#   python benchmarks/bench_precision.py --steps 4 --rounds 2 --against mlm_probability=0.4
# Does 40% masking end the plateau sooner in tokens? MLM-only, seed 1, on the 32.7M-token runs' 8,000-step schedule
# (results/cpu-long/commands.sh's pretrain command for seed 1, fp32) with mlm_probability=0.4, evaluated at 0.15 every
# 500 steps, stopped by SIGTERM after step 1,083 (one thread) and resumed by the same command on two threads, stopped
# by SIGTERM after step 2,073 (past its step-2,000 evaluation); that checkpoint's trainer_state.json copied to mask-0.4-long/seed-1/pretrain-mlm/:
#   python run_pretrain.py --preset mini --objective mlm --tokenizer_name ../shared/tokenizers/bert-base-uncased --train_file '../shared/data/text/gutenberg/train/*.txt' --validation_file '../shared/data/text/gutenberg/validation/*.txt' --max_steps 8000 --config_overrides position_embedding_type=learned,tie_word_embeddings=True,mlm_probability=0.4 --max_seq_length 128 --per_device_train_batch_size 32 --learning_rate 0.001 --warmup_steps 0.1 --lr_scheduler_type cosine --weight_decay 0.05 --bf16 false --use_cpu true --seed 1 --data_seed 1 --logging_steps 10 --eval_strategy steps --eval_steps 500 --eval_mlm_probability 0.15 --save_steps 200 --save_total_limit 2 --do_train --do_eval --max_eval_samples 500 --report_to none --disable_tqdm true --output_dir screen/mask-0.4-long
# The same schedule for MLM-only seed 2 (--seed 2 --data_seed 2, --output_dir screen/mask-0.4-long-seed-2; one thread,
# stopped by SIGTERM after step 2,047, its checkpoint's trainer_state.json copied to mask-0.4-long/seed-2/pretrain-mlm/),
# and for the hybrid, seed 1, at its peak learning rate (--objective hybrid --learning_rate 0.0005, --output_dir
# screen/mask-0.4-long-hybrid; stopped by SIGTERM after steps 1,018 and 2,333 and resumed by the same command, one thread
# then two, and stopped after step 3,512; the last checkpoint's trainer_state.json copied to mask-0.4-long/seed-1/pretrain-hybrid/).
# The hybrid, seed 2, the same way (--objective hybrid --learning_rate 0.0005 --seed 2 --data_seed 2, --output_dir
# screen/mask-0.4-long-hybrid-seed-2; two threads, GLIBC_TUNABLES as the experiment's --keep_freed_memory; its first
# start was lost with its machine after step 500, and the run from the start on another machine reproduced that
# step's evaluation, 6.149), stopped by SIGTERM after step 3,025; its trainer_state.json copied to mask-0.4-long/seed-2/pretrain-hybrid/.
# Where each run's training MLM loss leaves the second plateau, with the losses and the collapse screen:
#   python benchmarks/bench_precision.py --loss_curves mask0.15=results/cpu-long mask0.4=results/cpu-plateau-screen/mask-0.4-long
# Each seed's step-2,000 encoders (checkpoint-2000, copied before save_total_limit removed it) and its initialisation
# probed with the experiment's probe settings and the seed's probe seed, as results/cpu-long's runs, into
# mask-0.4-long/seed-N/probe/. The initialisation is the run's own: the same command with --max_steps 1 --snapshot_steps 0
# (and without the evaluation options) writes it to INIT/snapshot-0.
#   python run_glue_probe.py --model_name_or_path INIT/snapshot-0 screen/mask-0.4-long/checkpoint-2000 [screen/mask-0.4-long-hybrid/checkpoint-2000] --task_name sst2 stsb --glue_path ../shared/data/glue --max_train_samples 20000 --seed N --cache_dir features --output_dir mask-0.4-long/seed-N/probe
# Each hybrid's step-3,000 encoder (12.3M tokens, past its plateau; checkpoint-3000 copied likewise) and its seed's
# initialisation, the same probe command, into mask-0.4-long/seed-N/probe-hybrid-step-3000/ (seed 2's initialisation
# written by its hybrid command, whose config differs from the MLM-only command's in the objective alone: a fingerprint
# of its own, the same scores to every digit as in seed-2/probe/).

# reference-rerun/seed-0/pretrain-mlm: the reference command above (two threads, OMP_NUM_THREADS=2, as recorded) rerun on
# the final code, so that the reference is evaluated as every candidate was (over sequences, commit 171677a): training
# identical to results/cpu-fp32/seed-0/pretrain-mlm (every logged gradient norm and effective rank), validation MLM loss
# 6.224, 6.034, 5.936, 5.915 against the recorded 6.230, 6.040, 5.941, 5.921.
# reference-rerun/seed-1/pretrain-mlm: seed 1's reference the same way (results/cpu-fp32/commands.sh's MLM-only command
# with --seed 1 --data_seed 1, OMP_NUM_THREADS=2): training identical to results/cpu-fp32/seed-1/pretrain-mlm (every
# logged loss, gradient norm and effective rank), validation MLM loss 6.287, 6.087, 6.000, 5.977 against the recorded
# 6.288, 6.087, 5.999, 5.976.
# reference-rerun/seed-2/pretrain-mlm: seed 2's the same way (--seed 2 --data_seed 2, OMP_NUM_THREADS=2): training
# identical to results/cpu-fp32/seed-2/pretrain-mlm (every logged loss, gradient norm, effective rank and learning rate),
# validation MLM loss 6.224, 6.054, 5.942, 5.925 against the recorded 6.221, 6.052, 5.940, 5.923.
