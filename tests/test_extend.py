"""Extension sources, label mappings, hub path and drop counts (tiny local data roots)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

import emotions.data.extend as E
from emotions.core import hub
from emotions.data.readers import DataValidationError
from emotions.data.labels import CEDR_IDS, CRYPTONITE_LABELS, IZARD_LABELS

L = CRYPTONITE_LABELS


def izard_row(text: str, *on: str) -> dict:
    return {"text": text, **{l: int(l in on) for l in IZARD_LABELS}}


def crypto_row(text: str, *on: str) -> dict:
    return {"text": text, **{l: int(l in on) for l in L}}


def write_izard(root: Path, rows: list[dict], split: str = "train") -> Path:
    path = root / "ru-izard-emotions" / f"{split}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["text", *IZARD_LABELS]).to_csv(path, index=False)
    return path


IZARD_ROWS = [
    izard_row("Я так рад за тебя, друг", "joy"),
    izard_row("Какой восторг, едем в горы", "enthusiasm"),
    izard_row("Мне так стыдно за вчерашнее", "shame"),
    izard_row("Это моя вина, прости меня", "guilt"),
    izard_row("Фу, какая мерзость в подъезде", "disgust", "anger"),
    izard_row("Боюсь идти туда ночью", "fear"),
]


@pytest.fixture
def izard_root(tmp_path: Path) -> Path:
    write_izard(tmp_path, IZARD_ROWS[:4], "train")
    write_izard(tmp_path, IZARD_ROWS[4:5], "val")
    write_izard(tmp_path, IZARD_ROWS[5:], "test")
    return tmp_path


def empty_train() -> pd.DataFrame:
    return pd.DataFrame(columns=["text", *L]).astype({l: int for l in L})


def labels_of(df: pd.DataFrame, text: str) -> set[str]:
    row = df[df["text"] == text].iloc[0]
    return {l for l in L if row[l] == 1}


def test_izard_default_mapping(izard_root: Path) -> None:
    out, rep = E.extend_training_set(empty_train(), data_root=izard_root, sources={"izard": {}}, protect={})
    assert rep["sources"]["izard"]["rows_read"] == 6 and rep["sources"]["izard"]["rows_kept"] == 6
    assert labels_of(out, "Какой восторг, едем в горы") == {"joy"}          # enthusiasm -> joy
    assert labels_of(out, "Мне так стыдно за вчерашнее") == {"sadness"}     # shame -> sadness
    assert labels_of(out, "Это моя вина, прости меня") == {"sadness"}       # guilt -> sadness
    assert labels_of(out, "Фу, какая мерзость в подъезде") == {"disgust", "anger"}
    assert set(out["source"]) == {"izard"}


def test_izard_configurable_mapping_and_unmapped_rows(izard_root: Path) -> None:
    cfg = {"mapping": {"enthusiasm": "surprise", "guilt": None, "shame": None}}
    out, rep = E.extend_training_set(empty_train(), data_root=izard_root, sources={"izard": cfg}, protect={})
    assert labels_of(out, "Какой восторг, едем в горы") == {"surprise"}
    assert "Это моя вина, прости меня" not in set(out["text"])
    assert rep["sources"]["izard"]["dropped_unmapped"] == 2
    with pytest.raises(ValueError, match="not among"):
        E.extend_training_set(empty_train(), data_root=izard_root,
                              sources={"izard": {"mapping": {"guilt": "remorse"}}}, protect={})


def test_izard_select_labels_and_max_rows(izard_root: Path) -> None:
    out, rep = E.extend_training_set(empty_train(), data_root=izard_root,
                                     sources={"izard": {"select_labels": ["fear", "disgust", "sadness"]}}, protect={})
    assert set(out["text"]) == {"Мне так стыдно за вчерашнее", "Это моя вина, прости меня",
                                "Фу, какая мерзость в подъезде", "Боюсь идти туда ночью"}
    assert rep["sources"]["izard"]["dropped_not_selected"] == 2
    out, rep = E.extend_training_set(empty_train(), data_root=izard_root, sources={"izard": {"max_rows": 3}},
                                     protect={}, seed=1)
    assert len(out) == 3 and rep["sources"]["izard"]["dropped_max_rows"] == 3


def test_izard_hub_path_with_local_files(tmp_path: Path) -> None:
    files = tmp_path / "files"
    train = write_izard(files, IZARD_ROWS[:3], "train")
    val = write_izard(files, IZARD_ROWS[3:], "val")
    root = tmp_path / "empty_root"
    root.mkdir()
    cfg = {"hub_id": "csv", "splits": ["train", "val"],
           "hub_kwargs": {"data_files": {"train": str(train), "validation": str(val)},
                          "cache_dir": str(tmp_path / "hf_cache")}}
    out, rep = E.extend_training_set(empty_train(), data_root=root, sources={"izard": cfg}, protect={})
    assert rep["sources"]["izard"]["rows_kept"] == 6
    assert labels_of(out, "Какой восторг, едем в горы") == {"joy"}


def test_izard_hub_unreachable_is_one_log_line(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: False)
    train = pd.DataFrame([crypto_row("обычный текст", "neutral")])
    with caplog.at_level(logging.INFO, logger="emotions"):
        out, rep = E.extend_training_set(train, data_root=tmp_path, sources={"izard": {}}, protect={})
    lines = [r for r in caplog.records if "ru-izard-emotions" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].getMessage() == (f"ru-izard-emotions: not found under {tmp_path} and the hub is "
                                     "unreachable; skipped")
    assert lines[0].exc_info is None
    assert len(out) == 1 and rep["sources"]["izard"]["status"].startswith("skipped")


def test_cedr_mapping_no_emotion_to_neutral(tmp_path: Path) -> None:
    d = tmp_path / "cedr"
    d.mkdir()
    pd.DataFrame({"text": ["Суровый медведь .", "Ура, победа!", "Страшно и грустно"],
                  "labels": ["[]", "[0]", f"[{CEDR_IDS.index('fear')} {CEDR_IDS.index('sadness')}]"],
                  "source": ["lj", "lj", "lenta"]}).to_csv(d / "train.csv", index=False)
    pd.DataFrame({"text": ["Удивительно"], "labels": ["[2]"], "source": ["lj"]}).to_csv(d / "test.csv", index=False)
    out, rep = E.extend_training_set(empty_train(), data_root=tmp_path, sources={"cedr": {}}, protect={})
    assert labels_of(out, "Суровый медведь .") == {"neutral"}
    assert labels_of(out, "Ура, победа!") == {"joy"}
    assert labels_of(out, "Страшно и грустно") == {"fear", "sadness"}
    assert labels_of(out, "Удивительно") == {"surprise"}
    assert rep["sources"]["cedr"]["rows_kept"] == 4 and set(out["source"]) == {"cedr"}
    out, rep = E.extend_training_set(empty_train(), data_root=tmp_path,
                                     sources={"cedr": {"mapping": {"no_emotion": None}}}, protect={})
    assert rep["sources"]["cedr"]["dropped_unmapped"] == 1


def test_goemotions_en_and_user_csv(tmp_path: Path) -> None:
    g = tmp_path / "goemotions-en"
    g.mkdir()
    (g / "ekman_train.tsv").write_text("I am so scared\t2\tid1\nThat is gross and annoying\t0,1\tid2\n", encoding="utf-8")
    user = tmp_path / "mine.csv"
    pd.DataFrame([crypto_row("Мне страшно одному дома", "fear")]).to_csv(user, index=False)
    train = pd.DataFrame([crypto_row("Просто текст", "neutral")])
    out, rep = E.extend_training_set(train, data_root=tmp_path, protect={},
                                     sources={"goemotions_en": {}, "user_csvs": [str(user)]})
    assert list(out["source"]) == ["train", "goemotions_en", "goemotions_en", "user:mine"]
    assert labels_of(out, "I am so scared") == {"fear"}
    assert labels_of(out, "That is gross and annoying") == {"anger", "disgust"}
    bad = tmp_path / "bad.csv"
    bad.write_text("text,anger\nпривет,1\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match="missing column"):
        E.extend_training_set(train, data_root=tmp_path, protect={}, sources={"user_csvs": [str(bad)]})


def test_exact_duplicates_within_extension_and_against_train(izard_root: Path) -> None:
    user = izard_root / "dups.csv"
    pd.DataFrame([crypto_row("я так рад за тебя друг", "joy"),        # normalised copy of an izard row
                  crypto_row("Новая строка!", "surprise"),
                  crypto_row("новая строка", "surprise"),             # duplicate within the file
                  crypto_row("Текст из трейна.", "neutral")]).to_csv(user, index=False)
    train = pd.DataFrame([crypto_row("текст из трейна", "neutral")])
    out, rep = E.extend_training_set(train, data_root=izard_root, protect={},
                                     sources={"izard": {}, "user_csvs": [str(user)]})
    assert rep["sources"]["user:dups"]["dropped_exact_duplicates"] == 3
    assert rep["sources"]["user:dups"]["rows_kept"] == 1
    assert len(out) == 1 + 6 + 1


def test_unknown_options_raise(izard_root: Path) -> None:
    with pytest.raises(ValueError, match="unknown option"):
        E.extend_training_set(empty_train(), data_root=izard_root, sources={"izard": {"maping": {}}}, protect={})
    with pytest.raises(ValueError, match="unknown source"):
        E.extend_training_set(empty_train(), data_root=izard_root, sources={"izzard": {}}, protect={})
    with pytest.raises(ValueError, match="unknown leak option"):
        E.extend_training_set(empty_train(), data_root=izard_root, sources={}, protect={}, leak={"treshold": 0.5})


def test_izard_hub_load_failure_is_one_log_line(tmp_path: Path, monkeypatch, caplog) -> None:
    import datasets

    def boom(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'Djacon/ru-izard-emotions' on the Hub")

    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr(datasets, "load_dataset", boom)
    with caplog.at_level(logging.INFO, logger="emotions"):
        out, rep = E.extend_training_set(empty_train(), data_root=tmp_path, sources={"izard": {}}, protect={})
    lines = [r for r in caplog.records if "ru-izard-emotions" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None
    assert lines[0].getMessage().startswith(f"ru-izard-emotions: not found under {tmp_path} and loading ")
    assert lines[0].getMessage().endswith("; skipped") and len(out) == 0
