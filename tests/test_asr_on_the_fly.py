"""Transformer option asr_noise_p: fresh ASR-style renderings of the Russian training rows every epoch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emotions.data.labels import get_task
from emotions.data.preprocess import PreprocessConfig, preprocess_texts
from emotions.models import train_model
from emotions.models.asr_epochs import AsrEpochNoise, is_russian
from emotions.models.encoders.loading import load_tokenizer
from emotions.models.nn.data import TokenizedDataset
from emotions.models.nn.tiny import build_tiny_encoder
from emotions.models.nn.trainer import Trainer

SPEC = get_task("cryptonite")
LABELS = list(SPEC.labels)
RU = ["я очень рад тебя видеть сегодня вечером дома", "это ужасно и противно что они сделали",
      "мне страшно одному дома когда темно", "какая грустная история про нашего старого друга",
      "вот это да не ожидал такого подарка", "стол стоит у окна в большой комнате"]
EN = ["i am so happy to see you tonight", "this is awful and disgusting behaviour",
      "what a sad story about our old friend"]
TEXTS = [*RU, *EN] * 4
PREP = PreprocessConfig.from_dict({"asr_dictionary": False})
FAST = {"encoder": "tiny", "tiny_vocab_size": 300, "head_layers": 0, "lr": 1e-3, "batch_size": 8, "epochs": 2,
        "patience": 0, "progress": False, "max_length": 32, "preprocess": {"asr_dictionary": False}}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    path = build_tiny_encoder(preprocess_texts(TEXTS, PREP), tmp_path_factory.mktemp("tiny"), vocab_size=300,
                              hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    return load_tokenizer(path, True)


def dataset(tokenizer) -> TokenizedDataset:
    return TokenizedDataset.from_texts(tokenizer, preprocess_texts(TEXTS, PREP), 32)


def epochs_seen(tokenizer, p: float, seed: int, epochs: int = 2) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    ds = dataset(tokenizer)
    clean = [x.copy() for x in ds.input_ids]
    hook = AsrEpochNoise(TEXTS, PREP, tokenizer, 32, p, seed)
    seen = []
    for epoch in range(1, epochs + 1):
        assert hook(epoch, ds) == {"asr_rendered_rows": round(p * 4 * len(RU))}
        assert ds.lengths.tolist() == [len(x) for x in ds.input_ids]
        seen.append([x.copy() for x in ds.input_ids])
    return clean, seen


def test_russian_rows_are_detected():
    assert [is_russian(t) for t in TEXTS[:len(RU) + len(EN)]] == [True] * len(RU) + [False] * len(EN)
    assert not is_russian("") and not is_russian("123 !!") and is_russian("ну ok, ладно")


def test_russian_rows_change_every_epoch_and_english_rows_never(tokenizer):
    clean, (first, second) = epochs_seen(tokenizer, 1.0, seed=3)
    ru = [i for i, t in enumerate(TEXTS) if is_russian(t)]
    en = [i for i in range(len(TEXTS)) if i not in ru]
    assert all(not np.array_equal(first[i], clean[i]) for i in ru)
    assert sum(not np.array_equal(first[i], second[i]) for i in ru) >= 0.8 * len(ru)
    assert all(np.array_equal(first[i], clean[i]) and np.array_equal(second[i], clean[i]) for i in en)


def test_same_seed_same_renderings_other_seed_others(tokenizer):
    _, a = epochs_seen(tokenizer, 1.0, seed=3)
    _, b = epochs_seen(tokenizer, 1.0, seed=3)
    _, c = epochs_seen(tokenizer, 1.0, seed=4)
    assert all(np.array_equal(x, y) for ea, eb in zip(a, b) for x, y in zip(ea, eb))
    assert any(not np.array_equal(x, y) for x, y in zip(a[0], c[0]))


def test_a_share_renders_that_many_rows_and_restores_the_others(tokenizer):
    clean, seen = epochs_seen(tokenizer, 0.5, seed=3, epochs=3)
    hook = AsrEpochNoise(TEXTS, PREP, tokenizer, 32, 0.5, 3)
    for epoch, ids in enumerate(seen, 1):
        rows = set(hook.rows_for(epoch).tolist())
        assert len(rows) == 12 and all(is_russian(TEXTS[i]) for i in rows)
        assert all(np.array_equal(ids[i], clean[i]) for i in range(len(TEXTS)) if i not in rows)


def frame(texts, seed):
    r = np.random.default_rng(seed)
    y = np.eye(len(LABELS), dtype=int)[r.integers(len(LABELS), size=len(texts))]
    return pd.DataFrame({"text": texts, **{lab: y[:, j] for j, lab in enumerate(LABELS)}})


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_training_renders_each_epoch_or_leaves_the_dataset_alone(tokenizer, monkeypatch, tmp_path, p):
    before, after, calls = [], [], []
    real_fit, real_call = Trainer.fit, AsrEpochNoise.__call__

    def fit(self):
        before.append([x.copy() for x in self.train_ds.input_ids])
        out = real_fit(self)
        after.append([x.copy() for x in self.train_ds.input_ids])
        return out

    def call(self, epoch, ds):
        out = real_call(self, epoch, ds)
        calls.append((epoch, [x.copy() for x in ds.input_ids]))
        return out

    monkeypatch.setattr(Trainer, "fit", fit)
    monkeypatch.setattr(AsrEpochNoise, "__call__", call)
    model = train_model("transformer", frame(TEXTS, 1), frame(TEXTS[:9], 2), SPEC, {**FAST, "asr_noise_p": p},
                        tmp_path)
    history = model.history["epochs"]
    ru = [i for i, t in enumerate(TEXTS) if is_russian(t)]
    if p == 0:
        assert calls == [] and all("asr_rendered_rows" not in e for e in history)
        assert all(np.array_equal(x, y) for x, y in zip(before[0], after[0]))
        return
    assert [e["asr_rendered_rows"] for e in history] == [len(ru), len(ru)]
    assert [c[0] for c in calls] == [1, 2]
    (_, first), (_, second) = calls
    assert sum(not np.array_equal(first[i], second[i]) for i in ru) >= 0.8 * len(ru)
    assert all(np.array_equal(first[i], before[0][i]) and np.array_equal(second[i], before[0][i])
               for i in range(len(TEXTS)) if i not in ru)
