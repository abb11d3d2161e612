"""The inference thread of the service: one thread runs the model and merges waiting requests into one batch.

Requests submit lists of texts (already cleaned and truncated) and get a future of (probabilities, decisions).
Jobs whose future was cancelled (a request past its deadline or whose client left) are dropped before the
model runs, so they cost nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..models.base import Predictor

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 64


@dataclass
class _Job:
    texts: list[str]
    future: Future


class InferenceWorker:
    """One thread runs the model; jobs waiting in the queue are merged into one batch (up to `max_batch`)."""

    def __init__(self, predictor: Predictor, max_batch: int = DEFAULT_MAX_BATCH):
        self.predictor = predictor
        self.max_batch = max(1, int(max_batch))
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0
        self.texts = 0

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="emotions-inference", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout)

    def submit(self, texts: Sequence[str]) -> Future:
        """Future of (probabilities, decisions) for `texts` (already cleaned and truncated)."""
        self.start()
        fut: Future = Future()
        self._queue.put(_Job(list(texts), fut))
        return fut

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs, n = [job], len(job.texts)
            while n < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)          # stop after this batch
                    break
                jobs.append(nxt)
                n += len(nxt.texts)
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
