"""Where a trained model's decision thresholds are tuned: the clean tune split, or its ASR-style rendering.

`train.threshold_split: tune_asr` re-tunes the thresholds on `render_asr(tune)` (the same rendering the
evaluate stage scores as `tune_asr`) after training; early stopping still uses the clean tune split. The
holdout is never used for this choice.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import pandas as pd

from ..augment.asr_render import ASR_RENDER_SEED, render_asr
from ..core.io import write_json_atomic
from .base import MODEL_CARD, Predictor, read_model_card

log = logging.getLogger(__name__)

ThresholdSplit = Literal["tune", "tune_asr"]
THRESHOLD_SPLITS: tuple[str, ...] = ("tune", "tune_asr")


def threshold_frame(tune_df: pd.DataFrame, split: str) -> pd.DataFrame:
    """The labelled rows thresholds are tuned on for `split` ('tune' or 'tune_asr')."""
    if split not in THRESHOLD_SPLITS:
        raise ValueError(f"threshold_split must be one of {list(THRESHOLD_SPLITS)}, got {split!r}")
    return tune_df if split == "tune" else render_asr(tune_df, seed=ASR_RENDER_SEED)


def retune_thresholds(predictor: Predictor, tune_df: pd.DataFrame, split: str,
                      model_dir: str | Path | None = None) -> Predictor:
    """Tune `predictor`'s thresholds on `split` unless it is the clean tune split the kinds already used;
    with `model_dir`, its model card gets the new thresholds and `threshold_split` (weights untouched)."""
    frame = threshold_frame(tune_df, split)
    if split != "tune" and predictor.multilabel:
        before = predictor.thresholds.copy()
        predictor.tune(frame)
        log.info("thresholds re-tuned on %s: %s -> %s", split, before.round(2).tolist(),
                 predictor.thresholds.round(2).tolist())
    if model_dir is not None:
        card = read_model_card(model_dir)
        card.update(thresholds=predictor.card()["thresholds"], threshold_split=split)
        write_json_atomic(Path(model_dir) / MODEL_CARD, card)
    return predictor
