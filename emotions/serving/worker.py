"""The inference thread of the service: one thread runs the model and merges waiting requests into one batch.

Requests submit lists of texts (already cleaned and truncated) and get a future of (probabilities, decisions).
There are two lanes. Small requests (a single text, a short batch) are interactive: waiting ones are merged
into one model call and run first. Micro-batches of big batches are bulk: one per model call, so a single
text waits for at most one of them; after `bulk_every` interactive calls in a row a waiting bulk job runs,
so a stream of single texts cannot starve a big batch either. Jobs whose future was cancelled (a request
past its deadline or whose client left) are dropped before the model runs, so they cost nothing.
"""

from __future__ import annotations

import collections
import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..models.base import Predictor

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 64
DEFAULT_BULK_EVERY = 4


@dataclass
class _Job:
    texts: list[str]
    future: Future


class InferenceWorker:
    """One thread runs the model: interactive jobs merged (up to `max_batch` texts) and first, bulk jobs one
    at a time, one bulk call after at most `bulk_every` interactive ones."""

    def __init__(self, predictor: Predictor, max_batch: int = DEFAULT_MAX_BATCH,
                 bulk_every: int = DEFAULT_BULK_EVERY):
        self.predictor = predictor
        self.max_batch = max(1, int(max_batch))
        self.bulk_every = max(1, int(bulk_every))
        self._lanes: dict[bool, collections.deque[_Job]] = {False: collections.deque(), True: collections.deque()}
        self._ready = threading.Condition()
        self._stopping = False
        self._interactive_run = 0               # interactive calls since the last bulk one
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0
        self.texts = 0

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(target=self._loop, name="emotions-inference", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            with self._ready:
                self._stopping = True
                self._ready.notify()
            thread.join(timeout)

    def waiting(self) -> int:
        """Jobs queued, not yet running."""
        return len(self._lanes[False]) + len(self._lanes[True])

    def submit(self, texts: Sequence[str], bulk: bool = False) -> Future:
        """Future of (probabilities, decisions) for `texts` (already cleaned and truncated)."""
        self.start()
        fut: Future = Future()
        with self._ready:
            self._lanes[bool(bulk)].append(_Job(list(texts), fut))
            self._ready.notify()
        return fut

    def _next_jobs(self) -> list[_Job] | None:
        """The jobs of the next model call (None: stopping, and every job accepted before has run)."""
        with self._ready:
            self._ready.wait_for(lambda: self._stopping or self.waiting())
            if not self.waiting():
                return None
            interactive, bulk = self._lanes[False], self._lanes[True]
            if bulk and (not interactive or self._interactive_run >= self.bulk_every):
                self._interactive_run = 0
                return [bulk.popleft()]
            self._interactive_run += 1 if bulk else 0
            jobs = [interactive.popleft()]
            n = len(jobs[0].texts)
            while interactive and n + len(interactive[0].texts) <= self.max_batch:
                jobs.append(interactive.popleft())
                n += len(jobs[-1].texts)
            return jobs

    def _loop(self) -> None:
        while (jobs := self._next_jobs()) is not None:
            self._run(jobs)

    def _run(self, jobs: list[_Job]) -> None:
        # running futures can no longer be cancelled; cancelled ones (nobody waits any more) are dropped
        jobs = [j for j in jobs if j.future.set_running_or_notify_cancel()]
        if not jobs:
            return
        texts = [t for j in jobs for t in j.texts]
        try:
            proba = np.asarray(self.predictor.predict_proba(texts), dtype=np.float64)
            decisions = self.predictor.decide(proba)
        except Exception as exc:  # noqa: BLE001 - handed to the waiting requests
            log.exception("inference failed on a batch of %d texts", len(texts))
            for j in jobs:
                j.future.set_exception(exc)
            return
        self.batches += 1
        self.texts += len(texts)
        start = 0
        for j in jobs:
            end = start + len(j.texts)
            j.future.set_result((proba[start:end], decisions[start:end]))
            start = end
