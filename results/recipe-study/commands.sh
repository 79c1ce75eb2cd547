# The slow-start study (prjepa/recipe_study.py): resumable; the second command rewrites this folder's study.md, study.json
# and mlm_loss_vs_tokens.png (this file is written by hand).
python run_recipe_study.py --output_dir experiments/recipe-study --train_file '../shared/data/text/gutenberg/train/*.txt' --validation_file '../shared/data/text/gutenberg/validation/*.txt' --tokenizer_name ../shared/tokenizers/bert-base-uncased
python run_recipe_study.py --output_dir experiments/recipe-study --report results/recipe-study
# On a machine that lost the run folders, the finished runs recorded in study.json count as done (curves as measured):
# python run_recipe_study.py --output_dir experiments/recipe-study --import_runs results/recipe-study/study.json ...
