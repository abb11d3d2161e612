"""The ablation's configurations: name -> config overrides on top of "no extension, no augmentation".

Kept apart from emotions.pipeline.ablation (which runs them) so the schema can check `ablation.configs`
without importing the pipeline (no import circle).
"""

from __future__ import annotations

from ..augment import METHOD_ORDER as METHODS

RARE = ["fear", "disgust", "sadness"]


def src(**sources: dict) -> dict:
    """Overrides switching on extension sources (with their options)."""
    return {"extend": {"sources": {k: {"enabled": True, **v} for k, v in sources.items()}}}


def aug(*methods: str) -> dict:
    """Overrides switching on augmentation with these methods (auto budget: each class up to 2x its rows)."""
    return {"augment": {"enabled": True, "methods": {m: {"enabled": m in methods} for m in METHODS}}}


# name -> config overrides on top of "no extension, no augmentation"
CONFIGS: dict[str, dict] = {
    "train only": {},
    "+izard": src(izard={}),
    "+izard (NO leak control)": {"extend": {**src(izard={})["extend"], "leak": {"enabled": False}}},
    "+izard fear/disgust/sadness rows": src(izard={"select_labels": RARE}),
    "+cedr": src(cedr={}),
    "+izard +cedr": src(izard={}, cedr={}),
    "+aug backtranslation": aug("backtranslation"),
    "+aug synonyms": aug("synonyms"),
    "+aug asr_noise": aug("asr_noise"),
    "+aug synonyms+asr_noise": aug("synonyms", "asr_noise"),
    "+izard +aug asr_noise": {**src(izard={}), **aug("asr_noise")},
    "+utterances": src(utterances={}),
    "+utterances +izard fear/disgust/sadness rows": src(utterances={}, izard={"select_labels": RARE}),
}
