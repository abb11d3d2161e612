"""The notebooks are the source: committed clean (no outputs, stable cell ids), each a papermill stage."""

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_clean_and_valid(path):
    book = nbformat.read(path, as_version=4)
    nbformat.validate(book)
    code = [c for c in book.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), f"{path.name}: clear its outputs"
    ids = [c.id for c in book.cells]
    assert len(set(ids)) == len(ids), f"{path.name}: duplicate cell ids"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_has_one_parameters_cell_and_a_manifest(path):
    book = nbformat.read(path, as_version=4)
    tagged = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "run_dir" in tagged[0].source
    assert book.cells[0].cell_type == "markdown"                 # reads well when opened by hand
    assert any("nb.finish(" in c.source for c in book.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_are_literals_and_paths_resolve_in_the_next_cell(path):
    """papermill injects overrides after the parameters cell, so it holds literals only; path defaults are
    None (resolved against the project root or the Kaggle layout), never relative to notebooks/."""
    import ast
    import re

    book = nbformat.read(path, as_version=4)
    index = next(i for i, c in enumerate(book.cells) if "parameters" in c.metadata.get("tags", []))
    for node in ast.parse(book.cells[index].source).body:
        assert isinstance(node, ast.Assign), f"{path.name}: parameters cell line {node.lineno} is not an assignment"
        ast.literal_eval(node.value)
        name = node.targets[0].id
        if name.endswith("_dir"):
            assert ast.literal_eval(node.value) is None, f"{path.name}: {name} default must be None"
    assert f'begin("{path.stem}", globals())' in book.cells[index + 1].source, \
        f"{path.name}: resolve the folders and the config right after the parameters"
    code = "\n".join(c.source for c in book.cells if c.cell_type == "code")
    assert not re.search(r"""["']\.\./""", code), f"{path.name}: a path relative to notebooks/"
    assert "nb.finish(result" in book.cells[-1].source
