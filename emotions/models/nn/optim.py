"""Optimiser with parameter groups (head lr, layer-wise lr decay, no decay on biases/norms) and lr schedules."""

from __future__ import annotations

import math
import re

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("constant", "linear", "cosine")
_LAYER_RE = re.compile(r"(?:^|\.)(?:layer|layers|block|blocks|h)\.(\d+)\.")


def layer_depth(name: str, n_layers: int) -> int:
    """0 for embeddings, i+1 for transformer layer i, n_layers+1 for anything after the layers."""
    m = _LAYER_RE.search(name)
    if m:
        return int(m.group(1)) + 1
    if "embed" in name:
        return 0
    return n_layers + 1


def _no_decay(name: str, p: nn.Parameter) -> bool:
    return p.ndim <= 1 or name.endswith(".bias") or "norm" in name.lower()


def param_groups(model: nn.Module, lr: float, weight_decay: float, head_lr: float | None = None,
                 layer_decay: float = 1.0) -> list[dict]:
    """Parameter groups for a module with `.encoder` and `.head` (and an optional training-only `.aux_head`).

    Encoder parameters at depth d get lr * layer_decay ** (n_layers + 1 - d) (layer_decay 1 = off);
    the head and the aux head get `head_lr` (default `lr`). Biases and norm weights get no weight decay.
    """
    encoder, head = model.encoder, model.head
    heads = [head] + ([model.aux_head] if getattr(model, "aux_head", None) is not None else [])
    cfg = getattr(encoder, "config", None)
    n_layers = int(getattr(cfg, "num_hidden_layers", 0) or 0)
    if not n_layers:
        found = [int(m.group(1)) for n, _ in encoder.named_parameters() if (m := _LAYER_RE.search(n))]
        n_layers = max(found) + 1 if found else 0
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}

    def add(p: nn.Parameter, g_lr: float, wd: float) -> None:
        groups.setdefault((g_lr, wd), []).append(p)

    for name, p in encoder.named_parameters():
        if not p.requires_grad:
            continue
        scale = layer_decay ** (n_layers + 1 - layer_depth(name, n_layers)) if layer_decay != 1.0 else 1.0
        add(p, lr * scale, 0.0 if _no_decay(name, p) else weight_decay)
    for name, p in (item for h in heads for item in h.named_parameters()):
        if p.requires_grad:
            add(p, head_lr if head_lr is not None else lr, 0.0 if _no_decay(name, p) else weight_decay)
    return [{"params": ps, "lr": g_lr, "weight_decay": wd} for (g_lr, wd), ps in groups.items()]


def build_optimizer(groups: list[dict], name: str = "adamw", lr: float = 5e-5, fused: bool | None = None,
                    momentum: float = 0.9, betas: tuple[float, float] = (0.9, 0.999),
                    eps: float = 1e-8) -> torch.optim.Optimizer:
    """AdamW / Adam / SGD over the groups; `fused` kernels when all parameters are on CUDA."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {name!r}")
    if fused is None:
        fused = all(p.is_cuda for g in groups for p in g["params"])
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    return cls(groups, lr=lr, betas=betas, eps=eps, fused=bool(fused) or None)


def build_scheduler(optimizer: torch.optim.Optimizer, schedule: str, total_steps: int,
                    warmup_steps: int = 0) -> LambdaLR:
    """Linear warmup, then constant / linear decay to 0 / cosine decay to 0 (per optimiser step)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {list(SCHEDULES)}, got {schedule!r}")
    total = max(1, int(total_steps))
    warm = max(0, min(int(warmup_steps), total))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / (warm + 1)
        if schedule == "constant":
            return 1.0
        progress = (step - warm) / max(1, total - warm)
        progress = min(1.0, progress)
        if schedule == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
