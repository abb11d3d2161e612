"""ASR-style rendering of labelled splits: seeded, labels and rows kept, transcript-like output."""

import re

import numpy as np
import pandas as pd
import pytest

from emotions.augment.asr_render import ASR_RENDER_DEFAULTS, render_asr, render_texts, text_style_stats
from emotions.data.labels import CRYPTONITE_LABELS
from emotions.core.paths import DEMO_DATA_DIR


@pytest.fixture(scope="module")
def valid() -> pd.DataFrame:
    return pd.read_csv(DEMO_DATA_DIR / "cryptonite" / "valid.csv", keep_default_na=False)


def test_render_is_seeded_and_keeps_rows_labels_and_order(valid):
    frame = valid.assign(row_id=np.arange(len(valid)))
    a, b = render_asr(frame, seed=3), render_asr(frame, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == len(frame) and list(a.columns) == list(frame.columns)
    pd.testing.assert_frame_equal(a.drop(columns="text"), frame.drop(columns="text"))
    assert a["text"].tolist() != render_asr(frame, seed=4)["text"].tolist()
    assert frame["text"].tolist() == valid["text"].tolist()          # the input is not modified


def test_every_row_is_rendered_as_a_transcript(valid):
    out = render_asr(valid, seed=0)["text"]
    assert all(isinstance(t, str) and t for t in out)                # every row, never None or empty
    for text in out:
        assert text == text.lower() and not re.search(r"[^\w\s]|_", text) and "  " not in text, text
    stats = text_style_stats(out)
    assert stats["share of texts with uppercase"] == 0 and stats["share of texts with punctuation"] == 0
    clean = text_style_stats(valid["text"])
    assert clean["share of texts with uppercase"] > 0.5              # the statistics see the difference
    assert 0.8 < stats["words per text, mean"] / clean["words per text, mean"] < 1.2


def test_error_rates_drive_the_changes():
    texts = ["Я не знаю, что сейчас делать с этим огромным количеством работы."] * 200
    light = render_texts(texts, seed=1)
    none = render_texts(texts, seed=1, params={k: 0.0 for k in ASR_RENDER_DEFAULTS if k.startswith("p_")})
    heavy = render_texts(texts, seed=1, params={"p_phonetic": 0.5, "p_dictionary": 1.0, "p_merge": 0.2})
    base = "я не знаю что сейчас делать с этим огромным количеством работы"
    assert set(none) == {base}
    changed = lambda out: np.mean([t != base for t in out])          # noqa: E731
    assert changed(none) == 0 < changed(light) < 0.5 < changed(heavy)
    assert any(w in " ".join(heavy).split() for w in ["незнаю", "щас", "ща", "чо", "че", "шо"])


def test_placeholders_are_spoken_and_options_checked():
    assert render_texts(["Привет, [ИМЯ]!"], params={"p_drop_short": 0.0}) == ["привет имя"]
    assert render_texts(["Привет, [ИМЯ]!"], params={"placeholder_word": ""}) == ["привет"]
    with pytest.raises(ValueError, match="p_phonetik"):
        render_texts(["x"], params={"p_phonetik": 0.1})
    with pytest.raises(KeyError, match="txt"):
        render_asr(pd.DataFrame({"text": ["a"], **{l: [0] for l in CRYPTONITE_LABELS}}), text_col="txt")
