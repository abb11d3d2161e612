"""Loaders for every data source, with validation that names the file, the row and the problem.

Row numbers in messages are 1-based data rows (the header is not counted), i.e. the
row as shown by `pandas.read_csv(...).iloc[row - 1]`.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from . import labels as L
from ..core import paths
from .fine_labels import attach_fine_labels

log = logging.getLogger(__name__)

TEXT_COLUMN = "text"


class DataValidationError(ValueError):
    """Bad input data: carries the file, the row (if any) and the problem."""

    def __init__(self, path: str | Path, problem: str, row: int | None = None):
        self.path, self.problem, self.row = Path(path), problem, row
        where = f"{self.path}" + (f", row {row}" if row is not None else "")
        super().__init__(f"{where}: {problem}")


def read_text_checked(path: str | Path) -> str:
    """Read a file as UTF-8 (BOM allowed); undecodable bytes raise with the line they are on."""
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(path, "file not found")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataValidationError(
            path, f"not valid UTF-8 at byte {e.start} (line {line} of the file): {raw[e.start:e.start + 4]!r}; "
                  "re-save the file as UTF-8") from None


def read_csv_checked(path: str | Path, **kwargs) -> pd.DataFrame:
    """`pd.read_csv` with UTF-8 checking and every value read as a string (no NaN guessing)."""
    text = read_text_checked(path)
    if not text.strip():
        raise DataValidationError(path, "file is empty")
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, **kwargs)
    except pd.errors.ParserError as e:
        raise DataValidationError(path, f"cannot parse as CSV: {e}") from None


def delimiter_hint(df: pd.DataFrame) -> str:
    """' (looks like ';'-separated ...)' when a comma-read file has one column holding another delimiter."""
    if df.shape[1] != 1:
        return ""
    header = str(df.columns[0])
    for sep, name in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
        if header.count(sep) >= 1:
            return f" (the file looks like {name}-separated; save it comma-separated)"
    return ""


def require_columns(df: pd.DataFrame, path: str | Path, columns: Sequence[str], expected: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataValidationError(path, f"missing column(s) {missing}; expected {expected}{delimiter_hint(df)}")


def expected_row_count(path: str | Path, setting: int | str | None = "auto") -> tuple[int | None, str]:
    """The row count a file must have, and where it comes from.

    `setting`: an int (the config says so), None (no check) or "auto": the count declared in
    `dataset.yaml` next to the file (`rows: {file name: count}`), else the known count of the real
    file (`paths.KNOWN_ROW_COUNTS`), else no check.
    """
    if setting is None or isinstance(setting, bool):
        return None, ""
    if isinstance(setting, int):
        return setting, "common.expected_test_rows"
    if setting != "auto":
        raise ValueError(f"expected_test_rows must be 'auto', an integer or null, got {setting!r}")
    path = Path(path)
    info = path.parent / paths.DATASET_INFO
    if info.is_file():
        import yaml

        try:
            declared = (yaml.safe_load(read_text_checked(info)) or {}).get("rows", {}) or {}
        except (yaml.YAMLError, AttributeError) as e:
            raise DataValidationError(info, f"cannot read the row counts (expected rows: {{file: count}}): {e}") from None
        if path.name in declared:
            n = declared[path.name]
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise DataValidationError(info, f"rows.{path.name} must be a positive integer, got {n!r}")
            return n, f"declared in {info}"
    known = paths.KNOWN_ROW_COUNTS.get(f"{path.parent.name}/{path.name}")
    if known is not None:
        return known, (f"the real {path.parent.name} file's count; for other data set common.expected_test_rows "
                       f"or declare rows in {info}")
    return None, ""


def check_text_column(df: pd.DataFrame, path: str | Path, column: str = TEXT_COLUMN) -> None:
    """Every text present and not blank."""
    blank = df[column].astype(str).str.strip() == ""
    if blank.any():
        rows = (np.flatnonzero(blank.to_numpy()) + 1).tolist()
        more = f" (and {len(rows) - 1} more)" if len(rows) > 1 else ""
        raise DataValidationError(path, f"empty or missing text in column {column!r}{more}", row=rows[0])


def check_label_columns(df: pd.DataFrame, path: str | Path, label_cols: Sequence[str]) -> pd.DataFrame:
    """Label values must be 0 or 1; return them as int64 columns."""
    out = df.copy()
    for col in label_cols:
        values = df[col].astype(str).str.strip()
        bad = ~values.isin(["0", "1"])
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataValidationError(path, f"label {col!r} must be 0 or 1, got {df[col].iloc[i]!r}", row=i + 1)
        out[col] = values.astype(np.int64)
    return out


def warn_duplicates(df: pd.DataFrame, path: str | Path, column: str = TEXT_COLUMN) -> int:
    """Log a warning naming duplicate texts; return how many rows repeat an earlier one."""
    dup = df[column].duplicated(keep="first")
    n = int(dup.sum())
    if n:
        first = int(np.flatnonzero(dup.to_numpy())[0]) + 1
        log.warning("%s: %d duplicate text(s), first at row %d: %.60r", path, n, first, df[column].iloc[first - 1])
    return n


def load_labeled_csv(path: str | Path, label_cols: Sequence[str], *, expected_rows: int | str | None = None,
                     text_col: str = TEXT_COLUMN, allow_extra: bool = False) -> pd.DataFrame:
    """Load a Kaggle-format CSV (`text` + 0/1 label columns) and validate it strictly.

    Raises DataValidationError for: missing file, bad UTF-8, missing or extra columns
    (extra ones are dropped with a log line when `allow_extra`, e.g. the pipeline's `source`),
    empty text, labels other than 0/1, a row count other than `expected_rows` (an int, or "auto":
    see `expected_row_count`). Duplicate texts only warn.
    """
    df = read_csv_checked(path)
    expected = [text_col, *label_cols]
    missing = [c for c in expected if c not in df.columns]
    extra = [c for c in df.columns if c not in expected]
    if missing:
        raise DataValidationError(path, f"missing column(s) {missing}; expected columns {expected}{delimiter_hint(df)}")
    if extra and not allow_extra:
        raise DataValidationError(path, f"unexpected column(s) {extra}; expected columns {expected}")
    if extra:
        log.info("%s: ignoring extra column(s) %s", path, extra)
    n_expected, source = expected_row_count(path, expected_rows)
    if n_expected is not None and len(df) != n_expected:
        raise DataValidationError(path, f"has {len(df)} rows, expected {n_expected} ({source})")
    check_text_column(df, path, text_col)
    df = check_label_columns(df, path, label_cols)
    warn_duplicates(df, path, text_col)
    return df[expected].reset_index(drop=True)


def label_matrix(df: pd.DataFrame, label_cols: Sequence[str]) -> np.ndarray:
    return df[list(label_cols)].to_numpy(dtype=np.int64)


# --- cryptonite -------------------------------------------------------------------------------

def load_cryptonite(data_root: str | Path, *, expected_test_rows: int | str | None = "auto"
                    ) -> tuple[pd.DataFrame | None, pd.DataFrame, pd.DataFrame]:
    """Return (train or None, valid, test) from a data root. train.csv is optional.

    `expected_test_rows`: see `expected_row_count` ("auto": the data root's declaration, else 8,742)."""
    root = Path(data_root)
    train_path = root / paths.CRYPTONITE_TRAIN
    train = load_labeled_csv(train_path, L.CRYPTONITE_LABELS) if train_path.exists() else None
    valid = load_labeled_csv(root / paths.CRYPTONITE_VALID, L.CRYPTONITE_LABELS)
    test = load_labeled_csv(root / paths.CRYPTONITE_TEST, L.CRYPTONITE_LABELS, expected_rows=expected_test_rows)
    return train, valid, test


# --- ru-izard-emotions ------------------------------------------------------------------------

def load_izard(data_root: str | Path, splits: Sequence[str] = ("train", "val", "test")) -> pd.DataFrame:
    """ru-izard-emotions from local CSVs: `text` + the 10 Izard labels + `split`."""
    frames = []
    for split in splits:
        path = Path(data_root) / paths.IZARD_SPLITS[split]
        frames.append(load_labeled_csv(path, L.IZARD_LABELS).assign(split=split))
    return pd.concat(frames, ignore_index=True)


# --- CEDR --------------------------------------------------------------------------------------

_CEDR_LABELS_RE = re.compile(r"^\[\s*(\d+(?:[\s,]+\d+)*)?\s*\]$")


def parse_cedr_labels(value: str) -> list[int]:
    """Parse '[1 4]', '[2]' or '[]' into a list of ids; ValueError if malformed."""
    m = _CEDR_LABELS_RE.match(str(value).strip())
    if not m:
        raise ValueError(f"labels must look like [], [2] or [1 4], got {value!r}")
    ids = [int(t) for t in re.split(r"[\s,]+", m.group(1))] if m.group(1) else []
    if any(i < 0 or i >= len(L.CEDR_IDS) for i in ids):
        raise ValueError(f"label ids must be in 0..{len(L.CEDR_IDS) - 1}, got {value!r}")
    return ids


def load_cedr_file(path: str | Path) -> pd.DataFrame:
    """A CEDR CSV (`text,labels,source`) as `text` + the 6 CEDR task labels (+ `source`)."""
    df = read_csv_checked(path)
    require_columns(df, path, ("text", "labels"), "text,labels[,source]")
    check_text_column(df, path)
    ids = []
    for i, v in enumerate(df["labels"]):
        try:
            ids.append(parse_cedr_labels(v))
        except ValueError as e:
            raise DataValidationError(path, str(e), row=i + 1) from None
    y = L.ids_to_matrix(ids, len(L.CEDR_IDS))
    out = pd.DataFrame({"text": df["text"]})
    out[L.CEDR_NO_EMOTION] = (y.sum(axis=1) == 0).astype(np.int64)
    for j, name in enumerate(L.CEDR_IDS):
        out[name] = y[:, j]
    if "source" in df.columns:
        out["source"] = df["source"]
    warn_duplicates(out, path)
    return out


# --- GoEmotions (English) ------------------------------------------------------------------

def load_goemotions_tsv(path: str | Path, label_names: Sequence[str], keep_id: bool = False) -> pd.DataFrame:
    """A GoEmotions TSV (`text<TAB>ids<TAB>id`, no header) as `text` + 0/1 columns over `label_names`
    (+ the comment `id` as a string column when `keep_id`)."""
    df = read_csv_checked(path, sep="\t", header=None, quoting=3)
    if df.shape[1] < (3 if keep_id else 2):
        raise DataValidationError(path, f"expected tab-separated text, label ids, id; got {df.shape[1]} column(s)")
    check_text_column(df.rename(columns={0: "text"}), path)
    ids = []
    for i, v in enumerate(df[1]):
        try:
            row = [int(t) for t in str(v).split(",") if t.strip() != ""]
        except ValueError:
            raise DataValidationError(path, f"label ids must be comma-separated integers, got {v!r}", row=i + 1) from None
        if not row or any(k < 0 or k >= len(label_names) for k in row):
            raise DataValidationError(path, f"label ids must be in 0..{len(label_names) - 1}, got {v!r}", row=i + 1)
        ids.append(row)
    out = pd.DataFrame(L.ids_to_matrix(ids, len(label_names)), columns=list(label_names))
    out.insert(0, "text", df[0].to_numpy())
    if keep_id:
        out["id"] = df[2].astype(str).str.strip().to_numpy()
    return out


def load_goemotions_as_cryptonite(data_root: str | Path, fine_labels: bool = False) -> pd.DataFrame:
    """GoEmotions train (English, Ekman grouping) mapped to the cryptonite columns.

    `fine_labels`: also the 28 fine labels of goemotions-en/original_train.tsv as `aux_<label>` columns
    (fine_labels.attach_fine_labels: joined by the comment id; missing where an id has no match), when that
    file exists; logs how many rows matched.
    """
    root = Path(data_root)
    df = load_goemotions_tsv(root / paths.GOEMOTIONS_EKMAN, L.GOEMOTIONS_EKMAN_LABELS, keep_id=fine_labels)
    y = L.map_label_matrix(label_matrix(df, L.GOEMOTIONS_EKMAN_LABELS), L.GOEMOTIONS_EKMAN_LABELS,
                           L.CRYPTONITE_LABELS, {k: k for k in L.GOEMOTIONS_EKMAN_LABELS})
    out = pd.DataFrame(y, columns=L.CRYPTONITE_LABELS)
    out.insert(0, "text", df["text"].to_numpy())
    original = root / paths.GOEMOTIONS_ORIGINAL
    if fine_labels and original.is_file():
        fine = load_goemotions_tsv(original, L.GOEMOTIONS_LABELS, keep_id=True)
        with_ids, matched = attach_fine_labels(out.assign(id=df["id"].to_numpy()), fine)
        log.info("goemotions_en: fine labels for %d of %d rows (joined by id with %s)", matched, len(out), original)
        out = with_ids.drop(columns="id")
    elif fine_labels:
        log.info("goemotions_en: %s not found; no fine labels", original)
    return out


# --- English Twitter emotions ----------------------------------------------------------------

def load_twitter(path: str | Path) -> pd.DataFrame:
    """emotions-en/emotions.csv (`Text,Emotion`) as `text` + `label` (canonical name)."""
    df = read_csv_checked(path)
    require_columns(df, path, ("Text", "Emotion"), "Text,Emotion")
    df = df.rename(columns={"Text": "text"})
    check_text_column(df, path)
    label = df["Emotion"].str.strip().str.lower().replace(L.TWITTER_FILE_ALIASES)
    bad = ~label.isin(L.TWITTER_LABELS)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataValidationError(path, f"unknown emotion {df['Emotion'].iloc[i]!r}; expected one of "
                                        f"{L.TWITTER_LABELS} (or 'happy' for joy)", row=i + 1)
    out = pd.DataFrame({"text": df["text"], "label": label})
    warn_duplicates(out, path)
    return out
