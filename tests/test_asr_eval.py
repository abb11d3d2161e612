"""Clean and ASR-style scores side by side; thresholds tuned on tune_asr; per-row weights in the baseline."""

import json

import numpy as np
import pytest

from emotions.augment.asr_render import ASR_RENDER_SEED, render_asr, with_asr_splits
from emotions.data.label_issues import WEIGHT_COLUMN
from emotions.data.labels import get_task
from emotions.data.prepare import cryptonite_splits
from emotions.core.paths import DEMO_DATA_DIR
from emotions.evaluation.asr_report import clean_vs_asr_table, plot_clean_vs_asr
from emotions.evaluation.report import evaluate_model
from emotions.models import load_predictor, train_model
from emotions.models.thresholds import retune_thresholds, threshold_frame

SMALL = {"max_features": 5000, "char_ngram_max": 4, "max_iter": 300}


@pytest.fixture(scope="module")
def parts():
    return cryptonite_splits(DEMO_DATA_DIR, seed=0)[0]


@pytest.fixture(scope="module")
def model_dir(parts, tmp_path_factory):
    out = tmp_path_factory.mktemp("asr") / "model"
    train_model("baseline", parts["train"], parts["tune"], get_task("cryptonite"), SMALL, out)
    return out


def test_metrics_carry_clean_and_asr_numbers(parts, model_dir, tmp_path):
    pred = load_predictor(model_dir)
    frames = with_asr_splits({"tune": parts["tune"], "holdout": parts["holdout"]})
    assert list(frames) == ["tune", "tune_asr", "holdout", "holdout_asr"]
    metrics, proba = evaluate_model(pred, frames)
    assert metrics["holdout_asr"]["n"] == metrics["holdout"]["n"] == len(parts["holdout"])
    assert not np.allclose(proba["holdout"], proba["holdout_asr"])    # the text did change
    table = clean_vs_asr_table(metrics, ["weighted_f1", "macro_f1"])
    assert list(table.index) == ["tune", "holdout"]
    gap = table.loc["holdout", ("weighted_f1", "asr - clean")]
    assert gap == pytest.approx(metrics["holdout_asr"]["weighted_f1"] - metrics["holdout"]["weighted_f1"])
    plot_clean_vs_asr(metrics, "holdout", out_path=tmp_path / "bars.png")
    assert (tmp_path / "bars.png").stat().st_size > 1000
    with pytest.raises(KeyError, match="holdout_asr"):
        plot_clean_vs_asr({"holdout": metrics["holdout"]})


def test_thresholds_tuned_on_tune_asr(parts, model_dir):
    pred = load_predictor(model_dir)
    clean = pred.thresholds.copy()
    assert threshold_frame(parts["tune"], "tune") is parts["tune"]
    assert threshold_frame(parts["tune"], "tune_asr")["text"].tolist() == \
        render_asr(parts["tune"], seed=ASR_RENDER_SEED)["text"].tolist()
    retune_thresholds(pred, parts["tune"], "tune_asr", model_dir)
    card = json.loads((model_dir / "model_card.json").read_text(encoding="utf-8"))
    assert card["threshold_split"] == "tune_asr" and card["kind"] == "baseline"
    assert load_predictor(model_dir).thresholds.tolist() == pred.thresholds.tolist()
    expected = load_predictor(model_dir)
    expected.tune(render_asr(parts["tune"], seed=ASR_RENDER_SEED))
    assert pred.thresholds.tolist() == expected.thresholds.tolist()
    retune_thresholds(pred, parts["tune"], "tune", None)          # the kinds already tuned on tune: no change
    assert pred.thresholds.tolist() == expected.thresholds.tolist() and clean.shape == pred.thresholds.shape
    with pytest.raises(ValueError, match="holdout"):
        threshold_frame(parts["tune"], "holdout")


def test_baseline_uses_row_weights(parts, tmp_path):
    spec, train = get_task("cryptonite"), parts["train"]
    plain = train_model("baseline", train, parts["tune"], spec, SMALL, tmp_path / "a")
    w = np.where(np.arange(len(train)) % 3 == 0, 0.05, 1.0)
    weighted = train_model("baseline", train.assign(**{WEIGHT_COLUMN: w}), parts["tune"], spec, SMALL, tmp_path / "b")
    texts = parts["holdout"]["text"].tolist()
    assert not np.allclose(plain.predict_proba(texts), weighted.predict_proba(texts))
    assert np.allclose(load_predictor(tmp_path / "b").predict_proba(texts), weighted.predict_proba(texts))
