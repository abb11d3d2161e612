"""Error analysis (emotions.evaluation.errors) on small synthetic frames whose answers are known by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from emotions.data.labels import get_task
from emotions.evaluation import errors as E

LABELS = list(get_task("cryptonite").labels)   # anger, disgust, fear, joy, sadness, surprise, neutral
A, J, N = LABELS.index("anger"), LABELS.index("joy"), LABELS.index("neutral")


def onehot(rows: list[list[str]]) -> np.ndarray:
    y = np.zeros((len(rows), len(LABELS)), dtype=int)
    for i, names in enumerate(rows):
        for name in names:
            y[i, LABELS.index(name)] = 1
    return y


def frame_from(texts: list[str], gold: list[list[str]], pred: list[list[str]],
               p: np.ndarray | None = None) -> pd.DataFrame:
    """A predictions frame whose decisions are exactly `pred` (probabilities 0.9 / 0.1 unless given)."""
    decided = onehot(pred)
    proba = np.where(decided == 1, 0.9, 0.1) if p is None else p
    return E.predictions_frame(texts, onehot(gold), proba, 0.5, LABELS)


def test_predictions_frame_columns_and_round_trip(tmp_path) -> None:
    texts = ["я злюсь", "NA", "ну и ладно, спасибо"]
    proba = np.full((3, len(LABELS)), 0.1)
    proba[0, A], proba[1, N], proba[2, [J, N]] = 0.8, 0.2, [0.7, 0.6]
    thresholds = np.full(len(LABELS), 0.5)
    frame = E.predictions_frame(texts, onehot([["anger"], [], ["joy"]]), proba, thresholds, LABELS)
    assert list(frame.columns[:3]) == ["text", "gold", "pred"]
    assert {f"p_{l}" for l in LABELS} | {f"gold_{l}" for l in LABELS} | {f"pred_{l}" for l in LABELS} <= set(frame)
    assert frame["gold"].tolist() == ["anger", "", "joy"]
    assert frame["pred"].tolist() == ["anger", "", "joy,neutral"]
    path = E.write_predictions(frame, tmp_path / "predictions" / "holdout.csv")
    assert [p.name for p in path.parent.iterdir()] == ["holdout.csv"]        # no temporary file left
    back = E.read_predictions(path)
    assert back["text"].tolist() == texts and back["gold"].tolist() == ["anger", "", "joy"]
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert E.frame_labels(back) == LABELS
    gold, pred, p = E.matrices(back, LABELS)
    assert gold.sum() == 2 and pred.sum() == 3 and np.allclose(p, proba)


def test_predictions_frame_ensure_one_and_single_label() -> None:
    proba = np.full((2, len(LABELS)), 0.1)
    proba[0, J] = 0.3
    ensured = E.predictions_frame(["a", "b"], onehot([["joy"], []]), proba, 0.5, LABELS, ensure_one=True)
    assert ensured["pred"].tolist()[0] == "joy"
    single = E.predictions_frame(["a", "b"], np.array([J, A]), proba, None, LABELS)
    assert single["gold"].tolist() == ["joy", "anger"] and single["pred"].tolist()[0] == "joy"
    given = E.predictions_frame(["a", "b"], onehot([["joy"], []]), proba, 0.5, LABELS, pred=onehot([[], ["fear"]]))
    assert given["pred"].tolist() == ["", "fear"] and given["pred_fear"].tolist() == [0, 1]
    with pytest.raises(ValueError, match="shape"):
        E.predictions_frame(["a"], onehot([["joy"]]), proba, 0.5, LABELS)


def test_confident_errors_order_and_kinds() -> None:
    p = np.full((5, len(LABELS)), 0.1)
    p[:, A] = [0.95, 0.6, 0.8, 0.3, 0.05]       # rows 0, 1, 2 predicted anger; gold anger: rows 2, 3, 4
    frame = frame_from(list("abcde"), [[], [], ["anger"], ["anger"], ["anger"]], [], p)
    errs = E.confident_errors(frame, LABELS, n=10)
    fp = errs[(errs.label == "anger") & (errs.error == "FP")]
    fn = errs[(errs.label == "anger") & (errs.error == "FN")]
    assert fp["text"].tolist() == ["a", "b"] and fp["rank"].tolist() == [1, 2]
    assert fn["text"].tolist() == ["e", "d"] and np.allclose(fn["p"], [0.05, 0.3])
    assert E.confident_errors(frame, LABELS, n=1).query("label == 'anger'")["text"].tolist() == ["a", "e"]
    assert set(errs.label) == {"anger"}          # no other class has an error


def test_label_pair_confusion_equals_hand_counts() -> None:
    gold = [["anger"], ["anger"], ["anger", "disgust"], ["joy"], ["joy"], ["neutral"]]
    pred = [["anger"], ["disgust"], ["disgust"], ["joy", "surprise"], ["neutral"], ["neutral"]]
    m = E.label_pair_confusion(frame_from(list("abcdef"), gold, pred), LABELS)
    assert m.shape == (len(LABELS), len(LABELS))
    assert m.loc["anger", "anger"] == 1 and m.loc["anger", "disgust"] == 2
    assert m.loc["disgust", "disgust"] == 1 and m.loc["joy", "joy"] == 1
    assert m.loc["joy", "surprise"] == 1 and m.loc["joy", "neutral"] == 1 and m.loc["neutral", "neutral"] == 1
    assert m.to_numpy().sum() == 8 and m.attrs["rows"]["anger"] == 3 and m.attrs["rows"]["fear"] == 0
    wrong = E.label_pair_confusion(frame_from(list("abcdef"), gold, pred), LABELS, wrong_only=True)
    assert wrong.loc["anger", "disgust"] == 1      # the row whose gold holds disgust is no error
    assert wrong.loc["anger", "anger"] == 1 and wrong.loc["joy", "surprise"] == 1


def test_f1_by_length_equals_sklearn_on_each_subset() -> None:
    rng = np.random.default_rng(3)
    n = 120
    lengths = rng.integers(1, 30, n)
    texts = [" ".join(["слово"] * int(k)) for k in lengths]
    gold = (rng.random((n, len(LABELS))) < 0.3).astype(int)
    proba = np.clip(gold * 0.5 + rng.random((n, len(LABELS))) * 0.6, 0, 1)
    frame = E.predictions_frame(texts, gold, proba, 0.5, LABELS)
    pred = (proba >= 0.5).astype(int)
    table = E.f1_by_length(frame, LABELS, bins=[0, 5, 10, 20, np.inf])
    assert table["bin"].tolist() == ["0-5", "6-10", "11-20", "21+"]
    for (lo, hi), row in zip([(0, 5), (6, 10), (11, 20), (21, 10**6)], table.itertuples()):
        mask = (lengths >= lo) & (lengths <= hi)
        assert row.rows == mask.sum()
        assert row.weighted_f1 == pytest.approx(f1_score(gold[mask], pred[mask], average="weighted",
                                                         zero_division=0))
    assert table["rows"].sum() == n
    empty = E.f1_by_length(frame, LABELS, bins=[0, 40, 100])
    assert empty["rows"].tolist() == [n, 0] and np.isnan(empty["weighted_f1"].iloc[1])
    with pytest.raises(ValueError, match="increasing"):
        E.f1_by_length(frame, LABELS, bins=[5, 1])


def planted_frame() -> pd.DataFrame:
    """Anger false positives mostly say 'злость', true negatives rarely do; 'я' is in every text."""
    rng = np.random.default_rng(0)
    filler = ["день", "дом", "кот", "работа", "погода", "чай", "город", "утро"]
    texts, gold, pred = [], [], []
    for i in range(20):                            # false positives of anger
        words = ["я", *rng.choice(filler, 3)] + (["злость"] if i < 16 else [])
        texts.append(" ".join(words)), gold.append(["neutral"]), pred.append(["anger"])
    for i in range(60):                            # true negatives of anger
        words = ["я", *rng.choice(filler, 3)] + (["злость"] if i < 2 else [])
        texts.append(" ".join(words)), gold.append(["joy"]), pred.append(["joy"])
    for _ in range(10):                            # true positives
        texts.append("я очень зол"), gold.append(["anger"]), pred.append(["anger"])
    return frame_from(texts, gold, pred)


def test_false_positive_words_ranks_the_planted_word_first() -> None:
    frame = planted_frame()
    words = E.false_positive_words(frame, LABELS, "anger", top=5)
    assert words["word"].iloc[0] == "злость"
    top = words.iloc[0]
    assert top.fp_texts == 16 and top.tn_texts == 2 and top.fp_share == pytest.approx(0.8)
    assert "я" not in words["word"].head(3).tolist()          # in every text: no signal
    assert words["log_odds"].is_monotonic_decreasing
    assert E.false_positive_words(frame, LABELS, "anger", min_count=17).empty
    assert E.false_positive_words(frame, LABELS, "fear").empty  # fear has no false positives
    with pytest.raises(ValueError, match="unknown label"):
        E.false_positive_words(frame, LABELS, "rage")


def test_label_word_share_counts_each_outcome() -> None:
    share = E.label_word_share(planted_frame(), "anger", "Злость")
    assert share.loc["FP", "texts"] == 20 and share.loc["FP", "with_word"] == 16
    assert share.loc["TN", "texts"] == 60 and share.loc["TN", "with_word"] == 2
    assert share.loc["TP", "texts"] == 10 and share.loc["TP", "with_word"] == 0
    assert share.loc["FN", "texts"] == 0 and np.isnan(share.loc["FN", "share"])


def test_plots_write_png_or_draw_on_axes(tmp_path) -> None:
    from matplotlib.figure import Figure

    frame = planted_frame()
    out = E.plot_label_confusion(E.label_pair_confusion(frame, LABELS), tmp_path / "confusion.png")
    assert out.read_bytes()[:4] == b"\x89PNG"
    out = E.plot_f1_by_length(E.f1_by_length(frame, LABELS), tmp_path / "f1_by_length.png")
    assert out.read_bytes()[:4] == b"\x89PNG"
    ax = Figure().add_subplot(1, 1, 1)
    assert E.plot_f1_by_length(E.f1_by_length(frame, LABELS), ax) is ax
    assert sorted(p.name for p in tmp_path.iterdir()) == ["confusion.png", "f1_by_length.png"]
