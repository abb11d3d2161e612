"""Load test of the HTTP service on 127.0.0.1: concurrent clients, latency, errors, server memory over time.

    python benchmarks/load_test.py --run RUN_DIR [--backend onnx-int8] [--requests 2000] [--concurrency 16]
                                   [--max-seconds 300] [--threads 2] [--out FILE.json]

Starts `python -m emotions.serving.service` on 127.0.0.1 (a free port) in a subprocess, sends `--requests`
single-text `POST /predict` requests (every `--batch-every`-th one a small `/predict/batch`) from
`--concurrency` asyncio clients (httpx), after `--warmup` uncounted ones (longest texts first, so
memory pools reach their working size before RSS is sampled), stopping early at `--max-seconds`
(per phase); samples the server's RSS
(psutil) every `--sample-every` seconds; then sends each bad input once and checks its status code.
Reports errors, p50/p95/p99 latency, requests/s, RSS first/last/max. Exit code 1 when any request
failed, a bad input got the wrong status, or RSS grew by more than `--max-rss-growth-mb` (first vs
last) or `--max-rss-drift-mb` (over the second half: memory pools settle early, a leak keeps growing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
from bench_serve import load_texts, pin_cores, server

ODD_TEXTS = [
    "\ud800 lone surrogate", "zero\u200bwidth\u200d\ufeff", "\u202eRTL override \u05e9\u05dc\u05d5\u05dd", "😂🤬👍🏽👨‍👩‍👧",
    "nul\x00byte", "é" * 10_000, "\U0001d400\U0001d401 math", "e\u0301\u0301\u0301 combining", "\t\r\n mixed \x0b",
]


def bad_inputs(max_batch: int, max_chars: int) -> list[tuple[str, str, bytes, int]]:
    """(name, path, raw JSON body, expected status)."""
    def j(obj) -> bytes:
        return json.dumps(obj, ensure_ascii=True).encode()

    return [
        ("empty text", "/predict", j({"text": ""}), 422),
        ("whitespace text", "/predict", j({"text": " \n\t\u200b "}), 422),
        ("number instead of text", "/predict", j({"text": 123}), 422),
        ("null text", "/predict", j({"text": None}), 422),
        ("missing field", "/predict", j({"txt": "hello"}), 422),
        ("invalid JSON", "/predict", b'{"text": "unterminated', 422),
        ("JSON array body", "/predict", j(["a"]), 422),
        ("empty batch", "/predict/batch", j({"texts": []}), 422),
        ("batch with an empty text", "/predict/batch", j({"texts": ["ok", "  "]}), 422),
        ("batch with a number", "/predict/batch", j({"texts": ["ok", 1]}), 422),
        ("batch over max-batch", "/predict/batch", j({"texts": ["ok"] * (max_batch + 1)}), 413),
        ("text over max-chars (truncated)", "/predict", j({"text": "ха" * max_chars}), 200),
        *((f"odd unicode #{i}", "/predict", j({"text": t}), 200) for i, t in enumerate(ODD_TEXTS)),
        ("odd unicode batch", "/predict/batch", j({"texts": ODD_TEXTS}), 200),
    ]


class RssSampler:
    """Samples a process's resident memory every `every` seconds in a thread."""

    def __init__(self, pid: int, every: float = 0.5):
        import psutil
        self.proc = psutil.Process(pid)
        self.every = every
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        t0 = time.monotonic()
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic() - t0, self.proc.memory_info().rss / 2**20))
            except Exception:  # noqa: BLE001 - process gone
                return
            self._stop.wait(self.every)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


def prometheus_value(text: str, name: str) -> float | None:
    """The value of one unlabelled Prometheus sample (e.g. the model calls the server made)."""
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


async def run_load(url: str, texts: list[str], n: int, concurrency: int, max_seconds: float,
                   batch_every: int, batch_size: int) -> dict:
    import httpx

    latencies: list[float] = []
    errors: Counter = Counter()
    counter = iter(range(n))
    deadline = time.monotonic() + max_seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def client_loop(client: httpx.AsyncClient) -> None:
        for i in counter:
            if time.monotonic() > deadline:
                errors["not sent (time limit)"] += 1
                continue
            batch = batch_every and i % batch_every == batch_every - 1
            t0 = time.perf_counter()
            try:
                if batch:
                    body = {"texts": [texts[(i + k) % len(texts)] for k in range(batch_size)]}
                    r = await client.post("/predict/batch", json=body)
                else:
                    r = await client.post("/predict", json={"text": texts[i % len(texts)]})
                dt = time.perf_counter() - t0
                if r.status_code != 200:
                    errors[f"HTTP {r.status_code}"] += 1
                else:
                    data = r.json()
                    ok = len(data["results"]) == batch_size if batch else "scores" in data
                    if not ok:
                        errors["bad response body"] += 1
                    elif not batch:
                        latencies.append(dt * 1e3)
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] += 1

    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    lat = np.asarray(latencies) if latencies else np.asarray([np.nan])
    sent = n - errors.get("not sent (time limit)", 0)
    return {"requests": n, "sent": sent, "ok_single": len(latencies), "errors": dict(errors),
            "error_count": sum(v for k, v in errors.items()), "seconds": wall, "requests_per_s": sent / wall,
            "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
            "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(lat.max())}


def check_bad_inputs(url: str, max_batch: int, max_chars: int) -> list[dict]:
    import httpx

    out = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for name, path, body, expected in bad_inputs(max_batch, max_chars):
            r = client.post(path, content=body, headers={"content-type": "application/json"})
            row = {"input": name, "expected": expected, "got": r.status_code, "ok": r.status_code == expected}
            if name.startswith("text over") and r.status_code == 200:
                row["ok"] = row["ok"] and r.json().get("truncated") is True
            out.append(row)
        alive = client.get("/health").status_code == 200
    out.append({"input": "server alive afterwards", "expected": 200, "got": 200 if alive else 0, "ok": alive})
    return out


def main(argv: list[str] | None = None) -> int:
    import httpx

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="run folder (with model/) or model folder")
    ap.add_argument("--backend", default="onnx-int8", choices=["torch", "native", "onnx", "onnx-int8"])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--max-seconds", type=float, default=300.0, help="stop sending after this long")
    ap.add_argument("--warmup", type=int, default=1000, help="uncounted requests first, same concurrency")
    ap.add_argument("--batch-every", type=int, default=0, help="every n-th request is a batch (0 = never)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cores", type=int, default=2, help="pin to this many cores (when more exist)")
    ap.add_argument("--sample-every", type=float, default=0.5, help="seconds between RSS samples")
    ap.add_argument("--max-rss-growth-mb", type=float, default=150.0,
                    help="allowed RSS growth, first vs last sample (allocator pools settling)")
    ap.add_argument("--max-rss-drift-mb", type=float, default=25.0,
                    help="allowed RSS growth over the second half of the run (a leak keeps growing)")
    ap.add_argument("--data", type=Path, default=None, help="CSV with texts (default: the run's holdout)")
    ap.add_argument("--log", type=Path, default=None, help="server log file")
    ap.add_argument("--out", type=Path, default=None, help="write the report as JSON")
    args = ap.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1:
        ap.error("--requests and --concurrency must be >= 1")
    cores = pin_cores(args.cores)
    texts = load_texts(args.run, args.data, 2000)
    report: dict = {"backend": args.backend, "run": str(args.run), "cores": cores, "threads": args.threads,
                    "concurrency": args.concurrency}
    with server(args.run, args.backend, args.threads, log_path=args.log) as (url, proc):
        health = httpx.get(url + "/health").json()
        if args.warmup:     # uncounted, longest texts first: the memory arenas reach their working size
            longest = sorted(texts, key=len, reverse=True)
            warm = asyncio.run(run_load(url, longest, args.warmup, args.concurrency, args.max_seconds,
                                        args.batch_every, args.batch_size))
            report["warmup"] = {k: warm[k] for k in ("requests", "error_count", "seconds")}
        with RssSampler(proc.pid, args.sample_every) as rss:
            report["load"] = asyncio.run(run_load(url, texts, args.requests, args.concurrency, args.max_seconds,
                                                  args.batch_every, args.batch_size))
        report["bad_inputs"] = check_bad_inputs(url, health["max_batch"], health["max_chars"])
        report["server_batches"] = prometheus_value(httpx.get(url + "/metrics").text, "emotions_model_calls_total")
    mem = [m for _, m in rss.samples]
    report["rss_mb"] = {"first": mem[0], "last": mem[-1], "max": max(mem), "growth": mem[-1] - mem[0],
                        "second_half_growth": mem[-1] - mem[len(mem) // 2], "samples": len(mem),
                        "series": [round(m, 1) for m in mem[::max(1, len(mem) // 20)]]} if mem else {}
    failed_bad = [b for b in report["bad_inputs"] if not b["ok"]]
    load = report["load"]
    report["passed"] = bool(load["error_count"] == 0 and not failed_bad and mem
                            and report["rss_mb"]["growth"] <= args.max_rss_growth_mb
                            and report["rss_mb"]["second_half_growth"] <= args.max_rss_drift_mb)
    print(f"## load test: {args.backend}, {args.concurrency} clients, {load['sent']}/{load['requests']} requests "
          f"in {load['seconds']:.1f}s ({load['requests_per_s']:.0f} req/s)")
    print(f"errors: {load['error_count']} {load['errors'] or ''}")
    print(f"latency ms: p50 {load['p50_ms']:.1f}, p95 {load['p95_ms']:.1f}, p99 {load['p99_ms']:.1f}, "
          f"max {load['max_ms']:.1f}")
    if mem:
        r = report["rss_mb"]
        print(f"server RSS MB: first {r['first']:.0f}, last {r['last']:.0f}, max {r['max']:.0f}, "
              f"growth {r['growth']:+.1f} (second half {r['second_half_growth']:+.1f}; {r['samples']} samples)")
    print(f"server merged {report['server_batches']['texts']} texts into {report['server_batches']['batches']} "
          f"model calls")
    print(f"bad inputs: {len(report['bad_inputs']) - len(failed_bad)}/{len(report['bad_inputs'])} as expected"
          + "".join(f"\n  FAIL {b['input']}: expected {b['expected']}, got {b['got']}" for b in failed_bad))
    print("PASSED" if report["passed"] else "FAILED")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
