"""Entry point for the public command `python -m emotions.predict` (code: emotions.serving.batch)."""

import sys

from emotions.serving.batch import main

if __name__ == "__main__":
    sys.exit(main())
