"""The committed notebooks are what scripts/build_notebooks.py writes, and each is a papermill stage."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_notebooks_match_their_builder(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build_notebooks.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True)
    built = sorted(p.name for p in tmp_path.glob("*.ipynb"))
    assert built == [p.name for p in NOTEBOOKS]
    for p in NOTEBOOKS:
        assert (tmp_path / p.name).read_bytes() == p.read_bytes(), f"{p.name}: re-run scripts/build_notebooks.py"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_has_one_parameters_cell_and_a_manifest(path):
    book = nbformat.read(path, as_version=4)
    tagged = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "run_dir" in tagged[0].source
    assert book.cells[0].cell_type == "markdown"                 # reads well when opened by hand
    assert any("stage.finish(" in c.source for c in book.cells if c.cell_type == "code")
