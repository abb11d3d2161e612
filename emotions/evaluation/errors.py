"""Error analysis of a multilabel model from its per-text predictions (pure functions, no notebook code).

A predictions frame (`predictions_frame`) holds one row per text: `text`, `gold` and `pred` (label names
joined by ','), and per label `p_<label>` (probability), `gold_<label>` and `pred_<label>` (0/1). 05_evaluate
writes it as `predictions/<split>.csv` (`write_predictions`); `read_predictions` reads it back. On top of it:
the most confident errors per class, gold -> predicted label counts, weighted F1 per text length, and the
words over-represented in a class's false positives (a model that learnt the word, not the feeling).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..core.io import write_csv_atomic
from .metrics import apply_thresholds, weighted_f1

WORD = re.compile(r"\w+", re.UNICODE)
DEFAULT_BINS: tuple[float, ...] = (0, 5, 10, 20, 40, math.inf)   # words per text: 0-5, 6-10, 11-20, 21-40, 41+


# --- the predictions frame -------------------------------------------------------------------------------
def _indicator(y: np.ndarray, n_labels: int) -> np.ndarray:
    """A 0/1 n x k matrix from a matrix or from class ids (single-label tasks)."""
    y = np.asarray(y)
    if y.ndim == 1:
        return np.eye(n_labels, dtype=np.int64)[y.astype(np.int64)]
    return (y > 0).astype(np.int64)


def _joined(y: np.ndarray, labels: Sequence[str]) -> list[str]:
    return [",".join(l for l, v in zip(labels, row) if v) for row in y]


def predictions_frame(texts: Sequence[str], y_true: np.ndarray, proba: np.ndarray,
                      thresholds: Sequence[float] | np.ndarray | float | None, labels: Sequence[str], *,
                      ensure_one: bool = False, pred: np.ndarray | None = None) -> pd.DataFrame:
    """One row per text: text, gold, pred, then p_/gold_/pred_<label> per label.

    Decisions: `pred` when given (e.g. the predictor's own `decide(proba)`), else `proba >= thresholds`
    (`ensure_one` as in metrics.apply_thresholds); `thresholds` None means single-label decisions (each
    row's top class), and `y_true` may be class ids then.
    """
    labels = list(labels)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape != (len(texts), len(labels)):
        raise ValueError(f"proba shape {proba.shape} does not match {len(texts)} texts x {len(labels)} labels")
    gold = _indicator(y_true, len(labels))
    if pred is not None:
        pred = _indicator(pred, len(labels))
    elif thresholds is None:
        pred = np.eye(len(labels), dtype=np.int64)[proba.argmax(axis=1)] if len(proba) else gold * 0
    else:
        pred = apply_thresholds(proba, thresholds, ensure_one)
    columns: dict[str, Any] = {"text": [str(t) for t in texts], "gold": _joined(gold, labels),
                               "pred": _joined(pred, labels)}
    columns.update({f"p_{l}": proba[:, j] for j, l in enumerate(labels)})
    columns.update({f"gold_{l}": gold[:, j] for j, l in enumerate(labels)})
    columns.update({f"pred_{l}": pred[:, j] for j, l in enumerate(labels)})
    return pd.DataFrame(columns)


def write_predictions(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a predictions frame as CSV, atomically (e.g. runs/<id>/predictions/holdout.csv)."""
    return write_csv_atomic(path, frame)


def read_predictions(path: str | Path) -> pd.DataFrame:
    """Read a predictions CSV back (empty gold/pred stay empty strings, texts stay text)."""
    frame = pd.read_csv(path, keep_default_na=False, dtype={"text": str, "gold": str, "pred": str})
    for col in frame.columns:
        if col.startswith(("gold_", "pred_")):
            frame[col] = frame[col].astype(np.int64)
        elif col.startswith("p_"):
            frame[col] = frame[col].astype(np.float64)
    return frame


def frame_labels(frame: pd.DataFrame) -> list[str]:
    """The labels a predictions frame carries (from its p_<label> columns, in order)."""
    return [c[2:] for c in frame.columns if c.startswith("p_")]


def matrices(frame: pd.DataFrame, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gold 0/1, pred 0/1, proba) matrices, n x k, in the order of `labels`."""
    missing = [c for l in labels for c in (f"gold_{l}", f"pred_{l}", f"p_{l}") if c not in frame.columns]
    if missing:
        raise KeyError(f"predictions frame lacks columns {missing[:6]}")
    labels = list(labels)
    return (frame[[f"gold_{l}" for l in labels]].to_numpy(np.int64),
            frame[[f"pred_{l}" for l in labels]].to_numpy(np.int64),
            frame[[f"p_{l}" for l in labels]].to_numpy(np.float64))


# --- errors ----------------------------------------------------------------------------------------------
def confident_errors(frame: pd.DataFrame, labels: Sequence[str], n: int = 10) -> pd.DataFrame:
    """Per class the `n` most confident false positives (highest p) and false negatives (lowest p).

    Columns: label, error ('FP' or 'FN'), rank (1 = most confident), text, p, gold, pred.
    """
    parts = []
    for label in labels:
        g, q, p = frame[f"gold_{label}"], frame[f"pred_{label}"], frame[f"p_{label}"]
        for kind, mask, ascending in (("FP", (q == 1) & (g == 0), False), ("FN", (q == 0) & (g == 1), True)):
            rows = frame.loc[mask].assign(p=p[mask]).sort_values("p", ascending=ascending, kind="stable").head(n)
            parts.append(pd.DataFrame({"label": label, "error": kind, "rank": np.arange(1, len(rows) + 1),
                                       "text": rows["text"].to_numpy(), "p": rows["p"].to_numpy(),
                                       "gold": rows["gold"].to_numpy(), "pred": rows["pred"].to_numpy()}))
    cols = ["label", "error", "rank", "text", "p", "gold", "pred"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def label_pair_confusion(frame: pd.DataFrame, labels: Sequence[str], wrong_only: bool = False) -> pd.DataFrame:
    """Rows: gold label A; columns: predicted label B; cell: texts with A in gold and B predicted.

    The diagonal holds each class's true positives. With `wrong_only`, an off-diagonal cell counts only
    texts where B is predicted but not gold (a false positive of B on a text of A). `attrs["rows"]` holds
    the number of texts per gold label (the share each cell is of).
    """
    gold, pred, _ = matrices(frame, labels)
    counts = gold.T @ pred
    if wrong_only:                                  # keep the diagonal (true positives), drop B-is-gold texts
        counts = np.where(np.eye(len(labels), dtype=bool), counts, gold.T @ (pred * (1 - gold)))
    out = pd.DataFrame(counts, index=pd.Index(list(labels), name="gold"),
                       columns=pd.Index(list(labels), name="predicted"))
    out.attrs["rows"] = {l: int(gold[:, j].sum()) for j, l in enumerate(labels)}
    return out


# --- text length ----------------------------------------------------------------------------------------
def word_counts(texts: Sequence[str] | pd.Series) -> np.ndarray:
    """Words per text (whitespace-separated tokens)."""
    return np.array([len(str(t).split()) for t in texts], dtype=np.int64)


def _bin_name(lo: float, hi: float, first: bool) -> str:
    start = int(lo) if first else int(lo) + 1
    return f"{start}+" if math.isinf(hi) else f"{start}-{int(hi)}"


def f1_by_length(frame: pd.DataFrame, labels: Sequence[str], bins: Sequence[float] = DEFAULT_BINS) -> pd.DataFrame:
    """Weighted F1 per text-length bin (words; bins are right-closed edges, the first includes its left edge).

    Columns: bin ('0-5', '6-10', ..., '41+'), words_min, words_max, rows, weighted_f1 (NaN for an empty bin).
    """
    edges = [float(b) for b in bins]
    if len(edges) < 2 or any(a >= b for a, b in zip(edges, edges[1:])):
        raise ValueError(f"bins must be at least two increasing edges, got {list(bins)}")
    words = word_counts(frame["text"])
    gold, pred, _ = matrices(frame, labels)
    which = pd.cut(words, edges, right=True, include_lowest=True, labels=False)
    rows = []
    for i, (lo, hi) in enumerate(zip(edges, edges[1:])):
        mask = np.asarray(which == i)
        rows.append({"bin": _bin_name(lo, hi, i == 0), "words_min": int(lo) if i == 0 else int(lo) + 1,
                     "words_max": None if math.isinf(hi) else int(hi), "rows": int(mask.sum()),
                     "weighted_f1": weighted_f1(gold[mask], pred[mask]) if mask.any() else math.nan})
    return pd.DataFrame(rows).astype({"words_max": "Int64"})


# --- words behind false positives -------------------------------------------------------------------------
def tokens(text: str) -> set[str]:
    """The distinct lower-cased words of a text."""
    return set(WORD.findall(str(text).lower()))


def _doc_freq(texts: pd.Series) -> Counter:
    counts: Counter = Counter()
    for t in texts:
        counts.update(tokens(t))
    return counts


def false_positive_words(frame: pd.DataFrame, labels: Sequence[str], label: str, top: int = 15,
                         min_count: int = 3, prior: float = 0.5) -> pd.DataFrame:
    """Words over-represented in `label`'s false positives relative to its true negatives.

    Score: the smoothed log odds ratio of a text containing the word, FP texts vs TN texts (`prior` added
    to every cell); only words it favours (log_odds > 0) in at least `min_count` FP texts. Columns: word, fp_texts,
    tn_texts, fp_share, tn_share, log_odds; best first.
    """
    if label not in labels:
        raise ValueError(f"unknown label {label!r}; labels: {list(labels)}")
    g, q = frame[f"gold_{label}"], frame[f"pred_{label}"]
    fp_texts, tn_texts = frame.loc[(q == 1) & (g == 0), "text"], frame.loc[(q == 0) & (g == 0), "text"]
    cols = ["word", "fp_texts", "tn_texts", "fp_share", "tn_share", "log_odds"]
    n_fp, n_tn = len(fp_texts), len(tn_texts)
    if n_fp == 0:
        return pd.DataFrame(columns=cols)
    fp, tn = _doc_freq(fp_texts), _doc_freq(tn_texts)
    rows = []
    for word, f in fp.items():
        if f < min_count:
            continue
        t = tn.get(word, 0)
        score = (math.log((f + prior) / (n_fp - f + prior)) - math.log((t + prior) / (n_tn - t + prior)))
        if score > 0:
            rows.append((word, f, t, f / n_fp, t / n_tn if n_tn else math.nan, score))
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["log_odds", "fp_texts", "word"], ascending=[False, False, True],
                           kind="stable").head(top).reset_index(drop=True)


def label_word_share(frame: pd.DataFrame, label: str, word: str) -> pd.DataFrame:
    """How many texts of each outcome of `label` (TP, FP, FN, TN) contain `word`: texts, with_word, share."""
    g, q = frame[f"gold_{label}"], frame[f"pred_{label}"]
    has = frame["text"].map(lambda t: word.lower() in tokens(t))
    rows = {}
    for name, mask in (("TP", (g == 1) & (q == 1)), ("FP", (g == 0) & (q == 1)),
                       ("FN", (g == 1) & (q == 0)), ("TN", (g == 0) & (q == 0))):
        n, w = int(mask.sum()), int((mask & has).sum())
        rows[name] = {"texts": n, "with_word": w, "share": w / n if n else math.nan}
    return pd.DataFrame(rows).T.rename_axis(f"{label} / {word!r}")


# --- figures (the style of plots.py) ---------------------------------------------------------------------
def _canvas(path_or_ax: Any, size: tuple[float, float]):
    """(figure, axes, path): draw on the given Axes, or on a new Agg Figure to be saved at the path."""
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    if isinstance(path_or_ax, Axes):
        return path_or_ax.figure, path_or_ax, None
    fig = Figure(figsize=size)
    return fig, fig.add_subplot(1, 1, 1), Path(path_or_ax)


def plot_label_confusion(matrix: pd.DataFrame, path_or_ax: Any, rows: dict[str, int] | None = None,
                         title: str = "Gold label -> predicted label"):
    """Heatmap of `label_pair_confusion`: text = count, colour = share of the gold label's texts.

    Saves a PNG (atomically) and returns its path when given a path; draws on and returns an Axes.
    """
    import matplotlib
    import seaborn as sns

    from .plots import STYLE, _save

    rows = rows or matrix.attrs.get("rows") or {}
    counts = matrix.to_numpy(dtype=float)
    denom = np.array([rows.get(l, 0) for l in matrix.index], dtype=float)[:, None]
    share = np.divide(counts, denom, out=np.zeros_like(counts), where=denom > 0) if rows else counts
    size = max(4.0, 0.75 * len(matrix) + 2)
    with matplotlib.rc_context(STYLE):
        fig, ax, path = _canvas(path_or_ax, (size + 1, size))
        sns.heatmap(pd.DataFrame(share, index=matrix.index, columns=matrix.columns), annot=counts.astype(int),
                    fmt="d", cmap="Blues", vmin=0, vmax=1 if rows else None, square=True, linewidths=0.5, ax=ax,
                    annot_kws={"fontsize": 8},
                    cbar_kws={"label": "share of gold label's texts" if rows else "texts", "fraction": 0.046})
        ax.set(xlabel="predicted", ylabel="gold", title=title)
        ax.tick_params(axis="x", rotation=45)
        if path is None:
            return ax
        fig.tight_layout()
        return _save(fig, path)


def plot_f1_by_length(table: pd.DataFrame, path_or_ax: Any, title: str = "Weighted F1 by text length"):
    """Bars of `f1_by_length` (weighted F1 per bin, row counts above the bars)."""
    import matplotlib
    import seaborn as sns

    from .plots import STYLE, _save

    with matplotlib.rc_context(STYLE):
        fig, ax, path = _canvas(path_or_ax, (max(5.0, 0.9 * len(table) + 2), 3.6))
        data = table.assign(weighted_f1=table["weighted_f1"].fillna(0.0))
        sns.barplot(data, x="bin", y="weighted_f1", color=sns.color_palette("deep")[0], ax=ax)
        for i, (f1, n) in enumerate(zip(data["weighted_f1"], table["rows"])):
            ax.annotate(f"n={n}", (i, f1), ha="center", va="bottom", fontsize=8, xytext=(0, 2),
                        textcoords="offset points")
        ax.set(ylim=(0, 1.08), xlabel="words per text", ylabel="weighted F1", title=title)
        if path is None:
            return ax
        fig.tight_layout()
        return _save(fig, path)
