"""The fp32 ONNX graph of a torch predictor: probabilities in the graph, dynamic batch and sequence axes
(torch.onnx's dynamo exporter, the TorchScript one as a fallback). Used by emotions.serving.export."""

from __future__ import annotations

import contextlib
import io
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_OPSET = 18


class ExportError(RuntimeError):
    """The model cannot be exported, or the export failed its parity check."""


def _probability_module(model, multilabel: bool):
    """Wrap `model(input_ids, attention_mask) -> logits` so the graph outputs probabilities."""
    import torch

    class WithProbabilities(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            logits = self.inner(input_ids, attention_mask).float()
            return torch.sigmoid(logits) if multilabel else torch.softmax(logits, dim=-1)

    return WithProbabilities(model).eval()


def _example_inputs(tokenizer, max_length: int):
    """Two rows of different lengths (>= 4 tokens) so no axis gets specialised to 0/1."""
    import torch

    texts = ["пример текста для экспорта модели в onnx", "ещё один короткий пример"]
    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return enc["input_ids"].to(torch.int64), enc["attention_mask"].to(torch.int64)


@contextlib.contextmanager
def quiet(*loggers: str):
    """Silence library warnings (torch.onnx notes, onnxruntime's root-logger advice) for a while."""
    import warnings

    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in loggers]
    for lg, _ in saved:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in saved:
            lg.setLevel(level)


def export_graph(predictor, path: Path, opset: int = DEFAULT_OPSET) -> str:
    """Write the fp32 ONNX graph of a torch predictor to `path`; return the exporter used."""
    device = next(predictor.model.parameters()).device
    try:
        return _export_graph_cpu(predictor, path, opset)
    finally:
        predictor.model.to(device)


def _export_graph_cpu(predictor, path: Path, opset: int) -> str:
    import torch

    module = _probability_module(predictor.model.cpu(), predictor.multilabel)
    ids, mask = _example_inputs(predictor.tokenizer, predictor.max_length)
    names = dict(input_names=["input_ids", "attention_mask"], output_names=["probs"])
    captured = io.StringIO()
    t0 = time.perf_counter()
    try:
        batch = torch.export.Dim("batch", min=1, max=65536)
        seq = torch.export.Dim("seq", min=1, max=int(predictor.max_length))
        with contextlib.redirect_stdout(captured), quiet("torch.onnx", "torch.export", "torch._dynamo"), \
                torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(module, (ids, mask), str(path), opset_version=opset, dynamo=True,
                              external_data=False, optimize=True,
                              dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
                              **names)
        exporter = "dynamo"
    except Exception as exc:  # noqa: BLE001 - fall back to the TorchScript exporter, parity decides
        log.warning("dynamo ONNX export failed (%s: %s); trying the legacy TorchScript exporter",
                    type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        log.debug("dynamo exporter output:\n%s", captured.getvalue())
        axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}, "probs": {0: "batch"}}
        with contextlib.redirect_stdout(captured), quiet("torch.onnx"), torch.no_grad():
            torch.onnx.export(module, (ids, mask), str(path), opset_version=max(opset, 17), dynamo=False,
                              dynamic_axes=axes, do_constant_folding=True, **names)
        exporter = "torchscript"
    log.info("exported %s with the %s exporter in %.1fs (%.1f MB)", path.name, exporter,
             time.perf_counter() - t0, path.stat().st_size / 1e6)
    return exporter
