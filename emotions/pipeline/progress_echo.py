"""Console progress of the running stage: the runner streams the stage's progress-bar file to the terminal.

The stage's kernel writes its tqdm bars (epoch, batch, loss, samples/s, ETA) to the file named by
$EMOTIONS_PROGRESS_FILE (see `emotions.core.progress`); :func:`stream_progress` sets that variable for
the kernel it starts and follows the file: on a terminal the current bar is redrawn in place, and a
finished bar (an epoch) stays as one line; in a log or pipe it prints finished bars and, at most every
`every` seconds, the current one.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, TextIO

from ..core.progress import PROGRESS_FILE_ENV

_SPLIT = re.compile(r"(\r|\n)")


class ProgressTail:
    """Follows a progress file and echoes its bars to `out` (see the module docstring)."""

    def __init__(self, path: Path, out: TextIO | None = None, prefix: str = "    ", every: float = 30.0,
                 live: bool | None = None):
        self.path, self.prefix, self.every = Path(path), prefix, every
        self.out = out or sys.stdout
        self.live = self.out.isatty() if live is None else live
        self._offset, self._partial, self._current = 0, "", ""
        self._last_print = 0.0
        self._drawn = False

    def poll(self) -> None:
        """Read what was appended since the last call and echo it."""
        try:
            with open(self.path, "r", encoding="utf-8", errors="replace", newline="") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
                self._offset = fh.tell()
        except FileNotFoundError:
            return
        if not chunk:
            return
        parts = _SPLIT.split(self._partial + chunk)
        self._partial = parts.pop() if parts and parts[-1] not in ("\r", "\n") else ""
        text = ""
        for part in parts:
            if part == "\n":
                if text.strip():
                    self._finished(text.strip())
                text, self._current = "", ""
            elif part == "\r":
                if text.strip():
                    self._current = text.strip()
                text = ""
            else:
                text = part
        if self._partial.strip():
            self._current = self._partial.strip()
        if self._current:
            self._show(self._current)

    def _finished(self, line: str) -> None:
        self._clear()
        self.out.write(f"{self.prefix}{line}\n")
        self.out.flush()
        self._last_print = time.monotonic()

    def _show(self, line: str) -> None:
        if self.live:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.out.write("\r" + f"{self.prefix}{line}"[:width].ljust(width))
            self.out.flush()
            self._drawn = True
        elif time.monotonic() - self._last_print >= self.every:
            self.out.write(f"{self.prefix}{line}\n")
            self.out.flush()
            self._last_print = time.monotonic()

    def _clear(self) -> None:
        if self._drawn:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.out.write("\r" + " " * width + "\r")
            self._drawn = False

    def close(self) -> None:
        """Final read; leaves the terminal on a fresh line."""
        self.poll()
        self._clear()
        self.out.flush()


@contextmanager
def stream_progress(path: Path, out: TextIO | None = None, interval: float = 0.5,
                    every: float = 30.0) -> Iterator[ProgressTail]:
    """Within the block, kernels started by this process write their bars to `path` (a new, empty file)
    and a background thread echoes them to `out` (default stdout)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("", encoding="utf-8")
    tail = ProgressTail(path, out=out, every=every)
    previous = os.environ.get(PROGRESS_FILE_ENV)
    os.environ[PROGRESS_FILE_ENV] = str(path)
    stop = threading.Event()

    def follow() -> None:
        while not stop.wait(interval):
            tail.poll()

    thread = threading.Thread(target=follow, name="emotions-progress", daemon=True)
    thread.start()
    try:
        yield tail
    finally:
        stop.set()
        thread.join()
        tail.close()
        if previous is None:
            os.environ.pop(PROGRESS_FILE_ENV, None)
        else:
            os.environ[PROGRESS_FILE_ENV] = previous
