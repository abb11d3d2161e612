"""Trustworthy answers from the service: API keys, CORS, the JSON access log, /metrics, the in-flight cap,
the deadline, micro-batches (fair, equal to unbatched answers, skipped when the client left), uvicorn's
settings and a /health that says less."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")
from fastapi.testclient import TestClient  # noqa: E402

from emotions.data.labels import get_task  # noqa: E402
from emotions.data.preprocess import PreprocessConfig  # noqa: E402
from emotions.models.base import Predictor  # noqa: E402
from emotions.serving import service  # noqa: E402
from emotions.serving.observability import ACCESS_LOGGER, RepeatFilter, RepeatLimiter  # noqa: E402
from emotions.serving.security import KeyChecker  # noqa: E402
from emotions.serving.service import create_app, main as serve_main  # noqa: E402
from emotions.serving.settings import ServiceSettings  # noqa: E402
from live_server import serving  # noqa: E402

LABELS = list(get_task("cryptonite").labels)
SECRET = "совершенно секретный текст"
TEXTS = ["я так рад тебя видеть", "это просто ужасно я в ярости", "мне страшно идти туда одной", "какая мерзость",
         "ну и ладно", "вот это да не ожидал", "мне очень грустно сегодня", "спасибо большое за помощь",
         "не знаю что сказать", "почему ты так со мной поступаешь"]


class Probe(Predictor):
    """Scores follow the text's length; records every model call; `hold` (cleared) keeps a call running."""

    kind = "probe"

    def __init__(self):
        super().__init__(labels=LABELS, multilabel=True, preprocess=PreprocessConfig(asr_dictionary=False))
        self.calls: list[list[str]] = []
        self.hold, self.entered = threading.Event(), threading.Event()
        self.hold.set()

    def predict_proba_clean(self, texts):
        self.calls.append(list(texts))
        self.entered.set()
        self.hold.wait(10)
        n = np.array([len(t) for t in texts], dtype=float)[:, None]
        return np.clip((n + np.arange(len(self.labels))) / 60.0, 0, 1)

    def save_weights(self, model_dir):
        pass


def app_with(probe: Predictor | None = None, **settings):
    return create_app(predictor=probe or Probe(), max_chars=50, max_batch=16, settings=ServiceSettings(**settings))


def run_async(app, go):
    """Run `go(client)` against `app` in one event loop (requests in flight at the same time)."""
    async def main():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            return await go(c)
    try:
        return asyncio.run(main())
    finally:
        app.state.worker.stop()


async def until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.005)


# --- API keys ------------------------------------------------------------------------------------------
def test_api_keys_guard_predictions_but_not_health(caplog):
    with caplog.at_level(logging.INFO, logger="emotions.serving.service"):
        app = app_with(api_keys=("k-one", "k-two"), api_keys_source="test")
    assert [r.getMessage() for r in caplog.records if "API keys" in r.getMessage()] == [
        "API keys required: 2 key(s) from test; /health, /metrics, / and the docs pages open"]
    assert "k-one" not in caplog.text
    with TestClient(app) as c:
        r = c.post("/predict", json={"text": "привет"})
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert r.json() == {"detail": "missing API key: send the header 'Authorization: Bearer <key>'"}
        r = c.post("/predict", json={"text": "привет"}, headers={"Authorization": "Bearer k-three"})
        assert r.status_code == 401 and r.json() == {"detail": "invalid API key"}
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
        r = c.post("/predict/batch", json={"texts": ["a"]}, headers={"Authorization": "Basic k-one"})
        assert r.status_code == 401 and "Bearer <key>" in r.json()["detail"]
        for key in ("k-one", "k-two"):
            assert c.post("/predict", json={"text": "привет"}, headers={"Authorization": f"bearer {key}"}
                          ).status_code == 200
        assert c.post("/predict", content=b"{bad").status_code == 401            # refused before the body is read
        for path in ("/health", "/metrics", "/docs", "/openapi.json"):
            assert c.get(path).status_code == 200, path


def test_protected_health_and_an_open_service(caplog):
    with TestClient(app_with(api_keys=("k",), protect_health=True)) as c:
        assert c.get("/health").status_code == 401 and c.get("/metrics").status_code == 401
        assert c.get("/health", headers={"Authorization": "Bearer k"}).status_code == 200
        assert c.get("/docs").status_code == 200
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="emotions.serving.service"):
        app = app_with()
    open_lines = [r for r in caplog.records if "API keys" in r.getMessage()]
    assert len(open_lines) == 1 and open_lines[0].getMessage().startswith("no API keys configured")
    with TestClient(app) as c:
        assert c.post("/predict", json={"text": "привет"}).status_code == 200


def test_keys_and_switches_from_the_environment(tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("# a comment\n\n  from-file \nother\n", encoding="utf-8")
    extra = tmp_path / "extra.txt"
    extra.write_text("from-option\n", encoding="utf-8")
    s = ServiceSettings.from_env({"EMOTIONS_API_KEYS": "a, b,,", "EMOTIONS_API_KEYS_FILE": str(keys),
                                  "EMOTIONS_CORS_ORIGINS": "https://a.example, http://localhost:3000",
                                  "EMOTIONS_PROTECT_HEALTH": "1", "EMOTIONS_ACCESS_LOG": "0",
                                  "EMOTIONS_MAX_INFLIGHT": "8", "EMOTIONS_REQUEST_TIMEOUT_S": "2.5",
                                  "EMOTIONS_MICRO_BATCH": "4"}, api_keys_file=str(extra))
    assert s.api_keys == ("a", "b", "from-file", "other", "from-option") and "from-file" not in repr(s)
    assert s.cors_origins == ("https://a.example", "http://localhost:3000")
    assert (s.protect_health, s.access_log, s.max_inflight, s.request_timeout_s, s.micro_batch) == (
        True, False, 8, 2.5, 4)
    d = ServiceSettings.from_env({})
    assert (d.api_keys, d.cors_origins, d.protect_health, d.access_log, d.max_inflight, d.request_timeout_s,
            d.micro_batch) == ((), (), False, True, 64, 30.0, 8)
    (tmp_path / "empty.txt").write_text("# no keys\n\n")
    for env, fragment in [({"EMOTIONS_API_KEYS_FILE": str(tmp_path / "empty.txt")}, "holds no key"),
                          ({"EMOTIONS_API_KEYS_FILE": str(tmp_path / "missing.txt")}, "cannot be read"),
                          ({"EMOTIONS_MAX_INFLIGHT": "0"}, "EMOTIONS_MAX_INFLIGHT must be an integer >= 1"),
                          ({"EMOTIONS_REQUEST_TIMEOUT_S": "nan"}, "EMOTIONS_REQUEST_TIMEOUT_S must be a number"),
                          ({"EMOTIONS_ACCESS_LOG": "maybe"}, "EMOTIONS_ACCESS_LOG must be 1 or 0"),
                          ({"EMOTIONS_API_KEYS": "good,has space"}, "number 2 .*contains whitespace")]:
        with pytest.raises(ValueError, match=fragment):
            ServiceSettings.from_env(env)
    checker = KeyChecker(["k1", "k2"])
    assert checker.matches("k2") and not checker.matches("k") and not checker.matches("k1 ")


# --- CORS --------------------------------------------------------------------------------------------------
def test_cors_headers_only_for_allowed_origins():
    allowed, other = "https://app.example", "https://evil.example"
    with TestClient(app_with(cors_origins=(allowed,), api_keys=("k",))) as c:
        r = c.get("/health", headers={"Origin": allowed})
        assert r.headers["access-control-allow-origin"] == allowed
        assert "access-control-allow-origin" not in c.get("/health", headers={"Origin": other}).headers
        pre = c.options("/predict", headers={"Origin": allowed, "Access-Control-Request-Method": "POST",
                                             "Access-Control-Request-Headers": "authorization, content-type"})
        assert pre.status_code == 200 and "authorization" in pre.headers["access-control-allow-headers"].lower()
        r = c.post("/predict", json={"text": "привет"}, headers={"Origin": allowed})
        assert r.status_code == 401 and r.headers["access-control-allow-origin"] == allowed
    with TestClient(app_with()) as c:
        assert not [h for h in c.get("/health", headers={"Origin": allowed}).headers if h.startswith("access-control")]


# --- access log, metrics -------------------------------------------------------------------------------------
def access_lines(caplog) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == ACCESS_LOGGER]


def test_access_log_is_one_json_line_per_request_without_texts(caplog):
    with TestClient(app_with()) as c, caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        r = c.post("/predict/batch", json={"texts": [SECRET, SECRET * 5]}, headers={"X-Request-ID": "req-42.a"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "req-42.a"
        fresh = c.get("/health").headers["x-request-id"]
        odd = c.get("/health", headers={"X-Request-ID": "bad id\twith spaces"}).headers["x-request-id"]
        c.post("/predict", content=b"{bad", headers={"content-type": "application/json"})
    lines = access_lines(caplog)
    assert len(lines) == 4
    assert {k: lines[0][k] for k in ("request_id", "method", "route", "status", "texts", "truncated")} == {
        "request_id": "req-42.a", "method": "POST", "route": "/predict/batch", "status": 200, "texts": 2,
        "truncated": 1}
    assert isinstance(lines[0]["latency_ms"], float) and lines[0]["latency_ms"] >= 0
    assert re.fullmatch(r"[0-9a-f]{32}", fresh) and re.fullmatch(r"[0-9a-f]{32}", odd)
    assert [l["request_id"] for l in lines[1:3]] == [fresh, odd] and lines[1]["texts"] is None
    assert lines[3]["status"] == 422 and lines[3]["route"] == "/predict"
    assert "секрет" not in caplog.text


def test_access_log_can_be_switched_off(caplog):
    with TestClient(app_with(access_log=False)) as c, caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        assert c.post("/predict", json={"text": "привет"}).status_code == 200
    assert access_lines(caplog) == []


def test_a_flood_of_errors_writes_few_lines(caplog):
    n = 40
    app = app_with()
    for name in ("emotions.serving.service", "emotions.serving.worker", "uvicorn.error"):
        assert any(isinstance(f, RepeatFilter) for f in logging.getLogger(name).filters), name
    with TestClient(app) as c, caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        t0 = time.monotonic()
        for _ in range(n):
            assert c.post("/predict", content=b"{bad", headers={"content-type": "application/json"}
                          ).status_code == 422
        elapsed = time.monotonic() - t0
        written = len(access_lines(caplog))
        assert written <= 10 * (int(elapsed) + 1) < n
        time.sleep(1.05)                                                 # a new second: the next line says so
        c.post("/predict", content=b"{bad", headers={"content-type": "application/json"})
    assert access_lines(caplog)[-1]["held_back"] == n - written


def test_repeat_limiter_and_filter_count_what_they_hold_back():
    now = [0.0]
    limiter = RepeatLimiter(per_second=3, clock=lambda: now[0])
    assert [limiter.allow("k") for _ in range(5)] == [(True, 0)] * 3 + [(False, 0)] * 2
    assert limiter.allow("other") == (True, 0)
    now[0] = 1.5
    assert limiter.allow("k") == (True, 2)
    # a handler on the logger itself: earlier tests may configure "emotions" not to propagate to root (caplog)
    records: list[logging.LogRecord] = []
    collect = logging.Handler()
    collect.emit = records.append
    logger = logging.getLogger("emotions.test_repeat")
    logger.setLevel(logging.INFO)
    logger.addFilter(RepeatFilter(per_second=2))
    logger.addHandler(collect)
    try:
        for i in range(6):
            logger.error("inference failed on a batch of %d texts", i)
        logger.info("info lines are never held back")
        logger.info("info lines are never held back")
    finally:
        logger.removeHandler(collect)
    assert [r.levelno for r in records].count(logging.ERROR) == 2
    assert len([r for r in records if r.levelno == logging.INFO]) == 2


def test_metrics_count_requests_texts_and_truncation():
    app, other = app_with(), app_with()
    with TestClient(app) as c, TestClient(other) as c2:
        c.post("/predict", json={"text": "привет"})
        c.post("/predict/batch", json={"texts": ["а" * 80, "б", "в"]})
        c.post("/predict", json={"text": ""})
        text = c.get("/metrics").text
        assert 'emotions_requests_total{route="/predict",status="200"} 1.0' in text
        assert 'emotions_requests_total{route="/predict",status="422"} 1.0' in text
        assert 'emotions_request_latency_seconds_count{route="/predict/batch",status="200"} 1.0' in text
        assert 'emotions_texts_per_request_sum{route="/predict/batch"} 3.0' in text
        assert "emotions_truncated_texts_total 1.0" in text and "emotions_model_texts_total 4.0" in text
        assert re.search(r'emotions_model_info\{.*backend="torch".*kind="probe".*labels="7"', text)
        assert "emotions_model_labels 7.0" in text and "emotions_inflight_requests 0.0" in text
        assert "emotions_model_calls_total 2.0" in text
        assert 'route="/predict"' not in c2.get("/metrics").text           # one registry per app


# --- a real model: micro-batches equal unbatched answers, /health says less ----------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    pytest.importorskip("torch")
    from tiny_runs import make_tiny_transformer

    run = tmp_path_factory.mktemp("trust") / "run"
    return run, make_tiny_transformer(run, TEXTS * 3, thresholds=[0.3, 0.4, 0.5, 0.5, 0.6, 0.5, 0.5])


def test_micro_batched_answers_equal_unbatched_ones(tiny_run, one_torch_thread):
    run, pred = tiny_run
    texts = [t * (1 + i % 3) for i, t in enumerate(TEXTS)]              # mixed lengths: different padding
    app = create_app(run, "torch", threads=1, max_batch=16, settings=ServiceSettings(micro_batch=3))
    with TestClient(app) as c:
        results = c.post("/predict/batch", json={"texts": texts}).json()["results"]
    assert len(results) == len(texts)
    for text, got in zip(texts, results):
        want = pred.predict_proba([text])[0]
        np.testing.assert_allclose([got["scores"][l] for l in pred.labels], want, atol=1e-5)
        assert got["labels"] == [l for l, d in zip(pred.labels, pred.decide(want[None])[0]) if d]


def test_health_names_no_path_and_no_threshold(tiny_run):
    run, pred = tiny_run
    with TestClient(create_app(run, "torch", threads=1, settings=ServiceSettings())) as c:
        health = c.get("/health").json()
    assert set(health) == {"status", "kind", "task", "backend", "version", "labels", "multilabel", "max_chars",
                           "max_batch"}
    assert health["status"] == "ok" and health["kind"] == "transformer" and health["labels"] == pred.labels
    flat = json.dumps(health)
    assert str(run) not in flat and str(run.resolve()) not in flat and "/" not in flat.replace("\\/", "")


# --- load limits -----------------------------------------------------------------------------------------------
def test_over_the_inflight_cap_is_503_with_retry_after():
    probe = Probe()
    probe.hold.clear()
    app = app_with(probe, max_inflight=1)

    async def go(c):
        first = asyncio.create_task(c.post("/predict", json={"text": "первый"}))
        await until(probe.entered.is_set)
        busy = await c.post("/predict/batch", json={"texts": ["второй"]})
        health = await c.get("/health")
        metrics = await c.get("/metrics")
        probe.hold.set()
        return busy, health, metrics, await first, await c.post("/predict", json={"text": "третий"})

    busy, health, metrics, first, after = run_async(app, go)
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
    assert "busy" in busy.json()["detail"] and "EMOTIONS_MAX_INFLIGHT" in busy.json()["detail"]
    assert health.status_code == 200 and first.status_code == 200 and after.status_code == 200
    assert "emotions_inflight_requests 1.0" in metrics.text


def test_past_the_deadline_is_504_and_queued_work_is_dropped():
    probe = Probe()
    probe.hold.clear()
    app = app_with(probe, request_timeout_s=0.3)

    async def go(c):
        running = asyncio.create_task(c.post("/predict", json={"text": "первый"}))
        await until(probe.entered.is_set)
        queued = await c.post("/predict/batch", json={"texts": ["второй", "третий"]})
        probe.hold.set()
        return await running, queued, await c.post("/predict", json={"text": "четвертый"})

    running, queued, after = run_async(app, go)
    for r in (running, queued):
        assert r.status_code == 504 and "EMOTIONS_REQUEST_TIMEOUT_S" in r.json()["detail"]
    assert after.status_code == 200
    assert probe.calls == [["первый"], ["четвертый"]]                   # the timed-out queued batch never ran


def test_a_big_batch_runs_in_micro_batches_and_lets_single_texts_through():
    probe = Probe()
    probe.hold.clear()
    app = app_with(probe, micro_batch=2)

    async def go(c):
        batch = asyncio.create_task(c.post("/predict/batch", json={"texts": TEXTS[:8]}))
        await until(probe.entered.is_set)
        single = asyncio.create_task(c.post("/predict", json={"text": "одинокий"}))
        await until(lambda: app.state.worker.waiting() >= 1)
        probe.hold.set()
        return await batch, await single

    batch, single = run_async(app, go)
    assert batch.status_code == 200 and single.status_code == 200
    assert all(len(call) <= 2 + 1 for call in probe.calls) and len(probe.calls) >= 4
    assert "одинокий" in probe.calls[1]                                  # right after the first micro-batch
    want = probe.predict_proba(TEXTS[:8])
    got = [[r["scores"][l] for l in LABELS] for r in batch.json()["results"]]
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_a_client_that_left_gets_no_more_micro_batches(caplog):
    probe = Probe()
    app = app_with(probe, micro_batch=2)
    body = json.dumps({"texts": TEXTS[:6]}).encode()
    sent = []

    async def call():
        pending = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive():
            if pending:
                return pending.pop()
            if not probe.calls:
                await asyncio.sleep(30)          # still connected (is_disconnected does not wait)
            return {"type": "http.disconnect"}

        scope = {"type": "http", "method": "POST", "path": "/predict/batch", "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            "query_string": b"", "http_version": "1.1", "scheme": "http", "server": ("test", 80),
            "client": ("test", 1), "root_path": ""}
        await app(scope, receive, _append(sent))

    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        try:
            asyncio.run(call())
        finally:
            app.state.worker.stop()
    assert probe.calls == [TEXTS[:2]]
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [499]
    line = access_lines(caplog)[-1]
    assert line["status"] == 499 and line["texts"] == 6


def _append(sent: list):
    async def send(message):
        sent.append(message)
    return send


# --- uvicorn -----------------------------------------------------------------------------------------------
def test_serve_command_passes_the_server_settings(monkeypatch, tmp_path):
    got = {}
    monkeypatch.setattr(service, "create_app", lambda **kw: got.setdefault("app", kw) and "app")
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: got.setdefault("server", kw))
    assert serve_main(["--run", str(tmp_path), "--backend", "native", "--api-keys-file", "keys.txt",
                       "--limit-concurrency", "10", "--timeout-graceful-shutdown", "7"]) == 0
    assert got["app"]["api_keys_file"] == "keys.txt"
    assert {k: got["server"][k] for k in ("limit_concurrency", "timeout_keep_alive", "timeout_graceful_shutdown",
                                          "access_log")} == {"limit_concurrency": 10, "timeout_keep_alive": 5,
                                                             "timeout_graceful_shutdown": 7, "access_log": False}


def test_uvicorn_limit_concurrency_answers_503():
    """Two connections open (one waiting for its answer) with limit_concurrency=2: the next request is refused."""
    probe = Probe()
    probe.hold.clear()
    try:
        with serving(app_with(probe), limit_concurrency=2) as url:
            held = threading.Thread(target=lambda: httpx.post(url + "/predict", json={"text": "жду"}, timeout=20))
            held.start()
            assert probe.entered.wait(10)
            r = httpx.get(url + "/health", timeout=10)
            assert r.status_code == 503 and "Service Unavailable" in r.text
            probe.hold.set()
            held.join(20)
            assert httpx.get(url + "/health", timeout=10).status_code == 200
            host, port = url.rsplit("//", 1)[1].split(":")
            with socket.create_connection((host, int(port))):            # an idle connection counts too
                assert httpx.get(url + "/health", timeout=10).status_code == 503
    finally:
        probe.hold.set()


def test_container_healthcheck_sends_a_key_when_health_is_protected(tmp_path):
    from emotions.serving.healthcheck import check, health_key

    keys = tmp_path / "keys"
    keys.write_text("# ops\nfirst\nsecond\n")
    assert health_key({"EMOTIONS_API_KEYS": "a,b"}) is None
    assert health_key({"EMOTIONS_PROTECT_HEALTH": "1", "EMOTIONS_API_KEYS": " a ,b"}) == "a"
    assert health_key({"EMOTIONS_PROTECT_HEALTH": "1", "EMOTIONS_API_KEYS_FILE": str(keys)}) == "first"
    with serving(app_with(api_keys=("first",), protect_health=True)) as url:
        assert "401" in check(url + "/health") and check(url + "/health", key="first") is None


def test_docs_name_every_switch():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    doc = (root / "docs" / "serving.md").read_text(encoding="utf-8")
    code = "".join((root / "emotions" / "serving" / f).read_text(encoding="utf-8")
                   for f in ("settings.py", "security.py", "service.py"))
    names = set(re.findall(r"EMOTIONS_[A-Z_]+", code)) - {"EMOTIONS_SERVE_CONFIG"}
    assert names and not [n for n in names if f"`{n}`" not in doc]
    for option in ("--api-keys-file", "--limit-concurrency", "--timeout-keep-alive", "--timeout-graceful-shutdown"):
        assert f"`{option}" in doc, option


# --- the worker's two lanes --------------------------------------------------------------------------------
def test_single_texts_run_before_queued_bulk_work_and_bulk_is_not_starved():
    from emotions.serving.worker import InferenceWorker

    probe = Probe()
    probe.hold.clear()
    worker = InferenceWorker(probe, max_batch=16, bulk_every=2)
    try:
        first = worker.submit(["b0"] * 4, bulk=True)
        assert probe.entered.wait(5)                                     # the first bulk job is running
        bulk = [worker.submit([f"b{k}"] * 4, bulk=True) for k in (1, 2)]
        singles = [worker.submit([f"s{k}"]) for k in range(3)]
        probe.hold.set()
        for f in [first, *bulk, *singles]:
            f.result(10)
        later = [worker.submit([f"t{k}"]) for k in range(1)]
        later[0].result(10)
    finally:
        worker.stop()
    calls = [sorted(set(c)) for c in probe.calls]
    # the three queued singles merge into one call ahead of the queued bulk jobs; bulk jobs run one per call
    assert calls[:4] == [["b0"], ["s0", "s1", "s2"], ["b1"], ["b2"]], calls
    assert all(len(c) <= 4 for c in probe.calls if c[0].startswith("b"))


def test_a_bulk_job_runs_after_bulk_every_interactive_calls():
    from emotions.serving.worker import InferenceWorker

    probe = Probe()
    probe.hold.clear()
    worker = InferenceWorker(probe, max_batch=1, bulk_every=2)       # max_batch 1: one single per call
    try:
        futures = [worker.submit(["s0"])]
        assert probe.entered.wait(5)
        futures += [worker.submit(["x"] * 3, bulk=True)] + [worker.submit([f"s{k}"]) for k in range(1, 5)]
        probe.hold.set()
        for f in futures:
            f.result(10)
    finally:
        worker.stop()
    order = [c[0] for c in probe.calls]
    assert order == ["s0", "s1", "s2", "x", "s3", "s4"], order


def test_stopping_runs_every_accepted_job_first():
    from emotions.serving.worker import InferenceWorker

    probe = Probe()
    probe.hold.clear()
    worker = InferenceWorker(probe)
    futures = [worker.submit(["a"])]
    assert probe.entered.wait(5)
    futures += [worker.submit(["b"]), worker.submit(["c"] * 20, bulk=True)]
    threading.Timer(0.2, probe.hold.set).start()
    worker.stop(timeout=10)
    assert all(f.done() and not f.exception() for f in futures)


def test_a_connection_that_never_sends_a_byte_is_closed_after_the_keep_alive_timeout():
    from emotions.serving.protocol import IdleTimeoutH11Protocol

    with serving(app_with(), http=IdleTimeoutH11Protocol, timeout_keep_alive=1, limit_concurrency=50) as url:
        host, port = url.rsplit("//", 1)[1].split(":")
        silent = [socket.create_connection((host, int(port))) for _ in range(60)]     # more than the limit
        try:
            assert httpx.get(url + "/health", timeout=10).status_code == 503          # all places taken ...
            time.sleep(2.0)
            for s in silent:                                                          # ... until they time out
                s.settimeout(1)
                assert s.recv(1) == b""
            assert httpx.get(url + "/health", timeout=10).status_code == 200
        finally:
            for s in silent:
                s.close()


def test_the_connection_limit_fits_the_open_files_limit(monkeypatch, caplog):
    from emotions.serving import protocol

    monkeypatch.setattr(protocol.resource, "getrlimit", lambda _which: (1024, 1024))
    assert protocol.connection_budget(500) == 500
    assert protocol.connection_budget(4096) == 1024 - protocol.RESERVED_FDS
    assert "lowered to 960" in caplog.text and "ulimit -n" in caplog.text
