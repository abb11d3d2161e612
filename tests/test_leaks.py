"""Duplicate and near-copy detection on crafted cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from emotions.data.extend import extend_training_set
from emotions.data.labels import CRYPTONITE_LABELS, IZARD_LABELS
from emotions.data.leaks import DEFAULT_NEAR_COPY_THRESHOLD, duplicate_mask, near_copy_mask, nearest_protected

VALID = [
    "Даже если бы это оказалось правдой, кто согласился бы пить таблетки, от которых так резко скачет настроение?",
    "Я постоянно хочу есть. Не понимаю, что такое сытость. Сколько бы я ни съел.",
    "Понятно.",
]
TEST = ["я хочу сказать мне нравится запах бензина на гонках"]
PARAPHRASES = [  # other wordings of the protected sentences (as ru-izard holds other translations)
    "Даже если бы это было правдой, кто согласился бы пить таблетки, от которых настроение так резко скачет",
    "Я постоянно хочу есть. Не знаю, что такое сытость. Сколько бы я ни съел",
    "Я хочу сказать, что мне нравится запах бензина на гонках",
]
UNRELATED = [
    "Сегодня в парке было много людей с собаками и велосипедами",
    "Это серьезно, но не настолько, чтобы лига отстраняла игроков. А они продолжают играть, понятно.",
]


def test_duplicate_mask_normalised() -> None:
    texts = ["Привет, мир!", "привет мир", "Другое", "ПРИВЕТ — МИР"]
    assert duplicate_mask(texts).tolist() == [False, True, False, True]
    assert duplicate_mask(["другое!"], against=texts).tolist() == [True]


def test_paraphrase_removed_unrelated_kept() -> None:
    protected = VALID + TEST
    mask, match = near_copy_mask(PARAPHRASES + UNRELATED, protected)
    assert mask.tolist() == [True, True, True, False, False]
    assert match.index[:3].tolist() == [0, 1, 3]
    assert (match.similarity[:3] >= DEFAULT_NEAR_COPY_THRESHOLD).all()


def test_length_gate_and_chunking() -> None:
    # a short phrase inside a long different comment: high cosine, but not a copy
    plain = nearest_protected(UNRELATED[1:], ["Серьезно"], min_length_ratio=0.0)
    gated = nearest_protected(UNRELATED[1:], ["Серьезно"])
    assert plain.similarity[0] > 0 and gated.similarity[0] == 0 and gated.index[0] == -1
    a = nearest_protected(PARAPHRASES + UNRELATED, VALID + TEST, chunk_size=2)
    b = nearest_protected(PARAPHRASES + UNRELATED, VALID + TEST, chunk_size=1000)
    assert np.allclose(a.similarity, b.similarity) and (a.index == b.index).all()


def test_extension_drops_near_copies_and_reports_examples(tmp_path: Path) -> None:
    path = tmp_path / "ru-izard-emotions" / "train.csv"
    path.parent.mkdir(parents=True)
    rows = [{"text": t, **{l: int(l == "sadness") for l in IZARD_LABELS}} for t in PARAPHRASES + UNRELATED]
    pd.DataFrame(rows).to_csv(path, index=False)
    train = pd.DataFrame([{"text": "какой-то текст", **{l: int(l == "joy") for l in CRYPTONITE_LABELS}}])
    out, rep = extend_training_set(train, data_root=tmp_path, sources={"izard": {"splits": ["train"]}},
                                   protect={"valid": VALID, "test": TEST})
    r = rep["sources"]["izard"]
    assert r["dropped_near_copies"] == 3 and r["rows_kept"] == 2
    assert set(out["text"]) == {"какой-то текст", *UNRELATED}
    ex = r["near_copy_examples"][0]
    assert ex["protected_text"] in VALID + TEST and ex["similarity"] >= DEFAULT_NEAR_COPY_THRESHOLD
    assert {e["protected_part"] for e in r["near_copy_examples"]} == {"valid", "test"}
    # leak control off: everything kept
    out, rep = extend_training_set(train, data_root=tmp_path, sources={"izard": {"splits": ["train"]}},
                                   protect={"valid": VALID, "test": TEST}, leak={"enabled": False})
    assert rep["sources"]["izard"]["rows_kept"] == 5
