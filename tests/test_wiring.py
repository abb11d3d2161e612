"""One path from data to a score: notebooks, ablation and benchmarks call the same stage functions;
the same seed gives the same numbers and files."""

import importlib.util
import json
from pathlib import Path

import nbformat
import pytest
import yaml

from emotions.core.io import write_csv_atomic, write_json_atomic
from emotions.core.paths import CONFIGS_DIR, DEMO_DATA_DIR, NOTEBOOKS_DIR, PROJECT_ROOT
from emotions.pipeline import ablation, stages, steps
from emotions.pipeline.catalog import MemoryCatalog
from emotions.pipeline.config import load_config


def _load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def calls(monkeypatch):
    """Record every call of the stage functions (they still run)."""
    seen: list[str] = []
    for name in ("split_data", "extend", "augment", "train", "evaluate"):
        real = getattr(steps, name)
        monkeypatch.setattr(steps, name, lambda *a, _real=real, _name=name, **k: (seen.append(_name), _real(*a, **k))[1])
    return seen


@pytest.mark.parametrize("path", sorted(NOTEBOOKS_DIR.glob("*.ipynb")), ids=lambda p: p.stem)
def test_each_notebook_runs_its_stage_function_and_nothing_else(path):
    """The chain is written once: a notebook calls its stage function (emotions.pipeline.stages) and shows the
    result; it neither reads nor writes a run-folder file by name, nor calls a step itself."""
    book = nbformat.read(path, as_version=4)
    code = "\n".join(c.source for c in book.cells if c.cell_type == "code")
    assert path.stem in stages.STAGES and code.count("nb.run()") == 1
    for pattern in ("steps.", "read_csv(", "write_csv(", "write_json(", '"data/'):
        assert pattern not in code, f"{path.name}: {pattern!r} belongs in the stage function"


def test_notebook_parameters_equal_the_schema_defaults():
    """A notebook run by hand uses the same defaults as run_all.py: every literal in a parameters cell is the
    schema's default (a dict literal: a part of it; {} for a whole section or an options model)."""
    import ast

    import papermill

    from emotions.pipeline.notebook import section_of
    from emotions.pipeline.schema import Config

    defaults = Config().model_dump()
    for path in sorted(NOTEBOOKS_DIR.glob("*.ipynb")):
        section = defaults.get(section_of(path.stem), {})
        for name, info in papermill.inspect_notebook(str(path)).items():
            value = ast.literal_eval(info["default"])
            if name in ("run_dir", "data_dir", "submissions_dir", "run_id"):
                continue
            expected = defaults["common"][name] if name in defaults["common"] else \
                section[name] if name in section else defaults[name]
            if isinstance(value, dict) and isinstance(expected, dict):
                assert all(expected.get(k) == v for k, v in value.items()), (path.name, name, value)
            else:
                assert value == expected, (path.name, name, value, expected)


def test_ablation_stage_gets_the_runs_merged_config(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(ablation, "run_ablation", lambda root, names, **kw: seen.update(kw) or
                        {"results": [], "markdown": ""})
    cfg = load_config("cryptonite", "baseline", ["ablation.enabled=true", "train.baseline.C=0.5", "seed=7"])
    stages.run_stage("08_ablation", cfg, MemoryCatalog(DEMO_DATA_DIR, tmp_path))
    assert seen["base"]["train"]["baseline"]["C"] == 0.5 and seen["seed"] == 7
    assert seen["base"]["common"]["expected_test_rows"] == "auto"


def test_a_stage_switched_off_says_how_to_switch_it_on(tmp_path, capsys):
    result = stages.run_stage("07_export", load_config("cryptonite", "baseline"),
                              MemoryCatalog(DEMO_DATA_DIR, tmp_path, {"model": tmp_path, "holdout": None}))
    assert result.outputs == {} and "-p export.enabled=true" in result.report["off"]
    assert "-p export.enabled=true" in capsys.readouterr().out


def test_ablation_runs_through_the_stage_functions(calls, tmp_path):
    res = ablation.run_ablation(DEMO_DATA_DIR, ["train only", "+aug asr_noise"], cache_dir=tmp_path,
                                progress=lambda m: None)
    assert calls.count("split_data") == 1 and calls.count("train") == 2 and calls.count("evaluate") == 2
    assert calls.count("augment") == 2 and calls.count("extend") == 2
    assert res["results"][1]["augmented_rows"].get("asr_noise", 0) > 0


def test_benchmark_recipe_comes_from_the_profile_and_runs_through_the_stage_functions(calls, capsys):
    bench = _load_benchmark("transformer_experiments")
    assert not hasattr(bench, "GPU_RECIPE")
    gpu = yaml.safe_load((CONFIGS_DIR / "profiles" / "gpu.yaml").read_text(encoding="utf-8"))
    cfg = bench.experiment_config("gpu_recipe")
    assert {k: cfg["train"]["transformer"][k] for k in gpu["train"]["transformer"]} == gpu["train"]["transformer"]
    assert cfg["train"]["transformer"] == {**load_config("cryptonite", "gpu")["train"]["transformer"],
                                           "progress": False}
    assert bench.main(["--data-dir", str(DEMO_DATA_DIR), "--encoder", "tiny", "--only", "gpu_recipe",
                       "--smoke"]) == 0
    assert calls == ["split_data", "extend", "augment", "train", "evaluate"]
    assert "| gpu_recipe | cryptonite |" in capsys.readouterr().out


def test_vocab_texts_never_include_holdout():
    parts = {"train": None, "tune": None, "holdout": _frame(["holdout text"]), "test": _frame(["test text"])}
    assert steps.vocab_texts(parts) == ["test text"]


def _frame(texts):
    import pandas as pd
    return pd.DataFrame({"text": texts})


def _tiny_run(out: Path) -> None:
    cfg = load_config("cryptonite", "quick", ["train.transformer.encoder=tiny", "train.transformer.epochs=1",
                                               "train.transformer.progress=false", "extend.sources.izard.enabled=true",
                                               "extend.sources.goemotions_en.max_rows=50",
                                               "augment.enabled=true", "augment.methods.backtranslation.enabled=false",
                                               "augment.methods.synonyms.enabled=false"])
    parts, _ = steps.split_data("cryptonite", DEMO_DATA_DIR, 42, cfg["extend"]["splits"])
    parts["train"] = parts["train"].head(120)
    res = stages.run_chain(cfg, DEMO_DATA_DIR, out / "model", parts=parts, cache_dir=out / "cache")
    for name, df in res["parts"].items():
        write_csv_atomic(out / "data" / f"{name}.csv", df)
    metrics = {k: v for k, v in res["metrics"].items() if k != "model"}
    write_json_atomic(out / "metrics.json", metrics)


def test_same_seed_gives_identical_metrics_and_data_files(tmp_path):
    _tiny_run(tmp_path / "a")
    _tiny_run(tmp_path / "b")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.csv")) + [Path("metrics.json")]
    assert len(files) >= 5
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["holdout"]["weighted_f1"] is not None


def test_cnn_trains_through_the_shared_loop(monkeypatch, tmp_path):
    from emotions.data.labels import get_task
    from emotions.models import train_model
    from emotions.models.nn import trainer

    fits = []
    real = trainer.Trainer.fit
    monkeypatch.setattr(trainer.Trainer, "fit", lambda self: (fits.append(self.cfg), real(self))[1])
    parts, _ = steps.split_data("cryptonite", DEMO_DATA_DIR, 42)
    model = train_model("cnn", parts["train"].head(40), parts["tune"].head(20), get_task("cryptonite"),
                        {"epochs": 2, "embedding_dim": 8, "filters": 8, "dense_units": 8, "progress": False}, tmp_path)
    assert len(fits) == 1 and fits[0].monitor == "loss" and fits[0].optimizer == "adam"
    assert model.history["monitor"] == "tune_loss" and len(model.history["epochs"]) >= 1


def test_cnn_benchmark_runs_through_the_stage_functions(calls, tmp_path):
    bench = _load_benchmark("bench_cnn")
    r = bench.run_task("twitter", DEMO_DATA_DIR, {"epochs": 1, "embedding_dim": 8, "filters": 8, "dense_units": 8,
                                                  "progress": False}, tmp_path, None)
    assert calls == ["split_data", "train"] and r["accuracy"] is not None


def test_the_stage_list_is_one_list():
    """The registered stage functions, the notebooks and base.yaml's `stages` name the same stages."""
    notebooks = sorted(p.stem for p in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    base = yaml.safe_load((CONFIGS_DIR / "base.yaml").read_text(encoding="utf-8"))["stages"]
    assert sorted(stages.STAGES) == notebooks == base
    assert list(stages.CHAIN) == [s for s in base if s in ("02_extend", "03_augment", "04_train", "05_evaluate")]
