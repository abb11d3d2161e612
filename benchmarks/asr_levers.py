"""Compare trained runs on the clean and the ASR-style holdout, with 95% paired-bootstrap intervals vs the first run.

    python benchmarks/asr_levers.py runs/i13-baseline runs/i13-baseline-tasr runs/i13-baseline-liremove ...

Each run folder must hold `model/` and `data/holdout.csv` (the same holdout rows in every run: same data and
split seed). The ASR-style holdout is `render_asr(holdout)` with the fixed seed the evaluate stage uses, so the
numbers equal the runs' metrics.json; "asr heavy" renders it with the augmentation's far higher error rates
(ASR_NOISE_DEFAULTS), a stress test rather than a model of the test file. Record: benchmarks/results/asr_levers_baseline.txt.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emotions.augment.asr_noise import ASR_NOISE_DEFAULTS  # noqa: E402
from emotions.augment.asr_render import render_asr  # noqa: E402
from emotions.evaluation.metrics import weighted_f1  # noqa: E402
from emotions.models import load_predictor  # noqa: E402
from emotions.pipeline.ablation import paired_bootstrap  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--resamples", type=int, default=500)
    args = ap.parse_args(argv)
    holdout = pd.read_csv(args.runs[0] / "data" / "holdout.csv", keep_default_na=False)
    heavy = {k: v for k, v in ASR_NOISE_DEFAULTS.items() if k.startswith("p_")}   # the augmentation's error rates
    frames = {"clean": holdout, "asr": render_asr(holdout), "asr heavy": render_asr(holdout, params=heavy)}
    rows, ref = [], {}
    for run in args.runs:
        other = pd.read_csv(run / "data" / "holdout.csv", keep_default_na=False)
        if other["text"].tolist() != holdout["text"].tolist():
            raise SystemExit(f"{run}: its holdout rows differ from {args.runs[0]}'s; compare runs of one split")
        pred = load_predictor(run / "model")
        card = json.loads((run / "model" / "model_card.json").read_text(encoding="utf-8"))
        train_rows = json.loads((run / "manifests" / "04_train.json").read_text(encoding="utf-8"))["metrics"]
        row = {"run": run.name, "thresholds on": card.get("threshold_split", "tune"),
               "train rows": train_rows.get("train_rows")}
        for name, frame in frames.items():
            y = frame[pred.labels].to_numpy()
            decided = pred.predict(frame["text"].tolist())
            row[f"{name} wF1"] = round(weighted_f1(y, decided), 4)
            if run == args.runs[0]:
                ref[name] = decided
            else:
                d, lo, hi = paired_bootstrap(y, decided, ref[name], n=args.resamples)
                row[f"{name} Δ [95% CI]"] = f"{d:+.4f} [{lo:+.4f}, {hi:+.4f}]"
        rows.append(row)
    table = pd.DataFrame(rows).fillna("")
    print(f"holdout: {len(holdout)} rows; Δ vs {args.runs[0].name}, paired bootstrap ({args.resamples} resamples)\n")
    print(table.to_markdown(index=False) if _has_tabulate() else table.to_string(index=False))
    return 0


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
        return True
    except ImportError:
        return False


if __name__ == "__main__":
    sys.exit(main())
