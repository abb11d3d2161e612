"""Word CNN (PyTorch): Keras-style tokenizer -> Embedding -> Conv1D(relu) -> global max pool -> Dense -> out.

The layer sizes default to the original Keras design (Embedding(num_words, 100),
Conv1D(128, 5, relu), GlobalMaxPooling1D, Dense(64, relu), Dense(n_labels)).
Single-label tasks: softmax + cross-entropy. Multilabel tasks: sigmoid + binary
cross-entropy, per-class thresholds tuned on the tune set.
Trained by the shared loop (emotions.models.nn.trainer, like the transformer): Adam, batches of
similar length, early stopping on the tune loss (patience, best weights restored), seeded, history.

`embedding: "navec"` initialises the Embedding with the 300-d Russian navec vectors bundled
with natasha (`embedding_trainable` picks fine-tuning or frozen).

Padding never changes a prediction: the padding row is zero and max pooling only looks at
convolution windows that start inside the text, so batches are padded to their own longest
text (`maxlen` only truncates).

Model folder: model_card.json, cnn.pt (state dict), tokenizer.json, history.json.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..core.io import write_json_atomic
from ..core.options import merged
from .keras_tokenizer import PAD_INDEX, KerasTokenizer, pad_sequences
from .nn.data import TokenizedDataset
from .nn.losses import build_loss
from .nn.seed import seed_everything
from .nn.trainer import TrainConfig, Trainer
from .kind_options import CNNOptions
from ..data.labels import TaskSpec
from ..data.preprocess import PreprocessConfig
from .base import Predictor, read_model_card

log = logging.getLogger(__name__)

DEFAULTS: dict = CNNOptions.defaults()
RUNTIME_KEYS = {"preprocess", "progress"}   # accepted in params, not stored as model parameters
WEIGHTS_FILE = "cnn.pt"
TOKENIZER_FILE = "tokenizer.json"
HISTORY_FILE = "history.json"


# --- the network ---------------------------------------------------------------------------------

class TextCNN(nn.Module):
    """Embedding -> Conv1D + relu -> global max pool (over windows inside the text) -> Dense relu -> logits."""

    def __init__(self, vocab_size: int, n_labels: int, embedding_dim: int = 100, filters: int = 128,
                 kernel_size: int = 5, dense_units: int = 64, dropout: float = 0.0,
                 embedding_weights: np.ndarray | None = None, embedding_trainable: bool = True):
        super().__init__()
        self.kernel_size = kernel_size
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.conv = nn.Conv1d(embedding_dim, filters, kernel_size)
        self.dense = nn.Linear(filters, dense_units)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(dense_units, n_labels)
        self.reset_parameters_keras()
        if embedding_weights is not None:
            w = torch.as_tensor(np.asarray(embedding_weights), dtype=torch.float32)
            if tuple(w.shape) != (vocab_size, embedding_dim):
                raise ValueError(f"embedding weights have shape {tuple(w.shape)}, expected {(vocab_size, embedding_dim)}")
            with torch.no_grad():
                self.embedding.weight.copy_(w)
        self.embedding.weight.requires_grad_(embedding_trainable)

    def reset_parameters_keras(self) -> None:
        """Keras initialisers: embeddings uniform(-0.05, 0.05), Glorot-uniform kernels, zero biases."""
        with torch.no_grad():
            nn.init.uniform_(self.embedding.weight, -0.05, 0.05)
            self.embedding.weight[0].zero_()
            for layer in (self.conv, self.dense, self.out):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if ids.shape[1] < self.kernel_size:
            ids = nn.functional.pad(ids, (0, self.kernel_size - ids.shape[1]))
        x = self.embedding(ids).transpose(1, 2)                 # B x E x T
        h = torch.relu(self.conv(x))                             # B x F x (T - k + 1)
        if lengths is not None:
            n_valid = (lengths - self.kernel_size + 1).clamp(min=1)                  # windows starting in text
            mask = torch.arange(h.shape[2], device=h.device)[None, :] < n_valid[:, None]
            h = h.masked_fill(~mask[:, None, :], 0.0)            # relu >= 0, so 0 never wins the max
        pooled = h.amax(dim=2)
        return self.out(self.dropout(torch.relu(self.dense(pooled))))


def batch_tensors(seqs: Sequence[Sequence[int]], kernel_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Post-padded id tensor (at least `kernel_size` wide) and the lengths."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    width = max(int(lengths.max()) if len(seqs) else 0, kernel_size)
    return torch.from_numpy(pad_sequences(seqs, maxlen=width)), lengths


# --- predictor -----------------------------------------------------------------------------------

class CNNPredictor(Predictor):
    kind = "cnn"

    def __init__(self, model: TextCNN, tokenizer: KerasTokenizer, history: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.model, self.tokenizer, self.history = model, tokenizer, history

    def sequences(self, texts: Sequence[str]) -> list[list[int]]:
        maxlen = int(self.params.get("maxlen") or 0)
        seqs = self.tokenizer.texts_to_sequences(texts)
        return [s[:maxlen] for s in seqs] if maxlen else seqs

    def logits_of_sequences(self, seqs: Sequence[Sequence[int]]) -> np.ndarray:
        """Logits in the input order (batches of similar length for speed)."""
        bs = int(self.params.get("eval_batch_size") or 256)
        order = np.argsort([len(s) for s in seqs], kind="stable")
        out = np.zeros((len(seqs), len(self.labels)), dtype=np.float32)
        self.model.eval()
        with torch.inference_mode():
            for start in range(0, len(seqs), bs):
                idx = order[start:start + bs]
                ids, lengths = batch_tensors([seqs[i] for i in idx], self.model.kernel_size)
                out[idx] = self.model(ids, lengths).numpy()
        return out

    def proba_from_logits(self, logits: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.asarray(logits, dtype=np.float32))
        p = torch.sigmoid(t) if self.multilabel else torch.softmax(t, dim=1)
        return p.numpy().astype(np.float64)

    def predict_proba_clean(self, texts: Sequence[str]) -> np.ndarray:
        return self.proba_from_logits(self.logits_of_sequences(self.sequences(list(texts))))

    def save_weights(self, model_dir: Path) -> None:
        tmp = model_dir / f".{WEIGHTS_FILE}.tmp"
        torch.save(self.model.state_dict(), tmp)
        tmp.replace(model_dir / WEIGHTS_FILE)
        self.tokenizer.save(model_dir / TOKENIZER_FILE)
        if self.history is not None:
            write_json_atomic(model_dir / HISTORY_FILE, self.history)


def _network(p: dict, vocab_size: int, n_labels: int, embedding_weights: np.ndarray | None = None) -> TextCNN:
    return TextCNN(vocab_size, n_labels, embedding_dim=p["embedding_dim"], filters=p["filters"],
                   kernel_size=p["kernel_size"], dense_units=p["dense_units"], dropout=p["dropout"],
                   embedding_weights=embedding_weights, embedding_trainable=p["embedding_trainable"])


def resolve_params(params: dict) -> dict:
    """DEFAULTS updated by `params` (checked: unknown keys and bad values raise); navec forces its 300-d embedding."""
    p = merged(CNNOptions, params, RUNTIME_KEYS, "cnn options")
    if p["embedding"] == "navec":
        from ..data.word_vectors import load_navec
        dim = int(load_navec().pq.dim)
        if "embedding_dim" in params and params["embedding_dim"] not in (None, dim):
            log.warning("embedding=navec: embedding_dim is %d (navec), not %s", dim, params["embedding_dim"])
        p["embedding_dim"] = dim
    for key in ("num_words", "maxlen", "embedding_dim", "filters", "kernel_size", "dense_units", "batch_size",
                "epochs", "eval_batch_size"):
        if not isinstance(p[key], (int, np.integer)) or p[key] < 1:
            raise ValueError(f"cnn parameter {key} must be a positive integer, got {p[key]!r}")
    return p


def _labels_of(df: pd.DataFrame, labels: list[str], multilabel: bool, name: str) -> np.ndarray:
    missing = [c for c in ["text", *labels] if c not in df.columns]
    if missing:
        raise ValueError(f"{name} frame lacks column(s) {missing}; expected text + {labels}")
    y = df[labels].to_numpy(dtype=np.int64)
    if not multilabel:
        bad = np.flatnonzero(y.sum(axis=1) != 1)
        if len(bad):
            raise ValueError(f"{name} frame: single-label task needs exactly one 1 per row; "
                             f"row {bad[0]} has {int(y[bad[0]].sum())} ({len(bad)} such rows)")
    return y


class _TrainerView(nn.Module):
    """The CNN as the shared training loop sees it: `.encoder`, `.head`, forward(input_ids, attention_mask)."""

    def __init__(self, net: TextCNN):
        super().__init__()
        self.encoder, self.head = net, nn.Identity()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids, attention_mask.sum(dim=1))


def fit(model: TextCNN, train_seqs: list[list[int]], y_train: np.ndarray, tune_seqs: list[list[int]],
        y_tune: np.ndarray, p: dict, multilabel: bool, progress: bool = True) -> dict:
    """Train `model` in place with the shared loop (emotions.models.nn.trainer): Adam, early stopping on the
    tune loss (best weights restored) when a tune set is given; return the history."""
    def dataset(seqs, y):
        return TokenizedDataset([np.asarray(s, dtype=np.int64) for s in seqs], np.asarray(y, dtype=np.float32))
    cfg = TrainConfig.from_options(p, max_grad_norm=None, optimizer="adam", schedule="constant", warmup_ratio=0.0,
                                   monitor="loss", precision="no", num_workers=0, progress=progress)
    tune_ds = dataset(tune_seqs, y_tune) if len(tune_seqs) else None
    trainer = Trainer(_TrainerView(model), build_loss(multilabel), dataset(train_seqs, y_train), tune_ds,
                      multilabel, PAD_INDEX, cfg)
    result = trainer.fit()
    model.cpu()
    losses = {e["epoch"]: e.get("tune_loss") for e in result.history}
    return {"metric": result.metric_name or ("tune_weighted_f1" if multilabel else "tune_accuracy"),
            "monitor": "tune_loss", "epochs": result.history, "best_epoch": result.best_epoch,
            "best_tune_loss": losses.get(result.best_epoch), "stopped_early": result.stopped_early}


def train(train_df: pd.DataFrame, tune_df: pd.DataFrame, spec: TaskSpec, params: dict,
          out_dir: Path) -> CNNPredictor:
    """Fit the tokenizer and the CNN on `train_df`, stop early on `tune_df`, tune thresholds, save to `out_dir`."""
    p = resolve_params(params)
    prep = PreprocessConfig.from_dict(params.get("preprocess"))
    progress = bool(params.get("progress", True))
    labels = list(spec.labels)
    y_train = _labels_of(train_df, labels, spec.multilabel, "train")
    has_tune = tune_df is not None and len(tune_df) > 0
    y_tune = _labels_of(tune_df, labels, spec.multilabel, "tune") if has_tune else np.zeros((0, len(labels)), np.int64)
    if len(train_df) == 0:
        raise ValueError("cnn: the train frame is empty")

    old_threads = torch.get_num_threads()
    if p["num_threads"]:
        torch.set_num_threads(int(p["num_threads"]))
    try:
        t0 = time.perf_counter()
        seed_everything(int(p["seed"]))
        shell = CNNPredictor(None, None, labels=labels, multilabel=spec.multilabel, preprocess=prep,
                             task=spec.name, params=p)
        train_texts = shell.preprocess(train_df["text"].tolist())
        tune_texts = shell.preprocess(tune_df["text"].tolist()) if has_tune else []
        tokenizer = KerasTokenizer(num_words=p["num_words"], oov_token=p["oov_token"], lower=p["lower"])
        tokenizer.fit_on_texts(train_texts)
        weights, navec_share = None, None
        if p["embedding"] == "navec":
            from ..data.word_vectors import coverage, embedding_matrix
            weights = embedding_matrix(tokenizer.vocabulary(), p["embedding_dim"], seed=int(p["seed"]),
                                       oov_token=p["oov_token"], n_rows=tokenizer.vocab_size)
            navec_share = round(coverage(tokenizer.vocabulary()), 4)
        model = _network(p, tokenizer.vocab_size, len(labels), weights)
        predictor = CNNPredictor(model, tokenizer, labels=labels, multilabel=spec.multilabel, preprocess=prep,
                                 task=spec.name, params=p)
        train_seqs = predictor.sequences(train_texts)
        tune_seqs = predictor.sequences(tune_texts)
        history = fit(model, train_seqs, y_train, tune_seqs, y_tune, p, spec.multilabel, progress)
        history["train_seconds"] = round(time.perf_counter() - t0, 3)
        history["train_rows"], history["tune_rows"] = len(train_df), len(tune_seqs)
        history["vocab_size"] = tokenizer.vocab_size
        if navec_share is not None:
            history["navec_coverage"] = navec_share
        predictor.history = history
        log.info("cnn trained on %d texts (vocab %d) in %.1fs; best epoch %d of %d", len(train_df),
                 tokenizer.vocab_size, history["train_seconds"], history["best_epoch"], len(history["epochs"]))
        if has_tune:
            predictor.tune(tune_df)
    finally:
        torch.set_num_threads(old_threads)
    predictor.save(out_dir, extra={"training": {k: history[k] for k in
                                                ("best_epoch", "best_tune_loss", "stopped_early", "train_seconds",
                                                 "train_rows", "tune_rows", "vocab_size", "navec_coverage")
                                                if k in history}})
    return predictor


def load(model_dir: Path) -> CNNPredictor:
    model_dir = Path(model_dir)
    card = read_model_card(model_dir)
    kwargs = Predictor.card_kwargs(card)
    p = {**DEFAULTS, **kwargs["params"]}
    tokenizer = KerasTokenizer.load(model_dir / TOKENIZER_FILE)
    model = _network(p, tokenizer.vocab_size, len(kwargs["labels"]))
    weights_path = model_dir / WEIGHTS_FILE
    if not weights_path.is_file():
        raise FileNotFoundError(f"{model_dir}: CNN weights {WEIGHTS_FILE} are missing")
    model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    model.eval()
    history_path = model_dir / HISTORY_FILE
    history = None
    if history_path.is_file():
        import json
        history = json.loads(history_path.read_text(encoding="utf-8"))
    return CNNPredictor(model, tokenizer, history=history, **kwargs)
