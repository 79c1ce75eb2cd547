#!/usr/bin/env python
"""Probe frozen encoders on GLUE with a linear probe: `prjepa.probing.glue_probe`'s command line. Installed as
`prjepa-probe`. `--help` lists the arguments."""

from prjepa.probing.glue_probe import main

if __name__ == "__main__":
    main()
