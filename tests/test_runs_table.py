"""The runs table (python -m emotions.runs) on fake run folders: no training, just the files a run leaves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from emotions import runs as R
from emotions.data.labels import get_task
from emotions.evaluation.errors import predictions_frame, write_predictions
from emotions.pipeline.ablation import paired_bootstrap

LABELS = list(get_task("cryptonite").labels)


def params(seed: int = 42, model: str = "baseline", task: str = "cryptonite", **extra) -> dict:
    return {"data_dir": "/data/demo",
            "common": {"seed": seed, "task": task, "profile": "default"},
            "train": {"model": model, "baseline": {}, "transformer": {"lr": 6e-5, "epochs": 6}},
            "extend": {"sources": {"user_csvs": [], "izard": {"enabled": False}}}, **extra}


def metrics(holdout: float, tune: float, **more: float) -> dict:
    out = {"model": {"kind": "baseline"}, "holdout": {"weighted_f1": holdout, "n": 10},
           "tune": {"weighted_f1": tune, "n": 10}}
    out.update({k: {"weighted_f1": v} for k, v in more.items()})
    return out


def make_run(root: Path, run_id: str, cfg: dict | None, m: dict | None = None, *, train_seconds: float | None = None,
             finished: float | None = None, predictions=None) -> Path:
    run = root / run_id
    (run / "manifests").mkdir(parents=True)
    if cfg is not None:
        (run / "params.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    if m is not None:
        (run / "metrics.json").write_text(json.dumps(m), encoding="utf-8")
    if train_seconds is not None:
        (run / "manifests" / "04_train.json").write_text(json.dumps(
            {"stage": "04_train", "metrics": {"train_seconds": train_seconds}, "seconds": train_seconds + 1}))
    if finished is not None:
        (run / "manifests" / "04_train.state.json").write_text(json.dumps({"finished": finished}))
    if predictions is not None:
        write_predictions(predictions, run / "predictions" / "holdout.csv")
    return run


def holdout_predictions(n: int = 60, noise: float = 0.4, seed: int = 0, texts: list[str] | None = None):
    """A holdout predictions frame; the same gold labels for every call (seed only changes the probabilities)."""
    gold = (np.random.default_rng(123).random((n, len(LABELS))) < 0.3).astype(int)
    proba = np.clip(gold * 0.5 + np.random.default_rng(seed).random((n, len(LABELS))) * noise * 1.5, 0, 1)
    return predictions_frame(texts or [f"текст {i}" for i in range(n)], gold, proba, 0.5, LABELS)


@pytest.fixture()
def three_runs(tmp_path: Path) -> Path:
    make_run(tmp_path, "a-seed42", params(42), metrics(0.80, 0.85, holdout_asr=0.70), train_seconds=3.1,
             finished=1_700_000_000)
    make_run(tmp_path, "b-seed7", params(7), metrics(0.84, 0.82), train_seconds=2.0, finished=1_700_000_600)
    make_run(tmp_path, "c-transformer", params(42, "transformer", extra_key=1))   # no metrics.json
    (tmp_path / "not-a-run").mkdir()
    return tmp_path


def test_flatten_and_differing_keys() -> None:
    flat = R.flatten(params())
    assert flat["train.transformer.lr"] == 6e-5 and flat["extend.sources.izard.enabled"] is False
    assert "train.baseline" not in flat and flat["extend.sources.user_csvs"] == []   # {}: all defaults, no key
    keys = R.differing_keys([R.flatten(params(42)), R.flatten(params(7)),
                             R.flatten(params(42, "transformer", extra_key=1))])
    assert keys == ["common.seed", "extra_key", "train.model"]
    assert R.differing_keys([flat, dict(flat)]) == []


def test_table_lists_every_run_sorted_by_holdout(three_runs: Path) -> None:
    runs = R.discover_runs(three_runs)
    assert [r.id for r in runs] == ["a-seed42", "b-seed7", "c-transformer"]
    table = R.runs_table(runs)
    assert table["id"].tolist() == ["b-seed7", "a-seed42", "c-transformer"]      # best holdout first, blanks last
    assert list(table.columns) == ["id", "task", "profile", "common.seed", "extra_key", "train.model", "tune",
                                   "holdout", "holdout_asr", "train_s", "date"]
    assert table["common.seed"].tolist() == ["7", "42", "42"] and table["extra_key"].tolist() == ["", "", "1"]
    assert table["train_s"].tolist()[:2] == [2.0, 3.1] and np.isnan(table["train_s"].iloc[2])
    assert table["date"].iloc[2] != "" and table["date"].iloc[0] > table["date"].iloc[1]
    assert R.runs_table(runs, "tune")["id"].tolist() == ["a-seed42", "b-seed7", "c-transformer"]
    assert R.runs_table(runs, "id")["id"].tolist() == ["a-seed42", "b-seed7", "c-transformer"]
    with pytest.raises(ValueError, match="cannot sort by 'nope'"):
        R.runs_table(runs, "nope")


def test_command_prints_blanks_for_a_run_without_metrics(three_runs: Path, capsys) -> None:
    assert R.main(["--runs-dir", str(three_runs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["id", "task", "profile", "common.seed", "extra_key", "train.model", "tune",
                                "holdout", "holdout_asr", "train_s", "date"]
    assert lines[1].split()[0] == "b-seed7" and "0.8400" in lines[1]
    last = lines[3].split()
    assert last[0] == "c-transformer" and "transformer" in last and len(last) == 8   # blanks: no numbers
    assert R.main(["--runs-dir", str(three_runs), "--format", "csv", "--sort", "tune"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("a-seed42,cryptonite,default,42,")
    assert R.main(["--runs-dir", str(three_runs), "--format", "markdown"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("|---|")
    assert R.main(["--runs-dir", str(three_runs), "--sort", "nope"]) == 2
    assert R.main(["--runs-dir", str(three_runs / "missing")]) == 1


def test_task_filter(tmp_path: Path, capsys) -> None:
    make_run(tmp_path, "crypt", params(), metrics(0.8, 0.8))
    make_run(tmp_path, "cedr", params(task="cedr"), metrics(0.6, 0.6))
    assert [r.id for r in R.discover_runs(tmp_path, "cedr")] == ["cedr"]
    assert R.main(["--runs-dir", str(tmp_path), "--task", "cedr"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[1].split()[0] == "cedr" and "common.task" not in out[0]


def test_diff_config_and_metric_deltas(three_runs: Path) -> None:
    a, b, c = (R.load_run(three_runs / n) for n in ("a-seed42", "b-seed7", "c-transformer"))
    config = R.config_diff(a, b)
    assert config.values.tolist() == [["common.seed", "42", "7"]]
    assert R.config_diff(a, c)["key"].tolist() == ["extra_key", "train.model"]
    deltas = R.metric_deltas(a, b).set_index("metric")
    assert deltas.loc["holdout", "delta"] == pytest.approx(0.04)
    assert deltas.loc["tune", "delta"] == pytest.approx(-0.03)
    assert deltas.loc["holdout_asr", "a-seed42"] == 0.70 and np.isnan(deltas.loc["holdout_asr", "delta"])
    assert "model" not in deltas.index
    assert R.metric_deltas(a, c)["c-transformer"].isna().all()


def test_diff_ci_from_predictions(tmp_path: Path, capsys) -> None:
    make_run(tmp_path, "a", params(42), metrics(0.8, 0.8), predictions=holdout_predictions(seed=1, noise=0.6))
    make_run(tmp_path, "b", params(7), metrics(0.9, 0.8), predictions=holdout_predictions(seed=2, noise=0.3))
    a, b = R.load_run(tmp_path / "a"), R.load_run(tmp_path / "b")
    ci, why = R.holdout_ci(a, b, n=100)
    assert why == "" and ci is not None
    d, lo, hi = ci
    pa, pb = holdout_predictions(seed=1, noise=0.6), holdout_predictions(seed=2, noise=0.3)
    gold = pa[[f"gold_{l}" for l in LABELS]].to_numpy()
    expected = paired_bootstrap(gold, pb[[f"pred_{l}" for l in LABELS]].to_numpy(),
                                pa[[f"pred_{l}" for l in LABELS]].to_numpy(), n=100)
    assert ci == pytest.approx(expected) and lo <= d <= hi and d > 0        # b's probabilities are cleaner
    assert R.main(["--runs-dir", str(tmp_path), "--diff", "a", "b", "--resamples", "100"]) == 0
    out = capsys.readouterr().out
    assert f"holdout weighted F1 delta {d:+.4f}, paired bootstrap 95% CI [{lo:+.4f}, {hi:+.4f}]" in out
    assert "common.seed" in out and "delta = b - a" in out


def test_diff_says_why_the_ci_is_missing(tmp_path: Path, capsys) -> None:
    texts = [f"текст {i}" for i in range(60)]
    make_run(tmp_path, "a", params(42), metrics(0.8, 0.8), predictions=holdout_predictions(texts=texts))
    make_run(tmp_path, "none", params(7), metrics(0.9, 0.8))
    make_run(tmp_path, "shuffled", params(7), metrics(0.9, 0.8), predictions=holdout_predictions(texts=texts[::-1]))
    make_run(tmp_path, "shorter", params(7), metrics(0.9, 0.8), predictions=holdout_predictions(n=50))
    a = R.load_run(tmp_path / "a")
    ci, why = R.holdout_ci(a, R.load_run(tmp_path / "none"))
    assert ci is None and "predictions file missing for none" in why
    for other in ("shuffled", "shorter"):
        ci, why = R.holdout_ci(a, R.load_run(tmp_path / other))
        assert ci is None and "holdout texts differ" in why
    assert R.main(["--runs-dir", str(tmp_path), "--diff", "a", "none"]) == 0
    assert "no CI: predictions file missing" in capsys.readouterr().out
    assert R.main(["--runs-dir", str(tmp_path), "--diff", "a", "ghost"]) == 2


def test_unreadable_files_leave_blanks(tmp_path: Path) -> None:
    run = make_run(tmp_path, "broken", None)
    (run / "metrics.json").write_text("{not json", encoding="utf-8")
    (run / "params.yaml").write_text("a: [unclosed", encoding="utf-8")
    loaded = R.load_run(run)
    assert loaded.params == {} and loaded.metrics == {} and loaded.train_seconds is None
    table = R.runs_table([loaded, R.load_run(make_run(tmp_path, "ok", params(), metrics(0.8, 0.8)))])
    assert table["id"].tolist() == ["ok", "broken"]
    assert "broken" in R.render(table)
