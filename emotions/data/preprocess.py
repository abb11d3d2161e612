"""Text preprocessing shared by training, evaluation, submission and the service.

The competition's test texts are speech transcripts (lowercase, no punctuation, ASR
errors); `normalize_asr` makes any text look like that, so train and test match.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import emoji

from ..core.paths import RESOURCES_DIR

DEFAULT_ASR_DICTIONARY = RESOURCES_DIR / "asr_errors.tsv"

_PLACEHOLDER_RE = re.compile(r"\[[^\[\]\s]{1,24}\]")      # [NAME], [ИМЯ], [RELIGION] ...
_NON_WORD_RE = re.compile(r"[^\w\s]|_", re.UNICODE)      # punctuation, symbols, underscores
_SPACES_RE = re.compile(r"\s+")


@dataclass(frozen=True)
class PreprocessConfig:
    """How texts are cleaned; stored with every trained model so inference matches training."""

    demojize: bool = True            # emoji -> Russian words (emoji.demojize, language='ru')
    asr_style: bool = True           # lowercase, ё->е, no punctuation or placeholders
    asr_dictionary: bool = True      # fix known ASR errors (resources/asr_errors.tsv + user files)
    asr_dictionary_paths: tuple[str, ...] = field(default_factory=tuple)
    emoji_language: str = "ru"

    @classmethod
    def from_dict(cls, d: dict | None) -> "PreprocessConfig":
        d = dict(d or {})
        if "asr_dictionary_paths" in d:
            d["asr_dictionary_paths"] = tuple(d["asr_dictionary_paths"] or ())
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown preprocess option(s) {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**d)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["asr_dictionary_paths"] = list(self.asr_dictionary_paths)
        return d


def demojize(text: str, language: str = "ru") -> str:
    """Replace emoji by their names as words: '😂' -> ' лицо со слезами радости '."""
    out = emoji.demojize(text, language=language, delimiters=(" ", " "))
    return out.replace("_", " ") if out != text else text


def normalize_asr(text: str) -> str:
    """ASR-style text: placeholders removed, lowercase, ё->е, punctuation -> space, single spaces."""
    text = _PLACEHOLDER_RE.sub(" ", text)
    text = text.lower().replace("ё", "е")
    text = _NON_WORD_RE.sub(" ", text)
    return _SPACES_RE.sub(" ", text).strip()


def load_asr_dictionary(paths: Sequence[str | Path] = ()) -> dict[str, str]:
    """Read WRONG<TAB>RIGHT pairs (the bundled file first, then user files, later ones win)."""
    pairs: dict[str, str] = {}
    for path in [DEFAULT_ASR_DICTIONARY, *paths]:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ASR dictionary {path} not found")
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 2 or not parts[0].strip():
                raise ValueError(f"{path}, line {lineno}: expected WRONG<TAB>RIGHT, got {line!r}")
            pairs[normalize_asr(parts[0])] = normalize_asr(parts[1])
    return pairs


@lru_cache(maxsize=8)
def _dictionary_regex(paths: tuple[str, ...]) -> tuple[re.Pattern, dict[str, str]]:
    pairs = load_asr_dictionary(paths)
    keys = sorted(pairs, key=len, reverse=True)
    pattern = re.compile(r"(?<!\w)(" + "|".join(re.escape(k) for k in keys) + r")(?!\w)")
    return pattern, pairs


def apply_asr_dictionary(text: str, paths: Sequence[str | Path] = ()) -> str:
    """Replace known ASR errors, whole words only, longest match first."""
    pattern, pairs = _dictionary_regex(tuple(str(p) for p in paths))
    return pattern.sub(lambda m: pairs[m.group(1)], text)


def preprocess_text(text: str, config: PreprocessConfig = PreprocessConfig()) -> str:
    if config.demojize:
        text = demojize(text, config.emoji_language)
    if config.asr_style:
        text = normalize_asr(text)
    if config.asr_dictionary:
        text = apply_asr_dictionary(text, config.asr_dictionary_paths)
    return text


def preprocess_texts(texts: Iterable[str], config: PreprocessConfig = PreprocessConfig()) -> list[str]:
    return [preprocess_text(str(t), config) for t in texts]
