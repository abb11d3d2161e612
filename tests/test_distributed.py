"""Training in several processes (torch.distributed, gloo on CPU) and the training command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emotions.data.labels import get_task
from emotions.evaluation.metrics import apply_thresholds, weighted_f1
from emotions.models import load_predictor, read_model_card, train_model
from emotions.models import transformer as T
from emotions.models.nn import distributed as D

from test_transformer_train import make_frame

CRYPTONITE = get_task("cryptonite")
ROOT = Path(__file__).resolve().parents[1]
PARAMS = {"encoder": "tiny", "tiny_vocab_size": 300, "head_layers": 0, "lr": 1e-3, "batch_size": 8, "epochs": 2,
          "patience": 0, "progress": False, "max_length": 32, "preprocess": {"asr_dictionary": False}}
N_TRAIN, N_TUNE = 96, 41
MODEL_FILES = {"encoder", "head.safetensors", "history.json", "manifest.json", "model_card.json"}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in (*D.LAUNCHER_ENV, "WORLD_SIZE", "RANK")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    """Split files as the pipeline writes them: data/train.csv carries an extra `source` column."""
    d = tmp_path_factory.mktemp("split")
    train = make_frame(CRYPTONITE, N_TRAIN, 1, 0.15)
    train["source"] = "valid"
    train.to_csv(d / "train.csv", index=False)
    make_frame(CRYPTONITE, N_TUNE, 2, 0.15).to_csv(d / "tune.csv", index=False)
    return d


def _cli_args(split: Path, out: Path, **params) -> list[str]:
    return ["--train", str(split / "train.csv"), "--tune", str(split / "tune.csv"),
            "--params", json.dumps({**PARAMS, **params}), "--out", str(out)]


@pytest.fixture(scope="module")
def two_processes(split, tmp_path_factory):
    """`torchrun --nproc_per_node 2 -m emotions.models.transformer` on the split files."""
    out = tmp_path_factory.mktemp("two") / "model"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "emotions.models.transformer", *_cli_args(split, out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def one_process(split, tmp_path_factory):
    """The same command line without a launcher (one process), on the pipeline's train.csv as it is."""
    out = tmp_path_factory.mktemp("one") / "model"
    assert T.main(_cli_args(split, out)) == 0
    return out


def test_cli_accepts_the_pipelines_train_csv(one_process):
    assert {p.name for p in one_process.iterdir()} == MODEL_FILES
    card = read_model_card(one_process)
    assert card["training"]["distributed"]["num_processes"] == 1 and card["training"]["n_train"] == N_TRAIN


def test_two_processes_write_one_model(two_processes):
    out, log = two_processes
    assert {p.name for p in out.iterdir()} == MODEL_FILES
    dist = read_model_card(out)["training"]["distributed"]
    assert dist["num_processes"] == 2 and dist["distributed_type"] == "MULTI_CPU"
    assert dist["per_device_batch"] == 8 and dist["global_batch"] == 16
    assert dist["lr_scaling"] == "none" and dist["lr"] == PARAMS["lr"]
    assert "x 2 processes [MULTI_CPU]" in log


def test_optimizer_steps_per_epoch_halve(two_processes, one_process):
    one = json.loads((one_process / "history.json").read_text())["epochs"]
    two = json.loads((two_processes[0] / "history.json").read_text())["epochs"]
    assert [e["optimizer_steps"] for e in one] == [N_TRAIN // 8] * 2
    assert [e["optimizer_steps"] for e in two] == [N_TRAIN // 16] * 2
    assert read_model_card(two_processes[0])["training"]["distributed"]["optimizer_steps_per_epoch"] == N_TRAIN // 16


def test_tune_score_covers_every_tune_row_once(two_processes, split):
    out, _ = two_processes
    history = json.loads((out / "history.json").read_text())
    assert [e["tune_rows_scored"] for e in history["epochs"]] == [N_TUNE, N_TUNE]
    # the written model, scored on all tune rows in one process, reproduces the gathered best score
    model = load_predictor(out)
    tune = make_frame(CRYPTONITE, N_TUNE, 2, 0.15)
    pred = apply_thresholds(model.predict_proba(tune["text"].tolist()), model.thresholds, True)
    best = max(e["tune_weighted_f1"] for e in history["epochs"])
    assert weighted_f1(tune[model.labels].to_numpy(), pred) == pytest.approx(best, abs=1e-9)


def test_launcher_with_one_process_fails_before_training(split, tmp_path, monkeypatch, capsys):
    # what `accelerate launch --cpu --num_processes 2` does on one machine: a single process
    monkeypatch.setenv("ACCELERATE_USE_CPU", "true")
    out = tmp_path / "model"
    assert T.main(_cli_args(split, out)) == 2
    err = capsys.readouterr().err
    assert "world size is 1" in err and "ACCELERATE_USE_CPU" in err
    assert not out.exists()


def test_cli_refuses_to_replace_a_model(one_process, split, capsys):
    assert T.main(_cli_args(split, one_process)) == 2
    assert "--force" in capsys.readouterr().err


def test_train_model_launches_processes_itself(split, tmp_path, capfd):
    """What 04_train does with `num_processes: 2`: accelerate launch, log streamed, model loaded back."""
    import pandas as pd

    train = pd.read_csv(split / "train.csv")
    tune = pd.read_csv(split / "tune.csv")
    model = train_model("transformer", train, tune, CRYPTONITE, {**PARAMS, "epochs": 1, "num_processes": 2},
                        tmp_path / "model")
    assert read_model_card(tmp_path / "model")["training"]["distributed"]["num_processes"] == 2
    assert model.history["epochs"][0]["optimizer_steps"] == N_TRAIN // 16
    assert "x 2 processes [MULTI_CPU]" in capfd.readouterr().out


def test_process_count_and_lr_rules(monkeypatch):
    assert D.resolve_num_processes(3) == 3
    with pytest.raises(ValueError, match="num_processes"):
        D.resolve_num_processes("two")
    monkeypatch.setattr(D.torch.cuda, "is_available", lambda: False)
    assert D.resolve_num_processes("auto") == 1
    assert [D.lr_factor(r, 4) for r in D.LR_SCALING] == [1.0, 4.0, 2.0]
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(D.DistributedSetupError, match="did not connect"):
        D.check_world(1)


def test_gather_rows_rejects_a_row_scored_twice():
    class TwoProcesses:
        num_processes = 2

        def gather_for_metrics(self, parts, use_gather_object):
            return parts + parts                     # both processes sent the same rows

    with pytest.raises(RuntimeError, match="gathered 4 rows"):
        D.gather_rows(TwoProcesses(), np.array([0, 1]), np.zeros((2, 3)), 4)
