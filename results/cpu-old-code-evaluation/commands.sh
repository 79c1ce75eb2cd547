# Why results/cpu's validation MLM losses moved when it was republished on the final code: the code of the commit that
# first published it (git worktree of 1e071ab) evaluating seed 0's final hybrid (from a rerun on the final code, trained
# identically to both publications) gives the first publication's eval_mlm_loss, 5.948878765106201, to every digit
# (eval_results.json here); the final code, which averages over the validation sequences instead of over the batches'
# means (commit 171677a), gives 5.943216800689697 (results/cpu/seed-0/pretrain-hybrid/eval_results.json).
# From the worktree, beside the data as the repository is, the hybrid's final weights in WORK/cpu/seed-0/hybrid:
python run_pretrain.py --model_name_or_path WORK/cpu/seed-0/hybrid --tokenizer_name ../shared/tokenizers/bert-base-uncased --train_file '../shared/data/text/gutenberg/train/*.txt' --validation_file '../shared/data/text/gutenberg/validation/*.txt' --max_seq_length 128 --bf16 true --use_cpu true --seed 0 --data_seed 0 --do_eval --max_eval_samples 500 --report_to none --disable_tqdm true --output_dir old-eval-hybrid
