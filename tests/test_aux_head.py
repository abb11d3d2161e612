"""The 28 fine GoEmotions labels as a training-only auxiliary head (transformer option `aux_weight`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import emotions.data.extend as E
from emotions.augment import augment_training_set
from emotions.core.io import write_csv_atomic
from emotions.data.fine_labels import GOEMOTIONS_AUX_COLUMNS, as_nullable, attach_from_csv, aux_columns, aux_matrix
from emotions.data.labels import CRYPTONITE_LABELS, GOEMOTIONS_LABELS, get_task
from emotions.models import load_predictor, read_model_card, train_model
from emotions.models.nn.heads import ClassificationHead, EmotionClassifier
from emotions.models.nn.losses import AuxiliaryLoss, MultilabelLoss
from emotions.models.nn.optim import param_groups
from test_transformer_train import FAST, make_frame

L = CRYPTONITE_LABELS
CRYPTONITE = get_task("cryptonite")
FINE = {name: i for i, name in enumerate(GOEMOTIONS_LABELS)}


def write_goemotions(root, ekman: list[tuple], original: list[tuple]) -> None:
    g = root / "goemotions-en"
    g.mkdir(parents=True, exist_ok=True)
    (g / "ekman_train.tsv").write_text("".join(f"{t}\t{i}\t{c}\n" for t, i, c in ekman), encoding="utf-8")
    (g / "original_train.tsv").write_text("".join(f"{t}\t{i}\t{c}\n" for t, i, c in original), encoding="utf-8")


@pytest.fixture()
def extended(tmp_path):
    # the fine file lists the rows in another order and lacks id3: rows are joined by id, not by position
    write_goemotions(tmp_path,
                     [("I am so scared", "2", "id1"), ("Gross and annoying", "0,1", "id2"), ("Whatever", "4", "id3")],
                     [("Gross and annoying", f"{FINE['annoyance']},{FINE['disgust']}", "id2"),
                      ("I am so scared", f"{FINE['nervousness']}", "id1")])
    train = pd.DataFrame([{"text": "Мне страшно одному дома", **{l: int(l == "fear") for l in L}},
                          {"text": "Просто текст про стол", **{l: int(l == "neutral") for l in L}}])
    out, rep = E.extend_training_set(train, data_root=tmp_path, protect={}, sources={"goemotions_en": {}})
    return out, rep


def test_reader_attaches_fine_labels_by_id(extended):
    out, rep = extended
    assert aux_columns(out) == GOEMOTIONS_AUX_COLUMNS and len(GOEMOTIONS_AUX_COLUMNS) == 28
    assert list(out.columns[:len(L) + 2]) == ["text", *L, "source"]
    y = aux_matrix(out)
    by_text = dict(zip(out["text"], y))
    on = {t: {GOEMOTIONS_LABELS[j] for j in np.flatnonzero(row == 1)} for t, row in by_text.items()}
    assert on["I am so scared"] == {"nervousness"}
    assert on["Gross and annoying"] == {"annoyance", "disgust"}
    assert np.isnan(by_text["Whatever"]).all()                           # id without fine labels
    assert np.isnan(by_text["Мне страшно одному дома"]).all() and np.isnan(by_text["Просто текст про стол"]).all()
    assert rep["rows_with_aux_labels"] == 2 and rep["sources"]["goemotions_en"]["rows_with_aux_labels"] == 2
    assert out[L].dtypes.eq(np.int64).all()


def test_aux_columns_survive_csv_and_augmentation(extended, tmp_path):
    out, _ = extended
    write_csv_atomic(tmp_path / "train.csv", out)
    back = pd.read_csv(tmp_path / "train.csv", keep_default_na=False)    # how the stages read it: "" for missing
    assert (back.loc[back["source"] == "train", GOEMOTIONS_AUX_COLUMNS] == "").all().all()
    np.testing.assert_array_equal(aux_matrix(back), aux_matrix(out))
    aug, rep = augment_training_set(back, labels=L, params={"budget": {"fear": 2, "neutral": 2}, "methods": {
        "backtranslation": {"enabled": False}, "synonyms": {"enabled": False}, "asr_noise": {"enabled": True}}},
        seed=1, cache_dir=tmp_path)
    assert rep["rows_added"] > 0 and aux_columns(aug) == GOEMOTIONS_AUX_COLUMNS
    np.testing.assert_array_equal(aux_matrix(aug.iloc[:len(back)]), aux_matrix(out))
    assert np.isnan(aux_matrix(aug.iloc[len(back):])).all()                # variants of Russian rows: none
    # the multi-process CLI reads the labelled columns, then the aux ones back
    plain = back[["text", *L]]
    np.testing.assert_array_equal(aux_matrix(attach_from_csv(plain, tmp_path / "train.csv")), aux_matrix(out))


def test_loss_wrapper_masks_missing_aux_labels():
    main = MultilabelLoss()
    loss = AuxiliaryLoss(main, n_main=2, weight=0.5)
    logits = torch.tensor([[0.3, -1.0, 2.0, -0.5], [1.0, 0.2, 5.0, 7.0]])
    target = torch.tensor([[1.0, 0.0, 1.0, float("nan")], [0.0, 1.0, float("nan"), float("nan")]])
    expected_main = main(logits[:, :2], target[:, :2])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits[0, 2:3], target[0, 2:3])  # the one given entry
    assert torch.isclose(loss(logits, target), expected_main + 0.5 * bce)
    # eval-mode logits (main columns only): just the main loss, whatever the target's width
    assert torch.isclose(loss(logits[:, :2], target), expected_main)
    assert torch.isclose(loss(logits[:, :2], target[:, :2]), expected_main)
    # no aux label in the batch: the aux term is 0, and no NaN reaches the gradient
    none = target.clone()
    none[:, 2:] = float("nan")
    x = logits.clone().requires_grad_(True)
    value = loss(x, none)
    value.backward()
    assert torch.isclose(value, expected_main) and torch.isfinite(x.grad).all() and (x.grad[:, 2:] == 0).all()


def test_aux_head_in_training_mode_only_and_head_lr():
    class Enc(torch.nn.Module):
        config = type("C", (), {"hidden_size": 8, "num_hidden_layers": 1})()

        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(10, 8)

        def forward(self, input_ids, attention_mask):
            return type("O", (), {"last_hidden_state": self.emb(input_ids)})()

    model = EmotionClassifier(Enc(), ClassificationHead(8, 7), aux_head=torch.nn.Linear(8, 28))
    ids, mask = torch.ones(3, 4, dtype=torch.long), torch.ones(3, 4, dtype=torch.long)
    assert model.train()(ids, mask).shape == (3, 35) and model.eval()(ids, mask).shape == (3, 7)
    groups = param_groups(model, lr=1e-5, weight_decay=0.0, head_lr=1e-3)
    head_params = {id(p) for g in groups if g["lr"] == 1e-3 for p in g["params"]}
    assert {id(p) for p in model.aux_head.parameters()} <= head_params
    model.aux_head = None
    assert not any(k.startswith("aux_head") for k in model.state_dict())




@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """Training rows, half of them with fine labels (as the stages read them from CSV: "" where missing)."""
    train, tune = make_frame(CRYPTONITE, 200, 1, 0.15), make_frame(CRYPTONITE, 80, 2, 0.15)
    r = np.random.default_rng(0)
    aux = (r.random((len(train), 28)) < 0.1).astype(int)
    aux[:, FINE["nervousness"]] = train["fear"]
    aux[:, FINE["annoyance"]] = train["anger"]
    with_aux = train.assign(**{c: aux[:, j] for j, c in enumerate(GOEMOTIONS_AUX_COLUMNS)})
    with_aux.loc[1::2, GOEMOTIONS_AUX_COLUMNS] = np.nan
    path = tmp_path_factory.mktemp("csv") / "train.csv"
    write_csv_atomic(path, as_nullable(with_aux))
    return train, pd.read_csv(path, keep_default_na=False), tune


def fit(train, tune, out, **params):
    return train_model("transformer", train, tune, CRYPTONITE, {**FAST, "epochs": 2, **params}, out)


@pytest.fixture(scope="module")
def runs(frames, tmp_path_factory, one_torch_thread):
    plain, with_aux, tune = frames
    root = tmp_path_factory.mktemp("runs")
    return {"old": (fit(plain, tune, root / "old"), root / "old"),
            "zero": (fit(with_aux, tune, root / "zero"), root / "zero"),
            "aux": (fit(with_aux, tune, root / "aux", aux_weight=0.5), root / "aux")}


def encoder_state(predictor) -> dict:
    return {k: v.detach().cpu() for k, v in predictor.model.encoder.state_dict().items()}


def test_aux_weight_zero_is_the_old_behaviour(runs):
    (old, _), (zero, zero_dir) = runs["old"], runs["zero"]
    a, b = encoder_state(old), encoder_state(zero)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [e["train_loss"] for e in old.history["epochs"]] == [e["train_loss"] for e in zero.history["epochs"]]
    assert "aux" not in zero.history and "aux" not in read_model_card(zero_dir)["training"]


def test_aux_training_changes_encoder_and_is_recorded(runs, frames):
    (zero, _), (aux, aux_dir) = runs["zero"], runs["aux"]
    a, b = encoder_state(zero), encoder_state(aux)
    assert any(not torch.equal(a[k], b[k]) for k in a)
    info = {"labels": GOEMOTIONS_LABELS, "rows_with_aux_labels": 100, "aux_weight": 0.5,
            "removed_after_training": True}
    assert aux.history["aux"] == info and read_model_card(aux_dir)["training"]["aux"] == info
    assert read_model_card(aux_dir)["params"]["aux_weight"] == 0.5
    assert all(np.isfinite(e["train_loss"]) and np.isfinite(e["tune_loss"]) for e in aux.history["epochs"])


def test_saved_model_has_no_aux_weights_and_predicts_seven_columns(runs, frames):
    (_, zero_dir), (aux, aux_dir) = runs["zero"], runs["aux"]
    assert aux.model.aux_head is None
    head, head_zero = load_file(str(aux_dir / "head.safetensors")), load_file(str(zero_dir / "head.safetensors"))
    assert {k: v.shape for k, v in head.items()} == {k: v.shape for k, v in head_zero.items()}
    loaded = load_predictor(aux_dir)
    texts = frames[2]["text"].tolist()[:10]
    proba = loaded.predict_proba(texts)
    assert proba.shape == (10, 7)
    np.testing.assert_allclose(proba, aux.predict_proba(texts), atol=1e-5)
