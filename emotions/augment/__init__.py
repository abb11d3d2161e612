"""Training-set augmentation with per-class budgets: back-translation, synonyms, ASR noise.

    frame, report = augment_training_set(train, labels=CRYPTONITE_LABELS, params=params, seed=0,
                                         cache_dir=CACHE_DIR)

Augmented rows copy the labels of their source row and get `source = "aug:<method>"`. Budgets
(rows added per class, all methods together) are never exceeded: a row counts toward each of its
labels (see emotions.augment.budget). Methods run in the order back-translation, synonyms, ASR
noise; each gets its weight's share of the budget still left, so what a skipped or exhausted
method leaves goes to the later ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import copy
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..data.fine_labels import aux_columns
from ..data.leaks import match_keys
from .asr_noise import ASR_NOISE_DEFAULTS, AsrNoise
from .backtranslate import (DEFAULT_BACKWARD, DEFAULT_FORWARD, BackTranslator, CachedTranslator,
                            MarianTranslator, Translator, TranslatorUnavailable, make_back_translator)
from .budget import class_budgets, fill_quota, split_quota
from .synonyms import NavecNeighbours, SynonymReplacer, is_russian, wordnet_synonyms

log = logging.getLogger(__name__)

METHOD_ORDER = ["backtranslation", "synonyms", "asr_noise"]
AUGMENT_DEFAULTS: dict[str, Any] = {
    "budget": "auto",          # {label: rows to add} (others 0), or "auto" / None / {} / {"auto": {factor, max_count}}
    "factor": 2.0,             # auto: target rows per class = min(max_count, factor * count)
    "max_count": None,         # auto: cap of the target; None = the largest class's count
    "from_sources": None,      # augment only rows whose `source` is in this list (None: all rows)
    "methods": {
        "backtranslation": {
            "enabled": True, "weight": 1.0,
            "forward": DEFAULT_FORWARD, "backward": DEFAULT_BACKWARD,   # HF ids or local folders
            "batch_size": 16, "max_length": 256, "num_beams": 1, "device": "cpu",
            "allow_download": True,                                    # try the hub when not cached
        },
        "synonyms": {
            "enabled": True, "weight": 1.0, "max_per_row": 2,
            "p": 0.2, "max_replacements": 2,                           # per eligible word / per text
            "vocab_size": 50_000, "top_k": 5, "min_similarity": 0.55, "emotion_similarity": 0.45,
            "english": True,                                           # WordNet for English rows
        },
        "asr_noise": {"enabled": True, "weight": 1.0, "max_per_row": 2, **ASR_NOISE_DEFAULTS},
    },
}


def augment_params(params: dict | None) -> dict:
    """Params with defaults filled in (methods merged key by key); unknown keys raise."""
    out = copy.deepcopy(AUGMENT_DEFAULTS)
    params = dict(params or {})
    unknown = set(params) - set(out)
    if unknown:
        raise ValueError(f"unknown augmentation option(s) {sorted(unknown)}; known: {sorted(out)}")
    methods = params.pop("methods", None) or {}
    out.update(params)
    for name, cfg in methods.items():
        if name not in out["methods"]:
            raise ValueError(f"unknown augmentation method {name!r}; known: {METHOD_ORDER}")
        cfg = {"enabled": cfg} if isinstance(cfg, bool) else dict(cfg or {})
        bad = set(cfg) - set(out["methods"][name])
        if bad:
            raise ValueError(f"methods.{name}: unknown option(s) {sorted(bad)}; known: {sorted(out['methods'][name])}")
        out["methods"][name].update(cfg)
    return out


def _make_method(name: str, cfg: dict, seed: int, cache_dir: Path | None, translators: dict | None):
    """(transform, eligible(text) -> bool, deterministic) or None with one log line when unavailable."""
    if name == "backtranslation":
        bt = make_back_translator(cfg, cache_dir, translators)
        return bt, is_russian, True
    if name == "synonyms":
        russian = None
        try:
            russian = NavecNeighbours(vocab_size=cfg["vocab_size"], top_k=cfg["top_k"],
                                      min_similarity=cfg["min_similarity"],
                                      emotion_similarity=cfg["emotion_similarity"])
        except Exception as e:  # natasha / navec missing
            log.warning("synonyms (ru): navec embeddings from natasha not available (%s); skipped", e)
        english = wordnet_synonyms() if cfg["english"] else None
        if russian is None and english is None:
            return None
        rep = SynonymReplacer(russian=russian, english=english, p=cfg["p"],
                              max_replacements=cfg["max_replacements"], seed=seed)
        return rep, rep.can_handle, False
    if name == "asr_noise":
        noise = AsrNoise(seed=seed, **{k: cfg[k] for k in ASR_NOISE_DEFAULTS})
        return noise, is_russian, False
    raise ValueError(name)


def augment_training_set(train: pd.DataFrame, *, labels: Sequence[str], params: dict | None, seed: int = 0,
                         cache_dir: Path | None, translators: dict[str, Translator] | None = None
                         ) -> tuple[pd.DataFrame, dict]:
    """Add augmented rows to `train` within per-class budgets; return (frame, report).

    `params`: see AUGMENT_DEFAULTS (merged key by key). `cache_dir`: where the back-translation
    cache lives (None: no cache). `translators`: {"forward": T, "backward": T} to use instead of
    MarianMT (tests, other engines). Output: `train` rows (with `source`, "train" if it had none)
    then the new rows; `train`'s `aux_*` columns (fine labels) are kept, a new row gets its original's.
    """
    labels = list(labels)
    p = augment_params(params)
    base, aux = _base_rows(train, labels)
    y = base[labels].to_numpy(dtype=np.int64)
    texts = base["text"].astype(str).tolist()
    budget = class_budgets(y, labels, p["budget"], p["factor"], p["max_count"])
    remaining = budget.copy()
    seen = set(match_keys(texts))
    from_ok = np.ones(len(base), dtype=bool) if p["from_sources"] is None else \
        base["source"].isin(list(p["from_sources"])).to_numpy()
    enabled = [m for m in METHOD_ORDER if p["methods"][m]["enabled"]]
    report: dict[str, Any] = {
        "labels": labels, "params": p, "seed": seed,
        "rows_before": len(base), "label_counts_before": dict(zip(labels, y.sum(axis=0).tolist())),
        "budget": dict(zip(labels, budget.tolist())), "methods": {},
    }
    new_frames = []
    for k, name in enumerate(enabled):
        cfg = p["methods"][name]
        weight_left = sum(p["methods"][m]["weight"] for m in enabled[k:])
        quota = split_quota(remaining, cfg["weight"], weight_left, last=(k == len(enabled) - 1))
        method = _Method(name, cfg, k, seed, labels)
        report["methods"][name] = method.report(quota)
        pairs = method.fill(quota, y, texts, from_ok, seen, cache_dir, translators)
        remaining -= np.array(list(method.rep["added_per_class"].values()), dtype=remaining.dtype)
        assert (remaining >= 0).all()
        if pairs:
            frame = base.iloc[[i for i, _ in pairs]][[*labels, *aux]].reset_index(drop=True)
            frame.insert(0, "text", [t for _, t in pairs])
            frame["source"] = f"aug:{name}"
            new_frames.append(frame)
    out = pd.concat([base, *new_frames], ignore_index=True)[["text", *labels, "source", *aux]]
    for l in labels:
        out[l] = out[l].astype(np.int64)
    report.update(rows_after=len(out), rows_added=len(out) - len(base),
                  added_per_class=dict(zip(labels, (budget - remaining).tolist())),
                  label_counts_after=dict(zip(labels, out[labels].sum(axis=0).astype(int).tolist())),
                  budget_left=dict(zip(labels, remaining.tolist())))
    return out, report


def _base_rows(train: pd.DataFrame, labels: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """`train`'s text, labels, source ("train" when it has none) and fine-label columns (copied to variants)."""
    missing = [c for c in ["text", *labels] if c not in train.columns]
    if missing:
        raise ValueError(f"training frame lacks column(s) {missing}")
    aux = aux_columns(train)
    base = train[["text", *labels]].copy().reset_index(drop=True)
    base["source"] = train["source"].to_numpy() if "source" in train.columns else "train"
    for c in aux:
        base[c] = train[c].to_numpy()
    return base, aux


@dataclass
class _Method:
    """One augmentation method's turn: its quota filled from eligible rows, and its report."""

    name: str
    cfg: dict
    k: int             # its place among the enabled methods (seeds its randomness)
    seed: int
    labels: list[str]
    rep: dict = field(default_factory=dict)

    def report(self, quota: np.ndarray) -> dict:
        self.rep = {"status": "ok", "quota": dict(zip(self.labels, quota.tolist())), "rows_added": 0,
                    "added_per_class": dict.fromkeys(self.labels, 0)}
        return self.rep

    def fill(self, quota: np.ndarray, y: np.ndarray, texts: list[str], from_ok: np.ndarray, seen: set,
             cache_dir: Path | None, translators) -> list[tuple[int, str]]:
        """(source row, new text) pairs; `quota` is decreased by what was made."""
        if quota.sum() == 0:
            self.rep["status"] = "nothing to do (no budget left)"
            return []
        made = _make_method(self.name, self.cfg, self.seed + 1000 * (self.k + 1), cache_dir, translators)
        if made is None:
            self.rep["status"] = "skipped: not available"
            return []
        transform, eligible_fn, deterministic = made
        eligible = from_ok & np.array([eligible_fn(t) for t in texts], dtype=bool)
        before = quota.copy()
        rng = np.random.default_rng(self.seed + 17 * (self.k + 1))
        pairs = fill_quota(y, texts, eligible, quota, transform, seen, rng,
                           max_per_row=int(self.cfg.get("max_per_row", 1)), deterministic=deterministic)
        if getattr(transform, "unavailable", None):
            self.rep["status"] = f"skipped: {transform.unavailable}"
        used = before - quota
        self.rep.update(rows_added=len(pairs), added_per_class=dict(zip(self.labels, used.tolist())))
        if isinstance(transform, BackTranslator):
            self.rep["model_calls"] = {"forward": getattr(transform.forward, "model_calls", None),
                                       "backward": getattr(transform.backward, "model_calls", None)}
        log.info("augmentation %s: %d rows added (%s)", self.name, len(pairs),
                 ", ".join(f"{l} {n}" for l, n in zip(self.labels, used) if n))
        return pairs


__all__ = ["AUGMENT_DEFAULTS", "AsrNoise", "BackTranslator", "CachedTranslator", "MarianTranslator",
           "SynonymReplacer", "Translator", "TranslatorUnavailable", "augment_params", "augment_training_set",
           "class_budgets"]
