"""The test file's two populations, GoEmotions-style comments and spoken-style utterances, found without labels.

The rule, in two label-free steps (both TF-IDF word + character n-grams, logistic regression):

1. *valid vs test*: a classifier that tells the normalised valid.csv texts from the test texts, scored out of
   fold. The test's GoEmotions comments look like valid, so it cannot tell them apart (p near 0.5); test rows it
   puts at p >= SEED_PROBABILITY are confidently of another kind: the seeds of the utterance population.
2. *comments vs utterances*: valid texts against the seeds plus the project's written utterances
   (data/utterances/train); a test row is an `utterance` when p >= 0.5.

`population_view` returns each test row's population and score plus a report (sizes, the rule's false-positive
rate on valid, out of fold). `label_mix` and `mix_warnings` compare predicted label shares per population with
the label shares of the training data, so "54% neutral on explicit emotional utterances" shows at a glance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .preprocess import normalize_asr

POPULATIONS = ("comment", "utterance")
SEED_PROBABILITY = 0.8     # step 1: valid's own out-of-fold rows reach it ~1.6% of the time (real files)
MAX_SHARE_GAP = 0.25       # a label whose predicted share differs more than this from every reference mix warns


@dataclass
class PopulationView:
    """Per test row: `population` (comment | utterance) and `score` (step 2's probability); `report`."""

    population: np.ndarray
    score: np.ndarray
    report: dict = field(default_factory=dict)

    def frame(self, texts: Sequence[str]) -> pd.DataFrame:
        return pd.DataFrame({"text": list(texts), "population": self.population, "utterance_score": self.score})


def _classifier(seed: int):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    features = make_union(TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                          TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=3, sublinear_tf=True))
    return make_pipeline(features, LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced",
                                                      random_state=seed))


def _out_of_fold(texts: list[str], y: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    folds = int(min(5, np.bincount(y.astype(int)).min()))
    if folds < 2:
        raise ValueError(f"population view: need at least 2 texts of each kind, got {np.bincount(y.astype(int))}")
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return cross_val_predict(_classifier(seed), texts, y, cv=cv, method="predict_proba")[:, 1]


def population_view(test_texts: Sequence[str], comment_texts: Sequence[str], utterance_texts: Sequence[str],
                    seed: int = 0, check_texts: Sequence[str] = ()) -> PopulationView:
    """Each test text's population by the two-step rule above (texts are normalised like the test first).
    `check_texts` (known utterances, e.g. the evaluation writers' rows): the report adds the share the rule
    calls utterances (`check_utterance_share`), its recall on texts it never saw."""
    test = [normalize_asr(str(t)) for t in test_texts]
    comments = [normalize_asr(str(t)) for t in comment_texts]
    utterances = [normalize_asr(str(t)) for t in utterance_texts]
    step1 = _out_of_fold(comments + test, np.r_[np.zeros(len(comments)), np.ones(len(test))], seed)
    seeds = [t for t, p in zip(test, step1[len(comments):]) if p >= SEED_PROBABILITY]
    positives = seeds + utterances
    texts2, y2 = comments + positives, np.r_[np.zeros(len(comments)), np.ones(len(positives))]
    comment_fp = float((_out_of_fold(texts2, y2, seed)[:len(comments)] >= 0.5).mean())
    model = _classifier(seed).fit(texts2, y2)
    score = model.predict_proba(test)[:, 1]
    population = np.where(score >= 0.5, POPULATIONS[1], POPULATIONS[0])
    counts = {p: int((population == p).sum()) for p in POPULATIONS}
    check = [normalize_asr(str(t)) for t in check_texts]
    report = {"rows": len(test), "counts": counts, "shares": {p: round(c / max(len(test), 1), 4)
                                                               for p, c in counts.items()},
              "seeds": len(seeds), "written_utterances": len(utterances), "comments": len(comments),
              "comment_false_positive_rate": round(comment_fp, 4),
              **({"check_utterance_share": round(float((model.predict_proba(check)[:, 1] >= 0.5).mean()), 4)}
                 if check else {}),
              "rule": f"valid-vs-test seeds at p >= {SEED_PROBABILITY}, then comments vs seeds + written "
                      f"utterances at p >= 0.5"}
    return PopulationView(population, score, report)


def label_mix(decisions: np.ndarray, population: Sequence[str], labels: Sequence[str]) -> pd.DataFrame:
    """Share of rows carrying each label, per population and overall (rows: population; plus `rows`)."""
    frame = pd.DataFrame(np.asarray(decisions), columns=list(labels)).assign(population=list(population))
    mix = frame.groupby("population")[list(labels)].mean()
    mix.loc["all"] = frame[list(labels)].mean()
    mix["rows"] = frame.groupby("population").size().reindex(mix.index).fillna(len(frame)).astype(int)
    return mix


def reference_mix(frame: pd.DataFrame, labels: Sequence[str]) -> pd.Series:
    """Label shares of a labelled frame (a training or evaluation set)."""
    return frame[list(labels)].mean()


def mix_warnings(mix: pd.DataFrame, references: Mapping[str, pd.Series], labels: Sequence[str],
                 max_gap: float = MAX_SHARE_GAP) -> list[str]:
    """One line per population whose predicted label shares are far (a label off by more than `max_gap`)
    from every reference mix: a sign the model does not fit that population."""
    lines = []
    for population in [p for p in POPULATIONS if p in mix.index]:
        gaps = {name: (mix.loc[population, list(labels)] - ref[list(labels)]).abs() for name, ref in references.items()}
        nearest = min(gaps, key=lambda n: gaps[n].max())
        worst = gaps[nearest].idxmax()
        if gaps[nearest].max() > max_gap:
            lines.append(f"{population} rows ({int(mix.loc[population, 'rows'])}): predicted '{worst}' on "
                         f"{mix.loc[population, worst]:.0%} of them, but {references[nearest][worst]:.0%} in "
                         f"'{nearest}', the nearest training mix: the model may not fit this population")
    return lines
