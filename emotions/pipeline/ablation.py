"""Ablation of extension sources and augmentation methods: same model, each option on and off.

Every configuration is a set of config overrides (the `extend` and `augment` sections of
configs/base.yaml) run through the pipeline's own stage functions (emotions.pipeline.steps: the
splits, extension, augmentation, training and evaluation the notebooks run), so the ablation scores
what `run_all.py` would. Splits: the task's (configs, `extend.splits`): without train.csv, valid.csv
is split train 50% / tune 25% / holdout 25% (seeded, stratified). Thresholds are tuned on tune; the
score is weighted F1 on the disjoint holdout. Differences to the first configuration come with a 95%
paired-bootstrap interval over the holdout rows (500 resamples).
Used by notebooks/08_ablation.ipynb and benchmarks/ablation.py.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Mapping

import numpy as np

from ..core.paths import CACHE_DIR
from ..data.labels import CRYPTONITE_LABELS
from ..evaluation.metrics import weighted_f1
from . import stages
from .ablation_configs import CONFIGS
from .config import DEFAULT_PROFILE, deep_merge, load_config

L = CRYPTONITE_LABELS


def counts(df) -> dict[str, int]:
    return {l: int(df[l].sum()) for l in L}


def ablation_config(base: Mapping, name: str, model: str, model_params: Mapping | None) -> dict:
    """The merged config of configuration `name`: `base` with every source and augmentation off, then its overrides."""
    off = {"extend": {"sources": {k: {"enabled": False} for k in (base.get("extend", {}).get("sources") or {})
                                  if k != "user_csvs"}},
           "augment": {"enabled": False}, "train": {"model": model, model: dict(model_params or {})}}
    cfg = deep_merge(deep_merge(dict(base), off), CONFIGS[name])
    if "user_csvs" in cfg["extend"]["sources"]:
        cfg["extend"]["sources"]["user_csvs"] = []
    return cfg


def score_config(name: str, parts: dict, data_root: Path, cfg: Mapping, cache_dir: Path) -> tuple[dict, np.ndarray]:
    """Run configuration `name` (merged config `cfg`) through the stage functions; score on holdout."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = stages.run_chain(cfg, data_root, Path(tmp) / "model", parts=dict(parts), cache_dir=cache_dir)
    train, ext_report, aug_report = out["parts"]["train"], out["extension_report"], out["augment_report"]
    pred_hold = out["predictor"].decide(out["proba"]["holdout"])
    row = {
        "config": name,
        "rows_train": len(train),
        "holdout_weighted_f1": round(out["metrics"]["holdout"]["weighted_f1"], 4),
        "tune_weighted_f1": round(out["metrics"]["tune"]["weighted_f1"], 4),
        **{f"{k}_weighted_f1": round(out["metrics"][k]["weighted_f1"], 4)
           for k in ("holdout_utterances", "holdout_mixed") if k in out["metrics"]},
        "label_counts_after": counts(train),
        "leaked_rows_removed": {k: v["dropped_near_copies"] for k, v in (ext_report or {}).get("sources", {}).items()},
        "exact_duplicates_removed": {k: v["dropped_exact_duplicates"]
                                     for k, v in (ext_report or {}).get("sources", {}).items()},
        "augmented_rows": {k: v["rows_added"] for k, v in (aug_report or {}).get("methods", {}).items()},
        "augment_status": {k: v["status"] for k, v in (aug_report or {}).get("methods", {}).items()
                           if v["status"] != "ok"},
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
    head = ("| config | train rows | holdout wF1 | Δ vs first [95% CI] | tune wF1 | utterances wF1 | whole-test "
            "estimate | rows per class after (" + "/".join(short[l] for l in L) + ") | leaked rows removed | "
            "augmented rows | s |")
    lines = ["rows per class before (train part): " + ", ".join(f"{l} {n}" for l, n in before.items()), "",
             head, "|" + "---|" * 11]
    for r in rows:
        leaked = ", ".join(f"{k} {v}" for k, v in r["leaked_rows_removed"].items()) or "-"
        augmented = ", ".join(f"{k} {v}" for k, v in r["augmented_rows"].items()) or "-"
        lines.append(f"| {r['config']} | {r['rows_train']} | {r['holdout_weighted_f1']:.4f} | "
                     f"{r.get('delta_text', '-')} | {r['tune_weighted_f1']:.4f} | "
                     f"{r.get('holdout_utterances_weighted_f1', '-')} | {r.get('holdout_mixed_weighted_f1', '-')} | "
                     f"{'/'.join(str(r['label_counts_after'][l]) for l in L)} | "
                     f"{leaked} | {augmented} | {r['seconds_total']:.0f} |")
    return "\n".join(lines)


def run_ablation(data_root: str | Path, names: list[str] | None = None, *, seed: int = 42,
                 cache_dir: Path = CACHE_DIR, model: str = "baseline", model_params: dict | None = None,
                 base: Mapping | None = None, progress=lambda msg: print(msg, flush=True)) -> dict:
    """Run the named configurations (default: all of CONFIGS) on top of the merged config `base` (the run's;
    default: task cryptonite, the default profile); return rows, split sizes and a markdown table."""
    data_root = Path(data_root)
    names = names or list(CONFIGS)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise ValueError(f"unknown ablation config(s) {unknown}; known: {list(CONFIGS)}")
    base = deep_merge(dict(base or load_config("cryptonite", DEFAULT_PROFILE)), {"common": {"seed": seed}})
    cfg = stages.as_config(base)
    parts, _ = stages.steps.split_data("cryptonite", data_root, seed, cfg.extend.splits.model_dump(exclude_none=True),
                                       cfg.common.expected_test_rows)
    before = counts(parts["train"])
    rows, preds = [], []
    y_hold = parts["holdout"][L].to_numpy()
    for name in names:
        row, pred = score_config(name, parts, data_root, ablation_config(base, name, model, model_params), cache_dir)
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
