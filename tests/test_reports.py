"""Executed notebooks read as reports, and the console shows the training progress (a neural run on the demo data)."""

import contextlib
import io
import re

import nbformat
import pytest

from emotions.pipeline.runner import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def neural_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("reports")
    mp = pytest.MonkeyPatch()
    mp.setenv("EMOTIONS_IMG_DIR", str(root / "img"))
    out = io.StringIO()                     # capsys is function-scoped: capture the module-wide run here
    with contextlib.redirect_stdout(out):
        code = main(["--runs-dir", str(root / "runs"), "--submissions-dir", str(root / "subs"), "--run-id", "r",
                     "-p", "train.model=transformer", "-p", "train.transformer.encoder=tiny",
                     "-p", "train.transformer.epochs=2", "-p", "train.transformer.tiny_layers=1"])
    mp.undo()
    return code, out.getvalue(), root / "runs" / "r"


def outputs(book):
    return [o for c in book.cells if c.cell_type == "code" for o in c.outputs]


def test_console_shows_each_epoch_with_speed_and_eta(neural_run):
    code, console, _ = neural_run
    assert code == 0, console
    epochs = [l for l in console.splitlines() if re.match(r"\s+epoch \d/2: 100%", l)]
    assert len(epochs) == 2 and all("samples_s=" in l and "loss=" in l for l in epochs), console


@pytest.mark.parametrize("stage", ["01_eda", "02_extend", "03_augment", "04_train", "05_evaluate", "06_submission"])
def test_executed_notebooks_are_reports(neural_run, stage):
    _, _, run_dir = neural_run
    book = nbformat.read(run_dir / "notebooks" / f"{stage}.ipynb", as_version=4)
    outs = outputs(book)
    assert len(outs) <= 30, f"{stage}: {len(outs)} outputs"
    streams = "".join(o.get("text", "") for o in outs if o.output_type == "stream")
    assert "Warning" not in streams and "it/s]" not in streams and "%|" not in streams, streams[-2000:]
    results = [o.data.get("text/plain", "") for o in outs if o.output_type == "execute_result"]
    assert not [r for r in results if "PosixPath(" in r or r.lstrip().startswith("{")], results
    last = book.cells[-1].outputs
    assert last and last[-1].output_type == "execute_result" and "text/html" in last[-1].data    # summary table
