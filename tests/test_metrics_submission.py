import numpy as np
import pandas as pd
import pytest

from emotions.data.labels import CRYPTONITE_LABELS as LABELS
from emotions.evaluation.metrics import apply_thresholds, multilabel_report, tune_thresholds, weighted_f1
from emotions.data.splits import split_frame
from emotions.pipeline.submission import SubmissionError, make_submission, validate_submission, write_submission


def test_tune_thresholds_finds_known_optimum():
    # class 0 positives score 0.3..0.39, negatives 0..0.2: any threshold in (0.2, 0.3] is perfect;
    # class 1 positives at 0.8+, negatives up to 0.6
    rng = np.random.default_rng(0)
    y = np.zeros((200, 2), dtype=int)
    y[:50, 0] = 1
    y[100:150, 1] = 1
    p = np.zeros((200, 2))
    p[:, 0] = np.where(y[:, 0] == 1, rng.uniform(0.3, 0.39, 200), rng.uniform(0, 0.2, 200))
    p[:, 1] = np.where(y[:, 1] == 1, rng.uniform(0.8, 0.9, 200), rng.uniform(0, 0.6, 200))
    t = tune_thresholds(y, p)
    for j in range(2):   # any threshold between the top negative and the lowest positive is optimal
        assert p[y[:, j] == 0, j].max() < t[j] <= p[y[:, j] == 1, j].min()
    assert abs(t[1] - 0.6) <= 0.011  # ties go to the threshold nearest 0.5
    assert weighted_f1(y, apply_thresholds(p, t)) == 1.0
    assert weighted_f1(y, apply_thresholds(p, 0.5)) < 1.0


def test_ensure_one_gives_every_row_a_label():
    p = np.array([[0.1, 0.2], [0.9, 0.1]])
    assert apply_thresholds(p, [0.5, 0.5], ensure_one=True).tolist() == [[0, 1], [1, 0]]


def test_multilabel_report_fields():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.6], [0.1, 0.2]])
    r = multilabel_report(y, p, [0.5, 0.5], ["a", "b"])
    assert r["weighted_f1"] == 1.0 and r["per_class"]["a"]["roc_auc"] == 1.0 and r["n"] == 4


def test_split_frame_is_seeded_disjoint_and_stratified():
    df = pd.DataFrame({"text": [f"t{i}" for i in range(400)], "a": [i % 2 for i in range(400)],
                       "b": [int(i % 20 == 0) for i in range(400)]})
    p1 = split_frame(df, {"x": 0.5, "y": 0.25, "z": 0.25}, 7, ["a", "b"])
    p2 = split_frame(df, {"x": 0.5, "y": 0.25, "z": 0.25}, 7, ["a", "b"])
    assert all(p1[k].equals(p2[k]) for k in p1)
    texts = [set(v.text) for v in p1.values()]
    assert sum(map(len, texts)) == 400 and not (texts[0] & texts[1]) and not (texts[1] & texts[2])
    assert [int(p1[k].b.sum()) for k in "xyz"] == [10, 5, 5]
    with pytest.raises(ValueError, match="sum to 1"):
        split_frame(df, {"x": 0.5}, 0)


def template(n=4):
    return pd.DataFrame({"text": [f"текст {i}" for i in range(n)], **{l: [0] * n for l in LABELS}})


def test_submission_round_trip(tmp_path):
    t = template()
    dec = np.eye(len(LABELS), dtype=int)[[0, 3, 6, 3]]
    sub = make_submission(t, dec, LABELS)
    out = write_submission(sub, t, LABELS, run_dir=tmp_path / "run", submissions_dir=tmp_path / "subs", run_id="r1")
    back = pd.read_csv(out["latest"])
    validate_submission(back, t, LABELS)
    assert back[LABELS].to_numpy().tolist() == dec.tolist() and (tmp_path / "subs" / "submission-r1.csv").exists()


@pytest.mark.parametrize("breaker,message", [
    (lambda s: s.iloc[:-1], "3 rows, the test file has 4"),
    (lambda s: s.iloc[[1, 0, 2, 3]].reset_index(drop=True), "row 1: text differs"),
    (lambda s: s[["text", *LABELS[::-1]]], "columns"),
    (lambda s: s.assign(joy=[0, 2, 0, 0]), "row 2: 'joy' = 2"),
    (lambda s: s.assign(joy=[0.0, 1.0, 0.0, 0.0]), "must hold integers"),
])
def test_validator_rejects(breaker, message):
    t = template()
    with pytest.raises(SubmissionError, match=message):
        validate_submission(breaker(t.copy()), t, LABELS)


def test_invalid_submission_leaves_previous_intact(tmp_path):
    t = template()
    good = make_submission(t, np.ones((4, len(LABELS)), dtype=int), LABELS)
    out = write_submission(good, t, LABELS, run_dir=tmp_path / "r", submissions_dir=tmp_path / "s", run_id="a")
    before = out["latest"].read_bytes()
    with pytest.raises(SubmissionError):
        write_submission(good.iloc[:2], t, LABELS, run_dir=tmp_path / "r2", submissions_dir=tmp_path / "s", run_id="b")
    assert out["latest"].read_bytes() == before and not (tmp_path / "s" / "submission-b.csv").exists()
