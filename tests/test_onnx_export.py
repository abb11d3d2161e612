"""ONNX export of a tiny transformer run: fp32 parity with torch, int8 size and agreement, safety rails."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from emotions.serving.export import ExportError, export_onnx, main as export_main  # noqa: E402
from emotions.data.labels import get_task  # noqa: E402
from emotions.serving.onnx_predictor import (FP32_FILE, INT8_FILE, META_FILE, PARITY_FILE, TOKENIZER_FILE,  # noqa: E402
                                     OnnxPredictor, StaleExportError, locate)
from tiny_runs import make_tiny_transformer  # noqa: E402

TEXTS = [
    "я так рад тебя видеть", "это просто ужасно я в ярости", "мне страшно идти туда одной", "какая мерзость",
    "ну и ладно", "вот это да не ожидал", "мне очень грустно сегодня", "спасибо большое за помощь",
    "не знаю что сказать", "почему ты так со мной поступаешь", "ладно до завтра", "это лучший день в жизни",
    "я боюсь что ничего не получится", "отвратительно просто отвратительно", "ура мы победили",
    "он опять опоздал и я злюсь", "какой сюрприз", "ничего особенного", "мне одиноко", "хорошая погода",
]


def make_tiny_run(run: Path, multilabel: bool = True, seed: int = 0):
    """A run folder with data/holdout.csv and an untrained tiny transformer saved in model/."""
    pred = make_tiny_transformer(run, TEXTS * 3, multilabel=multilabel, seed=seed)
    rng = np.random.default_rng(seed)
    rows = [TEXTS[i % len(TEXTS)] + ("" if i < len(TEXTS) else f" {TEXTS[(3 * i) % len(TEXTS)]}")
            for i in range(40)]
    labels = pred.labels
    y = rng.integers(0, 2, size=(len(rows), len(labels))) if multilabel else \
        np.eye(len(labels), dtype=int)[rng.integers(0, len(labels), size=len(rows))]
    (run / "data").mkdir(parents=True, exist_ok=True)
    pd.concat([pd.DataFrame({"text": rows}), pd.DataFrame(y, columns=labels)], axis=1).to_csv(
        run / "data" / "holdout.csv", index=False)
    return pred


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    run = tmp_path_factory.mktemp("onnx") / "run"
    pred = make_tiny_run(run)
    report = export_onnx(run, predictor=pred, threads=1)
    return run, pred, report


def test_export_files_and_parity(exported):
    run, pred, report = exported
    export = run / "export"
    for name in (FP32_FILE, INT8_FILE, TOKENIZER_FILE, META_FILE, PARITY_FILE):
        assert (export / name).is_file(), name
    assert not [p for p in run.iterdir() if p.name.startswith(".export")], "temporary folders left behind"
    assert json.loads((export / PARITY_FILE).read_text()) == json.loads(json.dumps(report))
    assert report["passed"] and report["n_texts"] == 40 and report["frame"].endswith("holdout.csv")
    assert report["onnx"]["max_abs_diff"] <= 1e-4
    assert report["onnx"]["decision_agreement"] == 1.0
    assert report["token_ids_match"] == 1.0
    assert report["onnx-int8"]["label_agreement"] >= 0.9
    assert report["onnx-int8"]["decision_agreement"] >= 0.7
    assert set(report["weighted_f1_vs_labels"]) == {"torch", "onnx", "onnx-int8"}
    assert (export / INT8_FILE).stat().st_size < (export / FP32_FILE).stat().st_size
    meta = json.loads((export / META_FILE).read_text())
    assert meta["opset"] >= 17 and meta["labels"] == pred.labels and meta["max_length"] == 32


def test_raw_onnxruntime_dynamic_axes_match_torch(exported):
    """The graph takes any batch size and sequence length; probabilities within 1e-4 of torch."""
    run, pred, _ = exported
    sess = ort.InferenceSession(str(run / "export" / FP32_FILE), providers=["CPUExecutionProvider"])
    for texts in (["мне грустно"], TEXTS[:7], [" ".join(TEXTS)] * 3):
        enc = pred.tokenizer(pred.preprocess(texts), padding=True, truncation=True, max_length=pred.max_length,
                             return_tensors="np")
        ids, mask = enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)
        got = sess.run(["probs"], {"input_ids": ids, "attention_mask": mask})[0]
        with torch.no_grad():
            want = torch.sigmoid(pred.model(torch.from_numpy(ids), torch.from_numpy(mask))).numpy()
        assert got.shape == (len(texts), len(pred.labels))
        assert np.abs(got - want).max() <= 1e-4


def test_onnx_predictor_matches_torch_predictor(exported):
    run, pred, _ = exported
    texts = TEXTS + ["", "😂😂 ну ты даёшь", "x" * 3000, "\u202eтекст\u200b с\x00 символами"]
    want = pred.predict_proba(texts)
    fp32 = OnnxPredictor.load(run, backend="onnx", threads=1, batch_size=4)
    np.testing.assert_allclose(fp32.predict_proba(texts), want, atol=1e-4)
    assert (fp32.predict(texts) == pred.predict(texts)).all()
    int8 = OnnxPredictor.load(run / "model", backend="onnx-int8", threads=1)
    assert int8.kind == "transformer" and int8.backend == "onnx-int8"
    assert (int8.predict(texts) == pred.predict(texts)).mean() >= 0.9
    assert fp32.predict_proba([]).shape == (0, len(pred.labels))


def test_thresholds_come_from_the_model_card(exported, tmp_path):
    run, pred, _ = exported
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    card = json.loads((copy / "model" / "model_card.json").read_text())
    card["thresholds"] = {l: 0.99 for l in card["labels"]}
    (copy / "model" / "model_card.json").write_text(json.dumps(card))
    onnx_pred = OnnxPredictor.load(copy, backend="onnx")      # retuned thresholds: no re-export needed
    assert np.allclose(onnx_pred.thresholds, 0.99)


def test_no_silent_overwrite_and_force(exported, tmp_path, capsys):
    run, pred, _ = exported
    with pytest.raises(FileExistsError, match="--force"):
        export_onnx(run, predictor=pred)
    assert export_main([str(run)]) == 2
    assert "--force" in capsys.readouterr().err
    assert export_onnx(run, reuse=True) == json.loads((run / "export" / PARITY_FILE).read_text())
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    before = (copy / "export" / META_FILE).stat().st_mtime_ns
    report = export_onnx(copy / "model", predictor=pred, force=True, int8=False)   # model folder accepted too
    assert report["passed"] and "onnx-int8" not in report
    assert (copy / "export" / META_FILE).stat().st_mtime_ns != before
    assert not (copy / "export" / INT8_FILE).exists()
    assert sorted(p.name for p in copy.iterdir()) == ["data", "export", "model"]


def test_stale_export_is_refused(exported, tmp_path):
    run, _, _ = exported
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    with open(copy / "model" / "head.safetensors", "ab") as f:
        f.write(b"\0")
    with pytest.raises(StaleExportError, match="--force"):
        OnnxPredictor.load(copy, backend="onnx")
    with pytest.raises(FileExistsError, match="stale"):
        export_onnx(copy, reuse=True)


def test_baseline_cannot_be_exported(tmp_path):
    from emotions.models import train_model

    spec = get_task("cryptonite")
    df = pd.DataFrame({"text": TEXTS * 2})
    for j, label in enumerate(spec.labels):
        df[label] = (np.arange(len(df)) % len(spec.labels) == j).astype(int)
    train_model("baseline", df, df, spec, {"max_features": 500, "char_ngram_max": 3}, tmp_path / "run" / "model")
    with pytest.raises(ExportError, match="native"):
        export_onnx(tmp_path / "run")
    with pytest.raises(ValueError, match="native"):
        from emotions.serving.service import load_backend
        load_backend(tmp_path / "run", "onnx-int8")


def test_locate_accepts_run_and_model_folders(exported, tmp_path):
    run, _, _ = exported
    assert locate(run).export_dir == locate(run / "model").export_dir == run.resolve() / "export"
    with pytest.raises(FileNotFoundError, match="neither a run folder"):
        locate(tmp_path)
