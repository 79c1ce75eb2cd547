# Seed 0 of results/cpu rerun on the final code (session of 2026-12-07): the published experiment command with
# --seeds 1 and other folders. Both pretraining runs train identically to the published ones (every logged loss,
# gradient norm, effective rank and lambda); the probe gives every published score; the validation MLM losses are
# 0.0055-0.0062 lower because evaluation now averages over sequences (commit 171677a). Kept here: each run's
# trainer_state.json, eval_results.json and train_results.json, and the probe's results.
python run_experiment.py --preset cpu --run_name cpu --seeds 1 --results_dir /work/runs/repro/results --work_dir /work/runs/repro/work --train_file '../shared/data/text/gutenberg/train/*.txt' --validation_file '../shared/data/text/gutenberg/validation/*.txt' --glue_path ../shared/data/glue --tokenizer_name ../shared/tokenizers/bert-base-uncased

# old-code-evaluation/eval_results.json: the publishing commit's code (git worktree of 1e071ab) evaluating the rerun's
# final hybrid; it gives the published eval_mlm_loss 5.948878765106201 to every digit (the final code: 5.943216800689697).
# From the worktree, beside the data as the repository is:
python run_pretrain.py --model_name_or_path /work/runs/repro/work/cpu/seed-0/hybrid --tokenizer_name ../shared/tokenizers/bert-base-uncased --train_file '../shared/data/text/gutenberg/train/*.txt' --validation_file '../shared/data/text/gutenberg/validation/*.txt' --max_seq_length 128 --bf16 true --use_cpu true --seed 0 --data_seed 0 --do_eval --max_eval_samples 500 --report_to none --disable_tqdm true --output_dir /work/runs/old-eval-hybrid
