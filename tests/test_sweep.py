"""Optuna sweeps (emotions/sweep.py): a resumed study, the written profile, tune (never holdout) as objective."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from emotions import sweep
from emotions.core.paths import CONFIGS_DIR
from emotions.pipeline.config import load_config

optuna = pytest.importorskip("optuna")
SPACE = CONFIGS_DIR / "sweeps" / "baseline.yaml"


def value_at(cfg: dict, key: str):
    for part in key.split("."):
        cfg = cfg[part]
    return cfg


def test_space_files_and_overrides(tmp_path: Path) -> None:
    for name, profile in (("baseline", "baseline"), ("quick", "quick")):
        space = sweep.load_space(CONFIGS_DIR / "sweeps" / f"{name}.yaml")
        sweep.check_space("cryptonite", profile, space, [], CONFIGS_DIR)   # keys and both range ends pass the schema
        assert 3 <= len(space) <= 6
    bad = tmp_path / "bad.yaml"
    for text in ("a.b: {type: gauss}", "a.b: {type: int, low: 3, high: 1}", "a.b: {type: categorical, choices: []}",
                 "a.b: {type: float, low: 0, high: 1, lg: true}"):
        bad.write_text(text)
        with pytest.raises(ValueError, match="a.b"):
            sweep.load_space(bad)
    for value in (1e-05, 4.0, None, "no", "balanced", 3, [1, 2]):
        assert yaml.safe_load(sweep.override("k", value).split("=", 1)[1]) == value
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("train.baseline.CC: {type: float, low: 0.1, high: 1}")
    assert sweep.main(["--profile", "baseline", "--space", str(unknown), "--trials", "1", "--no-tracking"]) == 2
    # a hand-written profile is never overwritten by a study of the same name (refused before any trial)
    assert sweep.main(["--profile", "baseline", "--space", str(SPACE), "--study", "baseline", "--no-tracking",
                       "--storage", f"sqlite:///{tmp_path / 'o.db'}"]) == 2


def test_two_sessions_one_study_profile_and_tune_objective(tmp_path: Path, capsys) -> None:
    configs = tmp_path / "configs"
    shutil.copytree(CONFIGS_DIR, configs, ignore=shutil.ignore_patterns("*.pyc"))
    real, seen = sweep.chain_runner(), []

    def spy(cfg, data_dir, out_dir, **kw):       # the real chain on the demo data; records what it scored
        result = real(cfg, data_dir, out_dir, **kw)
        seen.append((result["metrics"]["tune"]["weighted_f1"], result["metrics"]["holdout"]["weighted_f1"]))
        return result

    storage, uri = f"sqlite:///{tmp_path / 'o.db'}", f"sqlite:///{tmp_path / 'm.db'}"
    argv = ["--profile", "baseline", "--space", str(SPACE), "--trials", "2", "--storage", storage,
            "--study", "demo-sweep", "--configs-dir", str(configs), "--tracking-uri", uri]
    assert sweep.main(argv, runner=spy) == 0
    assert sweep.main(argv, runner=spy) == 0                     # resumes: 2 + 2 trials in one study

    study = optuna.load_study(study_name="demo-sweep", storage=storage)
    trials = sorted(study.trials, key=lambda t: t.number)
    assert len(trials) == 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert [t.value for t in trials] == [tune for tune, _ in seen]                    # the objective is tune
    assert [t.user_attrs["holdout_weighted_f1"] for t in trials] == [h for _, h in seen]   # holdout: recorded only
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4                # no repeats on resume

    best = study.best_trial
    cfg = load_config("cryptonite", "demo-sweep", configs_dir=configs)              # the written profile loads
    for key, value in best.params.items():
        assert value_at(cfg, key) == value
    out = capsys.readouterr().out
    assert f"tune weighted F1 {best.value:.4f} (the objective)" in out and "trials/min" in out
    assert out.count("trial 3: tune weighted F1") == 1

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("cryptonite").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and len(children) == 4
    assert sorted(r.data.metrics["tune.weighted_f1"] for r in children) == sorted(t.value for t in trials)
