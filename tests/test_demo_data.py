"""The synthetic demo data root `data/demo/` (made by `scripts/make_demo_data.py`)."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from emotions.data.labels import (CRYPTONITE_LABELS, GOEMOTIONS_EKMAN_LABELS, GOEMOTIONS_LABELS, GOEMOTIONS_TO_EKMAN,
                             IZARD_LABELS)

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo"
SCRIPT = ROOT / "scripts" / "make_demo_data.py"

CRYPTONITE_COLS = ["text", *CRYPTONITE_LABELS]
IZARD_COLS = ["text", *IZARD_LABELS]
EKMAN = GOEMOTIONS_EKMAN_LABELS
GOEMOTIONS = GOEMOTIONS_LABELS
EKMAN_OF = GOEMOTIONS_TO_EKMAN
FILES = [
    "README.md",
    "cryptonite/train.csv", "cryptonite/valid.csv", "cryptonite/test_without_answers.csv", "cryptonite/dataset.yaml",
    "ru-izard-emotions/train.csv", "ru-izard-emotions/val.csv", "ru-izard-emotions/test.csv",
    "cedr/train.csv", "cedr/test.csv",
    "goemotions-en/ekman_train.tsv", "goemotions-en/original_train.tsv",
    "emotions-en/emotions.csv",
    *(f"utterances/train/{name}.csv" for name in ("anger", "disgust", "fear", "joy_surprise", "neutral_mixed",
                                                  "sadness")),
    "utterances/eval/writer_e1.csv", "utterances/eval/writer_e2.csv",
]


def read(rel: str) -> pd.DataFrame:
    return pd.read_csv(DEMO / rel, dtype=str, keep_default_na=False, encoding="utf-8")


def read_tsv(rel: str) -> pd.DataFrame:
    return pd.read_csv(DEMO / rel, sep="\t", header=None, quoting=csv.QUOTE_NONE, dtype=str,
                       keep_default_na=False, names=["text", "ids", "id"], encoding="utf-8")


def check_01(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    for c in cols:
        assert set(df[c]) <= {"0", "1"}, c
    return df[cols].astype(int)


@pytest.mark.parametrize("rel", FILES)
def test_file_exists_utf8(rel):
    path = DEMO / rel
    assert path.is_file(), rel
    text = path.read_bytes().decode("utf-8")
    assert text.strip()
    assert "\r" not in text


@pytest.mark.parametrize("rel,lo,hi", [
    ("cryptonite/train.csv", 250, 350),
    ("cryptonite/valid.csv", 150, 250),
])
def test_cryptonite_labelled(rel, lo, hi):
    df = read(rel)
    assert list(df.columns) == CRYPTONITE_COLS
    assert lo <= len(df) <= hi
    assert (df["text"].str.strip() != "").all()
    y = check_01(df, CRYPTONITE_COLS[1:])
    n_labels = y.sum(axis=1)
    assert (n_labels >= 1).all()
    assert 0.08 <= (n_labels == 2).mean() <= 0.25  # ~15% two-label rows
    minimum = 15 if "train" in rel else 8
    counts = y.sum(axis=0)
    assert (counts >= minimum).all(), counts.to_dict()
    assert counts["neutral"] >= counts["fear"] and counts["joy"] >= counts["disgust"]
    assert df["text"].str.match(r"(\[NAME\]|[А-ЯЁ])").all()  # cased sentences


def test_cryptonite_test_asr_style():
    df = read("cryptonite/test_without_answers.csv")
    assert list(df.columns) == CRYPTONITE_COLS
    assert 100 <= len(df) <= 200
    assert (check_01(df, CRYPTONITE_COLS[1:]) == 0).all().all()
    for t in df["text"]:
        assert re.fullmatch(r"[а-яa-z0-9]+( [а-яa-z0-9]+)*", t), t  # lowercase, no punctuation, no ё
    # distinct from the labelled splits
    labelled = set(read("cryptonite/train.csv")["text"]) | set(read("cryptonite/valid.csv")["text"])
    norm = {" ".join(re.sub(r"[^а-яa-z0-9]+", " ", t.lower().replace("ё", "е")).split()) for t in labelled}
    assert not (set(df["text"]) & norm)


def test_izard():
    frames = {}
    for split, lo, hi in (("train", 100, 150), ("val", 20, 40), ("test", 20, 40)):
        df = read(f"ru-izard-emotions/{split}.csv")
        assert list(df.columns) == IZARD_COLS
        assert lo <= len(df) <= hi
        y = check_01(df, IZARD_COLS[1:])
        assert (y.sum(axis=1) >= 1).all()
        frames[split] = df
    allrows = pd.concat(frames.values())
    assert (check_01(allrows, IZARD_COLS[1:]).sum(axis=0) >= 5).all()
    # the two exact leaks of cryptonite valid texts
    valid = set(read("cryptonite/valid.csv")["text"])
    assert len(set(allrows["text"]) & valid) == 2


def test_izard_leaks_listed_in_readme():
    readme = (DEMO / "README.md").read_text(encoding="utf-8")
    assert "synthetic" in readme.lower() and "make_demo_data.py" in readme
    listed = re.findall(r"^- `ru-izard-emotions/(\w+)\.csv`: «(.+?)»", readme, flags=re.M)
    assert len(listed) >= 7
    for split, text in listed:
        assert text in set(read(f"ru-izard-emotions/{split}.csv")["text"]), text


def test_cedr():
    for split, lo, hi, minimum in (("train", 120, 180, 10), ("test", 40, 60, 3)):
        df = read(f"cedr/{split}.csv")
        assert list(df.columns) == ["text", "labels", "source"]
        assert lo <= len(df) <= hi
        assert set(df["source"]) == {"lj", "lenta", "twitter"}
        ids = []
        for v in df["labels"]:
            m = re.fullmatch(r"\[(\d( \d)*)?\]", v)
            assert m, v
            ids += [int(x) for x in v.strip("[]").split()]
        assert set(ids) <= set(range(5))
        for i in range(5):
            assert ids.count(i) >= minimum, (split, i)
        assert 0.2 <= (df["labels"] == "[]").mean() <= 0.4


def test_goemotions():
    ek = read_tsv("goemotions-en/ekman_train.tsv")
    orig = read_tsv("goemotions-en/original_train.tsv")
    assert 120 <= len(ek) <= 200
    assert list(ek["text"]) == list(orig["text"]) and list(ek["id"]) == list(orig["id"])
    assert ek["id"].is_unique
    for e, o in zip(ek["ids"], orig["ids"]):
        assert re.fullmatch(r"\d+(,\d+)*", e) and re.fullmatch(r"\d+(,\d+)*", o)
        e_ids = [int(x) for x in e.split(",")]
        o_names = [GOEMOTIONS[int(x)] for x in o.split(",")]
        assert e_ids == sorted(set(e_ids)) and all(0 <= i < len(EKMAN) for i in e_ids)
        assert {EKMAN[i] for i in e_ids} == {EKMAN_OF.get(n, "joy") for n in o_names}
    all_orig = {int(x) for v in orig["ids"] for x in v.split(",")}
    assert all_orig == set(range(len(GOEMOTIONS)))


def test_emotions_en():
    df = read("emotions-en/emotions.csv")
    assert list(df.columns) == ["Text", "Emotion"]
    assert 250 <= len(df) <= 350
    counts = df["Emotion"].value_counts()
    assert set(counts.index) == {"sadness", "happy", "love", "anger", "fear", "surprise"}
    assert (counts >= 30).all()
    assert (df["Text"] == df["Text"].str.lower()).all()
    assert df["Text"].is_unique


def test_generator_is_deterministic(tmp_path):
    out = tmp_path / "demo"
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], check=True, cwd=tmp_path,
                   capture_output=True)
    made = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert made == sorted(FILES)
    for rel in FILES:
        assert (out / rel).read_bytes() == (DEMO / rel).read_bytes(), f"{rel} differs from data/demo"
