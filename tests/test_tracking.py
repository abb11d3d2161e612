"""MLflow tracking of a run folder (emotions/tracking.py): params, metrics, steps, artifacts, no duplicates."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from emotions import tracking

CFG = {"common": {"task": "cryptonite", "profile": "baseline", "seed": 42},
       "train": {"model": "baseline", "baseline": {"C": 4.0, "class_weight": "balanced"}},
       "extend": {"sources": {"user_csvs": ["x" * 700]}}}
METRICS = {"model": {"kind": "baseline"},
           "tune": {"n": 10, "weighted_f1": 0.81, "macro_f1": 0.7, "micro_f1": 0.8, "mean_roc_auc": 0.9,
                    "per_class": {"anger": {"f1": 0.5, "roc_auc": 0.8}, "joy": {"f1": 0.9, "roc_auc": None}}},
           "holdout": {"n": 10, "weighted_f1": 0.7654321, "macro_f1": 0.6, "micro_f1": 0.75, "mean_roc_auc": 0.88,
                       "per_class": {"anger": {"f1": 0.4, "roc_auc": 0.7}}},
           "holdout_mixed": {"weighted_f1": 0.66, "per_class_f1": {"anger": 0.3}}}
HISTORY = {"best_epoch": 2, "epochs": [{"epoch": 1, "train_loss": 0.9, "tune_loss": 0.8, "tune_weighted_f1": 0.5},
                                       {"epoch": 2, "train_loss": 0.6, "tune_loss": 0.7, "tune_weighted_f1": 0.6}]}
# a PNG's first bytes are enough for an artifact
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


def fake_run(root: Path) -> Path:
    run = root / "runs" / "cryptonite-baseline-demo-abc123"
    (run / "img").mkdir(parents=True)
    (run / "model").mkdir()
    (run / "params.yaml").write_text(yaml.safe_dump({"data_dir": "/data", **CFG}), encoding="utf-8")
    (run / "metrics.json").write_text(json.dumps(METRICS), encoding="utf-8")
    (run / "img" / "x.png").write_bytes(PNG)
    (run / "submission.csv").write_text("text,anger\nа,1\n", encoding="utf-8")
    (run / "model" / "history.json").write_text(json.dumps(HISTORY), encoding="utf-8")
    (run / "model" / "model_card.json").write_text(json.dumps({"kind": "baseline"}), encoding="utf-8")
    return run


def test_flatten_and_limits() -> None:
    flat = tracking.flatten({"a": {"b": {"c": 1}, "e": {}}, "l": [1, 2]})
    assert flat == {"a.b.c": 1, "a.e": {}, "l": [1, 2]}
    long = tracking.param_value("y" * 2000)
    assert len(long) == tracking.PARAM_VALUE_LIMIT and long.endswith("[2000 chars]")
    assert tracking.param_value(None) == "null" and tracking.param_value("text") == "text"
    scores = tracking.split_metrics(METRICS)
    assert scores["holdout.f1.anger"] == 0.4 and scores["holdout_mixed.f1.anger"] == 0.3
    assert "tune.roc_auc.joy" not in scores and not any(k.startswith("model.") for k in scores)
    assert ("epoch.tune_loss", 0.7, 2) in tracking.epoch_metrics(HISTORY)


def test_log_run_round_trip_and_no_duplicate(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    run_dir = fake_run(tmp_path)
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    run_id = tracking.log_run(run_dir, CFG, tracking_uri=uri, strict=True)
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    assert run.data.params["train.baseline.C"] == "4.0"
    assert len(run.data.params["extend.sources.user_csvs"]) == tracking.PARAM_VALUE_LIMIT
    assert run.data.metrics["holdout.weighted_f1"] == METRICS["holdout"]["weighted_f1"]
    assert run.data.metrics["tune.f1.anger"] == 0.5
    assert run.data.tags["task"] == "cryptonite" and run.data.tags["profile"] == "baseline"
    history = client.get_metric_history(run_id, "epoch.train_loss")
    assert sorted((m.step, m.value) for m in history) == [(1, 0.9), (2, 0.6)]
    names = {a.path for a in client.list_artifacts(run_id)} | {a.path for a in client.list_artifacts(run_id, "img")}
    assert {"submission.csv", "metrics.json", "params.yaml", "img/x.png"} <= names
    assert (tmp_path / "mlartifacts").is_dir()    # artifacts beside the database, not in the working directory

    assert tracking.log_run(run_dir, CFG, tracking_uri=uri, strict=True) == run_id        # unchanged: skipped
    METRICS_2 = {**METRICS, "holdout": {**METRICS["holdout"], "weighted_f1": 0.8}}
    (run_dir / "metrics.json").write_text(json.dumps(METRICS_2), encoding="utf-8")
    assert tracking.log_run(run_dir, CFG, tracking_uri=uri, strict=True) == run_id        # updated in place
    experiment = client.get_experiment_by_name("cryptonite")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1 and runs[0].data.metrics["holdout.weighted_f1"] == 0.8
    assert json.loads((run_dir / "tracking.json").read_text())[uri]["run_id"] == run_id

    changed = {**CFG, "train": {"model": "baseline", "baseline": {"C": 1.0}}}   # new config: a new MLflow run
    new_id = tracking.log_run(run_dir, changed, tracking_uri=uri, strict=True)
    assert new_id != run_id and client.get_run(run_id).data.tags["emotions.superseded_by"] == new_id


def test_without_mlflow_one_line_and_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)           # import mlflow -> ImportError
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    assert tracking.log_run(fake_run(tmp_path), CFG, tracking_uri=f"sqlite:///{tmp_path / 'm.db'}") is None
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "MLflow is not installed" in out[0]
    assert tracking.sweep_tracker("cryptonite", "s", {}) is None
