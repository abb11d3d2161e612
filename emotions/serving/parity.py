"""Parity of an ONNX export with the torch model: which texts to compare on, and the comparison itself."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..evaluation.metrics import weighted_f1
from .onnx_predictor import ModelPaths, OnnxPredictor

log = logging.getLogger(__name__)

PARITY_FRAMES = ("data/holdout.csv", "data/tune.csv", "data/valid.csv", "data/test.csv")
# used when the run has no data frame (a bare model folder): a few mixed texts
FALLBACK_TEXTS = [
    "я так рад тебя видеть", "это просто ужасно, я в ярости", "мне страшно идти туда одной",
    "какая мерзость", "ну и ладно", "вот это да не ожидал", "мне очень грустно сегодня",
    "спасибо большое за помощь", "I am so happy today", "this is disgusting",
    "не знаю что сказать", "ого 😂😂", "почему ты так со мной поступаешь", "ладно до завтра",
    "это лучший день в моей жизни", "я боюсь что ничего не получится",
]


def parity_frame(paths: ModelPaths, frame: str | Path | None, n: int, seed: int = 0) -> tuple[pd.DataFrame, str]:
    """The frame parity is measured on: `frame`, else the run's holdout/tune/test CSV, else built-in texts."""
    candidates = [Path(frame)] if frame else ([paths.run_dir / f for f in PARITY_FRAMES] if paths.run_dir else [])
    for path in candidates:
        if path.is_file():
            df = pd.read_csv(path, keep_default_na=False)
            if "text" not in df.columns:
                raise ValueError(f"parity frame {path} has no 'text' column")
            if n and len(df) > n:
                df = df.sample(n=n, random_state=seed).sort_index()
            return df.reset_index(drop=True), str(path)
        if frame:
            raise FileNotFoundError(f"parity frame {path} not found")
    log.warning("no holdout/tune frame found for %s; measuring parity on %d built-in texts",
                paths.model_dir, len(FALLBACK_TEXTS))
    return pd.DataFrame({"text": FALLBACK_TEXTS}), "built-in texts"


def compare(torch_pred, onnx_preds: dict[str, OnnxPredictor], df: pd.DataFrame) -> dict:
    """Probabilities and decisions of each ONNX predictor vs the torch predictor on `df`."""
    texts = df["text"].astype(str).tolist()
    clean = torch_pred.preprocess(texts)
    t0 = time.perf_counter()
    p_ref = torch_pred.predict_proba_clean(clean)
    out: dict = {"n_texts": len(texts), "torch_seconds": round(time.perf_counter() - t0, 3)}
    d_ref = torch_pred.decide(p_ref)
    labels = list(torch_pred.labels)
    y_true = df[labels].to_numpy().astype(int) if all(c in df.columns for c in labels) else None
    if y_true is not None and not np.isin(y_true, (0, 1)).all():
        y_true = None
    if y_true is not None and y_true.sum() == 0:        # e.g. a test file with empty answers
        y_true = None
    if y_true is not None:
        out["weighted_f1_vs_labels"] = {"torch": weighted_f1(y_true, d_ref)}
    ref_ids = torch_pred.tokenizer(clean, truncation=True, max_length=torch_pred.max_length)["input_ids"]
    for name, pred in onnx_preds.items():
        t0 = time.perf_counter()
        p = pred.predict_proba_clean(clean)
        secs = time.perf_counter() - t0
        d = pred.decide(p)
        diff = np.abs(p - p_ref)
        out[name] = {
            "max_abs_diff": float(diff.max()) if diff.size else 0.0,
            "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
            "decision_agreement": float((d == d_ref).all(axis=1).mean()) if len(d) else 1.0,
            "label_agreement": float((d == d_ref).mean()) if d.size else 1.0,
            "weighted_f1_vs_torch": weighted_f1(d_ref, d) if len(d) else 1.0,
            "seconds": round(secs, 3),
        }
        if y_true is not None:
            out["weighted_f1_vs_labels"][name] = weighted_f1(y_true, d)
        if name == "onnx":
            same = [list(a) == list(b) for a, b in zip(ref_ids, pred.encode(clean))]
            out["token_ids_match"] = float(np.mean(same)) if same else 1.0
    return out
