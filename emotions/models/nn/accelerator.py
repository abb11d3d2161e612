"""The accelerate set-up of a training run: precision (bf16 where the device computes it natively)."""

from __future__ import annotations

import os

import torch


def cpu_bf16_supported() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX): autocast to bf16 is then faster, not slower."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def mixed_precision_for(precision: str) -> str:
    """Resolve 'auto': bf16 on a CUDA device that supports it, or on a CPU with native bf16 (the quality check:
    benchmarks/results/population_levers_quick.md), otherwise full precision."""
    if precision != "auto":
        return precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    return "bf16" if cpu_bf16_supported() else "no"


def make_accelerator(precision: str = "auto", grad_accum: int = 1, pin_memory: bool = False):
    """An `accelerate.Accelerator`; in a plain single process a changed precision resets its state.

    Without CUDA it is created with `cpu=True`, so processes started by a launcher join a gloo group.
    """
    from accelerate import Accelerator, DataLoaderConfiguration
    from accelerate.state import AcceleratorState

    mp = mixed_precision_for(precision)
    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision") not in (None, mp) and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        AcceleratorState._reset_state()
    return Accelerator(mixed_precision=mp, gradient_accumulation_steps=grad_accum,
                       cpu=not torch.cuda.is_available(),
                       dataloader_config=DataLoaderConfiguration(non_blocking=pin_memory))
