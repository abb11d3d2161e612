"""The try-it page at `/`: served offline, escapes what it shows, and works in a real browser (headless
Debian Chromium driven by Playwright): type a sentence, see one bar per emotion with its threshold."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from emotions.data.preprocess import PreprocessConfig  # noqa: E402
from emotions.models.base import Predictor  # noqa: E402
from emotions.serving.service import create_app  # noqa: E402
from emotions.serving.settings import ServiceSettings  # noqa: E402
from live_server import serving  # noqa: E402

LABELS = ["anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral"]
THRESHOLDS = [0.3, 0.4, 0.5, 0.35, 0.6, 0.45, 0.5]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


class Lengthy(Predictor):
    """Scores follow the text's length (so each text has its own, known answer)."""

    kind = "lengthy"

    def predict_proba_clean(self, texts):
        n = np.array([len(t) for t in texts], dtype=float)[:, None]
        return (np.sin(n * (1 + np.arange(len(self.labels)))) + 1) / 2

    def save_weights(self, model_dir):
        pass


def app_for(labels=LABELS, multilabel=True, limits=None, **settings):
    """An app on a Lengthy model; `limits`: create_app's max_chars / max_body_bytes."""
    pred = Lengthy(labels=labels, multilabel=multilabel, preprocess=PreprocessConfig(asr_dictionary=False),
                   thresholds=THRESHOLDS[:len(labels)], task="cryptonite")
    return create_app(predictor=pred, settings=ServiceSettings(**settings), **(limits or {}))


# --- without a browser ---------------------------------------------------------------------------------------
def test_the_page_is_self_contained_and_open_while_its_data_needs_the_key():
    with TestClient(app_for(api_keys=("k1",))) as c:
        r = c.get("/")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", r.text)       # no external asset
        assert "connect-src 'self'" in r.headers["content-security-policy"]
        assert "thresholds" not in r.text.split("<script>")[0]                    # no model data in the shell
        assert c.get("/page/model").status_code == 401
        data = c.get("/page/model", headers={"Authorization": "Bearer k1"}).json()
        assert data["labels"] == LABELS and data["thresholds"]["joy"] == pytest.approx(0.35)


def test_label_names_are_data_not_markup():
    evil = ["<img src=x onerror=alert(1)>", "</script><script>alert(2)</script>"]
    with TestClient(app_for(labels=evil)) as c:
        assert "onerror" not in c.get("/").text                                 # the shell never holds labels
        assert c.get("/page/model").json()["labels"] == evil                      # JSON, drawn with textContent


# --- in a real browser ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (Debian: apt-get install chromium; .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:            # Playwright gives each launch a fresh, empty profile
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


def bars(page) -> dict[str, dict]:
    return page.eval_on_selector_all(".bar", """rows => Object.fromEntries(rows.map(r => [r.dataset.label, {
        score: Number(r.dataset.score), threshold: Number(r.dataset.threshold),
        decided: r.classList.contains('decided'),
        marker: r.querySelector('.threshold') ? r.querySelector('.threshold').style.left : null}]))""")


# selectors, not wait_for_function: the page's CSP forbids the eval() that one uses
def wait_for_bars(page) -> None:
    """Wait until the page has drawn the bars of its latest answer."""
    page.wait_for_selector("#bars[data-done='1']", timeout=10_000)


def status_has(page, fragment: str) -> None:
    """Wait until the status line contains `fragment`."""
    page.wait_for_selector(f'#status:has-text("{fragment}")', timeout=10_000)


def classify_by_keyboard(page, text: str) -> None:
    """Type `text` and press Ctrl+Enter (after clearing the done mark, so `wait_for_bars` waits for this one)."""
    page.evaluate("delete document.getElementById('bars').dataset.done")
    page.fill("#text", text)
    page.press("#text", "Control+Enter")


def test_type_a_sentence_and_see_the_bars(browser):
    import httpx

    text = "я так рада что ты пришёл"
    with serving(app_for()) as url:
        want = httpx.post(url + "/predict", json={"text": text}).json()
        page = browser.new_page()
        outside = []
        page.on("request", lambda req: outside.append(req.url) if not req.url.startswith(url) else None)
        page.goto(url + "/")
        page.fill("#text", text)
        page.click("#classify")
        wait_for_bars(page)
        got = bars(page)
        page.close()
    assert list(got) == LABELS                                                   # one bar per emotion
    for label, t in zip(LABELS, THRESHOLDS):
        assert got[label]["score"] == pytest.approx(want["scores"][label], abs=1e-6)
        assert got[label]["threshold"] == pytest.approx(t) and got[label]["marker"] == f"{100 * t:g}%"
    assert [l for l in LABELS if got[l]["decided"]] == want["labels"]
    assert outside == []                                                         # nothing fetched from elsewhere


def test_with_keys_the_page_asks_for_one_and_then_works(browser):
    with serving(app_for(api_keys=("sesame",))) as url:
        page = browser.new_page()
        page.goto(url + "/")
        status_has(page, "401")
        assert page.is_visible("#key")
        page.fill("#text", "ужас какой")
        page.fill("#key", "wrong")
        page.click("#use-key")
        status_has(page, "invalid API key")
        page.fill("#key", "sesame")
        page.press("#key", "Enter")                                              # Enter uses the key too
        wait_for_bars(page)
        assert len(bars(page)) == len(LABELS)
        page.close()


def test_single_label_notes_and_errors(browser):
    import httpx

    limits = {"max_chars": 20, "max_body_bytes": 600}
    with serving(app_for(multilabel=False, limits=limits)) as url:
        want = httpx.post(url + "/predict", json={"text": "ну и ладно"}).json()
        page = browser.new_page()
        page.goto(url + "/")
        classify_by_keyboard(page, "ну и ладно")                                  # Ctrl+Enter classifies
        wait_for_bars(page)
        got = bars(page)
        assert all(b["marker"] is None for b in got.values())                    # no threshold: no marker
        best = max(LABELS, key=lambda l: want["scores"][l])
        assert [l for l in LABELS if got[l]["decided"]] == want["labels"] == [best]   # the argmax is chosen
        classify_by_keyboard(page, "мне очень грустно сегодня, правда")             # over max_chars
        status_has(page, "cut to the service's length limit")
        classify_by_keyboard(page, "!!!???...")                                     # empty after preprocessing
        status_has(page, "empty after preprocessing")
        classify_by_keyboard(page, "я " * 1000)                                     # body over 600 bytes
        status_has(page, "Error 413")
        assert page.is_enabled("#classify")                                       # still usable afterwards
        classify_by_keyboard(page, "ладно")
        wait_for_bars(page)
        page.close()


def test_label_names_with_markup_are_shown_as_text_in_the_browser(browser):
    evil = ["<img src=x onerror=alert(1)>", "</script><script>alert(2)</script>", "joy"]
    with serving(app_for(labels=evil)) as url:
        page = browser.new_page()
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(url + "/")
        classify_by_keyboard(page, "вот это да")
        wait_for_bars(page)
        names = page.eval_on_selector_all(".bar .name", "els => els.map(e => e.textContent)")
        assert names == evil and page.query_selector_all("#bars img, #bars script") == []
        page.close()
    assert dialogs == []                                                          # nothing ran


def test_a_tiny_trained_run_folder_in_the_browser(browser, tmp_path):
    pytest.importorskip("torch")
    import httpx
    from tiny_runs import make_tiny_transformer

    run = tmp_path / "run"
    texts = ["я так рад тебя видеть", "это просто ужасно", "мне страшно", "какая мерзость", "ну и ладно"]
    pred = make_tiny_transformer(run, texts * 5, thresholds=[0.3, 0.4, 0.5, 0.5, 0.6, 0.5, 0.5])
    with serving(create_app(run, "torch", threads=1, settings=ServiceSettings())) as url:
        want = httpx.post(url + "/predict", json={"text": texts[0]}).json()
        page = browser.new_page()
        page.goto(url + "/")
        classify_by_keyboard(page, texts[0])
        wait_for_bars(page)
        got = bars(page)
        page.close()
    assert list(got) == pred.labels
    for label, t in zip(pred.labels, pred.thresholds):
        assert got[label]["score"] == pytest.approx(want["scores"][label], abs=1e-6)
        assert got[label]["threshold"] == pytest.approx(t)
    assert [l for l in pred.labels if got[l]["decided"]] == want["labels"]
