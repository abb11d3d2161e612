"""Benchmark the CNN model kind on the real data sets (holdout figures and training time).

    python benchmarks/bench_cnn.py [--data-dir ../shared/data] [--tasks twitter,cryptonite,cedr] [--threads 2]

- twitter: emotions-en/emotions.csv, seeded stratified split 80/10/10 (train/tune/holdout);
  accuracy, macro F1, macro one-vs-rest ROC AUC.
- cryptonite: valid.csv split 50/25/25 (train/tune/holdout), navec embeddings; weighted F1 (thresholds
  tuned on tune) and mean ROC AUC.
- cedr: cedr/train.csv split 85/15 (train/tune), cedr/test.csv as holdout, navec embeddings;
  mean ROC AUC and the multilabel_report means.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emotions.core import paths  # noqa: E402
from emotions.data.readers import load_cedr_file, load_labeled_csv, load_twitter  # noqa: E402
from emotions.data.labels import CEDR_LABELS, CRYPTONITE_LABELS, TWITTER_LABELS, get_task  # noqa: E402
from emotions.evaluation.metrics import multilabel_report, singlelabel_report  # noqa: E402
from emotions.models import train_model  # noqa: E402
from emotions.data.splits import split_frame  # noqa: E402

SEED = 42
ENGLISH_PREPROCESS = {"emoji_language": "en", "asr_dictionary": False}


def twitter_frame(data_dir: Path) -> pd.DataFrame:
    """Twitter emotions as `text` + one 0/1 column per TWITTER_LABELS."""
    df = load_twitter(data_dir / paths.TWITTER_CSV)
    out = pd.DataFrame({"text": df["text"]})
    for label in TWITTER_LABELS:
        out[label] = (df["label"] == label).astype(np.int64)
    return out


def run_task(name: str, data_dir: Path, params: dict, work: Path, img_dir: Path | None) -> dict:
    if name == "twitter":
        spec = get_task("emotions-en")
        parts = split_frame(twitter_frame(data_dir), {"train": 0.8, "tune": 0.1, "holdout": 0.1}, seed=SEED,
                            label_cols=TWITTER_LABELS)
        params = {"preprocess": ENGLISH_PREPROCESS, **params}
    elif name == "cryptonite":
        spec = get_task("cryptonite")
        valid = load_labeled_csv(data_dir / paths.CRYPTONITE_VALID, CRYPTONITE_LABELS)
        parts = split_frame(valid, {"train": 0.5, "tune": 0.25, "holdout": 0.25}, seed=SEED,
                            label_cols=CRYPTONITE_LABELS)
        params = {"embedding": "navec", **params}
    elif name == "cedr":
        spec = get_task("cedr")
        cols = ["text", *CEDR_LABELS]
        train = load_cedr_file(data_dir / paths.CEDR_SPLITS["train"])[cols]
        parts = split_frame(train, {"train": 0.85, "tune": 0.15}, seed=SEED, label_cols=CEDR_LABELS)
        parts["holdout"] = load_cedr_file(data_dir / paths.CEDR_SPLITS["test"])[cols]
        params = {"embedding": "navec", **params}
    else:
        raise ValueError(f"unknown benchmark task {name!r}")

    t0 = time.perf_counter()
    model = train_model("cnn", parts["train"], parts["tune"], spec, params, work / name)
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
