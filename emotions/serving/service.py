"""HTTP service for a trained run: FastAPI + uvicorn.

    python -m emotions.serve --run RUN_DIR [--host 127.0.0.1] [--port 8000] [--workers 1] [--threads N]
                             [--backend torch|native|onnx|onnx-int8] [--max-chars 2000] [--max-batch 64]

Endpoints: `POST /predict` {"text": "..."} -> {"labels": [...], "scores": {label: p}, "truncated": bool}
(plus "warning" when the text is empty after preprocessing); `POST /predict/batch` {"texts": [...]} ->
{"results": [...]}; `GET /health`; OpenAPI docs at `/docs` and `/redoc`, served from local files.
Texts are preprocessed exactly as in training (`Predictor.preprocess`) and decided with the run's tuned
thresholds (`Predictor.decide`). Requests are answered by one inference thread that merges whatever
requests are waiting into one batch (no added delay when idle, higher throughput under load).

Backends: `torch` / `native` load the model folder as trained (any kind, baseline included);
`onnx` / `onnx-int8` run the export made by `python -m emotions.export_onnx` (see `backends`). The service
never writes into the run folder: a missing export fails at start-up (`--export-if-missing` opts in).
"""

# no `from __future__ import annotations`: FastAPI must resolve the request models defined in create_app

import argparse
import asyncio
import json
import logging
import os
import queue
import sys
import threading
import time
from concurrent.futures import Future
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import __version__
from ..models.base import Predictor
from .backends import BACKENDS, backend_label, load_backend
from .inputs import (DEFAULT_MAX_CHARS, EMPTY_AFTER_PREPROCESSING, BodySizeLimit, is_blank, limit_text,
                     undecodable_body)
from .inputs import message as _message
from .onnx_predictor import clean_unicode, locate

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 64
DEFAULT_MAX_BODY_BYTES = 8 * 2**20


# --- inference thread ------------------------------------------------------------------------------
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
        texts = [t for j in jobs for t in j.texts]
        try:
            proba = np.asarray(self.predictor.predict_proba(texts), dtype=np.float64)
            decisions = self.predictor.decide(proba)
        except Exception as exc:  # noqa: BLE001 - handed to the waiting requests
            log.exception("inference failed on a batch of %d texts", len(texts))
            for j in jobs:
                if not j.future.done():
                    j.future.set_exception(exc)
            return
        self.batches += 1
        self.texts += len(texts)
        start = 0
        for j in jobs:
            end = start + len(j.texts)
            if not j.future.done():
                j.future.set_result((proba[start:end], decisions[start:end]))
            start = end


# --- the app ---------------------------------------------------------------------------------------
def create_app(run_dir: str | Path | None = None, backend: str = "torch", *, max_chars: int = DEFAULT_MAX_CHARS,
               max_batch: int = DEFAULT_MAX_BATCH, threads: int | None = None,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, predictor: Predictor | None = None,
               auto_export: bool = False, spinning: bool = False):
    """The FastAPI app for a run folder (or model folder), or for an already loaded `predictor`."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi_offline import FastAPIOffline
    from starlette.exceptions import HTTPException
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

    if max_chars < 1 or max_batch < 1:
        raise ValueError("max_chars and max_batch must be >= 1")
    if predictor is None:
        if run_dir is None:
            raise ValueError("give a run folder or a predictor")
        t0 = time.perf_counter()
        predictor = load_backend(run_dir, backend, threads=threads, auto_export=auto_export, spinning=spinning)
        log.info("loaded %s model from %s on backend %s in %.1fs", predictor.kind, run_dir, backend,
                 time.perf_counter() - t0)
    labels = list(predictor.labels)
    served_backend = backend_label(predictor, backend)
    worker = InferenceWorker(predictor, max_batch=max_batch)
    model_dir = str(locate(run_dir).model_dir) if run_dir is not None else None

    def check_text(v: str) -> str:
        if is_blank(v):
            raise ValueError("text must contain at least one visible character (empty or whitespace-only given)")
        return v

    example = "я так рада, что ты пришёл!"

    class TextIn(BaseModel):
        """One text to classify."""
        text: StrictStr = Field(..., description=f"raw text; longer than {max_chars} characters is truncated",
                                examples=[example])

        @field_validator("text")
        @classmethod
        def _check(cls, v: str) -> str:
            return check_text(v)

    class BatchIn(BaseModel):
        """Several texts to classify at once."""
        texts: list[StrictStr] = Field(..., min_length=1, max_length=max_batch,
                                       description=f"1..{max_batch} raw texts", examples=[[example, "ужас какой"]])

        @field_validator("texts")
        @classmethod
        def _check_all(cls, v: list[str]) -> list[str]:
            bad = [i for i, t in enumerate(v) if is_blank(t)]
            if bad:
                raise ValueError(f"texts at positions {bad[:10]} are empty or whitespace-only")
            return v

    class Prediction(BaseModel):
        labels: list[str] = Field(..., description="decided labels (tuned thresholds; argmax for single-label)")
        scores: dict[str, float] = Field(..., description="probability per label")
        truncated: bool = Field(..., description=f"the text was cut to {max_chars} characters")
        warning: str | None = Field(None, description="set when the prediction deserves caution, e.g. a text "
                                                      "that is empty after preprocessing (only present then)")

    class BatchOut(BaseModel):
        results: list[Prediction]

    class Health(BaseModel):
        model_config = ConfigDict(protected_namespaces=())
        status: str
        kind: str
        task: str
        backend: str
        version: str
        labels: list[str]
        multilabel: bool
        thresholds: dict[str, float]
        max_chars: int
        max_batch: int
        model_dir: str | None
        requests_batched: dict[str, int]

    @asynccontextmanager
    async def lifespan(_app):
        worker.start()
        try:
            yield
        finally:
            worker.stop()

    # Swagger UI / ReDoc from the files fastapi-offline ships (FastAPI's self-hosting recipe): /docs works offline
    app = FastAPIOffline(title="emotions", version=__version__, lifespan=lifespan,
                  description=f"Emotion classification ({predictor.task or 'task'}: {', '.join(labels)}), "
                              f"{predictor.kind} model on the {served_backend} backend.")
    app.state.predictor = predictor
    app.state.worker = worker

    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError):
        errors = exc.errors()
        for e in errors:
            if e.get("type") == "too_long" and tuple(e.get("loc", ())) == ("body", "texts"):
                n = e.get("input")
                n = len(n) if isinstance(n, list) else "too many"
                return JSONResponse({"detail": f"batch of {n} texts is over the limit of {max_batch} "
                                               f"(--max-batch); split it"}, status_code=413)
        # no "input" echoed back: it may be huge or hold characters JSON cannot encode
        detail = [{"loc": list(e.get("loc", ())), "msg": clean_unicode(_message(e)), "type": e.get("type", "")}
                  for e in errors]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException):
        if isinstance(exc.__cause__, UnicodeDecodeError):       # FastAPI answers 400 for a body it cannot decode
            return JSONResponse({"detail": [undecodable_body(exc.__cause__)]}, status_code=422)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(_request: Request, exc: Exception):
        log.exception("unhandled error: %s", exc)
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)

    def to_prediction(proba: np.ndarray, decision: np.ndarray, truncated: bool, clean: str = "x") -> dict:
        out = {"labels": [l for l, d in zip(labels, decision) if d],
               "scores": {l: round(float(p), 6) for l, p in zip(labels, proba)}, "truncated": truncated}
        if not clean.strip():
            out["warning"] = EMPTY_AFTER_PREPROCESSING
        return out

    @app.post("/predict", response_model=Prediction, response_model_exclude_none=True, summary="Classify one text",
              responses={422: {"description": "missing/empty/non-string text or invalid JSON"}})
    async def predict(body: TextIn) -> dict:
        text, truncated = limit_text(body.text, max_chars)
        proba, decisions = await asyncio.wrap_future(worker.submit([text]))
        return to_prediction(proba[0], decisions[0], truncated, predictor.preprocess([text])[0])

    @app.post("/predict/batch", response_model=BatchOut, response_model_exclude_none=True,
              summary="Classify several texts",
              responses={413: {"description": f"more than {max_batch} texts"},
                         422: {"description": "missing/empty list, a non-string or empty text, invalid JSON"}})
    async def predict_batch(body: BatchIn) -> dict:
        limited = [limit_text(t, max_chars) for t in body.texts]
        proba, decisions = await asyncio.wrap_future(worker.submit([t for t, _ in limited]))
        clean = predictor.preprocess([t for t, _ in limited])
        return {"results": [to_prediction(p, d, cut, c)
                            for p, d, (_, cut), c in zip(proba, decisions, limited, clean)]}

    @app.get("/health", response_model=Health, summary="Model and service information")
    async def health() -> dict:
        return {"status": "ok", "kind": predictor.kind, "task": predictor.task, "backend": served_backend,
                "version": __version__, "labels": labels, "multilabel": bool(predictor.multilabel),
                "thresholds": {l: float(t) for l, t in zip(labels, predictor.thresholds)},
                "max_chars": max_chars, "max_batch": max_batch, "model_dir": model_dir,
                "requests_batched": {"batches": worker.batches, "texts": worker.texts}}

    return app


# --- CLI -------------------------------------------------------------------------------------------
WORKER_CONFIG_ENV = "EMOTIONS_SERVE_CONFIG"


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("emotions").setLevel(level.upper())


def app_from_env():
    """App factory for uvicorn's worker processes (`--workers` > 1): create_app's arguments in $EMOTIONS_SERVE_CONFIG."""
    config = json.loads(os.environ[WORKER_CONFIG_ENV])
    _setup_logging(config.pop("log_level", "info"))
    return create_app(**config)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m emotions.serve", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--run", required=True, type=Path, help="run folder (with model/) or a model folder")
    ap.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0: all)")
    ap.add_argument("--port", type=int, default=8000, help="TCP port")
    ap.add_argument("--backend", choices=BACKENDS, default="torch",
                    help="torch/native: the model as trained; onnx / onnx-int8: the ONNX export")
    ap.add_argument("--max-chars", type=int, default=DEFAULT_MAX_CHARS, help="longer texts are truncated")
    ap.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH, help="most texts per batch request")
    ap.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES, help="larger bodies get a 413")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch / onnxruntime intra-op threads per worker (None: all cores)")
    ap.add_argument("--workers", type=int, default=1,
                    help="server processes; each loads its own copy of the model (memory x workers)")
    ap.add_argument("--spin", dest="spinning", action="store_true",
                    help="let onnxruntime threads busy-wait between ops (faster only on idle, dedicated cores)")
    ap.add_argument("--export-if-missing", dest="auto_export", action="store_true",
                    help="onnx backends: export the model at start-up when the run has no export (local use: "
                         "writes into the run folder, needs the full install); by default a missing export is an error")
    ap.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"], help="log detail")
    args = ap.parse_args(argv)
    if args.workers < 1:
        ap.error("--workers must be >= 1")
    _setup_logging(args.log_level)
    config = dict(run_dir=str(args.run), backend=args.backend, max_chars=args.max_chars, max_batch=args.max_batch,
                  threads=args.threads, max_body_bytes=args.max_body_bytes, spinning=args.spinning)
    try:
        app = create_app(**config, auto_export=args.auto_export)       # fails here, once, with a clear message
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import uvicorn
    if args.workers == 1:
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
        return 0
    del app                                                             # each worker loads its own copy
    os.environ[WORKER_CONFIG_ENV] = json.dumps({**config, "log_level": args.log_level})
    uvicorn.run("emotions.serving.service:app_from_env", factory=True, workers=args.workers, host=args.host,
                port=args.port, log_level=args.log_level, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
