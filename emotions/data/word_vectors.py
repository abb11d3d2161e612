"""Pretrained Russian word vectors: navec (the 300-d news embeddings bundled with `natasha`).

    nv = load_navec()                       # cached; no download, the file ships in natasha
    nv.get("привет")                        # 300-d vector or None
    m = embedding_matrix(tokenizer.vocabulary(), 300)   # rows for an Embedding layer
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import numpy as np

log = logging.getLogger(__name__)

NAVEC_ENV = "EMOTIONS_NAVEC_PATH"  # optional override: another navec .tar file


class WordVectorsUnavailable(RuntimeError):
    """The navec package or its embeddings file cannot be found."""


def navec_path() -> Path:
    """The navec file: $EMOTIONS_NAVEC_PATH, else the one inside natasha's package data."""
    override = os.environ.get(NAVEC_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise WordVectorsUnavailable(f"{NAVEC_ENV}={override} is not a file")
        return path
    try:
        from natasha.data import NEWS_EMBEDDING
    except ImportError as e:
        raise WordVectorsUnavailable(
            f"natasha is not installed ({e}); `pip install natasha` or set {NAVEC_ENV} to a navec .tar file") from None
    path = Path(NEWS_EMBEDDING)
    if not path.is_file():
        raise WordVectorsUnavailable(f"natasha's navec file {path} is missing; reinstall natasha "
                                     f"or set {NAVEC_ENV} to a navec .tar file")
    return path


def navec_available() -> bool:
    try:
        import navec  # noqa: F401
        navec_path()
        return True
    except (ImportError, WordVectorsUnavailable):
        return False


@lru_cache(maxsize=2)
def _load(path: str):
    try:
        from navec import Navec
    except ImportError:
        raise WordVectorsUnavailable("the navec package is not installed (`pip install navec`)") from None
    nv = Navec.load(path)
    log.info("loaded navec %s: %d words, %d-d", nv.meta.id, len(nv.vocab.words), nv.pq.dim)
    return nv


def load_navec(path: str | Path | None = None):
    """The navec embeddings (a `navec.Navec`), loaded once per path."""
    return _load(str(Path(path) if path else navec_path()))


def lookup(nv, word: str) -> np.ndarray | None:
    """The vector of `word`, trying its lowercase and е/ё variants; None if unknown."""
    for w in dict.fromkeys((word, word.lower(), word.lower().replace("ё", "е"))):
        v = nv.get(w)
        if v is not None:
            return v
    return None


def embedding_matrix(vocab: Mapping[str, int], dim: int | None = None, *, nv=None, seed: int = 0,
                     pad_index: int | None = 0, oov_token: str | None = "<OOV>",
                     n_rows: int | None = None) -> np.ndarray:
    """Rows for an Embedding layer: row `i` is the navec vector of the word with index `i`.

    Words navec does not know get random normal rows with navec's per-dimension spread
    (seeded); the padding row is zeros; the OOV token's row is navec's `<unk>`.
    `n_rows` defaults to max index + 1. `dim` must match navec's (300) when given.
    """
    nv = nv if nv is not None else load_navec()
    nv_dim = int(nv.pq.dim)
    if dim is not None and int(dim) != nv_dim:
        raise ValueError(f"navec vectors are {nv_dim}-d, asked for {dim}-d")
    n_rows = n_rows if n_rows is not None else max(vocab.values(), default=0) + 1
    rng = np.random.default_rng(seed)
    ids = rng.choice(nv.pq.vectors, size=min(5000, nv.pq.vectors), replace=False)
    sample = nv.pq.sampled(ids).unpack()
    mean, std = sample.mean(axis=0), sample.std(axis=0)
    out = (mean + rng.standard_normal((n_rows, nv_dim)) * std).astype(np.float32)
    hits = 0
    for word, i in vocab.items():
        if i >= n_rows:
            continue
        key = "<unk>" if oov_token is not None and word == oov_token else word
        v = lookup(nv, key)
        if v is not None:
            out[i] = v
            hits += word != oov_token
    if pad_index is not None and pad_index < n_rows:
        out[pad_index] = 0.0
    n_words = sum(1 for w, i in vocab.items() if i < n_rows and w != oov_token)
    log.info("navec covers %d of %d vocabulary words (%.1f%%)", hits, n_words, 100 * hits / max(n_words, 1))
    return out


def coverage(vocab: Mapping[str, int], nv=None) -> float:
    """Share of vocabulary words (OOV token excluded) that navec knows."""
    nv = nv if nv is not None else load_navec()
    words = [w for w in vocab if not (w.startswith("<") and w.endswith(">"))]
    return sum(lookup(nv, w) is not None for w in words) / max(len(words), 1)
