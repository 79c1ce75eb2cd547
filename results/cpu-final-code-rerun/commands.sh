# results/cpu rerun on the final code (sessions of 2026-12-07): the published experiment command, seed by seed, into the
# published run's own folders (/work/runs/results, /work/runs/work), so that these records continue as that run's: the
# seeds here, copied back into /work/runs/results/cpu/, are reused by the published command with --seeds 3, which runs
# the seeds still missing and writes the report. Kept here: every stage's records of each finished seed (seed-N/).
# Seeds 0 and 1 (every stage but the report; nothing else on the cores but tests of a few seconds at times):
python run_experiment.py --preset cpu --run_name cpu --seeds 2 --stages pretrain probe analysis curves --results_dir /work/runs/results --work_dir /work/runs/work --train_file '../shared/data/text/gutenberg/train/*.txt' --validation_file '../shared/data/text/gutenberg/validation/*.txt' --glue_path ../shared/data/glue --tokenizer_name ../shared/tokenizers/bert-base-uncased
# Seed 2, the same command with --seeds 3 (seeds 0 and 1 reused; nothing else on the cores):
python run_experiment.py --preset cpu --run_name cpu --seeds 3 --stages pretrain probe analysis curves --results_dir /work/runs/results --work_dir /work/runs/work --train_file '../shared/data/text/gutenberg/train/*.txt' --validation_file '../shared/data/text/gutenberg/validation/*.txt' --glue_path ../shared/data/glue --tokenizer_name ../shared/tokenizers/bert-base-uncased
# The report (report/: comparison.md, comparison.json, plots, commands.sh), by the same command with --stages report.
# To replace results/cpu with this run: copy seed-0/, seed-1/, seed-2/ and report/'s files into /work/runs/results/cpu/
# (the work folder may be gone: a finished seed's records then stand alone) or into results/cpu/ beside PUBLISHED.md.

# old-code-evaluation/eval_results.json: the publishing commit's code (git worktree of 1e071ab) evaluating seed 0's
# final hybrid (an earlier rerun, trained identically); it gives the published eval_mlm_loss 5.948878765106201 to every
# digit (the final code: 5.943216800689697). From the worktree, beside the data as the repository is:
python run_pretrain.py --model_name_or_path /work/runs/repro/work/cpu/seed-0/hybrid --tokenizer_name ../shared/tokenizers/bert-base-uncased --train_file '../shared/data/text/gutenberg/train/*.txt' --validation_file '../shared/data/text/gutenberg/validation/*.txt' --max_seq_length 128 --bf16 true --use_cpu true --seed 0 --data_seed 0 --do_eval --max_eval_samples 500 --report_to none --disable_tqdm true --output_dir /work/runs/old-eval-hybrid
