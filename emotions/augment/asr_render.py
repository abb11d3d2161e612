"""Render labelled frames as ASR-style transcripts (an evaluation beside the clean one) and describe text style.

    holdout_asr = render_asr(holdout, seed=42)          # same rows, same order, same labels; every text rendered
    stats = text_style_stats(texts, lexicon=words)      # the numbers benchmarks/asr_render_check.py compares

The noise itself is `AsrNoise` (emotions/augment/asr_noise.py), the one used for augmentation; the rendering
parameters below were set against the competition's unlabelled test transcripts (see
benchmarks/results/asr_render_check.txt).
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from ..data.preprocess import load_asr_dictionary, normalize_asr
from .asr_noise import ASR_NOISE_DEFAULTS, AsrNoise

# Calibrated with benchmarks/asr_render_check.py (valid.csv rendered vs test_without_answers.csv): the real
# transcripts are nearly clean (dictionary wrong forms 0.37 per 1000 words, no lexicon-OOV excess over
# normalised valid), so the rates are far below the augmentation's (ASR_NOISE_DEFAULTS).
ASR_RENDER_DEFAULTS: dict[str, Any] = {
    **ASR_NOISE_DEFAULTS,
    "p_dictionary": 0.005,
    "p_phonetic": 0.003,
    "p_drop_short": 0.01,
    "p_merge": 0.003,
    "p_split": 0.003,
    "placeholder_word": "имя",   # [ИМЯ] / [NAME] are spoken as a word in the test transcripts ("" drops them)
}

ASR_RENDER_SEED = 0        # one fixed rendering, so tune_asr / holdout_asr are the same rows in every run
ASR_SUFFIX = "_asr"        # holdout -> holdout_asr

_PLACEHOLDER_RE = re.compile(r"\[[^\[\]\s]{1,24}\]")
_WORD_RE = re.compile(r"\w+", re.UNICODE)
_PUNCT_RE = re.compile(r"[^\w\s]|_", re.UNICODE)
_CYRILLIC_RE = re.compile(r"[а-яё]", re.IGNORECASE)
_LETTER_RE = re.compile(r"[^\W\d_]", re.UNICODE)


def render_params(params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`ASR_RENDER_DEFAULTS` updated with `params`; unknown keys raise."""
    params = dict(params or {})
    unknown = set(params) - set(ASR_RENDER_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown ASR rendering option(s) {sorted(unknown)}; known: {sorted(ASR_RENDER_DEFAULTS)}")
    return {**ASR_RENDER_DEFAULTS, **params}


def render_texts(texts: Iterable[str], seed: int = 0, params: Mapping[str, Any] | None = None) -> list[str]:
    """Each text as an ASR-style transcript: lowercase, no punctuation, recognition-style errors.

    Deterministic for a seed (one generator, texts in order). Unlike augmentation, a text may come out
    with no error at all (only normalised), as most real transcripts do."""
    p = render_params(params)
    word = str(p.pop("placeholder_word") or "")
    noise = AsrNoise(seed=seed, **p)
    out = []
    for text in texts:
        text = _PLACEHOLDER_RE.sub(f" {word} " if word else " ", str(text))
        clean = normalize_asr(text)
        out.append(noise.render(clean) if clean else clean)
    return out


def render_asr(frame: pd.DataFrame, seed: int = 0, params: Mapping[str, Any] | None = None,
               text_col: str = "text") -> pd.DataFrame:
    """A copy of `frame` whose `text_col` is rendered ASR-style (every row; labels, other columns and order kept)."""
    if text_col not in frame.columns:
        raise KeyError(f"render_asr: column {text_col!r} not in the frame (columns: {list(frame.columns)})")
    out = frame.copy()
    out[text_col] = render_texts(frame[text_col].tolist(), seed=seed, params=params)
    return out


# the splits rendered: the GoEmotions comments (the written utterances are already spoken-style transcripts)
ASR_RENDERED_SPLITS = ("tune", "holdout")


def with_asr_splits(frames: Mapping[str, pd.DataFrame], seed: int = ASR_RENDER_SEED,
                    params: Mapping[str, Any] | None = None) -> dict[str, pd.DataFrame]:
    """`frames` plus, after tune and holdout, their ASR-style renderings `tune_asr`, `holdout_asr`."""
    out: dict[str, pd.DataFrame] = {}
    for name, df in frames.items():
        out[name] = df
        if name in ASR_RENDERED_SPLITS:
            out[name + ASR_SUFFIX] = render_asr(df, seed=seed, params=params)
    return out


def text_style_stats(texts: Iterable[str], lexicon: set[str] | None = None) -> dict[str, float]:
    """Character and word statistics of a set of texts (to compare rendered and real transcripts).

    `lexicon`: known words (lowercase, е for ё); with it, the share of Cyrillic words outside it is reported
    (a proxy for recognition errors)."""
    texts = [str(t) for t in texts]
    words_per_text = np.array([len(t.split()) for t in texts], dtype=float)
    tokens = [w.lower().replace("ё", "е") for t in texts for w in _WORD_RE.findall(t)]
    letters = [c for t in texts for c in _LETTER_RE.findall(t)]
    wrong_forms = {w for w in load_asr_dictionary() if " " not in w}
    n_tok = max(len(tokens), 1)
    stats = {
        "texts": float(len(texts)),
        "words per text, mean": float(words_per_text.mean()) if texts else 0.0,
        "words per text, median": float(np.median(words_per_text)) if texts else 0.0,
        "chars per word, mean": float(np.mean([len(w) for w in tokens])) if tokens else 0.0,
        "share of 1-2 letter words": sum(len(w) <= 2 for w in tokens) / n_tok,
        "share of letters not Cyrillic": sum(not _CYRILLIC_RE.match(c) for c in letters) / max(len(letters), 1),
        "share of texts with uppercase": float(np.mean([t != t.lower() for t in texts])) if texts else 0.0,
        "share of texts with punctuation": float(np.mean([bool(_PUNCT_RE.search(t)) for t in texts])) if texts else 0.0,
        "share of texts with digits": float(np.mean([any(c.isdigit() for c in t) for t in texts])) if texts else 0.0,
        "share of texts with ё": float(np.mean(["ё" in t.lower() for t in texts])) if texts else 0.0,
        "share of texts with a repeated word": float(np.mean([_has_repeat(t) for t in texts])) if texts else 0.0,
        "ASR-dictionary wrong forms per 1000 words": 1000 * sum(w in wrong_forms for w in tokens) / n_tok,
        "share of words 'имя'": sum(w == "имя" for w in tokens) / n_tok,
    }
    if lexicon is not None:
        cyr = [w for w in tokens if w.isalpha() and _CYRILLIC_RE.match(w)]
        stats["share of Cyrillic words not in lexicon"] = sum(w not in lexicon for w in cyr) / max(len(cyr), 1)
    return stats


def _has_repeat(text: str) -> bool:
    ws = text.lower().split()
    return any(a == b for a, b in zip(ws, ws[1:]))
