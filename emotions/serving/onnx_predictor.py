"""A Predictor that runs an exported transformer model through onnxruntime (fp32 or int8).

The export folder (written by `python -m emotions.export_onnx`) holds `model.onnx`, `model.int8.onnx`,
`tokenizer.json` (the model's fast tokenizer), `export_meta.json` (max length, padding id,
text prefix, input names, fingerprint of the exported weights) and `parity.json`. Labels,
thresholds and preprocessing come from the model folder's `model_card.json`, so retuned
thresholds apply without re-exporting. No torch or transformers import is needed here.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..models.base import Predictor
from .model_folder import (EXPORT_DIRNAME, MODEL_CARD, ModelFolderError, file_record, model_files, read_card,
                           read_manifest, verify_manifest)

log = logging.getLogger(__name__)

FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "export_meta.json"
PARITY_FILE = "parity.json"
BACKENDS = ("onnx", "onnx-int8")


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


class ExportMissingError(FileNotFoundError):
    """The model has no (complete) ONNX export yet."""


class IncompleteExportError(ExportMissingError):
    """The export folder exists but lacks a file the backend needs (named in the message)."""


class StaleExportError(RuntimeError):
    """The ONNX export was made from different weights than the model folder now holds."""


@dataclass(frozen=True)
class ModelPaths:
    """Where a model and its export live. `run_dir` is None for a bare model folder."""

    model_dir: Path
    export_dir: Path
    run_dir: Path | None


def locate(path: str | Path) -> ModelPaths:
    """Accept a run folder (with `model/`) or a model folder itself.

    The export goes to `<run>/export` (also when the run's `model/` folder is given) and
    to `<model>/export` for a bare model folder with another name.
    """
    path = Path(path).expanduser().resolve()
    if (path / "model" / MODEL_CARD).is_file():
        return ModelPaths(path / "model", path / EXPORT_DIRNAME, path)
    if (path / MODEL_CARD).is_file():
        if path.name == "model":
            return ModelPaths(path, path.parent / EXPORT_DIRNAME, path.parent)
        return ModelPaths(path, path / EXPORT_DIRNAME, None)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    raise FileNotFoundError(f"{path} is neither a run folder (with model/{MODEL_CARD}) nor a model folder "
                            f"(with {MODEL_CARD})")


def model_file_hashes(model_dir: str | Path) -> dict[str, dict]:
    """{relative path: {"sha256", "bytes"}} of the model folder's files (see `model_folder.model_files`)."""
    model_dir = Path(model_dir)
    return {str(f.relative_to(model_dir)): file_record(f) for f in model_files(model_dir)}


def weights_fingerprint(model_dir: str | Path, hashes: dict[str, dict] | None = None) -> str:
    """sha256 over the model folder's files except the card (thresholds), its manifest and any export folder."""
    import hashlib

    h = hashlib.sha256()
    for rel, record in (model_file_hashes(model_dir) if hashes is None else hashes).items():
        h.update(rel.encode())
        h.update(record["sha256"].encode())
    return h.hexdigest()


def _changed_files(recorded: dict[str, dict], now: dict[str, dict]) -> list[str]:
    """What differs between the model files recorded at export time and those there now."""
    out = [f"{rel} changed" for rel in recorded if rel in now and now[rel]["sha256"] != recorded[rel]["sha256"]]
    out += [f"{rel} missing" for rel in recorded if rel not in now]
    return out + [f"{rel} is new" for rel in now if rel not in recorded]


def clean_unicode(text: str) -> str:
    """Make any Python str encodable as UTF-8: lone surrogates become U+FFFD (tokenizers need valid UTF-8)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return _SURROGATE_RE.sub("\ufffd", text)


def session_options(threads: int | None = None, spinning: bool = False):
    """onnxruntime session options: `threads` intra-op threads (None = all cores), one inter-op thread.

    `spinning` off by default: idle worker threads sleep instead of busy-waiting, which keeps latency
    stable when the cores are shared (HTTP server, other processes); on idle dedicated cores spinning
    can be slightly faster.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.inter_op_num_threads = 1
    so.intra_op_num_threads = int(threads or 0)
    if not spinning:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return so


def load_tokenizer(export_dir: Path, meta: dict):
    """The exported fast tokenizer with truncation at the model's max length and no padding."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(export_dir / TOKENIZER_FILE))
    tok.no_padding()
    tok.enable_truncation(int(meta["max_length"]), direction=meta.get("truncation_side", "right"))
    return tok


def _says_no_int8(meta_file: Path) -> bool:
    try:
        return json.loads(meta_file.read_text(encoding="utf-8")).get("int8") is False
    except (OSError, ValueError, AttributeError):
        return False


def _remake(paths: ModelPaths) -> str:
    return f"re-export with `python -m emotions.export_onnx {paths.run_dir or paths.model_dir} --force` (full install)"


def check_export(paths: ModelPaths, backend: str, check_fingerprint: bool = True) -> dict:
    """Check the files `backend` serves from the export and return its metadata.

    Raises ExportMissingError (no export folder), IncompleteExportError (a file missing: named),
    ModelFolderError (a file truncated or altered since the export: named; or unreadable metadata) and
    StaleExportError (other labels or weights than the model folder holds now).
    """
    export = paths.export_dir
    onnx_name = INT8_FILE if backend == "onnx-int8" else FP32_FILE
    if not export.is_dir():
        raise ExportMissingError(f"no ONNX export at {export}; make it with `python -m emotions.export_onnx "
                                 f"{paths.run_dir or paths.model_dir}` (full install)")
    needed = [onnx_name, TOKENIZER_FILE, META_FILE]
    manifest = read_manifest(export)
    no_int8 = (f"the ONNX export in {export} has no {INT8_FILE} (it was exported with --no-int8): serve it with "
               f"--backend onnx, or {_remake(paths)} without --no-int8")
    if manifest is not None:
        if onnx_name == INT8_FILE and INT8_FILE not in manifest["files"]:
            raise IncompleteExportError(no_int8)
        missing = [n for n in needed if n in manifest["files"] and not (export / n).is_file()]
        if missing:
            raise IncompleteExportError(f"{export / missing[0]} is missing (listed in {export / 'manifest.json'}); "
                                        f"{_remake(paths)}")
        verify_manifest(export, needed, _remake(paths))
    else:
        missing = [n for n in needed if not (export / n).is_file()]
        if missing == [INT8_FILE] and _says_no_int8(export / META_FILE):
            raise IncompleteExportError(no_int8)
        if missing:
            raise IncompleteExportError(f"the ONNX export in {export} is incomplete: {', '.join(missing)} "
                                        f"missing; {_remake(paths)}")
    try:
        meta = json.loads((export / META_FILE).read_text(encoding="utf-8"))
        int(meta["max_length"]), int(meta["pad_id"])
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise ModelFolderError(f"{export / META_FILE} is unreadable ({type(e).__name__}: {e}); {_remake(paths)}") \
            from None
    card = read_card(paths.model_dir)
    if list(meta.get("labels", card["labels"])) != list(card["labels"]):
        raise StaleExportError(f"{export}: exported labels {meta.get('labels')} differ from the "
                               f"model card's {card['labels']}; re-export with --force")
    if check_fingerprint and meta.get("weights_fingerprint"):
        now = model_file_hashes(paths.model_dir)
        if weights_fingerprint(paths.model_dir, now) != meta["weights_fingerprint"]:
            changed = _changed_files((manifest or {}).get("model_files") or {}, now) if manifest else []
            what = f" ({', '.join(changed[:3])}{', ...' if len(changed) > 3 else ''})" if changed else ""
            raise StaleExportError(f"{export} was exported from other weights than {paths.model_dir} now "
                                   f"holds{what}; {_remake(paths)}")
    return meta


class OnnxPredictor(Predictor):
    """Exported transformer through onnxruntime: tokenizer + ONNX graph that outputs probabilities."""

    def __init__(self, session, tokenizer, meta: dict, *, kind: str, backend: str,
                 batch_size: int = 16, paths: ModelPaths | None = None, **card_kwargs):
        super().__init__(**card_kwargs)
        self.kind = kind
        self.backend = backend
        self.session = session
        self.tokenizer = tokenizer
        self.meta = meta
        self.max_length = int(meta["max_length"])
        self.pad_id = int(meta["pad_id"])
        self.text_prefix = str(meta.get("text_prefix") or "")
        self.batch_size = max(1, int(batch_size))
        self.paths = paths
        self._inputs = [i.name for i in session.get_inputs()]
        for name in self._inputs:
            if name not in ("input_ids", "attention_mask"):
                raise ValueError(f"unexpected ONNX input {name!r}; expected input_ids and attention_mask")

    # --- loading ----------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, *, backend: str = "onnx", threads: int | None = None,
             batch_size: int = 16, check_fingerprint: bool = True, spinning: bool = False) -> "OnnxPredictor":
        """Load the export of a run/model folder. `backend`: "onnx" (fp32) or "onnx-int8".

        The files it serves are checked first (`check_export`). `batch_size`: texts per onnxruntime call
        (length-sorted); on CPU, 4-32 short texts per call ran fastest for e5-small int8 (128 was ~1.5x
        slower). `threads`: intra-op threads.
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        paths = locate(path)
        card = read_card(paths.model_dir)
        meta = check_export(paths, backend, check_fingerprint)
        onnx_file = paths.export_dir / (INT8_FILE if backend == "onnx-int8" else FP32_FILE)
        import onnxruntime as ort             # after the checks: a missing export fails without loading it

        session = ort.InferenceSession(str(onnx_file), session_options(threads, spinning),
                                       providers=["CPUExecutionProvider"])
        tok = load_tokenizer(paths.export_dir, meta)
        if backend == "onnx-int8" and (meta.get("quantization") or {}).get("mode", "dynamic") == "dynamic":
            log.warning("%s quantises activations per batch (dynamic int8): a text's labels can change with the "
                        "texts batched with it; %s for static int8", onnx_file, _remake(paths))
        log.info("loaded %s (%s, %.1f MB)", onnx_file, backend, onnx_file.stat().st_size / 1e6)
        return cls(session, tok, meta, kind=card["kind"], backend=backend, batch_size=batch_size,
                   paths=paths, **Predictor.card_kwargs(card))

    # --- inference --------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids (special tokens added, truncated to max length) for preprocessed texts."""
        batch = [self.text_prefix + clean_unicode(str(t)) for t in texts]
        return [e.ids for e in self.tokenizer.encode_batch(batch)]

    def run_ids(self, ids: Sequence[Sequence[int]]) -> np.ndarray:
        """Probabilities for one padded batch of token id lists."""
        length = max(1, max(len(x) for x in ids))
        input_ids = np.full((len(ids), length), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), length), dtype=np.int64)
        for i, x in enumerate(ids):
            input_ids[i, :len(x)] = x
            mask[i, :len(x)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        return self.session.run(None, {k: feeds[k] for k in self._inputs})[0]

    def predict_proba_clean(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
        if not texts:
            return out
        ids = self.encode(texts)
        order = np.argsort([len(x) for x in ids], kind="stable")      # similar lengths together: less padding
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            out[idx] = self.run_ids([ids[i] for i in idx])
        return out

    def save_weights(self, model_dir: Path) -> None:
        raise NotImplementedError("an ONNX predictor is loaded from an export; save the original model instead")
