"""Building blocks of the transformer model kind: heads, losses, optimiser groups, data, tiny encoder, plots."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score
from torch import nn

from emotions.models.nn.data import LengthBucketBatchSampler, PadCollator, TokenizedDataset
from emotions.models.nn.heads import ACTIVATIONS, ClassificationHead, EmotionClassifier, HeadConfig, mean_pool
from emotions.models.nn.losses import MultilabelLoss, SinglelabelLoss, class_weights
from emotions.models.nn.optim import build_optimizer, build_scheduler, layer_depth, param_groups
from emotions.models.nn.tiny import build_tiny_encoder

TEXTS = ["я очень рад тебя видеть", "это ужасно и противно", "мне страшно одному дома",
         "какая грустная история", "вот это да не ожидал", "стол стоит у окна"] * 10


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_encoder(TEXTS, tmp_path_factory.mktemp("tiny"), vocab_size=200, hidden_size=32,
                              num_layers=2, num_heads=2, intermediate_size=64)


# --- heads ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_layers", [0, 1, 2])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("norm", ["none", "layer", "batch"])
def test_head_shapes(n_layers, activation, norm):
    head = ClassificationHead(16, 7, HeadConfig(n_layers=n_layers, hidden_size=12, activation=activation,
                                                norm=norm, dropout=0.2))
    out = head(torch.randn(5, 16))
    assert out.shape == (5, 7)
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == n_layers + 1
    assert linears[-1].out_features == 7
    if n_layers:
        assert linears[0].out_features == 12
        assert any(isinstance(m, ACTIVATIONS[activation]) for m in head.modules())
        norm_cls = {"layer": nn.LayerNorm, "batch": nn.BatchNorm1d}.get(norm)
        assert (norm_cls is None) or any(isinstance(m, norm_cls) for m in head.modules())
    head.eval()
    assert head(torch.randn(1, 16)).shape == (1, 7)


@pytest.mark.parametrize("bad", [dict(n_layers=-1), dict(activation="swish"), dict(norm="group"),
                                 dict(dropout=1.0)])
def test_head_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        HeadConfig(**bad)


def test_mean_pool_ignores_padding():
    hidden = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    out = mean_pool(hidden, mask)
    assert torch.allclose(out[0], hidden[0, :2].mean(0))
    assert torch.allclose(out[1], hidden[1].mean(0))


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_classifier_logits_do_not_depend_on_padding(tiny_dir, pooling):
    from transformers import AutoModel, AutoTokenizer

    tok, enc = AutoTokenizer.from_pretrained(tiny_dir), AutoModel.from_pretrained(tiny_dir)
    model = EmotionClassifier(enc, ClassificationHead(32, 7, HeadConfig(n_layers=1, hidden_size=8)), pooling).eval()
    alone = tok(["мне страшно"], return_tensors="pt")
    both = tok(["мне страшно", "это ужасно и противно вот это да не ожидал"], padding=True, return_tensors="pt")
    with torch.no_grad():
        a = model(alone["input_ids"], alone["attention_mask"])
        b = model(both["input_ids"], both["attention_mask"])
    assert b.shape == (2, 7)
    assert torch.allclose(a[0], b[0], atol=1e-5)


# --- losses --------------------------------------------------------------------------------------
def test_class_weights_by_hand():
    y = np.array([[1, 0], [1, 0], [0, 1], [1, 0]])
    assert np.allclose(class_weights(y, "inverse", True), [1 / 3, 3 / 1])
    assert np.allclose(class_weights(y, "sqrt", True), [np.sqrt(1 / 3), np.sqrt(3)])
    assert np.allclose(class_weights(y, "inverse", False), [4 / (2 * 3), 4 / (2 * 1)])
    assert np.allclose(class_weights(y, "inverse", True, max_weight=2.0), [1 / 3, 2.0])
    assert class_weights(y, "off", True) is None
    assert np.allclose(class_weights(y, [2, 5], True), [2, 5])
    with pytest.raises(ValueError):
        class_weights(y, [1, 2, 3], True)
    with pytest.raises(ValueError):
        class_weights(y, "balanced", True)
    assert np.allclose(class_weights(np.array([[1, 0], [1, 0]]), "inverse", True), [0.0, 1.0])


def _bce_by_hand(z, y, pw, gamma=0.0):
    p = 1 / (1 + np.exp(-z))
    loss = -(pw * y * np.log(p) + (1 - y) * np.log(1 - p))
    p_t = p * y + (1 - p) * (1 - y)
    return float(((1 - p_t) ** gamma * loss).mean())


def test_multilabel_loss_matches_hand_computation():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(6, 3))
    y = (rng.random((6, 3)) > 0.5).astype(float)
    pw = np.array([1.0, 2.5, 0.5])
    zt, yt = torch.tensor(z, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    assert MultilabelLoss(pw)(zt, yt).item() == pytest.approx(_bce_by_hand(z, y, pw), rel=1e-5)
    assert MultilabelLoss(None)(zt, yt).item() == pytest.approx(_bce_by_hand(z, y, 1.0), rel=1e-5)
    assert MultilabelLoss(pw, gamma=2.0)(zt, yt).item() == pytest.approx(_bce_by_hand(z, y, pw, 2.0), rel=1e-5)
    # focal with gamma 0 is plain BCE, and focusing lowers the loss
    assert MultilabelLoss(pw, gamma=0.0)(zt, yt).item() == pytest.approx(
        F.binary_cross_entropy_with_logits(zt, yt, pos_weight=torch.tensor(pw, dtype=torch.float32)).item(), rel=1e-6)
    assert MultilabelLoss(pw, gamma=2.0)(zt, yt).item() < MultilabelLoss(pw)(zt, yt).item()


def test_singlelabel_loss_matches_cross_entropy():
    rng = np.random.default_rng(1)
    z = torch.tensor(rng.normal(size=(8, 4)), dtype=torch.float32)
    idx = torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])
    onehot = F.one_hot(idx, 4).float()
    w = torch.tensor([1.0, 2.0, 0.5, 3.0])
    assert SinglelabelLoss()(z, onehot).item() == pytest.approx(F.cross_entropy(z, idx).item(), rel=1e-6)
    assert SinglelabelLoss(w)(z, onehot).item() == pytest.approx(F.cross_entropy(z, idx, weight=w).item(), rel=1e-6)
    assert SinglelabelLoss(w, gamma=0.0)(z, idx).item() == pytest.approx(
        F.cross_entropy(z, idx, weight=w).item(), rel=1e-6)
    p_t = torch.softmax(z, 1)[torch.arange(8), idx]
    focal = ((1 - p_t) ** 2 * -torch.log(p_t)).mean().item()
    assert SinglelabelLoss(gamma=2.0)(z, onehot).item() == pytest.approx(focal, rel=1e-5)


# --- optimiser -----------------------------------------------------------------------------------
def test_layer_depth_names():
    assert layer_depth("embeddings.word_embeddings.weight", 12) == 0
    assert layer_depth("encoder.layer.0.attention.self.query.weight", 12) == 1
    assert layer_depth("encoder.layer.11.output.dense.bias", 12) == 12
    assert layer_depth("pooler.dense.weight", 12) == 13


def test_param_groups_layer_decay_head_lr_and_no_decay(tiny_dir):
    from transformers import AutoModel

    enc = AutoModel.from_pretrained(tiny_dir)
    enc.pooler = None
    model = EmotionClassifier(enc, ClassificationHead(32, 7, HeadConfig(n_layers=1, hidden_size=8)))
    model.encoder.get_input_embeddings().weight.requires_grad_(False)
    groups = param_groups(model, lr=1e-3, weight_decay=0.01, head_lr=1e-2, layer_decay=0.5)
    lr_of = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert id(named["encoder.embeddings.word_embeddings.weight"]) not in lr_of      # frozen: left out
    assert lr_of[id(named["encoder.embeddings.position_embeddings.weight"])][0] == pytest.approx(1e-3 * 0.5 ** 3)
    assert lr_of[id(named["encoder.encoder.layer.0.attention.self.query.weight"])] == pytest.approx((1e-3 * 0.5 ** 2, 0.01))
    assert lr_of[id(named["encoder.encoder.layer.1.attention.self.query.weight"])][0] == pytest.approx(1e-3 * 0.5)
    assert lr_of[id(named["encoder.encoder.layer.1.attention.self.query.bias"])][1] == 0.0
    assert lr_of[id(named["encoder.encoder.layer.1.output.LayerNorm.weight"])][1] == 0.0
    assert lr_of[id(named["head.net.1.weight"])] == pytest.approx((1e-2, 0.01))
    n_trainable = sum(p.requires_grad for p in model.parameters())
    assert sum(len(g["params"]) for g in groups) == n_trainable
    for name in ("adamw", "adam", "sgd"):
        opt = build_optimizer(groups, name, lr=1e-3)
        assert len(opt.param_groups) == len(groups)


def test_schedules():
    p = nn.Parameter(torch.zeros(1))
    lrs = {}
    for kind in ("constant", "linear", "cosine"):
        opt = torch.optim.SGD([p], lr=1.0)
        sched = build_scheduler(opt, kind, total_steps=10, warmup_steps=2)
        seen = []
        for _ in range(10):
            seen.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        lrs[kind] = seen
    assert lrs["linear"][0] < lrs["linear"][1] < lrs["linear"][2] == pytest.approx(1.0)
    assert lrs["constant"][2:] == [1.0] * 8
    assert lrs["linear"][6] == pytest.approx(0.5)
    assert lrs["cosine"][6] == pytest.approx(0.5)
    assert lrs["linear"][-1] < 0.2 and lrs["cosine"][-1] < 0.05
    with pytest.raises(ValueError):
        build_scheduler(torch.optim.SGD([p], lr=1.0), "step", 10)


# --- data ----------------------------------------------------------------------------------------
def test_bucket_sampler_covers_all_rows_and_reduces_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 100, size=1000)
    s = LengthBucketBatchSampler(lengths, batch_size=16, bucket_multiplier=20, seed=3)
    s.set_epoch(1)
    batches = list(s)
    assert len(batches) == len(s)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    assert list(s) == batches                                           # reproducible
    s.set_epoch(2)
    assert list(s) != batches                                           # new order each epoch
    padded = sum(len(b) * lengths[b].max() for b in map(np.asarray, batches))
    random_padded = sum(len(b) * lengths[b].max() for b in np.array_split(rng.permutation(1000), len(batches)))
    assert padded < 0.75 * random_padded
    plain = LengthBucketBatchSampler(lengths, 64, shuffle=False)
    assert len(list(plain)) == len(plain) == math.ceil(1000 / 64)
    assert lengths[list(plain)[0][0]] == lengths.max()


def test_collator_pads_to_batch_longest():
    ds = TokenizedDataset([np.array([5, 6, 7]), np.array([8])], np.array([[1, 0], [0, 1]]))
    batch = PadCollator(pad_token_id=0)([ds[0], ds[1]])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].dtype == torch.float32 and batch["index"].tolist() == [0, 1]
    assert PadCollator(0, pad_to_multiple_of=8)([ds[0]])["input_ids"].shape == (1, 8)


def test_tiny_encoder_both_tokenizers(tmp_path):
    from transformers import AutoModel, AutoTokenizer

    for kind in ("wordpiece", "unigram"):
        d = build_tiny_encoder(TEXTS, tmp_path / kind, vocab_size=120, hidden_size=16, num_layers=1,
                               num_heads=2, intermediate_size=32, tokenizer_kind=kind)
        tok, enc = AutoTokenizer.from_pretrained(d), AutoModel.from_pretrained(d)
        ids = tok(["мне страшно"], return_tensors="pt")
        assert ids["input_ids"][0, 0].item() == tok.cls_token_id and ids["input_ids"][0, -1].item() == tok.sep_token_id
        assert enc(**ids).last_hidden_state.shape[-1] == 16


# --- plots ---------------------------------------------------------------------------------------
def test_training_plots(tmp_path):
    from emotions.evaluation.plots import (f1_vs_threshold, plot_learning_curves, plot_pr_curves,
                                         plot_threshold_curves)

    rng = np.random.default_rng(0)
    y = (rng.random((80, 3)) > 0.6).astype(int)
    proba = np.clip(y * 0.5 + rng.random((80, 3)) * 0.6, 0, 1)
    grid = np.array([0.3, 0.5, 0.7])
    f1 = f1_vs_threshold(y, proba, grid)
    assert f1[1, 2] == pytest.approx(f1_score(y[:, 2], proba[:, 2] >= 0.5))
    history = {"best_epoch": 2, "epochs": [
        {"epoch": 1, "train_loss": 0.6, "tune_loss": 0.5, "tune_weighted_f1": 0.4},
        {"epoch": 2, "train_loss": 0.4, "tune_loss": 0.45, "tune_weighted_f1": 0.5}]}
    outs = [plot_learning_curves(history, tmp_path / "lc.png"),
            plot_pr_curves(y, proba, ["a", "b", "c"], tmp_path / "pr.png", thresholds=[0.5, 0.4, 0.6]),
            plot_threshold_curves(y, proba, ["a", "b", "c"], tmp_path / "thr.png", thresholds=[0.5, 0.4, 0.6])]
    for out in outs:
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
