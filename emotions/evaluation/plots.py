"""Every figure of the stages: EDA, training (learning curves) and evaluation (PR, threshold, per-class, ablation).

All figures are drawn with seaborn in one style (`STYLE`: whitegrid, the "deep" palette, notebook-sized
text), sized to stay readable when the README shows them. EDA and score figures return a pyplot Figure
for `Stage.figure()`. Training-curve figures take plain
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
import seaborn as sns  # noqa: E402
from sklearn.metrics import average_precision_score, precision_recall_curve  # noqa: E402

from ..core.io import atomic_path  # noqa: E402
from .metrics import DEFAULT_GRID, f1_vs_threshold  # noqa: E402

Frames = Mapping[str, pd.DataFrame]

# one look for every figure: applied around each plotting function, so pyplot's global state is untouched
STYLE = {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook", font_scale=0.9),
         "axes.prop_cycle": matplotlib.cycler(color=sns.color_palette("deep")), "figure.dpi": 100}


def _long(table: pd.DataFrame, index: str, column: str, value: str) -> pd.DataFrame:
    """A wide table (rows: `index`, columns: `column`) in long form for seaborn."""
    return table.rename_axis(index=index, columns=column).stack().rename(value).reset_index()


def _labelled(frames: Frames, labels: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Splits that carry labels (the test file's are all zero)."""
    return {k: v for k, v in frames.items() if set(labels) <= set(v.columns) and v[list(labels)].to_numpy().any()}


def class_counts(frames: Frames, labels: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({k: v[list(labels)].sum(axis=0) for k, v in _labelled(frames, labels).items()})


@matplotlib.rc_context(STYLE)
def plot_class_histogram(frames: Frames, labels: Sequence[str]):
    """Share of texts carrying each label, per split."""
    shares = pd.DataFrame({k: v[list(labels)].mean(axis=0) for k, v in _labelled(frames, labels).items()})
    fig, ax = plt.subplots(figsize=(9, 4))
    sns.barplot(_long(shares, "label", "split", "share"), x="label", y="share", hue="split", ax=ax)
    ax.set(xlabel="", ylabel="share of texts", title="Labels per split")
    return fig


def label_pairs(df: pd.DataFrame, labels: Sequence[str], top: int = 10) -> pd.DataFrame:
    """Most frequent co-occurring label pairs."""
    y = df[list(labels)].to_numpy()
    rows = [(a, b, int((y[:, i] & y[:, j]).sum())) for (i, a), (j, b) in combinations(enumerate(labels), 2)]
    out = pd.DataFrame(rows, columns=["label_a", "label_b", "texts"]).sort_values("texts", ascending=False)
    return out[out.texts > 0].head(top).reset_index(drop=True)


@matplotlib.rc_context(STYLE)
def plot_cooccurrence(df: pd.DataFrame, labels: Sequence[str], title: str = "Label co-occurrence"):
    """Texts per label pair (colour on a log scale); the diagonal holds each label's count."""
    y = df[list(labels)].to_numpy().astype(int)
    m = pd.DataFrame(y.T @ y, index=list(labels), columns=list(labels))
    fig, ax = plt.subplots(figsize=(6.5, 5))
    sns.heatmap(np.log1p(m), annot=m, fmt="d", cmap="mako_r", square=True, linewidths=0.5, ax=ax,
                annot_kws={"fontsize": 8}, cbar_kws={"label": "log(1 + texts)"})
    ax.set_title(title + " (diagonal: label counts)")
    ax.tick_params(axis="x", rotation=45)
    return fig


@matplotlib.rc_context(STYLE)
def plot_labels_per_text(frames: Frames, labels: Sequence[str]):
    """Share of texts with 0, 1, 2, ... labels, per split."""
    data = {k: v[list(labels)].sum(axis=1).value_counts(normalize=True).sort_index()
            for k, v in _labelled(frames, labels).items()}
    fig, ax = plt.subplots(figsize=(6, 3.5))
    sns.barplot(_long(pd.DataFrame(data).fillna(0), "labels", "split", "share"), x="labels", y="share",
                hue="split", ax=ax)
    ax.set(xlabel="labels on a text", ylabel="share of texts", title="Labels per text")
    return fig


def length_stats(frames: Frames) -> pd.DataFrame:
    return pd.DataFrame({k: v["text"].astype(str).str.split().str.len().describe() for k, v in frames.items()}).T


@matplotlib.rc_context(STYLE)
def plot_text_length(frames: Frames, clip: int = 60):
    """Distribution of words per text, per split (each split normalised on its own)."""
    long = pd.concat([pd.DataFrame({"words": df["text"].astype(str).str.split().str.len().clip(upper=clip),
                                    "split": f"{name} (n={len(df)})"}) for name, df in frames.items()],
                     ignore_index=True)
    fig, ax = plt.subplots(figsize=(8, 4))
    sns.histplot(long, x="words", hue="split", bins=np.arange(0, clip + 2), stat="density", common_norm=False,
                 element="step", fill=False, linewidth=1.5, ax=ax)
    ax.set(xlabel=f"words per text (clipped at {clip})", ylabel="density", title="Text length per split")
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


@matplotlib.rc_context(STYLE)
def plot_alphabet(frames: Frames):
    """Share of characters per class and split, without the dominant space and lowercase Cyrillic."""
    table = alphabet_table(frames).drop(index=["space", "cyrillic lower"], errors="ignore")
    fig, ax = plt.subplots(figsize=(9, 4))
    sns.barplot(_long(table, "class", "split", "share"), x="class", y="share", hue="split", ax=ax)
    ax.set(xlabel="", ylabel="share of characters", title="Alphabet per split (space and lowercase Cyrillic left out)")
    ax.tick_params(axis="x", rotation=30)
    return fig


@matplotlib.rc_context(STYLE)
def plot_per_class_scores(report: Mapping, title: str = "Per-class scores"):
    """Bar chart of precision/recall/F1 per class from a metrics report."""
    per = pd.DataFrame(report["per_class"]).T[["precision", "recall", "f1"]].astype(float)
    fig, ax = plt.subplots(figsize=(9, 4))
    sns.barplot(_long(per, "class", "score", "value"), x="class", y="value", hue="score", ax=ax)
    ax.set(ylim=(0, 1), xlabel="", ylabel="", title=title)
    ax.legend(loc="upper right", ncols=3, fontsize=8)
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
    text = [[f"{int(cm[i, j])}" + (f"\n{shown[i, j]:.0%}" if normalize else "") for j in range(len(labels))]
            for i in range(len(labels))]
    with matplotlib.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(size + 1, size))
        sns.heatmap(pd.DataFrame(shown, index=list(labels), columns=list(labels)), annot=np.array(text), fmt="",
                    cmap="Blues", vmin=0, vmax=1 if normalize else None, square=True, linewidths=0.5, ax=ax,
                    annot_kws={"fontsize": 8},
                    cbar_kws={"label": "share of true class" if normalize else "count", "fraction": 0.046})
        ax.set(xlabel="predicted", ylabel="true", title=title)
        ax.tick_params(axis="x", rotation=45)
        fig.tight_layout()
    if out_path is not None:
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out_path, dpi=dpi, bbox_inches="tight")
    return fig



@matplotlib.rc_context(STYLE)
def plot_ablation(rows: Sequence[Mapping]):
    """Holdout weighted F1 per ablation configuration, with the 95% interval of its difference to the first."""
    names = [r["config"] for r in rows]
    f1 = np.array([r["holdout_weighted_f1"] for r in rows])
    lo = np.array([f1[0] + r.get("holdout_delta_vs_first", {}).get("ci95", [0, 0])[0] for r in rows])
    hi = np.array([f1[0] + r.get("holdout_delta_vs_first", {}).get("ci95", [0, 0])[1] for r in rows])
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    ax.errorbar(f1, y, xerr=[np.clip(f1 - lo, 0, None), np.clip(hi - f1, 0, None)], fmt="none", capsize=3,
                ecolor="grey")
    sns.scatterplot(x=f1, y=y, hue=np.where(np.arange(len(rows)) == 0, "reference", "variant"), s=50, ax=ax,
                    legend=False)
    ax.axvline(f1[0], color="grey", ls=":", label=names[0])
    ax.set_yticks(y, names)
    ax.set_xlabel("holdout weighted F1 (bars: 95% CI of the difference to the first row)")
    ax.set_title("Ablation")
    return fig



def _save(fig: Figure, out_path: str | Path, dpi: int = 120) -> Path:
    FigureCanvasAgg(fig)
    out = Path(out_path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return out


def _grid(n: int, cols: int = 4, size: float = 3.2) -> tuple[Figure, list]:
    """A Figure (no pyplot state) with `n` axes in rows of `cols`; call it inside the `STYLE` context."""
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
    frame = pd.DataFrame(epochs)

    def curves(ax, names: dict[str, str]) -> None:
        cols = [c for c in names if c in frame and frame[c].notna().any()]
        if cols:
            long = frame.melt(id_vars="epoch", value_vars=cols, var_name="curve").dropna()
            long["curve"] = long["curve"].map(names)
            sns.lineplot(long, x="epoch", y="value", hue="curve", style="curve", markers=True, dashes=False, ax=ax)

    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(10, 3.8))
        ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        curves(ax1, {"train_loss": "train loss", "tune_loss": "tune loss"})
        curves(ax2, {"tune_weighted_f1": "tune weighted F1 (tuned thresholds)", "tune_accuracy": "tune accuracy"})
        best = summary.get("best_epoch")
        if best:
            ax2.axvline(best, color="grey", ls="--", label=f"best epoch {best}")
        ax1.set(xlabel="epoch", ylabel="loss")
        ax2.set(xlabel="epoch", ylabel="score")
        for ax in (ax1, ax2):
            ax.set_xticks(x)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(title=None, fontsize=8)
        fig.suptitle(title)
        return _save(fig, out_path)


@matplotlib.rc_context(STYLE)
def plot_pr_curves(y_true: np.ndarray, proba: np.ndarray, labels: Sequence[str], out_path: str | Path,
                   thresholds: Sequence[float] | None = None, title: str = "Precision-recall per class") -> Path:
    """One precision-recall curve per class with its average precision; the chosen threshold is marked."""
    y_true, proba = np.asarray(y_true), np.asarray(proba, dtype=float)
    fig, axes = _grid(len(labels))
    colours = sns.color_palette("deep", len(labels))
    for j, (ax, name) in enumerate(zip(axes, labels)):
        pos = y_true[:, j] == 1
        if pos.any() and (~pos).any():
            prec, rec, thr = precision_recall_curve(y_true[:, j], proba[:, j])
            ap = average_precision_score(y_true[:, j], proba[:, j])
            sns.lineplot(x=rec, y=prec, estimator=None, sort=False, lw=1.5, color=colours[j], ax=ax)
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


@matplotlib.rc_context(STYLE)
def plot_threshold_curves(y_true: np.ndarray, proba: np.ndarray, labels: Sequence[str], out_path: str | Path,
                          thresholds: Sequence[float] | None = None, grid: np.ndarray = DEFAULT_GRID,
                          title: str = "F1 vs decision threshold per class") -> Path:
    """F1 against the threshold for each class; the chosen threshold (and its F1) is marked."""
    f1 = f1_vs_threshold(y_true, proba, grid)
    fig, axes = _grid(len(labels))
    colours = sns.color_palette("deep", len(labels))
    for j, (ax, name) in enumerate(zip(axes, labels)):
        sns.lineplot(x=grid, y=f1[:, j], lw=1.5, color=colours[j], ax=ax)
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


@matplotlib.rc_context(STYLE)
def plot_label_mix(mix: pd.DataFrame, labels: Sequence[str], title: str = "Label shares per population"):
    """Share of texts carrying each label, one bar per row of `mix` (populations, reference sets)."""
    shares = mix[list(labels)].T
    shares.columns = [f"{name} ({int(mix.loc[name, 'rows'])})" if "rows" in mix.columns else str(name)
                      for name in mix.index]
    fig, ax = plt.subplots(figsize=(9, 4))
    sns.barplot(_long(shares, "label", "rows", "share"), x="label", y="share", hue="rows", ax=ax)
    ax.set(xlabel="", ylabel="share of texts", title=title)
    ax.legend(title="", fontsize=8)
    return fig


@matplotlib.rc_context(STYLE)
def plot_population_scores(frame: pd.DataFrame, threshold: float = 0.5):
    """Histogram of the test rows' utterance scores (emotions.data.populations), one colour per population."""
    fig, ax = plt.subplots(figsize=(8, 3.5))
    counts = frame["population"].value_counts()
    sns.histplot(frame.assign(population=frame["population"].map(lambda p: f"{p} ({counts[p]})")),
                 x="utterance_score", hue="population", bins=40, binrange=(0, 1), ax=ax)
    ax.axvline(threshold, color="0.3", ls="--", lw=1)
    ax.set(xlabel="utterance score (comments vs written + seed utterances)", ylabel="test rows",
           title="The test file's two populations")
    return fig
