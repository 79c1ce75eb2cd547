#!/usr/bin/env python
"""Convert a checkpoint of the original research code to a PrJEPA checkpoint: `prjepa.convert`'s command line. Installed
as `prjepa-convert`. `--help` lists the arguments."""

from prjepa.convert import main

if __name__ == "__main__":
    main()
