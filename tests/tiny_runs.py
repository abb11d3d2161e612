"""Test support: a run folder holding an untrained tiny transformer (no download, a second to build)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

import torch

from emotions.data.labels import get_task
from emotions.models.transformer import (TransformerPredictor, build_model, load_encoder, load_tokenizer,
                                         merge_params)
from emotions.models.nn.tiny import build_tiny_encoder
from emotions.data.preprocess import PreprocessConfig


def make_tiny_transformer(run: Path, texts: Sequence[str], *, multilabel: bool = True, seed: int = 0,
                          thresholds: Sequence[float] | None = None) -> TransformerPredictor:
    """Save an untrained tiny transformer in `run`/model (probabilities spread by a scaled head)."""
    spec = get_task("cryptonite" if multilabel else "emotions-en")
    enc_dir = build_tiny_encoder(list(texts), run / "tmp-encoder", vocab_size=300, hidden_size=32, num_layers=1,
                                 num_heads=2, intermediate_size=64, seed=seed)
    tok, enc = load_tokenizer(enc_dir), load_encoder(enc_dir)
    shutil.rmtree(enc_dir)
    torch.manual_seed(seed)
    params = merge_params({"head_layers": 0, "max_length": 32})
    model, head_cfg = build_model(enc, len(spec.labels), params)
    with torch.no_grad():                      # an untrained head sits at 0.5: spread the probabilities out
        model.head.net[-1].weight.mul_(25.0)
    pred = TransformerPredictor(model, tok, 32, head_cfg, device="cpu", labels=list(spec.labels),
                                multilabel=multilabel, preprocess=PreprocessConfig(), task=spec.name, params=params,
                                thresholds=thresholds)
    pred.save(run / "model")
    return pred
