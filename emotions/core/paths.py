"""Project paths and data-root layout, defined once."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT: Path = Path(__file__).resolve().parents[2]
CONFIGS_DIR: Path = PROJECT_ROOT / "configs"
NOTEBOOKS_DIR: Path = PROJECT_ROOT / "notebooks"


def work_root(project: Path = PROJECT_ROOT) -> Path:
    """Where derived files (converted encoders, caches, figures) go: the checkout, or Kaggle's
    working folder when the package lies read-only (e.g. attached as a dataset in /kaggle/input)."""
    working = Path(os.environ.get("EMOTIONS_KAGGLE_ROOT") or "/kaggle") / "working"
    return working if not os.access(project, os.W_OK) and working.is_dir() else project


WORK_ROOT: Path = work_root()
RUNS_DIR: Path = PROJECT_ROOT / "runs"
IMG_DIR: Path = Path(os.environ.get("EMOTIONS_IMG_DIR", WORK_ROOT / "img"))  # figures gallery
SUBMISSIONS_DIR: Path = PROJECT_ROOT / "submissions"
MODELS_DIR: Path = WORK_ROOT / "models"             # converted / downloaded encoders (git-ignored)
CACHE_DIR: Path = WORK_ROOT / ".cache"              # e.g. back-translation cache (git-ignored)
DEMO_DATA_DIR: Path = PROJECT_ROOT / "data" / "demo"
RESOURCES_DIR: Path = PROJECT_ROOT / "emotions" / "resources"
# The project's own written spoken-style utterances (data/utterances/README.md): train/*.csv, eval/*.csv
UTTERANCES_DIR: Path = Path(os.environ.get("EMOTIONS_UTTERANCES_DIR", PROJECT_ROOT / "data" / "utterances"))

# Layout of a data root (same as ../shared/data): relative file paths per source.
CRYPTONITE_TRAIN = "cryptonite/train.csv"
CRYPTONITE_VALID = "cryptonite/valid.csv"
CRYPTONITE_TEST = "cryptonite/test_without_answers.csv"
IZARD_SPLITS = {"train": "ru-izard-emotions/train.csv", "val": "ru-izard-emotions/val.csv",
                "test": "ru-izard-emotions/test.csv"}
CEDR_SPLITS = {"train": "cedr/train.csv", "test": "cedr/test.csv"}
GOEMOTIONS_EKMAN = "goemotions-en/ekman_train.tsv"
GOEMOTIONS_ORIGINAL = "goemotions-en/original_train.tsv"   # same rows, the 28 fine labels
TWITTER_CSV = "emotions-en/emotions.csv"

# Row counts that loading checks (`common.expected_test_rows: auto`). A data root may declare its
# own in `<task folder>/dataset.yaml` (`rows: {test_without_answers.csv: 150}`); otherwise these,
# the counts of the real files, apply.
DATASET_INFO = "dataset.yaml"
KNOWN_ROW_COUNTS: dict[str, int] = {CRYPTONITE_TEST: 8742}

# Kaggle competition id (for the optional `--submit`)
KAGGLE_COMPETITION = "cryptonite-hack-sf"
