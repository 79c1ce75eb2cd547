#!/usr/bin/env python
"""The hybrid-vs-MLM-only experiment end to end: `prjepa.experiment`'s command line. Installed as `prjepa-experiment`.
`--help` lists the arguments."""

from prjepa.experiment import main

if __name__ == "__main__":
    main()
