"""Training plots as PNG files: learning curves, per-class precision-recall curves, F1-vs-threshold curves.

Every function takes plain arrays (or a history list / history.json path) and an output
path, writes the PNG atomically and returns its path. No pyplot state is touched
(figures are drawn with the Agg canvas), so they are safe in notebooks and scripts.
Show one in a notebook with `IPython.display.Image(path)`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, precision_recall_curve

from .io import atomic_path
from .metrics import DEFAULT_GRID, f1_vs_threshold


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
