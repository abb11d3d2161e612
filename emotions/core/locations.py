"""Where a notebook reads and writes: defaults resolved against the project root, or the Kaggle kernel layout.

A notebook's `parameters` cell holds literals only (`run_dir = None`, `data_dir = None`); the next cell
calls :func:`resolve`, so papermill's CLI works from any working directory and a notebook uploaded to
Kaggle finds the attached competition under ``/kaggle/input/`` and writes under ``/kaggle/working/``.
The Kaggle root is ``/kaggle`` unless ``EMOTIONS_KAGGLE_ROOT`` names another folder (tests use a
temporary folder laid out the same way).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .paths import (CEDR_SPLITS, CRYPTONITE_TEST, CRYPTONITE_VALID, DEMO_DATA_DIR, GOEMOTIONS_EKMAN,
                    IZARD_SPLITS, RUNS_DIR, SUBMISSIONS_DIR, TWITTER_CSV)

KAGGLE_ROOT_ENV = "EMOTIONS_KAGGLE_ROOT"
MANUAL_RUN = "manual"
KAGGLE_DATA_LINKS = "emotions-data"          # data root of links made under /kaggle/working
# the file that marks each task's data (relative to a data root), and the files of each source folder
TASK_MARKERS = {"cryptonite": CRYPTONITE_VALID, "cedr": CEDR_SPLITS["train"], "emotions-en": TWITTER_CSV}
SOURCE_FILES = {
    "cryptonite": [CRYPTONITE_VALID, CRYPTONITE_TEST],
    "ru-izard-emotions": list(IZARD_SPLITS.values()),
    "cedr": list(CEDR_SPLITS.values()),
    "goemotions-en": [GOEMOTIONS_EKMAN],
    "emotions-en": [TWITTER_CSV],
}
_SEARCH_DEPTH = 4      # /kaggle/input/competitions/<slug>/ or /kaggle/input/datasets/<owner>/<slug>/


@dataclass(frozen=True)
class Locations:
    """Resolved folders of a notebook run."""
    run_dir: Path
    data_dir: Path
    submissions_dir: Path
    kaggle: bool                 # running in a Kaggle kernel (or a folder laid out like one)


def kaggle_root() -> Path | None:
    """The Kaggle root (``/kaggle`` or ``$EMOTIONS_KAGGLE_ROOT``) when it has ``input/`` and ``working/``."""
    root = Path(os.environ.get(KAGGLE_ROOT_ENV) or "/kaggle")
    return root if (root / "input").is_dir() and (root / "working").is_dir() else None


def _folders(top: Path, depth: int = _SEARCH_DEPTH):
    """Folders under `top` (itself first), breadth first, at most `depth` levels down, sorted by name."""
    level = [top]
    for _ in range(depth + 1):
        nxt = []
        for folder in level:
            yield folder
            try:
                nxt += sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
            except OSError:
                continue
        level = nxt


def kaggle_data_root(root: Path, task: str = "cryptonite") -> Path:
    """The data root for `task` from what is attached under ``<root>/input``.

    A folder laid out like a data root (``cryptonite/valid.csv`` ...) is used as it is. Otherwise the
    folders holding a source's files directly (the competition's ``valid.csv`` and
    ``test_without_answers.csv`` in ``input/<competition>/``; datasets such as ``ru-izard-emotions``)
    are linked into ``<root>/working/emotions-data/<source>`` and that folder is the data root.
    """
    if task not in TASK_MARKERS:
        raise ValueError(f"unknown task {task!r}; tasks: {sorted(TASK_MARKERS)}")
    inputs = root / "input"
    folders = list(_folders(inputs))
    for folder in folders:
        if (folder / TASK_MARKERS[task]).is_file():
            return folder
    found: dict[str, Path] = {}
    for source, files in SOURCE_FILES.items():
        names = [Path(f).name for f in files]
        for folder in folders:
            if all((folder / n).is_file() for n in names):
                found[source] = folder
                break
    marker_source = Path(TASK_MARKERS[task]).parts[0]
    if marker_source not in found:
        raise FileNotFoundError(
            f"Kaggle layout at {root}: no data for task {task!r} under {inputs}: attach the competition "
            f"(a folder with {', '.join(Path(f).name for f in SOURCE_FILES[marker_source])}) "
            f"or a dataset laid out like a data root ({TASK_MARKERS[task]}), or pass data_dir")
    links = root / "working" / KAGGLE_DATA_LINKS
    links.mkdir(parents=True, exist_ok=True)
    for source, folder in found.items():
        link = links / source
        if link.is_symlink() and link.resolve() == folder.resolve():
            continue
        if link.exists() and not link.is_symlink():
            raise FileExistsError(f"{link} exists and is not a link made by this project; move it away")
        tmp = links / f".{source}.tmp"
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(folder.resolve(), target_is_directory=True)
        os.replace(tmp, link)
    return links


def _given(value: str | Path | None) -> Path | None:
    """A parameter given by the user (relative paths are relative to the current folder), or None."""
    if value is None or str(value).strip() == "":
        return None
    return Path(value).expanduser().resolve()


def resolve(run_dir: str | Path | None = None, data_dir: str | Path | None = None, task: str = "cryptonite",
            submissions_dir: str | Path | None = None) -> Locations:
    """Resolve a notebook's folders: given values win; defaults are the Kaggle layout when there is one,
    else `runs/manual`, the bundled demo data and `submissions/` of this checkout (never outside it)."""
    kaggle = kaggle_root()
    if kaggle is not None:
        working = kaggle / "working"
        run_default = working / "runs" / MANUAL_RUN
        data = _given(data_dir) or kaggle_data_root(kaggle, task)
        subs_default = working                      # Kaggle takes /kaggle/working/submission.csv
    else:
        run_default = RUNS_DIR / MANUAL_RUN
        data = _given(data_dir) or DEMO_DATA_DIR
        subs_default = SUBMISSIONS_DIR
    if not data.is_dir():
        raise FileNotFoundError(f"data_dir {data} is not a folder (a data root laid out like data/demo/)")
    return Locations(run_dir=_given(run_dir) or run_default, data_dir=data,
                     submissions_dir=_given(submissions_dir) or subs_default, kaggle=kaggle is not None)

