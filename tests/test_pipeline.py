"""The whole pipeline on the demo data, through papermill, as a user runs it."""

from pathlib import Path

import pandas as pd
import pytest

from emotions.data.labels import CRYPTONITE_LABELS
from emotions.core.paths import CRYPTONITE_TEST, DEMO_DATA_DIR
from emotions.pipeline.runner import main
from emotions.pipeline.submission import validate_submission_file

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    mp = pytest.MonkeyPatch()
    mp.setenv("EMOTIONS_IMG_DIR", str(root / "img"))   # keep the project's img/ untouched
    yield {"runs": root / "runs", "subs": root / "subs"}
    mp.undo()


def run(dirs, *extra):
    return main(["--runs-dir", str(dirs["runs"]), "--submissions-dir", str(dirs["subs"]),
                 "--run-id", "demo", "-p", "train.model=baseline", *extra])


def test_full_run_then_skip_then_force_then_failure(dirs, capsys):
    assert run(dirs) == 0
    out = capsys.readouterr().out
    assert "[6/8] 06_submission: done" in out and "[8/8] 08_ablation: done" in out and "holdout: weighted_f1" in out
    run_dir = dirs["runs"] / "demo"
    sub = dirs["subs"] / "submission.csv"
    validate_submission_file(sub, DEMO_DATA_DIR / CRYPTONITE_TEST, CRYPTONITE_LABELS)
    assert pd.read_csv(sub)[CRYPTONITE_LABELS].to_numpy().sum() > 0
    for rel in ["metrics.json", "params.yaml", "extension_report.json", "img/eda_class_histogram.png",
                "notebooks/04_train.ipynb", "model/model_card.json", "submission.csv"]:
        assert (run_dir / rel).exists(), rel

    # a second identical command skips every stage
    assert run(dirs) == 0
    out = capsys.readouterr().out
    assert out.count("skipped") == 8 and "running" not in out

    # --force re-runs, and the earlier outputs are kept under history/
    assert run(dirs, "--only", "submission", "--force") == 0
    assert "06_submission: running (forced)" in capsys.readouterr().out
    assert list((run_dir / "history").glob("*-06_submission/submission.csv"))

    # a stage failing on purpose is named with its notebook; the earlier submission stays intact
    before = sub.read_bytes()
    assert run(dirs, "--from", "train", "-p", "train.baseline.C=-1") == 1
    err = capsys.readouterr().err
    assert "04_train: FAILED" in err and str(run_dir / "notebooks" / "04_train.ipynb") in err
    assert sub.read_bytes() == before


def test_bad_arguments_are_clear_errors(dirs, capsys):
    assert main(["--profile", "nope"]) == 2
    assert "unknown profile 'nope'" in capsys.readouterr().err
    assert main(["-p", "train.modle=baseline", "--list"]) == 2
    assert "unknown config key 'train.modle'" in capsys.readouterr().err
    assert main(["--data-dir", str(Path("/nonexistent"))]) == 2
    assert "does not exist" in capsys.readouterr().err
