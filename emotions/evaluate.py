"""Score a trained model on labelled splits (the numbers in metrics.json) and draw its figures."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from . import plots
from .metrics import multilabel_report, singlelabel_report
from .models.base import Predictor


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


def evaluation_figures(predictor: Predictor, df: pd.DataFrame, proba: np.ndarray) -> dict:
    """PR and threshold curves (multilabel) or a confusion matrix (single label)."""
    y = df[predictor.labels].to_numpy()
    if predictor.multilabel:
        return {"pr_curves": plots.plot_pr_curves(y, proba, predictor.labels, predictor.thresholds),
                "threshold_curves": plots.plot_threshold_curves(y, proba, predictor.labels, predictor.thresholds)}
    report = singlelabel_report(y.argmax(axis=1), proba, predictor.labels)
    return {"confusion_matrix": plots.plot_confusion_matrix(report["confusion_matrix"], predictor.labels,
                                                            "Holdout confusion matrix")}
