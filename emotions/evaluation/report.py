"""Score a trained model on labelled splits (the numbers in metrics.json) and draw its figures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np
import pandas as pd

from . import plots
from .plots import plot_pr_curves, plot_threshold_curves, plt
from .metrics import multilabel_report, singlelabel_report

if TYPE_CHECKING:  # evaluation sits below models: the predictor is only a type here
    from ..models.base import Predictor


def evaluate_model(predictor: Predictor, frames: Mapping[str, pd.DataFrame]) -> tuple[dict, dict[str, np.ndarray]]:
    """Metrics per split with the model's own thresholds, plus the probabilities used."""
    metrics: dict = {"model": predictor.card()}
    probas: dict[str, np.ndarray] = {}
    for name, df in frames.items():
        proba = predictor.predict_proba(df["text"].tolist())
        y = df[predictor.labels].to_numpy()
        if predictor.multilabel:
            metrics[name] = multilabel_report(y, proba, predictor.thresholds, predictor.labels, predictor.ensure_one)
        else:
            metrics[name] = singlelabel_report(y.argmax(axis=1), proba, predictor.labels)
        probas[name] = proba
    return metrics, probas


def markdown_table(table: pd.DataFrame, index: bool = False) -> str:
    """A GitHub markdown table (pandas' to_markdown needs tabulate, which the install does not have)."""
    table = table.reset_index() if index else table
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in table.itertuples(index=False)]
    return "\n".join(lines)


def mixed_holdout(predictor: Predictor, frames: Mapping[str, pd.DataFrame], probas: Mapping[str, np.ndarray],
                  share: float) -> dict:
    """Weighted F1 (and per-class F1) of holdout + holdout_utterances, rows weighted so the utterances count for
    `share`: the estimate of the score on the whole test file, whose two populations these holdouts stand for."""
    from sklearn.metrics import f1_score

    parts = [frames["holdout"], frames["holdout_utterances"]]
    y = np.vstack([df[predictor.labels].to_numpy() for df in parts])
    pred = np.vstack([predictor.decide(probas[k]) for k in ("holdout", "holdout_utterances")])
    n, m = len(parts[0]), len(parts[1])
    w = np.r_[np.full(n, (1 - share) / n), np.full(m, share / m)]
    per_class = f1_score(y, pred, average=None, sample_weight=w, zero_division=0)
    return {"weighted_f1": float(f1_score(y, pred, average="weighted", sample_weight=w, zero_division=0)),
            "utterance_share": share, "rows": {"holdout": n, "holdout_utterances": m},
            "per_class_f1": dict(zip(predictor.labels, map(float, per_class)))}


def evaluation_figures(predictor: Predictor, df: pd.DataFrame, proba: np.ndarray, out_dir: Path) -> dict[str, Path]:
    """PR and threshold curves (multilabel) or a confusion matrix (single label), as PNGs in `out_dir`."""
    y = df[predictor.labels].to_numpy()
    out_dir = Path(out_dir)
    if predictor.multilabel:
        return {"pr_curves": plot_pr_curves(y, proba, predictor.labels, out_dir / "pr_curves.png",
                                            thresholds=predictor.thresholds),
                "threshold_curves": plot_threshold_curves(y, proba, predictor.labels, out_dir / "threshold_curves.png",
                                                          thresholds=predictor.thresholds)}
    report = singlelabel_report(y.argmax(axis=1), proba, predictor.labels)
    path = out_dir / "confusion_matrix.png"
    plt.close(plots.plot_confusion_matrix(report["confusion_matrix"], predictor.labels, path, "Holdout confusion matrix"))
    return {"confusion_matrix": path}
