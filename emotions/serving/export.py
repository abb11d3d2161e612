"""Export a trained transformer run to ONNX (fp32 + batch-independent int8) and check parity with torch.

    python -m emotions.export_onnx RUN_DIR [--frame CSV] [--n 1000] [--force] [--no-int8]
                                   [--int8-mode weights|static|dynamic] [--calibration CSV]
                                   [--calibration-rows 300]

Writes `RUN_DIR/export/` (or `<model>/export` for a bare model folder) atomically:

    model.onnx          fp32 graph, inputs input_ids/attention_mask (int64, dynamic batch and
                        sequence axes), output `probs` (sigmoid or softmax applied in the graph)
    model.int8.onnx     int8 copy whose answers do not depend on a text's batch-mates: by default
                        weight-only int8 (`--int8-mode weights`: MatMulNBits and int8 embedding rows,
                        activations quantised per text at run time); `--int8-mode static`: QDQ with
                        activation scales calibrated on training texts; `--int8-mode dynamic`: the
                        older per-batch activation scales (batch-dependent answers)
    tokenizer.json      the model's fast tokenizer
    export_meta.json    max length, pad id, opset, exporter, fingerprint of the weights, and
                        `quantization` (mode, format, calibration source and rows)
    parity.json         ONNX vs torch on a frame of texts: max |p_onnx - p_torch|, decision
                        agreement, weighted F1 vs torch decisions (and vs the labels if present),
                        texts/s, and each backend's answers alone vs batched (`batch_invariance`)
    manifest.json       sha256 and size of every file above and of the model files it was made
                        from; the service and the batch job verify it at start-up

An existing export is never replaced silently: pass `--force`. The export is refused
(nothing installed) when the fp32 graph differs from torch by more than `--tolerance`.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from .. import __version__
from ..core.io import write_json_atomic
from .model_folder import MANIFEST_FILE, ModelFolderError, verify_manifest, write_manifest
from .onnx_graph import DEFAULT_OPSET, ExportError, export_graph
from .onnx_predictor import (FP32_FILE, INT8_FILE, META_FILE, PARITY_FILE, TOKENIZER_FILE, ModelPaths,
                             OnnxPredictor, locate, model_file_hashes, weights_fingerprint)
from .quantize import DEFAULT_INT8_MODE, INT8_MODES, quantize_int8

log = logging.getLogger(__name__)

DEFAULT_TOLERANCE = 1e-3
DEFAULT_CALIBRATION_ROWS = 300
BATCH_INVARIANCE_TOLERANCE = 1e-5     # |p alone - p batched| above this: the export warns


# --- the whole export ------------------------------------------------------------------------------
def export_is_current(path: str | Path, int8_mode: str | None = None) -> bool:
    """True when the run has a complete, intact export made from the weights its model folder holds now
    (and, given `int8_mode`, whose int8 copy was made that way)."""
    paths = locate(path)
    files = [paths.export_dir / f for f in (FP32_FILE, TOKENIZER_FILE, META_FILE, PARITY_FILE)]
    if not all(f.is_file() for f in files):
        return False
    meta = json.loads((paths.export_dir / META_FILE).read_text(encoding="utf-8"))
    if meta.get("int8") and not (paths.export_dir / INT8_FILE).is_file():
        return False
    if int8_mode is not None and meta.get("int8") and int8_mode_of(meta) != int8_mode:
        return False
    try:
        verify_manifest(paths.export_dir)
    except ModelFolderError:
        return False
    return meta.get("weights_fingerprint") == weights_fingerprint(paths.model_dir)


def export_onnx(path: str | Path, *, predictor=None, force: bool = False, reuse: bool = False, int8: bool = True,
                per_channel: bool = True, frame: str | Path | None = None, n: int = 1000,
                opset: int = DEFAULT_OPSET, tolerance: float = DEFAULT_TOLERANCE, threads: int | None = None,
                int8_mode: str = DEFAULT_INT8_MODE, calibration: str | Path | None = None,
                calibration_rows: int = DEFAULT_CALIBRATION_ROWS) -> dict:
    """Export the model of a run (or model folder) and return the parity report.

    `predictor`: an already loaded torch predictor (else `load_predictor(model_dir)`).
    `reuse`: when a current export exists (same weights, same int8 mode), return its parity report instead.
    `int8_mode`: "weights", "static" (calibrated on `calibration_rows` texts of `calibration`, default the
    run's training CSV) or "dynamic" (see `quantize_int8`).
    Raises FileExistsError when an export exists and neither `force` nor (for a current
    export) `reuse` is set; ExportError when the model kind cannot be exported or fp32
    parity exceeds `tolerance`.
    """
    if int8_mode not in INT8_MODES:
        raise ValueError(f"int8 mode must be one of {INT8_MODES}, got {int8_mode!r}")
    paths = locate(path)
    target = paths.export_dir
    if target.exists() and not force:
        if reuse and export_is_current(paths.model_dir, int8_mode if int8 else None):
            log.info("reusing the current ONNX export at %s", target)
            return json.loads((target / PARITY_FILE).read_text(encoding="utf-8"))
        raise FileExistsError(f"{target} already exists" + (" but is stale or incomplete" if reuse else "")
                              + "; pass --force (force=True) to re-export")
    predictor = _exportable(paths, predictor)
    import torch
    if threads:
        torch.set_num_threads(int(threads))

    t_start = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        int8_opts = {"mode": int8_mode, "calibration": calibration, "rows": calibration_rows} if int8 else None
        report = _export_into(tmp, paths, predictor, int8_opts, per_channel=per_channel, frame=frame, n=n,
                              opset=opset, tolerance=tolerance, threads=threads)
        _install(tmp, target, force)
        tmp = None
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("ONNX export of %s written to %s in %.1fs", paths.model_dir, target, time.perf_counter() - t_start)
    return report


def int8_mode_of(meta: dict) -> str | None:
    """How an export's int8 copy was made (one of INT8_MODES); exports made before the modes were dynamic."""
    if not meta.get("int8"):
        return None
    return str((meta.get("quantization") or {}).get("mode", "dynamic"))


def _exportable(paths: ModelPaths, predictor):
    """The torch predictor to export (loaded when not given); ExportError for kinds without a graph."""
    model = getattr(predictor, "model", None)
    if model is not None and "forward" in vars(model):
        # e.g. a model just trained in this process: accelerate's mixed precision wraps its forward in a
        # bf16 autocast, which the graph would record. The saved folder holds the plain fp32 model.
        log.warning("the given model's forward is wrapped (%s); exporting the model saved in %s instead",
                    getattr(model.forward, "__qualname__", "mixed precision"), paths.model_dir)
        predictor = None
    if predictor is None:
        from ..models import load_predictor
        predictor = load_predictor(paths.model_dir)
    if predictor.kind == "ensemble":
        raise ExportError(f"{paths.model_dir} is an ensemble: serve it with --backend torch, or export one member "
                          f"(python -m emotions.export_onnx {paths.model_dir}/members/0)")
    missing = [a for a in ("model", "tokenizer", "max_length") if not hasattr(predictor, a)]
    if missing:
        raise ExportError(f"model kind {predictor.kind!r} cannot be exported to ONNX (it has no {missing}); "
                          "serve it with --backend native")
    return predictor


def _meta(predictor, paths: ModelPaths, opset: int, exporter: str, per_channel: bool, fingerprint: str) -> dict:
    return {
        "format": 1, "kind": predictor.kind, "task": predictor.task, "labels": list(predictor.labels),
        "multilabel": bool(predictor.multilabel), "output": "probs",
        "activation": "sigmoid" if predictor.multilabel else "softmax",
        "inputs": ["input_ids", "attention_mask"], "max_length": int(predictor.max_length),
        "pad_id": int(predictor.tokenizer.pad_token_id),
        "truncation_side": getattr(predictor.tokenizer, "truncation_side", "right"),
        "text_prefix": str(getattr(predictor, "text_prefix", "") or ""),
        "opset": opset, "exporter": exporter, "int8": False, "per_channel": bool(per_channel),
        "weights_fingerprint": fingerprint, "versions": _versions(), "emotions_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _export_into(tmp: Path, paths: ModelPaths, predictor, int8: dict | None, *, per_channel: bool,
                 frame, n: int, opset: int, tolerance: float, threads: int | None) -> dict:
    """Write the whole export into `tmp` (graph, tokenizer, int8 copy, metadata, parity, manifest)."""
    from .parity import compare, parity_frame        # pandas: the full install only

    exporter = export_graph(predictor, tmp / FP32_FILE, opset)
    predictor.tokenizer.backend_tokenizer.save(str(tmp / TOKENIZER_FILE))
    model_hashes = model_file_hashes(paths.model_dir)
    meta = _meta(predictor, paths, opset, exporter, per_channel, weights_fingerprint(paths.model_dir, model_hashes))
    write_json_atomic(tmp / META_FILE, meta)
    tmp_paths = ModelPaths(paths.model_dir, tmp, paths.run_dir)
    onnx_preds = {"onnx": _load_from(tmp_paths, "onnx", threads)}
    if int8:
        meta.update(int8=True, int8_mode=int8["mode"], quantization=_make_int8(tmp, paths, onnx_preds["onnx"],
                                                                                 int8, per_channel))
        write_json_atomic(tmp / META_FILE, meta)
        onnx_preds["onnx-int8"] = _load_from(tmp_paths, "onnx-int8", threads)

    df, frame_name = parity_frame(paths, frame, n)
    report = compare(predictor, onnx_preds, df)
    del onnx_preds
    report = {"frame": frame_name, "tolerance": tolerance, "exporter": exporter, "opset": opset,
              "int8_mode": meta.get("int8_mode"), "sizes_mb": _sizes(paths.model_dir, tmp), **report}
    report["passed"] = bool(report["onnx"]["max_abs_diff"] <= tolerance)
    write_json_atomic(tmp / PARITY_FILE, report)
    if not report["passed"]:
        raise ExportError(f"ONNX fp32 differs from torch by {report['onnx']['max_abs_diff']:.3g} > tolerance "
                          f"{tolerance:g} (exporter {exporter}); nothing installed. Report: "
                          f"{json.dumps(report['onnx'])}")
    _warn_if_batch_dependent(report, meta)
    write_manifest(tmp, sorted(f for f in tmp.iterdir() if f.is_file() and f.name != MANIFEST_FILE),
                   model_files=model_hashes)
    return report


def _warn_if_batch_dependent(report: dict, meta: dict) -> None:
    """The parity frame measured what the int8 mode promises: say so when a text's answer moved with its batch."""
    inv = (report.get("onnx-int8") or {}).get("batch_invariance")
    if not inv or not (meta.get("quantization") or {}).get("batch_independent"):
        return
    if inv["texts_with_other_labels"] or inv["max_abs_diff_alone_vs_batched"] > BATCH_INVARIANCE_TOLERANCE:
        log.warning("int8 (%s) answers moved with their batch on this machine: %d of %d texts got other labels "
                    "alone than batched, max |dp| %.3g (see parity.json); onnxruntime's kernels may differ here",
                    meta.get("int8_mode"), inv["texts_with_other_labels"], inv["n_texts"],
                    inv["max_abs_diff_alone_vs_batched"])


def _make_int8(tmp: Path, paths: ModelPaths, fp32: OnnxPredictor, int8: dict, per_channel: bool) -> dict:
    """The int8 copy of `tmp`'s graph; static mode calibrates on training texts tokenised as served."""
    ids: list[list[int]] = []
    calibration = None
    if int8["mode"] == "static":
        from .parity import calibration_texts

        texts, source = calibration_texts(paths, int8["calibration"], int8["rows"])
        ids = fp32.encode(fp32.preprocess(texts))
        calibration = {"source": source, "rows": len(texts),
                       "texts_sha256": hashlib.sha256("\n".join(texts).encode("utf-8", "replace")).hexdigest()}
    record = quantize_int8(tmp / FP32_FILE, tmp / INT8_FILE, per_channel, mode=int8["mode"], calibration=ids)
    if calibration:
        record["calibration"] = calibration
    return record


def _load_from(paths: ModelPaths, backend: str, threads: int | None) -> OnnxPredictor:
    """An OnnxPredictor on a not-yet-installed export folder."""
    import onnxruntime as ort

    from ..models.base import Predictor, read_model_card
    from .onnx_predictor import load_tokenizer, session_options

    card = read_model_card(paths.model_dir)
    meta = json.loads((paths.export_dir / META_FILE).read_text(encoding="utf-8"))
    file = paths.export_dir / (INT8_FILE if backend == "onnx-int8" else FP32_FILE)
    session = ort.InferenceSession(str(file), session_options(threads), providers=["CPUExecutionProvider"])
    return OnnxPredictor(session, load_tokenizer(paths.export_dir, meta), meta, kind=card["kind"],
                         backend=backend, paths=paths, **Predictor.card_kwargs(card))


def _install(tmp: Path, target: Path, force: bool) -> None:
    """Move the finished export into place in one rename (the old one, if forced, goes after)."""
    old = None
    if target.exists():
        if not force:
            raise FileExistsError(f"{target} appeared while exporting; pass --force to replace it")
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.chmod(tmp, 0o755)
    for f in tmp.iterdir():
        os.chmod(f, 0o644)
    try:
        os.replace(tmp, target)
    except OSError:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _sizes(model_dir: Path, export_dir: Path) -> dict:
    def mb(p: Path) -> float:
        files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()]
        return round(sum(f.stat().st_size for f in files) / 1e6, 2)

    out = {"torch_model_dir": mb(model_dir) - mb(model_dir / "export") if (model_dir / "export").exists()
           else mb(model_dir)}
    for name in (FP32_FILE, INT8_FILE):
        if (export_dir / name).is_file():
            out[name] = mb(export_dir / name)
    return out


def _versions() -> dict:
    import onnx
    import onnxruntime
    import torch
    import transformers
    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
            "transformers": transformers.__version__}


# --- CLI -------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m emotions.export_onnx", description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="run folder (with model/) or a model folder")
    ap.add_argument("--frame", type=Path, default=None,
                    help="CSV with a text column (and label columns) for the parity check; "
                         "default: the run's data/holdout.csv, else tune.csv")
    ap.add_argument("--n", type=int, default=1000, help="rows of the frame to compare on (0 = all)")
    ap.add_argument("--force", action="store_true", help="replace an existing export")
    ap.add_argument("--reuse", action="store_true",
                    help="keep an existing export made from the same weights (print its parity report)")
    ap.add_argument("--no-int8", dest="int8", action="store_false", help="skip the int8 model")
    ap.add_argument("--per-tensor", dest="per_channel", action="store_false",
                    help="per-tensor int8 weights (default: per channel)")
    ap.add_argument("--int8-mode", choices=INT8_MODES, default=DEFAULT_INT8_MODE,
                    help="weights: int8 weights, each text's activations quantised on their own; static: "
                         "activation scales calibrated once (both: a text's answer never depends on its "
                         "batch-mates); dynamic: scales computed per batch (batch-dependent answers)")
    ap.add_argument("--calibration", type=Path, default=None,
                    help="CSV with a text column of training texts for static int8; default: the run's "
                         "data/train.csv (never the parity frame)")
    ap.add_argument("--calibration-rows", type=int, default=DEFAULT_CALIBRATION_ROWS,
                    help="calibration texts drawn from it (0 = all)")
    ap.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (>= 17)")
    ap.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                    help="max |p_onnx - p_torch| allowed for the fp32 graph")
    ap.add_argument("--threads", type=int, default=None, help="torch / onnxruntime threads (default: all cores)")
    args = ap.parse_args(argv)
    if args.opset < 17:
        ap.error("--opset must be >= 17")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("emotions").setLevel(logging.INFO)
    missing = [m for m in ("torch", "transformers", "onnx", "onnxscript", "pandas")
               if importlib.util.find_spec(m) is None]
    if missing:
        print(f"error: exporting needs the full install ({', '.join(missing)} missing here): "
              "pip install torch==2.13.0 -r requirements.txt; the serving install only serves an export",
              file=sys.stderr)
        return 2
    try:
        report = export_onnx(args.run, force=args.force, reuse=args.reuse, int8=args.int8,
                             per_channel=args.per_channel, int8_mode=args.int8_mode, calibration=args.calibration,
                             calibration_rows=args.calibration_rows,
                             frame=args.frame, n=args.n, opset=args.opset, tolerance=args.tolerance,
                             threads=args.threads)
    except (FileExistsError, FileNotFoundError, ExportError, ModelFolderError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
