"""Metrics and decision thresholds (the competition metric: weighted F1, multilabel)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

# scikit-learn is imported inside the report functions: the service's decisions (apply_thresholds)
# need numpy alone, so the ONNX backends start without loading sklearn/scipy.

DEFAULT_GRID = np.round(np.arange(0.02, 0.981, 0.01), 4)
WEIGHT_COLUMN = "threshold_weight"   # a tune row's weight in threshold tuning (mixed populations); absent = 1


def weighted_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The competition metric: sklearn weighted F1 on multilabel indicator matrices."""
    from sklearn.metrics import f1_score
    return float(f1_score(y_true, y_pred, average="weighted", zero_division=0))


def apply_thresholds(proba: np.ndarray, thresholds: Sequence[float] | np.ndarray | float,
                     ensure_one: bool = False) -> np.ndarray:
    """0/1 decisions; with `ensure_one`, a row with no label above threshold gets its top label."""
    proba = np.asarray(proba, dtype=np.float64)
    pred = (proba >= np.asarray(thresholds, dtype=np.float64)).astype(np.int64)
    if ensure_one and len(pred):
        empty = pred.sum(axis=1) == 0
        pred[empty, proba[empty].argmax(axis=1)] = 1
    return pred


def f1_vs_threshold(y_true: np.ndarray, proba: np.ndarray, grid: np.ndarray = DEFAULT_GRID,
                     weights: np.ndarray | None = None) -> np.ndarray:
    """F1 of each class (columns) at each threshold of `grid` (rows): g x k; rows weighted by `weights`."""
    y_true, proba = np.asarray(y_true) == 1, np.asarray(proba, dtype=np.float64)
    w = np.ones(len(y_true)) if weights is None else np.asarray(weights, dtype=np.float64)
    pred = proba[:, None, :] >= np.asarray(grid)[None, :, None]           # n x g x k
    tp = np.einsum("n,ngk->gk", w, pred & y_true[:, None, :])
    fp = np.einsum("n,ngk->gk", w, pred & ~y_true[:, None, :])
    fn = (w[:, None] * y_true).sum(axis=0)[None, :] - tp
    return np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1e-12), 0.0)


def tune_thresholds(y_true: np.ndarray, proba: np.ndarray, grid: np.ndarray = DEFAULT_GRID,
                    weights: np.ndarray | None = None) -> np.ndarray:
    """Per-class threshold maximising that class's F1 (0.5 for a class with no positives).

    Weighted F1 is a support-weighted sum of per-class F1s, so tuning each class alone
    maximises it (before any `ensure_one` fix-up). Ties go to the threshold nearest 0.5. `weights`: one per row
    (e.g. two populations mixed in the test's proportions).
    """
    grid = np.asarray(grid)
    f1 = f1_vs_threshold(y_true, proba, grid, weights)
    order = np.argsort(np.abs(grid - 0.5), kind="stable")  # prefer thresholds near 0.5 on ties
    out = grid[order[np.argmax(f1[order], axis=0)]].astype(float)
    out[~(np.asarray(y_true) == 1).any(axis=0)] = 0.5
    return out


def multilabel_report(y_true: np.ndarray, proba: np.ndarray, thresholds: Sequence[float],
                      labels: Sequence[str], ensure_one: bool = False) -> dict:
    """Per-class precision/recall/F1/ROC AUC/AP and weighted/macro/micro F1."""
    from sklearn.metrics import average_precision_score, f1_score, precision_recall_fscore_support, roc_auc_score
    y_true = np.asarray(y_true)
    pred = apply_thresholds(proba, thresholds, ensure_one)
    p, r, f, s = precision_recall_fscore_support(y_true, pred, average=None, zero_division=0)
    per_class = {}
    for j, name in enumerate(labels):
        both = len(np.unique(y_true[:, j])) == 2
        per_class[name] = {
            "precision": float(p[j]), "recall": float(r[j]), "f1": float(f[j]), "support": int(s[j]),
            "roc_auc": float(roc_auc_score(y_true[:, j], proba[:, j])) if both else None,
            "average_precision": float(average_precision_score(y_true[:, j], proba[:, j])) if both else None,
            "threshold": float(np.asarray(thresholds, dtype=float).reshape(-1)[j]
                               if np.ndim(thresholds) else thresholds),
        }
    aucs = [c["roc_auc"] for c in per_class.values() if c["roc_auc"] is not None]
    return {
        "n": int(len(y_true)),
        "weighted_f1": weighted_f1(y_true, pred),
        "macro_f1": float(f1_score(y_true, pred, average="macro", zero_division=0)),
        "micro_f1": float(f1_score(y_true, pred, average="micro", zero_division=0)),
        "mean_roc_auc": float(np.mean(aucs)) if aucs else None,
        "mean_precision": float(np.mean(p)), "mean_recall": float(np.mean(r)),
        "per_class": per_class,
    }


def singlelabel_report(y_true: np.ndarray, proba: np.ndarray, labels: Sequence[str]) -> dict:
    """Accuracy, macro/weighted F1, one-vs-rest ROC AUC per class, confusion matrix."""
    from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support,
                                 roc_auc_score)
    y_true = np.asarray(y_true)
    pred = np.asarray(proba).argmax(axis=1)
    onehot = np.eye(len(labels), dtype=np.int64)[y_true]
    p, r, f, s = precision_recall_fscore_support(y_true, pred, labels=range(len(labels)), zero_division=0)
    per_class = {}
    for j, name in enumerate(labels):
        both = len(np.unique(onehot[:, j])) == 2
        per_class[name] = {"precision": float(p[j]), "recall": float(r[j]), "f1": float(f[j]),
                           "support": int(s[j]),
                           "roc_auc": float(roc_auc_score(onehot[:, j], proba[:, j])) if both else None}
    aucs = [c["roc_auc"] for c in per_class.values() if c["roc_auc"] is not None]
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, pred)),
        "macro_f1": float(f1_score(y_true, pred, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y_true, pred, average="weighted", zero_division=0)),
        "macro_roc_auc": float(np.mean(aucs)) if aucs else None,
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(y_true, pred, labels=range(len(labels))).tolist(),
    }
