"""Project paths and data-root layout, defined once."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT: Path = Path(__file__).resolve().parents[2]
CONFIGS_DIR: Path = PROJECT_ROOT / "configs"
NOTEBOOKS_DIR: Path = PROJECT_ROOT / "notebooks"
RUNS_DIR: Path = PROJECT_ROOT / "runs"
IMG_DIR: Path = Path(os.environ.get("EMOTIONS_IMG_DIR", PROJECT_ROOT / "img"))  # figures gallery
SUBMISSIONS_DIR: Path = PROJECT_ROOT / "submissions"
MODELS_DIR: Path = PROJECT_ROOT / "models"          # converted / downloaded encoders (git-ignored)
CACHE_DIR: Path = PROJECT_ROOT / ".cache"           # e.g. back-translation cache (git-ignored)
DEMO_DATA_DIR: Path = PROJECT_ROOT / "data" / "demo"
RESOURCES_DIR: Path = PROJECT_ROOT / "emotions" / "resources"

# Layout of a data root (same as ../shared/data): relative file paths per source.
CRYPTONITE_TRAIN = "cryptonite/train.csv"
CRYPTONITE_VALID = "cryptonite/valid.csv"
CRYPTONITE_TEST = "cryptonite/test_without_answers.csv"
IZARD_SPLITS = {"train": "ru-izard-emotions/train.csv", "val": "ru-izard-emotions/val.csv",
                "test": "ru-izard-emotions/test.csv"}
CEDR_SPLITS = {"train": "cedr/train.csv", "test": "cedr/test.csv"}
GOEMOTIONS_EKMAN = "goemotions-en/ekman_train.tsv"
TWITTER_CSV = "emotions-en/emotions.csv"

# Kaggle competition id (for the optional `--submit`)
KAGGLE_COMPETITION = "cryptonite-hack-sf"
