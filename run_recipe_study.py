#!/usr/bin/env python
"""The slow-start study of mini pretraining recipes: `prjepa.recipe_study`'s command line. `--help` lists the
arguments."""

from prjepa.recipe_study import main

if __name__ == "__main__":
    main()
