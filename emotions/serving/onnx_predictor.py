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

from ..core.io import file_sha256
from ..models.base import MODEL_CARD, Predictor, read_model_card

log = logging.getLogger(__name__)

EXPORT_DIRNAME = "export"
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "export_meta.json"
PARITY_FILE = "parity.json"
BACKENDS = ("onnx", "onnx-int8")


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


class ExportMissingError(FileNotFoundError):
    """The model has no (complete) ONNX export yet."""


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


def weights_fingerprint(model_dir: str | Path) -> str:
    """sha256 over the model folder's files except the card (thresholds) and any export folder."""
    import hashlib

    model_dir = Path(model_dir)
    h = hashlib.sha256()
    for f in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        rel = f.relative_to(model_dir)
        if (rel.parts == (MODEL_CARD,) or rel.parts[0] == EXPORT_DIRNAME
                or any(part.startswith(".") for part in rel.parts)):
            continue
        h.update(str(rel).encode())
        h.update(file_sha256(f).encode())
    return h.hexdigest()


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

        `batch_size`: texts per onnxruntime call (length-sorted); on CPU, 4-32 short texts per call
        ran fastest for e5-small int8 (128 was ~1.5x slower). `threads`: intra-op threads.
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        paths = locate(path)
        card = read_model_card(paths.model_dir)
        onnx_file = paths.export_dir / (INT8_FILE if backend == "onnx-int8" else FP32_FILE)
        meta_file = paths.export_dir / META_FILE
        if not (onnx_file.is_file() and meta_file.is_file() and (paths.export_dir / TOKENIZER_FILE).is_file()):
            raise ExportMissingError(f"no complete ONNX export at {paths.export_dir} (missing {onnx_file.name}, "
                                     f"{META_FILE} or {TOKENIZER_FILE}); make it with `python -m emotions.export_onnx "
                                     f"{paths.run_dir or paths.model_dir}` (full install)")
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if list(meta.get("labels", card["labels"])) != list(card["labels"]):
            raise StaleExportError(f"{paths.export_dir}: exported labels {meta.get('labels')} differ from the "
                                   f"model card's {card['labels']}; re-export with --force")
        if check_fingerprint and meta.get("weights_fingerprint"):
            now = weights_fingerprint(paths.model_dir)
            if now != meta["weights_fingerprint"]:
                raise StaleExportError(f"{paths.export_dir} was exported from other weights than "
                                       f"{paths.model_dir} now holds; re-export with "
                                       f"`python -m emotions.export_onnx {paths.run_dir or paths.model_dir} --force`")
        import onnxruntime as ort             # after the checks: a missing export fails without loading it

        session = ort.InferenceSession(str(onnx_file), session_options(threads, spinning),
                                       providers=["CPUExecutionProvider"])
        tok = load_tokenizer(paths.export_dir, meta)
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
