"""The 28 fine-grained GoEmotions labels as auxiliary columns `aux_<label>` of a training frame.

GoEmotions rows (extension source `goemotions_en`) carry their 28 fine labels (0/1) next to the task's 7 labels;
every other row has the aux columns missing: NaN in memory (nullable Int64 after `extend_training_set`), an empty
field in a CSV, "" when read back with `keep_default_na=False`. `aux_matrix` turns any of these into floats with
NaN for missing, which is what a training loss masks. The label list itself is `labels.GOEMOTIONS_LABELS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from . import labels as L

AUX_PREFIX = "aux_"
GOEMOTIONS_AUX_COLUMNS: list[str] = [AUX_PREFIX + name for name in L.GOEMOTIONS_LABELS]


def aux_columns(frame: pd.DataFrame) -> list[str]:
    """The frame's auxiliary label columns (`aux_*`), in frame order."""
    return [c for c in frame.columns if str(c).startswith(AUX_PREFIX)]


def aux_matrix(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> np.ndarray:
    """Float32 matrix of the aux columns: 0/1 where given, NaN where missing ("", NaN, <NA>)."""
    cols = aux_columns(frame) if columns is None else list(columns)
    if not cols:
        return np.zeros((len(frame), 0), dtype=np.float32)
    y = np.column_stack([pd.to_numeric(frame[c], errors="coerce").astype("float64").to_numpy() for c in cols])
    bad = ~np.isnan(y) & ~np.isin(y, (0.0, 1.0))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"aux label {cols[c]!r}, row {r + 1}: must be 0, 1 or empty, got {y[r, c]}")
    return y.astype(np.float32)


def as_nullable(frame: pd.DataFrame) -> pd.DataFrame:
    """The aux columns as nullable Int64 (written to CSV as 0 / 1 / empty); other columns unchanged."""
    cols = aux_columns(frame)
    if not cols:
        return frame
    out = frame.copy()
    for c in cols:
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("Int64")
    return out


def attach_fine_labels(ekman: pd.DataFrame, fine: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """`ekman` (with an `id` column) plus `aux_<label>` columns taken from `fine` (id + the 28 label columns).

    Rows are joined by the GoEmotions comment id (third TSV column), not by position. In the published train
    split (goemotions-en/ekman_train.tsv and original_train.tsv) both files have 43410 rows with unique ids, in
    the same order and with the same texts, so every row matches. An id missing from `fine` leaves that row's
    aux columns missing (NaN); an id repeated in `fine` is an error. Returns (frame, rows matched).
    """
    if fine["id"].duplicated().any():
        dup = fine.loc[fine["id"].duplicated(), "id"].iloc[0]
        raise ValueError(f"GoEmotions fine labels: id {dup!r} appears more than once")
    y = fine.set_index("id")[list(L.GOEMOTIONS_LABELS)]
    y.columns = GOEMOTIONS_AUX_COLUMNS
    joined = y.reindex(ekman["id"].to_numpy())
    matched = int(joined.notna().all(axis=1).sum())
    out = ekman.reset_index(drop=True).copy()
    for c in GOEMOTIONS_AUX_COLUMNS:
        out[c] = joined[c].astype("float64").astype("Int64").to_numpy()
    return out, matched


def attach_from_csv(frame: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    """`frame` (rows of the CSV at `path`, same order) with the CSV's aux columns added back, if it has any."""
    head = pd.read_csv(path, nrows=0)
    cols = aux_columns(head)
    if not cols:
        return frame
    aux = pd.read_csv(path, usecols=cols, keep_default_na=False, dtype=str)
    if len(aux) != len(frame):
        raise ValueError(f"{path}: {len(aux)} rows of aux labels for {len(frame)} training rows")
    return pd.concat([frame.reset_index(drop=True), aux[cols]], axis=1)
