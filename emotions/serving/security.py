"""Optional API keys (`Authorization: Bearer <key>`) and the CORS allow-list of the service.

Keys come from $EMOTIONS_API_KEYS (comma-separated) and/or a file, one key per line ($EMOTIONS_API_KEYS_FILE
or the serve command's --api-keys-file; blank lines and lines starting with # are skipped). No key
configured = the service is open. With keys, every path needs one except the OpenAPI docs pages, the
try-it page `/` (a static shell: it asks for a key and sends it with its own requests, since a browser
cannot send a Bearer header when it opens a page) and, unless $EMOTIONS_PROTECT_HEALTH=1, /health and
/metrics. A request without a valid key gets a 401 before
its body is read. Keys are compared in constant time (sha256 digests, `hmac.compare_digest`, every key).
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Iterable, Mapping

from .inputs import app_path

DOCS_PATHS = frozenset({"/", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
DOCS_PREFIX = "/static-offline-docs/"
HEALTH_PATHS = frozenset({"/health", "/metrics"})
CHALLENGE = 'Bearer realm="emotions"'


def read_keys_file(path: str | Path) -> list[str]:
    """The keys of a key file; ValueError when it cannot be read or holds none."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"API key file {path} cannot be read ({type(e).__name__}: {e})") from None
    keys = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not keys:
        raise ValueError(f"API key file {path} holds no key (one key per line)")
    return keys


def load_api_keys(environ: Mapping[str, str], extra_file: str | None = None) -> tuple[tuple[str, ...], str]:
    """(keys, where they came from) from $EMOTIONS_API_KEYS, $EMOTIONS_API_KEYS_FILE and `extra_file`."""
    keys: list[str] = []
    sources: list[str] = []
    inline = [k.strip() for k in (environ.get("EMOTIONS_API_KEYS") or "").split(",") if k.strip()]
    if inline:
        keys += inline
        sources.append("EMOTIONS_API_KEYS")
    for path in dict.fromkeys(p for p in ((environ.get("EMOTIONS_API_KEYS_FILE") or "").strip(), extra_file) if p):
        keys += read_keys_file(path)
        sources.append(str(path))
    bad = [i for i, k in enumerate(keys) if any(ch.isspace() for ch in k)]
    if bad:
        raise ValueError(f"API key number {bad[0] + 1} (from {', '.join(sources)}) contains whitespace")
    return tuple(dict.fromkeys(keys)), ", ".join(sources)


def access_summary(keys: Iterable[str], source: str, protect_health: bool) -> str:
    """The one start-up log line that says who may call the service."""
    n = len(tuple(keys))
    if not n:
        return ("no API keys configured (EMOTIONS_API_KEYS / EMOTIONS_API_KEYS_FILE): the service answers "
                "anyone who can reach it")
    opened = "docs pages and / open" if protect_health else "/health, /metrics, / and the docs pages open"
    return f"API keys required: {n} key(s) from {source}; {opened}"


class KeyChecker:
    """Constant-time membership test of a presented key among the configured ones."""

    def __init__(self, keys: Iterable[str]):
        self._digests = [hashlib.sha256(k.encode("utf-8")).digest() for k in keys]

    def __bool__(self) -> bool:
        return bool(self._digests)

    def matches(self, key: str) -> bool:
        """True when `key` is one of the keys; compares with every key, whatever matched."""
        given = hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()
        found = False
        for digest in self._digests:
            found |= hmac.compare_digest(given, digest)
        return found


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; "" for another scheme, None without one."""
    value = next((v for k, v in headers if k.lower() == b"authorization"), None)
    if value is None:
        return None
    scheme, _, token = value.decode("latin-1").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else ""


class ApiKeyAuth:
    """ASGI middleware: 401 (JSON detail, `WWW-Authenticate: Bearer`) for a protected path without a valid key."""

    def __init__(self, app, keys: Iterable[str], protect_health: bool = False):
        self.app = app
        self.checker = KeyChecker(keys)
        self.protect_health = protect_health

    def is_open(self, path: str) -> bool:
        """Paths that need no key: the docs pages, the page at / and (unless protected) /health and /metrics."""
        return (path in DOCS_PATHS or path.startswith(DOCS_PREFIX)
                or (not self.protect_health and path in HEALTH_PATHS))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.checker:
            await self.app(scope, receive, send)
            return
        path = app_path(scope)
        token = bearer_token(scope.get("headers") or [])
        if self.is_open(path) or (token and self.checker.matches(token)):
            await self.app(scope, receive, send)
            return
        if token is None:
            detail, challenge = "missing API key: send the header 'Authorization: Bearer <key>'", CHALLENGE
        elif not token:
            detail, challenge = "the Authorization header must read 'Bearer <key>'", CHALLENGE
        else:
            detail, challenge = "invalid API key", CHALLENGE + ', error="invalid_token"'
        from fastapi.responses import JSONResponse

        await JSONResponse({"detail": detail}, status_code=401, headers={"WWW-Authenticate": challenge})(
            scope, receive, send)


def add_cors(app, origins: Iterable[str]) -> None:
    """Answer browsers from `origins` (CORSMiddleware); no origins = no CORS headers at all."""
    origins = list(origins)
    if not origins:
        return
    from fastapi.middleware.cors import CORSMiddleware

    app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                       allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                       expose_headers=["X-Request-ID", "Retry-After"], max_age=600)
