"""Each bad-input case gives an error naming the file, the row and the problem."""

from pathlib import Path

import pytest

from emotions.data.readers import (DataValidationError, load_cedr_file, load_goemotions_tsv, load_labeled_csv,
                           load_twitter, parse_cedr_labels)
from emotions.data.labels import CRYPTONITE_LABELS, GOEMOTIONS_EKMAN_LABELS

HEADER = "text," + ",".join(CRYPTONITE_LABELS)


def write(tmp_path: Path, body: str, name: str = "valid.csv", encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_bytes(body.encode(encoding) if isinstance(body, str) else body)
    return p


def good_rows(n: int = 3) -> str:
    return "\n".join(f"Текст номер {i},0,0,0,1,0,0,0" for i in range(n))


def test_good_file_loads_with_int_labels(tmp_path):
    df = load_labeled_csv(write(tmp_path, f"{HEADER}\n{good_rows()}\n"), CRYPTONITE_LABELS)
    assert list(df.columns) == ["text", *CRYPTONITE_LABELS]
    assert df["joy"].tolist() == [1, 1, 1]
    assert str(df["joy"].dtype) == "int64"


def test_missing_file(tmp_path):
    with pytest.raises(DataValidationError, match="file not found"):
        load_labeled_csv(tmp_path / "nope.csv", CRYPTONITE_LABELS)


def test_missing_column_named(tmp_path):
    header = "text," + ",".join(CRYPTONITE_LABELS[:-1])
    p = write(tmp_path, f"{header}\nпривет,0,0,0,1,0,0\n")
    with pytest.raises(DataValidationError, match=r"valid\.csv: missing column\(s\) \['neutral'\]"):
        load_labeled_csv(p, CRYPTONITE_LABELS)


def test_extra_column_named(tmp_path):
    p = write(tmp_path, f"{HEADER},id\nпривет,0,0,0,1,0,0,0,7\n")
    with pytest.raises(DataValidationError, match=r"unexpected column\(s\) \['id'\]"):
        load_labeled_csv(p, CRYPTONITE_LABELS)


@pytest.mark.parametrize("value", ["2", "-1", "yes", "0.5", ""])
def test_label_not_binary_names_row_and_column(tmp_path, value):
    p = write(tmp_path, f"{HEADER}\n{good_rows(2)}\nплохо,0,0,{value},0,0,0,0\n")
    with pytest.raises(DataValidationError) as e:
        load_labeled_csv(p, CRYPTONITE_LABELS)
    assert e.value.row == 3 and "'fear' must be 0 or 1" in str(e.value) and "valid.csv, row 3" in str(e.value)


@pytest.mark.parametrize("text", ['""', '"   "'])
def test_empty_text(tmp_path, text):
    p = write(tmp_path, f"{HEADER}\n{good_rows(1)}\n{text},0,0,0,1,0,0,0\n")
    with pytest.raises(DataValidationError, match="row 2: empty or missing text"):
        load_labeled_csv(p, CRYPTONITE_LABELS)


def test_non_utf8_names_line(tmp_path):
    body = f"{HEADER}\n{good_rows(2)}\n".encode() + "Плохая кодировка,0,0,0,1,0,0,0\n".encode("cp1251")
    p = write(tmp_path, body)
    with pytest.raises(DataValidationError, match=r"not valid UTF-8 .*line 4"):
        load_labeled_csv(p, CRYPTONITE_LABELS)


def test_wrong_row_count(tmp_path):
    p = write(tmp_path, f"{HEADER}\n{good_rows(3)}\n", name="test_without_answers.csv")
    with pytest.raises(DataValidationError, match="has 3 rows, expected 8742"):
        load_labeled_csv(p, CRYPTONITE_LABELS, expected_rows=8742)


def test_empty_file(tmp_path):
    with pytest.raises(DataValidationError, match="file is empty"):
        load_labeled_csv(write(tmp_path, ""), CRYPTONITE_LABELS)


def test_duplicates_only_warn(tmp_path, caplog):
    p = write(tmp_path, f"{HEADER}\nодно и то же,0,0,0,1,0,0,0\nодно и то же,0,0,0,1,0,0,0\n")
    df = load_labeled_csv(p, CRYPTONITE_LABELS)
    assert len(df) == 2
    assert "1 duplicate text(s), first at row 2" in caplog.text


def test_bom_is_accepted(tmp_path):
    p = write(tmp_path, "\ufeff" + f"{HEADER}\n{good_rows(1)}\n")
    assert load_labeled_csv(p, CRYPTONITE_LABELS).shape == (1, 8)


@pytest.mark.parametrize("value,ids", [("[]", []), ("[2]", [2]), ("[1 4]", [1, 4]), (" [0  3] ", [0, 3])])
def test_parse_cedr_labels(value, ids):
    assert parse_cedr_labels(value) == ids


@pytest.mark.parametrize("value", ["2", "[5]", "[a]", "1 4"])
def test_parse_cedr_labels_rejects(value):
    with pytest.raises(ValueError):
        parse_cedr_labels(value)


def test_cedr_file_no_emotion_and_bad_row(tmp_path):
    p = write(tmp_path, "text,labels,source\nтихо,[],lj\nура и ой,[0 2],twitter\n", "train.csv")
    df = load_cedr_file(p)
    assert df[["no_emotion", "joy", "sadness", "surprise", "fear", "anger"]].to_numpy().tolist() == [
        [1, 0, 0, 0, 0, 0], [0, 1, 0, 1, 0, 0]]
    bad = write(tmp_path, "text,labels,source\nтихо,[],lj\nой,[7],lj\n", "bad.csv")
    with pytest.raises(DataValidationError, match="row 2: label ids must be in 0..4"):
        load_cedr_file(bad)


def test_goemotions_tsv(tmp_path):
    p = write(tmp_path, "I am happy\t3\tid1\nWow, gross\t1,6\tid2\n", "ekman_train.tsv")
    df = load_goemotions_tsv(p, GOEMOTIONS_EKMAN_LABELS)
    assert df.loc[1, ["disgust", "surprise"]].tolist() == [1, 1] and df.loc[0, "joy"] == 1
    bad = write(tmp_path, "ok\t3\tid1\nbad\t9\tid2\n", "bad.tsv")
    with pytest.raises(DataValidationError, match="row 2"):
        load_goemotions_tsv(bad, GOEMOTIONS_EKMAN_LABELS)


def test_twitter_aliases_and_unknown(tmp_path):
    p = write(tmp_path, "Text,Emotion\ni feel great,happy\ni am scared,fear\n", "emotions.csv")
    assert load_twitter(p)["label"].tolist() == ["joy", "fear"]
    bad = write(tmp_path, "Text,Emotion\ni feel great,happy\nhmm,boredom\n", "bad.csv")
    with pytest.raises(DataValidationError, match="row 2: unknown emotion 'boredom'"):
        load_twitter(bad)
