"""emotions: emotion classification for short texts, from raw CSVs to a Kaggle submission."""

__version__ = "0.1.0"
