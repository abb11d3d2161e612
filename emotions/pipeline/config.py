"""Run configuration: configs/base.yaml <- profiles/<profile>.yaml <- tasks/<task>.yaml <- -p overrides.

A profile holds only what it changes; `extends: OTHER` layers it on another profile (gpu extends full).
base.yaml alone is the default recipe (profile `baseline`, whose file is empty).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable

import yaml

from ..core.paths import CONFIGS_DIR
from ..data.labels import get_task
from .schema import DEFAULT_PROFILE, Config, validate_config

__all__ = ["DEFAULT_PROFILE", "deep_merge", "load_config", "profile_chain", "available_profiles"]


def deep_merge(base: dict, over: dict) -> dict:
    """Recursive dict merge; `over` wins; lists and scalars are replaced."""
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _load_yaml(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


def profile_chain(profile: str, configs_dir: Path = CONFIGS_DIR) -> list[tuple[str, dict]]:
    """[(name, its YAML without `extends`), ...] from the furthest ancestor to `profile`."""
    chain: list[tuple[str, dict]] = []
    name: str | None = profile
    while name is not None:
        if name in [n for n, _ in chain]:
            raise ValueError(f"profile {profile!r}: `extends` loops ({' <- '.join([n for n, _ in chain] + [name])})")
        path = configs_dir / "profiles" / f"{name}.yaml"
        if not path.is_file():
            known = ", ".join(available_profiles(configs_dir))
            raise ValueError(f"unknown profile {name!r}" + (f" (extended by {chain[-1][0]!r})" if chain else "")
                             + f"; available: {known}")
        data = _load_yaml(path)
        chain.append((name, data))
        name = data.pop("extends", None)
    return chain[::-1]


def available_profiles(configs_dir: Path = CONFIGS_DIR) -> list[str]:
    return sorted(p.stem for p in (configs_dir / "profiles").glob("*.yaml"))


def parse_override(item: str) -> tuple[list[str], Any]:
    """'train.transformer.epochs=3' -> (['train', 'transformer', 'epochs'], 3) (value parsed as YAML)."""
    if "=" not in item:
        raise ValueError(f"override {item!r} must look like key=value or section.key=value")
    key, value = item.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ValueError(f"override {item!r} has an empty key")
    try:
        return parts, yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError as e:
        raise ValueError(f"override {item!r}: the value is not valid YAML ({getattr(e, 'problem', e)}); "
                         "quote it, e.g. -p 'key=\"text\"'") from None


def set_path(cfg: dict, parts: list[str], value: Any) -> None:
    """Set cfg[parts[0]][parts[1]]... = value, making sections as needed (the schema checks the keys)."""
    node = cfg
    for p in parts[:-1]:
        if not isinstance(node.get(p), dict):
            node[p] = {}
        node = node[p]
    node[parts[-1]] = value


def load_config(task: str, profile: str, overrides: Iterable[str] = (), configs_dir: Path = CONFIGS_DIR) -> dict:
    """Merge the layers, apply `-p` overrides and check the result against the schema
    (`pipeline.schema.Config`): an unknown key or a wrong type raises OptionsError (a ValueError)
    naming the key, the expected type and the closest known keys."""
    get_task(task)
    chain = profile_chain(profile, configs_dir)
    cfg = _load_yaml(configs_dir / "base.yaml")
    for _, layer in chain:
        cfg = deep_merge(cfg, layer)
    task_path = configs_dir / "tasks" / f"{task}.yaml"
    if task_path.is_file():
        task_cfg = _load_yaml(task_path)
        per_profile = task_cfg.pop("profiles", {}) or {}
        cfg = deep_merge(cfg, task_cfg)
        for name, _ in chain:   # the task's own tuning of each profile in the chain
            cfg = deep_merge(cfg, per_profile.get(name, {}) or {})
    cfg.setdefault("common", {})["task"] = task
    cfg["common"]["profile"] = profile
    marks: dict[str, str] = {}
    for item in overrides:
        parts, value = parse_override(item)
        if len(parts) == 1 and parts[0] not in Config.model_fields:
            parts = ["common", *parts]   # -p seed=7 is common.seed
        set_path(cfg, parts, value)
        marks[".".join(parts)] = item
    return validate_config(cfg, marks)
