"""The service's hard limits, probed from outside as a careless or hostile client would.

    python benchmarks/probes.py --run RUN_DIR [--backend onnx-int8] [--threads 2] [--out FILE.json]

Starts `python -m emotions.serve` on 127.0.0.1 in a subprocess (benchmarks/bench_serve.py: `server`) and runs:

1. chunked: a 20 MB body sent with `Transfer-Encoding: chunked` (no Content-Length) -> expect 413, and the
   server's RSS grows by less than 50 MB.
2. fairness: 4 clients sending 64 x 2,000-character batches in a loop while one client sends single texts
   -> expect the single texts' p95 under 1 s.
3. silent: 3,000 connections that send nothing -> expect /health to answer (within 5 s) while they are open.
4. corrupt: one byte flipped in the served weights (a copy of the run) -> expect the server to refuse to
   start with exit code 2 and one line naming the file.

Prints one line per probe (PASS/FAIL and the figures); exit code 1 when any probe fails.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from bench_serve import ROOT, server

MB = 2**20


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / MB


def chunked_upload(port: int, total_bytes: int, block: int = 64 * 1024) -> tuple[int, int]:
    """POST /predict a body of `total_bytes` as chunked transfer encoding over a raw socket (so the server's
    early answer is read even when it stops reading the body): (status code or 0, bytes sent)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")
    data = b'{"text": "' + b"a" * (block - 10)
    sent = 0
    try:
        while sent < total_bytes:
            s.sendall(b"%x\r\n%s\r\n" % (len(data), data))
            sent += len(data)
        s.sendall(b"0\r\n\r\n")
    except OSError:                        # the server answered and closed: read what it said
        pass
    try:
        head = s.recv(256)
    except OSError:
        head = b""
    s.close()
    return (int(head.split()[1]) if head.startswith(b"HTTP/") else 0), sent


def probe_chunked(url: str, pid: int) -> dict:
    before = rss_mb(pid)
    status, sent = chunked_upload(int(url.rsplit(":", 1)[1]), 20 * MB)
    time.sleep(0.5)
    growth = rss_mb(pid) - before
    return {"probe": "chunked 20 MB", "status": status, "sent_mb": round(sent / MB, 1),
            "rss_growth_mb": round(growth, 1), "passed": status == 413 and growth < 50}


def probe_fairness(url: str, seconds: float = 20.0) -> dict:
    import httpx

    big = {"texts": [("мне очень грустно сегодня " * 80)[:2000]] * 64}
    stop = threading.Event()
    big_done = []

    def big_client():
        with httpx.Client(timeout=120) as c:
            while not stop.is_set():
                big_done.append(c.post(url + "/predict/batch", json=big).status_code)

    threads = [threading.Thread(target=big_client, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    latencies, statuses = [], []
    with httpx.Client(timeout=60) as c:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.perf_counter()
            statuses.append(c.post(url + "/predict", json={"text": "я так рада тебя видеть"}).status_code)
            latencies.append(time.perf_counter() - t0)
    stop.set()
    for t in threads:
        t.join(180)
    p50, p95 = (float(np.percentile(latencies, q)) for q in (50, 95))
    return {"probe": "4 big-batch clients + 1 single-text client", "single_requests": len(latencies),
            "single_p50_ms": round(p50 * 1000, 1), "single_p95_ms": round(p95 * 1000, 1),
            "big_batches_done": len(big_done), "statuses": sorted(set(statuses + big_done)),
            "passed": p95 < 1.0 and set(statuses) == {200}}


def probe_silent(url: str, port: int, n: int = 3000) -> dict:
    import httpx

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 512)), hard))
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        socks.append(s)
    time.sleep(1.0)
    t0 = time.perf_counter()
    try:
        status = httpx.get(url + "/health", timeout=5).status_code
    except httpx.HTTPError as e:
        status = f"{type(e).__name__}"
    seconds = time.perf_counter() - t0
    time.sleep(6.0)                        # past the keep-alive timeout: are the idle sockets closed?
    closed = sum(1 for s in socks if _closed(s))
    for s in socks:
        s.close()
    return {"probe": f"{n} silent connections", "health_status": status, "health_s": round(seconds, 3),
            "closed_by_server_after_6s": closed, "passed": status == 200 and seconds < 5}


def _closed(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def probe_corrupt(run: Path, backend: str) -> dict:
    """A copy of the run with one byte flipped in the weights the backend serves; start it."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "run"
        shutil.copytree(run, copy, ignore=shutil.ignore_patterns("data", "notebooks", "img", "predictions"))
        name = {"onnx-int8": "export/model.int8.onnx", "onnx": "export/model.onnx"}.get(backend)
        weights = copy / name if name else max((copy / "model").rglob("*.safetensors"), key=lambda p: p.stat().st_size)
        data = bytearray(weights.read_bytes())
        data[len(data) // 2] ^= 0x01
        weights.write_bytes(bytes(data))
        proc = subprocess.run([sys.executable, "-m", "emotions.serve", "--run", str(copy), "--backend", backend,
                               "--port", "0"], cwd=ROOT, capture_output=True, text=True, timeout=300)
        last = (proc.stderr.strip().splitlines() or [""])[-1]
        return {"probe": f"one byte flipped in {weights.relative_to(copy)}", "exit_code": proc.returncode,
                "message": last[:300], "passed": proc.returncode == 2 and weights.name in last}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, type=Path)
    ap.add_argument("--backend", default="onnx-int8")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, help="also write the results as JSON")
    args = ap.parse_args(argv)
    results = []
    with server(args.run, args.backend, args.threads) as (url, proc):
        results.append(probe_chunked(url, proc.pid))
        results.append(probe_fairness(url))
        results.append(probe_silent(url, int(url.rsplit(":", 1)[1])))
        results.append({**probe_chunked(url, proc.pid), "probe": "chunked 20 MB again (after the others)"})
        results[-1]["rss_mb"] = round(rss_mb(proc.pid), 1)
    results.append(probe_corrupt(args.run, args.backend))
    for r in results:
        figures = ", ".join(f"{k}={v}" for k, v in r.items() if k not in ("probe", "passed"))
        print(f"{'PASS' if r['passed'] else 'FAIL'}  {r['probe']}: {figures}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0 if all(r["passed"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
