"""Ablation of extension sources and augmentation methods: same model, each option on and off.

valid.csv is split (stratified, seeded) into train 50% / tune 25% / holdout 25% (the competition's
train.csv is not available here). Every configuration trains the model on the train part plus its
extension/augmentation, tunes per-class thresholds on tune, and is scored (weighted F1) on the
disjoint holdout. Protected texts for leak control: tune + holdout + test. Differences to the first
configuration come with a 95% paired-bootstrap interval over the holdout rows (500 resamples).
Used by notebooks/08_ablation.ipynb and benchmarks/ablation.py.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from ..augment import augment_training_set
from ..data.readers import load_cryptonite
from ..data.extend import extend_training_set
from ..data.labels import CRYPTONITE_LABELS, get_task
from ..evaluation.metrics import weighted_f1
from ..models import train_model
from ..core.paths import CACHE_DIR
from ..data.splits import split_frame

L = CRYPTONITE_LABELS
RARE = ["fear", "disgust", "sadness"]


def aug(*methods: str, **extra) -> dict:
    return {"budget": "auto", "factor": 2.0, **extra,
            "methods": {m: {"enabled": m in methods} for m in ["backtranslation", "synonyms", "asr_noise"]}}


# name -> (sources, leak options, augmentation params)
CONFIGS: dict[str, tuple[dict, dict | None, dict | None]] = {
    "train only": ({}, None, None),
    "+izard": ({"izard": {}}, None, None),
    "+izard (NO leak control)": ({"izard": {}}, {"enabled": False}, None),
    "+izard fear/disgust/sadness rows": ({"izard": {"select_labels": RARE}}, None, None),
    "+cedr": ({"cedr": {}}, None, None),
    "+izard +cedr": ({"izard": {}, "cedr": {}}, None, None),
    "+aug backtranslation": ({}, None, aug("backtranslation")),
    "+aug synonyms": ({}, None, aug("synonyms")),
    "+aug asr_noise": ({}, None, aug("asr_noise")),
    "+aug synonyms+asr_noise": ({}, None, aug("synonyms", "asr_noise")),
    "+izard +aug asr_noise": ({"izard": {}}, None, aug("asr_noise")),
}


def counts(df) -> dict[str, int]:
    return {l: int(df[l].sum()) for l in L}


def run_config(name: str, parts: dict, protect: dict, data_root: Path, seed: int, cache_dir: Path,
               model: str = "baseline", model_params: dict | None = None) -> tuple[dict, np.ndarray]:
    """Train `model` with configuration `name`; score on holdout (thresholds tuned on tune)."""
    sources, leak, aug_params = CONFIGS[name]
    t0 = time.perf_counter()
    train = parts["train"]
    ext_report, aug_report = None, None
    if sources:
        train, ext_report = extend_training_set(train, data_root=data_root, sources=sources, protect=protect,
                                                labels=L, seed=seed, leak=leak)
    if aug_params:
        train, aug_report = augment_training_set(train, labels=L, params=aug_params, seed=seed, cache_dir=cache_dir)
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        model = train_model(model, train, parts["tune"], get_task("cryptonite"), dict(model_params or {}), Path(tmp))
    y_hold = parts["holdout"][L].to_numpy()
    y_tune = parts["tune"][L].to_numpy()
    pred_hold = model.predict(parts["holdout"]["text"].tolist())
    row = {
        "config": name,
        "rows_train": len(train),
        "holdout_weighted_f1": round(weighted_f1(y_hold, pred_hold), 4),
        "tune_weighted_f1": round(weighted_f1(y_tune, model.predict(parts["tune"]["text"].tolist())), 4),
        "label_counts_after": counts(train),
        "leaked_rows_removed": {k: v["dropped_near_copies"] for k, v in (ext_report or {}).get("sources", {}).items()},
        "exact_duplicates_removed": {k: v["dropped_exact_duplicates"]
                                     for k, v in (ext_report or {}).get("sources", {}).items()},
        "augmented_rows": {k: v["rows_added"] for k, v in (aug_report or {}).get("methods", {}).items()},
        "augment_status": {k: v["status"] for k, v in (aug_report or {}).get("methods", {}).items()
                           if v["status"] != "ok"},
        "seconds_data": round(t1 - t0, 1),
        "seconds_total": round(time.perf_counter() - t0, 1),
    }
    return row, pred_hold


def paired_bootstrap(y: np.ndarray, pred: np.ndarray, ref: np.ndarray, n: int = 500, seed: int = 0
                     ) -> tuple[float, float, float]:
    """Holdout weighted-F1 difference (pred - ref) and its 95% paired-bootstrap interval."""
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n):
        i = rng.integers(0, len(y), len(y))
        diffs.append(weighted_f1(y[i], pred[i]) - weighted_f1(y[i], ref[i]))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return weighted_f1(y, pred) - weighted_f1(y, ref), float(lo), float(hi)


def markdown(rows: list[dict], before: dict[str, int]) -> str:
    short = {"anger": "ang", "disgust": "dis", "fear": "fear", "joy": "joy", "sadness": "sad",
             "surprise": "sur", "neutral": "neu"}
    head = ("| config | train rows | holdout wF1 | Δ vs first [95% CI] | tune wF1 | rows per class after ("
            + "/".join(short[l] for l in L) + ") | leaked rows removed | augmented rows | s |")
    lines = ["rows per class before (train part): " + ", ".join(f"{l} {n}" for l, n in before.items()), "",
             head, "|" + "---|" * 9]
    for r in rows:
        leaked = ", ".join(f"{k} {v}" for k, v in r["leaked_rows_removed"].items()) or "-"
        augmented = ", ".join(f"{k} {v}" for k, v in r["augmented_rows"].items()) or "-"
        lines.append(f"| {r['config']} | {r['rows_train']} | {r['holdout_weighted_f1']:.4f} | "
                     f"{r.get('delta_text', '-')} | {r['tune_weighted_f1']:.4f} | {'/'.join(str(r['label_counts_after'][l]) for l in L)} | "
                     f"{leaked} | {augmented} | {r['seconds_total']:.0f} |")
    return "\n".join(lines)


def run_ablation(data_root: str | Path, names: list[str] | None = None, *, seed: int = 0,
                 cache_dir: Path = CACHE_DIR, model: str = "baseline", model_params: dict | None = None,
                 progress=lambda msg: print(msg, flush=True)) -> dict:
    """Run the named configurations (default: all of CONFIGS); return rows, split sizes and a markdown table."""
    data_root = Path(data_root)
    names = names or list(CONFIGS)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise ValueError(f"unknown ablation config(s) {unknown}; known: {list(CONFIGS)}")
    _, valid, test = load_cryptonite(data_root)
    parts = split_frame(valid, {"train": 0.5, "tune": 0.25, "holdout": 0.25}, seed, L)
    parts["test"] = test
    protect = {k: parts[k]["text"].tolist() for k in ("tune", "holdout", "test")}
    before = counts(parts["train"])
    rows, preds = [], []
    y_hold = parts["holdout"][L].to_numpy()
    for name in names:
        row, pred = run_config(name, parts, protect, data_root, seed, cache_dir, model, model_params)
        if preds:
            d, lo, hi = paired_bootstrap(y_hold, pred, preds[0], seed=seed)
            row["holdout_delta_vs_first"] = {"delta": round(d, 4), "ci95": [round(lo, 4), round(hi, 4)]}
            row["delta_text"] = f"{d:+.4f} [{lo:+.3f}, {hi:+.3f}]"
        rows.append(row)
        preds.append(pred)
        progress(f"{name}: holdout wF1 {row['holdout_weighted_f1']:.4f} ({row['rows_train']} rows, "
                 f"{row['seconds_total']:.0f}s)")
    return {"seed": seed, "data_root": str(data_root), "model": model,
            "split_sizes": {k: len(v) for k, v in parts.items()}, "label_counts_before": before,
            "results": rows, "markdown": markdown(rows, before)}
