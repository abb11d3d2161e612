"""Leak control for extra training data: exact duplicates and near copies of protected texts.

ru-izard-emotions holds other Russian translations of the Reddit comments (GoEmotions) that the
competition's valid and test texts come from. A row of an extension set that is another
translation of a valid/test comment would leak its answer into training, so every extension row
is compared with every protected text (valid / tune / holdout / test) and dropped when it is a
near copy.

Similarity: cosine of character n-gram TF-IDF vectors (`char_wb`, 3-5 grams, sublinear tf) of
the ASR-normalised texts (`normalize_asr`: lowercase, no punctuation, ё->е), so a punctuated
translation and an ASR transcript of the same comment compare well. The nearest protected text of
every row is found with sparse matrix products in row chunks (24.9k x 14.2k in ~15 s on 2 cores).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from .preprocess import normalize_asr

log = logging.getLogger(__name__)

# Chosen with benchmarks/leak_threshold.py: 151 ru-izard rows sampled (stratified by similarity) and
# 257 pairs (row, its nearest cryptonite valid/test text under each rule) judged by hand in
# benchmarks/leak_pairs_labelled.tsv; precision / recall are weighted estimates over all 24,891
# ru-izard rows, of which ~3,450 (14%) are other translations of valid/test comments.
#   rule (threshold, min_length_ratio)   precision  recall  rows flagged
#   0.45, 0.6                            0.62       0.99    5903
#   0.50, 0.6   <- default               0.70       0.97    5050
#   0.55, 0.6                            0.75       0.89    4357
#   0.60, 0.6                            0.79       0.82    3727
#   0.50, 0.0 (no length gate)           0.55       0.97    6135
#   0.70, 0.0                            0.77       0.65    2920
# A false flag costs one extension row; a missed leak puts a valid/test answer into training, so
# the rule leans to recall. Most remaining false flags are short generic phrases ("Понятно." vs
# "понятно спасибо"), cheap to lose.
DEFAULT_NEAR_COPY_THRESHOLD: float = 0.50
DEFAULT_NGRAM_RANGE: tuple[int, int] = (3, 5)
DEFAULT_CHUNK_SIZE: int = 2000
# Pairs whose normalised lengths differ more than this ratio (shorter / longer) never count as near
# copies: a short phrase contained in a long, different comment ("серьезно" vs a paragraph with
# "серьезно") has a high n-gram cosine but is not a copy. Two translations of one comment have
# similar lengths (all 63 judged same-comment pairs have ratio >= 0.69).
DEFAULT_MIN_LENGTH_RATIO: float = 0.6

# Leak options (the `leak` dict of emotions.data.extend.extend_training_set) and their defaults.
LEAK_DEFAULTS: dict = {
    "enabled": True,                 # False: no duplicate or near-copy filtering at all
    "exact_duplicates": True,        # drop normalised duplicates (within the extension, vs train)
    "near_copies": True,             # drop near copies of protected texts
    "threshold": DEFAULT_NEAR_COPY_THRESHOLD,
    "min_length_ratio": DEFAULT_MIN_LENGTH_RATIO,
    "ngram_range": list(DEFAULT_NGRAM_RANGE),
    "chunk_size": DEFAULT_CHUNK_SIZE,
    "max_examples": 5,               # dropped near copies shown per source in the report
}


def leak_options(leak: dict | None) -> dict:
    """Leak options with defaults filled in; unknown keys raise."""
    opts = dict(LEAK_DEFAULTS)
    unknown = set(leak or {}) - set(LEAK_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown leak option(s) {sorted(unknown)}; known: {sorted(LEAK_DEFAULTS)}")
    opts.update(leak or {})
    if not 0.0 < float(opts["threshold"]) <= 1.0:
        raise ValueError(f"leak threshold must be in (0, 1], got {opts['threshold']!r}")
    return opts


def match_key(text: str) -> str:
    """The form texts are compared in (ASR-style normalisation)."""
    return normalize_asr(str(text))


def match_keys(texts: Iterable[str]) -> list[str]:
    return [match_key(t) for t in texts]


def duplicate_mask(texts: Sequence[str], against: Iterable[str] = (), *,
                   seen_keys: set[str] | None = None) -> np.ndarray:
    """True for texts whose normalised form is in `against` (or `seen_keys`) or repeats an earlier text."""
    seen = set(match_keys(against)) | set(seen_keys or ())
    out = np.zeros(len(texts), dtype=bool)
    for i, key in enumerate(match_keys(texts)):
        if key in seen:
            out[i] = True
        else:
            seen.add(key)
    return out


@dataclass
class NearestMatch:
    """For each query text: its most similar protected text (index) and the cosine similarity."""

    similarity: np.ndarray   # float32, shape (n_queries,); 0 where nothing shares an n-gram
    index: np.ndarray        # int64 index into the protected texts; -1 where similarity is 0


def nearest_protected(texts: Sequence[str], protected: Sequence[str], *,
                      min_length_ratio: float = DEFAULT_MIN_LENGTH_RATIO,
                      ngram_range: Sequence[int] = DEFAULT_NGRAM_RANGE,
                      chunk_size: int = DEFAULT_CHUNK_SIZE) -> NearestMatch:
    """Nearest protected text of every text by char n-gram TF-IDF cosine (on normalised text).

    Only pairs with length ratio (shorter / longer normalised text) >= `min_length_ratio` are
    candidates (0 disables the gate). The vectoriser (vocabulary and idf) is fitted on both sets
    together. Exact: every pair is scored, in chunks of `chunk_size` query rows to bound memory
    (chunk x len(protected) floats).
    """
    n = len(texts)
    sim = np.zeros(n, dtype=np.float32)
    idx = np.full(n, -1, dtype=np.int64)
    if n == 0 or len(protected) == 0:
        return NearestMatch(sim, idx)
    q_keys, p_keys = match_keys(texts), match_keys(protected)
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(ngram_range), sublinear_tf=True,
                          dtype=np.float32)
    vec.fit(q_keys + p_keys)
    q = vec.transform(q_keys).tocsr()
    pt = vec.transform(p_keys).T.tocsr()
    q_len = np.array([max(len(k), 1) for k in q_keys], dtype=np.float32)
    p_len = np.array([max(len(k), 1) for k in p_keys], dtype=np.float32)
    for start in range(0, n, chunk_size):
        block = (q[start:start + chunk_size] @ pt).toarray()
        if min_length_ratio > 0:
            ql = q_len[start:start + chunk_size, None]
            # shorter / longer < r  <=>  one length < r * the other
            block[(ql < min_length_ratio * p_len[None, :]) | (p_len[None, :] < min_length_ratio * ql)] = 0.0
        best = block.argmax(axis=1)
        sim[start:start + len(block)] = block[np.arange(len(block)), best]
        idx[start:start + len(block)] = best
    idx[sim <= 0] = -1
    return NearestMatch(sim, idx)


def near_copy_mask(texts: Sequence[str], protected: Sequence[str],
                   threshold: float = DEFAULT_NEAR_COPY_THRESHOLD, **kwargs) -> tuple[np.ndarray, NearestMatch]:
    """True for texts whose nearest protected text has cosine >= threshold; also the matches."""
    match = nearest_protected(texts, protected, **kwargs)
    return match.similarity >= threshold, match
