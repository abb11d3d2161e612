"""The hub model families a connected user picks, proven offline with tiny random models of the same classes.

RoBERTa / XLM-RoBERTa encoders (`<s> ... </s>` framing, pad id 1, no token types, positions offset by
pad id + 1) through training with the custom head, save/load, ONNX export and the service; and MarianMT
back-translation through `generate` and the on-disk cache. Built locally by `emotions.models.nn.tiny`.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from emotions.augment.backtranslate import BackTranslator, MarianTranslator
from emotions.data.labels import get_task
from emotions.models import load_predictor, read_model_card, train_model
from emotions.models.nn.tiny import build_tiny_encoder, build_tiny_marian

from test_transformer_train import make_frame

CRYPTONITE = get_task("cryptonite")
POSITIONS = 24                      # the tiny encoders' longest input, in tokens (shorter than max_length below)
PARAMS = {"head_layers": 1, "head_hidden": 16, "lr": 2e-3, "batch_size": 16, "epochs": 3, "patience": 0,
          "progress": False, "max_length": 64, "preprocess": {"asr_dictionary": False}, "prune_vocab": False}

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              # MarianTokenizer recommends sacremoses, which only matters for other languages' punctuation
              pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses")]


@pytest.fixture(scope="module")
def data():
    return make_frame(CRYPTONITE, 240, 11, 0.15), make_frame(CRYPTONITE, 80, 12, 0.15)


@pytest.fixture(scope="module", params=["roberta", "xlm-roberta"])
def trained(request, data, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    texts = data[0]["text"].tolist()
    encoder = build_tiny_encoder(texts, root / "encoder", arch=request.param, vocab_size=300, hidden_size=32,
                                 num_layers=1, num_heads=2, intermediate_size=64, max_position=POSITIONS,
                                 tokenizer_kind="unigram" if request.param == "xlm-roberta" else "wordpiece")
    pooling = "cls" if request.param == "roberta" else "mean"
    run = root / "run"
    model = train_model("transformer", *data, CRYPTONITE, {**PARAMS, "encoder": str(encoder), "pooling": pooling},
                        run / "model")
    (run / "data").mkdir()
    data[1].to_csv(run / "data" / "holdout.csv", index=False)
    return request.param, encoder, run, model


def test_roberta_style_tokenizer_and_config(trained):
    arch, encoder, _, model = trained
    config = json.loads((encoder / "config.json").read_text())
    assert config["model_type"] == arch and config["pad_token_id"] == 1
    assert config["max_position_embeddings"] == POSITIONS + 2          # positions start after the padding index
    enc = model.tokenizer(["злой бесит ярость сегодня завтра дом", "ну"], padding=True)
    assert "token_type_ids" not in enc                                # RoBERTa has no token types
    first, second = enc["input_ids"]
    assert first[0] == 0 and first[-1] == 2 and second[-1] == 1       # <s> ... </s>, padded with <pad> = 1


def test_training_with_the_custom_head_learns_and_clamps_the_length(trained, data):
    arch, _, run, model = trained
    card = read_model_card(run / "model")
    assert card["transformer"]["encoder_class"].lower().startswith(arch.replace("-", ""))
    assert model.max_length == POSITIONS                               # 64 asked, 24 positions available
    history = json.loads((run / "model" / "history.json").read_text())["epochs"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    long_text = " ".join(["злой бесит ярость"] * 60)                    # far over the positions: truncated, no crash
    assert model.predict_proba([long_text]).shape == (1, len(CRYPTONITE.labels))


def test_save_load_round_trip(trained, data):
    _, _, run, model = trained
    again = load_predictor(run / "model")
    texts = data[1]["text"].tolist()[:20]
    np.testing.assert_allclose(again.predict_proba(texts), model.predict_proba(texts), atol=1e-6)
    assert type(again.model.encoder).__name__ == type(model.model.encoder).__name__


def test_onnx_export_parity_and_the_service(trained):
    pytest.importorskip("onnxruntime")
    from fastapi.testclient import TestClient

    from emotions.serving.export import export_onnx
    from emotions.serving.service import create_app

    _, _, run, model = trained
    report = export_onnx(run, threads=1, int8=False)
    assert report["passed"] and report["token_ids_match"] == 1.0 and report["onnx"]["max_abs_diff"] <= 1e-4
    for backend in ("torch", "onnx"):
        with TestClient(create_app(run, backend, threads=1)) as client:
            text = "мне страшно я боюсь"
            r = client.post("/predict", json={"text": text})
            assert r.status_code == 200, r.text
            want = model.predict_proba([text])[0]
            np.testing.assert_allclose([r.json()["scores"][l] for l in model.labels], want, atol=1e-4)


# --- MarianMT back-translation -----------------------------------------------------------------------
RU = ["я так рад тебя видеть", "это просто ужасно", "мне очень страшно", "какая гадость", "ну и ладно",
      "вот это да", "мне грустно сегодня", "спасибо большое"]
EN = ["i am so glad to see you", "this is just awful", "i am very scared", "how disgusting", "oh well",
      "wow", "i am sad today", "thank you very much"]


@pytest.fixture(scope="module")
def marian(tmp_path_factory):
    root = tmp_path_factory.mktemp("marian")
    return (build_tiny_marian(RU * 4, EN * 4, root / "opus-mt-ru-en", seed=1),
            build_tiny_marian(EN * 4, RU * 4, root / "opus-mt-en-ru", seed=2))


def test_marian_generate_uses_its_key_value_cache(marian):
    from transformers import MarianMTModel, MarianTokenizer

    tok, model = MarianTokenizer.from_pretrained(marian[0]), MarianMTModel.from_pretrained(marian[0]).eval()
    batch = tok(RU[:3], return_tensors="pt", padding=True)
    with torch.inference_mode():
        cached = model.generate(**batch, max_length=12, num_beams=1, use_cache=True)
        plain = model.generate(**batch, max_length=12, num_beams=1, use_cache=False)
    assert torch.equal(cached, plain)                                  # the cache changes speed, not results


def test_back_translation_through_marian_and_the_cache(marian, tmp_path):
    def translators():
        return (MarianTranslator(marian[0], max_length=16, allow_download=False),
                MarianTranslator(marian[1], max_length=16, allow_download=False))

    forward, backward = translators()
    first = BackTranslator(forward, backward, tmp_path)(RU)
    assert len(first) == len(RU) and forward._model is not None
    assert first == BackTranslator(*translators(), tmp_path)(RU)       # the same texts again, from the cache
    fresh_forward, fresh_backward = translators()
    again = BackTranslator(fresh_forward, fresh_backward, tmp_path)
    again(RU)
    assert again.forward.model_calls == 0 and again.backward.model_calls == 0
    assert fresh_forward._model is None and fresh_backward._model is None   # models never even loaded
