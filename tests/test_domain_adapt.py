"""Domain-adaptive MLM of the encoder (`mlm_epochs`): the adapt step itself and its use in transformer training."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors import safe_open

from emotions.data.labels import get_task
from emotions.models import read_model_card, train_model
from emotions.models.encoders import domain_adapt
from emotions.models.encoders.domain_adapt import (
    SUMMARY_FILE,
    adapt_encoder,
    read_summary,
)
from emotions.models.encoders.loading import load_encoder, load_tokenizer
from emotions.models.nn.tiny import build_tiny_encoder
from emotions.pipeline import steps

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TASK = get_task("cryptonite")
CORPUS = ["мама мыла раму каждый день", "кошка сидит на окне и смотрит во двор", "сегодня грустно и холодно",
          "ура мы победили в финале", "мне страшно идти домой одной", "какая гадость этот суп"]
FAST = {"encoder": "tiny", "tiny_vocab_size": 300, "tiny_hidden_size": 32, "tiny_layers": 1,
        "tiny_intermediate_size": 64, "head_layers": 0, "lr": 1e-3, "batch_size": 16, "epochs": 1, "patience": 0,
        "progress": False, "max_length": 32, "preprocess": {"asr_dictionary": False},
        "mlm_epochs": 1, "mlm_batch_size": 8, "mlm_lr": 1e-3}


def frame(texts: list[str], seed: int) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    rows = []
    for t in texts:
        lab = r.choice(TASK.labels)
        rows.append({"text": t, **{l: int(l == lab) for l in TASK.labels}})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def adapted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mlm")
    texts = CORPUS * 6
    src = build_tiny_encoder(texts, tmp / "src", vocab_size=200, hidden_size=32, num_layers=1, num_heads=2,
                             intermediate_size=64, seed=0)
    out = adapt_encoder(src, texts, tmp / "out", epochs=6, lr=3e-3, batch_size=8, max_length=32, seed=0,
                        progress=False)
    return src, out


def test_adapt_changes_weights_and_lowers_the_loss(adapted):
    src, out = adapted
    summary = read_summary(out)
    assert summary["epochs"] == 6 and summary["rows"] == len(CORPUS) * 6 and summary["seconds"] >= 0
    assert len(summary["loss_per_epoch"]) == 6
    assert summary["loss_last_epoch"] < summary["loss_first_epoch"]
    before, after = load_encoder(src).state_dict(), load_encoder(out).state_dict()
    assert set(before) == set(after)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert not torch.equal(before["embeddings.word_embeddings.weight"], after["embeddings.word_embeddings.weight"])


def test_adapted_folder_loads_like_the_original(adapted):
    src, out = adapted
    enc, tok = load_encoder(out), load_tokenizer(out)
    orig = load_encoder(src)
    assert type(enc) is type(orig) and enc.config.hidden_size == orig.config.hidden_size == 32
    assert tok.get_vocab() == load_tokenizer(src).get_vocab()
    from transformers import AutoModel
    _, info = AutoModel.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    with safe_open(str(src / "model.safetensors"), "pt") as a, safe_open(str(out / "model.safetensors"), "pt") as b:
        keys = set(a.keys())
        assert keys == set(b.keys())   # nothing of the MLM head saved, nothing dropped
        for key in sorted(k for k in keys if k.startswith("pooler.")):   # the MLM class has no pooler: kept as it was
            assert torch.equal(a.get_tensor(key), b.get_tensor(key))
    ids = tok(["мама мыла раму"], return_tensors="pt")
    with torch.no_grad():
        assert enc(**ids).last_hidden_state.shape[-1] == 32


def test_adapt_max_rows_and_empty_input(tmp_path, adapted):
    src, _ = adapted
    out = adapt_encoder(src, CORPUS * 4, tmp_path / "sub", epochs=1, batch_size=4, max_length=16, max_rows=5,
                        progress=False)
    assert read_summary(out)["rows"] == 5
    with pytest.raises(ValueError, match="no texts"):
        adapt_encoder(src, ["", "  "], tmp_path / "none", epochs=1, progress=False)


def test_training_with_mlm_records_the_summary(tmp_path):
    train_df = frame(CORPUS * 5, 1)
    tune_df = frame(["кошка грустно смотрит", "мы победили ура"] * 4, 2)
    params = {**FAST, "vocab_texts": ["тестовый текст без меток", "ещё один тестовый текст"]}
    model = train_model("transformer", train_df, tune_df, TASK, params, tmp_path / "model")
    history = json.loads((tmp_path / "model" / "history.json").read_text())
    card = read_model_card(tmp_path / "model")
    assert history["mlm"]["epochs"] == 1 and history["mlm"]["rows"] == len(set(CORPUS)) + 2
    assert card["training"]["mlm"] == history["mlm"] and card["params"]["mlm_epochs"] == 1
    assert model.history["mlm"]["loss_first_epoch"] > 0
    assert not (tmp_path / "model" / "encoder" / SUMMARY_FILE).exists()


def test_mlm_texts_are_train_and_test_only(tmp_path, monkeypatch):
    seen: list[list[str]] = []
    real = domain_adapt.adapt_encoder

    def spy(source, texts, out_dir, **kw):
        seen.append(list(texts))
        return real(source, texts, out_dir, **kw)

    monkeypatch.setattr(domain_adapt, "adapt_encoder", spy)
    holdout_only, tune_only, test_only = "секретный текст из holdout", "текст только из tune", "текст из теста"
    parts = {"train": frame(CORPUS * 3, 3), "tune": frame([tune_only, *CORPUS[:3]], 4),
             "test": pd.DataFrame({"text": [test_only, CORPUS[0]]}), "holdout": frame([holdout_only], 5)}
    params = {**FAST, "vocab_texts": steps.vocab_texts(parts)}
    train_model("transformer", parts["train"], parts["tune"], TASK, params, tmp_path / "model")
    assert len(seen) == 1
    texts = seen[0]
    assert holdout_only not in texts and tune_only not in texts
    assert test_only in texts and set(CORPUS) <= set(texts)
    assert len(texts) == len(set(texts))   # deduplicated


def test_mlm_off_by_default(tmp_path, monkeypatch):
    monkeypatch.setattr(domain_adapt, "adapt_encoder", lambda *a, **k: pytest.fail("MLM ran with mlm_epochs=0"))
    params = {**FAST, "mlm_epochs": 0}
    model = train_model("transformer", frame(CORPUS * 3, 6), None, TASK, params, tmp_path / "model")
    assert "mlm" not in model.history
