"""Is the Hugging Face hub reachable? One quick check, so offline runs fail in seconds, not minutes of retries."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when the hub answers a TCP connect and no offline switch is set (a proxy: let the download decide)."""
    if any(os.environ.get(k, "0").lower() in {"1", "true", "yes"} for k in _OFFLINE_VARS):
        return False
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False
