"""Every task's label list and every mapping between label sets: the one place for these facts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

# --- cryptonite (the main Kaggle task): column order of train/valid/test CSVs -------------
CRYPTONITE_LABELS: list[str] = ["anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral"]

# --- GoEmotions --------------------------------------------------------------------------------
# ids in goemotions-en/ekman_train.tsv index this list (note: not the cryptonite order)
GOEMOTIONS_EKMAN_LABELS: list[str] = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
# ids in goemotions-en/original_train.tsv index this list
GOEMOTIONS_LABELS: list[str] = [
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion",
    "curiosity", "desire", "disappointment", "disapproval", "disgust", "embarrassment",
    "excitement", "fear", "gratitude", "grief", "joy", "love", "nervousness", "optimism",
    "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
]
# The Ekman grouping published with GoEmotions (ekman_mapping.json) plus neutral.
GOEMOTIONS_TO_EKMAN: dict[str, str] = {
    **{k: "anger" for k in ["anger", "annoyance", "disapproval"]},
    "disgust": "disgust",
    **{k: "fear" for k in ["fear", "nervousness"]},
    **{k: "joy" for k in ["joy", "amusement", "approval", "excitement", "gratitude", "love",
                          "optimism", "relief", "pride", "admiration", "desire", "caring"]},
    **{k: "sadness" for k in ["sadness", "disappointment", "embarrassment", "grief", "remorse"]},
    **{k: "surprise" for k in ["surprise", "realization", "confusion", "curiosity"]},
    "neutral": "neutral",
}

# --- ru-izard-emotions (Djacon/ru-izard-emotions): column order of its CSVs ---------------------
IZARD_LABELS: list[str] = ["neutral", "joy", "sadness", "anger", "enthusiasm", "surprise",
                           "disgust", "fear", "guilt", "shame"]
# One to one where the names agree; the three extra Izard emotions are configurable
# (None drops the label; a row left with no label is dropped).
IZARD_TO_CRYPTONITE_DEFAULT: dict[str, str | None] = {
    "neutral": "neutral", "joy": "joy", "sadness": "sadness", "anger": "anger",
    "surprise": "surprise", "disgust": "disgust", "fear": "fear",
    "enthusiasm": "joy", "guilt": "sadness", "shame": "sadness",
}

# --- CEDR ----------------------------------------------------------------------------------------
CEDR_IDS: list[str] = ["joy", "sadness", "surprise", "fear", "anger"]  # ids in cedr `labels` column
CEDR_NO_EMOTION = "no_emotion"
CEDR_LABELS: list[str] = [CEDR_NO_EMOTION, *CEDR_IDS]                  # the CEDR task's 6 outputs
CEDR_TO_CRYPTONITE: dict[str, str] = {
    "joy": "joy", "sadness": "sadness", "surprise": "surprise", "fear": "fear", "anger": "anger",
    CEDR_NO_EMOTION: "neutral",
}

# --- English Twitter emotions (single label) -----------------------------------------------------
TWITTER_LABELS: list[str] = ["sadness", "joy", "love", "anger", "fear", "surprise"]
TWITTER_FILE_ALIASES: dict[str, str] = {"happy": "joy"}  # emotions-en/emotions.csv says "happy"


@dataclass(frozen=True)
class TaskSpec:
    """What a task is: its labels and whether several may hold at once."""

    name: str
    labels: tuple[str, ...]
    multilabel: bool
    description: str


TASKS: dict[str, TaskSpec] = {
    "cryptonite": TaskSpec("cryptonite", tuple(CRYPTONITE_LABELS), True,
                           "Russian ASR texts, 7 Ekman labels, multilabel (Kaggle cryptonite-hack-sf)"),
    "cedr": TaskSpec("cedr", tuple(CEDR_LABELS), True,
                     "Russian CEDR: 5 emotions + no emotion, multilabel"),
    "emotions-en": TaskSpec("emotions-en", tuple(TWITTER_LABELS), False,
                            "English Twitter emotions, 6 classes, single label"),
}


def get_task(name: str) -> TaskSpec:
    """Return the task spec or raise a clear error listing the known tasks."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None


def map_label_matrix(y: np.ndarray, source: Sequence[str], target: Sequence[str],
                     mapping: Mapping[str, str | None]) -> np.ndarray:
    """Map a 0/1 matrix over `source` labels to one over `target` labels (logical OR of sources).

    Source labels missing from `mapping` or mapped to None are dropped.
    """
    y = np.asarray(y)
    out = np.zeros((y.shape[0], len(target)), dtype=np.int64)
    index = {name: i for i, name in enumerate(target)}
    for j, name in enumerate(source):
        dest = mapping.get(name)
        if dest is None:
            continue
        if dest not in index:
            raise ValueError(f"mapping sends {name!r} to {dest!r}, which is not one of {list(target)}")
        out[:, index[dest]] |= (y[:, j] > 0).astype(np.int64)
    return out


def ids_to_matrix(ids_per_row: Sequence[Sequence[int]], n_labels: int) -> np.ndarray:
    """Turn lists of label ids into a 0/1 matrix."""
    out = np.zeros((len(ids_per_row), n_labels), dtype=np.int64)
    for i, ids in enumerate(ids_per_row):
        for k in ids:
            out[i, int(k)] = 1
    return out
