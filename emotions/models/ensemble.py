"""Ensembles: several trained models whose probabilities are averaged (model kind "ensemble").

Two ways to make one, both with thresholds tuned on the *averaged* tune probabilities:

    train_seed_ensemble("transformer", train_df, tune_df, spec, params, out_dir, size=3)
        # members trained with seeds seed, seed+1, seed+2 (same rows), saved in out_dir/members/<k>/
    EnsemblePredictor.from_folders([run_a / "model", run_b / "model"])
        # trained runs combined later (the submission stage's `ensemble_runs`)

Folder of a saved ensemble: `model_card.json` (kind "ensemble", thresholds, member folders relative to it)
and `members/<k>/` (each a complete model folder). Members must share task, labels and preprocessing.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..data.labels import TaskSpec
from .base import Predictor, read_model_card

if TYPE_CHECKING:                      # pandas stays out of the serving install
    import pandas as pd

MEMBERS_DIR = "members"


class EnsemblePredictor(Predictor):
    """Mean of the members' probabilities; its own thresholds (tuned on that mean)."""

    kind = "ensemble"

    def __init__(self, members: Sequence[Predictor], member_dirs: Sequence[str | Path] | None = None, **kwargs):
        members = list(members)
        if not members:
            raise ValueError("an ensemble needs at least one member")
        first = members[0]
        for i, m in enumerate(members[1:], 2):
            for what, a, b in (("labels", m.labels, first.labels), ("task", m.task, first.task),
                               ("multilabel", m.multilabel, first.multilabel),
                               ("preprocessing", m.preprocess_config.to_dict(), first.preprocess_config.to_dict())):
                if a != b:
                    raise ValueError(f"ensemble member {i} differs from member 1 in its {what}: {a!r} vs {b!r}")
        kwargs.setdefault("labels", first.labels)
        kwargs.setdefault("multilabel", first.multilabel)
        kwargs.setdefault("preprocess", first.preprocess_config)
        kwargs.setdefault("task", first.task)
        kwargs.setdefault("ensure_one", first.ensure_one)
        super().__init__(**kwargs)
        self.members = members
        self.member_dirs = [Path(d) for d in member_dirs] if member_dirs is not None else None

    @classmethod
    def from_folders(cls, folders: Sequence[str | Path]) -> "EnsemblePredictor":
        """Load trained model folders as one ensemble (thresholds: the first member's until `tune` is called)."""
        from . import load_predictor

        members = [load_predictor(f) for f in folders]
        return cls(members, folders, thresholds=members[0].thresholds)

    def predict_proba_clean(self, texts: Sequence[str]) -> np.ndarray:
        return np.mean([m.predict_proba_clean(texts) for m in self.members], axis=0)

    def member_proba(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Each member's probabilities for raw texts (preprocessed once)."""
        clean = self.preprocess(texts)
        return [m.predict_proba_clean(clean) for m in self.members]

    def card(self) -> dict:
        card = super().card()
        card["ensemble"] = {"size": len(self.members), "combine": "mean of probabilities",
                            "member_kinds": [m.kind for m in self.members],
                            "members": [f"{MEMBERS_DIR}/{k}" for k in range(len(self.members))]}
        return card

    def save_weights(self, model_dir: Path) -> None:
        """Each member as `members/<k>/` (copied unless it already lives there)."""
        for k, member in enumerate(self.members):
            target = model_dir / MEMBERS_DIR / str(k)
            source = self.member_dirs[k] if self.member_dirs is not None else None
            if source is not None and source.resolve() == target.resolve():
                continue
            if target.exists():
                shutil.rmtree(target)
            if source is not None and source.is_dir():
                shutil.copytree(source, target)
            else:
                member.save(target)


def load(model_dir: Path) -> EnsemblePredictor:
    from . import load_predictor

    card = read_model_card(model_dir)
    folders = [Path(model_dir) / rel for rel in card["ensemble"]["members"]]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        raise FileNotFoundError(f"{model_dir}: ensemble member folder(s) missing: {missing}")
    members = [load_predictor(f) for f in folders]
    return EnsemblePredictor(members, folders, **Predictor.card_kwargs(card))


def train(train_df: pd.DataFrame, tune_df: pd.DataFrame | None, spec: TaskSpec, params: dict,
          out_dir: Path) -> EnsemblePredictor:
    """params: {"kind": member kind, "size": members, "options": the kind's options (incl. seed)}."""
    return train_seed_ensemble(params["kind"], train_df, tune_df, spec, dict(params.get("options") or {}), out_dir,
                               int(params.get("size", 2)))


def train_seed_ensemble(kind: str, train_df: pd.DataFrame, tune_df: pd.DataFrame | None, spec: TaskSpec,
                        params: dict, out_dir: str | Path, size: int) -> EnsemblePredictor:
    """Train `size` models of `kind` on the same rows with seeds seed, seed+1, ... into out_dir/members/<k>/;
    average their probabilities and tune the thresholds on the averaged tune probabilities."""
    from . import train_model

    if kind == EnsemblePredictor.kind:
        raise ValueError("an ensemble's members cannot be ensembles")
    if size < 1:
        raise ValueError(f"ensemble size must be at least 1, got {size}")
    out_dir = Path(out_dir)
    seed = int(params.get("seed", 42))
    members, dirs = [], []
    for k in range(size):
        member_dir = out_dir / MEMBERS_DIR / str(k)
        members.append(train_model(kind, train_df, tune_df, spec, {**params, "seed": seed + k}, member_dir))
        dirs.append(member_dir)
    predictor = EnsemblePredictor(members, dirs, params={"kind": kind, "size": size, "seeds": [seed + k for k in
                                                                                                range(size)]})
    if tune_df is not None and len(tune_df):
        predictor.tune(tune_df)
    predictor.save(out_dir)
    return predictor
