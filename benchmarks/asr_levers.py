"""Compare trained runs on the clean and the ASR-style holdout, with 95% paired-bootstrap intervals vs the first run.

    python benchmarks/asr_levers.py runs/q-base runs/q-mlm 'runs/q-base@tune_asr' 'runs/q-base+q-seed43' \
        --out benchmarks/results/asr_levers_quick.md

A run is a run folder with `model/` and `data/{tune,holdout}.csv` (the same holdout rows in every run: same data
and split seed). Two derived entries cost no training:
  RUN@tune_asr   the run's model with its thresholds re-tuned on the ASR-style tune split (what
                 `-p train.threshold_split=tune_asr` does after the same training);
  RUN+OTHER[+…]  the runs' models averaged (emotions.pipeline.combine_runs.combine_runs: the submission stage's
                 `ensemble_runs`), thresholds re-tuned on the first run's tune split.
The ASR-style holdout is `render_asr(holdout)` with the evaluate stage's fixed seed, so single runs' numbers equal
their metrics.json; "asr heavy" renders it with the augmentation's far higher error rates (ASR_NOISE_DEFAULTS), a
stress test rather than a model of the test file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from emotions.augment.asr_noise import ASR_NOISE_DEFAULTS
from emotions.augment.asr_render import render_asr
from emotions.evaluation.metrics import weighted_f1
from emotions.evaluation.report import markdown_table
from emotions.models import load_predictor, read_model_card
from emotions.models.thresholds import retune_thresholds
from emotions.pipeline.ablation import paired_bootstrap
from emotions.pipeline.combine_runs import check_same_splits, combine_runs


def load_entry(ref: str):
    """(predictor, first run folder, description) for a run, RUN@tune_asr or RUN+OTHER."""
    base, _, variant = ref.partition("@")
    first, *others = base.split("+")
    run = Path(first)
    if others:
        pred, _ = combine_runs(run, others, runs_dir=run.parent)
        how = f"ensemble of {1 + len(others)}"
    else:
        pred, how = load_predictor(run / "model"), read_model_card(run / "model").get("threshold_split", "tune")
    if variant:
        if variant != "tune_asr":
            raise SystemExit(f"{ref}: unknown variant @{variant}; known: @tune_asr")
        tune = pd.read_csv(run / "data" / "tune.csv", keep_default_na=False)
        pred = retune_thresholds(pred, tune, "tune_asr")
        how += ", thresholds on tune_asr"
    return pred, run, how


def train_rows(run: Path) -> int | str:
    manifest = run / "manifests" / "04_train.json"
    return json.loads(manifest.read_text(encoding="utf-8"))["metrics"].get("train_rows", "") if manifest.is_file() else ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="run folders, RUN@tune_asr, RUN+OTHER")
    ap.add_argument("--resamples", type=int, default=500)
    ap.add_argument("--out", type=Path, help="also write the table (markdown) and the numbers (.json) here")
    args = ap.parse_args(argv)
    first_run = Path(args.runs[0].partition("@")[0].split("+")[0])
    holdout = pd.read_csv(first_run / "data" / "holdout.csv", keep_default_na=False)
    heavy = {k: v for k, v in ASR_NOISE_DEFAULTS.items() if k.startswith("p_")}   # the augmentation's error rates
    frames = {"clean": holdout, "asr": render_asr(holdout), "asr heavy": render_asr(holdout, params=heavy)}
    rows, ref = [], {}
    for k, entry in enumerate(args.runs):
        pred, run, how = load_entry(entry)
        if run.resolve() != first_run.resolve():
            check_same_splits(first_run, [run])
        row = {"run": entry.replace(str(first_run.parent) + "/", ""), "model": how, "train rows": train_rows(run)}
        for name, frame in frames.items():
            y = frame[pred.labels].to_numpy()
            decided = pred.predict(frame["text"].tolist())
            row[f"{name} wF1"] = round(weighted_f1(y, decided), 4)
            if k == 0:
                ref[name] = decided
            else:
                d, lo, hi = paired_bootstrap(y, decided, ref[name], n=args.resamples)
                row[f"{name} Δ [95% CI]"] = f"{d:+.4f} [{lo:+.4f}, {hi:+.4f}]"
        rows.append(row)
        print(f"{row['run']}: clean {row['clean wF1']:.4f}, asr {row['asr wF1']:.4f}", file=sys.stderr, flush=True)
    table = pd.DataFrame(rows).fillna("")
    text = (f"holdout: {len(holdout)} rows; Δ vs {rows[0]['run']}, paired bootstrap ({args.resamples} resamples)\n\n"
            + markdown_table(table))
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".md").write_text(text + "\n", encoding="utf-8")
        args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n",
                                                 encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
