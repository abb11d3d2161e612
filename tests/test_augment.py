"""Augmentation: budgets, translator cache, offline skip, ASR noise, synonyms."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emotions.core import hub
from emotions.augment import AsrNoise, augment_training_set, class_budgets
from emotions.augment.backtranslate import CachedTranslator, MarianTranslator
from emotions.data.labels import CRYPTONITE_LABELS as L

TEXTS = [
    ("Мне очень страшно идти домой одному ночью", {"fear"}),
    ("Боюсь, что завтра будет только хуже, чем сегодня", {"fear", "sadness"}),
    ("Фу, какая мерзость лежит в этом подъезде", {"disgust"}),
    ("Это отвратительно, как можно так поступать с людьми", {"disgust", "anger"}),
    ("Я так рад, что мы наконец встретились в городе", {"joy"}),
    ("Какой прекрасный день, солнце светит весь день", {"joy"}),
    ("Мне грустно, что лето закончилось так быстро", {"sadness"}),
    ("Ничего себе, вот это новость про нашего директора", {"surprise"}),
    ("Завтра в десять утра встреча в главном офисе", {"neutral"}),
    ("Я купил новую машину и поехал к маме в деревню", {"neutral", "joy"}),
]


def frame(n_copies: int = 3) -> pd.DataFrame:
    rows = []
    for k in range(n_copies):
        for t, on in TEXTS:
            rows.append({"text": f"{t} {'и еще ' * k}".strip(), **{l: int(l in on) for l in L}})
    return pd.DataFrame(rows)


class FakeTranslator:
    """Appends a marker word (so the round trip changes the text) and counts texts translated."""

    def __init__(self, model_id: str):
        self.model_id = model_id
        self.calls = 0

    def translate(self, texts: list[str]) -> list[str]:
        self.calls += len(texts)
        return [f"{t} {self.model_id}" for t in texts]


def only(method: str, **extra) -> dict:
    methods = {m: {"enabled": m == method} for m in ["backtranslation", "synonyms", "asr_noise"]}
    methods[method].update(extra)
    return methods


def test_auto_budget_formula() -> None:
    y = np.array([[1, 0, 0]] * 10 + [[0, 1, 0]] * 3 + [[0, 0, 1]] * 6)
    assert class_budgets(y, ["a", "b", "c"], "auto", factor=2.0).tolist() == [0, 3, 4]
    assert class_budgets(y, ["a", "b", "c"], "auto", factor=3.0, max_count=8).tolist() == [0, 5, 2]
    assert class_budgets(y, ["a", "b", "c"], {"auto": {"factor": 3.0, "max_count": 8}}).tolist() == [0, 5, 2]
    assert class_budgets(y, ["a", "b", "c"], {}).tolist() == [0, 3, 4]           # {} / None mean auto
    assert class_budgets(y, ["a", "b", "c"], {"b": 7}).tolist() == [0, 7, 0]
    with pytest.raises(ValueError, match="unknown label"):
        class_budgets(y, ["a", "b", "c"], {"d": 1})


def test_budgets_respected_per_class(tmp_path: Path) -> None:
    train = frame(4)
    budget = {"fear": 5, "disgust": 3, "sadness": 2, "joy": 0}
    out, rep = augment_training_set(train, labels=L, params={"budget": budget}, seed=3, cache_dir=tmp_path,
                                    translators={"forward": FakeTranslator("f"), "backward": FakeTranslator("b")})
    new = out[out["source"].str.startswith("aug:")]
    for label in L:
        assert int(new[label].sum()) <= budget.get(label, 0), label
        assert rep["added_per_class"][label] == int(new[label].sum())
    assert int(new["fear"].sum()) == 5 and int(new["disgust"].sum()) == 3
    assert set(new["source"]) <= {"aug:backtranslation", "aug:synonyms", "aug:asr_noise"}
    assert rep["rows_added"] == len(new) == sum(m["rows_added"] for m in rep["methods"].values())


def test_translator_cache_second_run_makes_no_model_calls(tmp_path: Path) -> None:
    train = frame(2)
    params = {"budget": {"fear": 3, "disgust": 3}, "methods": only("backtranslation")}
    fwd, bwd = FakeTranslator("fake-ru-en"), FakeTranslator("fake-en-ru")
    out1, rep1 = augment_training_set(train, labels=L, params=params, seed=0, cache_dir=tmp_path,
                                      translators={"forward": fwd, "backward": bwd})
    assert fwd.calls > 0 and bwd.calls > 0 and rep1["rows_added"] == len(out1) - len(train) > 0
    fwd2, bwd2 = FakeTranslator("fake-ru-en"), FakeTranslator("fake-en-ru")
    out2, rep2 = augment_training_set(train, labels=L, params=params, seed=0, cache_dir=tmp_path,
                                      translators={"forward": fwd2, "backward": bwd2})
    assert fwd2.calls == 0 and bwd2.calls == 0
    assert rep2["methods"]["backtranslation"]["model_calls"] == {"forward": 0, "backward": 0}
    pd.testing.assert_frame_equal(out1, out2)
    # the cache is keyed by model id: another model is called
    cached = CachedTranslator(FakeTranslator("other-model"), tmp_path / "backtranslation.sqlite")
    cached.translate(["Мне очень страшно идти домой одному ночью"])
    assert cached.model_calls == 1


def test_backtranslation_offline_is_skipped_with_one_line(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: False)
    train = frame(2)
    params = {"budget": {"fear": 2}, "methods": {"synonyms": {"enabled": False},
                                                 "backtranslation": {"forward": "Helsinki-NLP/opus-mt-ru-en"}}}
    with caplog.at_level(logging.INFO, logger="emotions"):
        out, rep = augment_training_set(train, labels=L, params=params, seed=0, cache_dir=tmp_path)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("back-translation")]
    assert len(lines) == 1
    assert lines[0].startswith("back-translation: model Helsinki-NLP/opus-mt-ru-en not available offline (")
    assert lines[0].endswith("; skipped")
    assert all(r.exc_info is None for r in caplog.records)
    assert rep["methods"]["backtranslation"]["rows_added"] == 0
    assert rep["methods"]["asr_noise"]["rows_added"] == 2 == rep["added_per_class"]["fear"]  # stage continued


def test_marian_missing_local_folder_raises_unavailable(tmp_path: Path, monkeypatch) -> None:
    from emotions.augment import TranslatorUnavailable

    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(TranslatorUnavailable):
        MarianTranslator("no-such-org/no-such-model", allow_download=False).translate(["привет"])


def test_asr_noise_output_style_and_labels(tmp_path: Path) -> None:
    train = frame(3)
    out, rep = augment_training_set(train, labels=L, params={"budget": {l: 6 for l in L},
                                                             "methods": only("asr_noise")},
                                    seed=1, cache_dir=tmp_path)
    new = out[out["source"] == "aug:asr_noise"]
    assert len(new) > 0
    for text in new["text"]:
        assert text == text.lower() and not re.search(r"[^\w\s]", text), text
    # each new row keeps the labels of the training row it came from (the one sharing most words)
    train_words = [set(t.lower().replace(",", "").split()) for t in train["text"]]
    for text, labels in zip(new["text"], new[L].to_numpy().tolist()):
        overlap = [len(set(text.split()) & w) for w in train_words]
        assert train[L].to_numpy()[int(np.argmax(overlap))].tolist() == labels, text


def test_asr_noise_is_seeded_and_uses_the_dictionary() -> None:
    text = "Я не знаю, что сейчас делать. Это просто ужас!"
    a, b = AsrNoise(seed=5, p_dictionary=1.0), AsrNoise(seed=5, p_dictionary=1.0)
    out = a([text] * 5)
    assert out == b([text] * 5)
    joined = " ".join(out)
    assert any(w in joined.split() for w in ["незнаю", "чо", "че", "шо", "щас", "ща", "ето", "ыетс"])


def test_synonyms_russian(tmp_path: Path, caplog) -> None:
    train = frame(2)
    with caplog.at_level(logging.INFO, logger="emotions"):
        out, rep = augment_training_set(train, labels=L, params={"budget": {"neutral": 3, "joy": 3},
                                                                 "methods": only("synonyms", p=0.5)},
                                        seed=0, cache_dir=tmp_path)
    new = out[out["source"] == "aug:synonyms"]
    assert 0 < len(new) and int(new["neutral"].sum()) <= 3 and int(new["joy"].sum()) <= 3
    assert not set(new["text"]) & set(train["text"])
