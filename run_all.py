#!/usr/bin/env python
"""Run the whole pipeline (papermill notebooks in order). `python run_all.py --help` for options."""

import sys

from emotions.pipeline.runner import main

if __name__ == "__main__":
    sys.exit(main())
