"""Per-class budgets of augmented rows, and the planner that never exceeds them.

Counting rule: an augmented row counts toward *every* label it carries (it copies the labels of
its source row). A row is added only when every one of its labels still has budget left, so for
each class the rows added (over all methods) never exceed its budget. A consequence: a source row
that also carries a class with no budget left (e.g. joy when only fear and disgust have budgets)
is not augmented.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..data.leaks import match_key


def class_budgets(y: np.ndarray, labels: Sequence[str], budget: str | dict | None, factor: float = 2.0,
                  max_count: int | None = None) -> np.ndarray:
    """Rows to add per class.

    `budget` forms:
      {label: n, ...}        exactly these budgets (labels not named get 0);
      "auto", None or {}     target rows per class = min(max_count, factor * count), budget =
                             target - count (>= 0); max_count defaults to the largest class's count,
                             so frequent classes get little or nothing and rare ones are oversampled;
      {"auto": {"factor": f, "max_count": m}}   the same with its own factor / max_count.
    """
    counts = np.asarray(y).sum(axis=0).astype(np.int64)
    if isinstance(budget, dict) and set(budget) == {"auto"}:
        opts = dict(budget["auto"] or {})
        bad = set(opts) - {"factor", "max_count"}
        if bad:
            raise ValueError(f"budget.auto: unknown option(s) {sorted(bad)}; known: factor, max_count")
        factor, max_count, budget = opts.get("factor", factor), opts.get("max_count", max_count), "auto"
    if budget is None or budget == {} or isinstance(budget, str):
        if budget not in (None, {}, "auto"):
            raise ValueError(f"budget must be 'auto' or {{label: rows}}, got {budget!r}")
        cap = int(max_count) if max_count is not None else int(counts.max(initial=0))
        target = np.minimum(cap, np.floor(float(factor) * counts)).astype(np.int64)
        return np.maximum(target - counts, 0)
    unknown = set(budget) - set(labels)
    if unknown:
        raise ValueError(f"budget names unknown label(s) {sorted(unknown)}; labels are {list(labels)}")
    out = np.array([int(budget.get(l, 0) or 0) for l in labels], dtype=np.int64)
    if (out < 0).any():
        raise ValueError(f"budgets must be >= 0, got {budget}")
    return out


def split_quota(remaining: np.ndarray, weight: float, weight_left: float, last: bool) -> np.ndarray:
    """This method's share of the remaining budget (the last method gets all that is left)."""
    if last or weight_left <= 0:
        return remaining.copy()
    return np.minimum(remaining, np.round(remaining * (weight / weight_left)).astype(np.int64))


def fill_quota(y: np.ndarray, texts: Sequence[str], eligible: np.ndarray, quota: np.ndarray,
               transform: Callable[[list[str]], list[str | None]], seen_keys: set[str],
               rng: np.random.Generator, max_per_row: int = 1, deterministic: bool = False,
               max_rounds: int = 4) -> list[tuple[int, str]]:
    """Pick source rows and transform them until `quota` (per class) is used up or rows run out.

    Returns (source row index, new text) pairs; `quota` and `seen_keys` are updated in place.
    A new text is rejected (and does not count) when it is None or its normalised form repeats a
    text already seen. Deterministic methods use a row at most once.
    """
    y = np.asarray(y) > 0
    uses = np.zeros(len(texts), dtype=np.int64)
    limit = 1 if deterministic else max_per_row
    accepted: list[tuple[int, str]] = []
    for _ in range(max(1, max_rounds) * limit):
        if quota.sum() == 0:
            break
        tentative = quota.copy()
        plan = []
        for i in rng.permutation(np.flatnonzero(eligible & (uses < limit))):
            labs = y[i]
            if labs.any() and (tentative[labs] >= 1).all():
                plan.append(int(i))
                tentative[labs] -= 1
                if tentative.sum() == 0:
                    break
        if not plan:
            break
        outputs = transform([texts[i] for i in plan])
        progress = 0
        for i, new in zip(plan, outputs):
            uses[i] = limit if deterministic else uses[i] + 1
            if not new or not new.strip():
                continue
            key = match_key(new)
            if not key or key in seen_keys:
                continue
            labs = y[i]
            assert (quota[labs] >= 1).all(), "planner exceeded a budget"
            quota[labs] -= 1
            seen_keys.add(key)
            accepted.append((i, new))
            progress += 1
        if progress == 0 and deterministic:
            continue
    return accepted
