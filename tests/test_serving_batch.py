"""Batch prediction loses nothing: blank CSV lines stay rows, truncation is reported, one job per output,
stale parts of a dead job, and an input that would be overwritten."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emotions.data.labels import get_task
from emotions.data.preprocess import PreprocessConfig
from emotions.models.base import Predictor
from emotions.serving import batch as B

ROOT = Path(__file__).resolve().parents[1]
LABELS = get_task("cryptonite").labels


class LengthModel(Predictor):
    """No weights: the probabilities follow the text's length, so every answer is easy to check."""

    kind = "length"

    def __init__(self):
        super().__init__(labels=LABELS, multilabel=True, preprocess=PreprocessConfig(asr_dictionary=False))
        self.texts: list[str] = []

    def predict_proba_clean(self, texts):
        self.texts += list(texts)
        n = np.array([len(t) for t in texts], dtype=float)[:, None]
        return np.clip((n + np.arange(len(self.labels))) / 60.0, 0, 1)

    def save_weights(self, model_dir):
        pass


@pytest.fixture()
def run(tmp_path):
    """A model folder with just a card: enough for the job's fingerprint (the predictor is given)."""
    model = tmp_path / "run" / "model"
    model.mkdir(parents=True)
    (model / "model_card.json").write_text(json.dumps({"kind": "length", "labels": LABELS, "multilabel": True}))
    return tmp_path / "run"


def job(run, src, out, **kw):
    return B.predict_file(run, src, out, predictor=LengthModel(), backend="length", progress=False, **kw)


def test_blank_lines_of_a_one_column_csv_are_rows(run, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("text\nпервый\n   \nвторой\n\nтретий\n\t\n", encoding="utf-8")
    s = job(run, src, tmp_path / "out.csv", chunk_rows=2)
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert s.rows == len(out) == 6 == B.estimate_rows(src, "csv")
    assert out["row"].tolist() == [1, 2, 3, 4, 5, 6]
    assert out["error"].tolist() == ["", "empty text", "", "empty text", "", "empty text"]
    assert s.bad_rows == 3 and pd.read_csv(s.errors_file)["row"].tolist() == [2, 4, 6]
    assert (out.loc[out["error"] != "", LABELS] == "").all().all()


def test_zero_width_only_text_is_an_error_row_as_in_the_service(run, tmp_path):
    pd.DataFrame({"id": ["a", "b"], "text": ["\u200b\ufeff", "ок"]}).to_parquet(tmp_path / "in.parquet")
    job(run, tmp_path / "in.parquet", tmp_path / "out.parquet")
    assert pd.read_parquet(tmp_path / "out.parquet")["error"].tolist() == ["empty text", ""]


def test_every_row_says_whether_its_text_was_truncated(run, tmp_path):
    texts = ["короткий", "д" * 50, "x" * 51, ""]
    pd.DataFrame({"text": texts}).to_parquet(tmp_path / "in.parquet")
    model = LengthModel()
    s = B.predict_file(run, tmp_path / "in.parquet", tmp_path / "out.parquet", predictor=model, backend="length",
                       progress=False, max_chars=50, scores=True)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out["truncated"].tolist() == [False, False, True, False] and s.rows == 4
    assert model.texts == ["короткий", "д" * 50, "x" * 50]          # cut as the service cuts (limit_text)
    assert out.columns[-2:].tolist() == ["truncated", "error"]
    assert out.loc[1, "p_joy"] == pytest.approx(out.loc[2, "p_joy"])
    csv = tmp_path / "out.csv"
    job(run, tmp_path / "in.parquet", csv, max_chars=50)
    assert pd.read_csv(csv, keep_default_na=False)["truncated"].tolist() == [False, False, True, False]


def test_a_column_named_truncated_would_clash(run, tmp_path):
    pd.DataFrame({"text": ["a"], "truncated": ["no"]}).to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(B.BatchInputError, match=r"\['truncated'\] would clash"):
        job(run, tmp_path / "in.csv", tmp_path / "out.csv")


def test_a_second_job_on_the_same_output_is_refused(run, tmp_path):
    pd.DataFrame({"text": [f"текст {i}" for i in range(6)]}).to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out.csv"
    seen = []

    def second_job(i: int) -> None:
        if i == 0:
            with pytest.raises(B.OutputLockError) as info:
                job(run, tmp_path / "in.csv", out, force=True)
            seen.append(str(info.value))

    B.predict_file(run, tmp_path / "in.csv", out, predictor=LengthModel(), backend="length", progress=False,
                   chunk_rows=2, on_chunk=second_job)
    msg = seen[0]
    assert "another job (pid " in msg and f"{os.getpid()}" in msg and str(out) + ".lock" in msg and "\n" not in msg
    assert len(pd.read_csv(out)) == 6                                   # the first job was not disturbed
    assert not (tmp_path / "out.csv.lock").exists() and not (tmp_path / "out.csv.partial").exists()
    assert job(run, tmp_path / "in.csv", out, force=True).rows == 6      # the lock went with the first job


def test_the_cli_names_the_job_that_holds_the_output(run, tmp_path, capsys):
    pd.DataFrame({"text": ["a"]}).to_csv(tmp_path / "in.csv", index=False)
    with B.output_lock(tmp_path / "out.csv"):
        code = B.main(["--run", str(run), "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv"),
                       "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1 and "another job" in err


DIE_AFTER_TWO_CHUNKS = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from test_serving_batch import LengthModel
from emotions.serving.batch import predict_file

def die(i):
    if i == 1:
        os.kill(os.getpid(), signal.SIGKILL)

predict_file({run!r}, {src!r}, {out!r}, predictor=LengthModel(), backend="length", progress=False, chunk_rows=2,
             on_chunk=die)
"""


def test_parts_of_a_killed_job_are_resumed_with_a_clear_message(run, tmp_path, caplog):
    pd.DataFrame({"text": [f"текст {i}" for i in range(7)]}).to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out.csv"
    code = DIE_AFTER_TWO_CHUNKS.format(tests=str(ROOT / "tests"), run=str(run), src=str(tmp_path / "in.csv"),
                                       out=str(out))
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == -9, r.stderr[-2000:]
    lock, work = tmp_path / "out.csv.lock", tmp_path / "out.csv.partial"
    assert lock.is_file() and len(list(work.glob("part-*.parquet"))) == 2       # what the dead job left
    (work / ".part-000002.parquet.abc.tmp").write_bytes(b"half a part")
    model = LengthModel()
    with caplog.at_level("WARNING", logger="emotions.serving.batch"):
        s = B.predict_file(run, tmp_path / "in.csv", out, predictor=model, backend="length", progress=False,
                           chunk_rows=2)
    msg = " ".join(r.getMessage() for r in caplog.records)
    assert "resuming from 2 chunk(s)" in msg and "a job that stopped without finishing (pid " in msg
    assert "--restart" in msg
    assert s.chunks_reused == 2 and len(model.texts) == 3 and s.rows == 7
    assert pd.read_csv(out)["row"].tolist() == list(range(1, 8))
    assert not lock.exists() and not work.exists()


def test_parts_without_their_state_are_refused(run, tmp_path):
    pd.DataFrame({"text": ["a", "b", "c"]}).to_csv(tmp_path / "in.csv", index=False)
    work = tmp_path / "out.csv.partial"
    work.mkdir()
    (work / "part-000000.parquet").write_bytes(b"PAR1")
    with pytest.raises(B.ResumeMismatchError, match=r"holds 1 part\(s\) but its state.json is missing.*--restart"):
        job(run, tmp_path / "in.csv", tmp_path / "out.csv")
    assert job(run, tmp_path / "in.csv", tmp_path / "out.csv", restart=True).rows == 3


@pytest.mark.parametrize("force", [False, True])
def test_the_input_is_never_the_output(run, tmp_path, capsys, force):
    src = tmp_path / "in.csv"
    pd.DataFrame({"text": ["a", "b"]}).to_csv(src, index=False)
    before = src.read_bytes()
    os.symlink(src, tmp_path / "link.csv")
    for target in (src, tmp_path / "link.csv", tmp_path / "sub" / ".." / "in.csv"):
        with pytest.raises(B.BatchInputError, match="the input is also the output"):
            job(run, src, target, force=force)
    (tmp_path / "x.csv.errors.csv").write_text("text\na\n")
    with pytest.raises(B.BatchInputError, match="the input is also the output's errors file"):
        job(run, tmp_path / "x.csv.errors.csv", tmp_path / "x.csv", force=force)
    args = ["--run", str(run), "--input", str(src), "--output", str(src), "--no-progress"]
    assert B.main(args + (["--force"] if force else [])) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the input is also the output" in err and "--force does not change" in err
    assert src.read_bytes() == before and not (tmp_path / "in.csv.lock").exists()
