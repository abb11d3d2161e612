"""Every figure of the stages: EDA, training (learning curves) and evaluation (PR, threshold, per-class, ablation).

EDA and score figures return a pyplot Figure for `Stage.figure()`. Training-curve figures take plain
arrays (or a history list / history.json path) and an output path, draw on the Agg canvas (no pyplot
state), write the PNG atomically and return its path; show one with `IPython.display.Image(path)`.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections import Counter
from itertools import combinations
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use(matplotlib.get_backend() if "inline" in matplotlib.get_backend() else "Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import average_precision_score, precision_recall_curve  # noqa: E402

from ..core.io import atomic_path  # noqa: E402
from .metrics import DEFAULT_GRID, f1_vs_threshold  # noqa: E402

Frames = Mapping[str, pd.DataFrame]


def _labelled(frames: Frames, labels: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Splits that carry labels (the test file's are all zero)."""
    return {k: v for k, v in frames.items() if set(labels) <= set(v.columns) and v[list(labels)].to_numpy().any()}


def class_counts(frames: Frames, labels: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({k: v[list(labels)].sum(axis=0) for k, v in _labelled(frames, labels).items()})


def plot_class_histogram(frames: Frames, labels: Sequence[str]):
    """Share of texts carrying each label, per split."""
    shares = pd.DataFrame({k: v[list(labels)].mean(axis=0) for k, v in _labelled(frames, labels).items()})
    fig, ax = plt.subplots(figsize=(9, 4))
    shares.plot.bar(ax=ax, rot=0, width=0.8)
    ax.set_ylabel("share of texts")
    ax.set_title("Labels per split")
    ax.grid(axis="y", alpha=0.3)
    return fig


def label_pairs(df: pd.DataFrame, labels: Sequence[str], top: int = 10) -> pd.DataFrame:
    """Most frequent co-occurring label pairs."""
    y = df[list(labels)].to_numpy()
    rows = [(a, b, int((y[:, i] & y[:, j]).sum())) for (i, a), (j, b) in combinations(enumerate(labels), 2)]
    out = pd.DataFrame(rows, columns=["label_a", "label_b", "texts"]).sort_values("texts", ascending=False)
    return out[out.texts > 0].head(top).reset_index(drop=True)


def plot_cooccurrence(df: pd.DataFrame, labels: Sequence[str], title: str = "Label co-occurrence"):
    y = df[list(labels)].to_numpy()
    m = y.T @ y
    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(np.log1p(m), cmap="viridis")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", color="w", fontsize=8)
    ax.set_title(title + " (diagonal: label counts)")
    fig.colorbar(im, ax=ax, label="log(1 + texts)")
    return fig


def plot_labels_per_text(frames: Frames, labels: Sequence[str]):
    data = {k: v[list(labels)].sum(axis=1).value_counts(normalize=True).sort_index()
            for k, v in _labelled(frames, labels).items()}
    fig, ax = plt.subplots(figsize=(6, 3.5))
    pd.DataFrame(data).fillna(0).plot.bar(ax=ax, rot=0)
    ax.set_xlabel("labels on a text")
    ax.set_ylabel("share of texts")
    ax.set_title("Labels per text")
    return fig


def length_stats(frames: Frames) -> pd.DataFrame:
    return pd.DataFrame({k: v["text"].astype(str).str.split().str.len().describe() for k, v in frames.items()}).T


def plot_text_length(frames: Frames, clip: int = 60):
    fig, ax = plt.subplots(figsize=(8, 4))
    bins = np.arange(0, clip + 2)
    for name, df in frames.items():
        words = df["text"].astype(str).str.split().str.len().clip(upper=clip)
        ax.hist(words, bins=bins, histtype="step", density=True, linewidth=1.5, label=f"{name} (n={len(df)})")
    ax.set_xlabel(f"words per text (clipped at {clip})")
    ax.set_ylabel("density")
    ax.set_title("Text length per split")
    ax.legend()
    return fig


def char_class(ch: str) -> str:
    """Coarse alphabet classes used to compare splits (ASR test text has no capitals or punctuation)."""
    if ch.isspace():
        return "space"
    if ch.isdigit():
        return "digit"
    if ch.isalpha():
        name = unicodedata.name(ch, "")
        script = "cyrillic" if "CYRILLIC" in name else "latin" if "LATIN" in name else "other letter"
        return f"{script} {'upper' if ch.isupper() else 'lower'}" if script != "other letter" else script
    cat = unicodedata.category(ch)
    if cat.startswith("P"):
        return "punctuation"
    if cat == "So":
        return "emoji/symbol"
    return "other"


def alphabet_table(frames: Frames) -> pd.DataFrame:
    """Share of characters in each class, per split."""
    table = {}
    for name, df in frames.items():
        counts = Counter(char_class(c) for c in "".join(df["text"].astype(str)))
        total = sum(counts.values()) or 1
        table[name] = {k: v / total for k, v in counts.items()}
    return pd.DataFrame(table).fillna(0.0).sort_index()


def plot_alphabet(frames: Frames):
    table = alphabet_table(frames).drop(index=["space", "cyrillic lower"], errors="ignore")
    fig, ax = plt.subplots(figsize=(9, 4))
    table.plot.bar(ax=ax, rot=30)
    ax.set_ylabel("share of characters")
    ax.set_title("Alphabet per split (space and lowercase Cyrillic left out)")
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_per_class_scores(report: Mapping, title: str = "Per-class scores"):
    """Bar chart of precision/recall/F1 per class from a metrics report."""
    per = pd.DataFrame(report["per_class"]).T[["precision", "recall", "f1"]].astype(float)
    fig, ax = plt.subplots(figsize=(9, 4))
    per.plot.bar(ax=ax, rot=0, width=0.8)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_confusion_matrix(cm: Sequence[Sequence[int]] | np.ndarray, labels: Sequence[str],
                          out_path: str | Path | None = None, title: str = "Confusion matrix",
                          normalize: bool = True, dpi: int = 110):
    """Rows are true classes, columns predictions; colour = row share (with `normalize`), text = count.

    Saves a PNG to `out_path` when given; returns the Figure (close it when done).
    """
    cm = np.asarray(cm, dtype=float)
    if cm.shape != (len(labels), len(labels)):
        raise ValueError(f"confusion matrix shape {cm.shape} does not match {len(labels)} labels")
    rows = cm.sum(axis=1, keepdims=True)
    shown = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0) if normalize else cm
    size = max(4.0, 0.75 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of true class" if normalize else "count")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    cut = (shown.max() if shown.size else 0) / 2
    for i in range(len(labels)):
        for j in range(len(labels)):
            text = f"{int(cm[i, j])}" + (f"\n{shown[i, j]:.0%}" if normalize else "")
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if shown[i, j] > cut else "black")
    fig.tight_layout()
    if out_path is not None:
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out_path, dpi=dpi, bbox_inches="tight")
    return fig



def plot_ablation(rows: Sequence[Mapping]):
    """Holdout weighted F1 per ablation configuration, with the 95% interval of its difference to the first."""
    names = [r["config"] for r in rows]
    f1 = np.array([r["holdout_weighted_f1"] for r in rows])
    lo = np.array([f1[0] + r.get("holdout_delta_vs_first", {}).get("ci95", [0, 0])[0] for r in rows])
    hi = np.array([f1[0] + r.get("holdout_delta_vs_first", {}).get("ci95", [0, 0])[1] for r in rows])
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    ax.errorbar(f1, y, xerr=[np.clip(f1 - lo, 0, None), np.clip(hi - f1, 0, None)], fmt="o", capsize=3)
    ax.axvline(f1[0], color="grey", ls=":", label=names[0])
    ax.set_yticks(y, names)
    ax.set_xlabel("holdout weighted F1 (bars: 95% CI of the difference to the first row)")
    ax.set_title("Ablation")
    ax.grid(axis="x", alpha=0.3)
    return fig



def _save(fig: Figure, out_path: str | Path, dpi: int = 120) -> Path:
    FigureCanvasAgg(fig)
    out = Path(out_path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return out


def _grid(n: int, cols: int = 4, size: float = 3.2) -> tuple[Figure, list]:
    cols = min(cols, max(1, n))
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(size * cols, size * rows * 0.9))
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(n)]
    return fig, axes


def load_history(history: str | Path | dict | Sequence[dict]) -> tuple[list[dict], dict]:
    """(per-epoch entries, summary) from a history.json path, its dict, or a list of entries."""
    if isinstance(history, (str, Path)):
        history = json.loads(Path(history).read_text(encoding="utf-8"))
    if isinstance(history, dict):
        return list(history.get("epochs", [])), {k: v for k, v in history.items() if k != "epochs"}
    return list(history), {}


def plot_learning_curves(history: str | Path | dict | Sequence[dict], out_path: str | Path,
                         title: str = "Learning curves") -> Path:
    """Train / tune loss and the tune metric per epoch; the best epoch is marked."""
    epochs, summary = load_history(history)
    if not epochs:
        raise ValueError("the history has no epochs to plot")
    x = [e["epoch"] for e in epochs]
    fig = Figure(figsize=(10, 3.8))
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ax1.plot(x, [e["train_loss"] for e in epochs], "o-", label="train loss")
    if any(e.get("tune_loss") is not None for e in epochs):
        ax1.plot(x, [e.get("tune_loss") for e in epochs], "s-", label="tune loss")
    ax1.set_xlabel("epoch"), ax1.set_ylabel("loss"), ax1.legend(), ax1.grid(alpha=0.3)
    for key, label in (("tune_weighted_f1", "tune weighted F1 (tuned thresholds)"), ("tune_accuracy", "tune accuracy")):
        if any(e.get(key) is not None for e in epochs):
            ax2.plot(x, [e.get(key) for e in epochs], "o-", label=label)
    best = summary.get("best_epoch")
    if best:
        ax2.axvline(best, color="grey", ls="--", label=f"best epoch {best}")
    ax2.set_xlabel("epoch"), ax2.set_ylabel("score"), ax2.grid(alpha=0.3)
    if ax2.get_legend_handles_labels()[0]:
        ax2.legend()
    for ax in (ax1, ax2):
        ax.set_xticks(x)
    fig.suptitle(title)
    return _save(fig, out_path)


def plot_pr_curves(y_true: np.ndarray, proba: np.ndarray, labels: Sequence[str], out_path: str | Path,
                   thresholds: Sequence[float] | None = None, title: str = "Precision-recall per class") -> Path:
    """One precision-recall curve per class with its average precision; the chosen threshold is marked."""
    y_true, proba = np.asarray(y_true), np.asarray(proba, dtype=float)
    fig, axes = _grid(len(labels))
    for j, (ax, name) in enumerate(zip(axes, labels)):
        pos = y_true[:, j] == 1
        if pos.any() and (~pos).any():
            prec, rec, thr = precision_recall_curve(y_true[:, j], proba[:, j])
            ap = average_precision_score(y_true[:, j], proba[:, j])
            ax.plot(rec, prec, lw=1.5)
            ax.axhline(pos.mean(), color="grey", ls=":", lw=1)
            if thresholds is not None and len(thr):
                k = min(np.searchsorted(thr, thresholds[j]), len(thr) - 1)
                ax.plot(rec[k], prec[k], "ro", ms=5, label=f"t={thresholds[j]:.2f}")
                ax.legend(loc="lower left", fontsize=8)
            ax.set_title(f"{name} (AP {ap:.3f}, n+={int(pos.sum())})", fontsize=9)
        else:
            ax.set_title(f"{name} (one class only)", fontsize=9)
        ax.set_xlim(0, 1), ax.set_ylim(0, 1.02), ax.grid(alpha=0.3)
        ax.set_xlabel("recall", fontsize=8), ax.set_ylabel("precision", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, out_path)


def plot_threshold_curves(y_true: np.ndarray, proba: np.ndarray, labels: Sequence[str], out_path: str | Path,
                          thresholds: Sequence[float] | None = None, grid: np.ndarray = DEFAULT_GRID,
                          title: str = "F1 vs decision threshold per class") -> Path:
    """F1 against the threshold for each class; the chosen threshold (and its F1) is marked."""
    f1 = f1_vs_threshold(y_true, proba, grid)
    fig, axes = _grid(len(labels))
    for j, (ax, name) in enumerate(zip(axes, labels)):
        ax.plot(grid, f1[:, j], lw=1.5)
        best = int(np.argmax(f1[:, j]))
        ax.set_title(f"{name} (max F1 {f1[best, j]:.3f})", fontsize=9)
        if thresholds is not None:
            t = float(thresholds[j])
            ax.axvline(t, color="red", ls="--", lw=1, label=f"t={t:.2f}")
            ax.legend(loc="lower center", fontsize=8)
        ax.set_xlim(0, 1), ax.set_ylim(0, 1.02), ax.grid(alpha=0.3)
        ax.set_xlabel("threshold", fontsize=8), ax.set_ylabel("F1", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, out_path)
