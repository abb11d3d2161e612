"""Self-training: pseudo-labels for the unlabelled test texts, added to the training rows for a fresh model.

    predictor, report = self_train(train_fn, train_df, test_texts, labels, rounds=1, confidence=0.9)

Round 0 trains the normal model. Each further round predicts the unlabelled texts with the current model,
keeps the rows it is confident about (`select_pseudo_labels`), and trains a fresh model (same options, same
tune split for early stopping and thresholds) on the training rows plus these pseudo-labelled rows. The
pseudo rows are chosen anew from all unlabelled texts every round (they replace the previous round's, they do
not pile up). Only the unlabelled test texts are ever pseudo-labelled: never tune, never holdout.

Multilabel rule (`select_pseudo_labels`): a row is confident when every class is decided with a margin,
p >= confidence (a confident yes) or p <= 1 - confidence (a confident no); its confidence score is
min over classes of max(p, 1 - p). Its pseudo-labels are the model's own thresholded decisions
(`apply_thresholds`, per-class tuned thresholds). A class whose threshold lies outside
[1 - confidence, confidence] can decide against a confident side (p = 0.95 under a threshold of 0.97, or
p = 0.05 over a threshold of 0.04): such rows are skipped, so a kept row's labels are both the model's
decisions and its confident sides. A row left without any positive label is kept only with `ensure_one`,
which gives it its most probable class (as the model's predictions do). Single-label tasks: confident
when the top probability is >= confidence; the label is the argmax.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import pandas as pd
from pydantic import Field

from ..core.options import Options
from ..data.label_issues import WEIGHT_COLUMN
from ..evaluation.metrics import apply_thresholds

if TYPE_CHECKING:
    from ..models.base import Predictor

log = logging.getLogger(__name__)

PSEUDO_SOURCE = "pseudo_label"   # the `source` value of pseudo-labelled rows (when the frame has that column)


class SelfTrainingOptions(Options):
    """`train.self_training` in the config: pseudo-label the unlabelled test texts and retrain."""

    rounds: int = Field(0, ge=0)                   # retraining rounds after the normal model; 0 = off
    confidence: float = Field(0.9, gt=0.5, le=1)   # every class needs p >= this or p <= 1 - this
    max_share: float = Field(1.0, gt=0, le=1)      # at most this share of the unlabelled rows, most confident first


def confidence_scores(proba: np.ndarray, multilabel: bool = True) -> np.ndarray:
    """Per row: min over classes of max(p, 1 - p) (multilabel), or the top probability (single label)."""
    proba = np.asarray(proba, dtype=np.float64)
    if not len(proba):
        return np.zeros(0)
    return np.maximum(proba, 1 - proba).min(axis=1) if multilabel else proba.max(axis=1)


def select_pseudo_labels(proba: np.ndarray, thresholds: Sequence[float] | np.ndarray | float, *,
                         confidence: float = 0.9, max_share: float = 1.0, ensure_one: bool = True,
                         multilabel: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(row indices in ascending order, their 0/1 label matrix) of the rows confident enough to pseudo-label
    (the rule: this module's docstring); at most floor(max_share * rows) of them, the most confident first."""
    proba = np.asarray(proba, dtype=np.float64)
    if not 0.5 < confidence <= 1 or not 0 < max_share <= 1:
        raise ValueError(f"need 0.5 < confidence <= 1 and 0 < max_share <= 1, got {confidence}, {max_share}")
    n, k = proba.shape if proba.ndim == 2 else (0, 0)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, k), dtype=np.int64)
    score = confidence_scores(proba, multilabel)
    if multilabel:
        decided = apply_thresholds(proba, thresholds, ensure_one=False)
        keep = (score >= confidence) & (decided == (proba >= 0.5)).all(axis=1)
        if not ensure_one:
            keep &= decided.sum(axis=1) > 0
        labels = apply_thresholds(proba, thresholds, ensure_one=ensure_one)
    else:
        keep = score >= confidence
        labels = np.eye(k, dtype=np.int64)[proba.argmax(axis=1)]
    rows = np.flatnonzero(keep)
    cap = int(np.floor(max_share * n + 1e-9))
    if len(rows) > cap:
        rows = np.sort(rows[np.argsort(-score[rows], kind="stable")[:cap]])
    return rows.astype(np.int64), labels[rows].astype(np.int64)


def pseudo_frame(train_df: pd.DataFrame, texts: Sequence[str], y: np.ndarray, labels: Sequence[str]) -> pd.DataFrame:
    """Pseudo-labelled rows shaped like `train_df` (its `source` column says pseudo_label, sample weights 1)."""
    rows = pd.DataFrame({"text": list(texts), **{lab: y[:, j].astype(int) for j, lab in enumerate(labels)}})
    if "source" in train_df.columns:
        rows["source"] = PSEUDO_SOURCE
    if WEIGHT_COLUMN in train_df.columns:
        rows[WEIGHT_COLUMN] = 1.0
    return rows.reindex(columns=list(train_df.columns) + [c for c in rows.columns if c not in train_df.columns])


def self_train(train_fn: Callable[[pd.DataFrame], Predictor], train_df: pd.DataFrame,
               unlabelled_texts: Sequence[str], labels: Sequence[str], *, rounds: int = 0, confidence: float = 0.9,
               max_share: float = 1.0, progress: Callable[[str], None] | None = None) -> tuple[Predictor, dict]:
    """Round 0 = `train_fn(train_df)`; each of `rounds` further rounds retrains `train_fn` (a fresh model) on
    train_df + the rows the current model pseudo-labels. Returns the last model and the per-round report.
    A round that selects no row ends the loop (retraining on the same rows would change nothing)."""
    texts = [str(t) for t in unlabelled_texts]
    labels = list(labels)
    report: dict = {"rounds": int(rounds), "rounds_run": 0, "confidence": float(confidence),
                    "max_share": float(max_share), "unlabelled_rows": len(texts), "train_rows": len(train_df),
                    "pseudo_rows": 0, "per_round": []}
    predictor = train_fn(train_df)
    for r in range(1, int(rounds) + 1):
        if not texts:
            report["stopped"] = "no unlabelled texts"
            break
        proba = predictor.predict_proba(texts)
        rows, y = select_pseudo_labels(proba, predictor.thresholds, confidence=confidence, max_share=max_share,
                                       ensure_one=predictor.ensure_one, multilabel=predictor.multilabel)
        score = confidence_scores(proba[rows], predictor.multilabel)
        entry = {"round": r, "rows": len(rows), "share": round(len(rows) / len(texts), 4),
                 "confidence": float(confidence), "min_score": float(score.min()) if len(rows) else None,
                 "label_counts": {lab: int(y[:, j].sum()) for j, lab in enumerate(labels)}}
        report["per_round"].append(entry)
        line = (f"self-training round {r}: {entry['rows']} of {len(texts)} unlabelled rows pseudo-labelled "
                f"(confidence {confidence})")
        log.info(line)
        if progress:
            progress(line)
        if not len(rows):
            report["stopped"] = f"round {r} selected no row"
            break
        extra = pseudo_frame(train_df, [texts[i] for i in rows], y, labels)
        predictor = train_fn(pd.concat([train_df, extra], ignore_index=True))
        report["rounds_run"], report["pseudo_rows"] = r, len(rows)
    return predictor, report


def summary_numbers(report: dict | None) -> dict:
    """Flat numbers for a stage summary: rounds run, pseudo rows in the final model's training set, rows per round."""
    report = report or {}
    return {"self_training_rounds": int(report.get("rounds_run", 0)),
            "self_training_rows": int(report.get("pseudo_rows", 0)),
            **{f"self_training_rows_round{e['round']}": e["rows"] for e in report.get("per_round", [])}}
