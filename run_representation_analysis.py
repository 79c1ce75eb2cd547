#!/usr/bin/env python
"""Compare the representation geometry of encoders: `prjepa.geometry.analysis`'s command line. Installed as
`prjepa-analyze`. `--help` lists the arguments."""

from prjepa.geometry.analysis import main

if __name__ == "__main__":
    main()
