"""Self-training: which test rows get pseudo-labels, the retraining loop, and that holdout is never used."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emotions.core.options import OptionsError
from emotions.core.paths import DEMO_DATA_DIR
from emotions.data.labels import get_task
from emotions.evaluation.metrics import apply_thresholds
from emotions.models import read_model_card, train_model
from emotions.pipeline import stages, steps
from emotions.pipeline.config import load_config
from emotions.pipeline.self_training import (PSEUDO_SOURCE, confidence_scores, select_pseudo_labels, self_train,
                                             summary_numbers)

SPEC = get_task("cryptonite")
LABELS = list(SPEC.labels)
THR = np.full(3, 0.5)


# --- selection ---------------------------------------------------------------------------------------

PROBA = np.array([
    [0.97, 0.02, 0.01],   # 0 confident (score 0.97)
    [0.95, 0.30, 0.01],   # 1 uncertain class 2 (0.30)
    [0.92, 0.96, 0.05],   # 2 confident, two labels (score 0.92)
    [0.01, 0.02, 0.05],   # 3 confidently nothing: kept only with ensure_one (gets class 2)
    [0.60, 0.10, 0.10],   # 4 uncertain
    [0.99, 0.01, 0.01],   # 5 the most confident
])


def test_confident_rows_are_selected_and_labelled_by_the_thresholds():
    rows, y = select_pseudo_labels(PROBA, THR, confidence=0.9)
    assert rows.tolist() == [0, 2, 3, 5]
    assert (y == apply_thresholds(PROBA[rows], THR, ensure_one=True)).all()
    assert y.tolist() == [[1, 0, 0], [1, 1, 0], [0, 0, 1], [1, 0, 0]]
    assert confidence_scores(PROBA)[[0, 2, 5]].round(2).tolist() == [0.97, 0.92, 0.99]


def test_rows_without_a_positive_label_need_ensure_one():
    rows, y = select_pseudo_labels(PROBA, THR, confidence=0.9, ensure_one=False)
    assert rows.tolist() == [0, 2, 5] and (y.sum(axis=1) > 0).all()


def test_max_share_keeps_the_most_confident():
    rows, _ = select_pseudo_labels(PROBA, THR, confidence=0.9, max_share=2 / 6)
    assert rows.tolist() == [0, 5]
    rows, _ = select_pseudo_labels(PROBA, THR, confidence=0.9, max_share=0.1)   # floor(0.6) = 0 rows
    assert rows.tolist() == []


def test_a_threshold_outside_the_margin_that_contradicts_a_confident_side_drops_the_row():
    rows, _ = select_pseudo_labels(PROBA, [0.5, 0.97, 0.5], confidence=0.9)   # row 2: 0.96 < 0.97 says no
    assert 2 not in rows.tolist() and rows.tolist() == [0, 3, 5]
    rows, _ = select_pseudo_labels(PROBA, [0.5, 0.5, 0.02], confidence=0.9)   # rows 2 and 3: 0.05 >= 0.02 says yes
    assert rows.tolist() == [0, 5]


def test_selection_edge_cases():
    rows, y = select_pseudo_labels(np.zeros((0, 3)), THR)
    assert rows.shape == (0,) and y.shape == (0, 3)
    single = np.array([[0.95, 0.05], [0.6, 0.4]])
    rows, y = select_pseudo_labels(single, 0.5, confidence=0.9, multilabel=False)
    assert rows.tolist() == [0] and y.tolist() == [[1, 0]]
    with pytest.raises(ValueError):
        select_pseudo_labels(PROBA, THR, confidence=0.4)


# --- the loop ----------------------------------------------------------------------------------------

CUES = {"anger": "злой бесит ярость", "disgust": "противно мерзко гадость", "fear": "страшно боюсь ужас",
        "joy": "рад счастлив ура", "sadness": "грустно печаль тоска", "surprise": "вау неожиданно удивлен",
        "neutral": "стол окно дверь"}
FILLER = "и в на с это был мы они сегодня завтра дом".split()


def frame(n: int, seed: int) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        lab = LABELS[int(r.integers(len(LABELS)))]
        words = [*r.choice(FILLER, 3), *r.choice(CUES[lab].split(), 2)]
        rows.append({"text": " ".join(r.permutation(words)), "source": "train", **{l: int(l == lab) for l in LABELS}})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def data():
    return frame(140, 1), frame(70, 2), frame(60, 3)["text"].tolist()


def recording_train_fn(tune, out_dir, seen):
    def fit(df):
        seen.append(df.copy())
        return train_model("baseline", df, tune, SPEC, {"preprocess": {"asr_dictionary": False}}, out_dir)
    return fit


def test_one_round_trains_twice_on_train_plus_the_selected_rows(data, tmp_path):
    train, tune, unlabelled = data
    seen = []
    _, report = self_train(recording_train_fn(tune, tmp_path, seen), train, unlabelled, LABELS, rounds=1,
                                   confidence=0.6, max_share=0.5)
    assert len(seen) == 2
    pd.testing.assert_frame_equal(seen[0], train)
    pd.testing.assert_frame_equal(seen[1].iloc[:len(train)], train)
    pseudo = seen[1].iloc[len(train):]
    n = report["per_round"][0]["rows"]
    assert 0 < n <= 30 and len(pseudo) == n == report["pseudo_rows"] and report["rounds_run"] == 1
    assert set(pseudo["text"]) <= set(unlabelled) and (pseudo["source"] == PSEUDO_SOURCE).all()
    # the pseudo-labels are round 0's decisions on those rows
    first = train_model("baseline", train, tune, SPEC, {"preprocess": {"asr_dictionary": False}}, tmp_path / "r0")
    rows, y = select_pseudo_labels(first.predict_proba(unlabelled), first.thresholds, confidence=0.6, max_share=0.5)
    assert pseudo["text"].tolist() == [unlabelled[i] for i in rows]
    assert (pseudo[LABELS].to_numpy() == y).all()
    assert report["per_round"][0]["label_counts"] == dict(zip(LABELS, y.sum(axis=0).tolist()))
    assert summary_numbers(report) == {"self_training_rounds": 1, "self_training_rows": n,
                                       "self_training_rows_round1": n}


def test_zero_rounds_train_once_on_train_only(data, tmp_path):
    train, tune, unlabelled = data
    seen = []
    _, report = self_train(recording_train_fn(tune, tmp_path, seen), train, unlabelled, LABELS, rounds=0)
    assert len(seen) == 1 and report["per_round"] == [] and summary_numbers(report)["self_training_rows"] == 0


def test_steps_train_keeps_old_callers_and_checks_the_options(data, tmp_path):
    train, tune, unlabelled = data
    plain = steps.train("baseline", train, tune, "cryptonite", {}, {}, 42, tmp_path / "a")
    assert plain.self_training is None and "self_training" not in read_model_card(tmp_path / "a")
    st = steps.train("baseline", train, tune, "cryptonite", {}, {}, 42, tmp_path / "b", None, "tune", unlabelled,
                     {"rounds": 1, "confidence": 0.6})
    assert st.self_training["rounds_run"] == 1
    assert read_model_card(tmp_path / "b")["self_training"]["per_round"][0]["rows"] > 0
    with pytest.raises(OptionsError, match="confidence"):
        steps.train("baseline", train, tune, "cryptonite", {}, {}, 42, tmp_path / "c", None, "tune", unlabelled,
                    {"rounds": 1, "confidence": 0.3})


def test_config_section_is_checked():
    cfg = load_config("cryptonite", "full", ["train.self_training.rounds=2"])
    assert cfg["train"]["self_training"]["rounds"] == 2
    with pytest.raises(OptionsError, match="train.self_training.max_sahre"):
        load_config("cryptonite", "full", ["train.self_training.max_sahre=0.5"])


def test_run_config_pseudo_labels_test_texts_and_never_holdout(monkeypatch, tmp_path):
    seen_unlabelled, seen_frames = [], []
    real_self_train, real_train_model = steps.self_train, steps.train_model

    def spy_self_train(fn, train_df, unlabelled, *a, **k):
        seen_unlabelled.append(list(unlabelled))
        return real_self_train(fn, train_df, unlabelled, *a, **k)

    def spy_train_model(kind, train_df, *a, **k):
        seen_frames.append(train_df)
        return real_train_model(kind, train_df, *a, **k)

    monkeypatch.setattr(steps, "self_train", spy_self_train)
    monkeypatch.setattr(steps, "train_model", spy_train_model)
    cfg = load_config("cryptonite", "full", ["train.model=baseline", "train.self_training.rounds=1",
                                                "train.self_training.confidence=0.6", "evaluate.asr=false"])
    parts, _ = steps.split_data("cryptonite", DEMO_DATA_DIR, 42, cfg["extend"]["splits"])
    assert {"test", "holdout", "tune_utterances"} <= set(parts)
    res = stages.run_chain(cfg, DEMO_DATA_DIR, tmp_path / "model", parts=parts, cache_dir=tmp_path / "cache")
    test, holdout = set(parts["test"]["text"]), set(parts["holdout"]["text"]) | set(parts["tune"]["text"])
    assert seen_unlabelled == [parts["test"]["text"].tolist()]
    assert len(seen_frames) == 2 and res["self_training"]["rounds_run"] == 1
    added = set(seen_frames[1]["text"]) - set(seen_frames[0]["text"])
    assert added and added <= test and not (added & (holdout - test))
