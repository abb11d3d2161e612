"""Combine trained runs into one ensemble for the submission (06_submission's `ensemble_runs`).

    ensemble, report = combine_runs(run_dir, ["q-seed7", "runs/q-mlm"])

Every run must have the same task and labels and the *same* tune and holdout rows as this run (same data and
split seed): thresholds are re-tuned on this run's tune split (clean or ASR-style, as this run's model was), so
a run that trained on those rows would leak into the thresholds. The report scores each run and the ensemble
on the holdout (clean and ASR-style): it is a report, never an input to the choice of thresholds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..augment.asr_render import with_asr_splits
from ..core.paths import RUNS_DIR
from ..evaluation.metrics import weighted_f1
from ..models import read_model_card
from ..models.ensemble import EnsemblePredictor
from ..data.utterances import UTTERANCE_SHARE
from ..models.thresholds import threshold_frame

CHECKED_SPLITS = ("tune", "holdout")
OPTIONAL_SPLITS = ("tune_utterances", "holdout_utterances")   # checked too when this run has them


class EnsembleRunsError(ValueError):
    """Runs that cannot be combined (missing model, different rows or labels)."""


def resolve_run(ref: str | Path, runs_dir: str | Path = RUNS_DIR) -> Path:
    """A run folder from a path or a run id under `runs_dir`; EnsembleRunsError naming what is missing."""
    for candidate in (Path(ref), Path(runs_dir) / str(ref)):
        if (candidate / "model" / "model_card.json").is_file():
            return candidate.resolve()
    raise EnsembleRunsError(f"ensemble run {str(ref)!r}: no trained model at {ref}/model or "
                            f"{Path(runs_dir) / str(ref)}/model (run its 04_train stage first)")


def _split_texts(run_dir: Path, split: str) -> list[str]:
    path = run_dir / "data" / f"{split}.csv"
    if not path.is_file():
        raise EnsembleRunsError(f"{run_dir}: {path.name} is missing; an ensemble needs each run's data/{split}.csv")
    return pd.read_csv(path, keep_default_na=False)["text"].astype(str).tolist()


def check_same_splits(run_dir: Path, others: Sequence[Path]) -> None:
    """Each run in `others` has exactly this run's tune and holdout rows, and its utterance splits when it has
    them (else EnsembleRunsError)."""
    optional = [s for s in OPTIONAL_SPLITS if (run_dir / "data" / f"{s}.csv").is_file()]
    for split in (*CHECKED_SPLITS, *optional):
        mine = _split_texts(run_dir, split)
        for other in others:
            theirs = _split_texts(other, split)
            if theirs != mine:
                differ = next((i for i, (a, b) in enumerate(zip(mine, theirs)) if a != b), min(len(mine), len(theirs)))
                raise EnsembleRunsError(
                    f"run {other.name}: its {split} split differs from run {run_dir.name}'s ({len(theirs)} vs "
                    f"{len(mine)} rows, first difference at row {differ + 1}); combine only runs made from the same "
                    f"data with the same seed, or it may have trained on the rows the thresholds are tuned on")


def combine_runs(run_dir: str | Path, others: Sequence[str | Path], runs_dir: str | Path = RUNS_DIR
                 ) -> tuple[EnsemblePredictor, dict]:
    """This run's model plus the models of `others`, averaged; thresholds tuned on this run's tune split."""
    run_dir = Path(run_dir).resolve()
    own_card = read_model_card(run_dir / "model")
    other_dirs = [resolve_run(r, runs_dir) for r in others]
    dupes = {str(d) for d in other_dirs if other_dirs.count(d) > 1 or d == run_dir}
    if dupes:
        raise EnsembleRunsError(f"ensemble_runs names a run twice (or this run itself): {sorted(dupes)}")
    check_same_splits(run_dir, other_dirs)
    runs = [run_dir, *other_dirs]
    try:
        ensemble = EnsemblePredictor.from_folders([r / "model" for r in runs])
    except ValueError as e:
        raise EnsembleRunsError(f"ensemble of {[r.name for r in runs]}: {e}") from None
    split = own_card.get("threshold_split", "tune")
    tune = pd.read_csv(run_dir / "data" / "tune.csv", keep_default_na=False)
    utterances_file = run_dir / "data" / "tune_utterances.csv"
    utterances = pd.read_csv(utterances_file, keep_default_na=False) if utterances_file.is_file() else None
    if ensemble.multilabel:
        ensemble.tune(threshold_frame(tune, split, utterances, own_card.get("utterance_share", UTTERANCE_SHARE)))
    holdout = pd.read_csv(run_dir / "data" / "holdout.csv", keep_default_na=False)
    report = {"runs": [str(r) for r in runs], "threshold_split": split,
              "thresholds": dict(zip(ensemble.labels, map(float, ensemble.thresholds))),
              "holdout_weighted_f1": holdout_scores(ensemble, holdout, [r.name for r in runs])}
    return ensemble, report


def holdout_scores(ensemble: EnsemblePredictor, holdout: pd.DataFrame, names: Sequence[str]) -> dict:
    """{split: {run name | "ensemble": weighted F1}} on the holdout and its ASR-style rendering; each run with its
    own thresholds, the ensemble with its tuned ones."""
    out: dict[str, dict[str, float]] = {}
    for split, frame in with_asr_splits({"holdout": holdout}).items():
        y = frame[ensemble.labels].to_numpy()
        member = ensemble.member_proba(frame["text"].tolist())
        scores = {name: weighted_f1(y, m.decide(p)) for name, m, p in zip(names, ensemble.members, member)}
        scores["ensemble"] = weighted_f1(y, ensemble.decide(np.mean(member, axis=0)))
        out[split] = {k: round(v, 4) for k, v in scores.items()}
    return out
