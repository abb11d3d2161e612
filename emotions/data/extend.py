"""Grow a training set with other labelled sets, mapped to the task's labels, without leaks.

Sources (all optional; a source absent from `sources` is not used):

* ``izard``  ru-izard-emotions: local CSVs under the data root, else the Hugging Face hub.
* ``cedr``   CEDR (local CSVs), no-emotion -> neutral.
* ``goemotions_en``  GoEmotions train in English (Ekman grouping); only useful for multilingual models. Its rows
  also carry the 28 fine-grained GoEmotions labels as `aux_<label>` columns (emotions.data.fine_labels), missing
  for every other row, for an auxiliary training head (transformer option `aux_weight`).
* ``utterances``  the project's written spoken-style utterances (data/utterances/train, emotions.data.utterances),
  minus the rows reserved for the `tune_utterances` split.
* ``user_csvs``  extra CSVs in the Kaggle format (`text` + the label columns).

Leak control (emotions.data.leaks, on by default) drops normalised duplicates (within the extension and
against the training set) and near copies of protected texts (valid / tune / holdout / test).
"""

from __future__ import annotations

from dataclasses import dataclass

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from . import labels as L
from ..core import paths
from .readers import check_label_columns, load_cedr_file, load_goemotions_as_cryptonite, load_izard, load_labeled_csv
from .utterances import read_utterance_source, utterances_root
from ..core import hub
from .fine_labels import aux_columns, as_nullable
from .leaks import duplicate_mask, leak_options, match_keys, near_copy_mask

log = logging.getLogger(__name__)

SOURCE_COLUMN = "source"

# Defaults per source; a source given in `sources` gets these for the keys it does not set.
SOURCE_DEFAULTS: dict[str, dict[str, Any]] = {
    "izard": {
        "splits": ["train", "val", "test"],
        "mapping": {},                 # overrides of labels.IZARD_TO_CRYPTONITE_DEFAULT, e.g. {"guilt": None}
        "select_labels": None,         # keep only rows with one of these (mapped) labels; None keeps all
        "max_rows": None,              # at most this many rows kept (seeded sample after leak control)
        "hub_id": "Djacon/ru-izard-emotions",
        "hub_kwargs": {},              # extra datasets.load_dataset arguments (e.g. data_files=...)
    },
    "cedr": {
        "splits": ["train", "test"],
        "mapping": {},                 # overrides of labels.CEDR_TO_CRYPTONITE
        "select_labels": None,
        "max_rows": None,
    },
    "goemotions_en": {
        "select_labels": None,
        "max_rows": None,
    },
    "utterances": {
        "select_labels": None,
        "max_rows": None,
    },
}
SOURCE_ORDER = ["izard", "cedr", "goemotions_en", "utterances", "user_csvs"]
# datasets.load_dataset builder names that read local files (no hub access needed)
_LOCAL_BUILDERS = {"csv", "json", "parquet", "text", "arrow", "pandas"}
_HUB_SPLIT_ALIASES = {"val": ["val", "validation"], "validation": ["validation", "val"]}


class SourceUnavailable(RuntimeError):
    """A source cannot be read here (missing files, hub unreachable); it is skipped with one log line."""


# --- configuration ---------------------------------------------------------------------------

def source_config(name: str, cfg: dict | bool | None) -> dict:
    """One source's options with defaults; unknown keys raise ValueError."""
    if isinstance(cfg, bool) or cfg is None:
        cfg = {"enabled": bool(cfg)}
    defaults = {"enabled": True, **SOURCE_DEFAULTS[name]}   # a source named here is used unless it says otherwise
    unknown = set(cfg) - set(defaults)                       # (the run config's schema names each one, off)
    if unknown:
        raise ValueError(f"sources.{name}: unknown option(s) {sorted(unknown)}; known: {sorted(defaults)}")
    return {**defaults, **cfg}


# --- readers: each returns `text` + the target label columns ---------------------------------

def _map(df: pd.DataFrame, source_labels: Sequence[str], mapping: dict, labels: Sequence[str]) -> pd.DataFrame:
    y = L.map_label_matrix(df[list(source_labels)].to_numpy(), source_labels, labels, mapping)
    out = pd.DataFrame(y, columns=list(labels))
    out.insert(0, "text", df["text"].astype(str).to_numpy())
    return out


def _check_mapping(name: str, mapping: dict, source_labels: Sequence[str], labels: Sequence[str]) -> dict:
    unknown = set(mapping) - set(source_labels)
    if unknown:
        raise ValueError(f"{name} mapping: unknown source label(s) {sorted(unknown)}; known: {list(source_labels)}")
    bad = {k: v for k, v in mapping.items() if v is not None and v not in labels}
    if bad:
        raise ValueError(f"{name} mapping sends {bad} to label(s) that are not among {list(labels)}; "
                         "map them to one of these or to None")
    return mapping


def izard_mapping(overrides: dict | None, labels: Sequence[str]) -> dict[str, str | None]:
    """IZARD_TO_CRYPTONITE_DEFAULT with `overrides` applied (None drops an Izard label)."""
    return _check_mapping("izard", {**L.IZARD_TO_CRYPTONITE_DEFAULT, **(overrides or {})}, L.IZARD_LABELS, labels)


def cedr_mapping(overrides: dict | None, labels: Sequence[str]) -> dict[str, str | None]:
    """CEDR_TO_CRYPTONITE (no_emotion -> neutral) with `overrides` applied."""
    return _check_mapping("cedr", {**L.CEDR_TO_CRYPTONITE, **(overrides or {})}, L.CEDR_LABELS, labels)


def load_izard_hub(hub_id: str, splits: Sequence[str], **hub_kwargs) -> pd.DataFrame:
    """ru-izard-emotions through `datasets.load_dataset(hub_id, **hub_kwargs)` as `text` + Izard labels.

    Split names: "val" is also looked up as "validation" (the hub's name). Raises SourceUnavailable
    when the dataset cannot be loaded (offline, not found).
    """
    try:
        import datasets
        ds = datasets.load_dataset(hub_id, **hub_kwargs)
    except Exception as e:  # offline / not found / bad files: one line, no traceback
        log.debug("load_dataset(%r) failed", hub_id, exc_info=True)
        raise SourceUnavailable(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    frames = []
    for split in splits:
        name = next((s for s in _HUB_SPLIT_ALIASES.get(split, [split]) if s in ds), None)
        if name is None:
            raise ValueError(f"{hub_id}: split {split!r} not found; it has {list(ds)}")
        df = ds[name].to_pandas()
        missing = [c for c in ["text", *L.IZARD_LABELS] if c not in df.columns]
        if missing:
            raise ValueError(f"{hub_id} split {name!r}: missing column(s) {missing}")
        df = df[["text", *L.IZARD_LABELS]].astype(str)
        df = check_label_columns(df, f"{hub_id}:{name}", L.IZARD_LABELS)
        frames.append(df.assign(split=split))
    return pd.concat(frames, ignore_index=True)


def read_izard(cfg: dict, data_root: Path, labels: Sequence[str]) -> pd.DataFrame:
    mapping = izard_mapping(cfg["mapping"], labels)
    local = [data_root / paths.IZARD_SPLITS[s] for s in cfg["splits"]]
    if all(p.is_file() for p in local):
        raw = load_izard(data_root, cfg["splits"])
    else:
        hub_id = str(cfg["hub_id"])
        is_local = hub_id in _LOCAL_BUILDERS or Path(hub_id).exists() or "data_files" in cfg["hub_kwargs"]
        if not is_local and not hub.hub_reachable():
            raise SourceUnavailable(
                f"ru-izard-emotions: not found under {data_root} and the hub is unreachable; skipped")
        try:
            raw = load_izard_hub(hub_id, cfg["splits"], **cfg["hub_kwargs"])
        except SourceUnavailable as e:
            if is_local:
                raise ValueError(f"ru-izard-emotions: cannot load {hub_id!r} with {cfg['hub_kwargs']}: {e}") from None
            raise SourceUnavailable(f"ru-izard-emotions: not found under {data_root} and loading {hub_id} "
                                    f"from the hub failed ({e}); skipped") from None
        log.info("ru-izard-emotions: %d rows from %s", len(raw), hub_id)
    return _map(raw, L.IZARD_LABELS, mapping, labels)


def read_cedr(cfg: dict, data_root: Path, labels: Sequence[str]) -> pd.DataFrame:
    files = [data_root / paths.CEDR_SPLITS[s] for s in cfg["splits"]]
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise SourceUnavailable(f"cedr: not found under {data_root} ({', '.join(missing)}); skipped")
    raw = pd.concat([load_cedr_file(p) for p in files], ignore_index=True)
    return _map(raw, L.CEDR_LABELS, cedr_mapping(cfg["mapping"], labels), labels)


def read_goemotions_en(cfg: dict, data_root: Path, labels: Sequence[str]) -> pd.DataFrame:
    path = data_root / paths.GOEMOTIONS_EKMAN
    if not path.is_file():
        raise SourceUnavailable(f"goemotions_en: {path} not found; skipped")
    raw = load_goemotions_as_cryptonite(data_root, fine_labels=True)
    missing = [l for l in labels if l not in L.CRYPTONITE_LABELS]
    if missing:
        raise ValueError(f"goemotions_en maps to the cryptonite labels; {missing} are not among them")
    return raw[["text", *labels, *aux_columns(raw)]].copy()


def _user_csv_path(p: str | Path, data_root: Path) -> Path:
    p = Path(p)
    if not p.is_absolute() and not p.exists() and (data_root / p).exists():
        return data_root / p
    return p


def read_user_csv(path: Path, labels: Sequence[str]) -> pd.DataFrame:
    return load_labeled_csv(path, labels)


# --- the stage ---------------------------------------------------------------------------------

def _empty_source_report(status: str) -> dict:
    return {"status": status, "rows_read": 0, "dropped_unmapped": 0, "dropped_not_selected": 0,
            "dropped_exact_duplicates": 0, "dropped_near_copies": 0, "dropped_near_copies_by_part": {},
            "dropped_max_rows": 0, "rows_kept": 0, "label_counts_kept": {}, "near_copy_examples": []}


def extend_training_set(train: pd.DataFrame, *, data_root: Path, sources: dict,
                        protect: dict[str, list[str]], labels: Sequence[str] = L.CRYPTONITE_LABELS,
                        seed: int = 0, leak: dict | None = None) -> tuple[pd.DataFrame, dict]:
    """Append the rows of the enabled sources to `train`; return (frame, report).

    `train`: `text` + the label columns (a `source` column is kept, else set to "train").
    `sources`: {"izard": {...}, "cedr": {...}, "goemotions_en": {...}, "user_csvs": [paths]}; see
    SOURCE_DEFAULTS for each source's options. `protect`: {part name: texts} that no extension row
    may copy (valid / tune / holdout / test). `leak`: emotions.data.leaks.LEAK_DEFAULTS overrides.

    Per source, in order: read and map to `labels`; drop rows left without a label; keep rows with
    one of `select_labels`; drop normalised duplicates (of train, of earlier kept rows, within the
    source); drop near copies of protected texts; sample `max_rows`. Sources are processed in the
    order izard, cedr, goemotions_en, user CSVs (earlier ones win duplicates).
    Output: train rows first, then kept rows; columns `text`, labels, `source`, and the `aux_*` fine-label
    columns (nullable Int64) when a source (goemotions_en) or `train` has them, missing for the other rows.
    """
    labels, data_root, opts = list(labels), Path(data_root), leak_options(leak)
    unknown = set(sources) - set(SOURCE_ORDER)
    if unknown:
        raise ValueError(f"unknown source(s) {sorted(unknown)}; known: {SOURCE_ORDER}")
    missing = [c for c in ["text", *labels] if c not in train.columns]
    if missing:
        raise ValueError(f"training frame lacks column(s) {missing}")
    base = train[["text", *labels, *aux_columns(train)]].copy()
    base[SOURCE_COLUMN] = train[SOURCE_COLUMN].to_numpy() if SOURCE_COLUMN in train.columns else "train"
    guard = _Guard.of(protect or {}, opts, base["text"], np.random.default_rng(seed))
    report: dict[str, Any] = {"labels": labels, "leak": opts, "seed": seed,
                              "protected_rows": {k: len(v) for k, v in (protect or {}).items()}, "sources": {}}
    kept_frames = [base]
    for name, kind, cfg in _enabled(sources, data_root):
        try:
            df, cfg, rep = _read_source(kind, cfg, data_root, labels, protect or {})
        except SourceUnavailable as e:
            log.warning("%s", e)
            report["sources"][name] = _empty_source_report(f"skipped: {e}")
            continue
        df = guard.apply(_select_labels(df, cfg, labels, rep, name), rep)
        df = _sample(df, cfg.get("max_rows"), guard.rng, rep)
        df[SOURCE_COLUMN] = name
        _record_kept(df, labels, rep)
        guard.seen_keys.update(match_keys(df["text"]))
        kept_frames.append(df[["text", *labels, *aux_columns(df), SOURCE_COLUMN]])
        report["sources"][name] = rep
        log.info("%s: read %d, kept %d (unmapped %d, not selected %d, duplicates %d, near copies %d, "
                 "over max_rows %d)", name, rep["rows_read"], rep["rows_kept"], rep["dropped_unmapped"],
                 rep["dropped_not_selected"], rep["dropped_exact_duplicates"], rep["dropped_near_copies"],
                 rep["dropped_max_rows"])
    return _assemble(kept_frames, base, labels, report)


def _enabled(sources: dict, data_root: Path) -> list[tuple[str, str, Any]]:
    """(report name, kind, options or a user CSV's path) per enabled source, in SOURCE_ORDER."""
    todo: list[tuple[str, str, Any]] = []
    for name in SOURCE_ORDER:
        if name not in sources:
            continue
        if name == "user_csvs":
            for p in sources[name] or []:
                path = _user_csv_path(p, data_root)
                todo.append((f"user:{path.stem}", "user", path))
        else:
            cfg = source_config(name, sources[name])
            if cfg["enabled"]:
                todo.append((name, name, cfg))
    return todo


def _read_source(kind: str, cfg: Any, data_root: Path, labels: list[str], protect: dict
                 ) -> tuple[pd.DataFrame, dict, dict]:
    """(rows mapped to `labels`, the source's options, its report so far); SourceUnavailable when missing."""
    rep = _empty_source_report("ok")
    if kind == "izard":
        df = read_izard(cfg, data_root, labels)
    elif kind == "cedr":
        df = read_cedr(cfg, data_root, labels)
    elif kind == "goemotions_en":
        df = read_goemotions_en(cfg, data_root, labels)
    elif kind == "utterances":
        df, rep["reserved_for_tune_utterances"] = read_utterance_source(
            utterances_root(data_root), labels, protect.get("tune_utterances", ()))
    else:
        df, cfg = read_user_csv(cfg, labels), {"select_labels": None, "max_rows": None}
    rep["rows_read"] = len(df)
    return df, cfg, rep


def _select_labels(df: pd.DataFrame, cfg: dict, labels: list[str], rep: dict, name: str) -> pd.DataFrame:
    """Rows left with at least one label (and one of `select_labels`, when given)."""
    keep = df[labels].to_numpy().sum(axis=1) > 0
    rep["dropped_unmapped"] = int((~keep).sum())
    select = cfg.get("select_labels")
    if select:
        bad = [l for l in select if l not in labels]
        if bad:
            raise ValueError(f"sources.{name}.select_labels: {bad} are not labels of the task {labels}")
        sel = df[list(select)].to_numpy().sum(axis=1) > 0
        rep["dropped_not_selected"] = int((keep & ~sel).sum())
        keep &= sel
    return df[keep].reset_index(drop=True)


@dataclass
class _Guard:
    """Leak control for the extension rows: the protected texts (and their parts), the keys already kept."""

    texts: list[str]
    parts: list[str]
    key_part: dict[str, str]
    seen_keys: set[str]
    opts: dict
    rng: np.random.Generator

    @classmethod
    def of(cls, protect: dict, opts: dict, train_texts: pd.Series, rng: np.random.Generator) -> "_Guard":
        texts = [str(t) for v in protect.values() for t in v]
        parts = [part for part, v in protect.items() for _ in v]
        return cls(texts, parts, dict(zip(match_keys(texts), parts)), set(match_keys(train_texts)), opts, rng)

    def apply(self, df: pd.DataFrame, rep: dict) -> pd.DataFrame:
        """`df` without duplicates of kept rows and without (near) copies of protected texts."""
        opts = self.opts
        if opts["enabled"] and opts["exact_duplicates"]:
            dup = duplicate_mask(df["text"].tolist(), seen_keys=self.seen_keys)
            rep["dropped_exact_duplicates"] = int(dup.sum())
            df = df[~dup].reset_index(drop=True)
        if not (opts["enabled"] and len(df) and self.texts):
            return df
        keys = match_keys(df["text"])
        exact = np.array([k in self.key_part for k in keys], dtype=bool)
        near, match = np.zeros(len(df), dtype=bool), None
        if opts["near_copies"]:
            near, match = near_copy_mask(df["text"].tolist(), self.texts, float(opts["threshold"]),
                                         min_length_ratio=float(opts["min_length_ratio"]),
                                         ngram_range=tuple(opts["ngram_range"]), chunk_size=int(opts["chunk_size"]))
            rep["near_copy_examples"] = _examples(df, near, match, self.texts, self.parts,
                                                  int(opts["max_examples"]), self.rng)
        drop = exact | near
        rep["dropped_near_copies"] = int(drop.sum())
        rep["dropped_near_copies_by_part"] = _drops_by_part(keys, exact, near, match, self.key_part, self.parts)
        return df[~drop].reset_index(drop=True)


def _sample(df: pd.DataFrame, max_rows: int | None, rng: np.random.Generator, rep: dict) -> pd.DataFrame:
    """At most `max_rows` rows (a seeded sample, in their order)."""
    if max_rows is None or len(df) <= int(max_rows):
        return df
    pick = np.sort(rng.choice(len(df), size=int(max_rows), replace=False))
    rep["dropped_max_rows"] = len(df) - int(max_rows)
    return df.iloc[pick].reset_index(drop=True)


def _record_kept(df: pd.DataFrame, labels: list[str], rep: dict) -> None:
    rep["rows_kept"] = len(df)
    rep["label_counts_kept"] = {l: int(df[l].sum()) for l in labels}
    if aux_columns(df):
        rep["rows_with_aux_labels"] = int(df[aux_columns(df)].notna().all(axis=1).sum())


def _assemble(kept_frames: list[pd.DataFrame], base: pd.DataFrame, labels: list[str], report: dict
              ) -> tuple[pd.DataFrame, dict]:
    """Train rows then the kept rows, labels as int64, the fine-label columns nullable; the report's totals."""
    out = pd.concat(kept_frames, ignore_index=True)
    aux = aux_columns(out)
    out = as_nullable(out[["text", *labels, SOURCE_COLUMN, *aux]])
    for l in labels:
        out[l] = out[l].astype(np.int64)
    if aux:
        report["aux_labels"] = aux
        report["rows_with_aux_labels"] = int(out[aux].notna().all(axis=1).sum())
    report.update(rows_before=len(base), rows_after=len(out),
                  label_counts_before={l: int(base[l].sum()) for l in labels},
                  label_counts_after={l: int(out[l].sum()) for l in labels})
    return out, report


def _drops_by_part(keys: list[str], exact: np.ndarray, near: np.ndarray, match, key_part: dict[str, str],
                   protected_part: list[str]) -> dict[str, int]:
    """How many dropped rows copy (exactly or nearly) each protected part: why leak control dropped them."""
    parts = [key_part[keys[i]] if exact[i] else protected_part[match.index[i]]
             for i in np.flatnonzero(exact | near)]
    return {p: parts.count(p) for p in sorted(set(parts))}


def _examples(df: pd.DataFrame, mask: np.ndarray, match, protected: list[str], parts: list[str],
              k: int, rng: np.random.Generator) -> list[dict]:
    idx = np.flatnonzero(mask)
    if len(idx) == 0 or k <= 0:
        return []
    idx = np.sort(rng.choice(idx, size=min(k, len(idx)), replace=False))
    return [{"text": df["text"].iat[i], "protected_text": protected[match.index[i]],
             "protected_part": parts[match.index[i]], "similarity": round(float(match.similarity[i]), 3)}
            for i in idx]
