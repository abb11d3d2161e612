"""HTTP service for a trained run: FastAPI + uvicorn.

    python -m emotions.serve --run RUN_DIR [--host 127.0.0.1] [--port 8000] [--workers 1] [--threads N]
                             [--backend torch|native|onnx|onnx-int8] [--max-chars 2000] [--max-batch 64]
                             [--api-keys-file FILE] [--limit-concurrency 256] [--timeout-keep-alive 5]
                             [--timeout-graceful-shutdown 30]

Endpoints: `POST /predict` {"text": "..."} -> {"labels": [...], "scores": {label: p}, "truncated": bool}
(plus "warning" when the text is empty after preprocessing); `POST /predict/batch` {"texts": [...]} ->
{"results": [...]}, one per text in order (an empty or null text gets {"error": ...} and no labels, as the
batch job reports a row); `GET /` a page to try the model in a browser; `GET /health`; `GET /metrics` (Prometheus); OpenAPI docs at `/docs` and `/redoc`,
served from local files. Texts are preprocessed exactly as in training (`Predictor.preprocess`) and decided
with the run's tuned thresholds (`Predictor.decide`). Requests are answered by one inference thread that
merges whatever requests are waiting into one batch (no added delay when idle, higher throughput under
load); a batch request goes to it in micro-batches, so single texts are not held up behind it.

API keys, CORS, the access log and the load limits are switched by EMOTIONS_* environment variables
(`settings`); docs/serving.md lists them all.

Backends: `torch` / `native` load the model folder as trained (any kind, baseline included);
`onnx` / `onnx-int8` run the export made by `python -m emotions.export_onnx` (see `backends`). The service
never writes into the run folder: a missing export fails at start-up (`--export-if-missing` opts in).
"""

# no `from __future__ import annotations`: FastAPI must resolve the body models named in _add_routes

import argparse
import json
import logging
import os
import sys
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import __version__
from ..models.base import Predictor
from .backends import BACKENDS, backend_label, load_backend
from .errors import add_error_handlers
from .inputs import DEFAULT_MAX_CHARS, EMPTY_AFTER_PREPROCESSING, BodySizeLimit, limit_text, text_problem
from .limits import Gate, InflightLimit, MicroBatcher
from .observability import Metrics, RequestObserver, access_log, limit_repeated_logs, note, setup_logging
from .page import add_page
from .schemas import Bodies, make_bodies
from .security import ApiKeyAuth, access_summary, add_cors
from .settings import ServiceSettings
from .worker import DEFAULT_MAX_BATCH, InferenceWorker

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 8 * 2**20
DEFAULT_LIMIT_CONCURRENCY = 4096       # uvicorn: open connections / tasks before it answers 503 itself
DEFAULT_KEEP_ALIVE_S = 5
DEFAULT_GRACEFUL_SHUTDOWN_S = 30


# --- the app ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Served:
    """What the routes of one app answer with."""
    predictor: Predictor
    backend: str
    max_chars: int
    max_batch: int
    batcher: MicroBatcher


def create_app(run_dir: str | Path | None = None, backend: str = "torch", *, max_chars: int = DEFAULT_MAX_CHARS,
               max_batch: int = DEFAULT_MAX_BATCH, threads: int | None = None,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, predictor: Predictor | None = None,
               auto_export: bool = False, spinning: bool = False, settings: ServiceSettings | None = None,
               api_keys_file: str | None = None):
    """The FastAPI app for a run folder (or model folder), or for an already loaded `predictor`.

    `settings`: keys, CORS, logging and load limits; by default read from the environment
    (`ServiceSettings.from_env`, with `api_keys_file` added to the key files)."""
    from fastapi_offline import FastAPIOffline

    if max_chars < 1 or max_batch < 1:
        raise ValueError("max_chars and max_batch must be >= 1")
    settings = ServiceSettings.from_env(api_keys_file=api_keys_file) if settings is None else settings
    if predictor is None:
        predictor = _load(run_dir, backend, threads=threads, auto_export=auto_export, spinning=spinning)
    served_backend = backend_label(predictor, backend)
    worker = InferenceWorker(predictor, max_batch=max_batch)
    gate = Gate(settings.max_inflight)
    metrics = Metrics({"kind": str(predictor.kind), "backend": served_backend, "labels": str(len(predictor.labels)),
                       "task": str(predictor.task or ""), "version": __version__}, len(predictor.labels),
                      inflight=lambda: gate.inflight, worker=worker)

    @asynccontextmanager
    async def lifespan(_app):
        worker.start()
        try:
            yield
        finally:
            worker.stop()

    # Swagger UI / ReDoc from the files fastapi-offline ships (FastAPI's self-hosting recipe): /docs works offline
    app = FastAPIOffline(title="emotions", version=__version__, lifespan=lifespan,
                         description=f"Emotion classification ({predictor.task or 'task'}: "
                                     f"{', '.join(predictor.labels)}), {predictor.kind} model on the "
                                     f"{served_backend} backend.")
    app.state.predictor, app.state.worker, app.state.metrics = predictor, worker, metrics
    _guard(app, settings, gate, metrics, max_body_bytes)
    add_error_handlers(app, max_batch)
    batcher = MicroBatcher(worker, settings.micro_batch, settings.request_timeout_s)
    _add_routes(app, Served(predictor, served_backend, max_chars, max_batch, batcher),
                make_bodies(max_chars, max_batch))
    add_page(app, predictor)
    return app


def _load(run_dir: str | Path | None, backend: str, **options) -> Predictor:
    """The run's predictor on `backend`, with one log line saying how long it took."""
    if run_dir is None:
        raise ValueError("give a run folder or a predictor")
    t0 = time.perf_counter()
    predictor = load_backend(run_dir, backend, **options)
    log.info("loaded %s model from %s on backend %s in %.1fs", predictor.kind, run_dir, backend,
             time.perf_counter() - t0)
    return predictor


def to_prediction(labels: Sequence[str], proba: np.ndarray, decision: np.ndarray, truncated: bool,
                  clean: str = "x") -> dict:
    """One answer: decided labels, rounded scores, `truncated`, and a warning for a text that preprocessing
    emptied."""
    out = {"labels": [l for l, d in zip(labels, decision) if d],
           "scores": {l: round(float(p), 6) for l, p in zip(labels, proba)}, "truncated": truncated}
    if not clean.strip():
        out["warning"] = EMPTY_AFTER_PREPROCESSING
    return out


async def classify(served: Served, texts: Sequence[str], request) -> list[dict]:
    """Answers for raw texts (cut to max_chars), through the micro-batcher; counted in the metrics."""
    limited = [limit_text(t, served.max_chars) for t in texts]
    note(request, len(limited), sum(cut for _, cut in limited))
    if not limited:
        return []
    cut_texts = [t for t, _ in limited]
    proba, decisions = await served.batcher.run(cut_texts, request)
    clean = served.predictor.preprocess(cut_texts)
    labels = served.predictor.labels
    return [to_prediction(labels, p, d, cut, c) for p, d, (_, cut), c in zip(proba, decisions, limited, clean)]


def _add_routes(app, served: Served, bodies: Bodies) -> None:
    """POST /predict and /predict/batch, GET /health and /metrics."""
    from fastapi import Request, Response

    TextIn, BatchIn, Prediction, BatchOut, Health = (bodies.TextIn, bodies.BatchIn, bodies.Prediction,
                                                     bodies.BatchOut, bodies.Health)
    predictor = served.predictor

    @app.post("/predict", response_model=Prediction, response_model_exclude_none=True, summary="Classify one text",
              responses={422: {"description": "missing/empty/non-string text or invalid JSON"}})
    async def predict(body: TextIn, request: Request) -> dict:
        return (await classify(served, [body.text], request))[0]

    @app.post("/predict/batch", response_model=BatchOut, response_model_exclude_none=True,
              summary="Classify several texts",
              responses={413: {"description": f"more than {served.max_batch} texts"},
                         422: {"description": "missing/empty list, a non-string item, invalid JSON"}})
    async def predict_batch(body: BatchIn, request: Request) -> dict:
        problems = [text_problem(t) for t in body.texts]
        answers = iter(await classify(served, [t for t, p in zip(body.texts, problems) if not p], request))
        return {"results": [{"labels": [], "scores": {}, "truncated": False, "error": p} if p else next(answers)
                            for p in problems]}

    @app.get("/health", response_model=Health, summary="Model and service information")
    async def health() -> dict:
        return {"status": "ok", "kind": predictor.kind, "task": predictor.task, "backend": served.backend,
                "version": __version__, "labels": list(predictor.labels), "multilabel": bool(predictor.multilabel),
                "max_chars": served.max_chars, "max_batch": served.max_batch}

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics_page() -> Response:
        body, content_type = app.state.metrics.render()
        return Response(body, media_type=content_type)


def _guard(app, settings: ServiceSettings, gate: Gate, metrics: Metrics, max_body_bytes: int) -> None:
    """Wrap the app in its middleware and say in one log line who may call it.

    The last added runs first: request observer (id, access log, metrics) > CORS > API key > in-flight cap
    > body size, so refused requests are logged and counted, and browsers see CORS headers on a 401."""
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.add_middleware(InflightLimit, gate=gate)
    app.add_middleware(ApiKeyAuth, keys=settings.api_keys, protect_health=settings.protect_health)
    add_cors(app, settings.cors_origins)
    app.add_middleware(RequestObserver, metrics=metrics, log_access=settings.access_log)
    app.state.settings = settings
    limit_repeated_logs()
    if settings.access_log and access_log.level == logging.NOTSET:
        access_log.setLevel(logging.INFO)
    log.log(logging.INFO if settings.api_keys else logging.WARNING,
            access_summary(settings.api_keys, settings.api_keys_source, settings.protect_health))


# --- CLI -------------------------------------------------------------------------------------------
WORKER_CONFIG_ENV = "EMOTIONS_SERVE_CONFIG"


def app_from_env():
    """App factory for uvicorn's worker processes (`--workers` > 1): create_app's arguments in $EMOTIONS_SERVE_CONFIG."""
    config = json.loads(os.environ[WORKER_CONFIG_ENV])
    setup_logging(config.pop("log_level", "info"))
    return create_app(**config)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m emotions.serve", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                 epilog="API keys, CORS, access log, in-flight cap and deadline: EMOTIONS_* "
                                        "environment variables, see docs/serving.md")
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
    ap.add_argument("--api-keys-file", default=None,
                    help="file with one API key per line (adds to $EMOTIONS_API_KEYS / $EMOTIONS_API_KEYS_FILE)")
    ap.add_argument("--limit-concurrency", type=int, default=DEFAULT_LIMIT_CONCURRENCY,
                    help="uvicorn answers 503 to a request arriving while this many connections are open or "
                         "requests in progress (per worker)")
    ap.add_argument("--timeout-keep-alive", type=int, default=DEFAULT_KEEP_ALIVE_S,
                    help="seconds an idle connection stays open (a new one that sends nothing, too)")
    ap.add_argument("--timeout-graceful-shutdown", type=int, default=DEFAULT_GRACEFUL_SHUTDOWN_S,
                    help="on SIGTERM / SIGINT: seconds to let requests in progress finish")
    ap.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"], help="log detail")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)
    if args.workers < 1 or args.limit_concurrency < 1:
        ap.error("--workers and --limit-concurrency must be >= 1")
    setup_logging(args.log_level)
    config = dict(run_dir=str(args.run), backend=args.backend, max_chars=args.max_chars, max_batch=args.max_batch,
                  threads=args.threads, max_body_bytes=args.max_body_bytes, spinning=args.spinning,
                  api_keys_file=args.api_keys_file)
    # the model is checked and loaded once before serving, so a bad folder fails here with one line; with
    # several workers that happens in a child process, and the supervisor holds no copy of the model
    app, problem = ((None, check_in_child(config, args.auto_export, args.log_level)) if args.workers > 1
                    else _app_or_error(config, args.auto_export))
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    import uvicorn

    from .protocol import IdleTimeoutH11Protocol, connection_budget

    server = dict(host=args.host, port=args.port, log_level=args.log_level, access_log=False,   # we log ourselves
                  limit_concurrency=connection_budget(args.limit_concurrency), http=IdleTimeoutH11Protocol,
                  timeout_keep_alive=args.timeout_keep_alive, timeout_graceful_shutdown=args.timeout_graceful_shutdown)
    if app is not None:
        uvicorn.run(app, **server)
        return 0
    os.environ[WORKER_CONFIG_ENV] = json.dumps({**config, "log_level": args.log_level})
    uvicorn.run("emotions.serving.service:app_from_env", factory=True, workers=args.workers, **server)
    return 0


def _app_or_error(config: dict, auto_export: bool):
    """(the app, None), or (None, the one-line reason it cannot be made)."""
    try:
        return create_app(**config, auto_export=auto_export), None
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        return None, str(exc)


def _check(config: dict, auto_export: bool, log_level: str, conn) -> None:
    setup_logging(log_level)
    conn.send(_app_or_error(config, auto_export)[1])


def check_in_child(config: dict, auto_export: bool = False, log_level: str = "warning") -> str | None:
    """Make the app once in a spawned child process; the reason it failed, None when it worked."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_check, args=(config, auto_export, log_level, send), name="emotions-model-check")
    child.start()
    send.close()
    try:
        return receive.recv()
    except EOFError:
        child.join()
        return f"the model check process exited with code {child.exitcode} before answering"
    finally:
        child.join()


if __name__ == "__main__":
    sys.exit(main())
