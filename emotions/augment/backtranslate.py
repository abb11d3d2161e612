"""Back-translation (ru -> en -> ru) through pluggable translators with an on-disk cache.

`Translator` is anything with `model_id` and `translate(texts) -> texts`. `MarianTranslator` runs a
MarianMT model (HF id or local folder); `CachedTranslator` keeps every (model id, text) result in a
sqlite file so a rerun makes no model calls (and does not even load the model).
"""

from __future__ import annotations

import importlib.util
import logging
import sqlite3
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

log = logging.getLogger(__name__)

DEFAULT_FORWARD = "Helsinki-NLP/opus-mt-ru-en"
DEFAULT_BACKWARD = "Helsinki-NLP/opus-mt-en-ru"
CACHE_FILE = "backtranslation.sqlite"


class TranslatorUnavailable(RuntimeError):
    """The translation model cannot be loaded here (offline and not on disk, missing package)."""


@runtime_checkable
class Translator(Protocol):
    model_id: str

    def translate(self, texts: list[str]) -> list[str]:
        """One output per input, same order."""


class MarianTranslator:
    """A MarianMT model (transformers) by HF id or local path; loaded on first use."""

    def __init__(self, model: str | Path, *, batch_size: int = 16, max_length: int = 256, num_beams: int = 1,
                 device: str = "cpu", allow_download: bool = True):
        self.model_id = str(model)
        self.batch_size, self.max_length, self.num_beams = batch_size, max_length, num_beams
        self.device, self.allow_download = device, allow_download
        self._model = self._tokenizer = None

    def load(self) -> None:
        if self._model is not None:
            return
        if importlib.util.find_spec("sentencepiece") is None:
            raise TranslatorUnavailable("the MarianMT tokenizer needs the `sentencepiece` package")
        from transformers import MarianMTModel, MarianTokenizer

        from ..core import hub

        local = Path(self.model_id).expanduser()
        attempts: list[dict] = [{}] if local.is_dir() else [{"local_files_only": True}]
        if not local.is_dir() and self.allow_download and hub.hub_reachable():
            attempts.append({})
        source = str(local) if local.is_dir() else self.model_id
        error: Exception | None = None
        for kwargs in attempts:
            try:
                self._tokenizer = MarianTokenizer.from_pretrained(source, **kwargs)
                self._model = MarianMTModel.from_pretrained(source, **kwargs).to(self.device).eval()
                return
            except Exception as e:  # not cached / offline / bad folder
                error = e
        reason = "not in the local cache and the hub is unreachable" if len(attempts) == 1 else \
            f"{type(error).__name__}: {str(error).splitlines()[0] if error and str(error) else ''}"
        raise TranslatorUnavailable(reason)

    def translate(self, texts: list[str]) -> list[str]:
        self.load()
        import torch

        out: list[str] = []
        for start in range(0, len(texts), self.batch_size):
            batch = self._tokenizer(list(texts[start:start + self.batch_size]), return_tensors="pt", padding=True,
                                    truncation=True, max_length=self.max_length).to(self.device)
            with torch.inference_mode():
                gen = self._model.generate(**batch, max_length=self.max_length, num_beams=self.num_beams)
            out += self._tokenizer.batch_decode(gen, skip_special_tokens=True)
        return out


class CachedTranslator:
    """Wraps a translator; results are stored in sqlite keyed by (model id, source text)."""

    def __init__(self, inner: Translator, cache_path: str | Path):
        self.inner = inner
        self.model_id = inner.model_id
        self.cache_path = Path(cache_path)
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS translations (model TEXT NOT NULL, source TEXT NOT NULL, "
                       "target TEXT NOT NULL, PRIMARY KEY (model, source))")
        self.model_calls = 0      # texts sent to the inner translator (not counting cache hits)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.cache_path, timeout=30)

    def translate(self, texts: list[str]) -> list[str]:
        texts = [str(t) for t in texts]
        found: dict[str, str] = {}
        unique = list(dict.fromkeys(texts))
        with self._connect() as db:
            for start in range(0, len(unique), 500):
                chunk = unique[start:start + 500]
                q = f"SELECT source, target FROM translations WHERE model = ? AND source IN ({','.join('?' * len(chunk))})"
                found.update(db.execute(q, [self.model_id, *chunk]).fetchall())
        missing = [t for t in unique if t not in found]
        if missing:
            new = self.inner.translate(missing)
            if len(new) != len(missing):
                raise RuntimeError(f"translator {self.model_id} returned {len(new)} texts for {len(missing)}")
            self.model_calls += len(missing)
            with self._connect() as db:
                db.executemany("INSERT OR REPLACE INTO translations VALUES (?, ?, ?)",
                               [(self.model_id, s, t) for s, t in zip(missing, new)])
            found.update(zip(missing, new))
        return [found[t] for t in texts]


class BackTranslator:
    """ru -> pivot -> ru with two (cached) translators; a missing model disables it with one log line."""

    def __init__(self, forward: Translator, backward: Translator, cache_dir: str | Path | None):
        if cache_dir is not None:
            path = Path(cache_dir) / CACHE_FILE
            forward = forward if isinstance(forward, CachedTranslator) else CachedTranslator(forward, path)
            backward = backward if isinstance(backward, CachedTranslator) else CachedTranslator(backward, path)
        self.forward, self.backward = forward, backward
        self.unavailable: str | None = None

    def __call__(self, texts: Sequence[str]) -> list[str | None]:
        if self.unavailable:
            return [None] * len(texts)
        texts = list(texts)
        try:
            pivot = self.forward.translate(texts)
        except TranslatorUnavailable as e:
            return self._disable(self.forward.model_id, e, len(texts))
        try:
            back = self.backward.translate(pivot)
        except TranslatorUnavailable as e:
            return self._disable(self.backward.model_id, e, len(texts))
        return [b if b and b.strip() else None for b in back]

    def _disable(self, model: str, error: Exception, n: int) -> list[None]:
        self.unavailable = f"back-translation: model {model} not available offline ({error}); skipped"
        log.warning("%s", self.unavailable)
        return [None] * n


def make_back_translator(params: dict, cache_dir: str | Path | None,
                         translators: dict | None = None) -> BackTranslator:
    """From the `backtranslation` params; `translators` = {"forward": T, "backward": T} overrides (tests)."""
    translators = translators or {}
    kw = dict(batch_size=params["batch_size"], max_length=params["max_length"], num_beams=params["num_beams"],
              device=params["device"], allow_download=params["allow_download"])
    forward = translators.get("forward") or MarianTranslator(params["forward"], **kw)
    backward = translators.get("backward") or MarianTranslator(params["backward"], **kw)
    return BackTranslator(forward, backward, cache_dir)
