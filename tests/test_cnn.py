"""CNN model kind: shapes, padding invariance, early stopping, training, save/load, navec embeddings."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from emotions.data.labels import TaskSpec, get_task
from emotions.models import MODEL_CARD, load_predictor, train_model
from emotions.models import cnn
from emotions.data.word_vectors import navec_available

TINY = dict(embedding_dim=8, filters=8, kernel_size=3, dense_units=8, batch_size=8, lr=0.01, epochs=8,
            patience=3, seed=7, progress=False, preprocess={"asr_dictionary": False})

SINGLE = get_task("emotions-en")                                         # 6 classes, single label
MULTI = TaskSpec("tiny-multi", ("joy", "anger", "fear"), True, "test task")

CUE = {"sadness": "sad gloomy", "joy": "happy glad", "love": "love adore", "anger": "angry mad",
       "fear": "afraid scared", "surprise": "wow shocked"}


def single_frame(n_per_class: int, seed: int = 0, flip: bool = False) -> pd.DataFrame:
    """Texts whose cue words give the class; `flip` assigns each the next class instead (a contradicting set)."""
    rng = np.random.default_rng(seed)
    labels = list(SINGLE.labels)
    fillers = "the a today i feel really so very it was".split()
    rows = []
    for k, lab in enumerate(labels):
        for _ in range(n_per_class):
            words = list(rng.choice(fillers, size=4)) + CUE[lab].split()
            rng.shuffle(words)
            target = labels[(k + 1) % len(labels)] if flip else lab
            rows.append({"text": " ".join(words), **{l: int(l == target) for l in labels}})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def multi_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cues = {"joy": "радость счастье", "anger": "злость гнев", "fear": "страх ужас"}
    rows = []
    for _ in range(n):
        y = rng.random(3) < 0.4
        if not y.any():
            y[rng.integers(3)] = True
        words = ["сегодня", "я", "был", "дома"] + [w for lab, on in zip(MULTI.labels, y) if on for w in cues[lab].split()]
        rng.shuffle(words)
        rows.append({"text": " ".join(words), **{lab: int(on) for lab, on in zip(MULTI.labels, y)}})
    return pd.DataFrame(rows)


# --- network ---------------------------------------------------------------------------------------

def test_output_shapes_and_short_texts():
    net = cnn.TextCNN(vocab_size=50, n_labels=6, embedding_dim=8, filters=4, kernel_size=5, dense_units=3)
    ids = torch.randint(1, 50, (4, 12))
    assert net(ids).shape == (4, 6)
    assert net(ids, torch.tensor([12, 7, 1, 3])).shape == (4, 6)
    assert net(torch.randint(1, 50, (2, 2)), torch.tensor([2, 1])).shape == (2, 6)  # shorter than the kernel
    assert net.embedding.weight[0].abs().sum() == 0                                # padding row is zero


def test_padding_does_not_change_logits():
    torch.manual_seed(0)
    net = cnn.TextCNN(vocab_size=30, n_labels=3, embedding_dim=6, filters=5, kernel_size=3, dense_units=4).eval()
    seq = [4, 9, 2, 7]
    a, la = cnn.batch_tensors([seq], 3)
    b, lb = cnn.batch_tensors([seq, list(range(1, 25))], 3)   # padded to 24 beside a long text
    with torch.no_grad():
        torch.testing.assert_close(net(a, la)[0], net(b, lb)[0])


def test_bad_embedding_weights_shape():
    with pytest.raises(ValueError, match="shape"):
        cnn.TextCNN(10, 2, embedding_dim=4, embedding_weights=np.zeros((9, 4)))


# --- early stopping ---------------------------------------------------------------------------------

def test_training_restores_best_weights_when_tune_set_disagrees(tmp_path):
    """Tune labels contradict train labels: tune loss rises as training fits, so the best epoch is early."""
    train_df, tune_df = single_frame(20, seed=1), single_frame(5, seed=2, flip=True)
    model = train_model("cnn", train_df, tune_df, SINGLE, {**TINY, "epochs": 6, "patience": 2}, tmp_path)
    h = model.history
    tune_losses = [e["tune_loss"] for e in h["epochs"]]
    assert h["stopped_early"] and h["best_epoch"] == int(np.argmin(tune_losses)) + 1 < len(tune_losses)
    # the restored weights are the best epoch's: their tune loss is the recorded minimum
    seqs = model.sequences(model.preprocess(tune_df["text"].tolist()))
    logits = torch.from_numpy(model.logits_of_sequences(seqs))
    y = torch.tensor(tune_df[list(SINGLE.labels)].to_numpy()).argmax(1)
    assert float(torch.nn.functional.cross_entropy(logits, y)) == pytest.approx(min(tune_losses), abs=1e-5)


# --- training, saving, loading -------------------------------------------------------------------------

def test_tiny_single_label_run_learns_and_round_trips(tmp_path):
    train_df, tune_df, test_df = single_frame(20, 1), single_frame(4, 2), single_frame(4, 3)
    model = train_model("cnn", train_df, tune_df, SINGLE, TINY, tmp_path / "m")
    h = json.loads((tmp_path / "m" / cnn.HISTORY_FILE).read_text())
    losses = [e["train_loss"] for e in h["epochs"]]
    assert losses[-1] < losses[0] * 0.5
    assert h["metric"] == "tune_accuracy" and "tune_accuracy" in h["epochs"][0]
    proba = model.predict_proba(test_df["text"].tolist())
    assert proba.shape == (len(test_df), 6)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    acc = (proba.argmax(1) == test_df[list(SINGLE.labels)].to_numpy().argmax(1)).mean()
    assert acc >= 0.9

    card = json.loads((tmp_path / "m" / MODEL_CARD).read_text())
    assert card["kind"] == "cnn" and card["params"]["kernel_size"] == 3 and "progress" not in card["params"]
    back = load_predictor(tmp_path / "m")
    assert isinstance(back, cnn.CNNPredictor)
    np.testing.assert_array_equal(back.predict_proba(test_df["text"].tolist()), proba)
    np.testing.assert_array_equal(back.predict(["happy glad day"]), model.predict(["happy glad day"]))
    assert back.history == h


def test_confusion_plot_writes_png(tmp_path):
    import matplotlib.pyplot as plt
    from emotions.evaluation.plots import plot_confusion_matrix
    fig = plot_confusion_matrix([[5, 1], [0, 3]], ["a", "b"], tmp_path / "cm.png", title="t")
    plt.close(fig)
    assert (tmp_path / "cm.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="shape"):
        plot_confusion_matrix([[1]], ["a", "b"])


def test_seeded_runs_are_identical(tmp_path):
    train_df, tune_df = single_frame(8, 1), single_frame(2, 2)
    params = {**TINY, "epochs": 2}
    a = train_model("cnn", train_df, tune_df, SINGLE, params, tmp_path / "a")
    b = train_model("cnn", train_df, tune_df, SINGLE, params, tmp_path / "b")
    texts = tune_df["text"].tolist()
    np.testing.assert_array_equal(a.predict_proba(texts), b.predict_proba(texts))


def test_multilabel_thresholds_and_round_trip(tmp_path):
    train_df, tune_df = multi_frame(120, 1), multi_frame(30, 2)
    model = train_model("cnn", train_df, tune_df, MULTI, {**TINY, "preprocess": None}, tmp_path)
    assert model.history["metric"] == "tune_weighted_f1"
    assert model.history["epochs"][-1]["train_loss"] < model.history["epochs"][0]["train_loss"]
    back = load_predictor(tmp_path)
    np.testing.assert_array_equal(back.thresholds, model.thresholds)
    texts = tune_df["text"].tolist()
    np.testing.assert_array_equal(back.predict_proba(texts), model.predict_proba(texts))
    pred = back.predict(texts)
    assert pred.shape == (len(texts), 3) and (pred.sum(axis=1) >= 1).all()
    assert (pred == tune_df[list(MULTI.labels)].to_numpy()).mean() > 0.9


def test_parameter_and_data_checks(tmp_path):
    train_df, tune_df = single_frame(3, 1), single_frame(1, 2)
    with pytest.raises(ValueError, match="embedding"):
        train_model("cnn", train_df, tune_df, SINGLE, {**TINY, "embedding": "glove"}, tmp_path / "x")
    with pytest.raises(ValueError, match="filters = 0: expected int .*greater than or equal to 1"):
        train_model("cnn", train_df, tune_df, SINGLE, {**TINY, "filters": 0}, tmp_path / "x")
    with pytest.raises(ValueError, match="unknown key 'colour'"):   # a typo is an error, not a warning
        train_model("cnn", train_df, tune_df, SINGLE, {**TINY, "colour": 1}, tmp_path / "x")
    bad = train_df.copy()
    bad.loc[0, "joy"] = 1 - bad.loc[0, "joy"]
    with pytest.raises(ValueError, match="exactly one 1"):
        train_model("cnn", bad, tune_df, SINGLE, TINY, tmp_path / "x")
    with pytest.raises(ValueError, match="lacks column"):
        train_model("cnn", train_df.drop(columns=["joy"]), tune_df, SINGLE, TINY, tmp_path / "x")
    model = train_model("cnn", train_df, tune_df.iloc[:0], SINGLE, {**TINY, "epochs": 1}, tmp_path / "y")
    assert model.history["best_epoch"] == 1 and "tune_loss" not in model.history["epochs"][0]


# --- navec -----------------------------------------------------------------------------------------

navec_needed = pytest.mark.skipif(not navec_available(),
                                  reason="navec vectors unavailable (natasha's bundled navec_news_v1 file not found)")


@navec_needed
def test_navec_embedding_matrix_fills_known_words():
    from emotions.data.word_vectors import coverage, embedding_matrix, load_navec
    nv = load_navec()
    assert load_navec() is nv                      # cached
    vocab = {"<OOV>": 1, "привет": 2, "ёлка": 3, "zzqxjunknownword": 4}
    m = embedding_matrix(vocab, 300, seed=0)
    assert m.shape == (5, 300) and m.dtype == np.float32
    assert not m[0].any()                          # padding
    np.testing.assert_allclose(m[1], nv["<unk>"])
    np.testing.assert_allclose(m[2], nv["привет"])
    np.testing.assert_allclose(m[3], nv.get("ёлка") if nv.get("ёлка") is not None else nv["елка"])
    assert m[4].std() > 0                          # unknown word: random, not zero
    np.testing.assert_array_equal(m, embedding_matrix(vocab, 300, seed=0))
    assert coverage(vocab) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="300-d"):
        embedding_matrix(vocab, 100)


@navec_needed
def test_cnn_with_frozen_navec(tmp_path):
    from emotions.data.word_vectors import load_navec
    train_df, tune_df = multi_frame(40, 1), multi_frame(10, 2)
    params = {**TINY, "embedding": "navec", "embedding_trainable": False, "epochs": 2, "preprocess": None}
    model = train_model("cnn", train_df, tune_df, MULTI, params, tmp_path)
    assert model.params["embedding_dim"] == 300 and model.history["navec_coverage"] > 0.9
    i = model.tokenizer.word_index["радость"]
    np.testing.assert_allclose(model.model.embedding.weight[i].detach().numpy(), load_navec()["радость"])
    back = load_predictor(tmp_path)               # loading needs no navec: the vectors are in the weights
    texts = tune_df["text"].tolist()
    np.testing.assert_array_equal(back.predict_proba(texts), model.predict_proba(texts))
