"""The checked configuration schema, row counts from one key, staging, and the run's own submission."""

import time
from pathlib import Path

import pandas as pd
import papermill
import pytest
import yaml

from emotions.core.options import OptionsError
from emotions.core.paths import CONFIGS_DIR, CRYPTONITE_TEST, DEMO_DATA_DIR, NOTEBOOKS_DIR
from emotions.data.labels import CRYPTONITE_LABELS
from emotions.data.readers import DataValidationError, expected_row_count, load_cryptonite, load_labeled_csv
from emotions.models import baseline as B, cnn as C, transformer as T
from emotions.pipeline import stage as S
from emotions.pipeline.config import available_profiles, load_config
from emotions.pipeline.runner import main, section_of
from emotions.pipeline.schema import Config, schema_keys
from emotions.pipeline.submission import describe_latest, run_submission, write_submission


# --- the schema --------------------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["cryptonite", "cedr", "emotions-en"])
def test_every_shipped_config_is_valid(task):
    for profile in available_profiles():
        cfg = load_config(task, profile)
        assert cfg["common"]["expected_test_rows"] == "auto"


@pytest.mark.parametrize("override, expected", [
    ("sed=7", r"unknown key 'common.sed'; did you mean 'seed'\?  \[from -p sed=7\]"),
    ("train.transformer.epoch=1", r"unknown key 'train.transformer.epoch'; did you mean 'epochs' or 'mlm_epochs'\?"),
    ("train.baseline.Cc=2", r"unknown key 'train.baseline.Cc'; did you mean 'C'\?"),
    ("train.transformer.epochs=abc", r"train.transformer.epochs = 'abc': expected int \(input should be a valid integer"),
    ("seed=abc", r"common.seed = 'abc': expected int"),
    ("train.baseline.C=-1", r"train.baseline.C = -1: expected float \(input should be greater than 0\)"),
    ("train.model=bert", r"train.model = 'bert': expected 'baseline' \| 'transformer' \| 'cnn'"),
    ("extend.sources.izard.enabeld=true", r"unknown key 'extend.sources.izard.enabeld'; did you mean 'enabled'"),
    ("augment.methods.synonyms.p=abc", r"augment.methods.synonyms.p = 'abc': expected float"),
    ("extend.expected_test_rows=8742", r"\(it is now common.expected_test_rows\)"),
    ("ablation.model_params={Cc: 1}", r"unknown key 'ablation.model_params.Cc'; did you mean 'C'"),
    ("stages=[01_eda,02_extnd]", r"unknown stage '02_extnd'; did you mean \['02_extend'"),
])
def test_typos_and_wrong_types_name_key_type_and_closest(override, expected):
    with pytest.raises(OptionsError, match=expected):
        load_config("cryptonite", "full", [override])


def test_unreadable_value_is_named():
    with pytest.raises(ValueError, match=r"override 'extend.sources.user_csvs=\[a.csv': the value is not valid YAML"):
        load_config("cryptonite", "full", ["extend.sources.user_csvs=[a.csv"])


def test_values_are_converted_to_their_types():
    cfg = load_config("cryptonite", "full", ["train.transformer.lr=1e-4", "seed=7", "expected_test_rows=150"])
    assert cfg["train"]["transformer"]["lr"] == 1e-4          # YAML reads 1e-4 as a string
    assert cfg["common"]["seed"] == 7 and cfg["common"]["expected_test_rows"] == 150
    assert "epochs" not in load_config("cryptonite", "baseline")["train"]["transformer"]   # defaults not filled in


def test_a_typo_in_a_yaml_layer_is_caught(tmp_path):
    configs = tmp_path / "configs"
    for p in CONFIGS_DIR.rglob("*.yaml"):
        (configs / p.relative_to(CONFIGS_DIR)).parent.mkdir(parents=True, exist_ok=True)
        (configs / p.relative_to(CONFIGS_DIR)).write_text(p.read_text(encoding="utf-8"), encoding="utf-8")
    prof = configs / "profiles" / "quick.yaml"
    prof.write_text(prof.read_text(encoding="utf-8").replace("epochs: 3", "epoch: 3"), encoding="utf-8")
    with pytest.raises(OptionsError, match="unknown key 'train.transformer.epoch'; did you mean 'epochs'"):
        load_config("cryptonite", "quick", configs_dir=configs)


def test_cli_rejects_before_any_stage_runs(tmp_path, capsys):
    t0 = time.time()
    assert main(["--runs-dir", str(tmp_path), "-p", "train.transformer.epochs=abc"]) == 2
    err = capsys.readouterr().err
    assert "train.transformer.epochs = 'abc': expected int" in err and "[from -p train.transformer.epochs=abc]" in err
    assert not any(tmp_path.iterdir())                       # no run folder, no stage
    assert time.time() - t0 < 60


def test_model_defaults_come_from_the_schema():
    assert T.DEFAULTS == T.TransformerOptions().model_dump()
    assert C.DEFAULTS == C.CNNOptions().model_dump() and B.DEFAULTS == B.BaselineOptions().model_dump()
    keys = set(schema_keys())
    assert {f"train.transformer.{k}" for k in T.DEFAULTS} <= keys
    assert {"common.seed", "common.expected_test_rows", "train.baseline.C", "extend.leak.threshold"} <= keys
    with pytest.raises(ValueError, match="unknown key 'epoch'; did you mean 'epochs'"):
        T.merge_params({"epoch": 1})


def test_every_section_key_is_a_parameter_of_its_notebook():
    for section in ("eda", "extend", "augment", "train", "export", "ablation", "evaluate", "submission"):
        nb = next(NOTEBOOKS_DIR.glob(f"[0-9][0-9]_{section}.ipynb"))
        declared = set(papermill.inspect_notebook(str(nb)))
        assert set(Config.model_fields[section].annotation.model_fields) <= declared, section
        assert section_of(nb.stem) == section
    for nb in ("02_extend", "06_submission"):      # both check the test file's rows with the one common key
        assert "expected_test_rows" in papermill.inspect_notebook(str(NOTEBOOKS_DIR / f"{nb}.ipynb"))


# --- row counts ---------------------------------------------------------------------------------------

def _copy_cryptonite(src: Path, dst: Path, drop_rows: int = 0, declare: int | None = None) -> Path:
    (dst / "cryptonite").mkdir(parents=True)
    for name in ("valid.csv", "test_without_answers.csv"):
        df = pd.read_csv(src / "cryptonite" / name, dtype=str, keep_default_na=False)
        if name.startswith("test"):
            df = df.iloc[drop_rows:]
        df.to_csv(dst / "cryptonite" / name, index=False)
    if declare is not None:
        (dst / "cryptonite" / "dataset.yaml").write_text(yaml.safe_dump({"rows": {"test_without_answers.csv": declare}}))
    return dst


def test_demo_root_declares_its_test_rows():
    assert expected_row_count(DEMO_DATA_DIR / CRYPTONITE_TEST) == (150, f"declared in {DEMO_DATA_DIR / 'cryptonite/dataset.yaml'}")
    assert len(load_cryptonite(DEMO_DATA_DIR)[2]) == 150      # on by default


def test_undeclared_root_gets_the_real_files_count(tmp_path):
    root = _copy_cryptonite(DEMO_DATA_DIR, tmp_path / "root")
    with pytest.raises(DataValidationError, match=r"test_without_answers.csv: has 150 rows, expected 8742 \(the real "
                                                  r"cryptonite file's count"):
        load_cryptonite(root)


def test_missing_row_fails_with_both_counts(tmp_path):
    root = _copy_cryptonite(DEMO_DATA_DIR, tmp_path / "root", drop_rows=1, declare=150)
    with pytest.raises(DataValidationError, match=r"has 149 rows, expected 150 \(declared in .*dataset.yaml\)"):
        load_cryptonite(root)
    with pytest.raises(DataValidationError, match=r"has 149 rows, expected 200 \(common.expected_test_rows\)"):
        load_labeled_csv(root / CRYPTONITE_TEST, CRYPTONITE_LABELS, expected_rows=200)
    assert len(load_cryptonite(root, expected_test_rows=None)[2]) == 149     # null: no check


def test_semicolon_file_says_so(tmp_path):
    p = tmp_path / "valid.csv"
    p.write_text("text;" + ";".join(CRYPTONITE_LABELS) + "\nпривет;0;0;0;1;0;0;0\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match="looks like ';'-separated"):
        load_labeled_csv(p, CRYPTONITE_LABELS)


# --- staging ------------------------------------------------------------------------------------------

def test_failed_rerun_restores_the_previous_outputs(tmp_path):
    run = tmp_path / "run"
    st = S.Stage("04_train", run, task="cryptonite")
    model_dir = st.output("model", "model")
    model_dir.mkdir()
    (model_dir / "w.bin").write_bytes(b"good")
    st.finish()
    S.state_path(run, "04_train").write_text("{}")
    nb = run / "notebooks" / "04_train.ipynb"
    nb.parent.mkdir()
    nb.write_text("old")
    moved = S.archive_stage(run, "04_train", nb)
    assert not (run / "model").exists() and moved is not None
    (run / "model").mkdir()
    (run / "model" / "w.bin").write_bytes(b"partial")             # the failed attempt's leftovers
    nb.write_text("failed, with its traceback")
    restored = S.restore_stage(run, moved, keep=(nb,))
    assert (run / "model" / "w.bin").read_bytes() == b"good" and S.read_manifest(run, "04_train") is not None
    assert S.state_path(run, "04_train").is_file() and "model" in restored
    assert nb.read_text() == "failed, with its traceback"              # the traceback stays where it is named
    assert (moved.with_name(moved.name + "-failed") / "model" / "w.bin").read_bytes() == b"partial"


def test_figures_stay_in_the_run_folder(tmp_path, monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gallery = tmp_path / "img"
    from emotions.core import paths
    monkeypatch.setattr(paths, "IMG_DIR", gallery)
    st = S.Stage("01_eda", tmp_path / "run", task="cryptonite")
    fig = plt.figure()
    st.figure(fig, "x")
    plt.close(fig)
    assert (tmp_path / "run" / "img" / "x.png").is_file() and not gallery.exists()


# --- the run's own submission ----------------------------------------------------------------------------

def test_summary_names_the_run_and_where_the_latest_came_from(tmp_path):
    template = pd.DataFrame({"text": ["a", "b"], **{l: [0, 0] for l in CRYPTONITE_LABELS}})
    subs = tmp_path / "subs"
    one, two = template.copy(), template.copy()
    two["joy"] = [1, 0]
    write_submission(one, template, CRYPTONITE_LABELS, run_dir=tmp_path / "r1", submissions_dir=subs, run_id="r1")
    write_submission(two, template, CRYPTONITE_LABELS, run_dir=tmp_path / "r2", submissions_dir=subs, run_id="r2")
    own = run_submission(tmp_path / "r1", subs, "r1")
    assert own == subs / "submission-r1.csv"
    assert "holds run r2 (2 rows), not this run's submission" in describe_latest(subs, own)
    assert "is this run's submission" in describe_latest(subs, run_submission(tmp_path / "r2", subs, "r2"))
    assert run_submission(tmp_path / "none", subs, "none") is None
