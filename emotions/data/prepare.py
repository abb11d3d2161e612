"""Turn a data root into the named splits every task trains and is judged on.

Splits (all frames: `text` + one 0/1 column per label + `source`):
- train:   rows the model learns from
- tune:    early stopping and per-class threshold tuning
- holdout: the honest score (never used for any choice)
- test:    rows to predict for the submission (cryptonite only; labels unknown)
- tune_utterances, holdout_utterances: the project's written spoken-style utterances (cryptonite with
  `utterances: true`; emotions.data.utterances): the test's second population, for thresholds and the score
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from . import readers as D
from . import labels as L
from ..core import paths
from .splits import split_frame
from .utterances import utterance_parts, utterances_root

log = logging.getLogger(__name__)

def _fractions(train: float, tune: float) -> dict[str, float]:
    if not (0 <= train < 1 and 0 < tune < 1 and train + tune < 1):
        raise ValueError(f"need 0 <= train_frac, 0 < tune_frac and train_frac + tune_frac < 1; got {train}, {tune}")
    out = {"train": train, "tune": tune, "holdout": 1 - train - tune}
    return {k: v for k, v in out.items() if v > 0}


def cryptonite_splits(data_root: str | Path, *, seed: int = 42, valid_train_frac: float = 0.5,
                      valid_tune_frac: float = 0.25, expected_test_rows: int | None = None,
                      utterances: bool = False, utterance_tune_frac: float = 0.2
                      ) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """train.csv if present; otherwise part of valid becomes training data (documented recipe). With
    `utterances`, also tune_utterances (`utterance_tune_frac` of data/utterances/train) and holdout_utterances."""
    train, valid, test = D.load_cryptonite(data_root, expected_test_rows=expected_test_rows)
    labels = L.CRYPTONITE_LABELS
    notes: list[str] = []
    if train is not None:
        parts = split_frame(valid, {"tune": 0.5, "holdout": 0.5}, seed, labels)
        parts["train"] = train.assign(source="train")
        notes.append(f"train.csv: {len(train)} rows; valid split into tune/holdout halves")
    else:
        msg = (f"train.csv not found under {Path(data_root) / 'cryptonite'}: training on "
               f"{valid_train_frac:.0%} of valid.csv (tune {valid_tune_frac:.0%}, holdout the rest)")
        log.warning(msg)
        notes.append(msg)
        parts = split_frame(valid, _fractions(valid_train_frac, valid_tune_frac), seed, labels)
        if "train" in parts:
            parts["train"] = parts["train"].assign(source="valid")
    parts["tune"] = parts["tune"].assign(source="valid")
    parts["holdout"] = parts["holdout"].assign(source="valid")
    parts["test"] = test.assign(source="test")
    if utterances:
        root = utterances_root(data_root)
        parts.update({k: v[["text", *labels, "source"]] for k, v in utterance_parts(seed, utterance_tune_frac, root).items()})
        notes.append(f"utterances: tune_utterances {len(parts['tune_utterances'])} rows "
                     f"({utterance_tune_frac:.0%} of {root}/train), holdout_utterances "
                     f"{len(parts['holdout_utterances'])} rows (its eval/)")
    return parts, notes


def cedr_splits(data_root: str | Path, *, seed: int = 42, tune_frac: float = 0.15
                ) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """CEDR: a seeded stratified part of train is tune; CEDR's own test is the holdout."""
    root = Path(data_root)
    cols = ["text", *L.CEDR_LABELS]
    train = D.load_cedr_file(root / paths.CEDR_SPLITS["train"])[cols]
    test = D.load_cedr_file(root / paths.CEDR_SPLITS["test"])[cols]
    parts = split_frame(train, {"train": 1 - tune_frac, "tune": tune_frac}, seed, L.CEDR_LABELS)
    parts = {k: v.assign(source="cedr-train") for k, v in parts.items()}
    parts["holdout"] = test.assign(source="cedr-test")
    return parts, [f"cedr: train {len(train)} rows ({tune_frac:.0%} to tune), test {len(test)} rows = holdout"]


def twitter_splits(data_root: str | Path, *, seed: int = 42, tune_frac: float = 0.1, holdout_frac: float = 0.1
                   ) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """English Twitter emotions: fixed, seeded, stratified train/tune/holdout split."""
    df = D.load_twitter(Path(data_root) / paths.TWITTER_CSV)
    onehot = pd.DataFrame(np.eye(len(L.TWITTER_LABELS), dtype=np.int64)[
        df["label"].map({n: i for i, n in enumerate(L.TWITTER_LABELS)}).to_numpy()], columns=L.TWITTER_LABELS)
    frame = pd.concat([df[["text"]].reset_index(drop=True), onehot], axis=1)
    parts = split_frame(frame, {"train": 1 - tune_frac - holdout_frac, "tune": tune_frac, "holdout": holdout_frac},
                        seed, L.TWITTER_LABELS)
    parts = {k: v.assign(source="emotions-en") for k, v in parts.items()}
    return parts, [f"emotions-en: {len(frame)} rows split {1 - tune_frac - holdout_frac:.0%}/{tune_frac:.0%}/"
                   f"{holdout_frac:.0%} (seed {seed})"]


def build_splits(task: str, data_root: str | Path, *, seed: int = 42, **options
                 ) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Dispatch on the task; `options` are the task's own split options (see configs)."""
    builders = {"cryptonite": cryptonite_splits, "cedr": cedr_splits, "emotions-en": twitter_splits}
    L.get_task(task)
    return builders[task](data_root, seed=seed, **options)


def raw_frames(task: str, data_root: str | Path) -> dict[str, pd.DataFrame]:
    """The task's files as they are (for EDA): name -> `text` + label columns."""
    root = Path(data_root)
    if task == "cryptonite":
        train, valid, test = D.load_cryptonite(root)
        frames = {"train": train} if train is not None else {}
        return {**frames, "valid": valid, "test": test}
    if task == "cedr":
        return {k: D.load_cedr_file(root / v) for k, v in paths.CEDR_SPLITS.items()}
    if task == "emotions-en":
        parts, _ = twitter_splits(root)
        return {"all": pd.concat(parts.values(), ignore_index=True)}
    L.get_task(task)
    raise ValueError(task)
