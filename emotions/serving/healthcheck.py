"""Container health check: exit 0 when the local service answers `GET /health` with status "ok".

    python -m emotions.serving.healthcheck [--url URL] [--timeout 3]

The default URL is http://127.0.0.1:$PORT/health (PORT defaults to 8000), so the Dockerfile's
HEALTHCHECK follows the PORT the container was started with. When $EMOTIONS_PROTECT_HEALTH is on, it
sends the first API key of $EMOTIONS_API_KEYS or $EMOTIONS_API_KEYS_FILE. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Sequence


def default_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/health"


def health_key(environ=os.environ) -> str | None:
    """The API key to send: the first configured one when /health is protected, else None."""
    if environ.get("EMOTIONS_PROTECT_HEALTH", "").strip().lower() not in {"1", "true", "yes", "on"}:
        return None
    keys = [k.strip() for k in environ.get("EMOTIONS_API_KEYS", "").split(",") if k.strip()]
    path = environ.get("EMOTIONS_API_KEYS_FILE", "").strip()
    if not keys and path:
        try:
            lines = open(path, encoding="utf-8").read().splitlines()
        except OSError:
            return None
        keys = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    return keys[0] if keys else None


def check(url: str, timeout: float = 3.0, key: str | None = None) -> str | None:
    """None when `url` answers 200 with {"status": "ok"}, else what went wrong (one line)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as r:  # noqa: S310
            body = json.loads(r.read().decode("utf-8"))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"{url}: {exc}"
    if not isinstance(body, dict) or body.get("status") != "ok":
        return f"{url}: unexpected answer {str(body)[:200]}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m emotions.serving.healthcheck", description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=None, help="default: http://127.0.0.1:$PORT/health")
    ap.add_argument("--timeout", type=float, default=3.0)
    args = ap.parse_args(argv)
    problem = check(args.url or default_url(), args.timeout, health_key())
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
