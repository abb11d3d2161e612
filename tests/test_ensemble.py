"""Ensembles: a seed ensemble trained by the train stage, and trained runs combined for the submission."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from emotions.core.io import write_csv_atomic
from emotions.data.labels import CRYPTONITE_LABELS
from emotions.evaluation.metrics import tune_thresholds
from emotions.models import load_predictor
from emotions.models.ensemble import EnsemblePredictor
from emotions.pipeline import steps
from emotions.pipeline.combine_runs import EnsembleRunsError, combine_runs

from test_transformer_train import CRYPTONITE, FAST, make_frame

L = CRYPTONITE_LABELS
TINY = {k: v for k, v in FAST.items() if k != "preprocess"} | {"epochs": 2}
PREP = FAST["preprocess"]


@pytest.fixture(scope="module")
def frames():
    return make_frame(CRYPTONITE, 160, 0, 0.3), make_frame(CRYPTONITE, 60, 1, 0.3), make_frame(CRYPTONITE, 60, 2, 0.3)


@pytest.fixture(scope="module")
def seed_ensemble(frames, tmp_path_factory, one_torch_thread):
    train, tune, _ = frames
    out = tmp_path_factory.mktemp("ens") / "model"
    pred = steps.train("transformer", train, tune, "cryptonite", TINY, PREP, 7, out, [], "tune", ensemble_size=2)
    return pred, out


def test_seed_ensemble_averages_two_tiny_models_and_tunes_on_the_average(seed_ensemble, frames):
    pred, out = seed_ensemble
    _, tune, holdout = frames
    assert isinstance(pred, EnsemblePredictor) and len(pred.members) == 2
    card = json.loads((out / "model_card.json").read_text())
    assert card["kind"] == "ensemble" and card["params"]["seeds"] == [7, 8]
    assert [json.loads((out / f"members/{k}/model_card.json").read_text())["params"]["seed"] for k in (0, 1)] == [7, 8]

    texts = holdout["text"].tolist()
    members = [m.predict_proba(texts) for m in pred.members]
    assert not np.allclose(members[0], members[1])              # different seeds, different models
    np.testing.assert_allclose(pred.predict_proba(texts), (members[0] + members[1]) / 2, rtol=1e-6)

    tune_avg = np.mean([m.predict_proba(tune["text"].tolist()) for m in pred.members], axis=0)
    np.testing.assert_array_equal(pred.thresholds, tune_thresholds(tune[L].to_numpy(), tune_avg))

    loaded = load_predictor(out)                                 # the saved folder loads as the same ensemble
    assert isinstance(loaded, EnsemblePredictor)
    np.testing.assert_allclose(loaded.predict_proba(texts), pred.predict_proba(texts), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(loaded.predict(texts), pred.predict(texts))


def _fake_run(root, name, model_dir, frames) -> None:
    run = root / name
    shutil.copytree(model_dir, run / "model")
    for split, df in zip(("train", "tune", "holdout"), frames):
        write_csv_atomic(run / "data" / f"{split}.csv", df)


def test_combine_runs_checks_rows_and_averages(seed_ensemble, frames, tmp_path):
    pred, out = seed_ensemble
    for k in (0, 1):                                     # each member as a run of its own
        _fake_run(tmp_path, f"run{k}", out / f"members/{k}", frames)
    ens, report = combine_runs(tmp_path / "run0", ["run1"], runs_dir=tmp_path)
    holdout = frames[2]
    np.testing.assert_allclose(ens.predict_proba(holdout["text"].tolist()), pred.predict_proba(holdout["text"].tolist()),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ens.thresholds, pred.thresholds)       # tuned on the same averaged tune split
    assert set(report["holdout_weighted_f1"]) == {"holdout", "holdout_asr"}
    assert set(report["holdout_weighted_f1"]["holdout"]) == {"run0", "run1", "ensemble"}

    with pytest.raises(EnsembleRunsError, match="no trained model"):
        combine_runs(tmp_path / "run0", ["nope"], runs_dir=tmp_path)
    with pytest.raises(EnsembleRunsError, match="names a run twice"):
        combine_runs(tmp_path / "run0", ["run1", str(tmp_path / "run1")], runs_dir=tmp_path)
    other = frames[0], frames[1].iloc[::-1], frames[2]                   # same rows, other order: refused
    _fake_run(tmp_path, "shuffled", out / "members/1", other)
    with pytest.raises(EnsembleRunsError, match="its tune split differs from run run0's"):
        combine_runs(tmp_path / "run0", ["shuffled"], runs_dir=tmp_path)


def test_members_must_agree_on_labels_and_preprocessing(seed_ensemble):
    pred, _ = seed_ensemble
    a, b = pred.members
    b_prep = b.preprocess_config
    try:
        b.preprocess_config = type(b_prep).from_dict({**b_prep.to_dict(), "asr_style": not b_prep.asr_style})
        with pytest.raises(ValueError, match="member 2 differs from member 1 in its preprocessing"):
            EnsemblePredictor([a, b])
    finally:
        b.preprocess_config = b_prep


def test_ensemble_size_is_checked_by_the_config_schema():
    from emotions.core.options import OptionsError
    from emotions.pipeline.config import load_config
    from emotions.pipeline.schema import validate_config

    cfg = load_config("cryptonite", "quick")
    cfg["train"]["ensemble_size"] = 0
    with pytest.raises(OptionsError, match="train.ensemble_size"):
        validate_config(cfg)
    assert pd.Series(validate_config(load_config("cryptonite", "quick"))["submission"]["ensemble_runs"]).empty


def test_an_ensemble_is_served_by_the_torch_backend_and_export_says_what_to_do(seed_ensemble):
    from emotions.serving.backends import load_backend
    from emotions.serving.export import ExportError, export_onnx

    pred, out = seed_ensemble
    served = load_backend(out, "torch")
    texts = ["мне так страшно", "ура рад"]
    np.testing.assert_array_equal(served.predict(texts), pred.predict(texts))
    with pytest.raises(ExportError, match="is an ensemble: serve it with --backend torch"):
        export_onnx(out)
