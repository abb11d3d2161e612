"""Losses: BCE with logits (multilabel) / cross-entropy (single label), class balancing, focal option."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

BALANCE_MODES = ("off", "inverse", "sqrt")


def class_weights(y: np.ndarray, mode: str | Sequence[float] | None, multilabel: bool,
                  max_weight: float | None = None) -> np.ndarray | None:
    """Per-class weights from a 0/1 label matrix (n x k).

    Multilabel (BCE `pos_weight`): inverse = neg/pos per class, sqrt = sqrt(neg/pos).
    Single label (CE `weight`): inverse = n / (k * count_c), sqrt = its square root.
    A list gives the weights directly; "off"/None gives None. Classes with no examples get 1.
    """
    if mode is None or (isinstance(mode, str) and mode == "off"):
        return None
    y = np.asarray(y, dtype=np.float64)
    k = y.shape[1]
    if not isinstance(mode, str):
        w = np.asarray(list(mode), dtype=np.float64)
        if w.shape != (k,):
            raise ValueError(f"pos_weight list must have {k} values (one per label), got {len(w)}")
        if (w <= 0).any():
            raise ValueError("pos_weight values must be positive")
        return w
    if mode not in BALANCE_MODES:
        raise ValueError(f"pos_weight must be one of {list(BALANCE_MODES)} or a list of {k} numbers, got {mode!r}")
    pos = y.sum(axis=0)
    if multilabel:
        ratio = np.where(pos > 0, (len(y) - pos) / np.maximum(pos, 1), 1.0)
    else:
        ratio = np.where(pos > 0, len(y) / (k * np.maximum(pos, 1)), 1.0)
    w = np.sqrt(ratio) if mode == "sqrt" else ratio
    if max_weight is not None:
        w = np.minimum(w, max_weight)
    return w


class MultilabelLoss(nn.Module):
    """Mean BCE with logits with optional `pos_weight`; focal modulation (1 - p_t)^gamma if gamma > 0."""

    def __init__(self, pos_weight: torch.Tensor | np.ndarray | None = None, gamma: float = 0.0):
        super().__init__()
        pw = None if pos_weight is None else torch.as_tensor(pos_weight, dtype=torch.float32)
        self.register_buffer("pos_weight", pw)
        self.gamma = float(gamma)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        target = target.float()
        loss = F.binary_cross_entropy_with_logits(logits, target, pos_weight=self.pos_weight, reduction="none")
        if self.gamma > 0:
            p = torch.sigmoid(logits)
            p_t = p * target + (1 - p) * (1 - target)
            loss = (1 - p_t).pow(self.gamma) * loss
        return loss.mean()


class SinglelabelLoss(nn.Module):
    """Cross-entropy over classes (targets: one-hot rows or class ids), optional class weights and focal gamma.

    With weights, the mean is weighted like `F.cross_entropy` (sum w_t * l / sum w_t).
    """

    def __init__(self, weight: torch.Tensor | np.ndarray | None = None, gamma: float = 0.0):
        super().__init__()
        w = None if weight is None else torch.as_tensor(weight, dtype=torch.float32)
        self.register_buffer("weight", w)
        self.gamma = float(gamma)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        idx = target.argmax(dim=1) if target.dim() == 2 else target.long()
        logp = F.log_softmax(logits, dim=1).gather(1, idx[:, None]).squeeze(1)
        loss = -logp
        if self.gamma > 0:
            loss = (1 - logp.exp()).pow(self.gamma) * loss
        if self.weight is None:
            return loss.mean()
        w = self.weight[idx]
        return (w * loss).sum() / w.sum()


class AuxiliaryLoss(nn.Module):
    """`main` loss on the first `n_main` columns + `weight` x masked BCE on the columns after them.

    Logits and targets are [main | aux]; aux targets are 0/1 or NaN (missing: masked out; the BCE is the mean
    over the given aux entries of the batch, 0 when there are none). Logits with only the `n_main` columns
    (a model in eval mode, e.g. the tune evaluation) give just the main loss, whatever the target's width.
    """

    def __init__(self, main: nn.Module, n_main: int, weight: float):
        super().__init__()
        self.main = main
        self.n_main = int(n_main)
        self.weight = float(weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        n = self.n_main
        loss = self.main(logits[:, :n], target[:, :n])
        if logits.shape[1] == n or self.weight == 0:
            return loss
        aux_logits, aux_target = logits[:, n:].float(), target[:, n:].float()
        given = ~torch.isnan(aux_target)
        bce = F.binary_cross_entropy_with_logits(aux_logits, torch.where(given, aux_target, 0.0), reduction="none")
        aux = (bce * given).sum() / given.sum().clamp(min=1)
        return loss + self.weight * aux


def build_loss(multilabel: bool, weights: np.ndarray | None = None, gamma: float = 0.0) -> nn.Module:
    return MultilabelLoss(weights, gamma) if multilabel else SinglelabelLoss(weights, gamma)
