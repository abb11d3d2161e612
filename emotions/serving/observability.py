"""What the service tells its operators: a JSON access log, Prometheus metrics, rate-limited error lines.

- Access log: logger `emotions.access`, one JSON object per request (request id, method, route, status,
  latency_ms, texts, truncated), never a text. The request id is the client's `X-Request-ID` when it is a
  plain token (letters, digits, `._:-`, at most 128), else a new one; it is echoed in the response header.
- Metrics (`/metrics`): request counter and latency histogram by route and status, texts per request,
  truncated texts, in-flight requests, model calls, and the model's kind / backend / labels. One registry
  per app, so apps in one process do not share counters.
- Repetition limit: an error line, or an access line for a 4xx/5xx answer, is written at most
  `ERROR_LINES_PER_SECOND` times a second per kind; the next one written says how many were held back.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Hashable

from .inputs import app_path

ACCESS_LOGGER = "emotions.access"
ERROR_LINES_PER_SECOND = 10
LIMITED_LOGGERS = ("emotions.serving.service", "emotions.serving.worker", "uvicorn.error")
SCOPE_KEY = "emotions.request"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
access_log = logging.getLogger(ACCESS_LOGGER)


# --- repetition limit ----------------------------------------------------------------------------------
class RepeatLimiter:
    """At most `per_second` lines per key in each one-second window; counts the lines it held back."""

    def __init__(self, per_second: int = ERROR_LINES_PER_SECOND, clock: Callable[[], float] = time.monotonic):
        self.per_second, self.clock = per_second, clock
        self._windows: dict[Hashable, list] = {}          # key -> [window start, lines written, lines held back]
        self._lock = threading.Lock()

    def allow(self, key: Hashable) -> tuple[bool, int]:
        """(write this line?, lines of this key held back since the last one written)."""
        now = self.clock()
        with self._lock:
            w = self._windows.get(key)
            if w is None or now - w[0] >= 1.0:
                if len(self._windows) > 1000:
                    self._windows.clear()
                self._windows[key] = [now, 1, 0]
                return True, (w[2] if w else 0)
            if w[1] < self.per_second:
                w[1] += 1
                return True, 0
            w[2] += 1
            return False, 0


class RepeatFilter(logging.Filter):
    """Logger filter: warnings and errors of one message template at most `per_second` times a second."""

    def __init__(self, per_second: int = ERROR_LINES_PER_SECOND):
        super().__init__()
        self.limiter = RepeatLimiter(per_second)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        ok, held = self.limiter.allow((record.name, record.levelno, str(record.msg)))
        if ok and held:
            record.msg, record.args = f"{record.getMessage()} ({held} more like it held back)", None
        return ok


def limit_repeated_logs(names: tuple[str, ...] = LIMITED_LOGGERS) -> None:
    """Put a RepeatFilter on each logger of `names` (once)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatFilter) for f in logger.filters):
            logger.addFilter(RepeatFilter())


class LineFormatter(logging.Formatter):
    """The service's log format; access lines are written bare, so each is one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage() if record.name == ACCESS_LOGGER else super().format(record)


def setup_logging(level: str) -> None:
    """Log lines of `emotions` at `level` (the access log at info) to stderr; others from warning on."""
    handler = logging.StreamHandler()
    handler.setFormatter(LineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    logging.getLogger("emotions").setLevel(level.upper())
    access_log.setLevel(logging.INFO)
    limit_repeated_logs()


# --- metrics -------------------------------------------------------------------------------------------
class Metrics:
    """The app's Prometheus metrics, in a registry of its own."""

    def __init__(self, model: dict[str, str], n_labels: int, inflight: Callable[[], float] | None = None,
                 worker=None):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

        self.registry = r = CollectorRegistry()
        self.requests = Counter("emotions_requests", "HTTP requests answered", ["route", "status"], registry=r)
        self.latency = Histogram("emotions_request_latency_seconds", "time from request to the end of the answer",
                                 ["route", "status"], registry=r)
        self.texts = Histogram("emotions_texts_per_request", "texts in a prediction request", ["route"],
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), registry=r)
        self.truncated = Counter("emotions_truncated_texts", "texts cut to max_chars", registry=r)
        Info("emotions_model", "the model served", registry=r).info(model)
        Gauge("emotions_model_labels", "labels the model predicts", registry=r).set(n_labels)
        if inflight is not None:
            Gauge("emotions_inflight_requests", "prediction requests in progress", registry=r).set_function(inflight)
        if worker is not None:
            r.register(_WorkerCollector(worker))

    def observe(self, route: str, status: int, seconds: float, texts: int | None, truncated: int | None) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route, str(status)).observe(seconds)
        if texts is not None:
            self.texts.labels(route).observe(texts)
        if truncated:
            self.truncated.inc(truncated)

    def render(self) -> tuple[bytes, str]:
        """(the text exposition, its content type)."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _WorkerCollector:
    """Model calls and texts run by the inference thread, read when scraped."""

    def __init__(self, worker):
        self.worker = worker

    def collect(self):
        from prometheus_client.core import CounterMetricFamily

        yield CounterMetricFamily("emotions_model_calls", "batches the model ran", value=self.worker.batches)
        yield CounterMetricFamily("emotions_model_texts", "texts the model ran", value=self.worker.texts)


# --- per request ---------------------------------------------------------------------------------------
@dataclass
class RequestNote:
    """What a handler knows about its request, for the access log and metrics."""
    request_id: str
    texts: int | None = None
    truncated: int | None = None


def note(request, texts: int, truncated: int) -> None:
    """Record the number of texts and of truncated texts of a prediction request."""
    info = request.scope.get(SCOPE_KEY)
    if info is not None:
        info.texts, info.truncated = texts, truncated


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-ID when it is a plain token, else a new random id."""
    given = next((v for k, v in headers if k.lower() == b"x-request-id"), b"").decode("latin-1").strip()
    return given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


class RequestObserver:
    """ASGI middleware: request id in and out, then one access line and the metrics of each request."""

    def __init__(self, app, metrics: Metrics | None = None, log_access: bool = True):
        self.app, self.metrics, self.log_access = app, metrics, log_access
        self.limiter = RepeatLimiter()
        self._routes: tuple[set[str], tuple[str, ...]] | None = None

    def route_of(self, scope: dict) -> str:
        """The route template a request went to (mounts as "/prefix/*"), "unmatched" for unknown paths."""
        if self._routes is None:
            routes = getattr(scope.get("app"), "routes", ())
            paths = {r.path for r in routes if hasattr(r, "methods")}
            self._routes = paths, tuple(r.path for r in routes if not hasattr(r, "methods") and r.path)
        path = app_path(scope)
        if path in self._routes[0]:
            return path
        return next((m + "/*" for m in self._routes[1] if path.startswith(m + "/")), "unmatched")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        info = RequestNote(request_id(scope.get("headers") or []))
        scope[SCOPE_KEY] = info
        status = [500]
        t0 = time.perf_counter()

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", info.request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.record(scope, info, status[0], time.perf_counter() - t0)

    def record(self, scope: dict, info: RequestNote, status: int, seconds: float) -> None:
        """Count the request and write its access line (answers >= 400: at most N a second per kind)."""
        route = self.route_of(scope)
        if self.metrics is not None:
            self.metrics.observe(route, status, seconds, info.texts, info.truncated)
        if not self.log_access or not access_log.isEnabledFor(logging.INFO):
            return
        held = 0
        if status >= 400:
            ok, held = self.limiter.allow((route, status))
            if not ok:
                return
        line = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                "request_id": info.request_id, "method": scope.get("method"), "route": route, "status": status,
                "latency_ms": round(seconds * 1000, 2), "texts": info.texts, "truncated": info.truncated}
        if held:
            line["held_back"] = held
        access_log.info(json.dumps(line, ensure_ascii=False))
