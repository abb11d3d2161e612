"""Tiny randomly initialised hub-style models with tokenizers fitted on given texts, saved as folders.

`build_tiny_encoder` writes a BERT, RoBERTa or XLM-RoBERTa encoder (`arch`), `build_tiny_marian` a
MarianMT translation model with its sentencepiece tokenizer. Used by the tests (the code paths a
connected user takes with e.g. `xlm-roberta-base` or `Helsinki-NLP/opus-mt-ru-en`, run without any
download) and as the `encoder: tiny` option of the transformer model kind. The folders load with
`AutoModel` / `AutoTokenizer` / `MarianMTModel` / `MarianTokenizer.from_pretrained` like the real ones.

What differs between the encoder families and is reproduced here: BERT frames a text as
`[CLS] ... [SEP]` and returns `token_type_ids`; RoBERTa / XLM-R frame it as `<s> ... </s>`, have no
token types, pad with id 1 and number positions from `pad_token_id + 1`, so their
`max_position_embeddings` is the longest input + 2.
"""

from __future__ import annotations

import io
import json
import math
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import (BertConfig, BertModel, PreTrainedTokenizerFast, RobertaConfig, RobertaModel,
                          XLMRobertaConfig, XLMRobertaModel)

from .hf import quiet_transformers

# special tokens per style by role, in id order (RoBERTa / XLM-R: <s>=0, <pad>=1, </s>=2, <unk>=3)
STYLES = {"bert": {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"},
          "roberta": {"cls": "<s>", "pad": "<pad>", "sep": "</s>", "unk": "<unk>", "mask": "<mask>"}}
ARCHS = {"bert": (BertConfig, BertModel, "bert"), "roberta": (RobertaConfig, RobertaModel, "roberta"),
         "xlm-roberta": (XLMRobertaConfig, XLMRobertaModel, "roberta")}


def _word_counts(texts: Iterable[str], tok: Tokenizer) -> Counter:
    counts: Counter = Counter()
    for text in texts:
        norm = tok.normalizer.normalize_str(str(text))
        counts.update(w for w, _ in tok.pre_tokenizer.pre_tokenize_str(norm))
    return counts


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2000, kind: str = "wordpiece",
                    lowercase: bool = True, style: str = "bert") -> PreTrainedTokenizerFast:
    """A WordPiece or Unigram tokenizer fitted on `texts`; `style` "bert" frames texts as [CLS] ... [SEP]
    (with token type ids), "roberta" as <s> ... </s> (no token types, <pad> = 1, as RoBERTa and XLM-R).

    The vocabulary is every character seen (plus `##` continuations for WordPiece) and the
    most frequent whole words, ordered by (-count, string): deterministic, so the same texts
    always give the same ids. (The `tokenizers` trainers break ties in hash-map order, which
    changes ids from run to run and would make seeded training irreproducible.) Unigram
    piece scores are log relative frequencies.
    """
    if kind not in ("wordpiece", "unigram"):
        raise ValueError(f"tokenizer kind must be 'wordpiece' or 'unigram', got {kind!r}")
    if style not in STYLES:
        raise ValueError(f"tokenizer style must be one of {sorted(STYLES)}, got {style!r}")
    roles = STYLES[style]
    specials = list(roles.values())
    probe = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    probe.normalizer = normalizers.Sequence([normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else []))
    probe.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words = _word_counts(texts, probe)
    chars: Counter = Counter()
    for w, c in words.items():
        chars.update({ch: c for ch in w})
    by_count = lambda item: (-item[1], item[0])  # noqa: E731
    char_list = [ch for ch, _ in sorted(chars.items(), key=by_count)]
    pieces = specials + char_list + (["##" + ch for ch in char_list] if kind == "wordpiece" else [])
    room = max(0, vocab_size - len(pieces))
    word_list = [w for w, _ in sorted(words.items(), key=by_count) if len(w) > 1][:room]
    pieces += word_list
    if kind == "wordpiece":
        tok = Tokenizer(models.WordPiece({p: i for i, p in enumerate(pieces)}, unk_token=roles["unk"]))
        tok.decoder = decoders.WordPiece()
    else:
        total = sum(chars.values()) + sum(words[w] for w in word_list) or 1
        freq = {**chars, **{w: words[w] for w in word_list}}
        vocab = [(p, 0.0) for p in specials] + [(p, math.log(freq[p] / total)) for p in pieces[len(specials):]]
        tok = Tokenizer(models.Unigram(vocab, unk_id=specials.index(roles["unk"]), byte_fallback=False))
    tok.normalizer = probe.normalizer
    tok.pre_tokenizer = probe.pre_tokenizer
    cls, sep = roles["cls"], roles["sep"]
    special_ids = [(cls, tok.token_to_id(cls)), (sep, tok.token_to_id(sep))]
    if style == "bert":
        tok.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B:1 {sep}:1", special_tokens=special_ids)
        return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=roles["unk"], pad_token=roles["pad"],
                                       cls_token=cls, sep_token=sep, mask_token=roles["mask"], model_max_length=512)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} {sep} $B {sep}", special_tokens=special_ids)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=roles["unk"], pad_token=roles["pad"],
                                   bos_token=cls, eos_token=sep, cls_token=cls, sep_token=sep,
                                   mask_token=roles["mask"], model_max_length=512,
                                   model_input_names=["input_ids", "attention_mask"])


def build_tiny_encoder(texts: Sequence[str], out_dir: str | Path, *, vocab_size: int = 2000,
                       hidden_size: int = 64, num_layers: int = 2, num_heads: int = 2,
                       intermediate_size: int = 128, max_position: int = 512, tokenizer_kind: str = "wordpiece",
                       seed: int = 0, arch: str = "bert") -> Path:
    """Write a tiny random encoder (`arch`: bert | roberta | xlm-roberta) + trained tokenizer to `out_dir`.

    `max_position` is the longest input in tokens; RoBERTa-style models get 2 more position embeddings
    (their positions start after the padding index), as the published checkpoints do (514 for 512).
    """
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {sorted(ARCHS)}, got {arch!r}")
    config_cls, model_cls, style = ARCHS[arch]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(texts, vocab_size=vocab_size, kind=tokenizer_kind, style=style)
    extra = {} if style == "bert" else dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                            type_vocab_size=1)
    config = config_cls(vocab_size=len(tokenizer), hidden_size=hidden_size, num_hidden_layers=num_layers,
                        num_attention_heads=num_heads, intermediate_size=intermediate_size,
                        max_position_embeddings=max_position + (0 if style == "bert" else tokenizer.pad_token_id + 1),
                        pad_token_id=tokenizer.pad_token_id, **extra)
    return _save_random(model_cls, config, tokenizer, out, seed)


def _save_random(model_cls, config, tokenizer, out: Path, seed: int) -> Path:
    """A randomly initialised `model_cls(config)` (seeded, global RNG untouched) saved with `tokenizer` to `out`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_cls(config)
    with quiet_transformers():
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    return out


def _sentencepiece(texts: Sequence[str], vocab_size: int) -> bytes:
    """A small sentencepiece unigram model trained on `texts` (serialized)."""
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(list(texts)), model_writer=buf, vocab_size=vocab_size,
                                   model_type="unigram", character_coverage=1.0, hard_vocab_limit=False,
                                   num_threads=1, minloglevel=2)
    return buf.getvalue()


def build_tiny_marian(source_texts: Sequence[str], target_texts: Sequence[str], out_dir: str | Path, *,
                      vocab_size: int = 120, d_model: int = 16, layers: int = 1, heads: int = 2, ffn: int = 32,
                      max_position: int = 64, seed: int = 0) -> Path:
    """Write a tiny random MarianMT model + MarianTokenizer (source.spm, target.spm, shared vocab.json) to
    `out_dir`, laid out like a `Helsinki-NLP/opus-mt-*` folder. Its translations are noise; the code path
    (sentencepiece tokenizer, `generate` with its key/value cache, decoding) is the real one."""
    import sentencepiece as spm
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pieces: dict[str, int] = {"</s>": 0, "<unk>": 1}
    for name, texts in (("source.spm", source_texts), ("target.spm", target_texts)):
        model = _sentencepiece(texts, vocab_size)
        (out / name).write_bytes(model)
        proc = spm.SentencePieceProcessor(model_proto=model)
        for i in range(proc.get_piece_size()):
            pieces.setdefault(proc.id_to_piece(i), len(pieces))
    pieces.pop("<s>", None)                    # Marian vocabularies have no <s>
    pieces = {p: i for i, p in enumerate(pieces)}
    pieces["<pad>"] = len(pieces)
    (out / "vocab.json").write_text(json.dumps(pieces, ensure_ascii=False), encoding="utf-8")
    tokenizer = MarianTokenizer(str(out / "source.spm"), str(out / "target.spm"), str(out / "vocab.json"),
                                model_max_length=max_position)
    config = MarianConfig(vocab_size=len(pieces), d_model=d_model, encoder_layers=layers, decoder_layers=layers,
                          encoder_attention_heads=heads, decoder_attention_heads=heads, encoder_ffn_dim=ffn,
                          decoder_ffn_dim=ffn, max_position_embeddings=max_position, pad_token_id=pieces["<pad>"],
                          eos_token_id=0, decoder_start_token_id=pieces["<pad>"], forced_eos_token_id=0,
                          max_length=max_position, num_beams=1)
    return _save_random(MarianMTModel, config, tokenizer, out, seed)
