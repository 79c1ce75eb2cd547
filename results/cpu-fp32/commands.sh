# fp32 references for the published bf16 run (results/cpu-lr1e-3): the same pretraining runs without autocast.
# Seed 0, both objectives (the experiment's pretraining stage; checkpoints under --work_dir), run when the cpu preset
# trained both at 1e-3; today's preset trains the hybrid at 5e-4, so for the 1e-3 reference run results/cpu-lr1e-3's
# seed-0 pretraining commands with --bf16 false (no --use_cpu) and --output_dir under cpu-fp32 instead:
python run_experiment.py --preset cpu --bf16 false --run_name cpu-fp32 --seeds 1 --stages pretrain \
    --results_dir results --work_dir /work/runs/work \
    --train_file "../shared/data/text/gutenberg/train/*.txt" \
    --validation_file "../shared/data/text/gutenberg/validation/*.txt" \
    --glue_path ../shared/data/glue --tokenizer_name ../shared/tokenizers/bert-base-uncased
# Seeds 1 and 2, hybrid: results/cpu-lr1e-3/commands.sh's hybrid command of the seed with --bf16 false and its own
# --output_dir; its trainer_state.json, train_results.json and eval_results.json are copied to seed-N/pretrain-hybrid/.
# Seed 2 (seed 1: the same with seed-1, --seed 1 --data_seed 1):
python run_pretrain.py --preset mini --objective hybrid --tokenizer_name ../shared/tokenizers/bert-base-uncased --train_file '../shared/data/text/gutenberg/train/*.txt' --validation_file '../shared/data/text/gutenberg/validation/*.txt' --max_steps 1200 --config_overrides position_embedding_type=learned,tie_word_embeddings=True --max_seq_length 128 --per_device_train_batch_size 32 --learning_rate 0.001 --warmup_steps 0.1 --lr_scheduler_type cosine --weight_decay 0.05 --bf16 false --seed 2 --data_seed 2 --logging_steps 10 --snapshot_steps 0 300 600 900 --eval_strategy steps --eval_steps 300 --save_steps 50 --save_total_limit 2 --do_train --do_eval --max_eval_samples 500 --report_to none --disable_tqdm true --output_dir /work/runs/work/cpu-fp32/seed-2/hybrid
# Seeds 1 and 2, MLM-only (the published results/cpu's MLM-only runs, at 1e-3): results/cpu/commands.sh's MLM-only
# command of the seed with --bf16 false (no --use_cpu) and its own --output_dir; its trainer_state.json,
# train_results.json and eval_results.json are copied to seed-N/pretrain-mlm/. Seed 2 (seed 1: the same with seed-1,
# --seed 1 --data_seed 1):
python run_pretrain.py --preset mini --objective mlm --tokenizer_name ../shared/tokenizers/bert-base-uncased --train_file '../shared/data/text/gutenberg/train/*.txt' --validation_file '../shared/data/text/gutenberg/validation/*.txt' --max_steps 1200 --config_overrides position_embedding_type=learned,tie_word_embeddings=True --max_seq_length 128 --per_device_train_batch_size 32 --learning_rate 0.001 --warmup_steps 0.1 --lr_scheduler_type cosine --weight_decay 0.05 --bf16 false --seed 2 --data_seed 2 --logging_steps 10 --snapshot_steps 0 300 600 900 --eval_strategy steps --eval_steps 300 --save_steps 50 --save_total_limit 2 --do_train --do_eval --max_eval_samples 500 --report_to none --disable_tqdm true --output_dir /work/runs/work/cpu-fp32/seed-2/mlm
# lr5e-4/: the hybrid at the published results/cpu's learning rate (5e-4), in fp32: results/cpu/commands.sh's hybrid
# command of the seed with --bf16 false (no --use_cpu) and its own --output_dir; its trainer_state.json,
# train_results.json and eval_results.json are copied to lr5e-4/seed-N/pretrain-hybrid/. Seed 0 (seeds 1 and 2 the
# same with seed-N, --seed N --data_seed N):
python run_pretrain.py --preset mini --objective hybrid --tokenizer_name ../shared/tokenizers/bert-base-uncased --train_file '../shared/data/text/gutenberg/train/*.txt' --validation_file '../shared/data/text/gutenberg/validation/*.txt' --max_steps 1200 --config_overrides position_embedding_type=learned,tie_word_embeddings=True --max_seq_length 128 --per_device_train_batch_size 32 --learning_rate 0.0005 --warmup_steps 0.1 --lr_scheduler_type cosine --weight_decay 0.05 --bf16 false --seed 0 --data_seed 0 --logging_steps 10 --snapshot_steps 0 300 600 900 --eval_strategy steps --eval_steps 300 --save_steps 50 --save_total_limit 2 --do_train --do_eval --max_eval_samples 500 --report_to none --disable_tqdm true --output_dir /work/runs/work/cpu-fp32-lr5e-4/seed-0/hybrid
