"""Load limits of the service: a cap on prediction requests in flight, a per-request deadline, micro-batches.

- `InflightLimit`: at most `Gate.limit` prediction requests (/predict...) at once; one more gets a 503 with
  `Retry-After` at once, instead of waiting in an ever longer queue. /health and /metrics are not counted.
- `MicroBatcher`: a request's texts go to the inference thread in micro-batches, one after the other. A
  request of more than `INTERACTIVE_TEXTS` texts goes in the worker's bulk lane, so a single text arriving
  meanwhile runs before its next micro-batch instead of after all of it (`worker`). Before each micro-batch
  it checks the request's deadline (504 once past) and whether the client has gone (the rest is skipped,
  logged as 499).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .inputs import app_path

RETRY_AFTER_S = 1
INTERACTIVE_TEXTS = 8               # requests up to this many texts take the worker's interactive lane
CLIENT_CLOSED = 499                 # nginx's "client closed request": only ever seen in logs and metrics


@dataclass
class Gate:
    """The in-flight cap and the number of requests inside it (shared by the middleware and /metrics)."""
    limit: int
    inflight: int = 0


class InflightLimit:
    """ASGI middleware: 503 + Retry-After for a request to `prefix` while `gate.limit` are in progress."""

    def __init__(self, app, gate: Gate, prefix: str = "/predict"):
        self.app, self.gate, self.prefix = app, gate, prefix

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not app_path(scope).startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        if self.gate.inflight >= self.gate.limit:
            from fastapi.responses import JSONResponse

            detail = (f"the service is busy: {self.gate.limit} prediction requests are in progress "
                      f"(EMOTIONS_MAX_INFLIGHT); retry in {RETRY_AFTER_S} s")
            await JSONResponse({"detail": detail}, status_code=503,
                               headers={"Retry-After": str(RETRY_AFTER_S)})(scope, receive, send)
            return
        self.gate.inflight += 1                   # one event loop: no await between the test and this
        try:
            await self.app(scope, receive, send)
        finally:
            self.gate.inflight -= 1


class MicroBatcher:
    """Run a request's texts through the inference worker in micro-batches, within a deadline."""

    def __init__(self, worker, micro_batch: int, timeout_s: float):
        self.worker, self.micro_batch, self.timeout_s = worker, max(1, int(micro_batch)), float(timeout_s)

    def _past_deadline(self, done: int, total: int):
        from starlette.exceptions import HTTPException

        return HTTPException(504, f"inference did not finish within {self.timeout_s:g} s "
                                  f"(EMOTIONS_REQUEST_TIMEOUT_S; {done} of {total} texts done): the service is "
                                  "overloaded or the batch too big; retry later or send fewer texts")

    async def run(self, texts: Sequence[str], request=None) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, decisions) of `texts`; HTTPException 504 past the deadline, 499 when the client left."""
        from starlette.exceptions import HTTPException

        deadline = time.monotonic() + self.timeout_s
        bulk = len(texts) > INTERACTIVE_TEXTS
        probas, decisions = [], []
        for start in range(0, len(texts), self.micro_batch):
            if start and request is not None and await request.is_disconnected():
                raise HTTPException(CLIENT_CLOSED, f"the client closed the connection after {start} of "
                                                   f"{len(texts)} texts; the rest were not classified")
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._past_deadline(start, len(texts))
            future = self.worker.submit(texts[start:start + self.micro_batch], bulk=bulk)
            try:
                proba, decided = await asyncio.wait_for(asyncio.wrap_future(future), left)
            except asyncio.TimeoutError:
                future.cancel()                   # still queued: the worker drops it
                raise self._past_deadline(start, len(texts)) from None
            probas.append(proba)
            decisions.append(decided)
        return np.concatenate(probas), np.concatenate(decisions)
