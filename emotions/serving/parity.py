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
CALIBRATION_FRAMES = ("data/train.csv", "data/train_aug.csv")       # training texts: never the parity frame
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


def calibration_texts(paths: ModelPaths, frame: str | Path | None, n: int, seed: int = 0) -> tuple[list[str], str]:
    """Raw texts that calibrate static int8: `frame`, else the run's training CSV, else the built-in texts."""
    candidates = [Path(frame)] if frame else ([paths.run_dir / f for f in CALIBRATION_FRAMES] if paths.run_dir else [])
    for path in candidates:
        if path.is_file():
            df = pd.read_csv(path, keep_default_na=False, dtype=str)
            if "text" not in df.columns:
                raise ValueError(f"calibration frame {path} has no 'text' column")
            texts = df["text"][df["text"].str.strip() != ""]
            if n and len(texts) > n:
                texts = texts.sample(n=n, random_state=seed).sort_index()
            return texts.tolist(), str(path)
        if frame:
            raise FileNotFoundError(f"calibration frame {path} not found")
    log.warning("no training frame found for %s; calibrating int8 on %d built-in texts (pass --calibration CSV "
                "for better int8 accuracy)", paths.model_dir, len(FALLBACK_TEXTS))
    return list(FALLBACK_TEXTS), "built-in texts"


def batch_invariance(pred: OnnxPredictor, clean: list[str], batched: np.ndarray) -> dict:
    """How far each text's answer moves with its batch-mates: alone vs in the length-sorted batches of
    `batched` (the probabilities already computed for `clean`)."""
    alone = np.vstack([pred.predict_proba_clean([t]) for t in clean]) if clean else batched[:0]
    changed = (pred.decide(alone) != pred.decide(batched[:len(clean)])).any(axis=1)
    return {"n_texts": len(clean), "max_abs_diff_alone_vs_batched": float(np.abs(alone - batched[:len(clean)]).max())
            if len(clean) else 0.0, "texts_with_other_labels": int(changed.sum())}


def compare(torch_pred, onnx_preds: dict[str, OnnxPredictor], df: pd.DataFrame, n_alone: int = 300) -> dict:
    """Probabilities and decisions of each ONNX predictor vs the torch predictor on `df`, and how much
    each answer depends on its batch (`batch_invariance` on the first `n_alone` texts)."""
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
            "texts_per_s": round(len(clean) / max(secs, 1e-9), 1),
            "batch_invariance": batch_invariance(pred, clean[:n_alone], p),
        }
        if y_true is not None:
            out["weighted_f1_vs_labels"][name] = weighted_f1(y_true, d)
        if name == "onnx":
            same = [list(a) == list(b) for a, b in zip(ref_ids, pred.encode(clean))]
            out["token_ids_match"] = float(np.mean(same)) if same else 1.0
    return out
