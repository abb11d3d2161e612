"""File manifests: the sha256 and size of each file of a folder, written when the files are made and
checked before they are used (a model folder at training save, an ONNX export at export).

`write_manifest(folder)` records a model folder; `verify_manifest(folder)` names the first missing,
truncated or altered file in one line (ModelFolderError). Model cards (`model_card.json`, at any depth)
are not hashed: retuned thresholds are a legitimate change. Standard library only: the serving install
and the trainer both import it.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Iterable

MANIFEST_FILE = "manifest.json"
MODEL_CARD = "model_card.json"
EXPORT_DIRNAME = "export"


class ModelFolderError(RuntimeError):
    """A model or export folder is not what it claims: a file missing, truncated or altered, or a card
    that names files outside the folder."""


def file_record(path: Path, chunk: int = 1 << 20) -> dict:
    """{"sha256": ..., "bytes": ...} of one file."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
            size += len(block)
    return {"sha256": h.hexdigest(), "bytes": size}


def model_files(model_dir: Path) -> list[Path]:
    """The files a model folder is made of: all but model cards and manifests (an ensemble's members have
    their own), an export folder and dotfiles.

    Sorted as `Path`s (the order `onnx_predictor.weights_fingerprint` hashes them in)."""
    out = []
    for f in sorted(p for p in Path(model_dir).rglob("*") if p.is_file()):
        rel = f.relative_to(model_dir)
        if (rel.name in (MODEL_CARD, MANIFEST_FILE) or rel.parts[0] == EXPORT_DIRNAME
                or any(part.startswith(".") for part in rel.parts)):
            continue
        out.append(f)
    return out


def build_manifest(folder: Path, files: Iterable[Path], **extra) -> dict:
    """A manifest of `files` (inside `folder`), keyed by their path relative to it."""
    folder = Path(folder)
    records = {Path(f).relative_to(folder).as_posix(): file_record(Path(f)) for f in files}
    return {"format": 1, "algorithm": "sha256", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "files": records, **extra}


def write_manifest(folder: str | Path, files: Iterable[Path] | None = None, **extra) -> Path:
    """Write `folder/manifest.json` atomically: `files`, or every file of a model folder (`model_files`)."""
    from .io import write_json_atomic

    folder = Path(folder)
    manifest = build_manifest(folder, model_files(folder) if files is None else files, **extra)
    return write_json_atomic(folder / MANIFEST_FILE, manifest)


def read_manifest(folder: Path) -> dict | None:
    """The folder's manifest, None when it has none; ModelFolderError when it cannot be read."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files = manifest["files"]
        if not all(isinstance(r, dict) and isinstance(r.get("sha256"), str) and isinstance(r.get("bytes"), int)
                   for r in files.values()):
            raise ValueError("a file entry lacks sha256 or bytes")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ModelFolderError(f"{path} is unreadable ({type(e).__name__}: {e})") from None
    return manifest


def check_file(folder: Path, rel: str, record: dict, hint: str = "") -> str:
    """Compare one file with its manifest record; return its sha256. ModelFolderError names what is wrong."""
    root = Path(folder).resolve()
    path = (root / rel).resolve()
    where = f" (listed in {root / MANIFEST_FILE})"
    hint = f"; {hint}" if hint else ""
    if not path.is_relative_to(root):
        raise ModelFolderError(f"{root / MANIFEST_FILE} lists {rel!r}, which is outside {root}{hint}")
    if not path.is_file():
        raise ModelFolderError(f"{path} is missing{where}{hint}")
    size, want = path.stat().st_size, int(record["bytes"])
    if size < want:
        raise ModelFolderError(f"{path} is truncated: {size} of {want} bytes{where}{hint}")
    if size > want:
        raise ModelFolderError(f"{path} was altered: {size} bytes, {want} when it was written{where}{hint}")
    got = file_record(path)["sha256"]
    if got != record["sha256"]:
        raise ModelFolderError(f"{path} was altered: its sha256 differs from the one recorded when it was "
                               f"written{where}{hint}")
    return got


def verify_manifest(folder: Path, only: Iterable[str] | None = None, hint: str = "") -> dict[str, str] | None:
    """Check the files of the folder's manifest (or just `only`, which it must list); None without a manifest.

    Returns {relative path: sha256}. Raises ModelFolderError at the first missing, truncated or altered file.
    """
    manifest = read_manifest(folder)
    if manifest is None:
        return None
    files = manifest["files"]
    names = list(files) if only is None else list(only)
    unlisted = [n for n in names if n not in files]
    if unlisted:
        raise ModelFolderError(f"{Path(folder) / MANIFEST_FILE} does not list {unlisted}{'; ' + hint if hint else ''}")
    return {n: check_file(folder, n, files[n], hint) for n in names}
