"""A tiny randomly initialised BERT plus a tokenizer fitted on given texts, saved as a folder.

Used by the tests (meaningful training runs without any download) and as the
`encoder: tiny` option of the transformer model kind. The folder loads with
`AutoModel.from_pretrained` / `AutoTokenizer.from_pretrained` like any encoder.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

from .hf import quiet_transformers

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _word_counts(texts: Iterable[str], tok: Tokenizer) -> Counter:
    counts: Counter = Counter()
    for text in texts:
        norm = tok.normalizer.normalize_str(str(text))
        counts.update(w for w, _ in tok.pre_tokenizer.pre_tokenize_str(norm))
    return counts


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2000, kind: str = "wordpiece",
                    lowercase: bool = True) -> PreTrainedTokenizerFast:
    """A WordPiece or Unigram tokenizer fitted on `texts`, BERT-style [CLS] ... [SEP] framing.

    The vocabulary is every character seen (plus `##` continuations for WordPiece) and the
    most frequent whole words, ordered by (-count, string): deterministic, so the same texts
    always give the same ids. (The `tokenizers` trainers break ties in hash-map order, which
    changes ids from run to run and would make seeded training irreproducible.) Unigram
    piece scores are log relative frequencies.
    """
    if kind not in ("wordpiece", "unigram"):
        raise ValueError(f"tokenizer kind must be 'wordpiece' or 'unigram', got {kind!r}")
    probe = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    probe.normalizer = normalizers.Sequence([normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else []))
    probe.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words = _word_counts(texts, probe)
    chars: Counter = Counter()
    for w, c in words.items():
        chars.update({ch: c for ch in w})
    by_count = lambda item: (-item[1], item[0])  # noqa: E731
    char_list = [ch for ch, _ in sorted(chars.items(), key=by_count)]
    pieces = list(SPECIAL_TOKENS) + char_list + (["##" + ch for ch in char_list] if kind == "wordpiece" else [])
    room = max(0, vocab_size - len(pieces))
    word_list = [w for w, _ in sorted(words.items(), key=by_count) if len(w) > 1][:room]
    pieces += word_list
    if kind == "wordpiece":
        tok = Tokenizer(models.WordPiece({p: i for i, p in enumerate(pieces)}, unk_token="[UNK]"))
        tok.decoder = decoders.WordPiece()
    else:
        total = sum(chars.values()) + sum(words[w] for w in word_list) or 1
        freq = {**chars, **{w: words[w] for w in word_list}}
        vocab = [(p, 0.0) for p in SPECIAL_TOKENS] + [(p, math.log(freq[p] / total)) for p in pieces[len(SPECIAL_TOKENS):]]
        tok = Tokenizer(models.Unigram(vocab, unk_id=SPECIAL_TOKENS.index("[UNK]"), byte_fallback=False))
    tok.normalizer = probe.normalizer
    tok.pre_tokenizer = probe.pre_tokenizer
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=512)


def build_tiny_encoder(texts: Sequence[str], out_dir: str | Path, *, vocab_size: int = 2000,
                       hidden_size: int = 64, num_layers: int = 2, num_heads: int = 2,
                       intermediate_size: int = 128, max_position: int = 512, tokenizer_kind: str = "wordpiece",
                       seed: int = 0) -> Path:
    """Write a tiny random BERT + trained tokenizer to `out_dir` and return it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(texts, vocab_size=vocab_size, kind=tokenizer_kind)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, num_hidden_layers=num_layers,
                        num_attention_heads=num_heads, intermediate_size=intermediate_size,
                        max_position_embeddings=max_position, pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertModel(config)
    with quiet_transformers():
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    return out
