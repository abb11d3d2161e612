"""Footprint of the service per environment: environment size, start-up time, memory and latency.

    python benchmarks/serve_footprint.py --run runs/<run-id> --python .venv/bin/python /path/to/serve-venv/bin/python

For each interpreter: `du -sm` of its environment (sys.prefix), then `python -m emotions.serve --backend
onnx-int8` on the run: seconds until /health answers, the server's RSS after 200 single-text requests,
and their p50 / p95 latency. The package is taken from this checkout (PYTHONPATH).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["ну это просто ужас какой-то", "я так рада что ты пришёл", "мне страшно идти туда одной",
         "какая мерзость", "вот это да не ожидал", "мне очень грустно сегодня", "ладно до завтра"]


def env_size_mb(python: str) -> int:
    prefix = subprocess.run([python, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True,
                            check=True).stdout.strip()
    return int(subprocess.run(["du", "-sm", prefix], capture_output=True, text=True, check=True).stdout.split()[0])


def measure(python: str, run: str, backend: str, threads: int, n: int) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.Popen([python, "-m", "emotions.serve", "--run", run, "--backend", backend, "--port", str(port),
                             "--threads", str(threads), "--log-level", "warning"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                urllib.request.urlopen(url + "/health", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.perf_counter() - t0 > 300:
                    raise RuntimeError(f"{python}: the server did not start")
                time.sleep(0.05)
        startup = time.perf_counter() - t0
        lat = []
        for i in range(n):
            body = json.dumps({"text": TEXTS[i % len(TEXTS)]}).encode()
            req = urllib.request.Request(url + "/predict", data=body, headers={"content-type": "application/json"})
            t = time.perf_counter()
            urllib.request.urlopen(req, timeout=30).read()
            lat.append((time.perf_counter() - t) * 1000)
        lat.sort()
        rss = psutil.Process(proc.pid).memory_info().rss / 2**20
        return {"startup_s": round(startup, 2), "rss_mib": round(rss), "p50_ms": round(lat[len(lat) // 2], 1),
                "p95_ms": round(lat[int(len(lat) * 0.95)], 1)}
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--python", nargs="+", default=[sys.executable])
    ap.add_argument("--backend", default="onnx-int8")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| python | environment MB (du -sm) | start-up s | RSS MiB | p50 ms | p95 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for python in args.python:
        m = measure(python, args.run, args.backend, args.threads, args.n)
        print(f"| {python} | {env_size_mb(python)} | {m['startup_s']} | {m['rss_mib']} | {m['p50_ms']} | "
              f"{m['p95_ms']} |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
