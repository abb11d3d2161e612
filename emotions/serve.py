"""Entry point kept for the public command `python -m emotions.serve` (code: emotions.serving.service)."""

import sys

from emotions.serving.service import main

if __name__ == "__main__":
    sys.exit(main())
