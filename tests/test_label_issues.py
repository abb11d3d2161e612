"""Label cleaning: the cleanlab report finds planted label errors; remove / downweight act on them."""

import numpy as np
import pandas as pd
import pytest

from emotions.core.options import OptionsError
from emotions.data.label_issues import (WEIGHT_COLUMN, apply_label_issues, clean_training_rows,
                                        find_label_issues, issue_summary)
from emotions.data.labels import CRYPTONITE_LABELS as L

WORDS = {  # each class speaks its own words; the filler is shared
    "anger": "злой бесит ярость ненавижу орать бешенство достал раздражает",
    "disgust": "мерзко противно тошнит гадость отвратно фу омерзительно гадко",
    "fear": "страшно боюсь ужас жутко паника тревожно пугает кошмар",
    "joy": "радость счастлив ура отлично весело класс прекрасно восторг",
    "sadness": "грустно печаль тоска плачу жаль одиноко горе слезы",
    "surprise": "неожиданно вау удивлен ого внезапно поразительно неужели сюрприз",
    "neutral": "стол дом улица вторник поезд книга окно работа",
}
FILLER = "я ты он мы это вот тут там сегодня вчера просто очень".split()


def crafted(n_per_class: int = 45, n_errors: int = 24, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows whose label is plain from their words, with `n_errors` labels flipped to another class."""
    rng = np.random.default_rng(seed)
    rows = []
    for j, label in enumerate(L):
        vocab = WORDS[label].split()
        for _ in range(n_per_class):
            words = list(rng.choice(vocab, 3)) + list(rng.choice(FILLER, 4))
            rng.shuffle(words)
            rows.append({"text": " ".join(words), **{l: int(l == label) for l in L}})
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    planted = rng.choice(len(frame), n_errors, replace=False)
    for i in planted:
        true = L[int(frame.loc[i, L].to_numpy().argmax())]
        wrong = rng.choice([l for l in L if l != true])
        frame.loc[i, L] = [int(l == wrong) for l in L]
    return frame, np.sort(planted)


@pytest.fixture(scope="module")
def case():
    frame, planted = crafted()
    return frame, planted, find_label_issues(frame, L, folds=5, seed=0)


def test_report_finds_most_planted_errors(case):
    frame, planted, report = case
    flagged = set(report.loc[report["issue"], "row"])
    recall = len(flagged & set(planted)) / len(planted)
    precision = len(flagged & set(planted)) / max(len(flagged), 1)
    assert recall >= 0.8 and precision >= 0.6, (recall, precision, len(flagged))
    # the worst-quality rows are planted errors, and their suspected label is the true one
    worst = report.head(len(planted) // 2)
    assert worst["row"].isin(planted).mean() >= 0.8
    assert (worst["given"] != worst["suspected"]).all()
    assert len(report) == len(frame) and sorted(report["row"]) == list(range(len(frame)))
    assert report["quality"].between(0, 1).all() and report["text_sha1"].str.len().eq(12).all()


def test_flags_are_capped_at_max_share(case):
    frame, planted, report = case
    capped = find_label_issues(frame, L, folds=5, seed=0, max_share=0.04)
    cap = int(0.04 * len(frame))
    assert capped["issue"].sum() == cap < report["issue"].sum()
    kept = capped[capped["issue"]]                                          # the lowest-quality flags are kept
    dropped = capped[~capped["issue"] & capped["row"].isin(report.loc[report["issue"], "row"])]
    assert kept["row"].isin(report.loc[report["issue"], "row"]).all() and len(dropped) > 0
    assert kept["quality"].max() <= dropped["quality"].min()


def test_remove_and_downweight(case):
    frame, planted, report = case
    n_flagged = int(report["issue"].sum())
    removed = apply_label_issues(frame, report, "remove")
    assert len(removed) == len(frame) - n_flagged
    weighted = apply_label_issues(frame, report, "downweight", weight=0.25)
    assert len(weighted) == len(frame) and (weighted[WEIGHT_COLUMN] == 0.25).sum() == n_flagged
    assert apply_label_issues(frame, report, "report") is frame
    summary = issue_summary(report, L)
    assert summary["flagged"] == n_flagged and sum(summary["flagged_per_given_label"].values()) >= n_flagged


def test_training_step_is_off_by_default_and_checks_options():
    frame, _ = crafted(n_per_class=6, n_errors=2)
    same, report, info = clean_training_rows(frame, L, {})
    assert same is frame and report is None and info == {}
    kept, report, info = clean_training_rows(frame, L, {"action": "remove", "max_share": 0.05, "folds": 3})
    assert info["flagged"] == int(report["issue"].sum()) <= int(0.05 * len(frame))
    assert info["train_rows_after"] == len(kept) == len(frame) - info["flagged"]
    with pytest.raises(OptionsError, match="train.label_issues"):
        clean_training_rows(frame, L, {"actoin": "remove"})
    with pytest.raises(ValueError, match="only baseline supports"):
        clean_training_rows(frame, L, {"action": "downweight"}, model_kind="transformer")
