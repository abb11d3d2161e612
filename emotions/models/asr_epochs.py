"""ASR-style noise on the Russian training rows, fresh every epoch (transformer option `asr_noise_p`).

Before each epoch `AsrEpochNoise` picks round(p x Russian rows) rows (a Russian row: `augment.synonyms.is_russian`,
the augmentation's rule; the English GoEmotions rows are never touched), renders each one's raw text with `AsrNoise.noisy`
(default augmentation rates; a change is forced where one can be made), preprocesses it like the training
texts and re-tokenises only those rows; the rows rendered the epoch before and not now get their clean ids
back. The choice and the noise are seeded by (seed, epoch), so every process of a multi-process run renders
the same rows the same way, and a run repeats exactly.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..augment.asr_noise import AsrNoise
from ..augment.synonyms import is_russian  # the augmentation's rule for a Russian row, reused here
from ..data.preprocess import PreprocessConfig, preprocess_texts
from .nn.data import TokenizedDataset, tokenize


class AsrEpochNoise:
    """`before_epoch` hook for `Trainer`: (epoch, train dataset) -> {"asr_rendered_rows": n}, ids changed in place.

    `texts` are the raw training texts in dataset order (the dataset holds their preprocessed, tokenised form).
    """

    def __init__(self, texts: Sequence[str], preprocess: PreprocessConfig, tokenizer, max_length: int,
                 p: float, seed: int):
        if not 0 <= p <= 1:
            raise ValueError(f"asr_noise_p must be in [0, 1], got {p}")
        self.texts = [str(t) for t in texts]
        self.preprocess, self.tokenizer, self.max_length = preprocess, tokenizer, int(max_length)
        self.p, self.seed = float(p), int(seed)
        self.russian = np.flatnonzero([is_russian(t) for t in self.texts])
        self.noise = AsrNoise(seed=self.seed)
        self.clean_ids: list[np.ndarray] | None = None
        self.rendered = np.zeros(0, dtype=np.int64)     # rows holding noisy ids now

    def rows_for(self, epoch: int) -> np.ndarray:
        """The rows rendered in `epoch` (sorted)."""
        n = int(round(self.p * len(self.russian)))
        rng = np.random.default_rng([self.seed, int(epoch)])
        return np.sort(rng.choice(self.russian, n, replace=False)) if n else np.zeros(0, dtype=np.int64)

    def render(self, epoch: int, rows: Sequence[int]) -> list[str]:
        """The noisy, preprocessed texts of `rows` for `epoch` (the row's own text where no change is possible)."""
        self.noise.rng = np.random.default_rng([self.seed, int(epoch), 1])
        noisy = [self.noise.noisy(self.texts[i]) or self.texts[i] for i in rows]
        return preprocess_texts(noisy, self.preprocess)

    def __call__(self, epoch: int, dataset: TokenizedDataset) -> dict:
        if len(dataset) != len(self.texts):
            raise ValueError(f"{len(self.texts)} texts for a dataset of {len(dataset)} rows")
        if self.clean_ids is None:
            self.clean_ids = list(dataset.input_ids)
        rows = self.rows_for(epoch)
        back = np.setdiff1d(self.rendered, rows)
        dataset.set_input_ids(back, [self.clean_ids[i] for i in back])
        dataset.set_input_ids(rows, tokenize(self.tokenizer, self.render(epoch, rows), self.max_length))
        self.rendered = rows
        return {"asr_rendered_rows": len(rows)}
