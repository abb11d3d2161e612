"""Service details a user meets: offline /docs, invalid UTF-8, --help defaults, texts empty after preprocessing."""

from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from emotions.data.labels import get_task  # noqa: E402
from emotions.data.preprocess import PreprocessConfig  # noqa: E402
from emotions.models.base import Predictor  # noqa: E402
from emotions.serving.inputs import EMPTY_AFTER_PREPROCESSING  # noqa: E402
from emotions.serving.service import create_app, main as serve_main  # noqa: E402

LABELS = list(get_task("cryptonite").labels)


class Constant(Predictor):
    """Same probabilities for every text: enough to exercise the HTTP layer."""
    kind = "constant"

    def predict_proba_clean(self, texts):
        return np.tile(np.linspace(0.2, 0.8, len(self.labels)), (len(texts), 1))

    def save_weights(self, model_dir):
        pass


@pytest.fixture(scope="module")
def client():
    pred = Constant(labels=LABELS, multilabel=True, preprocess=PreprocessConfig(asr_dictionary=False))
    with TestClient(create_app(predictor=pred)) as c:
        yield c


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_no_external_url(client, page):
    html = client.get(page)
    assert html.status_code == 200
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", html.text) + re.findall(r"url:\s*'([^']+)'", html.text)
    assert urls and not [u for u in urls if re.match(r"(https?:)?//", u)], urls
    assert not re.search(r"https?://(?!localhost)", html.text.split("<body>")[0])    # nothing in <head> either
    for u in urls:                                                   # every asset is served by the app itself
        assert client.get(u).status_code == 200, u


@pytest.mark.parametrize("path", ["/predict", "/predict/batch"])
def test_invalid_utf8_is_422_and_names_the_byte(client, path):
    body = b'{"text": "\xff\xfe bad"}' if path == "/predict" else b'{"texts": ["ok", "\xc3\x28"]}'
    r = client.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422
    msg = r.json()["detail"][0]["msg"]
    assert "not valid UTF-8" in msg and "position" in msg


def test_text_empty_after_preprocessing_gets_a_warning(client):
    r = client.post("/predict", json={"text": "!!!"}).json()
    assert r["warning"] == EMPTY_AFTER_PREPROCESSING and r["labels"]
    assert "warning" not in client.post("/predict", json={"text": "ну и ладно!!!"}).json()
    batch = client.post("/predict/batch", json={"texts": ["привет", "?!...", "😂"]}).json()["results"]
    assert "warning" not in batch[0] and batch[1]["warning"] == EMPTY_AFTER_PREPROCESSING
    assert "warning" not in batch[2]                                  # emoji become words


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        serve_main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    for fragment in ("(default: 127.0.0.1)", "(default: 8000)", "(default: torch)", "(default: 2000)",
                     "(default: 64)"):
        assert fragment in out, fragment
