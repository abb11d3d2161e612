"""What every trained model offers, and its model card."""

from __future__ import annotations

import dataclasses
import json
import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..core.io import write_json_atomic
from ..core.manifest import MODEL_CARD, write_manifest
from ..evaluation.metrics import WEIGHT_COLUMN, apply_thresholds, tune_thresholds
from ..data.preprocess import PreprocessConfig, preprocess_texts

if TYPE_CHECKING:                      # pandas stays out of the serving install
    import pandas as pd

ASR_DIR = "asr"                        # the ASR dictionaries a model was trained with, copied into its folder


def read_model_card(model_dir: str | Path) -> dict:
    path = Path(model_dir) / MODEL_CARD
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir} is not a trained model folder: {MODEL_CARD} is missing")
    return json.loads(path.read_text(encoding="utf-8"))


class Predictor(ABC):
    """A trained model: raw texts in, probabilities / decisions out (preprocessing inside)."""

    kind: str = ""

    def __init__(self, labels: Sequence[str], multilabel: bool, preprocess: PreprocessConfig,
                 thresholds: Sequence[float] | None = None, ensure_one: bool = True,
                 task: str = "", params: dict | None = None):
        self.labels = list(labels)
        self.multilabel = multilabel
        self.preprocess_config = preprocess
        self.thresholds = np.asarray(thresholds if thresholds is not None else [0.5] * len(self.labels), dtype=float)
        self.ensure_one = ensure_one
        self.task = task
        self.params = dict(params or {})

    # --- to implement ------------------------------------------------------------------------
    @abstractmethod
    def predict_proba_clean(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities (n x labels) for texts that are already preprocessed."""

    @abstractmethod
    def save_weights(self, model_dir: Path) -> None:
        """Write the kind's own files (weights, tokenizer, vectoriser) into `model_dir`."""

    # --- shared -----------------------------------------------------------------------------
    def preprocess(self, texts: Sequence[str]) -> list[str]:
        return preprocess_texts(texts, self.preprocess_config)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities for raw texts (preprocessed exactly as in training)."""
        return self.predict_proba_clean(self.preprocess(texts))

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """Multilabel: 0/1 matrix via the tuned thresholds. Single label: one-hot of the argmax."""
        if self.multilabel:
            return apply_thresholds(proba, self.thresholds, self.ensure_one)
        return np.eye(len(self.labels), dtype=np.int64)[np.asarray(proba).argmax(axis=1)]

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return self.decide(self.predict_proba(texts))

    def tune(self, tune_df: pd.DataFrame) -> np.ndarray:
        """Tune per-class thresholds on a labelled frame (multilabel only); return its probabilities."""
        proba = self.predict_proba(tune_df["text"].tolist())
        if self.multilabel:  # a mixed frame (models.thresholds.mixed_frame) weighs its rows
            weights = tune_df[WEIGHT_COLUMN].to_numpy() if WEIGHT_COLUMN in tune_df.columns else None
            self.thresholds = tune_thresholds(tune_df[self.labels].to_numpy(), proba, weights=weights)
        return proba

    def card(self) -> dict:
        return {
            "kind": self.kind, "task": self.task, "labels": self.labels, "multilabel": self.multilabel,
            "thresholds": dict(zip(self.labels, map(float, self.thresholds))),
            "ensure_one": self.ensure_one, "preprocess": self.preprocess_config.to_dict(),
            "params": self.params,
        }

    def save(self, model_dir: str | Path, extra: dict | None = None) -> Path:
        """Write a self-contained model folder: the kind's files, the ASR dictionaries it preprocesses with
        (copied into `asr/`, named relative to the folder; the predictor reads them from there from now on),
        the card, and a manifest of every file's hash, which the service and the batch job verify."""
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        self.save_weights(model_dir)
        card = {**self.card(), **(extra or {})}
        card["preprocess"]["asr_dictionary_paths"] = bundle_dictionaries(
            self.preprocess_config.asr_dictionary_paths, model_dir)
        write_json_atomic(model_dir / MODEL_CARD, card)
        write_manifest(model_dir)
        resolve_dictionaries(self, model_dir, card["preprocess"]["asr_dictionary_paths"])
        return model_dir

    @staticmethod
    def card_kwargs(card: dict) -> dict:
        """Constructor arguments stored in a card (for `load`)."""
        return dict(labels=card["labels"], multilabel=card["multilabel"],
                    preprocess=PreprocessConfig.from_dict(card.get("preprocess")),
                    thresholds=[card["thresholds"][l] for l in card["labels"]] if card.get("thresholds") else None,
                    ensure_one=card.get("ensure_one", True), task=card.get("task", ""),
                    params=card.get("params"))


def bundle_dictionaries(paths: Sequence[str | Path], model_dir: Path) -> list[str]:
    """Copy ASR dictionaries into `model_dir/asr/` (unless already inside it); their names relative to it."""
    root = Path(model_dir).resolve()
    names = []
    for k, path in enumerate(map(Path, paths)):
        if path.resolve().is_relative_to(root):
            names.append(path.resolve().relative_to(root).as_posix())
            continue
        target = root / ASR_DIR / f"{k}-{path.name}"
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(path, target)
        names.append(target.relative_to(root).as_posix())
    return names


def resolve_dictionaries(predictor: Predictor, model_dir: str | Path,
                         names: Sequence[str] | None = None) -> Predictor:
    """Read the card's relative ASR dictionary names (or `names`) from the model folder, not the working
    directory (names from older cards that are not in the folder are kept as they are)."""
    config = predictor.preprocess_config
    names = config.asr_dictionary_paths if names is None else names
    resolved = tuple(str(Path(model_dir) / p) if not Path(p).is_absolute() and (Path(model_dir) / p).is_file()
                     else p for p in names)
    if resolved != tuple(config.asr_dictionary_paths):
        predictor.preprocess_config = dataclasses.replace(config, asr_dictionary_paths=resolved)
    return predictor
