"""The model folder is checked, not trusted: the card names only files inside it, and the served files
match the sha256 manifest written with them. Every failure is one line that names the file."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from emotions.serving import batch as B  # noqa: E402
from emotions.serving.backends import load_backend  # noqa: E402
from emotions.serving.export import export_onnx  # noqa: E402
from emotions.serving.model_folder import (MANIFEST_FILE, ModelFolderError, read_manifest,  # noqa: E402
                                           write_manifest)
from emotions.serving.onnx_predictor import (INT8_FILE, IncompleteExportError, StaleExportError,  # noqa: E402
                                             weights_fingerprint)
from emotions.serving.service import main as serve_main  # noqa: E402
from tiny_runs import make_tiny_transformer  # noqa: E402

TEXTS = ["я так рад тебя видеть", "это просто ужасно я в ярости", "мне страшно идти туда одной", "какая мерзость",
         "ну и ладно", "вот это да не ожидал", "мне очень грустно сегодня", "превед как дела"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    run = tmp_path_factory.mktemp("folder") / "run"
    pred = make_tiny_transformer(run, TEXTS * 5)
    (run / "model" / "asr_extra.tsv").write_text("превед\tпривет\n", encoding="utf-8")   # part of the weights
    export_onnx(run, predictor=pred, threads=1, n=8)
    return run


@pytest.fixture()
def run(exported, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(exported, copy)
    return copy


def set_card(run: Path, **preprocess) -> None:
    card_file = run / "model" / "model_card.json"
    card = json.loads(card_file.read_text())
    card["preprocess"].update(preprocess)
    card_file.write_text(json.dumps(card))


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


# --- what the card names -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["/etc/passwd", "../../../../../../etc/passwd", "dict-link.tsv"])
def test_a_card_naming_a_file_outside_the_folder_is_refused_at_start_up(run, tmp_path, capsys, name):
    os.symlink("/etc/passwd", run / "model" / "dict-link.tsv")
    set_card(run, asr_dictionary_paths=[name])
    for backend in ("torch", "onnx-int8"):
        with pytest.raises(ModelFolderError, match=r"asr_dictionary_paths\[0\] names .* outside the model folder"):
            load_backend(run, backend)
    assert serve_main(["--run", str(run), "--backend", "onnx-int8"]) == 2
    assert "outside the model folder" in one_line_error(capsys)
    pd.DataFrame({"text": ["a"]}).to_csv(tmp_path / "in.csv", index=False)
    assert B.main(["--run", str(run), "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "o.csv"),
                   "--no-progress"]) == 1
    assert "outside the model folder" in one_line_error(capsys) and not (tmp_path / "o.csv").exists()


def test_a_dictionary_inside_the_folder_is_read_from_it_whatever_the_working_directory(run, tmp_path,
                                                                                       monkeypatch):
    set_card(run, asr_dictionary_paths=["asr_extra.tsv"])
    monkeypatch.chdir(tmp_path)
    for backend in ("torch", "onnx"):
        pred = load_backend(run, backend)
        assert pred.preprocess(["Превед, как дела?"]) == ["привет как дела"]


def test_a_broken_or_missing_dictionary_fails_at_start_up_not_at_the_first_request(run, capsys):
    (run / "model" / "asr_extra.tsv").write_text("одно слово без табуляции\n", encoding="utf-8")
    set_card(run, asr_dictionary_paths=["asr_extra.tsv"])
    with pytest.raises(ModelFolderError, match=r"asr_extra.tsv, line 1: expected WRONG<TAB>RIGHT"):
        load_backend(run, "onnx-int8")
    set_card(run, asr_dictionary_paths=["gone.tsv"])
    assert serve_main(["--run", str(run), "--backend", "onnx-int8"]) == 2
    assert "'gone.tsv', which does not exist" in one_line_error(capsys)


def test_the_encoder_folder_named_by_the_card_must_be_inside(run):
    card_file = run / "model" / "model_card.json"
    card = json.loads(card_file.read_text())
    card["transformer"]["encoder_dir"] = str(run.parent)
    card_file.write_text(json.dumps(card))
    with pytest.raises(ModelFolderError, match=r"transformer.encoder_dir names .* outside the model folder"):
        load_backend(run, "torch")


# --- the export's manifest -------------------------------------------------------------------------------
def test_the_export_records_sha256_of_its_files_and_of_the_model_files(run):
    manifest = read_manifest(run / "export")
    assert set(manifest["files"]) == {"model.onnx", INT8_FILE, "tokenizer.json", "export_meta.json", "parity.json"}
    assert all(len(r["sha256"]) == 64 and r["bytes"] > 0 for r in manifest["files"].values())
    assert "head.safetensors" in manifest["model_files"] and "model_card.json" not in manifest["model_files"]


def test_a_deleted_tokenizer_is_named(run, capsys):
    (run / "export" / "tokenizer.json").unlink()
    with pytest.raises(IncompleteExportError) as info:
        load_backend(run, "onnx-int8")
    assert "tokenizer.json is missing" in str(info.value) and "--no-int8" not in str(info.value)
    assert serve_main(["--run", str(run), "--backend", "onnx-int8"]) == 2
    err = one_line_error(capsys)
    assert "export/tokenizer.json is missing" in err and "--force" in err


def test_a_truncated_or_altered_file_is_named(run, capsys):
    int8 = run / "export" / INT8_FILE
    data = int8.read_bytes()
    int8.write_bytes(data[:1000])
    assert serve_main(["--run", str(run), "--backend", "onnx-int8"]) == 2
    assert f"{INT8_FILE} is truncated: 1000 of {len(data)} bytes" in one_line_error(capsys)
    int8.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(ModelFolderError, match=f"{INT8_FILE} was altered: its sha256 differs"):
        load_backend(run, "onnx-int8")
    assert load_backend(run, "onnx").backend == "onnx"             # the fp32 file is intact: still served
    meta = run / "export" / "export_meta.json"
    meta.write_text(meta.read_text().replace('"max_length": 32', '"max_length": 320'))
    with pytest.raises(ModelFolderError, match="export_meta.json was altered"):
        load_backend(run, "onnx")


def test_an_export_without_int8_says_so(run, capsys):
    export_onnx(run, force=True, int8=False, n=8, threads=1)
    assert serve_main(["--run", str(run), "--backend", "onnx-int8"]) == 2
    err = one_line_error(capsys)
    assert "exported with --no-int8" in err and "--backend onnx" in err


def test_a_stale_export_names_the_model_file_that_changed(run):
    with open(run / "model" / "head.safetensors", "ab") as f:
        f.write(b"\0")
    with pytest.raises(StaleExportError, match=r"other weights .*\(head.safetensors changed\).*--force"):
        load_backend(run, "onnx-int8")


# --- a model folder's own manifest (torch / native) -------------------------------------------------------
def test_a_model_folder_with_a_manifest_is_verified_on_torch(run, tmp_path, capsys):
    before = weights_fingerprint(run / "model")
    write_manifest(run / "model")
    assert weights_fingerprint(run / "model") == before              # the manifest is not part of the weights
    assert load_backend(run, "onnx-int8").backend == "onnx-int8"      # so the export stays current
    assert load_backend(run, "torch").kind == "transformer"
    (run / "model" / "encoder" / "tokenizer.json").unlink()
    assert serve_main(["--run", str(run), "--backend", "torch"]) == 2
    assert "model/encoder/tokenizer.json is missing" in one_line_error(capsys)
    pd.DataFrame({"text": ["a"]}).to_csv(tmp_path / "in.csv", index=False)
    assert B.main(["--run", str(run), "--backend", "torch", "--input", str(tmp_path / "in.csv"),
                   "--output", str(tmp_path / "o.csv"), "--no-progress"]) == 1
    assert "encoder/tokenizer.json is missing" in one_line_error(capsys)
    (run / "model" / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ModelFolderError, match="manifest.json is unreadable"):
        load_backend(run, "torch")


# --- written at training save --------------------------------------------------------------------------------
def test_the_training_save_writes_a_manifest_and_one_flipped_byte_stops_start_up(run, capsys):
    files = read_manifest(run / "model")["files"]
    assert "head.safetensors" in files and any(n.startswith("encoder/") for n in files)
    assert "model_card.json" not in files                          # retuned thresholds stay legitimate
    weights = max((run / "model" / "encoder").glob("*.safetensors"), key=lambda p: p.stat().st_size)
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    assert serve_main(["--run", str(run), "--backend", "torch"]) == 2
    err = one_line_error(capsys)
    assert f"encoder/{weights.name} was altered" in err and "changed since it was saved" in err


def test_asr_dictionaries_are_copied_into_the_model_folder_at_save(run, tmp_path, monkeypatch):
    from emotions.models import load_predictor, read_model_card

    outside = tmp_path / "my_fixes.tsv"
    outside.write_text("превед\tпривет\n", encoding="utf-8")
    pred = load_predictor(run / "model")
    pred.preprocess_config = dataclasses.replace(pred.preprocess_config, asr_dictionary_paths=(str(outside),))
    saved = pred.save(tmp_path / "saved")
    names = read_model_card(saved)["preprocess"]["asr_dictionary_paths"]
    assert names == ["asr/0-my_fixes.tsv"] and "asr/0-my_fixes.tsv" in read_manifest(saved)["files"]
    outside.unlink()                                                # the folder no longer needs it
    monkeypatch.chdir(tmp_path)
    assert load_predictor(saved).preprocess(["Превед, как дела?"]) == ["привет как дела"]
    assert load_backend(saved, "torch").preprocess(["Превед"]) == ["привет"]
    assert pred.save(saved) and read_model_card(saved)["preprocess"]["asr_dictionary_paths"] == names
