"""Domain-adaptive continued pre-training: masked-language modelling of an encoder on in-domain texts.

`adapt_encoder` loads the encoder folder as `AutoModelForMaskedLM` (checkpoints saved as a bare
encoder, like the converted e5 or the tiny test encoders, have no MLM head: a fresh one is
initialised, its decoder tied to the word embeddings), trains it with transformers'
`DataCollatorForLanguageModeling` in a plain AdamW loop (length-bucketed batches, seeded masks),
and saves only the encoder (with the original's pooler weights, if it had any) plus the tokenizer,
so `load_encoder` / `load_tokenizer` load the result like the original. A summary (rows, loss per
epoch, seconds) is written next to it as `mlm.json`.

Only texts the model may see at training time belong here: training texts and the unlabelled
test texts, never holdout texts.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from ..nn.data import LengthBucketBatchSampler, tokenize
from ..nn.hf import quiet_transformers
from .loading import load_tokenizer

log = logging.getLogger(__name__)

SUMMARY_FILE = "mlm.json"


def read_summary(folder: str | Path) -> dict | None:
    """The `mlm.json` summary `adapt_encoder` wrote into `folder`, or None."""
    path = Path(folder) / SUMMARY_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _load_mlm(source: str | Path, local_only: bool):
    from transformers import AutoModelForMaskedLM

    with quiet_transformers():
        model = AutoModelForMaskedLM.from_pretrained(source, local_files_only=local_only, tie_word_embeddings=True)
    out_emb, in_emb = model.get_output_embeddings(), model.get_input_embeddings()
    if out_emb is None or out_emb.weight.data_ptr() != in_emb.weight.data_ptr():
        log.warning("MLM decoder of %s is not tied to the word embeddings", source)
    return model


def _base_encoder(source: str | Path, local_only: bool, mlm_model):
    """The original encoder class (as `AutoModel` loads it) holding the adapted weights of `mlm_model`.

    Loaded from `source` first, so weights the MLM class has no place for (a BERT pooler) keep their
    original values; a pooler the original checkpoint lacked stays out of the saved folder.
    """
    from transformers import AutoModel

    with quiet_transformers():
        base, info = AutoModel.from_pretrained(source, local_files_only=local_only, output_loading_info=True)
    absent = set(info.get("missing_keys") or [])
    if getattr(base, "pooler", None) is not None and any(k.startswith("pooler.") for k in absent):
        base.pooler = None   # not in the original checkpoint: do not add a random one
    missing, unexpected = base.load_state_dict(mlm_model.base_model.state_dict(), strict=False)
    kept = [k for k in missing if not k.startswith("pooler.")]
    if kept or unexpected:
        raise RuntimeError(f"adapted encoder does not fit {type(base).__name__}: missing {kept[:5]}, "
                           f"unexpected {list(unexpected)[:5]}")
    return base


def _param_groups(model, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, prm in model.named_parameters():
        if prm.requires_grad:
            (no_decay if prm.ndim < 2 or "norm" in name.lower() else decay).append(prm)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _sample_texts(texts: Sequence[str], max_rows: int | None, seed: int) -> list[str]:
    """The non-blank texts, or a seeded random subset of `max_rows` of them (in their order)."""
    texts = [str(t) for t in texts if str(t).strip()]
    if max_rows is not None and len(texts) > int(max_rows):
        keep = np.sort(np.random.default_rng(seed).choice(len(texts), int(max_rows), replace=False))
        texts = [texts[i] for i in keep]
    return texts


def _mlm_epoch(model, optimizer, batches: Iterable[dict], dev, autocast, max_grad_norm: float | None, bar,
               epoch: int) -> tuple[float, int]:
    """One pass of masked-language-model training: (mean loss, optimizer steps)."""
    total, steps = 0.0, 0
    for batch in batches:
        if bar is not None:
            bar.update(1)
        if not bool((batch["labels"] != -100).any()):
            continue   # nothing masked (very short rows): no loss to learn from
        batch = {k: v.to(dev) for k, v in batch.items()}
        with torch.autocast(dev.type, dtype=autocast, enabled=autocast is not None):
            loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if max_grad_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        total += float(loss.detach())
        steps += 1
        if bar is not None:
            bar.set_postfix(epoch=epoch + 1, loss=f"{total / steps:.3f}")
    return total / max(steps, 1), steps


def _loss_summary(losses: list[float]) -> dict:
    return {"loss_per_epoch": [round(v, 5) for v in losses], "loss_first_epoch": round(losses[0], 5),
            "loss_last_epoch": round(losses[-1], 5)}


def adapt_encoder(source: str | Path, texts: Sequence[str], out_dir: str | Path, *, epochs: int = 1,
                  mlm_probability: float = 0.15, lr: float = 5e-5, batch_size: int = 32, max_length: int = 128,
                  seed: int = 42, max_rows: int | None = None, weight_decay: float = 0.01,
                  max_grad_norm: float | None = 1.0, local_only: bool = True, device: str | None = None,
                  progress: bool = True) -> Path:
    """Continue pre-training the encoder in `source` with MLM on `texts`; save encoder + tokenizer to `out_dir`.

    `max_rows`: a random subset of the texts (CPU-sized runs). Returns `out_dir`, which also holds
    `mlm.json`: {"epochs", "rows", "loss_per_epoch", "loss_first_epoch", "loss_last_epoch", "steps",
    "train_seconds" (the MLM loop), "seconds" (all of it: loading, training, saving), ...}.
    """
    from transformers import DataCollatorForLanguageModeling

    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    texts = _sample_texts(texts, max_rows, seed)
    if not texts:
        raise ValueError("no texts to continue pre-training on")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    started = time.perf_counter()
    tokenizer = load_tokenizer(source, local_only)
    if tokenizer.mask_token_id is None:
        raise ValueError(f"tokenizer of {source} has no mask token: masked-language modelling needs one")
    ids = tokenize(tokenizer, texts, max_length)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability, seed=seed)
    sampler = LengthBucketBatchSampler([len(x) for x in ids], batch_size, seed=seed)
    autocast = torch.bfloat16 if dev.type == "cuda" and torch.cuda.is_bf16_supported() else None
    losses: list[float] = []
    with torch.random.fork_rng(devices=[]):   # dropout seeded, the caller's RNG untouched
        torch.manual_seed(seed)
        model = _load_mlm(source, local_only).to(dev)
        model.train()
        loop_started, steps = time.perf_counter(), 0
        optimizer = torch.optim.AdamW(_param_groups(model, weight_decay), lr=lr)
        bar = None
        if progress:
            from ...core.progress import tqdm    # streamed to the console by the runner, like the epoch bars
            bar = tqdm(total=epochs * len(sampler), desc="mlm", unit="batch", dynamic_ncols=True)
        for epoch in range(epochs):
            sampler.set_epoch(epoch)
            batches = (collator([{"input_ids": ids[i].tolist()} for i in rows]) for rows in sampler)
            loss, done = _mlm_epoch(model, optimizer, batches, dev, autocast, max_grad_norm, bar, epoch)
            steps += done
            losses.append(loss)
            log.info("MLM epoch %d/%d: loss %.4f", epoch + 1, epochs, losses[-1])
        if bar is not None:
            bar.close()
        loop_seconds = time.perf_counter() - loop_started
    model.eval()
    base = _base_encoder(source, local_only, model.cpu())
    with quiet_transformers():
        base.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
    summary = {"epochs": int(epochs), "rows": len(texts), "tokens": int(sum(len(x) for x in ids)),
               "mlm_probability": float(mlm_probability), "lr": float(lr), "batch_size": int(batch_size),
               "max_length": int(max_length), **_loss_summary(losses), "steps": steps,
               "train_seconds": round(loop_seconds, 2), "seconds": round(time.perf_counter() - started, 2),
               "device": dev.type}
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    log.info("MLM done: %d rows, loss %.4f -> %.4f, %.1fs", len(texts), losses[0], losses[-1], summary["seconds"])
    return out
