"""Auxiliary fine-label head for the transformer (option `aux_weight` > 0): richer supervision, training only.

Rows that carry the 28 fine-grained GoEmotions labels (`aux_*` columns, emotions.data.fine_labels; the English
goemotions_en extension rows) train a second linear head (hidden -> 28) on the same pooled vector, next to the
task head. The loss is the task loss + aux_weight x BCE on the aux labels, masked where a row has none
(losses.AuxiliaryLoss). The aux head gets the head learning rate (optim.param_groups), is part of the best-epoch
snapshot, and is removed after training, so the saved model, its ONNX export and the service are unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from torch import nn

from ..data.fine_labels import AUX_PREFIX, aux_columns, aux_matrix
from .nn.heads import EmotionClassifier, encoder_hidden_size
from .nn.losses import AuxiliaryLoss

log = logging.getLogger(__name__)


@dataclass
class AuxSetup:
    """What the auxiliary head trains on: its labels, the rows that have them, the loss weight."""

    labels: list[str]
    y: np.ndarray          # n x len(labels), float32, NaN where a row has no aux labels
    weight: float

    @property
    def rows(self) -> int:
        return int((~np.isnan(self.y)).any(axis=1).sum())

    def summary(self) -> dict:
        """For history.json and the model card's training section."""
        return {"labels": self.labels, "rows_with_aux_labels": self.rows, "aux_weight": self.weight,
                "removed_after_training": True}


def aux_setup(train_df: pd.DataFrame, weight: float) -> AuxSetup | None:
    """The aux targets of `train_df` when `weight` > 0 and some row has aux labels; else None (logged)."""
    if weight <= 0:
        return None
    cols = aux_columns(train_df)
    y = aux_matrix(train_df, cols)
    if not cols or not (~np.isnan(y)).any():
        log.info("aux_weight %.3g: no training row has aux labels (%s* columns); training without the aux head",
                 weight, AUX_PREFIX)
        return None
    setup = AuxSetup([c[len(AUX_PREFIX):] for c in cols], y, float(weight))
    log.info("auxiliary head: %d labels, %d of %d training rows labelled, weight %.3g", len(cols), setup.rows,
             len(y), weight)
    return setup


def attach(model: EmotionClassifier, loss_fn: nn.Module, y_main: np.ndarray, setup: AuxSetup | None,
           dropout: float = 0.1) -> tuple[nn.Module, np.ndarray]:
    """Add the aux head to `model`; return (loss over [main | aux] columns, training targets [main | aux]).
    Without a setup: (loss_fn, y_main) unchanged."""
    if setup is None:
        return loss_fn, y_main
    model.aux_head = nn.Sequential(nn.Dropout(dropout), nn.Linear(encoder_hidden_size(model.encoder),
                                                                   len(setup.labels)))
    return AuxiliaryLoss(loss_fn, y_main.shape[1], setup.weight), np.hstack([y_main, setup.y]).astype(np.float32)


def detach(model: nn.Module) -> None:
    """Remove the aux head (the saved model holds only encoder + task head)."""
    if getattr(model, "aux_head", None) is not None:
        model.aux_head = None
