"""Compare trained runs on both test populations: the GoEmotions holdout and holdout_utterances (written spoken-style
utterances), weighted and per-class F1, with 95% paired-bootstrap intervals against the first run.

    python benchmarks/population_levers.py runs/q-base runs/q-utt runs/q-best --test-mix \
        --out benchmarks/results/population_levers_quick

A run is a run folder with `model/` and `data/{holdout,holdout_utterances}.csv` (the same rows in every run: same
data and split seed); `RUN+OTHER[+…]` is the runs' models averaged, thresholds re-tuned on the first run's tune
splits (the submission stage's `ensemble_runs`: emotions.pipeline.combine_runs.combine_runs), e.g. a transformer
blended with the TF-IDF baseline. "mixed" is the whole-test estimate: both holdouts, rows weighted so the utterances count for
UTTERANCE_SHARE (the evaluate stage's `holdout_mixed`); its interval resamples each holdout on its own.
`--test-mix` also predicts the unlabelled test file and prints the label shares on its utterance-style rows
(emotions.data.populations) beside the evaluation set's: the closer, the better the model fits that population.
Wall time is the sum of the run's stage manifests (its own machine and load).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from emotions.core import paths
from emotions.core.io import write_text_atomic
from emotions.data.populations import label_mix, population_view
from emotions.data.utterances import UTTERANCE_SHARE, load_utterances, utterances_root
from emotions.evaluation.report import markdown_table
from emotions.models import load_predictor
from emotions.pipeline.combine_runs import check_same_splits, combine_runs

SPLITS = ("holdout", "holdout_utterances")


def mixed_f1(y: dict, pred: dict, index: dict | None = None) -> float:
    """Weighted F1 of both holdouts, utterances weighing UTTERANCE_SHARE; `index`: resampled rows per split."""
    index = index or {k: np.arange(len(y[k])) for k in SPLITS}
    ys = np.vstack([y[k][index[k]] for k in SPLITS])
    ps = np.vstack([pred[k][index[k]] for k in SPLITS])
    n, m = (len(index[k]) for k in SPLITS)
    w = np.r_[np.full(n, (1 - UTTERANCE_SHARE) / n), np.full(m, UTTERANCE_SHARE / m)]
    return float(f1_score(ys, ps, average="weighted", sample_weight=w, zero_division=0))


def score(y: dict, pred: dict, split: str, index: dict | None = None) -> float:
    if split == "mixed":
        return mixed_f1(y, pred, index)
    i = index[split] if index else slice(None)
    return float(f1_score(y[split][i], pred[split][i], average="weighted", zero_division=0))


def deltas(y: dict, pred: dict, ref: dict, resamples: int, seed: int = 0) -> dict[str, str]:
    """Per split (and mixed): the weighted-F1 difference to `ref` and its 95% paired-bootstrap interval."""
    rng = np.random.default_rng(seed)
    draws = [{k: rng.integers(0, len(y[k]), len(y[k])) for k in SPLITS} for _ in range(resamples)]
    out = {}
    for split in (*SPLITS, "mixed"):
        d = [score(y, pred, split, i) - score(y, ref, split, i) for i in draws]
        lo, hi = np.percentile(d, [2.5, 97.5])
        out[split] = f"{score(y, pred, split) - score(y, ref, split):+.4f} [{lo:+.4f}, {hi:+.4f}]"
    return out


def wall_seconds(run: Path) -> float:
    return round(sum(json.loads(p.read_text(encoding="utf-8")).get("seconds", 0) or 0
                     for p in sorted((run / "manifests").glob("*.json"))), 1)


def load_entry(entry: Path):
    """(predictor, wall seconds) of a run folder or of RUN+OTHER (averaged, thresholds re-tuned)."""
    first, *others = str(entry).split("+")
    if not others:
        return load_predictor(Path(first) / "model"), wall_seconds(Path(first))
    predictor, _ = combine_runs(first, others, runs_dir=Path(first).parent)
    return predictor, sum(wall_seconds(Path(first).parent / o) for o in others) + wall_seconds(Path(first))


def run_row(run: Path, y: dict, frames: dict, ref: dict | None, resamples: int) -> tuple[dict, dict, object]:
    """(the table row, the decisions per split, the predictor) of one run."""
    predictor, seconds = load_entry(run)
    pred = {k: predictor.predict(frames[k]["text"].tolist()) for k in SPLITS}
    row: dict = {"run": run.name, "wall s": seconds}
    for split in (*SPLITS, "mixed"):
        row[f"{split} wF1"] = round(score(y, pred, split), 4)
    if ref is not None:
        row.update({f"Δ {k} [95% CI]": v for k, v in deltas(y, pred, ref, resamples).items()})
    for split in SPLITS:
        per = f1_score(y[split], pred[split], average=None, zero_division=0)
        row[f"{split} per-class F1"] = "/".join(f"{v:.2f}" for v in per)
    return row, pred, predictor


def test_mix(predictors: dict, data_dir: Path, seed: int = 42) -> pd.DataFrame:
    """Label shares each run predicts on the test's utterance-style rows, beside the evaluation set's."""
    test = pd.read_csv(data_dir / paths.CRYPTONITE_TEST, keep_default_na=False)["text"].tolist()
    valid = pd.read_csv(data_dir / paths.CRYPTONITE_VALID, keep_default_na=False)["text"].tolist()
    view = population_view(test, valid, load_utterances("train", utterances_root(data_dir))["text"], seed)
    rows = {}
    for name, predictor in predictors.items():
        rows[name] = label_mix(predictor.predict(test), view.population, predictor.labels).loc["utterance"]
    labels = next(iter(predictors.values())).labels
    evaluation = load_utterances("eval", utterances_root(data_dir), labels)
    rows["holdout_utterances (gold)"] = pd.concat([evaluation[labels].mean(), pd.Series({"rows": len(evaluation)})])
    return pd.DataFrame(rows).T.round(3)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="run folders; the first is the reference")
    ap.add_argument("--resamples", type=int, default=500, help="paired-bootstrap resamples")
    ap.add_argument("--test-mix", action="store_true", help="also the label shares on the test's utterance rows")
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data"), help="data root (for --test-mix)")
    ap.add_argument("--out", type=Path, help="write OUT.md and OUT.json")
    ap.add_argument("--note", default="", help="a line put first in OUT.md (e.g. how the runs were made)")
    args = ap.parse_args(argv)
    first = args.runs[0]
    check_same_splits(first, [Path(p) for r in args.runs[1:] for p in str(r).split("+")[:1]])
    frames = {k: pd.read_csv(first / "data" / f"{k}.csv", keep_default_na=False) for k in SPLITS}
    rows, predictors, ref = [], {}, None
    for run in args.runs:
        labels = load_predictor(first / "model").labels
        y = {k: frames[k][labels].to_numpy() for k in SPLITS}
        row, pred, predictors[run.name] = run_row(run, y, frames, ref, args.resamples)
        ref = ref if ref is not None else pred
        rows.append(row)
        print(f"{run.name}: " + ", ".join(f"{k} {row[f'{k} wF1']:.4f}" for k in (*SPLITS, "mixed")), flush=True)
    text = (f"{args.note}\n\n" if args.note else "") + (
            f"holdout {len(frames['holdout'])} rows, holdout_utterances {len(frames['holdout_utterances'])} rows; "
            f"mixed = utterances weighted {UTTERANCE_SHARE:.0%}; Δ vs {first.name}, paired bootstrap "
            f"({args.resamples} resamples); per-class F1 in the order {'/'.join(labels)}\n\n"
            + markdown_table(pd.DataFrame(rows).fillna("")))
    if args.test_mix:
        mix = test_mix(predictors, args.data_dir)
        text += "\n\nLabel shares on the test's utterance-style rows\n\n" + markdown_table(mix, index=True)
    print(text)
    if args.out:
        write_text_atomic(args.out.with_suffix(".md"), text + "\n")
        write_text_atomic(args.out.with_suffix(".json"), json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
