"""Training loop: Accelerate (one CPU ... many GPUs, same code), early stopping on the tune metric,
best checkpoint restored, per-epoch history.

Multi-process (one process per GPU, or gloo processes on CPU): each process trains on its share of
the batches (optimiser steps per epoch divide by the number of processes), the tune rows are split
between the processes and gathered back so each is scored exactly once, and only the main process
writes files. The learning rate follows `lr_scaling` (none | linear | sqrt in the number of processes).

Speed: length-bucketed dynamic padding, bf16 autocast (CUDA, or a CPU with native bf16), fused AdamW (see optim.py),
no per-step host-device syncs (the running loss stays on the device and is read only every
`log_every` steps), DataLoader workers with pinned memory on CUDA.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from ...core.progress import tqdm

from ...evaluation.metrics import apply_thresholds, tune_thresholds, weighted_f1
from .data import LengthBucketBatchSampler, PadCollator, TokenizedDataset
from .accelerator import make_accelerator
from .distributed import gather_rows, lr_factor
from .optim import build_optimizer, build_scheduler, param_groups
from .seed import worker_init_fn

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Loop settings, built from a model kind's options (`from_options`): their meaning and defaults are the
    transformer options' (emotions/models/kind_options.py), defined there once."""

    epochs: int
    batch_size: int
    eval_batch_size: int
    grad_accum: int
    max_grad_norm: float | None
    optimizer: str
    lr: float
    head_lr: float | None
    weight_decay: float
    layer_decay: float
    schedule: str
    warmup_ratio: float
    patience: int | None
    min_delta: float
    checkpoint: str                     # memory | disk
    precision: str                      # auto | bf16 | fp16 | no
    num_workers: int | str
    bucket_multiplier: int
    log_every: int
    seed: int
    progress: bool
    lr_scaling: str                     # none | linear | sqrt: lr multiplier in the number of processes
    monitor: str = "metric"             # early stopping / best epoch on: metric (tune metric, higher is
                                        # better) | loss (tune loss, lower is better)
    ensure_one: bool = True

    @classmethod
    def from_options(cls, options: dict, **overrides) -> "TrainConfig":
        """The loop settings in `options` (a kind's checked options), the rest from the transformer options'
        defaults; `overrides` win (e.g. the CNN's Adam without clipping)."""
        from ..kind_options import TransformerOptions

        values = {**TransformerOptions().model_dump(), **options, **overrides}
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})

    def __post_init__(self) -> None:
        if self.checkpoint not in ("memory", "disk"):
            raise ValueError(f"checkpoint must be 'memory' or 'disk', got {self.checkpoint!r}")
        if self.precision not in ("auto", "bf16", "fp16", "no"):
            raise ValueError(f"precision must be auto, bf16, fp16 or no, got {self.precision!r}")
        if self.monitor not in ("metric", "loss"):
            raise ValueError(f"monitor must be 'metric' or 'loss', got {self.monitor!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError("epochs, batch_size and grad_accum must be >= 1")
        lr_factor(self.lr_scaling, 1)


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    best_metric: float | None = None
    metric_name: str = ""
    stopped_early: bool = False
    train_seconds: float = 0.0
    distributed: dict = field(default_factory=dict)   # processes, per-device / global batch, lr rule
    tune_proba: np.ndarray | None = None     # tune probabilities of the best epoch (gathered: every row once)

    def summary(self) -> dict:
        d = asdict(self)
        d.pop("history")
        d.pop("tune_proba")
        d["epochs_run"] = len(self.history)
        return d


def resolve_workers(num_workers: int | str, cuda: bool) -> int:
    if num_workers == "auto":
        return min(4, max(1, (os.cpu_count() or 2) // 2)) if cuda else 0
    return int(num_workers)


def inference_loader(dataset: TokenizedDataset, batch_size: int, pad_token_id: int,
                     pad_to_multiple_of: int | None = None) -> DataLoader:
    """Rows sorted by length (longest first), padded per batch, in the main process."""
    sampler = LengthBucketBatchSampler(dataset.lengths, batch_size, shuffle=False)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=PadCollator(pad_token_id, pad_to_multiple_of))


@torch.inference_mode()
def predict_logits(model: nn.Module, dataset: TokenizedDataset, batch_size: int, pad_token_id: int,
                   device: torch.device | str | None = None, autocast_dtype: torch.dtype | None = None,
                   progress: bool = False) -> np.ndarray:
    """Float32 logits (n x labels) in dataset order; one device->host copy at the end."""
    if len(dataset) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    multiple = 8 if device.type == "cuda" else None
    outs, idx = [], []
    for batch in tqdm(inference_loader(dataset, batch_size, pad_token_id, multiple), disable=not progress,
                      desc="predict", leave=False):
        ids = batch["input_ids"].to(device, non_blocking=True)
        mask = batch["attention_mask"].to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            outs.append(model(ids, mask).float())
        idx.append(batch["index"])
    logits = torch.cat(outs).cpu().numpy()
    order = torch.cat(idx).numpy()
    result = np.empty_like(logits)
    result[order] = logits
    model.train(was_training)
    return result


def logits_to_proba(logits: np.ndarray, multilabel: bool) -> np.ndarray:
    t = torch.from_numpy(np.asarray(logits, dtype=np.float32))
    p = torch.sigmoid(t) if multilabel else torch.softmax(t, dim=1)
    return p.double().numpy()


@dataclass
class _FitState:
    """What one `Trainer.fit` works with: the prepared model (and its unwrapped module), optimiser, schedule."""

    model: nn.Module
    raw_model: nn.Module
    optimizer: object
    scheduler: object
    loader: DataLoader
    sampler: LengthBucketBatchSampler
    has_tune: bool
    result: TrainResult


class Trainer:
    """Fits an `EmotionClassifier`-like module (`.encoder`, `.head`, forward(ids, mask) -> logits)."""

    def __init__(self, model: nn.Module, loss_fn: nn.Module, train_ds: TokenizedDataset,
                 tune_ds: TokenizedDataset | None, multilabel: bool, pad_token_id: int,
                 config: TrainConfig, work_dir: str | Path | None = None, accelerator=None,
                 before_epoch: Callable[[int, TokenizedDataset], dict | None] | None = None):
        """`before_epoch(epoch, train_ds)`, when given, runs before each epoch (1-based) and may change the
        training rows' token ids in place (`train_ds.set_input_ids`, same row count); the numbers it returns go
        into that epoch's history. DataLoader workers are then started afresh each epoch (not persistent), so
        they see the new ids; with several processes every process must make the same change (same seed)."""
        self.before_epoch = before_epoch
        self.model, self.loss_fn = model, loss_fn
        self.train_ds, self.tune_ds = train_ds, tune_ds
        self.multilabel = multilabel
        self.pad_token_id = pad_token_id
        self.cfg = config
        self.work_dir = Path(work_dir) if work_dir else None
        cuda = torch.cuda.is_available()
        if cuda:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.num_workers = resolve_workers(config.num_workers, cuda)
        self.accelerator = accelerator or make_accelerator(config.precision, config.grad_accum, pin_memory=cuda)
        self.device = self.accelerator.device
        mp = self.accelerator.mixed_precision
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mp)

    # --- pieces -----------------------------------------------------------------------------
    def _train_loader(self) -> tuple[DataLoader, LengthBucketBatchSampler]:
        sampler = LengthBucketBatchSampler(self.train_ds.lengths, self.cfg.batch_size,
                                           self.cfg.bucket_multiplier, shuffle=True, seed=self.cfg.seed)
        multiple = 8 if self.device.type == "cuda" else None
        loader = DataLoader(self.train_ds, batch_sampler=sampler, collate_fn=PadCollator(self.pad_token_id, multiple),
                            num_workers=self.num_workers, pin_memory=self.device.type == "cuda",
                            persistent_workers=self.num_workers > 0 and self.before_epoch is None,
                            worker_init_fn=worker_init_fn)
        return loader, sampler

    def tune_logits(self, model: nn.Module) -> np.ndarray:
        """Tune logits in row order: each process scores every n-th row, `gather_for_metrics` joins them."""
        acc, ds = self.accelerator, self.tune_ds
        if acc.num_processes == 1:
            return predict_logits(model, ds, self.cfg.eval_batch_size, self.pad_token_id, self.device,
                                  self.autocast_dtype)
        mine = np.arange(acc.process_index, len(ds), acc.num_processes)
        part = TokenizedDataset([ds.input_ids[i] for i in mine])
        logits = predict_logits(model, part, self.cfg.eval_batch_size, self.pad_token_id, self.device,
                                self.autocast_dtype) if len(mine) else np.zeros((0, ds.labels.shape[1]), np.float32)
        return gather_rows(acc, mine, logits.reshape(len(mine), ds.labels.shape[1]), len(ds))

    def evaluate(self, model: nn.Module) -> tuple[dict, np.ndarray]:
        """Tune loss and metric (multilabel: weighted F1 at thresholds tuned on tune; else accuracy)."""
        logits = self.tune_logits(model)
        y = self.tune_ds.labels
        with torch.no_grad():
            loss = float(self.loss_fn.cpu()(torch.from_numpy(logits), torch.from_numpy(y)))
        self.loss_fn.to(self.device)
        proba = logits_to_proba(logits, self.multilabel)
        out = {"tune_loss": loss, "tune_rows_scored": len(logits)}
        if self.multilabel:
            thr = tune_thresholds(y, proba)
            out["tune_weighted_f1"] = weighted_f1(y.astype(np.int64), apply_thresholds(proba, thr, self.cfg.ensure_one))
            out["tune_metric"] = out["tune_weighted_f1"]
        else:
            pred = np.eye(y.shape[1], dtype=np.int64)[proba.argmax(axis=1)]
            out["tune_accuracy"] = float((proba.argmax(axis=1) == y.argmax(axis=1)).mean())
            out["tune_weighted_f1"] = weighted_f1(y.astype(np.int64), pred)
            out["tune_metric"] = out["tune_accuracy"]
        return out, proba

    def _snapshot(self, model: nn.Module):
        state = model.state_dict()
        if self.cfg.checkpoint == "disk":
            if self.work_dir is None:
                raise ValueError("checkpoint 'disk' needs a work_dir")
            self.work_dir.mkdir(parents=True, exist_ok=True)
            path = self.work_dir / ".best_checkpoint.pt"
            if self.accelerator.is_main_process:
                torch.save(state, path)
            self.accelerator.wait_for_everyone()
            return path
        return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}

    def _restore(self, model: nn.Module, snap) -> None:
        if isinstance(snap, Path):
            model.load_state_dict(torch.load(snap, map_location=self.device, weights_only=True))
            self.accelerator.wait_for_everyone()
            if self.accelerator.is_main_process:
                snap.unlink(missing_ok=True)
        else:
            model.load_state_dict(snap)

    # --- the loop -----------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train for `epochs` (early stopping on the tune split), keep the best epoch's weights."""
        cfg, acc = self.cfg, self.accelerator
        t_start = time.perf_counter()
        run = self._prepare()
        result = run.result
        best_snap, bad_epochs, best_score = None, 0, None
        for epoch in range(1, cfg.epochs + 1):
            entry = self._train_epoch(epoch, run)
            if run.has_tune:
                metrics, proba = self.evaluate(run.raw_model)
                entry.update(metrics)
                score = -metrics["tune_loss"] if cfg.monitor == "loss" else metrics["tune_metric"]
                if best_score is None or score > best_score + cfg.min_delta:
                    best_score = score
                    result.best_metric, result.best_epoch, bad_epochs = metrics["tune_metric"], epoch, 0
                    result.tune_proba = proba
                    best_snap = self._snapshot(run.raw_model)
                else:
                    bad_epochs += 1
            entry["seconds"] = time.perf_counter() - entry.pop("_t0")
            result.history.append(entry)
            if acc.is_main_process:
                log.info("epoch %d: %s", epoch, ", ".join(f"{k}={v:.4g}" for k, v in entry.items()
                                                        if isinstance(v, float)))
            if run.has_tune and cfg.patience and bad_epochs >= cfg.patience and epoch < cfg.epochs:
                log.info("early stopping after epoch %d (best epoch %d, %s=%.4f)", epoch, result.best_epoch,
                         result.metric_name, result.best_metric)
                result.stopped_early = True
                break
        if best_snap is not None and result.best_epoch != len(result.history):
            self._restore(run.raw_model, best_snap)
        elif isinstance(best_snap, Path) and acc.is_main_process:
            best_snap.unlink(missing_ok=True)
        if not run.has_tune:
            result.best_epoch = len(result.history)
        # without accelerate's autocast wrapper: predictions after training run in fp32, like a loaded model's
        self.model = acc.unwrap_model(run.model, keep_fp32_wrapper=False)
        del run
        acc.free_memory()
        result.train_seconds = time.perf_counter() - t_start
        return result

    def _prepare(self) -> "_FitState":
        """Model, optimiser, loader and schedule prepared by accelerate; the result with the run's layout."""
        cfg, acc = self.cfg, self.accelerator
        loader, sampler = self._train_loader()
        self.model.to(self.device)
        self.loss_fn.to(self.device)
        factor = lr_factor(cfg.lr_scaling, acc.num_processes)
        lr, head_lr = cfg.lr * factor, None if cfg.head_lr is None else cfg.head_lr * factor
        groups = param_groups(self.model, lr, cfg.weight_decay, head_lr, cfg.layer_decay)
        raw_optimizer = build_optimizer(groups, cfg.optimizer, lr, fused=self.device.type == "cuda")
        model, optimizer, loader = acc.prepare(self.model, raw_optimizer, loader)
        # after `prepare` the loader holds this process's share of the batches
        steps_per_epoch = math.ceil(len(loader) / cfg.grad_accum)
        total_steps = steps_per_epoch * cfg.epochs
        scheduler = build_scheduler(raw_optimizer, cfg.schedule, total_steps,
                                    int(round(cfg.warmup_ratio * total_steps)))
        has_tune = self.tune_ds is not None and len(self.tune_ds) > 0
        result = TrainResult(metric_name=("tune_weighted_f1" if self.multilabel else "tune_accuracy") if has_tune else "")
        result.distributed = {
            "num_processes": acc.num_processes, "distributed_type": str(acc.distributed_type).split(".")[-1],
            "per_device_batch": cfg.batch_size, "grad_accum": cfg.grad_accum,
            "global_batch": cfg.batch_size * cfg.grad_accum * acc.num_processes,
            "optimizer_steps_per_epoch": steps_per_epoch, "lr_scaling": cfg.lr_scaling, "lr": lr, "head_lr": head_lr}
        if acc.is_main_process:
            log.info("training %d rows, %d epochs x %d optimiser steps (batch %d x accum %d x %d processes "
                     "[%s], lr %.3g, lr_scaling %s), device %s, precision %s, workers %d", len(self.train_ds),
                     cfg.epochs, steps_per_epoch, cfg.batch_size, cfg.grad_accum, acc.num_processes,
                     result.distributed["distributed_type"], lr, cfg.lr_scaling, self.device, acc.mixed_precision,
                     self.num_workers)
        return _FitState(model, acc.unwrap_model(model), optimizer, scheduler, loader, sampler, has_tune, result)

    def _train_epoch(self, epoch: int, run: "_FitState") -> dict:
        """One pass over the training rows; the epoch's history entry (its start time under `_t0`)."""
        cfg, acc, model, loader = self.cfg, self.accelerator, run.model, run.loader
        changes = {}
        if self.before_epoch is not None:
            changes = dict(self.before_epoch(epoch, self.train_ds) or {})
            run.sampler.lengths = np.asarray(self.train_ds.lengths)
        run.sampler.set_epoch(epoch)
        model.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=self.device)
        seen = opt_steps = 0
        show = cfg.progress and acc.is_local_main_process
        bar = tqdm(total=len(loader), desc=f"epoch {epoch}/{cfg.epochs}", disable=not show, dynamic_ncols=True)
        for step, batch in enumerate(loader, 1):
            with acc.accumulate(model):
                logits = model(batch["input_ids"], batch["attention_mask"])
                loss = self.loss_fn(logits, batch["labels"])
                acc.backward(loss)
                if acc.sync_gradients and cfg.max_grad_norm:
                    acc.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                run.optimizer.step()
                if acc.sync_gradients:
                    opt_steps += 1
                    if not acc.optimizer_step_was_skipped:
                        run.scheduler.step()
                run.optimizer.zero_grad(set_to_none=True)
            n = batch["input_ids"].shape[0]
            loss_sum += loss.detach() * n
            seen += n
            bar.update(1)
            if show and (step % cfg.log_every == 0 or step == len(loader)):
                bar.set_postfix(loss=f"{(loss_sum / seen).item():.4f}",
                                samples_s=f"{seen * acc.num_processes / (time.perf_counter() - t0):.1f}")
        bar.close()
        totals = acc.reduce(torch.stack([loss_sum, torch.tensor(float(seen), device=self.device)]), "sum")
        train_time = time.perf_counter() - t0
        return {"epoch": epoch, "train_loss": float((totals[0] / totals[1]).item()), "train_seconds": train_time,
                "train_samples_per_s": float(totals[1].item()) / max(train_time, 1e-9),
                "lr": float(run.scheduler.get_last_lr()[0]), "optimizer_steps": opt_steps,
                "num_processes": acc.num_processes, **changes, "_t0": t0}
