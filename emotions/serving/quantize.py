"""The int8 copy of an fp32 ONNX graph (onnxruntime.quantization), in one of three modes (`quantize_int8`):
`weights` (default) and `static` give a text the same answer whatever it is batched with; `dynamic` does not.
Used by emotions.serving.export."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .onnx_graph import ExportError, quiet

log = logging.getLogger(__name__)

INT8_MODES = ("weights", "static", "dynamic")
DEFAULT_INT8_MODE = "weights"
WEIGHT_BLOCK = 32                     # weights mode: int8 scale per output channel and block of 32 inputs


def ffn_projections(model_path: Path) -> list[str]:
    """MatMul nodes with a non-square constant weight: the FFN's up and down projections (and the head).

    Dynamic int8 handles their activations worst (GELU outliers, wide intermediate). On the cryptonite
    quick run (1,000 holdout texts vs torch): all MatMuls int8 -> label agreement 98.0%, 30 MB;
    down projections kept fp32 -> 99.0%, 51 MB; up and down kept fp32 -> 99.6%, 72 MB.
    """
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    shapes = {i.name: tuple(i.dims) for i in graph.initializer}
    return [n.name for n in graph.node if n.op_type == "MatMul"
            and any(len(shapes.get(x, ())) == 2 and shapes[x][0] != shapes[x][1] for x in n.input)]


class CalibrationReader:
    """onnxruntime `CalibrationDataReader` over token id lists: one text per call, so no padding
    positions enter the activation ranges (padded positions never reach a real token's answer)."""

    def __init__(self, ids: Sequence[Sequence[int]]):
        self._ids = [list(x) for x in ids if len(x)]
        self._next = 0

    def get_next(self) -> dict | None:
        if self._next >= len(self._ids):
            return None
        x = np.asarray([self._ids[self._next]], dtype=np.int64)
        self._next += 1
        return {"input_ids": x, "attention_mask": np.ones_like(x)}

    def rewind(self) -> None:
        self._next = 0

    def __len__(self) -> int:
        return len(self._ids)


def quantize_int8(src: Path, dst: Path, per_channel: bool = True, *, mode: str = DEFAULT_INT8_MODE,
                  calibration: Sequence[Sequence[int]] = (), keep_ffn_fp32: bool | None = None) -> dict:
    """Write the int8 copy of `src`; return what was done (recorded as `quantization` in the metadata).

    `weights` (default, `_quantize_weights`): int8 weights and embedding rows; each text's activations are
    quantised on their own at run time. `static`: QDQ MatMuls, int8 weights, activations int8 with fixed
    scales calibrated (MinMax) on `calibration` token ids, FFN projections fp32 by default. In both, a
    text's answer does not depend on the texts batched with it. `dynamic`: activation scales computed per batch at run time
    (batch-dependent answers; the FFN projections stay fp32 unless `keep_ffn_fp32=False`).

    Measured on the cryptonite quick run (e5-small, full vocabulary; 1,000 holdout texts vs fp32 ONNX,
    2 threads): weights 99.73% label / 98.1% text agreement, weighted F1 0.6276 (fp32 0.6275), 122 MB,
    227 texts/s (fp32 248); static (FFN kept fp32) 99.37% / 95.7%, F1 0.6327, 451 MB, 243 texts/s,
    all MatMuls static 93.2% / 64.5%; dynamic 99.51% / 96.7%, F1 0.6289, 162 MB, 274 texts/s, and 3% of
    texts got other labels alone than in a batch of 16.
    """
    if mode not in INT8_MODES:
        raise ValueError(f"int8 mode must be one of {INT8_MODES}, got {mode!r}")
    t0 = time.perf_counter()
    if mode == "dynamic":
        record = _quantize_dynamic(src, dst, per_channel, True if keep_ffn_fp32 is None else keep_ffn_fp32)
    elif mode == "weights":
        record = _quantize_weights(src, dst, bool(keep_ffn_fp32))
    else:
        keep = True if keep_ffn_fp32 is None else keep_ffn_fp32           # all MatMuls static: 64.5% agreement
        record = _quantize_static(src, dst, per_channel, calibration, keep)
    log.info("quantised %s -> %s (%s) in %.1fs (%.1f MB; %d MatMuls kept fp32)", src.name, dst.name, mode,
             time.perf_counter() - t0, dst.stat().st_size / 1e6, len(record["fp32_nodes"]))
    return record


def _quantize_dynamic(src: Path, dst: Path, per_channel: bool, keep_ffn_fp32: bool) -> dict:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    exclude = ffn_projections(src) if keep_ffn_fp32 else []
    with quiet(""):          # onnxruntime.quantization logs advice on the root logger
        quantize_dynamic(str(src), str(dst), per_channel=per_channel, weight_type=QuantType.QInt8,
                         nodes_to_exclude=exclude, extra_options={"MatMulConstBOnly": True})
    return {"mode": "dynamic", "format": "QOperator (DynamicQuantizeLinear + MatMulInteger)",
            "weights": f"int8, {'per channel' if per_channel else 'per tensor'}",
            "activations": "uint8, scale computed per batch at run time", "batch_independent": False,
            "fp32_nodes": exclude}


def _quantize_weights(src: Path, dst: Path, keep_ffn_fp32: bool) -> dict:
    """Weight-only int8: the embedding table (Gather, int8 rows) and every MatMul (MatMulNBits, 8 bits).

    MatMulNBits at accuracy level 4 quantises its input per row and block at run time, so each text's
    activations get their own scales and its answer does not depend on the texts batched with it.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    import onnx

    exclude = ffn_projections(src) if keep_ffn_fp32 else []
    with quiet(""), tempfile.TemporaryDirectory(prefix="int8-") as tmp:
        embedded = Path(tmp) / "gather.onnx"          # only Gather: no activation is quantised in this step
        quantize_dynamic(str(src), str(embedded), per_channel=True, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["Gather"])
        quantizer = MatMulNBitsQuantizer(onnx.load(str(embedded)), bits=8, block_size=WEIGHT_BLOCK,
                                         is_symmetric=True, accuracy_level=4, nodes_to_exclude=exclude,
                                         op_types_to_quantize=("MatMul",))
        quantizer.process()
        quantizer.model.save_model_to_file(str(dst), use_external_data_format=False)
    return {"mode": "weights", "format": "MatMulNBits (com.microsoft, 8 bits, accuracy level 4) + int8 Gather",
            "weights": f"int8, symmetric, a scale per output channel and block of {WEIGHT_BLOCK} inputs; "
                       "embedding rows int8",
            "activations": f"int8 per row and block of {WEIGHT_BLOCK} at run time (each text's own scales)",
            "batch_independent": True, "fp32_nodes": exclude}


def _quantize_static(src: Path, dst: Path, per_channel: bool, calibration: Sequence[Sequence[int]],
                     keep_ffn_fp32: bool) -> dict:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    reader = CalibrationReader(calibration)
    if not len(reader):
        raise ExportError("static int8 needs calibration texts (none given); pass --calibration CSV "
                          "or --int8-mode weights")
    exclude = ffn_projections(src) if keep_ffn_fp32 else []
    with quiet(""):
        quantize_static(str(src), str(dst), reader, quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul"],
                        per_channel=per_channel, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=exclude,
                        extra_options={"MatMulConstBOnly": True})
    return {"mode": "static", "format": "QDQ", "weights": f"int8, {'per channel' if per_channel else 'per tensor'}",
            "activations": "uint8, fixed scales calibrated (MinMax)", "batch_independent": True,
            "calibration_texts": len(reader), "fp32_nodes": exclude}
