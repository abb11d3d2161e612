"""The service's switches, read from environment variables (documented in docs/serving.md).

Every variable is optional; a value that cannot be used stops the start-up with a ValueError naming it.
`ServiceSettings()` is the all-defaults service: open (no API keys), no CORS, access log on.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Mapping

from .security import load_api_keys

DEFAULT_MAX_INFLIGHT = 64
DEFAULT_REQUEST_TIMEOUT_S = 30.0
DEFAULT_MICRO_BATCH = 8        # e5-small int8, 2 cores: 8 texts of 64 tokens take ~0.27 s, and 64 such texts
                               # take 2.1 s in micro-batches of 4, 8 or 32 alike (demo-q export, 2026-12-03)
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def env_flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    """A yes/no variable (1/0, true/false, yes/no, on/off); unset = `default`."""
    raw = environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value not in _TRUE | _FALSE:
        raise ValueError(f"{name} must be 1 or 0 (true/false, yes/no, on/off), got {raw!r}")
    return value in _TRUE


def env_number(environ: Mapping[str, str], name: str, default: float, kind: type = int, minimum: float = 1):
    """An int (or float) variable of at least `minimum`; unset or empty = `default`."""
    raw = (environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < minimum:
        raise ValueError(f"{name} must be {'an integer' if kind is int else 'a number'} >= {minimum}, got {raw!r}")
    return value


def env_list(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated variable: its non-empty items, stripped."""
    return tuple(item.strip() for item in (environ.get(name) or "").split(",") if item.strip())


@dataclass(frozen=True)
class ServiceSettings:
    """What `create_app` needs besides the model: access control, limits and logging."""

    api_keys: tuple[str, ...] = field(default=(), repr=False)     # never printed
    api_keys_source: str = ""
    protect_health: bool = False
    cors_origins: tuple[str, ...] = ()
    access_log: bool = True
    max_inflight: int = DEFAULT_MAX_INFLIGHT
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    micro_batch: int = DEFAULT_MICRO_BATCH

    def __post_init__(self):
        if self.max_inflight < 1 or self.micro_batch < 1 or not self.request_timeout_s > 0:
            raise ValueError("max_inflight and micro_batch must be >= 1 and request_timeout_s > 0")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, api_keys_file: str | None = None) -> ServiceSettings:
        """Settings from the EMOTIONS_* variables (`environ`: os.environ); `api_keys_file` adds to
        $EMOTIONS_API_KEYS_FILE (the serve command's --api-keys-file)."""
        env = os.environ if environ is None else environ
        keys, source = load_api_keys(env, api_keys_file)
        return cls(api_keys=keys, api_keys_source=source,
                   protect_health=env_flag(env, "EMOTIONS_PROTECT_HEALTH", False),
                   cors_origins=env_list(env, "EMOTIONS_CORS_ORIGINS"),
                   access_log=env_flag(env, "EMOTIONS_ACCESS_LOG", True),
                   max_inflight=env_number(env, "EMOTIONS_MAX_INFLIGHT", DEFAULT_MAX_INFLIGHT),
                   request_timeout_s=env_number(env, "EMOTIONS_REQUEST_TIMEOUT_S", DEFAULT_REQUEST_TIMEOUT_S,
                                                float, minimum=0.001),
                   micro_batch=env_number(env, "EMOTIONS_MICRO_BATCH", DEFAULT_MICRO_BATCH))
