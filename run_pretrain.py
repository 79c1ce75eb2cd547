#!/usr/bin/env python
"""Pretrain a PrJEPA encoder (hybrid JEPA + MLM, or MLM-only) with the HF Trainer: `prjepa.pretraining`'s command line.
Installed as `prjepa-pretrain`. `--help` lists the arguments."""

from prjepa.pretraining import main

if __name__ == "__main__":
    main()
