"""Notebook paths: defaults resolve against the project root (any working directory), and the Kaggle layout."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from emotions.core import locations
from emotions.core.paths import DEMO_DATA_DIR, PROJECT_ROOT, RUNS_DIR, SUBMISSIONS_DIR, work_root


def kaggle_tree(tmp_path: Path, nested: bool = False) -> Path:
    """A folder laid out like a Kaggle kernel: the competition (valid + test) and one dataset attached."""
    root = tmp_path / "kaggle"
    comp = root / "input" / ("competitions/" if nested else "") / "cryptonite-hack-sf"
    comp.mkdir(parents=True)
    # the demo files stand in for the competition's; dataset.yaml declares their row count (150, not 8742)
    for name in ("valid.csv", "test_without_answers.csv", "dataset.yaml"):
        shutil.copy(DEMO_DATA_DIR / "cryptonite" / name, comp / name)
    shutil.copytree(DEMO_DATA_DIR / "ru-izard-emotions", root / "input" / "ru-izard-emotions")
    (root / "working").mkdir()
    return root


@pytest.fixture
def no_kaggle(monkeypatch, tmp_path):
    monkeypatch.setenv(locations.KAGGLE_ROOT_ENV, str(tmp_path / "nowhere"))


def test_defaults_are_in_the_checkout_whatever_the_working_directory(no_kaggle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    where = locations.resolve(None, None, "cryptonite")
    assert where == locations.Locations(RUNS_DIR / "manual", DEMO_DATA_DIR, SUBMISSIONS_DIR, kaggle=False)
    assert where.run_dir.is_relative_to(PROJECT_ROOT)
    given = locations.resolve("out", "", "cryptonite")           # relative: to the working directory
    assert given.run_dir == tmp_path / "out" and given.data_dir == DEMO_DATA_DIR


def test_missing_data_dir_names_the_folder(no_kaggle, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        locations.resolve(None, tmp_path / "nope", "cryptonite")


@pytest.mark.parametrize("nested", [False, True], ids=["input/<competition>", "input/competitions/<slug>"])
def test_kaggle_layout_is_found_and_linked(tmp_path, monkeypatch, nested):
    root = kaggle_tree(tmp_path, nested)
    monkeypatch.setenv(locations.KAGGLE_ROOT_ENV, str(root))
    where = locations.resolve(None, None, "cryptonite")
    assert where.kaggle
    assert where.run_dir == root / "working" / "runs" / "manual"
    assert where.submissions_dir == root / "working"
    assert where.data_dir == root / "working" / locations.KAGGLE_DATA_LINKS
    assert (where.data_dir / "cryptonite" / "valid.csv").is_file()
    assert (where.data_dir / "ru-izard-emotions" / "train.csv").is_file()
    assert locations.resolve(None, None, "cryptonite").data_dir == where.data_dir      # idempotent


def test_kaggle_dataset_laid_out_like_a_data_root_is_used_as_is(tmp_path, monkeypatch):
    root = tmp_path / "kaggle"
    (root / "working").mkdir(parents=True)
    shutil.copytree(DEMO_DATA_DIR, root / "input" / "my-emotions-data")
    monkeypatch.setenv(locations.KAGGLE_ROOT_ENV, str(root))
    assert locations.resolve(None, None, "cedr").data_dir == root / "input" / "my-emotions-data"


def test_kaggle_without_the_competition_says_what_to_attach(tmp_path, monkeypatch):
    root = tmp_path / "kaggle"
    (root / "input").mkdir(parents=True)
    (root / "working").mkdir()
    monkeypatch.setenv(locations.KAGGLE_ROOT_ENV, str(root))
    with pytest.raises(FileNotFoundError, match="attach the competition"):
        locations.resolve(None, None, "cryptonite")


def test_read_only_package_writes_derived_files_under_kaggle_working(tmp_path, monkeypatch):
    root = kaggle_tree(tmp_path)
    monkeypatch.setenv(locations.KAGGLE_ROOT_ENV, str(root))
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert work_root(tmp_path / "somewhere") == root / "working"
    monkeypatch.undo()
    assert work_root(PROJECT_ROOT) == PROJECT_ROOT


@pytest.mark.slow
def test_papermill_cli_runs_a_notebook_on_a_kaggle_layout_without_edits(tmp_path):
    """`papermill 01_eda.ipynb out.ipynb` with no parameters, from an unrelated folder, on a Kaggle layout."""
    root = kaggle_tree(tmp_path)
    env = {**os.environ, locations.KAGGLE_ROOT_ENV: str(root), "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    out = tmp_path / "executed.ipynb"
    proc = subprocess.run([sys.executable, "-m", "papermill", str(PROJECT_ROOT / "notebooks" / "01_eda.ipynb"),
                           str(out), "--no-progress-bar"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = root / "working" / "runs" / "manual"
    assert (run / "manifests" / "01_eda.json").is_file() and (run / "img" / "eda_class_histogram.png").is_file()
    book = nbformat.read(out, as_version=4)
    text = "".join(o.get("text", "") for c in book.cells for o in c.get("outputs", []) if o.output_type == "stream")
    assert "Kaggle" in text and "Warning" not in text
    assert not any(o.output_type == "error" for c in book.cells for o in c.get("outputs", []))


def test_first_code_cell_finds_the_repository_attached_on_kaggle(tmp_path):
    """Without an installed package, the notebook's first lines add a repository attached under input/."""
    root = tmp_path / "kaggle"
    (root / "input" / "emotions-repo").mkdir(parents=True)
    (root / "input" / "emotions-repo" / "emotions").symlink_to(PROJECT_ROOT / "emotions", target_is_directory=True)
    book = nbformat.read(PROJECT_ROOT / "notebooks" / "01_eda.ipynb", as_version=4)
    setup = next(c.source for c in book.cells if c.cell_type == "code" and "sys.path +=" in c.source)
    bootstrap = [line for line in setup.splitlines() if "sys.path +=" in line]
    assert len(bootstrap) == 1                                     # one line, the same in every notebook
    code = bootstrap[0] + "\nimport emotions\nprint(emotions.__file__)\n"
    env = {"EMOTIONS_KAGGLE_ROOT": str(root), "PATH": os.environ.get("PATH", "")}
    proc = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)                 # -S: no site-packages, so nothing is installed
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith(str(root / "input" / "emotions-repo" / "emotions"))
