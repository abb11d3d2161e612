"""Benchmark the CNN model kind on the real data sets (holdout figures and training time).

    python benchmarks/bench_cnn.py [--data-dir ../shared/data] [--tasks twitter,cryptonite,cedr] [--threads 2]

Each task's splits and preprocessing are the pipeline's (configs/, emotions.pipeline.steps):
- twitter (task emotions-en): seeded stratified split 80/10/10 (train/tune/holdout);
  accuracy, macro F1, macro one-vs-rest ROC AUC.
- cryptonite: without train.csv, valid.csv split 50/25/25, navec embeddings; weighted F1
  (thresholds tuned on tune) and mean ROC AUC.
- cedr: cedr/train.csv split 85/15 (train/tune), cedr/test.csv as holdout, navec embeddings;
  mean ROC AUC and the multilabel_report means.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import torch

from emotions.data.labels import get_task
from emotions.evaluation.metrics import multilabel_report, singlelabel_report
from emotions.pipeline import steps
from emotions.pipeline.config import load_config

SEED = 42
TASKS = {"twitter": "emotions-en", "cryptonite": "cryptonite", "cedr": "cedr"}


def run_task(name: str, data_dir: Path, params: dict, work: Path, img_dir: Path | None) -> dict:
    """The task's own splits and preprocessing (configs/, profile full), the CNN trained by the stage function."""
    if name not in TASKS:
        raise ValueError(f"unknown benchmark task {name!r}; known: {list(TASKS)}")
    spec = get_task(TASKS[name])
    cfg = load_config(spec.name, "full")
    parts, _ = steps.split_data(spec.name, data_dir, SEED, cfg["extend"].get("splits"))
    if name != "twitter":
        params = {"embedding": "navec", **params}
    t0 = time.perf_counter()
    model = steps.train("cnn", parts["train"], parts["tune"], spec.name, params, cfg.get("preprocess", {}), SEED,
                        work / name)
    seconds = time.perf_counter() - t0
    holdout = parts["holdout"]
    t1 = time.perf_counter()
    proba = model.predict_proba(holdout["text"].tolist())
    predict_seconds = time.perf_counter() - t1
    labels = list(spec.labels)
    y = holdout[labels].to_numpy()
    h = model.history
    result = {"task": name, "rows": {k: len(v) for k, v in parts.items()}, "train_seconds": round(seconds, 1),
              "predict_seconds_holdout": round(predict_seconds, 2), "epochs_run": len(h["epochs"]),
              "best_epoch": h["best_epoch"], "vocab_size": h["vocab_size"],
              "params": {k: v for k, v in model.params.items()}}
    if "navec_coverage" in h:
        result["navec_coverage"] = h["navec_coverage"]
    if spec.multilabel:
        rep = multilabel_report(y, proba, model.thresholds, labels, ensure_one=model.ensure_one)
        result.update({k: rep[k] for k in ("weighted_f1", "macro_f1", "micro_f1", "mean_roc_auc",
                                            "mean_precision", "mean_recall")})
        result["per_class_roc_auc"] = {k: v["roc_auc"] for k, v in rep["per_class"].items()}
    else:
        rep = singlelabel_report(y.argmax(axis=1), proba, labels)
        result.update({k: rep[k] for k in ("accuracy", "macro_f1", "weighted_f1", "macro_roc_auc")})
        result["confusion_matrix"] = rep["confusion_matrix"]
        if img_dir is not None:
            from emotions.evaluation.plots import plot_confusion_matrix
            plot_confusion_matrix(rep["confusion_matrix"], labels, img_dir / f"cnn_{name}_confusion.png",
                                  title=f"CNN, {name} holdout")
    if img_dir is not None:
        from emotions.evaluation.plots import plot_learning_curves
        plot_learning_curves(h, img_dir / f"cnn_{name}_history.png", title=f"CNN, {name}")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--tasks", default="twitter,cryptonite,cedr", help="comma-separated: twitter,cryptonite,cedr")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--params", default="{}", help="JSON of extra cnn parameters for every task")
    ap.add_argument("--img-dir", type=Path, default=None, help="write confusion-matrix / history PNGs here")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--progress", action="store_true", help="show tqdm bars")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    extra = {"num_threads": args.threads, "progress": args.progress, **json.loads(args.params)}
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_cnn_") as tmp:
        for name in [t.strip() for t in args.tasks.split(",") if t.strip()]:
            r = run_task(name, args.data_dir, extra, Path(tmp), args.img_dir)
            results.append(r)
            figures = {k: r[k] for k in ("accuracy", "macro_f1", "macro_roc_auc", "weighted_f1", "mean_roc_auc",
                                         "micro_f1", "mean_precision", "mean_recall") if k in r}
            print(f"\n== cnn {name} (threads={args.threads}) rows={r['rows']} train {r['train_seconds']}s, "
                  f"epochs {r['epochs_run']} (best {r['best_epoch']}), holdout predict {r['predict_seconds_holdout']}s")
            print("   " + ", ".join(f"{k}={v:.4f}" for k, v in figures.items()), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
