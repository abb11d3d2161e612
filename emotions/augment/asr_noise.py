"""ASR-noise simulation: make clean text look like the competition's speech transcripts.

Steps on `normalize_asr(text)` (lowercase, ё->е, no punctuation), each random and seeded:
1. known ASR errors, inverse direction (right -> wrong) of the dictionary emotions/resources/asr_errors.tsv
   (read through emotions.data.preprocess.load_asr_dictionary): "что" -> "чо", "не знаю" -> "незнаю";
2. Russian phonetic confusions inside words: unstressed о->а, е->и / и->е, тся<->ться, -ого->-ова,
   сч->щ, что->што, final devoicing (д->т, б->п, в->ф, з->с, г->к, ж->ш), double consonants simplified;
3. short words (1-2 letters) dropped, adjacent words merged, long words split.
A text comes out different from its normalised input or not at all (None); `render` makes one pass
without forcing a change (emotions/augment/asr_render.py renders evaluation splits with it).
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from ..data.preprocess import load_asr_dictionary, normalize_asr

ASR_NOISE_DEFAULTS: dict = {
    "p_dictionary": 0.5,     # each match of a dictionary phrase is replaced by a wrong form
    "p_phonetic": 0.08,      # each word gets one phonetic confusion
    "p_drop_short": 0.05,    # each word of 1-2 letters is dropped
    "p_merge": 0.02,         # each word boundary is removed (x2 next to a short word)
    "p_split": 0.02,         # each word of 7+ letters is split in two
    "dictionary_paths": [],  # extra WRONG<TAB>RIGHT files
}

_VOWELS = set("аеиоуыэюя")
# (pattern, replacement) pairs; one applicable rule is picked per noisy word
PHONETIC_RULES: list[tuple[re.Pattern, str]] = [
    (re.compile(r"ться$"), "тся"),
    (re.compile(r"тся$"), "ться"),
    (re.compile(r"(?<=[ое])го$"), "ва"),     # его -> ева, такого -> такова
    (re.compile(r"(?<=\w)о(?=\w)"), "а"),     # unstressed о -> а (stress unknown: any inner о)
    (re.compile(r"(?<=\w)е(?=\w)"), "и"),
    (re.compile(r"(?<=\w)и(?=\w)"), "е"),
    (re.compile(r"[сз]ч"), "щ"),
    (re.compile(r"^что"), "што"),
    (re.compile(r"[тд]с(?=[кя])"), "ц"),       # детский -> децкий, смеятся -> смеяца
    (re.compile(r"д$"), "т"), (re.compile(r"б$"), "п"), (re.compile(r"в$"), "ф"),
    (re.compile(r"з$"), "с"), (re.compile(r"г$"), "к"), (re.compile(r"ж$"), "ш"),
    (re.compile(r"([бвгджзклмнпрстфхцчшщ])\1"), r"\1"),
]


class AsrNoise:
    """Callable: texts -> noisy ASR-style texts (None where no change could be made)."""

    def __init__(self, *, seed: int = 0, p_dictionary: float = 0.5, p_phonetic: float = 0.08,
                 p_drop_short: float = 0.05, p_merge: float = 0.02, p_split: float = 0.02,
                 dictionary_paths: Sequence[str] = ()):
        self.rng = np.random.default_rng(seed)
        self.p_dictionary, self.p_phonetic = p_dictionary, p_phonetic
        self.p_drop_short, self.p_merge, self.p_split = p_drop_short, p_merge, p_split
        inverse: dict[tuple[str, ...], list[str]] = {}
        for wrong, right in load_asr_dictionary(list(dictionary_paths)).items():
            if wrong and right and wrong != right:
                inverse.setdefault(tuple(right.split()), []).append(wrong)
        # longest phrases first
        self.inverse = dict(sorted(inverse.items(), key=lambda kv: -len(kv[0])))
        self.max_phrase = max((len(k) for k in self.inverse), default=1)

    def __call__(self, texts: Sequence[str]) -> list[str | None]:
        return [self.noisy(t) for t in texts]

    def noisy(self, text: str, attempts: int = 3) -> str | None:
        clean = normalize_asr(str(text))
        if not clean:
            return None
        for _ in range(attempts):
            out = self._once(clean)
            if out and out != clean:
                return out
        words = clean.split()                       # force one phonetic change
        order = self.rng.permutation(len(words))
        for k in order:
            changed = self._phonetic(words[k])
            if changed != words[k]:
                words[k] = changed
                return " ".join(words)
        return None

    def render(self, clean: str) -> str:
        """One noisy pass over an already normalised text; unlike `noisy`, no change is forced."""
        return self._once(clean) if clean else clean

    # --- steps -----------------------------------------------------------------------------
    def _once(self, clean: str) -> str:
        words = self._dictionary(clean.split())
        words = [self._phonetic(w) if self.rng.random() < self.p_phonetic else w for w in words]
        kept = [w for w in words if not (len(w) <= 2 and self.rng.random() < self.p_drop_short)]
        words = kept or words
        merged: list[str] = []
        for w in words:
            p = self.p_merge * (2 if merged and (len(w) <= 2 or len(merged[-1]) <= 2) else 1)
            if merged and self.rng.random() < p:
                merged[-1] += w
            else:
                merged.append(w)
        out: list[str] = []
        for w in merged:
            if len(w) >= 7 and self.rng.random() < self.p_split:
                cut = int(self.rng.integers(3, len(w) - 2))
                out += [w[:cut], w[cut:]]
            else:
                out.append(w)
        return " ".join(out)

    def _dictionary(self, words: list[str]) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(words):
            for n in range(min(self.max_phrase, len(words) - i), 0, -1):
                wrongs = self.inverse.get(tuple(words[i:i + n]))
                if wrongs and self.rng.random() < self.p_dictionary:
                    out += wrongs[int(self.rng.integers(len(wrongs)))].split()
                    i += n
                    break
            else:
                out.append(words[i])
                i += 1
        return out

    def _phonetic(self, word: str) -> str:
        if sum(c in _VOWELS for c in word) < 1:
            return word
        rules = [(p, r) for p, r in PHONETIC_RULES if p.search(word)]
        if not rules:
            return word
        pattern, repl = rules[int(self.rng.integers(len(rules)))]
        matches = list(pattern.finditer(word))
        m = matches[int(self.rng.integers(len(matches)))]
        return word[:m.start()] + m.expand(repl) + word[m.end():]
