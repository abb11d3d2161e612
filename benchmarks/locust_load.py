"""Load test with an independent client (Locust), API keys and metrics on, for 1 and 2 server workers.

    pip install locust==2.47.0      # not part of requirements.txt: a benchmark tool
    python benchmarks/locust_load.py --run RUN_DIR [--backend onnx-int8] [--data ../shared/data/cryptonite/test_without_answers.csv]
                                     [--users 16] [--seconds 45] [--workers 1 2] [--threads 2] [--out FILE.json]

For each worker count: starts `python -m emotions.serve` on 127.0.0.1 with a fresh API key
($EMOTIONS_API_KEYS), runs `locust --headless` with `--users` users for `--seconds` seconds
(benchmarks/locustfile.py: 9 of 10 requests a single text, 1 of 10 a batch of 8, texts drawn from --data),
then reads Locust's CSV statistics (requests, failures, p50/p95/p99, req/s) and the server's own
Prometheus /metrics (its request count must match what Locust sent). Also checks that a request without
the key gets a 401. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from bench_serve import ROOT, load_texts, server

DEFAULT_TEST = ROOT.parent / "shared" / "data" / "cryptonite" / "test_without_answers.csv"


def run_locust(url: str, key: str, texts_file: Path, users: int, seconds: int, prefix: Path) -> dict:
    """One headless Locust run; the "Aggregated" row of its statistics."""
    env = {**os.environ, "LOAD_TEXTS": str(texts_file), "EMOTIONS_LOAD_KEY": key}
    cmd = ["locust", "-f", str(ROOT / "benchmarks" / "locustfile.py"), "--headless", "--host", url,
           "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--csv", str(prefix), "--only-summary",
           "--loglevel", "WARNING"]
    subprocess.run(cmd, env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=seconds + 120)
    with open(f"{prefix}_stats.csv", newline="", encoding="utf-8") as f:
        rows = {row["Name"]: row for row in csv.DictReader(f)}
    agg = rows["Aggregated"]
    return {"requests": int(agg["Request Count"]), "failures": int(agg["Failure Count"]),
            "p50_ms": float(agg["50%"]), "p95_ms": float(agg["95%"]), "p99_ms": float(agg["99%"]),
            "req_per_s": round(float(agg["Requests/s"]), 1),
            "single_p95_ms": float(rows["/predict"]["95%"]) if "/predict" in rows else None}


def served_requests(url: str, key: str) -> int:
    """The server's own count of /predict + /predict/batch requests answered 200 (Prometheus /metrics)."""
    text = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if (line.startswith("emotions_requests_total{") and 'status="200"' in line
                and ('route="/predict"' in line or 'route="/predict/batch"' in line)):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def one_setting(run: Path, backend: str, threads: int, workers: int, texts_file: Path, users: int,
                seconds: int, tmp: Path) -> dict:
    key = secrets.token_urlsafe(24)
    os.environ["EMOTIONS_API_KEYS"] = key
    try:
        with server(run, backend, threads, extra=["--workers", str(workers)]) as (url, _proc):
            refused = httpx.post(url + "/predict", json={"text": "без ключа"}, timeout=10).status_code
            stats = run_locust(url, key, texts_file, users, seconds, tmp / f"w{workers}")
            counted = served_requests(url, key) if workers == 1 else None     # one worker's registry per process
    finally:
        os.environ.pop("EMOTIONS_API_KEYS", None)
    return {"workers": workers, "users": users, "seconds": seconds, "without_key": refused, **stats,
            "server_counted": counted}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, type=Path)
    ap.add_argument("--backend", default="onnx-int8")
    ap.add_argument("--data", type=Path, default=DEFAULT_TEST, help="CSV with a text column")
    ap.add_argument("--users", type=int, default=16)
    ap.add_argument("--seconds", type=int, default=45)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--threads", type=int, default=2, help="inference threads per worker")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        texts_file = Path(tmp) / "texts.txt"
        texts_file.write_text("\n".join(t.replace("\n", " ") for t in load_texts(args.run, args.data, 5000)),
                              encoding="utf-8")
        for workers in args.workers:
            results.append(one_setting(args.run, args.backend, args.threads, workers, texts_file, args.users,
                                       args.seconds, Path(tmp)))
    print("| workers | users | requests | failures | p50 ms | p95 ms | p99 ms | req/s | /predict p95 ms | no key "
          "| server counted |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['workers']} | {r['users']} | {r['requests']} | {r['failures']} | {r['p50_ms']:.0f} | "
              f"{r['p95_ms']:.0f} | {r['p99_ms']:.0f} | {r['req_per_s']} | {r['single_p95_ms']:.0f} | "
              f"{r['without_key']} | {r['server_counted'] if r['server_counted'] is not None else 'n/a'} |")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    ok = all(r["failures"] == 0 and r["without_key"] == 401 for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
