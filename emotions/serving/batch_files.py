"""The files of a batch job (emotions.serving.batch): reading the input in chunks, one job per output
(`OUTPUT.lock`), an input that is never the output, and the resumable `OUTPUT.partial/` folder."""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import logging
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Iterator

import pandas as pd

log = logging.getLogger(__name__)

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
STATE_FILE = "state.json"


class BatchInputError(ValueError):
    """The input file cannot be read as asked (format, column, encoding)."""


class ResumeMismatchError(RuntimeError):
    """OUTPUT.partial holds parts written for another input, model or settings."""


class OutputLockError(RuntimeError):
    """Another job is writing the same output (or its lock file cannot be made)."""


def file_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise BatchInputError(f"{path}: unknown file type {path.suffix!r}; use .csv or .parquet")
    return fmt


# --- reading -----------------------------------------------------------------------------------------------
def _utf8_error(path: Path) -> str:
    """Where the first invalid UTF-8 byte is (line and byte offset), read line by line."""
    offset = 0
    with open(path, "rb") as f:
        for line_no, line in enumerate(f, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as e:
                return f"not valid UTF-8 at byte {offset + e.start} (line {line_no} of the file)"
            offset += len(line)
    return "not valid UTF-8"


def estimate_rows(path: Path, fmt: str) -> int:
    """Rows in the file: exact for Parquet, the number of line breaks for CSV (quoted line breaks count)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    lines, last = 0, b"\n"
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            lines += block.count(b"\n")
            last = block[-1:]
    return max(0, lines + (last != b"\n") - 1)


def iter_chunks(path: Path, fmt: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The input, `chunk_rows` rows at a time (CSV values read as strings, nothing guessed as NaN, blank
    lines kept as rows)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
        return
    try:
        reader = pd.read_csv(path, chunksize=chunk_rows, dtype=str, keep_default_na=False, encoding="utf-8",
                             skip_blank_lines=False)        # a blank line is a row (reported), not dropped
        with reader:
            yield from reader
    except UnicodeDecodeError:
        raise BatchInputError(f"{path}: {_utf8_error(path)}; re-save the file as UTF-8") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise BatchInputError(f"{path}: cannot parse as CSV: {str(e).strip()}") from None


# --- one job per output ------------------------------------------------------------------------------------
def _lock_info(fd: int) -> dict:
    """What a lock file says about the job that holds (or held) it; {} when empty or unreadable."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return json.loads(os.read(fd, 4096).decode("utf-8") or "{}")
    except (OSError, ValueError):
        return {}


def _holder(info: dict) -> str:
    return (f"pid {info.get('pid', '?')} on {info.get('host', '?')}, started {info.get('started', '?')}"
            if info else "a job that left no details")


@contextlib.contextmanager
def output_lock(output: Path) -> Iterator[dict]:
    """Hold `OUTPUT.lock` (an flock, so a dead job's lock frees itself) while a job writes `output`.

    Yields what a job that died while holding it left in the file ({} when there was none). A second job
    gets an OutputLockError naming the holder. The file is removed on exit.
    """
    lock = output.with_name(output.name + ".lock")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                info = _lock_info(fd)
                os.close(fd)
                raise OutputLockError(f"{output}: another job ({_holder(info)}) is writing it (lock {lock}); "
                                      "wait for it to finish or write to another --output") from None
            with contextlib.suppress(FileNotFoundError):
                if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                    break                 # else the holder removed the file just before we locked it: again
            os.close(fd)
    except OSError as e:
        raise OutputLockError(f"{output}: cannot create the lock file {lock} ({e.strerror})") from None
    previous = _lock_info(fd)
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode())
    try:
        yield previous
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        os.close(fd)


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_paths(input_path: Path, output_path: Path) -> None:
    """Refuse an input that the job would overwrite: the output itself, its errors file or its lock."""
    for suffix, what in (("", "the output"), (".errors.csv", "the output's errors file"), (".lock", "the lock file")):
        target = output_path.with_name(output_path.name + suffix)
        if _same_file(input_path, target):
            raise BatchInputError(f"{input_path}: the input is also {what} ({target}); write the predictions to "
                                  "another file (--force does not change this)")


def prepare_work(work: Path, output: Path, state: dict, restart: bool, previous: dict) -> int:
    """Make `OUTPUT.partial/` ready for this job (the caller holds the output's lock); return how many
    parts of an earlier run it keeps. Half-written files of a job that died are removed."""
    if work.exists() and not work.is_dir():
        raise ResumeMismatchError(f"{work} exists but is not a folder; remove it")
    if work.is_dir() and restart:
        shutil.rmtree(work)
    leftovers = [*work.glob(".*.tmp"), *output.parent.glob(f".{glob.escape(output.name)}.*.tmp")]
    for tmp in leftovers:
        tmp.unlink(missing_ok=True)
    parts = sorted(work.glob("part-*.parquet"))
    if not parts:
        return 0
    try:
        old = json.loads((work / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ResumeMismatchError(f"{work} holds {len(parts)} part(s) but its {STATE_FILE} is missing or unreadable "
                                  f"({type(e).__name__}); pass --restart to discard them") from None
    changed = sorted(k for k in state if old.get(k) != state[k])
    if changed:
        raise ResumeMismatchError(f"{work} holds parts of an earlier job with other {changed}; "
                                  "pass --restart to discard them (or remove the folder)")
    who = (f"a job that stopped without finishing ({_holder(previous)})" if previous
           else "an interrupted job")
    log.warning("resuming from %d chunk(s) in %s/ left by %s; pass --restart to discard them", len(parts), work, who)
    return len(parts)
