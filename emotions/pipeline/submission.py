"""Kaggle submission: build, validate, write atomically, optionally submit with the Kaggle CLI."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..data.readers import read_csv_checked
from ..core.io import file_sha256, read_json, write_csv_atomic, write_json_atomic
from ..core.paths import KAGGLE_COMPETITION

log = logging.getLogger(__name__)


class SubmissionError(ValueError):
    """A submission that Kaggle would reject or score wrongly."""


def make_submission(template: pd.DataFrame, decisions: np.ndarray, labels: Sequence[str]) -> pd.DataFrame:
    """`template` (the test file as read) with its label columns filled by 0/1 `decisions`."""
    decisions = np.asarray(decisions)
    if decisions.shape != (len(template), len(labels)):
        raise SubmissionError(f"decisions have shape {decisions.shape}, expected {(len(template), len(labels))}")
    sub = template.copy()
    for j, name in enumerate(labels):
        sub[name] = decisions[:, j].astype(np.int64)
    return sub


def validate_submission(sub: pd.DataFrame, template: pd.DataFrame, labels: Sequence[str]) -> None:
    """Same columns in the same order, same rows in the same order with the same text, 0/1 ints."""
    if list(sub.columns) != list(template.columns):
        raise SubmissionError(f"columns {list(sub.columns)} differ from the test file's {list(template.columns)}")
    if len(sub) != len(template):
        raise SubmissionError(f"{len(sub)} rows, the test file has {len(template)}")
    text_col = template.columns[0]
    differs = sub[text_col].astype(str).to_numpy() != template[text_col].astype(str).to_numpy()
    if differs.any():
        i = int(np.flatnonzero(differs)[0])
        raise SubmissionError(f"row {i + 1}: text differs from the test file ({sub[text_col].iloc[i]!r} vs "
                              f"{template[text_col].iloc[i]!r}); rows must keep the test file's order")
    for name in labels:
        col = sub[name]
        if not pd.api.types.is_integer_dtype(col):
            raise SubmissionError(f"column {name!r} must hold integers, has dtype {col.dtype}")
        bad = ~col.isin([0, 1])
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise SubmissionError(f"row {i + 1}: {name!r} = {col.iloc[i]}, must be 0 or 1")


def validate_submission_file(path: str | Path, template_path: str | Path, labels: Sequence[str]) -> pd.DataFrame:
    """Re-read a written submission and check it against the test file."""
    sub = pd.read_csv(path, keep_default_na=False)
    template = read_csv_checked(template_path)
    validate_submission(sub, template, labels)
    return sub


def write_submission(sub: pd.DataFrame, template: pd.DataFrame, labels: Sequence[str], *,
                     run_dir: str | Path, submissions_dir: str | Path, run_id: str) -> dict[str, Path]:
    """Validate, then write atomically: the run's copy, a per-run copy and the latest `submission.csv`.

    Earlier runs' per-run copies are never touched; `submission.csv` is replaced only by a
    valid submission, so a failing run leaves the previous one intact. `submission.json` next to it
    records which run the latest came from.
    """
    validate_submission(sub, template, labels)
    out = {
        "run_copy": write_csv_atomic(Path(run_dir) / "submission.csv", sub),
        "per_run": write_csv_atomic(Path(submissions_dir) / f"submission-{run_id}.csv", sub),
        "latest": write_csv_atomic(Path(submissions_dir) / "submission.csv", sub),
    }
    write_json_atomic(Path(submissions_dir) / LATEST_INFO, {
        "run_id": run_id, "run_dir": str(Path(run_dir).resolve()), "rows": len(sub),
        "sha256": file_sha256(out["latest"])})
    return out


LATEST_INFO = "submission.json"   # which run submissions/submission.csv came from


def run_submission(run_dir: str | Path, submissions_dir: str | Path, run_id: str) -> Path | None:
    """This run's own submission: `submissions/submission-<run-id>.csv` when it matches the run
    folder's copy, else the run folder's copy; None when the run has none."""
    own = Path(run_dir) / "submission.csv"
    if not own.is_file():
        return None
    per_run = Path(submissions_dir) / f"submission-{run_id}.csv"
    if per_run.is_file() and file_sha256(per_run) == file_sha256(own):
        return per_run
    return own


def describe_latest(submissions_dir: str | Path, own: Path) -> str:
    """One line on `submissions/submission.csv`: this run's file, or which run it came from."""
    latest = Path(submissions_dir) / "submission.csv"
    if not latest.is_file():
        return f"{latest} does not exist"
    if file_sha256(latest) == file_sha256(own):
        return f"{latest} is this run's submission"
    info_file = Path(submissions_dir) / LATEST_INFO
    info = read_json(info_file) if info_file.is_file() else {}
    if info.get("sha256") == file_sha256(latest) and info.get("run_id"):
        src = f"run {info['run_id']} ({info.get('rows', '?')} rows)"
    else:
        src = "another run"
    return f"{latest} holds {src}, not this run's submission; --submit uses this run's {own}"


def kaggle_credentials_present() -> bool:
    home = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))
    return (home / "kaggle.json").is_file() or bool(os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"))


def kaggle_submit(path: str | Path, message: str, competition: str = KAGGLE_COMPETITION) -> bool:
    """Submit with the Kaggle CLI when it and credentials exist; otherwise say how. True on success."""
    cmd = ["kaggle", "competitions", "submit", "-c", competition, "-f", str(path), "-m", message]
    if shutil.which("kaggle") is None or not kaggle_credentials_present():
        log.warning("Kaggle CLI or credentials missing: `pip install kaggle`, put your API token in "
                    "~/.kaggle/kaggle.json (or set KAGGLE_USERNAME/KAGGLE_KEY), then run: %s",
                    " ".join(f'"{c}"' if " " in c else c for c in cmd))
        return False
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        log.error("kaggle submit failed (exit %d): %s", res.returncode, (res.stderr or res.stdout).strip()[-500:])
        return False
    log.info("submitted to Kaggle: %s", res.stdout.strip()[-300:])
    return True
