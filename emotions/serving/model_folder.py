"""What the service and the batch job check in a model folder before serving from it.

- The model card may only name files inside the model folder (`preprocess.asr_dictionary_paths`,
  `transformer.encoder_dir` / `head_file`, `ensemble.members`); relative names are read from the folder,
  never from the working directory. A name outside it, or a file it names that is missing or unreadable,
  stops the start-up in one line, before any request (the ASR dictionaries are read then, not lazily).
- A folder with a manifest (`manifest.json`: relative path -> sha256 and size of each file, written when
  the files were made) is verified against it; the first missing, truncated or altered file stops the
  start-up in one line that names it. The export writes one into `export/` (`python -m emotions.export_onnx`);
  `write_manifest(model_dir)` records a model folder (for the trainer's save). The model card is not
  hashed: retuned thresholds are a legitimate change.

No torch, transformers or pandas: the serving install imports it.
"""

from __future__ import annotations

import dataclasses
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


# --- manifests ---------------------------------------------------------------------------------------------
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
    """The files a model folder is made of: all but the card, the manifest, an export folder and dotfiles.

    Sorted as `Path`s (the order `onnx_predictor.weights_fingerprint` hashes them in)."""
    out = []
    for f in sorted(p for p in Path(model_dir).rglob("*") if p.is_file()):
        rel = f.relative_to(model_dir)
        if (rel.parts in ((MODEL_CARD,), (MANIFEST_FILE,)) or rel.parts[0] == EXPORT_DIRNAME
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
    from ..core.io import write_json_atomic

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


# --- what the card names -----------------------------------------------------------------------------------
def read_card(model_dir: Path) -> dict:
    """The model card, with a one-line error naming the file when it is missing or not JSON."""
    path = Path(model_dir) / MODEL_CARD
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir} is not a trained model folder: {MODEL_CARD} is missing")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ModelFolderError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(card, dict):
        raise ModelFolderError(f"{path} holds a {type(card).__name__}, not a model card")
    return card


def card_file_refs(card: dict) -> list[tuple[str, object]]:
    """(where in the card, the name it holds) for every file or folder a loader reads."""
    refs: list[tuple[str, object]] = []
    paths = (card.get("preprocess") or {}).get("asr_dictionary_paths") or []
    refs += [(f"preprocess.asr_dictionary_paths[{i}]", p) for i, p in enumerate(paths)]
    arch = card.get("transformer") or {}
    refs += [(f"transformer.{key}", arch[key]) for key in ("encoder_dir", "head_file") if key in arch]
    members = (card.get("ensemble") or {}).get("members") or []
    refs += [(f"ensemble.members[{i}]", m) for i, m in enumerate(members)]
    return refs


def resolve_inside(root: Path, base: Path, name: object, where: str, card_path: Path) -> Path:
    """`name` (relative to `base`, or absolute) resolved; ModelFolderError unless it exists inside `root`."""
    if not isinstance(name, str) or not name.strip():
        raise ModelFolderError(f"{card_path}: {where} must be a file name, got {name!r}")
    path = (base / name).resolve()
    if not path.is_relative_to(root):
        raise ModelFolderError(f"{card_path}: {where} names {name!r}, which is outside the model folder {root}; "
                               "copy the file into the model folder and name it relative to it")
    if not path.exists():
        raise ModelFolderError(f"{card_path}: {where} names {name!r}, which does not exist ({path})")
    return path


def check_card(model_dir: Path, root: Path | None = None) -> tuple[Path, ...]:
    """Check every name in the card (ensemble members' cards too); return the card's ASR dictionaries,
    resolved inside the folder, after reading them once (a bad one fails here, naming its line)."""
    from ..data.preprocess import load_asr_dictionary

    model_dir = Path(model_dir).resolve()
    root = model_dir if root is None else root
    card_path = model_dir / MODEL_CARD
    card = read_card(model_dir)
    dictionaries = []
    for where, name in card_file_refs(card):
        path = resolve_inside(root, model_dir, name, where, card_path)
        if where.startswith("preprocess."):
            if not path.is_file():
                raise ModelFolderError(f"{card_path}: {where} names {name!r}, which is not a file")
            dictionaries.append(path)
        elif where.startswith("ensemble."):
            check_card(path, root)
    try:
        load_asr_dictionary(dictionaries)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ModelFolderError(f"{card_path}: an ASR dictionary it names cannot be used: {e}") from None
    return tuple(dictionaries)


def use_dictionaries(predictor, dictionaries: tuple[Path, ...]) -> None:
    """Point the predictor's preprocessing at the checked dictionaries (absolute paths inside the folder)
    and build its replacement table now, not at the first request."""
    config = predictor.preprocess_config
    predictor.preprocess_config = dataclasses.replace(config, asr_dictionary_paths=tuple(str(p) for p in dictionaries))
    predictor.preprocess(["проверка"])
