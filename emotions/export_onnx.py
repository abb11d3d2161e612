"""Entry point kept for the public command `python -m emotions.export_onnx` (code: emotions.serving.export)."""

import sys

from emotions.serving.export import main

if __name__ == "__main__":
    sys.exit(main())
