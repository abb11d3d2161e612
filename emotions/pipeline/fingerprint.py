"""What a stage's result depends on (parameters, notebook, package code, library versions) and where it came from.

The runner skips a stage only when its fingerprint equals the one of its last success (and its
input and output files are unchanged); `what_changed` says why it re-runs. `provenance()` is what
every manifest records: code version, library versions, Python, device and thread count.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

from ..core.io import file_sha256, stable_hash

PACKAGE_DIR = Path(__file__).resolve().parents[1]
# Libraries whose version can change a number in metrics.json (kernels, tokenisation, solvers, parsing).
RESULT_LIBRARIES = ("torch", "transformers", "tokenizers", "scikit-learn", "numpy", "pandas", "scipy")
_SKIP_DIRS = {"__pycache__"}


def package_source_hash(root: str | Path = PACKAGE_DIR) -> str:
    """sha256 over the package's files (relative names and contents; .py sources and resources, no caches)."""
    root = Path(root)
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix not in (".pyc", ".pyo")
                    and not _SKIP_DIRS.intersection(p.relative_to(root).parts)):
        h.update(f.relative_to(root).as_posix().encode())
        h.update(b"\0" + file_sha256(f).encode())
    return h.hexdigest()


def library_versions(names: tuple[str, ...] = RESULT_LIBRARIES) -> dict[str, str | None]:
    """Installed version of each library (None when not installed)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@lru_cache(maxsize=4)
def git_state(root: str | Path = PACKAGE_DIR.parent) -> dict[str, Any] | None:
    """{'commit', 'dirty'} of the checkout holding the package; None outside a git checkout (or without git)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True,
                              timeout=20).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def code_version(root: str | Path = PACKAGE_DIR) -> dict[str, Any]:
    """The git commit (+ dirty flag) when in a git checkout, and always the package source hash."""
    state = git_state(Path(root).parent)
    return {"git_commit": state["commit"] if state else None, "git_dirty": state["dirty"] if state else None,
            "package_sha256": package_source_hash(root)}


def device_and_threads() -> dict[str, Any]:
    """The device torch computes on and its thread counts (what may differ across machines)."""
    info: dict[str, Any] = {"cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count()}
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a requirement
        return info
    info["torch_threads"] = torch.get_num_threads()
    info["torch_interop_threads"] = torch.get_num_interop_threads()
    info["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return info


def provenance() -> dict[str, Any]:
    """What a manifest records about where its numbers came from."""
    return {"code": code_version(), "libraries": library_versions(), "python": platform.python_version(),
            "platform": platform.platform(), **device_and_threads()}


def stage_fingerprint(params: Mapping[str, Any], notebook: str | Path, *, code: str | None = None,
                      libraries: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """Everything a stage's result depends on besides its input files (the manifest checks those)."""
    return {"params": stable_hash(dict(params)), "notebook": file_sha256(notebook),
            "code": code or package_source_hash(),
            "libraries": dict(libraries if libraries is not None else library_versions())}


def what_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> str:
    """A short reason why `new` differs from the fingerprint of the last success ('' when equal)."""
    if not old:
        return "never ran"
    reasons = [what for key, what in (("params", "parameters changed"), ("notebook", "notebook changed"),
                                      ("code", "code changed")) if old.get(key) != new.get(key)]
    if "libraries" not in old:
        reasons.append("library versions were not recorded")
    else:
        before, after = old.get("libraries") or {}, new.get("libraries") or {}
        reasons += [f"{name} {before.get(name)} → {after.get(name)}" for name in sorted(set(before) | set(after))
                    if before.get(name) != after.get(name)]
    return ", ".join(reasons)
