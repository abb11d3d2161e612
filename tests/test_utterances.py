"""The written spoken-style utterances: shipped data, their splits, the extension source, mixed thresholds and the
whole-test estimate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import emotions.data.extend as E
from emotions.core import paths
from emotions.data.labels import CRYPTONITE_LABELS
from emotions.data.readers import DataValidationError
from emotions.data.utterances import load_utterances, utterance_files, utterance_parts
from emotions.evaluation.metrics import WEIGHT_COLUMN, tune_thresholds
from emotions.models.thresholds import mixed_frame, threshold_frame

L = CRYPTONITE_LABELS


def rows(texts: list[str], *on: str) -> list[dict]:
    return [{"text": t, **{l: int(l in on) for l in L}} for t in texts]


@pytest.fixture()
def small_root(tmp_path, monkeypatch):
    """A data/utterances folder of 20 training rows (two writers) and 6 evaluation rows."""
    for kind, name, label, n in [("train", "a", "fear", 10), ("train", "b", "joy", 10), ("eval", "e", "anger", 6)]:
        folder = tmp_path / kind
        folder.mkdir(exist_ok=True)
        pd.DataFrame(rows([f"{name} фраза номер {i} {label}" for i in range(n)], label)).to_csv(
            folder / f"{name}.csv", index=False)
    monkeypatch.setattr(paths, "UTTERANCES_DIR", tmp_path)
    return tmp_path


def test_shipped_data_is_valid_balanced_and_eval_is_separate():
    train, evaluation = load_utterances("train"), load_utterances("eval")
    assert len(train) >= 3000 and len(evaluation) >= 600
    counts = train[L].sum()
    assert counts[["anger", "disgust", "fear", "sadness"]].min() >= 500, counts.to_dict()
    assert counts.min() >= 250, counts.to_dict()
    for frame in (train, evaluation):
        y = frame[L].to_numpy()
        assert (y.sum(axis=1) >= 1).all()
        assert not ((frame["neutral"] == 1) & (y.sum(axis=1) > 1)).any()       # neutral stands alone
        assert frame["text"].str.fullmatch(r"[а-я ]+").all()                    # lowercase, no punctuation
    assert not set(train["text"]) & set(evaluation["text"])
    assert not set(train["writer"]) & set(evaluation["writer"])
    assert (evaluation[L].sum() >= 20).all()


def test_parts_are_seeded_and_stratified(small_root):
    a, b = utterance_parts(7, 0.2), utterance_parts(7, 0.2)
    assert a["tune_utterances"]["text"].tolist() == b["tune_utterances"]["text"].tolist()
    tune = a["tune_utterances"]
    assert len(tune) == 4 and tune["fear"].sum() == 2 and tune["joy"].sum() == 2
    assert len(a["holdout_utterances"]) == 6 and set(a["holdout_utterances"]["source"]) == {"utterances-eval"}


def test_a_bad_file_is_named(small_root):
    (small_root / "train" / "bad.csv").write_text("text,anger\nну и ну,1\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match="bad.csv"):
        load_utterances("train")
    with pytest.raises(DataValidationError, match="no utterance CSVs"):
        utterance_files("eval", small_root / "nowhere")


def test_source_leaves_out_the_tune_rows_and_says_why_it_drops(small_root, tmp_path):
    parts = utterance_parts(0, 0.2)
    train = pd.DataFrame(rows(["обычный комментарий"], "neutral"))
    protect = {"tune_utterances": parts["tune_utterances"]["text"].tolist(),
               "holdout_utterances": parts["holdout_utterances"]["text"].tolist(), "test": ["a фраза номер 3 fear"]}
    out, report = E.extend_training_set(train, data_root=tmp_path, sources={"utterances": {"enabled": True}},
                                        protect=protect, labels=L)
    rep = report["sources"]["utterances"]
    assert rep["reserved_for_tune_utterances"] == 4 and rep["rows_read"] == 16
    kept = set(out["text"][out["source"] == "utterances"])
    assert not kept & set(protect["tune_utterances"]) and "a фраза номер 3 fear" not in kept
    assert rep["dropped_near_copies"] == sum(rep["dropped_near_copies_by_part"].values()) >= 1
    assert rep["dropped_near_copies_by_part"].get("test", 0) >= 1


def test_weighted_thresholds_equal_repeated_rows():
    rng = np.random.default_rng(0)
    y = (rng.random((60, 3)) > 0.6).astype(int)
    proba = np.clip(y * 0.3 + rng.random((60, 3)) * 0.7, 0, 1)
    w = rng.integers(1, 4, size=60)
    repeated = tune_thresholds(np.repeat(y, w, axis=0), np.repeat(proba, w, axis=0))
    assert np.allclose(tune_thresholds(y, proba, weights=w), repeated)


def test_mixed_frame_weighs_utterances_at_their_share():
    tune = pd.DataFrame(rows([f"t{i}" for i in range(30)], "joy")).assign(source="valid")
    utt = pd.DataFrame(rows([f"u{i}" for i in range(10)], "fear"))
    frame = mixed_frame(tune, utt, 0.4)
    assert len(frame) == 40 and np.isclose(frame[WEIGHT_COLUMN].mean(), 1)
    assert np.isclose(frame[WEIGHT_COLUMN][30:].sum() / frame[WEIGHT_COLUMN].sum(), 0.4)
    assert threshold_frame(tune, "tune+utterances", utt, 0.4).equals(frame)
    with pytest.raises(ValueError, match="tune_utterances"):
        threshold_frame(tune, "tune+utterances", None)


def test_mixed_holdout_is_the_weighted_f1_of_both_holdouts():
    from sklearn.metrics import f1_score

    from emotions.evaluation.report import mixed_holdout

    class Fixed:
        labels, multilabel = L, True

        def decide(self, proba):
            return (proba >= 0.5).astype(int)

    rng = np.random.default_rng(1)
    frames = {k: pd.DataFrame((rng.random((n, 7)) > 0.7).astype(int), columns=L).assign(text="x")
              for k, n in (("holdout", 40), ("holdout_utterances", 10))}
    probas = {k: rng.random((len(v), 7)) for k, v in frames.items()}
    out = mixed_holdout(Fixed(), frames, probas, 0.38)
    y = np.vstack([frames[k][L].to_numpy() for k in frames])
    pred = np.vstack([(probas[k] >= 0.5).astype(int) for k in frames])
    w = np.r_[np.full(40, 0.62 / 40), np.full(10, 0.38 / 10)]
    assert np.isclose(out["weighted_f1"], f1_score(y, pred, average="weighted", sample_weight=w, zero_division=0))
    assert out["rows"] == {"holdout": 40, "holdout_utterances": 10}
