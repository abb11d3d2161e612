"""`--engine ray`: the batch job as a Ray Data pipeline writes the local engine's output file, byte for byte.

One local Ray cluster (2 CPUs, no dashboard) serves the whole module; the model is an untrained tiny
transformer. Without Ray only the missing-Ray message is tested.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emotions.serving import batch as B

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

TEXTS = ["я так рад тебя видеть", "это просто ужасно я в ярости", "мне страшно идти туда одной", "какая мерзость",
         "ну и ладно", "вот это да не ожидал", "мне очень грустно сегодня", "спасибо большое за помощь"]
MAX_CHARS = 40
LONG = "очень длинный текст " * 5                                   # 100 characters: cut to MAX_CHARS


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=256 * 1024 ** 2, log_to_driver=False,
             logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, ray_cluster):
    pytest.importorskip("torch")
    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_runs import make_tiny_transformer

    run = tmp_path_factory.mktemp("ray") / "run"
    make_tiny_transformer(run, TEXTS * 5, thresholds=[0.3, 0.4, 0.5, 0.5, 0.6, 0.5, 0.5])
    return run


def texts(n: int = 22) -> list[str]:
    return [f"{TEXTS[i % len(TEXTS)]} {i}" for i in range(n)]


def job(run: Path, src: Path, out: Path, engine: str, **kw) -> B.BatchSummary:
    return B.predict_file(run, src, out, backend="torch", chunk_rows=4, progress=False, max_chars=MAX_CHARS,
                          engine=engine, **kw)


def same_files(a: Path, b: Path) -> None:
    assert a.read_bytes() == b.read_bytes(), f"{a} and {b} differ"
    ea, eb = a.with_name(a.name + ".errors.csv"), b.with_name(b.name + ".errors.csv")
    assert ea.read_bytes() == eb.read_bytes()


def test_csv_through_the_cli_equals_the_local_engine_and_resumes_its_job(tiny_run, tmp_path, capsys):
    rows = [f"r{i},{t}" for i, t in enumerate(texts())]
    rows[2] = "r2,   "                      # whitespace-only text
    rows[5] = "r5"                          # no text field at all
    rows[7] = f"r7,{LONG}"                  # truncated
    rows[11] = ""                           # a blank line is a row too
    src = tmp_path / "in.csv"
    src.write_text("id,text\n" + "\n".join(rows) + "\n", encoding="utf-8")
    job(tiny_run, src, tmp_path / "local.csv", "local", scores=True)

    def stop(i: int) -> None:
        if i == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):                   # a local job stopped after 2 of its 6 chunks
        job(tiny_run, src, tmp_path / "ray.csv", "local", scores=True, on_chunk=stop)
    assert len(list((tmp_path / "ray.csv.partial").glob("part-*.parquet"))) == 2
    args = ["--run", str(tiny_run), "--input", str(src), "--output", str(tmp_path / "ray.csv"), "--backend", "torch",
            "--chunk-rows", "4", "--max-chars", str(MAX_CHARS), "--scores", "--no-progress", "--engine", "ray",
            "--ray-actors", "2", "--threads", "1"]
    assert B.main(args) == 0
    out = capsys.readouterr()
    assert "wrote " in out.out and "22 rows" in out.out and "2 chunks resumed" in out.out
    assert "Traceback" not in out.err
    same_files(tmp_path / "local.csv", tmp_path / "ray.csv")
    frame = pd.read_csv(tmp_path / "ray.csv", keep_default_na=False)
    assert frame["row"].tolist() == list(range(1, 23))
    assert frame.loc[[2, 5, 11], "error"].tolist() == ["empty text"] * 3      # CSV: "" (Parquet: null = missing)
    assert frame["truncated"].tolist() == [i == 7 for i in range(22)]
    assert not (tmp_path / "ray.csv.lock").exists() and not (tmp_path / "ray.csv.partial").exists()


def parquet_input(path: Path) -> Path:
    values = texts()
    values[1], values[4], values[9] = None, " \t ", LONG
    pd.DataFrame({"id": np.arange(22, dtype=np.int32), "text": values}).to_parquet(path)
    return path


def test_parquet_equals_the_local_engine_with_its_types(tiny_run, tmp_path):
    src = parquet_input(tmp_path / "in.parquet")
    local = job(tiny_run, src, tmp_path / "local.parquet", "local", scores=True)
    ray = job(tiny_run, src, tmp_path / "ray.parquet", "ray", scores=True, ray_actors=2)
    same_files(tmp_path / "local.parquet", tmp_path / "ray.parquet")
    assert (ray.rows, ray.bad_rows, ray.chunks) == (local.rows, local.bad_rows, local.chunks) == (22, 2, 6)
    a, b = pd.read_parquet(tmp_path / "local.parquet"), pd.read_parquet(tmp_path / "ray.parquet")
    pd.testing.assert_frame_equal(a, b, check_dtype=True, check_exact=True)
    assert str(b["id"].dtype) == "int32" and str(b["joy"].dtype) == "Int8" and str(b["p_joy"].dtype) == "float32"
    assert b["error"].tolist()[:5] == ["", "missing text", "", "", "empty text"] and b["truncated"][9]


def test_pieces_of_a_chunk_are_joined_in_order(tiny_run, tmp_path):
    src = parquet_input(tmp_path / "in.parquet")
    job(tiny_run, src, tmp_path / "local.parquet", "local", scores=True)
    s = job(tiny_run, src, tmp_path / "ray.parquet", "ray", scores=True, ray_batch_rows=3)   # 2 Ray batches a chunk
    assert s.rows == 22 and s.chunks == 6
    a, b = pd.read_parquet(tmp_path / "local.parquet"), pd.read_parquet(tmp_path / "ray.parquet")
    scores = [c for c in a.columns if c.startswith("p_")]
    pd.testing.assert_frame_equal(a.drop(columns=scores), b.drop(columns=scores), check_exact=True)
    np.testing.assert_allclose(a[scores], b[scores], atol=1e-6)    # other model batches: float rounding only


def test_the_actors_check_the_model_folder(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    weights = next((run / "model").rglob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    src = tmp_path / "in.csv"
    pd.DataFrame({"text": texts(4)}).to_csv(src, index=False)
    args = ["--run", str(run), "--input", str(src), "--output", str(tmp_path / "out.csv"), "--backend", "torch",
            "--no-progress", "--engine", "ray"]
    assert B.main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "was altered" in err and weights.name in err
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "out.csv.lock").exists()


def test_without_ray_the_command_says_what_to_install(tmp_path, capsys, monkeypatch):
    for name in ("ray", "ray.data"):
        monkeypatch.setitem(sys.modules, name, None)          # `import ray` raises ImportError
    pd.DataFrame({"text": ["a"]}).to_csv(tmp_path / "in.csv", index=False)
    args = ["--run", str(tmp_path / "run"), "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "o.csv"),
            "--engine", "ray"]
    assert B.main(args) == 2
    assert capsys.readouterr().err == 'error: --engine ray needs Ray: pip install "ray[data]==2.60.0"\n'
    from emotions.serving.batch_ray import RayMissingError

    with pytest.raises(RayMissingError):
        B.predict_file(tmp_path / "run", tmp_path / "in.csv", tmp_path / "o.csv", engine="ray")
    assert not (tmp_path / "o.csv.lock").exists()


def test_the_ray_version_is_pinned_alike_everywhere():
    from emotions.serving.batch_ray import RAY_VERSION

    root = Path(__file__).resolve().parents[1]
    pin = f"ray[data]=={RAY_VERSION}"
    assert pin in (root / "requirements.txt").read_text() and pin in (root / "pyproject.toml").read_text()
