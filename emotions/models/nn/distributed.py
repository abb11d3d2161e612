"""Multi-process training helpers: launcher detection, world-size checks, the `accelerate launch` command,
and gathering per-process predictions so every row is scored exactly once.

Processes are started by Accelerate (`accelerate launch --multi_gpu --num_processes N`, which runs
torch.distributed's elastic launcher) or by `torchrun`; on a machine without CUDA they join a gloo
process group as `MULTI_CPU` (the Accelerator is created with `cpu=True`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

# set by torchrun / `accelerate launch` (multi-process) and by `accelerate launch`'s single-process launcher
LAUNCHER_ENV = ("TORCHELASTIC_RUN_ID", "LOCAL_RANK", "ACCELERATE_USE_CPU")
LR_SCALING = ("none", "linear", "sqrt")


class DistributedSetupError(RuntimeError):
    """The processes are not what was asked for (e.g. a launcher that started only one)."""


def launcher_env() -> str | None:
    """The launcher variable seen in the environment (this process was started by a launcher), else None."""
    return next((k for k in LAUNCHER_ENV if k in os.environ), None)


def resolve_num_processes(value: int | str | None) -> int:
    """`auto`: every visible CUDA device (1 without CUDA); an int >= 1 as given (on CPU: gloo processes)."""
    if value in (None, "auto"):
        return max(1, torch.cuda.device_count()) if torch.cuda.is_available() else 1
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"num_processes must be 'auto' or an integer >= 1, got {value!r}") from None
    if n < 1:
        raise ValueError(f"num_processes must be 'auto' or an integer >= 1, got {value!r}")
    return n


def lr_factor(rule: str, num_processes: int) -> float:
    """Learning-rate multiplier for `num_processes` (the global batch grows with it): none | linear | sqrt."""
    if rule not in LR_SCALING:
        raise ValueError(f"lr_scaling must be one of {LR_SCALING}, got {rule!r}")
    return {"none": 1.0, "linear": float(num_processes), "sqrt": float(num_processes) ** 0.5}[rule]


def check_world(num_processes: int, expected: int | None = None) -> None:
    """Fail before training when a launcher started this process but nothing would be distributed."""
    var = launcher_env()
    env_world = os.environ.get("WORLD_SIZE")
    if env_world is not None and int(env_world) != num_processes:
        raise DistributedSetupError(
            f"the launcher set WORLD_SIZE={env_world} but this process joined a group of {num_processes}: "
            "the processes did not connect (on a machine without CUDA they need Accelerator(cpu=True))")
    if var is not None and num_processes == 1:
        raise DistributedSetupError(
            f"started under a launcher ({var} is set) but the world size is 1: nothing would be distributed. "
            "Start 2+ processes (`accelerate launch --multi_gpu --num_processes N -m emotions.models.transformer "
            "...` or `torchrun --nproc_per_node N -m ...`), or run without a launcher: "
            "`python -m emotions.models.transformer ...`")
    if expected is not None and expected != num_processes:
        raise DistributedSetupError(f"num_processes is {expected} but {num_processes} process(es) were started")


def launch_command(num_processes: int, module: str, args: Sequence[str], mixed_precision: str = "no",
                   main_port: int | None = None) -> list[str]:
    """`accelerate launch` for `num_processes` local processes running `python -m module args`.

    `--multi_gpu` selects torch.distributed's launcher; without CUDA the processes use gloo on CPU.
    """
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
           str(num_processes), "--num_machines", "1", "--mixed_precision", mixed_precision,
           "--dynamo_backend", "no"]
    if main_port is not None:
        cmd += ["--main_process_port", str(main_port)]
    return [*cmd, "-m", module, *args]


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for the processes' rendezvous."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_streamed(cmd: Sequence[str], env: dict | None = None, out=None, keep: int = 40) -> None:
    """Run `cmd`, copying its stdout+stderr to `out` (default sys.stdout) as it comes; raise on failure."""
    out = out or sys.stdout
    tail: deque[str] = deque(maxlen=keep)
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            text=True, encoding="utf-8", errors="replace", bufsize=1)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            out.flush()
            tail.append(line)
        rc = proc.wait()
    except BaseException:
        proc.terminate()
        proc.wait(30)
        raise
    if rc != 0:
        raise RuntimeError(f"the training processes failed (exit code {rc}); last lines:\n" + "".join(tail))


def gather_rows(accelerator, index: np.ndarray, values: np.ndarray, n_rows: int) -> np.ndarray:
    """Put every process's rows (`index` into 0..n_rows-1, `values` one row each) into one array in row order.

    Uses `gather_for_metrics`; raises if a row is missing or scored twice.
    """
    if accelerator.num_processes == 1:
        parts = [(np.asarray(index), np.asarray(values))]
    else:
        parts = accelerator.gather_for_metrics([(np.asarray(index), np.asarray(values))], use_gather_object=True)
    order = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
    if len(order) != n_rows or not np.array_equal(np.sort(order), np.arange(n_rows)):
        raise RuntimeError(f"gathered {len(order)} rows ({len(np.unique(order))} distinct) for {n_rows} tune rows")
    stacked = np.concatenate([p[1] for p in parts])
    out = np.empty_like(stacked)
    out[order] = stacked
    return out


def same_everywhere(accelerator, value: str, what: str) -> None:
    """Raise unless every process holds the same `value` (e.g. a tokenizer's vocabulary hash)."""
    if accelerator.num_processes == 1:
        return
    from accelerate.utils import gather_object

    values = gather_object([hashlib.sha256(value.encode()).hexdigest()[:16]])
    if len(set(values)) != 1:
        raise DistributedSetupError(f"the processes built different {what}: {values}")


def broadcast_folder(accelerator, build, dest: str | Path) -> tuple[str, bool]:
    """Run `build() -> (source, local_only)` on the main process only and give every process the result.

    A local folder is sent to the other processes (written under `dest`: no shared disk needed, and
    transformers' `save_pretrained` writes only on rank 0); a hub id is passed on as it is.
    """
    if accelerator.num_processes == 1:
        return build()
    from accelerate.utils import broadcast_object_list

    payload: list = [None]
    if accelerator.is_main_process:
        source, local_only = build()
        folder = Path(source)
        files = ({str(f.relative_to(folder)): f.read_bytes() for f in folder.rglob("*") if f.is_file()}
                 if folder.is_dir() else None)
        payload = [(source, local_only, files)]
    broadcast_object_list(payload, from_process=0)
    source, local_only, files = payload[0]
    if accelerator.is_main_process or files is None:
        return source, local_only
    dest = Path(dest)
    for rel, blob in files.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(blob)
    return str(dest), True


def launch_training(module: str, num_processes: int, train_df, tune_df, task: str, params: dict, out_dir: Path,
                    mixed_precision: str = "no") -> None:
    """Run `python -m module --train --tune --task --params --out --force` in `num_processes` processes."""
    import logging
    import tempfile

    from ...core.io import write_csv_atomic, write_json_atomic

    logging.getLogger(__name__).info("launching %d training processes (accelerate launch, %s)", num_processes,
                                     "CUDA" if torch.cuda.is_available() else "gloo on CPU")
    with tempfile.TemporaryDirectory(prefix="emotions-launch-") as tmp:
        tmp = Path(tmp)
        write_csv_atomic(tmp / "train.csv", train_df)
        args = ["--train", str(tmp / "train.csv"), "--task", task, "--out", str(out_dir), "--force"]
        if tune_df is not None and len(tune_df):
            write_csv_atomic(tmp / "tune.csv", tune_df)
            args += ["--tune", str(tmp / "tune.csv")]
        write_json_atomic(tmp / "params.json", {**params, "num_processes": num_processes})
        args += ["--params", str(tmp / "params.json")]
        run_streamed(launch_command(num_processes, module, args, mixed_precision, free_port()))
