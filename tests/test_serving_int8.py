"""int8 answers do not depend on batch-mates: the export's int8 modes `weights` (the default: int8 weights,
each text's activations quantised on their own) and `static` (calibrated scales), recorded in its metadata
and checked by its parity report; `dynamic` (per-batch scales) is still there, and says what it costs."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from emotions.serving import batch as B  # noqa: E402
from emotions.serving.export import export_onnx, main as export_main  # noqa: E402
from emotions.serving.onnx_predictor import META_FILE, PARITY_FILE, OnnxPredictor  # noqa: E402
from tiny_runs import make_tiny_transformer  # noqa: E402

TEXTS = [
    "я так рад тебя видеть", "это просто ужасно я в ярости", "мне страшно идти туда одной", "какая мерзость",
    "ну и ладно", "вот это да не ожидал", "мне очень грустно сегодня", "спасибо большое за помощь",
    "не знаю что сказать", "почему ты так со мной поступаешь", "ладно до завтра", "это лучший день в жизни",
    "я боюсь что ничего не получится", "отвратительно просто отвратительно", "ура мы победили",
    "он опять опоздал и я злюсь", "какой сюрприз", "ничего особенного", "мне одиноко", "хорошая погода",
]
PROBES = [t + (" " + TEXTS[(i * 7) % len(TEXTS)] if i % 3 else "") for i, t in enumerate(TEXTS)]
LONG = " ".join(TEXTS) * 2                     # over max_length: every batch it joins is padded to 32 tokens

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_run(run: Path):
    """A tiny transformer run with data/train.csv (calibration) and data/holdout.csv (parity), disjoint."""
    pred = make_tiny_transformer(run, TEXTS * 3)
    rng = np.random.default_rng(0)
    (run / "data").mkdir(parents=True, exist_ok=True)
    for name, texts in (("train", [f"{a} {b}" for a in TEXTS[:10] for b in TEXTS[10:]]), ("holdout", PROBES)):
        y = rng.integers(0, 2, size=(len(texts), len(pred.labels)))
        pd.concat([pd.DataFrame({"text": texts}), pd.DataFrame(y, columns=pred.labels)], axis=1).to_csv(
            run / "data" / f"{name}.csv", index=False)
    return pred


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The default export (int8 mode `weights`)."""
    run = tmp_path_factory.mktemp("int8") / "run"
    pred = make_run(run)
    report = export_onnx(run, predictor=pred, threads=1)
    return run, pred, report


@pytest.fixture(scope="module")
def exported_static(tmp_path_factory, exported):
    run = tmp_path_factory.mktemp("int8-static") / "run"
    shutil.copytree(exported[0], run)
    report = export_onnx(run, predictor=exported[1], threads=1, force=True, int8_mode="static")
    return run, exported[1], report


def test_the_default_int8_mode_is_recorded_in_the_metadata(exported):
    run, _, report = exported
    meta = json.loads((run / "export" / META_FILE).read_text())
    q = meta["quantization"]
    assert meta["int8"] is True and meta["int8_mode"] == "weights" and report["int8_mode"] == "weights"
    assert q["mode"] == "weights" and q["format"].startswith("MatMulNBits") and q["batch_independent"] is True
    assert q["weights"].startswith("int8") and "at run time (each text's own scales)" in q["activations"]
    assert "calibration" not in q


def test_static_int8_records_its_calibration(exported_static):
    run, _, report = exported_static
    meta = json.loads((run / "export" / META_FILE).read_text())
    q = meta["quantization"]
    assert meta["int8_mode"] == "static" and report["int8_mode"] == "static"
    assert q["mode"] == "static" and q["format"] == "QDQ" and q["batch_independent"] is True
    assert q["weights"] == "int8, per channel" and q["activations"].startswith("uint8, fixed scales")
    assert q["calibration"]["source"].endswith("data/train.csv") and q["calibration"]["rows"] == 100
    assert len(q["calibration"]["texts_sha256"]) == 64


@pytest.mark.parametrize("which", ["exported", "exported_static"])
def test_parity_report_measures_batch_invariance(request, which):
    _, _, report = request.getfixturevalue(which)
    for backend in ("onnx", "onnx-int8"):
        inv = report[backend]["batch_invariance"]
        assert inv["n_texts"] == len(PROBES) and inv["texts_with_other_labels"] == 0
        assert inv["max_abs_diff_alone_vs_batched"] <= 1e-6
        assert report[backend]["texts_per_s"] > 0
    assert report["onnx-int8"]["label_agreement"] >= 0.9


def answers_alone_and_batched(pred: OnnxPredictor) -> tuple[np.ndarray, np.ndarray]:
    alone = np.vstack([pred.predict_proba([t]) for t in PROBES])
    with_long = pred.predict_proba([LONG, *PROBES])[1:]
    return alone, with_long


@pytest.mark.parametrize("which", ["exported", "exported_static"])
def test_int8_answers_do_not_depend_on_batch_mates(request, which, tmp_path):
    run, _, _ = request.getfixturevalue(which)
    int8 = OnnxPredictor.load(run, backend="onnx-int8", threads=1)
    alone, with_long = answers_alone_and_batched(int8)
    np.testing.assert_allclose(with_long, alone, rtol=0, atol=1e-6)
    assert (int8.decide(with_long) == int8.decide(alone)).all()
    pd.DataFrame({"text": [LONG, *PROBES]}).to_csv(tmp_path / "in.csv", index=False)
    outs = []
    for chunk_rows in (3, 50):
        B.predict_file(run, tmp_path / "in.csv", tmp_path / f"out{chunk_rows}.parquet", backend="onnx-int8",
                       chunk_rows=chunk_rows, scores=True, progress=False, threads=1)
        outs.append(pd.read_parquet(tmp_path / f"out{chunk_rows}.parquet").iloc[1:])
    labels, scores = int8.labels, [f"p_{l}" for l in int8.labels]
    for out in outs:
        assert (out[labels].astype(int).to_numpy() == int8.decide(alone)).all()
        np.testing.assert_allclose(out[scores].to_numpy(float), alone, rtol=0, atol=1e-6)


def test_the_service_answers_int8_texts_alike_alone_and_merged(exported):
    from fastapi.testclient import TestClient

    from emotions.serving.service import create_app

    run, _, _ = exported
    with TestClient(create_app(run, "onnx-int8", threads=1, max_batch=64)) as c:
        singles = [c.post("/predict", json={"text": t}).json() for t in PROBES]
        merged = c.post("/predict/batch", json={"texts": [LONG, *PROBES]}).json()["results"][1:]
    for a, b in zip(singles, merged):
        assert a["labels"] == b["labels"]
        assert max(abs(a["scores"][l] - b["scores"][l]) for l in a["scores"]) <= 1.01e-6   # scores: 6 decimals


def test_dynamic_int8_is_still_available_and_says_it_is_batch_dependent(exported, tmp_path, caplog):
    run, pred, _ = exported
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    report = export_onnx(copy, predictor=pred, force=True, int8_mode="dynamic", threads=1)
    meta = json.loads((copy / "export" / META_FILE).read_text())
    assert meta["int8_mode"] == "dynamic" and meta["quantization"]["batch_independent"] is False
    assert "calibration" not in meta["quantization"]
    with caplog.at_level(logging.WARNING, logger="emotions.serving.onnx_predictor"):
        dyn = OnnxPredictor.load(copy, backend="onnx-int8", threads=1)
    assert any("per batch" in r.getMessage() for r in caplog.records)
    alone, with_long = answers_alone_and_batched(dyn)
    assert np.abs(with_long - alone).max() > 1e-6          # what the other modes avoid (this test can tell)
    assert report["onnx-int8"]["batch_invariance"]["max_abs_diff_alone_vs_batched"] > 1e-6
    with pytest.raises(FileExistsError, match="stale"):          # reuse: another int8 mode is not current
        export_onnx(copy, reuse=True)
    assert export_onnx(copy, reuse=True, int8_mode="dynamic") == json.loads((copy / "export" / PARITY_FILE).read_text())


def test_calibration_options_of_the_cli(exported, tmp_path, capsys):
    run, pred, _ = exported
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    pd.DataFrame({"text": TEXTS[:5]}).to_csv(tmp_path / "calib.csv", index=False)
    assert export_main([str(copy), "--force", "--int8-mode", "static", "--calibration", str(tmp_path / "calib.csv"),
                        "--threads", "1"]) == 0
    capsys.readouterr()
    q = json.loads((copy / "export" / META_FILE).read_text())["quantization"]
    assert q["calibration"]["source"] == str(tmp_path / "calib.csv") and q["calibration"]["rows"] == 5
    assert export_main([str(copy), "--force", "--int8-mode", "static", "--calibration",
                        str(tmp_path / "missing.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: calibration frame") and err.count("\n") == 1
    with pytest.raises(SystemExit):
        export_main([str(copy), "--int8-mode", "fp16"])
