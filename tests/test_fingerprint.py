"""The stage cache knows what produced a result: package code, library versions; manifests say where from."""

import re
import shutil
from pathlib import Path

import pytest

from emotions.pipeline import fingerprint as fp
from emotions.pipeline import runner
from emotions.pipeline.stage import read_manifest


def test_editing_a_default_in_a_copy_of_the_package_changes_the_code_hash(tmp_path):
    pkg = tmp_path / "emotions"
    shutil.copytree(fp.PACKAGE_DIR, pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    before = fp.package_source_hash(pkg)
    assert before == fp.package_source_hash(fp.PACKAGE_DIR)          # caches are not part of it
    (pkg / "models" / "__pycache__").mkdir(exist_ok=True)
    (pkg / "models" / "__pycache__" / "x.pyc").write_bytes(b"junk")
    assert fp.package_source_hash(pkg) == before
    baseline = pkg / "models" / "kind_options.py"       # the baseline's DEFAULTS come from BaselineOptions here
    text = baseline.read_text(encoding="utf-8")
    edited, n = re.subn(r"\bC: float = Field\(([0-9.eE+-]+)", lambda m: f"C: float = Field({float(m.group(1)) * 2}",
                        text, count=1)
    assert n == 1, "options.py BaselineOptions has no C default to edit"
    baseline.write_text(edited, encoding="utf-8")
    after = fp.package_source_hash(pkg)
    assert after != before
    old = fp.stage_fingerprint({"C": 1}, baseline, code=before)
    assert fp.what_changed(old, fp.stage_fingerprint({"C": 1}, baseline, code=after)) == "code changed"


def test_what_changed_names_library_versions_and_old_states():
    libs = {"torch": "2.1.0", "numpy": "2.0.0"}
    old = {"params": "p", "notebook": "n", "code": "c", "libraries": libs}
    assert fp.what_changed(old, dict(old)) == ""
    assert fp.what_changed(old, {**old, "libraries": {**libs, "torch": "2.2.0"}}) == "torch 2.1.0 → 2.2.0"
    assert fp.what_changed(old, {**old, "params": "q", "code": "d"}) == "parameters changed, code changed"
    assert fp.what_changed({"params": "p", "notebook": "n"}, old) == \
        "code changed, library versions were not recorded"
    assert fp.what_changed(None, old) == "never ran"


@pytest.fixture()
def run_eda(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOTIONS_IMG_DIR", str(tmp_path / "img"))

    def run(*extra: str) -> int:
        return runner.main(["--runs-dir", str(tmp_path / "runs"), "--submissions-dir", str(tmp_path / "subs"),
                            "--run-id", "fp", "--only", "eda", *extra])
    return run


def test_code_or_library_change_reruns_the_stage_and_says_why(run_eda, tmp_path, monkeypatch, capsys):
    assert run_eda() == 0
    assert "01_eda: running (never ran)" in capsys.readouterr().out
    assert run_eda() == 0
    assert "01_eda: skipped (unchanged" in capsys.readouterr().out

    monkeypatch.setattr(runner, "package_source_hash", lambda: "0" * 64)      # as if a default were edited
    assert run_eda() == 0
    assert "01_eda: running (code changed)" in capsys.readouterr().out

    versions = {**fp.library_versions(), "torch": "0.0.1"}
    monkeypatch.setattr(runner, "library_versions", lambda: versions)
    assert run_eda() == 0
    assert f"01_eda: running (torch {fp.library_versions()['torch']} → 0.0.1)" in capsys.readouterr().out

    manifest = read_manifest(tmp_path / "runs" / "fp", "01_eda")
    prov = manifest["provenance"]
    assert prov["code"]["package_sha256"] == fp.package_source_hash()
    assert prov["code"]["git_commit"] is None or len(prov["code"]["git_commit"]) == 40
    assert set(fp.RESULT_LIBRARIES) <= set(prov["libraries"]) and prov["libraries"]["torch"]
    assert prov["python"] and prov["device"] and prov["torch_threads"] >= 1


def test_git_state_outside_a_checkout_is_none(tmp_path):
    assert fp.git_state(tmp_path) is None
    assert fp.git_state(Path(fp.PACKAGE_DIR).parent) is None or set(fp.git_state(fp.PACKAGE_DIR.parent)) == \
        {"commit", "dirty"}
