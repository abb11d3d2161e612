"""One call that seeds every random number generator a training run touches."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = False) -> torch.Generator:
    """Seed python, numpy and torch (CPU and CUDA); return a seeded CPU generator for samplers.

    With `deterministic`, torch also refuses non-deterministic kernels (slower on CUDA).
    """
    seed = int(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def worker_init_fn(worker_id: int) -> None:
    """DataLoader worker seeding derived from torch's per-worker seed (numpy/random too)."""
    s = torch.initial_seed() % (2**32)
    np.random.seed(s)
    random.seed(s)
