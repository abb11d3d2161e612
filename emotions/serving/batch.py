"""Batch prediction over files of any size: CSV or Parquet in, CSV or Parquet out, streamed in chunks.

    python -m emotions.predict --run RUN --input FILE --output FILE [--backend auto|onnx-int8|onnx|torch|native]
                               [--text-column text] [--keep COL ...] [--scores] [--chunk-rows 10000]
                               [--max-chars 2000] [--threads N] [--restart] [--force] [--no-progress]
                               [--engine local|ray] [--ray-address ADDR] [--ray-actors N] [--ray-batch-rows N]

The input is read `chunk_rows` rows at a time (memory does not grow with the file), each chunk is
predicted with the run's preprocessing and tuned thresholds (the service's predictor: ONNX int8 when
the run has an export, else the model as trained) and written to `OUTPUT.partial/part-NNNNNN.parquet`.
After the last chunk the parts are joined into OUTPUT in one rename and the folder is removed. An
interrupted job resumes from the parts already written (same command again). Rows with an empty or
missing text get no labels; they keep their row number and the problem in the `error` column and are
listed in `OUTPUT.errors.csv` (rows in == rows out: a CSV's blank lines are rows too). Texts longer than
`max_chars` are cut as the service cuts them, and the `truncated` column says so. A job holds
`OUTPUT.lock` while it runs, so a second job on the same output is refused; the input is never the
output. `BatchPredictor` is the same per-chunk step for Ray Data / Spark. `--engine ray` runs the same
job as a Ray Data pipeline, N model copies in Ray actors, into the same output file
(emotions.serving.batch_ray; Ray is an optional install).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import resource
import shutil
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..core.io import atomic_path, file_sha256, write_csv_atomic, write_json_atomic
from ..models.base import Predictor
from .batch_files import (STATE_FILE, BatchInputError, OutputLockError, ResumeMismatchError, check_paths,
                          estimate_rows, file_format, iter_chunks, output_lock, prepare_work)
from .inputs import DEFAULT_MAX_CHARS, limit_text, text_problem
from .model_folder import ModelFolderError
from .onnx_predictor import INT8_FILE, StaleExportError, locate

log = logging.getLogger(__name__)

ROW, ERROR, TRUNCATED = "row", "error", "truncated"
ENGINES = ("local", "ray")


class BatchPredictor:
    """A frame with raw texts in, the same rows with 0/1 label columns (+ scores) out.

    Rows whose text is missing, not a string or blank are kept with empty labels and the problem in
    `error`. Texts over `max_chars` characters are cut as the service cuts them (`truncated` says so).
    Usable as-is in a cluster job: Ray Data `ds.map_batches(BatchPredictor, fn_constructor_args=...,
    batch_format="pandas")` or Spark `df.mapInPandas(lambda it: map(bp, it), schema)`.
    """

    def __init__(self, predictor: Predictor, text_column: str = "text", keep: Sequence[str] | None = None,
                 scores: bool = False, max_chars: int = DEFAULT_MAX_CHARS):
        if max_chars < 1:
            raise ValueError(f"max_chars must be >= 1, got {max_chars}")
        self.predictor, self.text_column, self.scores = predictor, text_column, scores
        self.keep = None if keep is None else list(keep)
        self.labels = list(predictor.labels)
        self.max_chars = int(max_chars)

    def output_columns(self, input_columns: Sequence[str]) -> list[str]:
        keep = list(input_columns) if self.keep is None else self.keep
        ours = [*self.labels, *(f"p_{l}" for l in self.labels if self.scores), TRUNCATED, ERROR]
        clash = [c for c in keep if c in ours]
        if clash:
            raise BatchInputError(f"input column(s) {clash} would clash with the prediction columns; "
                                  f"choose the columns to copy with --keep")
        return [*keep, *ours]

    def check_columns(self, columns: Sequence[str], where: str = "input") -> None:
        missing = [c for c in [self.text_column, *(self.keep or [])] if c not in columns]
        if missing:
            raise BatchInputError(f"{where}: missing column(s) {missing}; it has {list(columns)} "
                                  f"(pick the text column with --text-column)")

    @staticmethod
    def problems(texts: pd.Series) -> np.ndarray:
        """Per row: "" for a usable text, else why it gets no labels (missing, not a string, blank)."""
        return np.array([text_problem(t) for t in texts], dtype=object)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        self.check_columns(batch.columns)
        texts = batch[self.text_column]
        problems = self.problems(texts)
        good = problems == ""
        out = batch[list(batch.columns) if self.keep is None else self.keep].reset_index(drop=True).copy()
        proba = np.full((len(batch), len(self.labels)), np.nan)
        decided = np.zeros((len(batch), len(self.labels)), dtype=np.int8)
        truncated = np.zeros(len(batch), dtype=bool)
        if good.any():
            limited = [limit_text(t, self.max_chars) for t in texts[good]]
            truncated[good] = [cut for _, cut in limited]
            proba[good] = self.predictor.predict_proba([t for t, _ in limited])
            decided[good] = self.predictor.decide(proba[good])
        for j, label in enumerate(self.labels):
            out[label] = pd.array(np.where(good, decided[:, j], 0), dtype="Int8")
            out.loc[~good, label] = pd.NA
        if self.scores:
            for j, label in enumerate(self.labels):
                out[f"p_{label}"] = proba[:, j].astype(np.float32)
        out[TRUNCATED] = truncated
        out[ERROR] = problems.astype(str)
        return out

# --- the job -----------------------------------------------------------------------------------------------
@dataclass
class BatchSummary:
    """What a batch job did."""

    output: str
    rows: int
    bad_rows: int
    chunks: int
    chunks_reused: int
    seconds: float
    rows_per_s: float
    peak_rss_mib: float
    backend: str
    errors_file: str | None = None


def peak_rss_mib() -> float:
    """This process's peak resident memory so far: VmHWM on Linux (ru_maxrss would also count the memory
    of the process that started this one, which it keeps across fork and exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def model_fingerprint(run: str | Path) -> str:
    """Card (thresholds, preprocessing) by content; weights and exports by name, size and mtime."""
    paths = locate(run)
    h = hashlib.sha256(file_sha256(paths.model_dir / "model_card.json").encode())
    for folder in (paths.model_dir, paths.export_dir):
        for f in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if f.is_file() and f.name != "model_card.json":
                st = f.stat()
                h.update(f"{f}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def pick_backend(run: str | Path, backend: str = "auto") -> str:
    """`auto`: onnx-int8 when the run has an export, else the model as trained (torch / native)."""
    if backend != "auto":
        return backend
    paths = locate(run)
    if (paths.export_dir / INT8_FILE).is_file():
        return "onnx-int8"
    from ..models.base import read_model_card

    kind = read_model_card(paths.model_dir)["kind"]
    if kind == "transformer":
        log.warning("no ONNX export in %s: predicting with torch (`python -m emotions.export_onnx %s` makes "
                    "the faster int8 copy)", paths.export_dir, run)
    return "torch" if kind == "transformer" else "native"

# --- the job -----------------------------------------------------------------------------------------------
def predict_file(run: str | Path, input_path: str | Path, output_path: str | Path, *, backend: str = "auto",
                 text_column: str = "text", keep: Sequence[str] | None = None, scores: bool = False,
                 chunk_rows: int = 10_000, threads: int | None = None, restart: bool = False, force: bool = False,
                 progress: bool = True, predictor: Predictor | None = None, max_chars: int = DEFAULT_MAX_CHARS,
                 on_chunk: Callable[[int], None] | None = None, engine: str = "local",
                 ray_address: str | None = None, ray_actors: int | None = None,
                 ray_batch_rows: int | None = None) -> BatchSummary:
    """Predict every row of `input_path` into `output_path` (see the module doc). Resumable.

    `engine="ray"`: the same job on Ray (emotions.serving.batch_ray); `threads` is then per model copy."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "ray":
        if predictor is not None:
            raise ValueError("engine 'ray' loads the model in each Ray actor: a given predictor is local-only")
        from . import batch_ray

        batch_ray.import_ray()
    input_path, output_path = Path(input_path), Path(output_path)
    in_fmt, out_fmt = file_format(input_path), file_format(output_path)
    if not input_path.is_file():
        raise BatchInputError(f"{input_path}: file not found")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    check_paths(input_path, output_path)
    with output_lock(output_path) as previous:
        if output_path.exists() and not force:
            raise FileExistsError(f"{output_path} exists; pass --force to replace it")
        backend = pick_backend(run, backend) if predictor is None else backend
        if engine == "ray":
            step = batch_ray.driver_step(run, text_column, keep, scores, max_chars)
        else:
            if predictor is None:
                from .backends import load_backend

                predictor = load_backend(run, backend, threads=threads, auto_export=False)
            step = BatchPredictor(predictor, text_column, keep, scores, max_chars)
        work = output_path.with_name(output_path.name + ".partial")
        state = {"input": str(input_path.resolve()), "input_sha256": file_sha256(input_path),
                 "model": model_fingerprint(run), "backend": backend, "chunk_rows": chunk_rows,
                 "text_column": text_column, "keep": step.keep, "scores": scores, "max_chars": step.max_chars}
        prepare_work(work, output_path, state, restart, previous)
        t0 = time.perf_counter()
        if engine == "ray":
            rows, chunks, reused = batch_ray.predict_chunks_ray(
                step, run, backend, threads, input_path, in_fmt, chunk_rows, work, state, progress, on_chunk,
                address=ray_address, actors=ray_actors, batch_rows=ray_batch_rows)
        else:
            rows, chunks, reused = _predict_chunks(step, input_path, in_fmt, chunk_rows, work, state, progress,
                                                   on_chunk)
        bad, errors_file = _join_parts(work, chunks, rows, output_path, out_fmt)
        shutil.rmtree(work)
    seconds = time.perf_counter() - t0
    summary = BatchSummary(str(output_path), rows, bad, chunks, reused, round(seconds, 2),
                           round(rows / max(seconds, 1e-9), 1), round(peak_rss_mib(), 1), backend,
                           str(errors_file) if errors_file else None)
    log.info("predicted %s", summary)
    return summary


def _predict_chunks(step: BatchPredictor, input_path: Path, fmt: str, chunk_rows: int, work: Path, state: dict,
                    progress: bool, on_chunk: Callable[[int], None] | None) -> tuple[int, int, int]:
    """Predict each chunk not yet in `work` into its part; return (rows, chunks, chunks reused)."""
    from tqdm import tqdm

    rows, reused, chunks = 0, 0, 0
    bar = tqdm(total=estimate_rows(input_path, fmt), unit="rows", unit_scale=True, desc="predict",
               disable=not progress, dynamic_ncols=True, smoothing=0.1)
    try:
        for i, chunk in enumerate(iter_chunks(input_path, fmt, chunk_rows)):
            part = work / f"part-{i:06d}.parquet"
            if i == 0:
                step.check_columns(chunk.columns, str(input_path))
                columns = step.output_columns(chunk.columns)
                write_json_atomic(work / STATE_FILE, state)      # once the input's columns are known good
            if part.is_file():
                reused += 1
            else:
                out = step(chunk)
                out.insert(0, ROW, np.arange(rows + 1, rows + len(chunk) + 1, dtype=np.int64))
                with atomic_path(part) as tmp:
                    out[[ROW, *columns]].to_parquet(tmp, index=False)
            rows += len(chunk)
            chunks += 1
            bar.update(len(chunk))
            if on_chunk is not None:
                on_chunk(i)
    finally:
        bar.close()
    if chunks == 0:
        raise BatchInputError(f"{input_path}: no rows")
    return rows, chunks, reused


def _join_parts(work: Path, chunks: int, rows: int, output: Path, fmt: str) -> tuple[int, Path | None]:
    """Parts -> OUTPUT (one rename), bad rows -> OUTPUT.errors.csv; one part in memory at a time.

    Refuses (nothing installed) when the parts do not hold exactly the `rows` rows read from the input."""
    import pyarrow.parquet as pq

    bad_rows: list[pd.DataFrame] = []
    written = 0
    with atomic_path(output) as tmp:
        writer = None
        for i in range(chunks):
            table = pq.read_table(work / f"part-{i:06d}.parquet")
            frame = table.to_pandas()
            written += len(frame)
            errs = frame[frame[ERROR] != ""]
            if len(errs):
                bad_rows.append(errs[[ROW, ERROR]])
            if fmt == "csv":
                frame.to_csv(tmp, mode="w" if i == 0 else "a", header=i == 0, index=False, encoding="utf-8")
            else:
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table.cast(writer.schema) if table.schema != writer.schema else table)
        if writer is not None:
            writer.close()
        if written != rows:
            raise ResumeMismatchError(f"{work}: the parts hold {written} rows but the input has {rows}; "
                                      "pass --restart to predict it again")
    errors_file = output.with_name(output.name + ".errors.csv")
    if bad_rows:
        write_csv_atomic(errors_file, pd.concat(bad_rows, ignore_index=True))
        return int(sum(len(b) for b in bad_rows)), errors_file
    errors_file.unlink(missing_ok=True)         # it listed the rows of the output just replaced
    return 0, None


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m emotions.predict`: the command line of `predict_file`."""
    ap = argparse.ArgumentParser(prog="python -m emotions.predict", description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="run folder (with model/) or a model folder")
    ap.add_argument("--input", required=True, type=Path, help=".csv or .parquet with a text column")
    ap.add_argument("--output", required=True, type=Path, help=".csv or .parquet to write")
    ap.add_argument("--backend", default="auto", choices=["auto", "onnx-int8", "onnx", "torch", "native"],
                    help="auto: onnx-int8 when the run has an export, else the model as trained")
    ap.add_argument("--text-column", default="text")
    ap.add_argument("--keep", nargs="*", default=None, help="input columns to copy (default: all)")
    ap.add_argument("--scores", action="store_true", help="also write p_<label> probabilities")
    ap.add_argument("--chunk-rows", type=int, default=10_000, help="rows per chunk (memory, resume granularity)")
    ap.add_argument("--max-chars", type=int, default=DEFAULT_MAX_CHARS,
                    help="longer texts are cut (as the service cuts them); the truncated column says so")
    ap.add_argument("--threads", type=int, default=None,
                    help="inference threads (default: all cores; with --engine ray: per model copy, default 1)")
    ap.add_argument("--restart", action="store_true", help="discard parts of an interrupted job")
    ap.add_argument("--force", action="store_true", help="replace an existing output file")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--summary", type=Path, help="also write the job's numbers (rows/s, peak memory) as JSON")
    ray = ap.add_argument_group("Ray (--engine ray: the same job, the same output file; resumes as local does)")
    ray.add_argument("--engine", default="local", choices=ENGINES,
                     help="local: this process; ray: a Ray Data job, the model loaded once per Ray actor "
                          "(needs pip install \"ray[data]\")")
    ray.add_argument("--ray-address", default=None,
                     help="default: start a local Ray cluster; auto: the cluster of `ray start` on this machine; "
                          "ray://HOST:10001 (the model folder at the same path on every node)")
    ray.add_argument("--ray-actors", type=int, default=None,
                     help="model copies (Ray actors); default: the cluster's CPUs / --threads")
    ray.add_argument("--ray-batch-rows", type=int, default=None,
                     help="rows per Ray batch, one actor call each (default: --chunk-rows, which gives scores "
                          "equal to the local engine's to the bit; fewer: float rounding may differ)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from .backends import MissingInstallError

    if args.engine == "ray":
        from .batch_ray import RayMissingError, import_ray

        try:
            import_ray()
        except RayMissingError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    main_thread = threading.current_thread() is threading.main_thread()
    previous_term = signal.signal(signal.SIGTERM, _terminate) if main_thread else None   # killed: lock removed
    try:
        s = predict_file(args.run, args.input, args.output, backend=args.backend, text_column=args.text_column,
                         keep=args.keep, scores=args.scores, chunk_rows=args.chunk_rows, threads=args.threads,
                         restart=args.restart, force=args.force, progress=not args.no_progress,
                         max_chars=args.max_chars, engine=args.engine, ray_address=args.ray_address,
                         ray_actors=args.ray_actors, ray_batch_rows=args.ray_batch_rows)
    except (BatchInputError, ResumeMismatchError, OutputLockError, StaleExportError, ModelFolderError,
            MissingInstallError, FileExistsError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted: the chunks written so far are kept in {args.output}.partial/; run the same "
              "command again to resume", file=sys.stderr)
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous_term)
    print(f"wrote {s.output}: {s.rows} rows in {s.seconds:.1f}s ({s.rows_per_s:.0f} rows/s, backend {s.backend}, "
          f"peak memory {s.peak_rss_mib:.0f} MiB" + (f", {s.chunks_reused} chunks resumed" if s.chunks_reused else "")
          + ")")
    if s.bad_rows:
        print(f"warning: {s.bad_rows} row(s) had no usable text and got no labels; see {s.errors_file}",
              file=sys.stderr)
    if args.summary:
        write_json_atomic(args.summary, asdict(s))
    return 0


def _terminate(signum: int, _frame) -> None:
    """SIGTERM as Ctrl-C: the parts written so far are kept and the lock is removed on the way out."""
    raise KeyboardInterrupt(f"signal {signum}")
