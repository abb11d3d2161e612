"""Profiles hold only what they change and compose; the default profile is what base.yaml says."""

import tomllib
from importlib import import_module

import pytest
import yaml

from emotions.core.paths import CONFIGS_DIR, PROJECT_ROOT
from emotions.pipeline.config import DEFAULT_PROFILE, deep_merge, load_config, profile_chain
from emotions.pipeline.runner import build_parser
from emotions.pipeline.schema import Config


def _yaml(name: str) -> dict:
    return yaml.safe_load((CONFIGS_DIR / "profiles" / f"{name}.yaml").read_text(encoding="utf-8")) or {}


def test_the_default_profile_is_base_yaml_as_it_is():
    assert build_parser().get_default("profile") == DEFAULT_PROFILE == Config().common.profile == "baseline"
    assert _yaml("baseline") == {}
    cfg = load_config("cryptonite", DEFAULT_PROFILE)
    assert cfg["train"]["model"] == Config().train.model == "baseline"
    assert not (CONFIGS_DIR / "profiles" / "default.yaml").exists()


@pytest.mark.parametrize("name", ["gpu", "quick"])
def test_gpu_and_quick_extend_full_and_change_only_their_keys(name):
    assert [n for n, _ in profile_chain(name)] == ["full", name]
    own = {k: v for k, v in _yaml(name).items() if k != "extends"}
    expected = deep_merge(deep_merge(yaml.safe_load((CONFIGS_DIR / "base.yaml").read_text()), _yaml("full")), own)
    got = load_config("cedr", name)   # cedr: no per-profile task keys for full and gpu
    assert got["train"]["transformer"] == {**expected["train"]["transformer"],
                                           **({"epochs": 6, "lr": 1e-4} if name == "quick" else {})}


def test_no_profile_restates_a_schema_default():
    defaults = Config().model_dump()
    for path in (CONFIGS_DIR / "profiles").glob("*.yaml"):
        options = (_yaml(path.stem).get("train") or {}).get("transformer") or {}
        same = {k: v for k, v in options.items() if defaults["train"]["transformer"].get(k) == v}
        assert not same, f"{path.name} restates schema defaults {same}"


def test_extends_loops_and_unknown_parents_are_clear_errors(tmp_path):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "base.yaml").write_text("common: {seed: 1}\n")
    (tmp_path / "profiles" / "a.yaml").write_text("extends: b\n")
    (tmp_path / "profiles" / "b.yaml").write_text("extends: a\n")
    (tmp_path / "profiles" / "c.yaml").write_text("extends: nope\n")
    with pytest.raises(ValueError, match="loops"):
        load_config("cryptonite", "a", configs_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown profile 'nope' \\(extended by 'c'\\)"):
        load_config("cryptonite", "c", configs_dir=tmp_path)


def test_console_scripts_name_callables():
    scripts = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert {"emotions-run", "emotions-serve", "emotions-predict", "emotions-runs"} <= set(scripts)
    for target in scripts.values():
        module, func = target.split(":")
        assert callable(getattr(import_module(module), func)), target
