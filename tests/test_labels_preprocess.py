import numpy as np
import pytest

from emotions.data import labels as L
from emotions.data.preprocess import (PreprocessConfig, apply_asr_dictionary, demojize, load_asr_dictionary,
                                 normalize_asr, preprocess_text)


def test_every_goemotions_label_maps_to_an_ekman_label():
    assert set(L.GOEMOTIONS_TO_EKMAN) == set(L.GOEMOTIONS_LABELS)
    assert set(L.GOEMOTIONS_TO_EKMAN.values()) == set(L.CRYPTONITE_LABELS)


def test_izard_mapping_one_to_one_and_extras():
    y = np.array([[1, 0, 0, 0, 0, 0, 0, 0, 0, 0],    # neutral
                  [0, 0, 0, 0, 1, 0, 0, 0, 0, 0],    # enthusiasm -> joy
                  [0, 0, 0, 0, 0, 0, 0, 0, 1, 1]])   # guilt + shame -> sadness
    out = L.map_label_matrix(y, L.IZARD_LABELS, L.CRYPTONITE_LABELS, L.IZARD_TO_CRYPTONITE_DEFAULT)
    names = [[L.CRYPTONITE_LABELS[j] for j in np.flatnonzero(r)] for r in out]
    assert names == [["neutral"], ["joy"], ["sadness"]]
    dropped = L.map_label_matrix(y, L.IZARD_LABELS, L.CRYPTONITE_LABELS,
                                 {**L.IZARD_TO_CRYPTONITE_DEFAULT, "guilt": None, "shame": None})
    assert dropped[2].sum() == 0


def test_cedr_and_twitter_label_sets():
    assert L.CEDR_LABELS == ["no_emotion", "joy", "sadness", "surprise", "fear", "anger"]
    assert L.CEDR_TO_CRYPTONITE["no_emotion"] == "neutral"
    assert set(L.CEDR_TO_CRYPTONITE.values()) <= set(L.CRYPTONITE_LABELS)
    assert L.TWITTER_FILE_ALIASES["happy"] in L.TWITTER_LABELS


def test_mapping_to_unknown_target_is_an_error():
    with pytest.raises(ValueError, match="not one of"):
        L.map_label_matrix(np.ones((1, 1)), ["a"], ["b"], {"a": "c"})


def test_get_task():
    assert L.get_task("emotions-en").multilabel is False
    with pytest.raises(ValueError, match="known tasks"):
        L.get_task("nope")


def test_normalize_asr():
    assert normalize_asr("Ну, [ИМЯ] — Ёлки-палки!!! Что?!") == "ну елки палки что"
    assert normalize_asr("  много   пробелов\n") == "много пробелов"


def test_demojize_russian_words():
    out = demojize("класс 😂")
    assert "😂" not in out and out.startswith("класс ") and "_" not in out


def test_asr_dictionary_whole_words_longest_first():
    assert apply_asr_dictionary("ыетс уже ж сделано") == "это уже сделано"
    assert apply_asr_dictionary("каменщик") == "каменщик"   # no replacement inside a word


def test_user_asr_dictionary_extends_and_is_validated(tmp_path):
    good = tmp_path / "mine.tsv"
    good.write_text("# мой словарь\nпривед\tпривет\n", encoding="utf-8")
    assert load_asr_dictionary([good])["привед"] == "привет"
    assert preprocess_text("Привед!", PreprocessConfig(asr_dictionary_paths=(str(good),))) == "привет"
    bad = tmp_path / "bad.tsv"
    bad.write_text("нет табуляции\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1: expected WRONG<TAB>RIGHT"):
        load_asr_dictionary([bad])


def test_preprocess_makes_train_text_look_like_test():
    train_like = "Я так рада за тебя, [NAME]!!! ❤️ Ещё бы."
    out = preprocess_text(train_like)
    assert out == out.lower() and not any(c in out for c in ",.!?[]") and "ё" not in out


def test_preprocess_config_round_trip_and_unknown_option():
    cfg = PreprocessConfig(asr_dictionary_paths=("x.tsv",))
    assert PreprocessConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown preprocess option"):
        PreprocessConfig.from_dict({"lowercase": True})
