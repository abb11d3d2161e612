"""The steps the stage functions (`emotions.pipeline.stages`) are made of: frames + parameters in, frames /
model / metrics out; no files read or written here besides the model folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..augment.asr_render import with_asr_splits  # noqa: F401 - the evaluate stage's ASR-style splits
from ..core.io import write_json_atomic
from ..core.options import check
from ..core.paths import CACHE_DIR
from ..data.labels import get_task
from ..data.label_issues import clean_training_rows
from ..data.prepare import build_splits
from ..data.utterances import UTTERANCE_SHARE
from ..evaluation.report import evaluate_model, mixed_holdout
from ..models import MODEL_CARD, Predictor, read_model_card, train_model
from ..models.thresholds import retune_thresholds
from .self_training import SelfTrainingOptions, self_train
from .self_training import summary_numbers as self_training_summary  # noqa: F401 - 04_train's summary numbers

# Texts a model may see at training time besides its labelled rows: the unlabelled test file and the utterance
# tune split (used for thresholds like tune). Holdout texts never are (the holdouts are the numbers used for no
# choice, vocabulary included).
VOCAB_SPLITS = ("test", "tune_utterances")
# The parts no extension row may copy (leak control), and the labelled parts the evaluate stage scores.
PROTECTED_SPLITS = ("tune", "holdout", "test", "tune_utterances", "holdout_utterances")
EVALUATED_SPLITS = ("tune", "holdout", "tune_utterances", "holdout_utterances")


def split_data(task: str, data_dir: str | Path, seed: int, splits: Mapping | None = None,
               expected_test_rows: int | str | None = "auto") -> tuple[dict[str, pd.DataFrame], list[str]]:
    """02_extend, first half: the task's train / tune / holdout (/ test) frames and notes on how they were made."""
    options = dict(splits or {})
    if task == "cryptonite":
        options["expected_test_rows"] = expected_test_rows
    return build_splits(task, data_dir, seed=seed, **options)


def enabled_sources(sources: Mapping) -> dict:
    """The extension sources switched on (a dict with `enabled`, or a bare truthy value)."""
    return {k: v for k, v in (sources or {}).items() if (v.get("enabled", True) if isinstance(v, dict) else v)}


def extend(parts: dict[str, pd.DataFrame], task: str, data_dir: str | Path, sources: Mapping, seed: int,
           leak: Mapping | None = None) -> tuple[dict[str, pd.DataFrame], dict]:
    """02_extend, second half: add the enabled extension sources to train, leak-controlled against tune,
    holdout and test. Returns new parts (the input dict is not changed) and the extension report."""
    parts = dict(parts)
    if not enabled_sources(sources):
        return parts, {"sources": {}, "note": "no extension source enabled"}
    from ..data.extend import extend_training_set

    protect = {k: parts[k]["text"].tolist() for k in PROTECTED_SPLITS if k in parts}
    parts["train"], report = extend_training_set(parts["train"], data_root=Path(data_dir), sources=dict(sources),
                                                 protect=protect, labels=list(get_task(task).labels), seed=seed,
                                                 leak=dict(leak) if leak is not None else None)
    return parts, report


def augment(train: pd.DataFrame, task: str, enabled: bool, methods: Mapping, budget: Mapping, seed: int,
            cache_dir: Path = CACHE_DIR) -> tuple[pd.DataFrame, dict]:
    """03_augment: augmented training rows (or the rows unchanged when disabled) and the report."""
    if not enabled:
        return train, {"enabled": False}
    from ..augment import augment_training_set

    return augment_training_set(train, labels=list(get_task(task).labels),
                                params={"methods": dict(methods or {}), "budget": budget}, seed=seed,
                                cache_dir=cache_dir)


def vocab_texts(parts: Mapping[str, pd.DataFrame]) -> list[str]:
    """Texts whose word pieces a vocabulary-pruned encoder keeps besides train and tune: test only."""
    return [t for name in VOCAB_SPLITS if name in parts for t in parts[name]["text"]]


def clean_labels(train_df: pd.DataFrame, task: str, options: Mapping | None, seed: int, preprocess: Mapping,
                 model: str) -> tuple[pd.DataFrame, pd.DataFrame | None, dict]:
    """04_train, first: likely label errors (cleanlab, out-of-fold) removed or down-weighted as `options` say;
    (rows to train on, the report or None when off, summary numbers)."""
    spec = get_task(task)
    return clean_training_rows(train_df, spec.labels, dict(options or {}), multilabel=spec.multilabel, seed=seed,
                               preprocess=preprocess, model_kind=model)


def train(model: str, train_df: pd.DataFrame, tune_df: pd.DataFrame, task: str, options: Mapping,
          preprocess: Mapping, seed: int, out_dir: str | Path, vocab: list[str] | None = None,
          threshold_split: str = "tune", unlabelled: Sequence[str] | None = None,
          self_training: Mapping | None = None, ensemble_size: int = 1,
          tune_utterances: pd.DataFrame | None = None, utterance_share: float = UTTERANCE_SHARE) -> Predictor:
    """04_train: train model kind `model` with its options; thresholds on `threshold_split` (tune, its
    ASR-style rendering tune_asr, or tune+utterances: tune and `tune_utterances` weighted `utterance_share`);
    saved to `out_dir`. `ensemble_size` > 1: that many models (seeds seed,
    seed+1, ...) whose probabilities are averaged, thresholds tuned on the average. With `self_training`
    rounds > 0 (SelfTrainingOptions), fresh models are retrained on train + pseudo-labelled `unlabelled` texts
    (the test split, never holdout); the per-round report is `predictor.self_training` (None when off) and the
    model card's `self_training`."""
    params = {**dict(options or {}), "preprocess": dict(preprocess or {}), "seed": seed}
    if model == "transformer":
        params["vocab_texts"] = list(vocab or [])
    if int(ensemble_size) > 1:
        params = {"kind": model, "size": int(ensemble_size), "options": params}
        model = "ensemble"
    spec = get_task(task)

    def fit(frame: pd.DataFrame) -> Predictor:
        predictor = train_model(model, frame, tune_df, spec, params, Path(out_dir))
        return retune_thresholds(predictor, tune_df, threshold_split, out_dir, tune_utterances, utterance_share)

    st = check(SelfTrainingOptions, dict(self_training or {}), "train.self_training")
    if not st.rounds:
        predictor = fit(train_df)
        predictor.self_training = None
        return predictor
    predictor, report = self_train(fit, train_df, list(unlabelled or []), spec.labels, rounds=st.rounds,
                                   confidence=st.confidence, max_share=st.max_share)
    predictor.self_training = report
    card = read_model_card(out_dir)
    write_json_atomic(Path(out_dir) / MODEL_CARD, {**card, "self_training": report})
    return predictor


def unlabelled_texts(parts: Mapping[str, pd.DataFrame]) -> list[str]:
    """Texts self-training may pseudo-label: the unlabelled test split only (never tune or holdout)."""
    return [str(t) for t in parts["test"]["text"]] if "test" in parts else []


def evaluate(predictor: Predictor, frames: Mapping[str, pd.DataFrame], utterance_share: float = UTTERANCE_SHARE
             ) -> tuple[dict, dict[str, np.ndarray]]:
    """05_evaluate: metrics per labelled split with the model's own thresholds, and the probabilities; with both
    holdouts, `holdout_mixed` too: the whole-test estimate (the two populations in the test's proportions,
    utterances weighted `utterance_share`, the config's train.utterance_share)."""
    metrics, proba = evaluate_model(predictor, frames)
    if "holdout" in frames and "holdout_utterances" in frames and predictor.multilabel:
        metrics["holdout_mixed"] = mixed_holdout(predictor, frames, proba, utterance_share)
    return metrics, proba


def headline_metrics(multilabel: bool) -> list[str]:
    """The scores a stage summary and the run summary show first."""
    return ["weighted_f1", "macro_f1", "micro_f1", "mean_roc_auc"] if multilabel else \
        ["accuracy", "macro_f1", "weighted_f1", "macro_roc_auc"]
