"""Small helpers around transformers."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """No transformers progress bars / load reports while loading or saving weights."""
    from transformers.utils import logging as tlog

    bars = tlog.is_progress_bar_enabled()
    level = tlog.get_verbosity()
    tlog.disable_progress_bar()
    tlog.set_verbosity_error()
    try:
        yield
    finally:
        tlog.set_verbosity(level)
        if bars:
            tlog.enable_progress_bar()
