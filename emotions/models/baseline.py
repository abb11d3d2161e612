"""Fast classical baseline: TF-IDF (words + character n-grams) and logistic regression, one-vs-rest."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import joblib
import numpy as np
import sklearn
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from ..core.options import merged
from .kind_options import BaselineOptions
from ..data.labels import TaskSpec
from ..data.preprocess import PreprocessConfig
from .base import Predictor, read_model_card

if TYPE_CHECKING:                      # pandas stays out of the serving install
    import pandas as pd

log = logging.getLogger(__name__)



DEFAULTS: dict = BaselineOptions.defaults()
RUNTIME_KEYS = {"preprocess", "seed"}   # passed by the training stage, not model options
WEIGHTS_FILE = "baseline.joblib"


class BaselinePredictor(Predictor):
    kind = "baseline"

    def __init__(self, word_vec: TfidfVectorizer, char_vec: TfidfVectorizer, clf, **kwargs):
        super().__init__(**kwargs)
        self.word_vec, self.char_vec, self.clf = word_vec, char_vec, clf

    def features(self, texts: Sequence[str]):
        return hstack([self.word_vec.transform(texts), self.char_vec.transform(texts)]).tocsr()

    def predict_proba_clean(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.clf.predict_proba(self.features(list(texts))), dtype=np.float64)

    def save_weights(self, model_dir: Path) -> None:
        joblib.dump({"word_vec": self.word_vec, "char_vec": self.char_vec, "clf": self.clf},
                    model_dir / WEIGHTS_FILE)


def train(train_df: pd.DataFrame, tune_df: pd.DataFrame, spec: TaskSpec, params: dict,
          out_dir: Path) -> BaselinePredictor:
    p = merged(BaselineOptions, params, RUNTIME_KEYS, "baseline options")
    prep = PreprocessConfig.from_dict(params.get("preprocess"))
    labels = list(spec.labels)
    t0 = time.perf_counter()
    shell = BaselinePredictor(None, None, None, labels=labels, multilabel=spec.multilabel, preprocess=prep,
                              task=spec.name, params=p)
    texts = shell.preprocess(train_df["text"].tolist())
    word_vec = TfidfVectorizer(ngram_range=(1, p["word_ngram_max"]), min_df=p["min_df"],
                               max_features=p["max_features"], sublinear_tf=True)
    char_vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(p["char_ngram_min"], p["char_ngram_max"]),
                               min_df=p["min_df"], max_features=p["max_features"], sublinear_tf=True)
    x = hstack([word_vec.fit_transform(texts), char_vec.fit_transform(texts)]).tocsr()
    y = train_df[labels].to_numpy()
    lr = LogisticRegression(C=p["C"], class_weight=p["class_weight"], max_iter=p["max_iter"])
    # per-row weights when the training step gave them (train.label_issues.action=downweight)
    from ..data.label_issues import WEIGHT_COLUMN   # training only: the serving install has no pandas
    weights = train_df[WEIGHT_COLUMN].to_numpy(dtype=float) if WEIGHT_COLUMN in train_df.columns else None
    if spec.multilabel and weights is None:
        clf = OneVsRestClassifier(lr, n_jobs=None).fit(x, y)
    elif spec.multilabel:
        with sklearn.config_context(enable_metadata_routing=True):
            clf = OneVsRestClassifier(lr.set_fit_request(sample_weight=True), n_jobs=None).fit(
                x, y, sample_weight=weights)
    else:
        clf = lr.fit(x, y.argmax(axis=1), sample_weight=weights)
    model = BaselinePredictor(word_vec, char_vec, clf, labels=labels, multilabel=spec.multilabel,
                              preprocess=prep, task=spec.name, params=p)
    log.info("baseline trained on %d texts, %d features in %.1fs", len(texts), x.shape[1], time.perf_counter() - t0)
    model.tune(tune_df)
    model.save(out_dir)
    return model


def load(model_dir: Path) -> BaselinePredictor:
    card = read_model_card(model_dir)
    parts = joblib.load(model_dir / WEIGHTS_FILE)
    return BaselinePredictor(parts["word_vec"], parts["char_vec"], parts["clf"], **Predictor.card_kwargs(card))
