"""Synonym replacement: Russian via navec nearest neighbours, English via NLTK WordNet.

Russian: the navec embeddings shipped inside `natasha` (news, 250k words, 300d, product-quantised)
are unpacked for the `vocab_size` most frequent Cyrillic words; a word's candidates are its nearest
neighbours by cosine (>= `min_similarity`), excluding stop words, other forms of the same word
(long common prefix) and candidates whose last letter is of another class (а/я, о/е, ы/и, у/ю,
consonant, ...; a cheap stand-in for agreeing grammatical form, since no lemmatiser is used).
Capitalisation of the replaced word is kept. Embedding neighbours are often co-hyponyms or
antonyms ("страшно" ~ "смешно", "плохо" ~ "хорошо"), which would change the emotion: words close to
a list of emotion anchors are therefore never replaced nor used as replacements. Measure the effect
(benchmarks/ablation.py) before relying on it.

English: WordNet lemma names of the word's synsets, only when the NLTK WordNet data is installed.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)

_WORD_SPLIT = re.compile(r"(\w+)", re.UNICODE)
_CYRILLIC_WORD = re.compile(r"^[а-яё]+$")
_LATIN_WORD = re.compile(r"^[a-z]+$")
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_CYR = re.compile(r"[а-яёА-ЯЁ]")

RUSSIAN_STOP_WORDS: frozenset[str] = frozenset("""
а без более бы был была были было быть в вам вас весь во вот все всего всех вы где да даже для до его
ее ей ему если есть еще же за здесь и из или им их к как какая какой когда кто ли либо мне может мы на
над надо наш не него нее нет ни них но ну о об однако он она они оно от очень по под при про с со так
также такой там те тем то того тоже той только том ты у уже хотя чего чей чем что чтобы чье чья эта эти
это этот я себя себе свой своя свои свое мой моя мои мое твой твоя твои твое ваш ваша ваши ваше наша
наши наше него нему ним ними нас нам меня мной тебя тебе тобой сам сама сами само сейчас тут потом
теперь тогда вообще просто всегда никогда ничего нечего нибудь будто через между после перед около
возле ради хоть бы ли разве неужели даже лишь почти уж ведь вдруг опять снова еще ещё всё где-то
""".split())
# Words near these (cosine >= emotion_similarity) carry emotion and are never replaced: their
# embedding neighbours are often other emotions ("страшно" ~ "смешно", "плохо" ~ "хорошо").
EMOTION_ANCHORS: tuple[str, ...] = (
    "злость", "злой", "злюсь", "бесит", "гнев", "ярость", "отвращение", "отвратительно", "мерзко", "противно",
    "страх", "страшно", "боюсь", "ужас", "жутко", "тревога", "радость", "рад", "счастлив", "весело", "смешно",
    "люблю", "обожаю", "нравится", "грусть", "грустно", "печаль", "жаль", "плачу", "тоска", "удивление",
    "удивительно", "неожиданно", "шок", "хорошо", "плохо", "отлично", "ужасно", "ненавижу", "спасибо",
    "круто", "классно", "стыдно", "обидно", "скучно",
)
ENGLISH_STOP_WORDS: frozenset[str] = frozenset("""
a an the and or but if then so of to in on at by for with from as is are was were be been being am do
does did have has had i you he she it we they me him her us them my your his its our their this that
these those not no yes just very too also only what which who whom when where why how all any some
""".split())


def is_russian(text: str) -> bool:
    """True when at least half of the letters are Cyrillic."""
    letters = _LETTER.findall(text)
    return bool(letters) and sum(bool(_CYR.match(c)) for c in letters) * 2 >= len(letters)


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


_ENDING_CLASS = {**{c: "A" for c in "ая"}, **{c: "O" for c in "оеё"}, **{c: "I" for c in "ыи"},
                 **{c: "U" for c in "ую"}, "ь": "ь", "й": "й", "э": "э"}


def ending_class(word: str) -> str:
    """Rough class of a Russian word's last letter (any consonant -> 'C'), a stand-in for its form."""
    return _ENDING_CLASS.get(word[-1:], "C")


def _match_case(word: str, repl: str) -> str:
    if word.isupper() and len(word) > 1:
        return repl.upper()
    if word[:1].isupper():
        return repl[:1].upper() + repl[1:]
    return repl


class NavecNeighbours:
    """Nearest neighbours of frequent Russian words in the navec embeddings bundled with natasha."""

    def __init__(self, path: str | Path | None = None, *, vocab_size: int = 50_000, top_k: int = 5,
                 min_similarity: float = 0.55, min_length: int = 3, emotion_similarity: float | None = 0.45):
        from ..data.word_vectors import load_navec

        navec = load_navec(path)   # natasha's bundled file unless `path` (or $EMOTIONS_NAVEC_PATH) says otherwise
        vocab, pq = navec.vocab, navec.pq
        counts = np.asarray(vocab.counts)
        order = np.argsort(-counts, kind="stable")
        ids = [int(i) for i in order if _CYRILLIC_WORD.match(vocab.words[i]) and len(vocab.words[i]) >= min_length
               and vocab.words[i] not in RUSSIAN_STOP_WORDS][:vocab_size]
        self.words = [vocab.words[i] for i in ids]
        self.index = {w: k for k, w in enumerate(self.words)}
        # navec PQ: `indexes` (words x qdim) pick rows of `codes` (qdim x centroids x subdim)
        indexes = np.asarray(pq.indexes)[ids]
        vecs = np.asarray(pq.codes)[np.arange(pq.qdim)[None, :], indexes]    # (n, qdim, subdim)
        vecs = vecs.reshape(len(ids), -1).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True) + 1e-9
        self.vectors = vecs
        self.top_k, self.min_similarity = top_k, min_similarity
        self.emotional = np.zeros(len(ids), dtype=bool)
        if emotion_similarity is not None:
            anchors = [self.index[w] for w in EMOTION_ANCHORS if w in self.index]
            for start in range(0, len(ids), 8192):
                sims = vecs[start:start + 8192] @ vecs[anchors].T
                self.emotional[start:start + 8192] = sims.max(axis=1) >= emotion_similarity
        self._cache: dict[str, list[str]] = {}

    def neighbours(self, words: Sequence[str]) -> dict[str, list[str]]:
        """Candidates for each word (lowercase, ё->е is not applied: navec keeps ё)."""
        todo = [w for w in dict.fromkeys(words) if w not in self._cache]
        known = [w for w in todo if w in self.index and not self.emotional[self.index[w]]]
        for w in set(todo) - set(known):
            self._cache[w] = []
        for start in range(0, len(known), 512):
            chunk = known[start:start + 512]
            sims = self.vectors[[self.index[w] for w in chunk]] @ self.vectors.T
            top = np.argpartition(-sims, kth=min(60, sims.shape[1] - 1), axis=1)[:, :60]
            for row, w in enumerate(chunk):
                cand = top[row][np.argsort(-sims[row, top[row]])]
                out = []
                for j in cand:
                    c, s = self.words[j], sims[row, j]
                    if s < self.min_similarity or len(out) >= self.top_k:
                        break
                    if c == w or self.emotional[j] or ending_class(c) != ending_class(w) or _common_prefix(c, w) >= max(4, min(len(c), len(w)) - 2):
                        continue
                    out.append(c)
                self._cache[w] = out
        return {w: self._cache[w] for w in words}


def wordnet_synonyms() -> "callable | None":
    """A function word -> English synonyms via WordNet, or None (one log line) when its data is missing."""
    try:
        from nltk.corpus import wordnet
        wordnet.synsets("good")
    except Exception as e:  # LookupError when the corpus is not downloaded
        log.warning("synonyms (en): NLTK WordNet data not installed (%s); skipped",
                    type(e).__name__)
        return None

    def synonyms(word: str) -> list[str]:
        out = []
        for syn in wordnet.synsets(word):
            for lemma in syn.lemma_names():
                cand = lemma.replace("_", " ").lower()
                if cand != word and cand not in out:
                    out.append(cand)
        return out[:8]
    return synonyms


class SynonymReplacer:
    """Replaces up to `max_replacements` words (each eligible word with probability `p`)."""

    def __init__(self, *, russian: NavecNeighbours | None, english, p: float = 0.2, max_replacements: int = 2,
                 seed: int = 0):
        self.russian, self.english = russian, english
        self.p, self.max_replacements = p, max_replacements
        self.rng = np.random.default_rng(seed)

    def can_handle(self, text: str) -> bool:
        return (self.russian is not None) if is_russian(text) else (self.english is not None)

    def __call__(self, texts: Sequence[str]) -> list[str | None]:
        parts = [_WORD_SPLIT.split(t) for t in texts]
        ru_words = {p.lower() for t, ps in zip(texts, parts) if is_russian(t) for p in ps[1::2]}
        table = self.russian.neighbours(sorted(ru_words)) if self.russian is not None and ru_words else {}
        return [self._one(t, ps, table) for t, ps in zip(texts, parts)]

    def _candidates(self, word: str, russian: bool, table: dict) -> list[str]:
        w = word.lower()
        if russian:
            return table.get(w, []) if _CYRILLIC_WORD.match(w) and w not in RUSSIAN_STOP_WORDS else []
        if self.english is None or not _LATIN_WORD.match(w) or w in ENGLISH_STOP_WORDS or len(w) < 3:
            return []
        return self.english(w)

    def _one(self, text: str, parts: list[str], table: dict) -> str | None:
        russian = is_russian(text)
        if (russian and self.russian is None) or (not russian and self.english is None):
            return None
        slots = [(k, c) for k in range(1, len(parts), 2) if (c := self._candidates(parts[k], russian, table))]
        if not slots:
            return None
        chosen = [s for s in slots if self.rng.random() < self.p][: self.max_replacements]
        if not chosen:
            chosen = [slots[int(self.rng.integers(len(slots)))]]
        out = list(parts)
        for k, cands in chosen:
            out[k] = _match_case(parts[k], cands[int(self.rng.integers(len(cands)))])
        return "".join(out)
