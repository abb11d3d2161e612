"""Batch prediction over files (`python -m emotions.predict`): CSV / Parquet, chunks, bad rows, resume."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emotions.serving import batch as B
from emotions.serving.onnx_predictor import OnnxPredictor

from tiny_runs import make_tiny_transformer

TEXTS = ["я так рад тебя видеть", "это просто ужасно я в ярости", "мне страшно идти туда одной", "какая мерзость",
         "ну и ладно", "вот это да не ожидал", "мне очень грустно сегодня", "спасибо большое за помощь 😂",
         "не знаю что сказать", "Почему ты так со мной поступаешь?!", "ладно до завтра", "это лучший день в жизни"]
THRESHOLDS = [0.3, 0.4, 0.5, 0.5, 0.6, 0.5, 0.5]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = tmp_path_factory.mktemp("predict") / "run"
    make_tiny_transformer(run, TEXTS * 5, thresholds=THRESHOLDS)
    return run


@pytest.fixture(scope="module")
def model(run):
    from emotions.models import load_predictor
    return load_predictor(run / "model")


def corpus(n: int = 40) -> pd.DataFrame:
    texts = [TEXTS[i % len(TEXTS)] + f" {i}" for i in range(n)]
    texts[5], texts[17] = "", "   \t"
    return pd.DataFrame({"id": [f"r{i}" for i in range(n)], "text": texts})


class Counting:
    """Wraps a predictor and counts the texts it was asked to predict."""

    def __init__(self, inner):
        self.inner, self.n = inner, 0
        self.labels = inner.labels

    def predict_proba(self, texts):
        self.n += len(texts)
        return self.inner.predict_proba(texts)

    def decide(self, proba):
        return self.inner.decide(proba)


def test_csv_in_chunks_uses_the_runs_preprocessing_and_thresholds(run, model, tmp_path):
    df = corpus()
    df.to_csv(tmp_path / "in.csv", index=False)
    s = B.predict_file(run, tmp_path / "in.csv", tmp_path / "out.csv", chunk_rows=7, progress=False)
    assert (s.rows, s.chunks, s.bad_rows, s.backend) == (40, 6, 2, "torch")
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False, dtype={"id": str})
    assert list(out.columns) == ["row", "id", "text", *model.labels, "truncated", "error"]
    assert not out["truncated"].any()
    assert out["row"].tolist() == list(range(1, 41)) and out["id"].tolist() == df["id"].tolist()
    good = np.ones(40, dtype=bool)
    good[[5, 17]] = False
    expected = model.predict(df["text"][good].tolist())          # preprocessing + tuned thresholds
    assert (out.loc[good, model.labels].astype(int).to_numpy() == expected).all()
    assert (out.loc[~good, model.labels] == "").all().all()     # bad rows get no labels, but stay
    assert out.loc[~good, "error"].tolist() == ["empty text", "empty text"]
    errors = pd.read_csv(s.errors_file)
    assert errors["row"].tolist() == [6, 18] and not (tmp_path / "out.csv.partial").exists()


def test_parquet_in_and_out_with_scores(run, model, tmp_path):
    df = corpus(25)
    df.loc[3, "text"] = None
    df.to_parquet(tmp_path / "in.parquet", index=False)
    s = B.predict_file(run, tmp_path / "in.parquet", tmp_path / "out.parquet", chunk_rows=10, scores=True,
                       keep=["id"], progress=False)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert s.rows == 25 and list(out.columns[:2]) == ["row", "id"] and "p_joy" in out.columns
    assert out.loc[3, "error"] == "missing text" and out.loc[3, model.labels].isna().all()
    assert out.loc[[5, 17], "error"].tolist() == ["empty text"] * 2
    proba = model.predict_proba([df.loc[0, "text"]])[0]
    assert np.allclose(out.loc[0, [f"p_{l}" for l in model.labels]].to_numpy(float), proba, atol=1e-6)


def test_interrupted_job_resumes_without_redoing_chunks(run, model, tmp_path):
    corpus().to_csv(tmp_path / "in.csv", index=False)
    B.predict_file(run, tmp_path / "in.csv", tmp_path / "full.csv", chunk_rows=8, progress=False)

    def stop_after_two(i: int) -> None:
        if i == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        B.predict_file(run, tmp_path / "in.csv", tmp_path / "out.csv", chunk_rows=8, progress=False,
                       on_chunk=stop_after_two)
    assert not (tmp_path / "out.csv").exists()
    assert len(list((tmp_path / "out.csv.partial").glob("part-*.parquet"))) == 2
    counting = Counting(model)
    s = B.predict_file(run, tmp_path / "in.csv", tmp_path / "out.csv", chunk_rows=8, progress=False,
                       predictor=counting, backend="torch")
    assert s.chunks_reused == 2 and counting.n == 40 - 16 - 1      # rows 17..40 minus the blank row 18
    assert (tmp_path / "out.csv").read_bytes() == (tmp_path / "full.csv").read_bytes()


def test_resume_refuses_parts_of_another_input(run, tmp_path):
    corpus().to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(KeyboardInterrupt):
        B.predict_file(run, tmp_path / "in.csv", tmp_path / "out.csv", chunk_rows=8, progress=False,
                       on_chunk=lambda i: (_ for _ in ()).throw(KeyboardInterrupt()))
    corpus(41).to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(B.ResumeMismatchError, match="input_sha256.*--restart"):
        B.predict_file(run, tmp_path / "in.csv", tmp_path / "out.csv", chunk_rows=8, progress=False)
    s = B.predict_file(run, tmp_path / "in.csv", tmp_path / "out.csv", chunk_rows=8, progress=False, restart=True)
    assert s.rows == 41 and s.chunks_reused == 0


def test_bad_inputs_are_named(run, tmp_path):
    corpus().to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(B.BatchInputError, match=r"missing column\(s\) \['comment'\]; it has \['id', 'text'\]"):
        B.predict_file(run, tmp_path / "in.csv", tmp_path / "o.csv", text_column="comment", progress=False)
    (tmp_path / "bad.csv").write_bytes("text\nхорошо\n".encode() + b"\xff\xfe oops\n")
    with pytest.raises(B.BatchInputError, match=r"not valid UTF-8 at byte 18 \(line 3 of the file\)"):
        B.predict_file(run, tmp_path / "bad.csv", tmp_path / "o.csv", progress=False)
    with pytest.raises(B.BatchInputError, match="use .csv or .parquet"):
        B.predict_file(run, tmp_path / "in.csv", tmp_path / "o.xlsx", progress=False)
    pd.DataFrame({"text": ["a"], "joy": [1]}).to_csv(tmp_path / "labelled.csv", index=False)
    with pytest.raises(B.BatchInputError, match=r"\['joy'\] would clash"):
        B.predict_file(run, tmp_path / "labelled.csv", tmp_path / "o.csv", progress=False)


def test_cli_never_overwrites_and_reports(run, tmp_path, capsys):
    corpus(20).to_csv(tmp_path / "in.csv", index=False)
    args = ["--run", str(run), "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.parquet"),
            "--no-progress", "--summary", str(tmp_path / "summary.json")]
    assert B.main(args) == 0
    captured = capsys.readouterr()
    assert "wrote" in captured.out and "rows/s" in captured.out and "2 row(s) had no usable text" in captured.err
    assert B.main(args) == 1
    assert "exists; pass --force" in capsys.readouterr().err
    assert B.main([*args, "--force"]) == 0


def test_onnx_int8_is_the_default_when_exported(run, tmp_path):
    pytest.importorskip("onnxruntime")
    from emotions.serving.export import export_onnx

    assert B.pick_backend(run) == "torch"
    export_onnx(run / "model", n=8)
    assert B.pick_backend(run) == "onnx-int8"
    corpus(20).to_csv(tmp_path / "in.csv", index=False)
    s = B.predict_file(run, tmp_path / "in.csv", tmp_path / "out.csv", progress=False)
    assert s.backend == "onnx-int8"
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    int8 = OnnxPredictor.load(run, backend="onnx-int8")
    good = out["error"] == ""
    assert (out.loc[good, int8.labels].astype(int).to_numpy() == int8.predict(out["text"][good].tolist())).all()
