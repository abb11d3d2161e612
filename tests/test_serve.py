"""The HTTP service: endpoints, input limits, odd Unicode, backends (torch, ONNX on demand, baseline native)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

import emotions  # noqa: E402
from emotions.data.labels import get_task  # noqa: E402
from emotions.models.base import Predictor  # noqa: E402
from emotions.data.preprocess import PreprocessConfig  # noqa: E402
from emotions.serving.inputs import is_blank, limit_text  # noqa: E402
from emotions.serving.service import create_app, main as serve_main  # noqa: E402
from tiny_runs import make_tiny_transformer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MAX_CHARS, MAX_BATCH = 100, 4
TEXTS = [
    "я так рад тебя видеть", "это просто ужасно я в ярости", "мне страшно идти туда одной", "какая мерзость",
    "ну и ладно", "вот это да не ожидал", "мне очень грустно сегодня", "спасибо большое за помощь",
    "не знаю что сказать", "почему ты так со мной поступаешь", "ладно до завтра", "это лучший день в жизни",
]
ODD_TEXTS = [
    "\ud800 lone high surrogate", "lone low \udfff", "zero\u200bwidth\u200c\u200d\ufeffjoiners",
    "\u202eRTL override \u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627", "😂🤬👍🏽👨‍👩‍👧 🇷🇺",
    "nul\x00byte\x01\x7f", "é" * 10_000, "\U0001d400\U0001d401 𝔪𝔞𝔱𝔥", "e\u0301\u0301\u0301 combining",
    "\t\r\n mixed \x0b whitespace и текст", "\ue000 private use \U0010fffd", "漢字とカタカナ", "[ИМЯ]", "!!!???...",
    "😂", "\u00a0\u2003nbsp-padded\u00a0",
]


def make_tiny_run(run: Path, seed: int = 0) -> Predictor:
    """A run folder with an untrained tiny transformer in model/ and holdout texts."""
    pred = make_tiny_transformer(run, TEXTS * 5, seed=seed, thresholds=[0.3, 0.4, 0.5, 0.5, 0.6, 0.5, 0.5])
    (run / "data").mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"text": TEXTS}).to_csv(run / "data" / "holdout.csv", index=False)
    return pred


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    run = tmp_path_factory.mktemp("serve") / "run"
    return run, make_tiny_run(run)


@pytest.fixture(scope="module")
def client(tiny):
    run, _ = tiny
    with TestClient(create_app(run, "torch", max_chars=MAX_CHARS, max_batch=MAX_BATCH, threads=1)) as c:
        yield c


def post_raw(client: TestClient, path: str, body: bytes):
    return client.post(path, content=body, headers={"content-type": "application/json"})


# --- endpoints ---------------------------------------------------------------------------------------
def test_health(client, tiny):
    _, pred = tiny
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["kind"] == "transformer" and h["backend"] == "torch"
    assert h["task"] == "cryptonite" and h["version"] == emotions.__version__
    assert h["labels"] == pred.labels and h["multilabel"] is True
    assert h["max_chars"] == MAX_CHARS and h["max_batch"] == MAX_BATCH
    assert "thresholds" not in h and "model_dir" not in h and "/" not in str(h)   # says less: no paths


def test_predict_uses_preprocessing_and_tuned_thresholds(client, tiny):
    _, pred = tiny
    for text in ["Я ТАК РАД тебя видеть!!! 😂", TEXTS[3]]:
        r = client.post("/predict", json={"text": text})
        assert r.status_code == 200
        body = r.json()
        assert set(body) == {"labels", "scores", "truncated"} and body["truncated"] is False
        assert list(body["scores"]) == pred.labels
        proba = pred.predict_proba([text])[0]                       # preprocessing inside
        np.testing.assert_allclose([body["scores"][l] for l in pred.labels], proba, atol=1e-5)
        decided = [l for l, d in zip(pred.labels, pred.decide(proba[None])[0]) if d]
        assert body["labels"] == decided and body["labels"]          # ensure_one: never empty


def test_batch_matches_single_requests(client):
    texts = TEXTS[:MAX_BATCH]
    r = client.post("/predict/batch", json={"texts": texts})
    assert r.status_code == 200
    results = r.json()["results"]
    assert len(results) == len(texts)
    for text, res in zip(texts, results):
        single = client.post("/predict", json={"text": text}).json()
        assert res["labels"] == single["labels"]
        for label, p in single["scores"].items():
            assert res["scores"][label] == pytest.approx(p, abs=1e-5)


def test_long_text_is_truncated_and_says_so(client):
    base = "мне очень грустно сегодня "
    long_text = base * 20
    r = client.post("/predict", json={"text": long_text}).json()
    cut = client.post("/predict", json={"text": long_text[:MAX_CHARS]}).json()
    assert r["truncated"] is True and cut["truncated"] is False
    assert r["scores"] == cut["scores"]
    batch = client.post("/predict/batch", json={"texts": [long_text, base]}).json()["results"]
    assert [b["truncated"] for b in batch] == [True, False]


def test_a_bad_item_of_a_batch_gets_its_own_error_and_the_others_are_classified(client):
    texts = ["ok", " ", None, "\u200b"]
    r = client.post("/predict/batch", json={"texts": texts})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [res.get("error") for res in results] == [None, "empty text", "missing text", "empty text"]
    for text, res in zip(texts, results):
        if res.get("error"):
            assert res["labels"] == [] and res["scores"] == {} and res["truncated"] is False
        else:
            assert res == client.post("/predict", json={"text": text}).json()
    only_bad = client.post("/predict/batch", json={"texts": ["", None]}).json()["results"]
    assert [res["error"] for res in only_bad] == ["empty text", "missing text"]


@pytest.mark.parametrize("path,body,fragment", [
    ("/predict", b'{"text": ""}', "visible character"),
    ("/predict", b'{"text": "  \\n\\t \\u200b\\u00a0 "}', "visible character"),
    ("/predict", b'{"text": "\\u0000"}', "visible character"),
    ("/predict", b'{"text": 5}', "valid string"),
    ("/predict", b'{"text": null}', "valid string"),
    ("/predict", b'{"text": ["a"]}', "valid string"),
    ("/predict", b'{}', "Field required"),
    ("/predict", b'{"txt": "\\ud800 not echoed"}', "Field required"),
    ("/predict", b'{"text": "unterminated', "invalid JSON"),
    ("/predict", b'not json at all', "invalid JSON"),
    ("/predict", b'["a"]', "valid dictionary"),
    ("/predict/batch", b'{"texts": []}', "at least 1"),
    ("/predict/batch", b'{"texts": "a"}', "valid list"),
    ("/predict/batch", b'{"texts": ["ok", 3]}', "valid string"),
    ("/predict/batch", b'{"text": "ok"}', "Field required"),
])
def test_bad_input_is_422_with_a_clear_message(client, path, body, fragment):
    r = post_raw(client, path, body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert any(fragment in d["msg"] for d in detail), detail
    assert "input" not in json.dumps(detail)                          # nothing echoed back


def test_batch_over_limit_is_413(client):
    r = client.post("/predict/batch", json={"texts": ["a"] * (MAX_BATCH + 1)})
    assert r.status_code == 413
    assert f"limit of {MAX_BATCH}" in r.json()["detail"]
    assert client.post("/predict/batch", json={"texts": ["a"] * MAX_BATCH}).status_code == 200


def test_body_over_limit_is_413(tiny):
    _, pred = tiny
    with TestClient(create_app(predictor=pred, max_body_bytes=1000)) as c:
        assert c.post("/predict", json={"text": "a" * 2000}).status_code == 413
        assert c.post("/predict", json={"text": "a" * 500}).status_code == 200


def test_odd_unicode_never_crashes(client, tiny):
    _, pred = tiny
    for text in ODD_TEXTS:
        body = json.dumps({"text": text}).encode()                    # lone surrogates travel as \\ud800 escapes
        r = post_raw(client, "/predict", body)
        assert r.status_code == 200, (text[:30], r.text[:300])
        out = r.json()
        assert list(out["scores"]) == pred.labels and out["labels"]
        assert all(0.0 <= p <= 1.0 for p in out["scores"].values())
        assert out["truncated"] is (len(text) > MAX_CHARS)
    for i in range(0, len(ODD_TEXTS), MAX_BATCH):
        chunk = ODD_TEXTS[i:i + MAX_BATCH]
        r = post_raw(client, "/predict/batch", json.dumps({"texts": chunk}).encode())
        assert r.status_code == 200 and len(r.json()["results"]) == len(chunk)
    assert client.get("/health").status_code == 200


def test_input_helpers():
    assert is_blank("") and is_blank(" \n\u200b\ufeff\x00") and not is_blank("\u200bа")
    assert limit_text("abc", 2) == ("ab", True) and limit_text("ab", 2) == ("ab", False)
    assert limit_text("\ud800x", 5) == ("\ufffdx", False)


def test_concurrent_requests_are_merged_correctly(tiny):
    """Requests that arrive together are merged into one model call; each gets its own answer."""
    _, pred = tiny
    app = create_app(predictor=pred, max_batch=8)
    texts = [f"{t} {i}" for i, t in enumerate(TEXTS * 2)]

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            rs = await asyncio.gather(*(c.post("/predict", json={"text": t}) for t in texts))
            batch = await c.post("/predict/batch", json={"texts": texts[:8]})
            return [r.json() for r in rs], batch.json()["results"]

    singles, batch = asyncio.run(go())
    want = pred.predict_proba(texts)
    for got, w in zip(singles, want):
        np.testing.assert_allclose([got["scores"][l] for l in pred.labels], w, atol=1e-5)
    for got, w in zip(batch, want[:8]):
        np.testing.assert_allclose([got["scores"][l] for l in pred.labels], w, atol=1e-5)
    assert app.state.worker.batches < len(texts) + 1                   # at least some merging happened
    app.state.worker.stop()


def test_inference_failure_is_500_and_service_survives(tiny):
    _, pred = tiny

    class Flaky(Predictor):
        kind = "flaky"

        def predict_proba_clean(self, texts):
            if any("boom" in t for t in texts):
                raise RuntimeError("model exploded")
            return np.full((len(texts), len(self.labels)), 0.7)

        def save_weights(self, model_dir):
            pass

    flaky = Flaky(labels=pred.labels, multilabel=True, preprocess=PreprocessConfig(asr_dictionary=False))
    with TestClient(create_app(predictor=flaky), raise_server_exceptions=False) as c:
        r = c.post("/predict", json={"text": "boom"})
        assert r.status_code == 500 and "RuntimeError" in r.json()["detail"]
        ok = c.post("/predict", json={"text": "fine"})
        assert ok.status_code == 200 and ok.json()["labels"] == pred.labels


def test_openapi_and_docs(client):
    spec = client.get("/openapi.json").json()
    assert {"/predict", "/predict/batch", "/health"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200


# --- backends ----------------------------------------------------------------------------------------
def test_onnx_int8_backend_exports_on_demand(tiny, tmp_path, caplog):
    run, pred = tiny
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    assert not (copy / "export").exists()
    with caplog.at_level(logging.WARNING, logger="emotions.serving.service"):
        app = create_app(copy, "onnx-int8", max_chars=MAX_CHARS, max_batch=MAX_BATCH, threads=1, auto_export=True)
    assert any("exporting" in r.getMessage() for r in caplog.records)
    assert (copy / "export" / "model.int8.onnx").is_file() and (copy / "export" / "parity.json").is_file()
    with TestClient(app) as c:
        h = c.get("/health").json()
        assert h["backend"] == "onnx-int8" and h["kind"] == "transformer"
        agree = []
        for text in TEXTS:
            got = c.post("/predict", json={"text": text}).json()
            want = pred.decide(pred.predict_proba([text]))[0]
            agree.append(got["labels"] == [l for l, d in zip(pred.labels, want) if d])
        assert np.mean(agree) >= 0.7
        for text in ODD_TEXTS:
            assert post_raw(c, "/predict", json.dumps({"text": text}).encode()).status_code == 200
    with TestClient(create_app(copy / "model", "onnx", threads=1)) as c:   # model folder accepted; fp32 exact
        got = c.post("/predict", json={"text": TEXTS[0]}).json()
        np.testing.assert_allclose([got["scores"][l] for l in pred.labels], pred.predict_proba(TEXTS[:1])[0],
                                   atol=1e-4)


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory):
    from emotions.models import train_model

    spec = get_task("cryptonite")
    df = pd.DataFrame({"text": TEXTS * 3})
    for j, label in enumerate(spec.labels):
        df[label] = (np.arange(len(df)) % len(spec.labels) == j).astype(int)
    run = tmp_path_factory.mktemp("baseline") / "run"
    train_model("baseline", df, df, spec, {"max_features": 500, "char_ngram_max": 3}, run / "model")
    return run


def test_baseline_is_served_natively(baseline_run):
    with TestClient(create_app(baseline_run, "native", max_batch=MAX_BATCH)) as c:
        h = c.get("/health").json()
        assert h["kind"] == "baseline" and h["backend"] == "native"
        r = c.post("/predict", json={"text": "мне очень грустно"})
        assert r.status_code == 200 and r.json()["labels"]
        for text in ODD_TEXTS:
            assert post_raw(c, "/predict", json.dumps({"text": text}).encode()).status_code == 200
    with pytest.raises(ValueError, match="--backend native"):
        create_app(baseline_run, "onnx")


def test_cli_errors_cleanly(tmp_path, capsys):
    assert serve_main(["--run", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_serves_over_http(baseline_run):
    """`python -m emotions.serving.service` really listens on 127.0.0.1 (baseline: no torch import, quick start)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "emotions.serving.service", "--run", str(baseline_run), "--backend", "native",
                             "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        r = httpx.post(url + "/predict", json={"text": "какая мерзость"})
        assert r.status_code == 200 and set(r.json()) == {"labels", "scores", "truncated"}
        assert httpx.post(url + "/predict", content=b"{bad", headers={"content-type": "application/json"}
                          ).status_code == 422
    finally:
        proc.terminate()
        proc.wait(20)


def test_several_workers_check_the_model_in_a_child_and_fail_once_with_one_line(baseline_run, tmp_path, capsys):
    from emotions.serving.service import check_in_child

    assert check_in_child({"run_dir": str(baseline_run), "backend": "native"}) is None
    broken = tmp_path / "run"
    shutil.copytree(baseline_run, broken)
    (broken / "model" / "model_card.json").write_text("{not json", encoding="utf-8")
    assert serve_main(["--run", str(broken), "--backend", "native", "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "model_card.json is not valid JSON" in err and err.count("\n") == 1
