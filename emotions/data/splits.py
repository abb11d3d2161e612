"""Seeded, stratified splits (multilabel rows are stratified on their rarest label)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd


def stratify_key(y: np.ndarray) -> np.ndarray:
    """One class per row: for multilabel rows the rarest positive label, -1 for rows with none."""
    y = np.asarray(y)
    if y.ndim == 1:
        return y
    freq = y.sum(axis=0).astype(float)
    rarity = np.where(y > 0, freq[None, :], np.inf)
    key = rarity.argmin(axis=1)
    key[~(y > 0).any(axis=1)] = -1
    return key


def split_frame(df: pd.DataFrame, fractions: dict[str, float], seed: int,
                label_cols: Sequence[str] | str | None = None) -> dict[str, pd.DataFrame]:
    """Split rows into named parts with the given fractions (summing to 1), stratified where possible.

    Within each stratum rows are shuffled with `seed` and cut by the fractions, so every
    part gets its share of each class (parts of a tiny stratum may get none).
    """
    total = sum(fractions.values())
    if not np.isclose(total, 1.0):
        raise ValueError(f"split fractions must sum to 1, got {fractions} (sum {total})")
    rng = np.random.default_rng(seed)
    if label_cols is None:
        keys = np.zeros(len(df), dtype=int)
    elif isinstance(label_cols, str):
        keys = pd.factorize(df[label_cols])[0]
    else:
        keys = stratify_key(df[list(label_cols)].to_numpy())
    names = list(fractions)
    cum = np.cumsum([fractions[n] for n in names])
    assignment = np.empty(len(df), dtype=object)
    offset = rng.random()  # rotates rounding so small strata do not always feed the first part
    for k in np.unique(keys):
        idx = np.flatnonzero(keys == k)
        idx = idx[rng.permutation(len(idx))]
        pos = (np.arange(len(idx)) + offset) / len(idx)
        part = np.searchsorted(cum, pos, side="right").clip(max=len(names) - 1)
        for i, p in zip(idx, part):
            assignment[i] = names[p]
    return {n: df[assignment == n].reset_index(drop=True) for n in names}
