"""Tokenised datasets, dynamic padding and a length-bucketing batch sampler.

Texts are tokenised once (fast tokenizer, no padding); each batch is padded only to
its own longest row, and the sampler groups rows of similar length so little padding
is computed. Batches carry `index` so predictions can be put back in input order.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset


def tokenize(tokenizer, texts: Sequence[str], max_length: int, chunk: int = 4096) -> list[np.ndarray]:
    """Token ids per text (special tokens added, truncated to `max_length`), as int32 arrays."""
    out: list[np.ndarray] = []
    texts = [str(t) for t in texts]
    for start in range(0, len(texts), chunk):
        enc = tokenizer(texts[start:start + chunk], truncation=True, max_length=max_length, padding=False,
                        return_attention_mask=False, return_token_type_ids=False)
        out.extend(np.asarray(ids, dtype=np.int32) for ids in enc["input_ids"])
    return out


class TokenizedDataset(Dataset):
    """Token id arrays plus an optional float label matrix (n x labels)."""

    def __init__(self, input_ids: list[np.ndarray], labels: np.ndarray | None = None):
        if labels is not None and len(labels) != len(input_ids):
            raise ValueError(f"{len(input_ids)} texts but {len(labels)} label rows")
        self.input_ids = input_ids
        self.labels = None if labels is None else np.asarray(labels, dtype=np.float32)
        self.lengths = np.fromiter((len(x) for x in input_ids), dtype=np.int64, count=len(input_ids))

    @classmethod
    def from_texts(cls, tokenizer, texts: Sequence[str], max_length: int,
                   labels: np.ndarray | None = None) -> "TokenizedDataset":
        return cls(tokenize(tokenizer, texts, max_length), labels)

    def set_input_ids(self, rows: Sequence[int], input_ids: Sequence[np.ndarray]) -> None:
        """Replace the token ids of `rows` in place (their lengths follow), e.g. texts re-rendered for an epoch."""
        for i, ids in zip(rows, input_ids):
            self.input_ids[int(i)] = np.asarray(ids, dtype=np.int32)
            self.lengths[int(i)] = len(ids)

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, i: int) -> dict:
        item = {"input_ids": self.input_ids[i], "index": i}
        if self.labels is not None:
            item["labels"] = self.labels[i]
        return item


class PadCollator:
    """Pad a list of items to the batch's longest row (optionally to a multiple of 8 for tensor cores)."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None, fixed_length: int | None = None):
        self.pad_token_id = int(pad_token_id)
        self.multiple = pad_to_multiple_of
        self.fixed_length = fixed_length

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        longest = max(len(it["input_ids"]) for it in items)
        if self.fixed_length:
            longest = max(longest, self.fixed_length)
        if self.multiple:
            longest = int(math.ceil(longest / self.multiple) * self.multiple)
        ids = np.full((len(items), longest), self.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(items), longest), dtype=np.int64)
        for r, it in enumerate(items):
            n = len(it["input_ids"])
            ids[r, :n] = it["input_ids"]
            mask[r, :n] = 1
        batch = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask),
                 "index": torch.tensor([it["index"] for it in items], dtype=torch.int64)}
        if "labels" in items[0]:
            batch["labels"] = torch.from_numpy(np.stack([it["labels"] for it in items]))
        return batch


class LengthBucketBatchSampler:
    """Batches of similar-length rows, in random order.

    Each epoch: shuffle all rows, cut them into pools of `batch_size * bucket_multiplier`,
    sort each pool by length, cut pools into batches, shuffle the batches. With
    `shuffle=False` rows are simply sorted by length (for inference). Call `set_epoch`
    to get a new, reproducible order each epoch.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, bucket_multiplier: int = 50,
                 shuffle: bool = True, drop_last: bool = False, seed: int = 0):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lengths = np.asarray(lengths)
        self.batch_size = int(batch_size)
        self.bucket_multiplier = max(1, int(bucket_multiplier))
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def batches(self) -> list[np.ndarray]:
        n = len(self.lengths)
        if not self.shuffle:
            order = np.argsort(-self.lengths, kind="stable")
            out = [order[i:i + self.batch_size] for i in range(0, n, self.batch_size)]
        else:
            rng = np.random.default_rng([self.seed, self.epoch])
            perm = rng.permutation(n)
            pool = self.batch_size * self.bucket_multiplier
            out = []
            for start in range(0, n, pool):
                chunk = perm[start:start + pool]
                chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
                out.extend(chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
            out = [out[i] for i in rng.permutation(len(out))]
        if self.drop_last:
            out = [b for b in out if len(b) == self.batch_size]
        return out

    def __iter__(self) -> Iterator[list[int]]:
        for b in self.batches():
            yield b.tolist()

    def __len__(self) -> int:
        n = len(self.lengths)
        if not self.shuffle or not self.drop_last:
            if not self.shuffle:
                return math.ceil(n / self.batch_size)
            pool = self.batch_size * self.bucket_multiplier
            full, rest = divmod(n, pool)
            return full * math.ceil(pool / self.batch_size) + math.ceil(rest / self.batch_size)
        return len(self.batches())
