"""Put a vocabulary-pruned encoder back on the full vocabulary, so new text segments like the pre-trained one."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from .loading import load_encoder, load_tokenizer

log = logging.getLogger(__name__)


def restore_full_vocabulary(encoder, pruned_tokenizer, full_source: str | Path, local_only: bool = True):
    """Return (encoder, tokenizer) with the full pre-trained vocabulary of `full_source`.

    The word-embedding rows of the pieces the pruned encoder kept (and trained) are written into
    the full pre-trained matrix at their original ids; every other row stays pre-trained. The
    returned tokenizer is the full one, so any text gets the pieces the pre-trained encoder gives it.
    """
    full_tokenizer = load_tokenizer(full_source, local_only)
    full_emb = load_encoder(full_source, local_only).get_input_embeddings()
    small_vocab, full_vocab = pruned_tokenizer.get_vocab(), full_tokenizer.get_vocab()
    missing = [p for p in small_vocab if p not in full_vocab]
    if missing:
        raise ValueError(f"pruned vocabulary has {len(missing)} piece(s) not in {full_source}, e.g. {missing[0]!r}")
    small_ids = torch.tensor(list(small_vocab.values()))
    full_ids = torch.tensor([full_vocab[p] for p in small_vocab])
    trainable = encoder.get_input_embeddings().weight.requires_grad
    trained = encoder.get_input_embeddings().weight.detach()
    with torch.no_grad():
        full_emb.weight[full_ids] = trained[small_ids].to(device=full_emb.weight.device, dtype=full_emb.weight.dtype)
    full_emb.weight.requires_grad_(trainable)
    encoder.set_input_embeddings(full_emb.to(trained.device))
    from transformers import AutoConfig
    full_config = AutoConfig.from_pretrained(full_source, local_files_only=local_only)
    for key in ("vocab_size", "pad_token_id", "bos_token_id", "eos_token_id"):
        setattr(encoder.config, key, getattr(full_config, key, None))
    log.info("full vocabulary restored: %d trained rows of %d", len(small_ids), encoder.config.vocab_size)
    return encoder, full_tokenizer
