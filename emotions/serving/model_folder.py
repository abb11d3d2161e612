"""What the service and the batch job check in a model folder before serving from it.

- The model card may only name files inside the model folder (`preprocess.asr_dictionary_paths`,
  `transformer.encoder_dir` / `head_file`, `ensemble.members`); relative names are read from the folder,
  never from the working directory. A name outside it, or a file it names that is missing or unreadable,
  stops the start-up in one line, before any request (the ASR dictionaries are read then, not lazily).
- A folder with a manifest (`core.manifest`: relative path -> sha256 and size of each file, written when
  the files were made: by `Predictor.save` for a model folder, by `python -m emotions.export_onnx` for
  `export/`) is verified against it; the first missing, truncated or altered file stops the start-up in
  one line that names it.

No torch, transformers or pandas: the serving install imports it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ..core.manifest import (EXPORT_DIRNAME, MANIFEST_FILE, MODEL_CARD, ModelFolderError, build_manifest,
                             check_file, file_record, model_files, read_manifest, verify_manifest, write_manifest)

__all__ = ["EXPORT_DIRNAME", "MANIFEST_FILE", "MODEL_CARD", "ModelFolderError", "build_manifest", "check_file",
           "file_record", "model_files", "read_manifest", "verify_manifest", "write_manifest",
           "read_card", "card_file_refs", "resolve_inside", "check_card", "use_dictionaries"]


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
