"""The project's written spoken-style utterances (data/utterances/): a training source and an evaluation set.

The competition's test file holds two populations (emotions.data.populations): GoEmotions comments like
valid.csv, and short, explicit, spoken-style emotional utterances (about 38%) that no labelled set resembles.
`data/utterances/` was written for the project from a style brief (WRITING_BRIEF.md there), never from test rows:

* ``train/*.csv``  one file per writer (training writers, everyday topics). A seeded, stratified share of
  these rows is ``tune_utterances`` (thresholds); the rest is the ``utterances`` extension source.
* ``eval/*.csv``   other writers, other topics: ``holdout_utterances``, never trained on, used for no choice.

A data root with its own ``utterances/train`` folder (the demo root's small sample) is used instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Sequence

import pandas as pd

from ..core import paths
from .labels import CRYPTONITE_LABELS
from .readers import DataValidationError, load_labeled_csv
from .splits import split_frame

# Share of the test file's utterance-style rows (about 3,360 of 8,742: ../shared/data/README.md; the
# population view of 01_eda measures it again). Weight of the utterance tune rows when thresholds are mixed.
UTTERANCE_SHARE = 0.38
WRITER_COLUMN = "writer"
Kind = Literal["train", "eval"]


def utterances_root(data_root: str | Path | None = None) -> Path:
    """`<data root>/utterances` when that root brings its own (train/ inside), else the project's data/utterances."""
    own = Path(data_root) / "utterances" if data_root is not None else None
    return own if own is not None and (own / "train").is_dir() else Path(paths.UTTERANCES_DIR)


def utterance_files(kind: Kind, root: str | Path | None = None) -> list[Path]:
    """The CSV files of one part (`train` or `eval`), sorted by name; an empty folder raises."""
    folder = Path(root or paths.UTTERANCES_DIR) / kind
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise DataValidationError(folder, f"no utterance CSVs (*.csv) in {folder}")
    return files


def load_utterances(kind: Kind, root: str | Path | None = None,
                    labels: Sequence[str] = CRYPTONITE_LABELS) -> pd.DataFrame:
    """All rows of one part: `text`, the label columns, `writer` (the file's stem), validated per file."""
    frames = [load_labeled_csv(p, labels).assign(**{WRITER_COLUMN: p.stem}) for p in utterance_files(kind, root)]
    return pd.concat(frames, ignore_index=True)


def utterance_parts(seed: int, tune_frac: float, root: str | Path | None = None,
                    labels: Sequence[str] = CRYPTONITE_LABELS) -> dict[str, pd.DataFrame]:
    """`tune_utterances` (a seeded, stratified `tune_frac` of the training writers' rows) and
    `holdout_utterances` (the evaluation writers' rows); `source` says which."""
    train = load_utterances("train", root, labels)
    tune = split_frame(train, {"tune": tune_frac, "rest": 1 - tune_frac}, seed, list(labels))["tune"]
    holdout = load_utterances("eval", root, labels)
    return {"tune_utterances": tune.assign(source="utterances-train"),
            "holdout_utterances": holdout.assign(source="utterances-eval")}


def read_utterance_source(root: str | Path | None, labels: Sequence[str], reserved: Sequence[str] = ()
                          ) -> tuple[pd.DataFrame, int]:
    """The training writers' rows minus those `reserved` for tune_utterances: (frame, rows reserved)."""
    rows = load_utterances("train", root, labels)
    keep = ~rows["text"].isin(set(reserved))
    return rows[keep].reset_index(drop=True)[["text", *labels]], int((~keep).sum())
