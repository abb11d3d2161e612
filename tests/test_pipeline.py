"""The whole pipeline on the demo data, through papermill, as a user runs it."""

import json
import shutil
import signal
import subprocess
import sys

import pandas as pd
import pytest

from emotions.data.utterances import load_utterances
from emotions.data.labels import CRYPTONITE_LABELS
from emotions.core import paths
from emotions.core.paths import CRYPTONITE_TEST, DEMO_DATA_DIR, PROJECT_ROOT
from emotions.pipeline.runner import main
from emotions.pipeline.submission import validate_submission_file

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    mp = pytest.MonkeyPatch()
    mp.setenv("EMOTIONS_IMG_DIR", str(root / "img"))   # keep the project's img/ untouched
    yield {"root": root, "runs": root / "runs", "subs": root / "subs"}
    mp.undo()


def run(dirs, *extra, run_id="demo"):
    return main(["--runs-dir", str(dirs["runs"]), "--submissions-dir", str(dirs["subs"]),
                 "--run-id", run_id, "-p", "train.model=baseline", *extra])


def test_full_run_then_skip_then_force_then_failure(dirs, capsys):
    assert run(dirs) == 0
    out = capsys.readouterr().out
    assert "[6/8] 06_submission: done" in out and "[8/8] 08_ablation: off (-p ablation.enabled=true switches it on)" in out and "holdout: weighted_f1" in out
    run_dir = dirs["runs"] / "demo"
    sub = dirs["subs"] / "submission.csv"
    validate_submission_file(sub, DEMO_DATA_DIR / CRYPTONITE_TEST, CRYPTONITE_LABELS)
    assert pd.read_csv(sub)[CRYPTONITE_LABELS].to_numpy().sum() > 0
    for rel in ["metrics.json", "params.yaml", "extension_report.json", "img/eda_class_histogram.png",
                "notebooks/04_train.ipynb", "model/model_card.json", "submission.csv"]:
        assert (run_dir / rel).exists(), rel
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert {"tune", "tune_asr", "holdout", "holdout_asr"} <= set(metrics)          # clean and ASR-style numbers
    assert metrics["holdout_asr"]["n"] == metrics["holdout"]["n"] and 0 < metrics["holdout_asr"]["weighted_f1"] <= 1
    # the test's second population: the written utterances' holdout, the whole-test estimate, the population view
    assert metrics["holdout_utterances"]["n"] == len(load_utterances("eval", DEMO_DATA_DIR / "utterances")) and "holdout_utterances_asr" not in metrics
    assert 0 < metrics["holdout_mixed"]["weighted_f1"] <= 1
    card = json.loads((run_dir / "model" / "model_card.json").read_text(encoding="utf-8"))
    assert card["threshold_split"] == "tune+utterances" and card["utterance_share"] == 0.38
    report = json.loads((run_dir / "extension_report.json").read_text(encoding="utf-8"))["sources"]["utterances"]
    reserved = report["reserved_for_tune_utterances"]     # rows_read: what is left for training
    assert report["rows_read"] + reserved == len(load_utterances("train", DEMO_DATA_DIR / "utterances"))
    assert reserved == metrics["tune_utterances"]["n"] > 0 and 0 < report["rows_kept"] <= report["rows_read"]
    submission = json.loads((run_dir / "manifests" / "06_submission.json").read_text(encoding="utf-8"))["metrics"]
    assert sum(submission["population_rows"].values()) == 150 and (run_dir / "img/submission_label_mix.png").is_file()
    populations = pd.read_csv(run_dir / "test_populations.csv")
    assert set(populations["population"]) == {"comment", "utterance"} and len(populations) == 150

    # a second identical command skips every stage
    assert run(dirs) == 0
    out = capsys.readouterr().out
    assert out.count("skipped") == 8 and "running" not in out

    # --force re-runs, and the earlier outputs are kept under history/
    assert run(dirs, "--only", "submission", "--force") == 0
    assert "06_submission: running (forced)" in capsys.readouterr().out
    assert list((run_dir / "history").glob("*-06_submission/submission.csv"))

    # a run never writes the project's figure gallery (img/<task>/)
    assert not (dirs["root"] / "img").exists()


def test_failed_rerun_keeps_the_previous_model(dirs, capsys):
    """A re-run of 04_train that fails (a missing encoder) leaves the last good model, metrics and
    submission in place, says so, and keeps the failed notebook (with its traceback) where it names it."""
    run_dir = dirs["runs"] / "demo"
    keep = {rel: (run_dir / rel).read_bytes() for rel in
            ["model/model_card.json", "metrics.json", "submission.csv", "manifests/04_train.json"]}
    latest = (dirs["subs"] / "submission.csv").read_bytes()
    assert run(dirs, "--only", "train", "-p", "train.model=transformer",
               "-p", "train.transformer.encoder=/nonexistent/encoder") == 1
    err = capsys.readouterr().err
    assert "04_train: FAILED" in err and str(run_dir / "notebooks" / "04_train.ipynb") in err
    assert "Its previous outputs are back in place (" in err and "model" in err
    assert {rel: (run_dir / rel).read_bytes() for rel in keep} == keep
    assert json.loads(keep["model/model_card.json"])["kind"] == "baseline"
    assert (dirs["subs"] / "submission.csv").read_bytes() == latest
    # the same command as the last success skips 04_train again: its state came back too
    assert run(dirs, "--only", "train") == 0
    assert "04_train: skipped" in capsys.readouterr().out


def test_skipped_rerun_reports_its_own_submission(dirs, capsys, tmp_path, monkeypatch):
    """Demo run, then a run on another data root, then the demo command again (every stage skipped):
    the summary and --submit use the demo run's submission, and say where submission.csv came from."""
    other = tmp_path / "other"
    shutil.copytree(DEMO_DATA_DIR, other)
    test = pd.read_csv(other / CRYPTONITE_TEST, dtype=str, keep_default_na=False)
    test.iloc[::-1].to_csv(other / CRYPTONITE_TEST, index=False)        # same rows, other order
    assert run(dirs, "--data-dir", str(other), "-p",
               "stages=[02_extend,03_augment,04_train,06_submission]", run_id="other") == 0
    capsys.readouterr()
    subs = dirs["subs"]
    assert (subs / "submission.csv").read_bytes() == (subs / "submission-other.csv").read_bytes()

    assert run(dirs) == 0
    out = capsys.readouterr().out
    assert "running" not in out
    assert f"submission: {subs / 'submission-demo.csv'} (this run's)" in out
    assert (f"latest: {subs / 'submission.csv'} holds run other (150 rows), not this run's submission; "
            f"--submit uses this run's {subs / 'submission-demo.csv'}") in out

    # --submit without the Kaggle CLI or credentials uploads nothing and says so with a non-zero exit
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle"))
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.delenv("KAGGLE_KEY", raising=False)
    assert run(dirs, "--submit") == 1
    captured = capsys.readouterr()
    assert f"error: nothing was uploaded to Kaggle ({subs / 'submission-demo.csv'})" in captured.err


def test_publish_figures_is_explicit(dirs, capsys, monkeypatch):
    gallery = dirs["root"] / "gallery"
    monkeypatch.setattr(paths, "IMG_DIR", gallery)
    assert run(dirs, "--only", "eda") == 0 and not gallery.exists()
    assert run(dirs, "--only", "eda", "--publish-figures") == 0
    assert "published" in capsys.readouterr().out
    assert (gallery / "cryptonite" / "eda_class_histogram.png").is_file()


def test_ctrl_c_prints_one_line_and_exits_130(dirs):
    cmd = [sys.executable, "run_all.py", "--runs-dir", str(dirs["runs"]), "--submissions-dir", str(dirs["subs"]),
           "--run-id", "demo", "-p", "train.model=baseline", "--only", "train", "--force"]
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in proc.stdout:
        if "04_train: running" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert err.strip().splitlines() == [
        "interrupted during 04_train; its previous outputs are back in place. Re-run the same command to resume."]
    assert (dirs["runs"] / "demo" / "model" / "model_card.json").is_file()


def test_bad_arguments_are_clear_errors(dirs, capsys):
    assert main(["--profile", "nope"]) == 2
    assert "unknown profile 'nope'" in capsys.readouterr().err
    assert main(["-p", "train.modle=baseline", "--list"]) == 2
    assert "unknown key 'train.modle'; did you mean 'model' or 'model_seed'?" in capsys.readouterr().err
    assert main(["--data-dir", str(dirs["root"] / "no-such-data-root")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_submission_from_an_ensemble_of_runs(dirs, capsys):
    """A second run on the same data and seed (another model), then the demo run's submission stage with
    `submission.ensemble_runs`: one submission from both models, a report, and a clear error for a run
    made from other rows."""
    assert run(dirs, "-p", "train.baseline.C=1.0", "-p", "stages=[02_extend,03_augment,04_train]",
               run_id="demo-c1") == 0
    capsys.readouterr()
    assert run(dirs, "--only", "submission", "-p", "submission.ensemble_runs=[demo-c1]") == 0
    out = capsys.readouterr().out
    assert "06_submission: running (parameters changed)" in out
    run_dir = dirs["runs"] / "demo"
    report = json.loads((run_dir / "ensemble.json").read_text(encoding="utf-8"))
    assert [p.split("/")[-1] for p in report["runs"]] == ["demo", "demo-c1"]
    assert set(report["holdout_weighted_f1"]["holdout"]) == {"demo", "demo-c1", "ensemble"}
    validate_submission_file(dirs["subs"] / "submission.csv", DEMO_DATA_DIR / CRYPTONITE_TEST, CRYPTONITE_LABELS)
    manifest = json.loads((run_dir / "manifests" / "06_submission.json").read_text(encoding="utf-8"))
    assert "ensemble_model_1" in manifest["inputs"] and manifest["metrics"]["ensemble_runs"] == 2

    # a run that does not exist (or whose rows differ: tests/test_ensemble.py) fails loudly; the last submission stays
    before = (dirs["subs"] / "submission.csv").read_bytes()
    assert run(dirs, "--only", "submission", "-p", "submission.ensemble_runs=[demo-typo]") == 1
    assert "ensemble run 'demo-typo': no trained model" in capsys.readouterr().err
    assert (dirs["subs"] / "submission.csv").read_bytes() == before
