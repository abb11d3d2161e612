"""Plain-text progress bars (tqdm) that go to stderr, or to the file named by $EMOTIONS_PROGRESS_FILE.

The runner sets that variable for each stage's kernel and streams the file to the console, so a long
training run shows epoch, batch, loss, samples/s and ETA in the terminal while the executed notebook
stays free of progress-bar output. No widgets: the bars are text wherever they go.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

from tqdm import tqdm as _tqdm

PROGRESS_FILE_ENV = "EMOTIONS_PROGRESS_FILE"
_streams: dict[str, TextIO] = {}


def progress_stream() -> TextIO:
    """Where progress bars are written: the file named by $EMOTIONS_PROGRESS_FILE (appended), else stderr."""
    path = os.environ.get(PROGRESS_FILE_ENV)
    if not path:
        return sys.stderr
    stream = _streams.get(path)
    if stream is None or stream.closed:
        stream = _streams[path] = open(path, "a", encoding="utf-8", buffering=1)
    return stream


def tqdm(*args: Any, **kwargs: Any) -> _tqdm:
    """`tqdm.tqdm` writing to :func:`progress_stream` (a drop-in for `from tqdm import tqdm`)."""
    kwargs.setdefault("file", progress_stream())
    if os.environ.get(PROGRESS_FILE_ENV):
        kwargs["dynamic_ncols"] = False
        kwargs.setdefault("ncols", 100)
        kwargs.setdefault("mininterval", 0.5)
    return _tqdm(*args, **kwargs)
