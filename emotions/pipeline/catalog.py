"""The datasets that pass between stages, named once: name -> file in the run folder (or the data root).

A stage function (`emotions.pipeline.stages`) takes named inputs and returns named outputs; a catalog turns
a name into a value. `RunCatalog` reads and writes the run folder's files and records each one on the
notebook's `Stage` (so the manifest lists them with their hashes); `MemoryCatalog` keeps values in a dict
(the in-memory chain `stages.run_chain`, the ablation, the sweeps). Kedro's DataCatalog, reduced to
what this project needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from ..core.io import read_json, write_csv_atomic, write_json_atomic
from ..core.paths import CACHE_DIR, CRYPTONITE_TEST, CRYPTONITE_VALID

Kind = Literal["csv", "json", "folder", "data_root", "data_file", "utterances"]


@dataclass(frozen=True)
class Dataset:
    """One named dataset: where it lives (relative to the run folder, or to the data root for `data_file`)
    and how it is read and written."""

    path: str
    kind: Kind   # csv and json are read into frames / dicts; folders and data files are handed over as paths
    doc: str = ""


SPLITS = ("train", "tune", "holdout", "test", "tune_utterances", "holdout_utterances")

CATALOG: dict[str, Dataset] = {
    "data_root": Dataset("", "data_root", "the data root (layout of ../shared/data)"),
    "test_file": Dataset(CRYPTONITE_TEST, "data_file", "the competition's test file (labels 0)"),
    "valid_file": Dataset(CRYPTONITE_VALID, "data_file", "the competition's labelled valid file"),
    "utterances": Dataset("", "utterances", "the project's written spoken-style utterances (data/utterances/)"),
    **{name: Dataset(f"data/{name}.csv", "csv", f"the {name} split") for name in SPLITS},
    "extension_report": Dataset("extension_report.json", "json", "rows each extension source added or lost"),
    "train_aug": Dataset("data/train_aug.csv", "csv", "training rows after augmentation"),
    "augment_report": Dataset("augment_report.json", "json", "rows each augmentation method added"),
    "label_issues": Dataset("label_issues.csv", "csv", "likely label errors in the training rows"),
    "self_training": Dataset("self_training.json", "json", "pseudo-labelled test rows per round"),
    "model": Dataset("model", "folder", "the trained model folder (model card, weights)"),
    "metrics": Dataset("metrics.json", "json", "scores per labelled split"),
    "predictions_tune": Dataset("predictions/tune.csv", "csv", "per-text gold, predicted labels, probabilities"),
    "predictions_holdout": Dataset("predictions/holdout.csv", "csv", "per-text gold, predicted labels, probabilities"),
    "test_populations": Dataset("test_populations.csv", "csv", "each test text's population (comment/utterance)"),
    "ensemble": Dataset("ensemble.json", "json", "the runs averaged for the submission"),
    "submission": Dataset("submission.csv", "csv", "this run's submission"),
    "export": Dataset("export", "folder", "ONNX fp32 + int8 export and its parity report"),
    "ablation": Dataset("ablation.json", "json", "the ablation's rows and table"),
}


def dataset(name: str) -> Dataset:
    """The catalog entry `name`; a clear error for an unknown name."""
    if name not in CATALOG:
        raise KeyError(f"unknown dataset {name!r}; the catalog has {sorted(CATALOG)}")
    return CATALOG[name]


def _read(entry: Dataset, path: Path) -> Any:
    if entry.kind == "csv":
        return pd.read_csv(path, keep_default_na=False)
    if entry.kind == "json":
        return read_json(path)
    return path


def _write(entry: Dataset, path: Path, value: Any) -> None:
    if entry.kind == "csv":
        write_csv_atomic(path, value)
    elif entry.kind == "json":
        write_json_atomic(path, value)
    # a folder is written by its producer (a model saves itself there); the catalog only names it


class MemoryCatalog:
    """Values in a dict; folders under `out_dir` (a temporary place for models)."""

    def __init__(self, data_root: str | Path, out_dir: str | Path, values: dict[str, Any] | None = None,
                 cache_dir: Path = CACHE_DIR):
        self.data_root, self.out_dir, self.cache_dir = Path(data_root), Path(out_dir), Path(cache_dir)
        self.values: dict[str, Any] = dict(values or {})

    def path(self, name: str) -> Path:
        """Where the folder output `name` is written."""
        return self.out_dir / dataset(name).path if name != "model" else self.out_dir

    def exists(self, name: str) -> bool:
        return name in self.values or dataset(name).kind in ("data_root", "data_file", "utterances")

    def load(self, name: str) -> Any:
        entry = dataset(name)
        if name in self.values:
            return self.values[name]
        if entry.kind in ("data_root", "utterances"):
            return self._root(entry)
        if entry.kind == "data_file":
            return self.data_root / entry.path
        raise KeyError(f"dataset {name!r} has not been produced yet")

    def save(self, name: str, value: Any) -> None:
        dataset(name)
        self.values[name] = value

    def _root(self, entry: Dataset) -> Path:
        from ..data.utterances import utterances_root

        return self.data_root if entry.kind == "data_root" else utterances_root(self.data_root)


class RunCatalog(MemoryCatalog):
    """The run folder's files, each read or written recorded on `stage` (its manifest's inputs/outputs)."""

    def __init__(self, stage, data_root: str | Path):
        super().__init__(data_root, stage.run_dir)
        self.stage = stage

    def path(self, name: str) -> Path:
        """Where a folder output is written (declared on the stage when it is saved)."""
        path = self.stage.run_dir / dataset(name).path
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def exists(self, name: str) -> bool:
        entry = dataset(name)
        if entry.kind in ("data_root", "utterances"):
            return True
        base = self.data_root if entry.kind == "data_file" else self.stage.run_dir
        return (base / entry.path).exists()

    def load(self, name: str) -> Any:
        entry = dataset(name)
        if entry.kind in ("data_root", "utterances"):
            return self.stage.input(name, self._root(entry))
        if entry.kind == "data_file":
            return self.stage.input(name, self.data_root / entry.path)
        return _read(entry, self.stage.input(name, entry.path))

    def save(self, name: str, value: Any) -> None:
        entry = dataset(name)
        path = self.stage.output(name, entry.path)
        _write(entry, path, value)
