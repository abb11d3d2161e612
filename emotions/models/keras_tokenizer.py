"""A Keras-style word tokenizer (the `keras.preprocessing.text.Tokenizer` behaviour, no TensorFlow).

Indices: 0 is padding, 1 the OOV token, then words by descending frequency (ties keep
first-seen order, as in Keras). With `num_words`, only indices below `num_words` are
used; rarer words map to the OOV index. Saved to / loaded from JSON with the model.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..core.io import write_text_atomic

KERAS_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
PAD_INDEX = 0
OOV_INDEX = 1
FORMAT = "emotions.keras_tokenizer/1"


def text_to_word_sequence(text: str, filters: str = KERAS_FILTERS, lower: bool = True,
                          split: str = " ") -> list[str]:
    """Keras' splitting: lowercase, every filter character becomes `split`, drop empty pieces."""
    if lower:
        text = text.lower()
    text = text.translate(str.maketrans({c: split for c in filters}))
    return [w for w in text.split(split) if w]


class KerasTokenizer:
    """Word -> index vocabulary of the `num_words` most frequent words (index 0 pad, 1 OOV)."""

    def __init__(self, num_words: int | None = None, oov_token: str = "<OOV>", lower: bool = True,
                 filters: str = KERAS_FILTERS, split: str = " "):
        if num_words is not None and num_words < 2:
            raise ValueError(f"num_words must be at least 2 (padding + OOV), got {num_words}")
        self.num_words = num_words
        self.oov_token = oov_token
        self.lower = lower
        self.filters = filters
        self.split = split
        self.word_index: dict[str, int] = {}
        self.word_counts: dict[str, int] = {}
        self.document_count = 0

    # --- fitting ----------------------------------------------------------------------------
    def words(self, text: str) -> list[str]:
        return text_to_word_sequence(str(text), self.filters, self.lower, self.split)

    def fit_on_texts(self, texts: Iterable[str]) -> "KerasTokenizer":
        """Count words; index them by frequency (ties in first-seen order). Refitting adds counts."""
        counts: Counter[str] = Counter(self.word_counts)
        for text in texts:
            counts.update(self.words(text))
            self.document_count += 1
        counts.pop(self.oov_token, None)
        # Counter keeps insertion (first-seen) order; sorted() is stable, so ties keep it.
        ordered = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)
        self.word_counts = dict(ordered)
        self.word_index = {self.oov_token: OOV_INDEX}
        for i, (w, _) in enumerate(ordered, start=OOV_INDEX + 1):
            self.word_index[w] = i
        return self

    # --- using --------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Rows an embedding needs: indices 0 .. vocab_size - 1 (never more than `num_words`)."""
        n = len(self.word_index) + 1
        return min(n, self.num_words) if self.num_words else n

    def vocabulary(self) -> dict[str, int]:
        """The words that get their own index (OOV token included, padding not)."""
        limit = self.vocab_size
        return {w: i for w, i in self.word_index.items() if i < limit}

    def texts_to_sequences(self, texts: Iterable[str]) -> list[list[int]]:
        if not self.word_index:
            raise RuntimeError("tokenizer is not fitted: call fit_on_texts first")
        limit = self.vocab_size
        out = []
        for text in texts:
            seq = []
            for w in self.words(text):
                i = self.word_index.get(w, OOV_INDEX)
                seq.append(i if i < limit else OOV_INDEX)
            out.append(seq)
        return out

    # --- persistence --------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Config plus the effective vocabulary (words past `num_words` are OOV anyway)."""
        vocab = self.vocabulary()
        return {"format": FORMAT,
                "config": {"num_words": self.num_words, "oov_token": self.oov_token, "lower": self.lower,
                           "filters": self.filters, "split": self.split},
                "document_count": self.document_count,
                "word_index": vocab,
                "word_counts": {w: self.word_counts[w] for w in vocab if w in self.word_counts}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict) -> "KerasTokenizer":
        if d.get("format") != FORMAT:
            raise ValueError(f"not a saved KerasTokenizer (format {d.get('format')!r}, expected {FORMAT!r})")
        tok = cls(**d["config"])
        tok.word_index = {w: int(i) for w, i in d["word_index"].items()}
        tok.word_counts = {w: int(c) for w, c in d.get("word_counts", {}).items()}
        tok.document_count = int(d.get("document_count", 0))
        return tok

    @classmethod
    def from_json(cls, text: str) -> "KerasTokenizer":
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> Path:
        write_text_atomic(Path(path), self.to_json())
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "KerasTokenizer":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"tokenizer file {path} not found")
        return cls.from_json(path.read_text(encoding="utf-8"))


def pad_sequences(sequences: Sequence[Sequence[int]], maxlen: int | None = None, padding: str = "post",
                  truncating: str = "post", value: int = PAD_INDEX, dtype=np.int64) -> np.ndarray:
    """Keras `pad_sequences` (defaults here: post padding and truncation; Keras' are "pre").

    `maxlen=None` pads to the longest sequence.
    """
    if padding not in ("pre", "post") or truncating not in ("pre", "post"):
        raise ValueError(f"padding and truncating must be 'pre' or 'post', got {padding!r}, {truncating!r}")
    lengths = [len(s) for s in sequences]
    if maxlen is None:
        maxlen = max(lengths, default=0)
    out = np.full((len(sequences), maxlen), value, dtype=dtype)
    if maxlen == 0:
        return out
    for row, seq in enumerate(sequences):
        seq = list(seq)
        if not seq:
            continue
        seq = seq[:maxlen] if truncating == "post" else seq[-maxlen:]
        if padding == "post":
            out[row, :len(seq)] = seq
        else:
            out[row, maxlen - len(seq):] = seq
    return out
