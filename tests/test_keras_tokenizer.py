"""Keras-style tokenizer and pad_sequences."""

from __future__ import annotations

import numpy as np
import pytest

from emotions.models.keras_tokenizer import (KERAS_FILTERS, OOV_INDEX, KerasTokenizer, pad_sequences,
                                      text_to_word_sequence)

TEXTS = ["The cat sat.", "the cat ran!", "A dog ran, the dog sat", "cat"]
# counts: the 3, cat 3, sat 2, ran 2, dog 2, a 1  (ties keep first-seen order)


def test_text_to_word_sequence_lowercases_and_filters():
    assert text_to_word_sequence("Hello, World!! (yes)\tno\n") == ["hello", "world", "yes", "no"]
    assert text_to_word_sequence("Don't stop", lower=False) == ["Don't", "stop"]  # apostrophe is kept, as in Keras
    assert "'" not in KERAS_FILTERS


def test_index_by_frequency_with_pad_and_oov():
    tok = KerasTokenizer().fit_on_texts(TEXTS)
    assert tok.word_index["<OOV>"] == OOV_INDEX == 1
    assert [tok.word_index[w] for w in ["the", "cat", "sat", "ran", "dog", "a"]] == [2, 3, 4, 5, 6, 7]
    assert tok.vocab_size == 8
    assert tok.document_count == 4


def test_num_words_cut_maps_rare_words_to_oov():
    tok = KerasTokenizer(num_words=4).fit_on_texts(TEXTS)   # indices 0..3 used: pad, OOV, the, cat
    assert tok.vocab_size == 4
    assert set(tok.vocabulary()) == {"<OOV>", "the", "cat"}
    assert tok.texts_to_sequences(["the cat sat on a zebra"]) == [[2, 3, 1, 1, 1, 1]]
    # num_words larger than the vocabulary: vocab_size is the real size
    assert KerasTokenizer(num_words=1000).fit_on_texts(TEXTS).vocab_size == 8


def test_unfitted_and_bad_arguments():
    with pytest.raises(RuntimeError, match="not fitted"):
        KerasTokenizer().texts_to_sequences(["x"])
    with pytest.raises(ValueError, match="num_words"):
        KerasTokenizer(num_words=1)


def test_pad_sequences_post_and_pre():
    seqs = [[1, 2, 3, 4], [5], []]
    np.testing.assert_array_equal(pad_sequences(seqs, maxlen=3),
                                  [[1, 2, 3], [5, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(pad_sequences(seqs, maxlen=3, padding="pre", truncating="pre"),
                                  [[2, 3, 4], [0, 0, 5], [0, 0, 0]])
    assert pad_sequences(seqs).shape == (3, 4)
    assert pad_sequences(seqs).dtype == np.int64
    with pytest.raises(ValueError):
        pad_sequences(seqs, padding="middle")


def test_json_round_trip(tmp_path):
    tok = KerasTokenizer(num_words=6, lower=True).fit_on_texts(TEXTS + ["Ёлка и ёж"])
    path = tok.save(tmp_path / "tokenizer.json")
    back = KerasTokenizer.load(path)
    probe = ["The dog sat on ЁЛКА", "unknown words only", ""]
    assert back.texts_to_sequences(probe) == tok.texts_to_sequences(probe)
    assert back.vocab_size == tok.vocab_size and back.vocabulary() == tok.vocabulary()
    assert KerasTokenizer.from_json(tok.to_json()).to_dict() == back.to_dict()
    with pytest.raises(ValueError, match="not a saved KerasTokenizer"):
        KerasTokenizer.from_dict({"format": "other"})
    with pytest.raises(FileNotFoundError):
        KerasTokenizer.load(tmp_path / "missing.json")
