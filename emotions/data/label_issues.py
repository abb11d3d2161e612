"""Likely label errors in the training rows (cleanlab on out-of-fold probabilities), reported and optionally acted on.

    report = find_label_issues(train, labels, folds=5, seed=42)        # one row per training row, worst first
    train = apply_label_issues(train, report, "remove")                # or "downweight" (a sample_weight column)

The out-of-fold probabilities come from a TF-IDF (words + character n-grams) and logistic-regression
one-vs-rest model fitted with sklearn on the other folds (the baseline's recipe; the data layer does not import
the models). Multilabel tasks use `cleanlab.multilabel_classification`, single-label ones `cleanlab.filter`.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Literal, Sequence

import numpy as np
import pandas as pd
from pydantic import Field
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold
from sklearn.multiclass import OneVsRestClassifier

from ..core.options import Options, check
from .preprocess import PreprocessConfig, preprocess_texts

log = logging.getLogger(__name__)

WEIGHT_COLUMN = "sample_weight"   # read by the models that support per-row weights (the baseline)
WEIGHTED_KINDS = ("baseline",)


class LabelIssuesOptions(Options):
    """`train.label_issues` in the config: find likely label errors in the training rows and act on them."""

    action: Literal["none", "report", "remove", "downweight"] = "none"   # report: only write label_issues.csv
    folds: int = Field(5, ge=2)            # cross-validation folds for the out-of-fold probabilities
    weight: float = Field(0.2, ge=0, le=1)   # downweight: the suspect rows' sample weight (others 1)
    filter_by: Literal["prune_by_noise_rate", "prune_by_class", "both", "confident_learning",
                       "predicted_neq_given"] = "prune_by_noise_rate"   # cleanlab's rule for flagging a row
    max_share: float = Field(0.1, gt=0, le=1)   # flag at most this share of the rows (the lowest label quality
                                                # among cleanlab's flags): a weak out-of-fold model flags too many
    C: float = Field(4.0, gt=0)            # the out-of-fold model's inverse regularisation strength


def out_of_fold_proba(texts: Sequence[str], y: np.ndarray, folds: int = 5, seed: int = 0, C: float = 4.0,
                      multilabel: bool = True) -> np.ndarray:
    """Probabilities (n x k) of each row from a TF-IDF + logistic-regression model fitted without its fold."""
    texts, y = list(texts), np.asarray(y)
    if len(texts) < folds:
        raise ValueError(f"label issues: {len(texts)} rows are fewer than the {folds} folds")
    proba = np.zeros(y.shape, dtype=np.float64)
    for fit_idx, pred_idx in KFold(folds, shuffle=True, random_state=seed).split(texts):
        word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, max_features=200_000)
        fit_texts = [texts[i] for i in fit_idx]
        x_fit = hstack([word.fit_transform(fit_texts), char.fit_transform(fit_texts)]).tocsr()
        pred_texts = [texts[i] for i in pred_idx]
        x_pred = hstack([word.transform(pred_texts), char.transform(pred_texts)]).tocsr()
        lr = LogisticRegression(C=C, class_weight="balanced", max_iter=2000)
        if multilabel:
            always = y[fit_idx].min(axis=0) == y[fit_idx].max(axis=0)   # a class constant in this fold
            cols = np.flatnonzero(~always)
            if len(cols):
                proba[np.ix_(pred_idx, cols)] = OneVsRestClassifier(lr).fit(x_fit, y[np.ix_(fit_idx, cols)]) \
                    .predict_proba(x_pred)
            for j in np.flatnonzero(always):
                proba[pred_idx, j] = float(y[fit_idx[0], j])
        else:
            fitted = lr.fit(x_fit, y[fit_idx].argmax(axis=1))
            proba[np.ix_(pred_idx, fitted.classes_)] = fitted.predict_proba(x_pred)
    return proba


def find_label_issues(frame: pd.DataFrame, labels: Sequence[str], *, multilabel: bool = True, folds: int = 5,
                      seed: int = 0, C: float = 4.0, filter_by: str = "prune_by_noise_rate",
                      max_share: float = 1.0, preprocess: PreprocessConfig | dict | None = None) -> pd.DataFrame:
    """One row per input row, worst label quality first: `row` (position in `frame`), `text_sha1`, `text`,
    `given` and `suspected` labels ('|'-joined), `quality` (cleanlab's label quality, 0..1) and `issue`
    (cleanlab's flag, kept for at most `max_share` of the rows: those of lowest quality)."""
    labels = list(labels)
    missing = [c for c in ["text", *labels] if c not in frame.columns]
    if missing:
        raise KeyError(f"label issues: column(s) {missing} not in the frame")
    prep = preprocess if isinstance(preprocess, PreprocessConfig) else PreprocessConfig.from_dict(preprocess)
    texts = preprocess_texts(frame["text"].tolist(), prep)
    y = frame[labels].to_numpy().astype(int)
    proba = out_of_fold_proba(texts, y, folds=folds, seed=seed, C=C, multilabel=multilabel)
    if multilabel:
        from cleanlab.multilabel_classification import filter as ml_filter, rank as ml_rank

        given = [list(np.flatnonzero(row)) for row in y]
        issue = ml_filter.find_label_issues(labels=given, pred_probs=proba, filter_by=filter_by)
        quality = ml_rank.get_label_quality_scores(labels=given, pred_probs=proba)
        suspected = (proba >= 0.5).astype(int)
        none = suspected.sum(axis=1) == 0
        suspected[none, proba[none].argmax(axis=1)] = 1
    else:
        from cleanlab.filter import find_label_issues as sl_find
        from cleanlab.rank import get_label_quality_scores as sl_quality

        given_idx = y.argmax(axis=1)
        issue = sl_find(labels=given_idx, pred_probs=proba, filter_by=filter_by)
        quality = sl_quality(labels=given_idx, pred_probs=proba)
        suspected = np.eye(len(labels), dtype=int)[proba.argmax(axis=1)]
    issue = np.asarray(issue, dtype=bool)
    cap = int(np.floor(max_share * len(frame)))
    if issue.sum() > cap:
        flagged = np.flatnonzero(issue)
        keep = flagged[np.argsort(quality[flagged], kind="stable")[:cap]]
        log.info("label issues: cleanlab flagged %d rows; keeping the %d of lowest quality (max_share %.2f)",
                 len(flagged), cap, max_share)
        issue = np.zeros(len(frame), dtype=bool)
        issue[keep] = True
    names = np.asarray(labels)
    report = pd.DataFrame({
        "row": np.arange(len(frame)),
        "text_sha1": [hashlib.sha1(str(t).encode("utf-8")).hexdigest()[:12] for t in frame["text"]],
        "text": frame["text"].astype(str).to_numpy(),
        "given": ["|".join(names[r == 1]) for r in y],
        "suspected": ["|".join(names[r == 1]) for r in suspected],
        "quality": np.round(quality.astype(float), 4),
        "issue": issue,
    })
    if "source" in frame.columns:
        report["source"] = frame["source"].astype(str).to_numpy()
    log.info("label issues: %d of %d rows flagged (%s)", int(report["issue"].sum()), len(report), filter_by)
    return report.sort_values(["issue", "quality"], ascending=[False, True], kind="stable").reset_index(drop=True)


def apply_label_issues(frame: pd.DataFrame, report: pd.DataFrame, action: str, weight: float = 0.2) -> pd.DataFrame:
    """The training rows after `action`: none/report (unchanged), remove (flagged rows dropped) or downweight
    (a `sample_weight` column: `weight` for flagged rows, 1 for the others)."""
    if action in ("none", "report"):
        return frame
    flagged = np.zeros(len(frame), dtype=bool)
    flagged[report.loc[report["issue"], "row"].to_numpy(dtype=int)] = True
    if action == "remove":
        return frame.loc[~flagged].reset_index(drop=True)
    if action == "downweight":
        return frame.assign(**{WEIGHT_COLUMN: np.where(flagged, float(weight), 1.0)})
    raise ValueError(f"label_issues.action must be none, report, remove or downweight, got {action!r}")


def issue_summary(report: pd.DataFrame, labels: Sequence[str]) -> dict:
    """Counts for the stage manifest: rows, flagged rows, and flagged rows per given label."""
    flagged = report[report["issue"]]
    per_label = {l: int(flagged["given"].str.split("|").map(lambda g, l=l: l in g).sum()) for l in labels}
    return {"rows": int(len(report)), "flagged": int(len(flagged)),
            "flagged_share": round(len(flagged) / max(len(report), 1), 4), "flagged_per_given_label": per_label}


def clean_training_rows(train: pd.DataFrame, labels: Sequence[str], options: dict | None, *, multilabel: bool = True,
                        seed: int = 0, preprocess: PreprocessConfig | dict | None = None,
                        model_kind: str = "baseline") -> tuple[pd.DataFrame, pd.DataFrame | None, dict]:
    """The training stage's step: (rows to train on, the report or None when action is none, summary numbers)."""
    opts = check(LabelIssuesOptions, options, "train.label_issues")
    if opts.action == "none":
        return train, None, {}
    if opts.action == "downweight" and model_kind not in WEIGHTED_KINDS:
        raise ValueError(f"train.label_issues.action=downweight needs per-row weights, which only "
                         f"{', '.join(WEIGHTED_KINDS)} supports (model {model_kind!r}); use action=remove")
    report = find_label_issues(train, labels, multilabel=multilabel, folds=opts.folds, seed=seed, C=opts.C,
                               filter_by=opts.filter_by, max_share=opts.max_share, preprocess=preprocess)
    out = apply_label_issues(train, report, opts.action, opts.weight)
    return out, report, {**issue_summary(report, labels), "action": opts.action, "train_rows_after": int(len(out))}
