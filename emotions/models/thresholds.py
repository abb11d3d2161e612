"""Where a trained model's decision thresholds are tuned: the clean tune split, its ASR-style rendering, or the
tune splits of both test populations mixed.

`train.threshold_split: tune_asr` re-tunes the thresholds on `render_asr(tune)` (the same rendering the
evaluate stage scores as `tune_asr`) after training; `tune+utterances` on tune plus tune_utterances (the written
spoken-style rows, emotions.data.utterances), weighted so the utterances count for `utterance_share` of the total,
as in the test file. Early stopping still uses the clean tune split. The holdouts are never used for this choice.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ..augment.asr_render import ASR_RENDER_SEED, render_asr
from ..data.utterances import UTTERANCE_SHARE
from ..evaluation.metrics import WEIGHT_COLUMN
from ..core.io import write_json_atomic
from .base import MODEL_CARD, Predictor, read_model_card

log = logging.getLogger(__name__)

ThresholdSplit = Literal["tune", "tune_asr", "tune+utterances"]
THRESHOLD_SPLITS: tuple[str, ...] = ("tune", "tune_asr", "tune+utterances")


def mixed_frame(tune_df: pd.DataFrame, utterances: pd.DataFrame | None, share: float = UTTERANCE_SHARE
                ) -> pd.DataFrame:
    """tune + tune_utterances with WEIGHT_COLUMN so the utterance rows weigh `share` of the total (mean weight 1)."""
    if utterances is None or not len(utterances):
        raise ValueError("threshold_split 'tune+utterances' needs the tune_utterances split "
                         "(extend.splits.utterances: true, cryptonite only)")
    if not 0 < share < 1:
        raise ValueError(f"utterance_share must be between 0 and 1, got {share}")
    n, m = len(tune_df), len(utterances)
    cols = ["text", *[c for c in tune_df.columns if c != "text" and c in utterances.columns]]
    weights = np.r_[np.full(n, (1 - share) * (n + m) / n), np.full(m, share * (n + m) / m)]
    return pd.concat([tune_df[cols], utterances[cols]], ignore_index=True).assign(**{WEIGHT_COLUMN: weights})


def threshold_frame(tune_df: pd.DataFrame, split: str, utterances: pd.DataFrame | None = None,
                    share: float = UTTERANCE_SHARE) -> pd.DataFrame:
    """The labelled rows thresholds are tuned on for `split` (one of THRESHOLD_SPLITS)."""
    if split not in THRESHOLD_SPLITS:
        raise ValueError(f"threshold_split must be one of {list(THRESHOLD_SPLITS)}, got {split!r}")
    if split == "tune+utterances":
        return mixed_frame(tune_df, utterances, share)
    return tune_df if split == "tune" else render_asr(tune_df, seed=ASR_RENDER_SEED)


def retune_thresholds(predictor: Predictor, tune_df: pd.DataFrame, split: str,
                      model_dir: str | Path | None = None, utterances: pd.DataFrame | None = None,
                      share: float = UTTERANCE_SHARE) -> Predictor:
    """Tune `predictor`'s thresholds on `split` unless it is the clean tune split the kinds already used;
    with `model_dir`, its model card gets the new thresholds and `threshold_split` (weights untouched)."""
    frame = threshold_frame(tune_df, split, utterances, share)
    if split != "tune" and predictor.multilabel:
        before = predictor.thresholds.copy()
        predictor.tune(frame)
        log.info("thresholds re-tuned on %s: %s -> %s", split, before.round(2).tolist(),
                 predictor.thresholds.round(2).tolist())
    if model_dir is not None:
        card = read_model_card(model_dir)
        card.update(thresholds=predictor.card()["thresholds"], threshold_split=split,
                    **({"utterance_share": share} if split == "tune+utterances" else {}))
        write_json_atomic(Path(model_dir) / MODEL_CARD, card)
    return predictor
