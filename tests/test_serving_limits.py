"""The body-size limit holds for streamed (Transfer-Encoding: chunked) uploads, in process and over HTTP."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
from fastapi.testclient import TestClient  # noqa: E402

from emotions.data.labels import get_task  # noqa: E402
from emotions.data.preprocess import PreprocessConfig  # noqa: E402
from emotions.models.base import Predictor  # noqa: E402
from emotions.serving.service import create_app  # noqa: E402
from live_server import serving  # noqa: E402

LIMIT = 1000


class Constant(Predictor):
    kind = "constant"

    def predict_proba_clean(self, texts):
        return np.full((len(texts), len(self.labels)), 0.7)

    def save_weights(self, model_dir):
        pass


@pytest.fixture(scope="module")
def app():
    model = Constant(labels=get_task("cryptonite").labels, multilabel=True,
                     preprocess=PreprocessConfig(asr_dictionary=False))
    return create_app(predictor=model, max_body_bytes=LIMIT)


def pieces(body: bytes, size: int = 100):
    for i in range(0, len(body), size):
        yield body[i:i + size]


def test_a_chunked_body_over_the_limit_is_413(app):
    big = json.dumps({"text": "а" * 2000}).encode()
    small = json.dumps({"text": "а" * 200}, ensure_ascii=False).encode()        # 400 bytes of UTF-8
    with TestClient(app) as c:
        r = c.post("/predict", content=pieces(big), headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert r.json()["detail"] == (f"streamed request body of more than {LIMIT} bytes is over the limit of "
                                      f"{LIMIT} bytes")
        ok = c.post("/predict", content=pieces(small), headers={"content-type": "application/json"})
        assert ok.status_code == 200 and ok.json()["labels"]
        r = c.post("/predict/batch", content=pieces(json.dumps({"texts": ["б" * 300] * 3}).encode()),
                   headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert c.post("/predict", json={"text": "а" * 2000}).status_code == 413      # Content-Length still works
        assert c.get("/health").status_code == 200


def test_a_body_longer_than_its_content_length_is_cut_off(app):
    """A client that declares a small Content-Length but streams more is counted, not trusted."""
    sent = []

    async def call():
        messages = [{"type": "http.request", "body": b'{"text": "' + b"a" * 600, "more_body": True},
                    {"type": "http.request", "body": b"a" * 600 + b'"}', "more_body": False}]
        scope = {"type": "http", "method": "POST", "path": "/predict", "headers": [
            (b"content-type", b"application/json"), (b"content-length", b"10")], "query_string": b"",
            "http_version": "1.1", "scheme": "http", "server": ("test", 80), "client": ("test", 1), "root_path": ""}

        async def receive():
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        await app(scope, receive, send)

    import asyncio

    asyncio.run(call())
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1 and starts[0]["status"] == 413


def chunked_request(port: int, body: bytes, piece: int = 200) -> bytes:
    """POST /predict with a hand-made chunked body over a real socket; the raw response."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            for i in range(0, len(body), piece):
                part = body[i:i + piece]
                s.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass                                  # the server may answer and close before the end
        return read_response(s)


def read_response(s: socket.socket) -> bytes:
    """Status line, headers and the Content-Length body of one HTTP/1.1 response."""
    data = b""
    while b"\r\n\r\n" not in data:
        block = s.recv(65536)
        if not block:
            return data
        data += block
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        block = s.recv(65536)
        if not block:
            break
        body += block
    return head + b"\r\n\r\n" + body


def test_a_chunked_upload_to_a_real_server_is_413(app):
    with serving(app, log_level="warning") as url:
        port = int(url.rsplit(":", 1)[1])
        over = chunked_request(port, json.dumps({"text": "а" * 5000}).encode())
        assert over.startswith(b"HTTP/1.1 413"), over[:200]
        assert b"over the limit of 1000 bytes" in over
        under = chunked_request(port, json.dumps({"text": "ну и ладно"}, ensure_ascii=False).encode())
        assert under.startswith(b"HTTP/1.1 200"), under[:200]
