"""Loading a run's model for the service on a backend, with one-line errors for what is missing.

The service reads the run folder and never writes into it: the ONNX backends need the export that
`python -m emotions.export_onnx RUN` (or stage `07_export`) made. Exporting at start-up happens only
when asked (`auto_export=True`, the CLI's `--export-if-missing`), for local use. Before a model is
loaded, its folder is checked (`model_folder`): the card names only files inside it, and the files
match their manifest.
"""

from __future__ import annotations

import errno
import importlib.util
import logging
from pathlib import Path

from ..models.base import Predictor
from .model_folder import MANIFEST_FILE, check_card, read_card, use_dictionaries, verify_manifest
from .onnx_predictor import BACKENDS as ONNX_BACKENDS
from .onnx_predictor import ExportMissingError, IncompleteExportError, OnnxPredictor, locate

log = logging.getLogger(__name__)

BACKENDS = ("torch", "native", *ONNX_BACKENDS)
FULL_INSTALL = "pip install torch==2.13.0 -r requirements.txt"
SERVE_INSTALL = "pip install -r requirements-serve.txt"


class MissingInstallError(RuntimeError):
    """A backend needs packages that this environment (e.g. the serving install) does not have."""


def _missing(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def require_packages(backend: str, kind: str) -> None:
    """Raise MissingInstallError, in one line, when `backend` cannot run a `kind` model here."""
    if backend in ONNX_BACKENDS:
        missing, install = _missing("onnxruntime", "tokenizers"), SERVE_INSTALL
    elif kind == "baseline":
        missing, install = _missing("sklearn", "scipy", "joblib"), SERVE_INSTALL
    else:
        missing, install = _missing("torch", "transformers"), FULL_INSTALL
    if missing:
        hint = "" if install == SERVE_INSTALL else \
            " (the serving install, requirements-serve.txt, has no torch: serve the ONNX export with --backend onnx-int8)"
        raise MissingInstallError(f"backend {backend!r} for a {kind} model needs {', '.join(missing)}, which this "
                                  f"environment lacks: {install}{hint}")


def missing_export_message(paths, auto_export_flag: str = "--export-if-missing") -> str:
    """What to run when a run has no ONNX export (the service itself never writes one unasked)."""
    target = paths.run_dir or paths.model_dir
    return (f"no ONNX export in {paths.export_dir}; make it with `python -m emotions.export_onnx {target}` "
            f"(full install), or run the pipeline's 07_export stage (-p export.enabled=true); "
            f"for local use, {auto_export_flag} exports it at start-up (writes into the run folder)")


def load_backend(path: str | Path, backend: str = "torch", *, threads: int | None = None,
                 auto_export: bool = False, spinning: bool = False) -> Predictor:
    """A predictor for a run/model folder on `backend`; read-only unless `auto_export` (export when missing).

    The model folder is checked first: ModelFolderError (one line, naming the file) for a card that names
    files outside the folder, or a file that is missing, truncated or altered since its manifest was written.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    paths = locate(path)
    card = read_card(paths.model_dir)
    dictionaries = check_card(paths.model_dir)
    if backend in ("torch", "native"):
        require_packages(backend, card["kind"])
        if verify_manifest(paths.model_dir, hint="the model folder changed since it was saved") is None:
            log.info("%s has no %s: its files are not verified", paths.model_dir, MANIFEST_FILE)
        if threads and card["kind"] != "baseline":
            import torch
            torch.set_num_threads(int(threads))
        from ..models import load_predictor
        predictor = load_predictor(paths.model_dir)
    elif card["kind"] != "transformer":
        raise ValueError(f"backend {backend!r} serves exported transformer models; this model is of kind "
                         f"{card['kind']!r}: use --backend native")
    else:
        require_packages(backend, card["kind"])
        predictor = _load_onnx(paths, backend, threads, auto_export, spinning)
    use_dictionaries(predictor, dictionaries)
    return predictor


def _load_onnx(paths, backend: str, threads: int | None, auto_export: bool, spinning: bool) -> OnnxPredictor:
    """The export on an ONNX backend; with `auto_export`, a missing or incomplete export is made first."""
    try:
        return OnnxPredictor.load(paths.model_dir, backend=backend, threads=threads, spinning=spinning)
    except ExportMissingError as exc:
        if not auto_export:
            if isinstance(exc, IncompleteExportError):
                raise
            raise ExportMissingError(missing_export_message(paths)) from None
    require_packages("torch", "transformer")             # exporting needs the full install
    from .export import export_onnx
    log.warning("no complete ONNX export at %s: exporting %s now (--export-if-missing; one time, may take a "
                "minute)", paths.export_dir, paths.model_dir)
    try:
        export_onnx(paths.model_dir, force=paths.export_dir.exists(), threads=threads)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        raise RuntimeError(f"cannot write the ONNX export into {paths.export_dir} ({exc.strerror}); export it "
                           f"where the run folder is writable: python -m emotions.export_onnx "
                           f"{paths.run_dir or paths.model_dir}") from None
    return OnnxPredictor.load(paths.model_dir, backend=backend, threads=threads, spinning=spinning)


def backend_label(predictor: Predictor, backend: str) -> str:
    """"native" for non-torch kinds served as trained, else the backend name."""
    if backend in ("torch", "native"):
        return "native" if predictor.kind == "baseline" else "torch"
    return backend
