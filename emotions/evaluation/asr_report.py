"""Clean and ASR-style scores side by side: the comparison table and the per-class figure of the evaluate stage."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from ..augment.asr_render import ASR_SUFFIX
from .plots import plt


def asr_pairs(metrics: Mapping) -> list[str]:
    """The clean splits in `metrics` that have an ASR-style twin (`holdout` when `holdout_asr` is there)."""
    return [k for k in metrics if isinstance(metrics.get(k), dict) and isinstance(metrics.get(k + ASR_SUFFIX), dict)]


def clean_vs_asr_table(metrics: Mapping, headline: Sequence[str]) -> pd.DataFrame:
    """One row per split with a twin; for each headline metric: clean, ASR-style and their difference."""
    rows = {}
    for split in asr_pairs(metrics):
        row = {}
        for h in headline:
            clean, asr = metrics[split].get(h), metrics[split + ASR_SUFFIX].get(h)
            row[(h, "clean")], row[(h, "asr")] = clean, asr
            row[(h, "asr - clean")] = None if clean is None or asr is None else asr - clean
        rows[split] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def plot_clean_vs_asr(metrics: Mapping, split: str = "holdout", score: str = "f1",
                      out_path: str | Path | None = None):
    """Per-class `score` on the clean split and on its ASR-style rendering, as grouped bars (seaborn)."""
    import seaborn as sns

    twin = split + ASR_SUFFIX
    if split not in metrics or twin not in metrics or "per_class" not in metrics[split]:
        raise KeyError(f"plot_clean_vs_asr: metrics need per-class scores for {split!r} and {twin!r}")
    rows = [{"class": label, "text": kind, score: scores[score]}
            for kind, name in (("clean", split), ("ASR-style", twin))
            for label, scores in metrics[name]["per_class"].items()]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    sns.barplot(data=pd.DataFrame(rows), x="class", y=score, hue="text", ax=ax, palette=["#4c72b0", "#dd8452"])
    ax.set_ylim(0, 1)
    ax.set_title(f"{split}: per-class {score.upper() if len(score) <= 3 else score}, clean vs ASR-style text")
    ax.set_xlabel("")
    ax.legend(title=None, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.08), frameon=False)
    fig.tight_layout()
    if out_path is not None:
        fig.savefig(out_path, dpi=110, bbox_inches="tight")
    return fig
