"""Batch prediction as a Ray Data job: `python -m emotions.predict ... --engine ray`.

The job is the local engine's (emotions.serving.batch), with the model work spread over Ray actors:

    seed row -> map_batches(read_pieces)      one task (0 CPUs), on the driver's node: reads the input
             -> map_batches(PiecePredictor, compute=ActorPoolStrategy(size=N), batch_size=1,
                            batch_format="pandas", fn_constructor_kwargs=...)   N model copies, loaded once
             -> iter_batches on the driver, in order  -> OUTPUT.partial/part-NNNNNN.parquet -> OUTPUT

The driver holds `OUTPUT.lock`, checks the input's columns, writes the parts and joins them into OUTPUT
with one rename, with the local engine's own code (`_join_parts`), so the output file and
`OUTPUT.errors.csv` are the same file, byte for byte, as the local engine writes.

Why the input is not read with `ray.data.read_csv` / `read_parquet` (correctness first): those read
with pyarrow, whose CSV reader skips blank lines (`ignore_empty_lines`), guesses column types ("007"
-> 7) and turns "NA"/"null" into nulls; Ray Data has no global row number to give back the `row`
column; and a single file is one read task anyway, so nothing is gained in parallel reading. So the
one read task reads the file with the local engine's own chunk iterator (`batch_files.iter_chunks`:
the same rows, blank CSV lines included, the same UTF-8 and parse errors) and numbers the rows.
Ray Data also turns pandas batches into Arrow blocks and back (observed with ray 2.60: `str` columns
come back as `large_string[pyarrow]`, `Int8` as `int8[pyarrow]`), which would change the output's
types. So each Ray row carries one piece of a chunk pickled, and the actor sends its output frame back
the same way: the frames the local engine would write arrive unchanged.

A piece is a whole chunk by default (`--ray-batch-rows` = `--chunk-rows`): the model then sees exactly
the batches the local engine gives it, so the scores are the same to the bit. Smaller pieces spread a
chunk over several actors, but the model batches the texts differently, and the scores can differ by
float rounding (1e-7 on the int8 tiny model; the labels were the same); to spread a small file over
the actors exactly, give both engines a smaller `--chunk-rows` instead.

Resume works as with the local engine: the parts already in `OUTPUT.partial/` are not predicted again
(the read task still reads them, to count and number the rows). On a real cluster (`--ray-address
auto` or `ray://...`) `emotions` and its dependencies must be installed on every node, and the model
folder must be readable at the same path on every node; the input is read on the driver's node.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from ..core.io import atomic_path, write_json_atomic
from .backends import MissingInstallError
from .batch import ROW, BatchPredictor
from .batch_files import STATE_FILE, BatchInputError, estimate_rows, iter_chunks
from .model_folder import read_card
from .onnx_predictor import locate

log = logging.getLogger(__name__)

RAY_VERSION = "2.60.0"
RAY_INSTALL = f'pip install "ray[data]=={RAY_VERSION}"'
# offline and quiet: no usage report, no dashboard, no Ray Data progress bars (the job has its own)
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DATA_DISABLE_PROGRESS_BARS": "1"}
# the columns of a Ray row: one piece of one input chunk
CHUNK, PIECE, PIECES, FIRST, ROWS, REUSED, DATA = "chunk", "piece", "pieces", "first_row", "rows", "reused", "data"


class RayMissingError(MissingInstallError):
    """`--engine ray` without Ray installed."""


def import_ray() -> Any:
    """The `ray` module with Ray Data (environment set for offline, quiet use), or RayMissingError."""
    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise RayMissingError(f"--engine ray needs Ray: {RAY_INSTALL}") from None
    return ray


# --- inside Ray: the read task and the model actors ---------------------------------------------------------
def _piece(chunk: int, piece: int, pieces: int, first: int, rows: int, reused: bool, data: bytes) -> pd.DataFrame:
    return pd.DataFrame({CHUNK: [chunk], PIECE: [piece], PIECES: [pieces], FIRST: [first], ROWS: [rows],
                         REUSED: [reused], DATA: [data]})


def read_pieces(_seed: pd.DataFrame, *, path: str, fmt: str, chunk_rows: int, piece_rows: int,
                done: Sequence[int]) -> Iterator[pd.DataFrame]:
    """Ray task: the input's chunks as the local engine reads them, each cut into pieces of `piece_rows`
    rows, one pickled piece per row; a chunk whose part is already written is a `reused` row without data."""
    first, done = 1, set(done)
    for i, chunk in enumerate(iter_chunks(Path(path), fmt, chunk_rows)):
        n = len(chunk)
        if i in done:
            yield _piece(i, 0, 1, first, n, True, b"")
        else:
            starts = range(0, max(n, 1), piece_rows)
            for j, s in enumerate(starts):
                part = chunk.iloc[s:s + piece_rows]
                yield _piece(i, j, len(starts), first + s, len(part), False, pickle.dumps(part, protocol=5))
        first += n


class PiecePredictor:
    """Ray Data actor: loads the model once, through `load_backend` (so the model folder's checks apply),
    and predicts each piece as the local engine predicts a chunk (`BatchPredictor`, then the `row` column)."""

    def __init__(self, run: str, backend: str, threads: int | None, text_column: str, keep: list[str] | None,
                 scores: bool, max_chars: int):
        from .backends import load_backend

        self.error: Exception | None = None
        try:
            predictor = load_backend(run, backend, threads=threads, auto_export=False)
            self.step = BatchPredictor(predictor, text_column, keep, scores, max_chars)
        except Exception as exc:      # raised by the first call: Ray passes a task's exception on, an actor's
            self.error = exc          # failed start only as text

    def predict(self, piece: pd.DataFrame, first: int) -> pd.DataFrame:
        columns = self.step.output_columns(piece.columns)
        out = self.step(piece)
        out.insert(0, ROW, np.arange(first, first + len(piece), dtype=np.int64))
        return out[[ROW, *columns]]

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        if self.error is not None:
            raise self.error
        data = [b"" if bool(reused) else pickle.dumps(self.predict(pickle.loads(bytes(raw)), int(first)), protocol=5)
                for reused, first, raw in zip(batch[REUSED], batch[FIRST], batch[DATA])]
        out = batch.drop(columns=[DATA]).reset_index(drop=True)
        out[DATA] = data
        return out


# --- the driver ----------------------------------------------------------------------------------------------
class _Labels:
    """Enough of a predictor for the driver's BatchPredictor: the labels, read from the model card."""

    def __init__(self, run: str | Path):
        self.labels = list(read_card(locate(run).model_dir)["labels"])


def driver_step(run: str | Path, text_column: str, keep: Sequence[str] | None, scores: bool,
                max_chars: int) -> BatchPredictor:
    """The driver's BatchPredictor: it checks the input's columns and names the output's; it predicts nothing."""
    return BatchPredictor(_Labels(run), text_column, keep, scores, max_chars)  # type: ignore[arg-type]


def connect(ray: Any, address: str | None) -> bool:
    """Join the cluster at `address`, or start a local one (None); False when Ray was already initialised.
    The workers' output stays in the session's logs (/tmp/ray/session_latest/logs): errors come back raised."""
    if ray.is_initialized():
        return False
    if address is None:
        auth = logging.getLogger("ray._private.authentication.authentication_token_setup")
        level = auth.level
        auth.setLevel(logging.ERROR)          # "token authentication is enabled": the safe default, not news
        try:
            ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        finally:
            auth.setLevel(level)
    else:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    return True


def actor_count(ray: Any, actors: int | None, threads: int) -> int:
    """`actors`, or as many model copies of `threads` CPUs as the cluster has CPUs for."""
    if actors is not None:
        if actors < 1:
            raise ValueError(f"--ray-actors must be >= 1, got {actors}")
        return actors
    return max(1, int(ray.cluster_resources().get("CPU", 1) // threads))


def _console_record(record: logging.LogRecord) -> bool:
    """What of Ray Data's log reaches the console: its warnings, but not its errors (the job raises them, in
    one line) nor its notice that its progress bars are off (the job has its own)."""
    return record.levelno < logging.ERROR and not record.getMessage().startswith("Progress bars disabled")


def _quiet_ray_data() -> None:
    """Ray Data's console: warnings only; everything stays in the session's logs/ray-data/ray-data.log."""
    for handler in logging.getLogger("ray.data").handlers:
        if type(handler).__name__ != "SessionFileHandler" and _console_record not in handler.filters:
            handler.setLevel(max(handler.level, logging.WARNING))
            handler.addFilter(_console_record)


def build_dataset(ray: Any, input_path: Path, fmt: str, chunk_rows: int, piece_rows: int, done: list[int],
                  actor_kwargs: dict, actors: int, threads: int) -> Any:
    """The job's Ray Data pipeline (see the module doc); lazy until iterated."""
    _quiet_ray_data()
    ctx = ray.data.DataContext.get_current()
    names = ("target_max_block_size", "raise_original_map_exception", "enable_progress_bars")
    saved = [getattr(ctx, n) for n in names], ctx.execution_options.preserve_order
    # one piece per block (each piece is > 1 byte), so the read task's pieces spread over all actors instead
    # of being merged into one block for one actor; our errors as raised (not as UserCodeException); parts
    # written in the input's order
    for name, value in zip(names, (1, True, False)):
        setattr(ctx, name, value)
    ctx.execution_options.preserve_order = True
    try:
        here = {"ray.io/node-id": ray.get_runtime_context().get_node_id()}   # the input is read on this node
        ds = ray.data.from_items([{"job": 0}]).map_batches(
            read_pieces, batch_size=None, batch_format="pandas", num_cpus=0, label_selector=here,
            fn_kwargs=dict(path=str(input_path.resolve()), fmt=fmt, chunk_rows=chunk_rows, piece_rows=piece_rows,
                           done=done))
        return ds.map_batches(PiecePredictor, fn_constructor_kwargs=actor_kwargs, batch_size=1,
                              batch_format="pandas", compute=ray.data.ActorPoolStrategy(size=actors),
                              num_cpus=threads)
    finally:                                  # a Dataset keeps the context it was made with
        for name, value in zip(names, saved[0]):
            setattr(ctx, name, value)
        ctx.execution_options.preserve_order = saved[1]


def _check_input(step: BatchPredictor, input_path: Path, fmt: str) -> None:
    """The local engine's first-chunk checks, on the driver, before anything starts."""
    with contextlib.closing(iter_chunks(input_path, fmt, 1)) as chunks:
        first = next(chunks, None)
    if first is None:
        raise BatchInputError(f"{input_path}: no rows")
    step.check_columns(first.columns, str(input_path))
    step.output_columns(first.columns)


def predict_chunks_ray(step: BatchPredictor, run: str | Path, backend: str, threads: int | None, input_path: Path,
                       fmt: str, chunk_rows: int, work: Path, state: dict, progress: bool,
                       on_chunk: Callable[[int], None] | None, *, address: str | None = None,
                       actors: int | None = None, batch_rows: int | None = None) -> tuple[int, int, int]:
    """`batch._predict_chunks` on Ray: every chunk's part in `work`; return (rows, chunks, chunks reused)."""
    piece_rows = chunk_rows if batch_rows is None else min(int(batch_rows), chunk_rows)
    if piece_rows < 1:
        raise ValueError(f"--ray-batch-rows must be >= 1, got {batch_rows}")
    ray = import_ray()
    _check_input(step, input_path, fmt)
    write_json_atomic(work / STATE_FILE, state)
    done = sorted(int(p.stem.split("-")[1]) for p in work.glob("part-*.parquet"))
    started = connect(ray, address)
    try:
        threads = int(threads or 1)
        kwargs = dict(run=str(Path(run).resolve()), backend=backend, threads=threads, text_column=step.text_column,
                      keep=step.keep, scores=step.scores, max_chars=step.max_chars)
        n_actors = actor_count(ray, actors, threads)
        log.info("ray: %d model copies of %d thread(s), %d rows per Ray batch", n_actors, threads, piece_rows)
        ds = build_dataset(ray, input_path, fmt, chunk_rows, piece_rows, done, kwargs, n_actors, threads)
        try:
            return write_parts(ds, work, estimate_rows(input_path, fmt), progress, on_chunk)
        except Exception as exc:
            raise (original_error(exc) or exc) from None
    finally:
        if started:
            ray.shutdown()


def write_parts(ds: Any, work: Path, total: int, progress: bool,
                on_chunk: Callable[[int], None] | None) -> tuple[int, int, int]:
    """Pieces from Ray, in order -> one part per chunk (pieces of a chunk joined); (rows, chunks, reused)."""
    from tqdm import tqdm

    rows = chunks = reused = 0
    pieces: list[pd.DataFrame] = []
    bar = tqdm(total=total, unit="rows", unit_scale=True, desc="predict (ray)", disable=not progress,
               dynamic_ncols=True, smoothing=0.1)
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="pandas"):
            for chunk, piece, n_pieces, first, n, was_reused, data in zip(
                    *(batch[c] for c in (CHUNK, PIECE, PIECES, FIRST, ROWS, REUSED, DATA))):
                if (int(chunk), int(first)) != (chunks, rows + sum(map(len, pieces)) + 1):
                    raise RuntimeError(f"ray: piece {piece} of chunk {chunk} (row {first}) arrived out of order")
                part = work / f"part-{int(chunk):06d}.parquet"
                if bool(was_reused):
                    reused += 1
                else:
                    pieces.append(pickle.loads(bytes(data)))
                    if int(piece) < int(n_pieces) - 1:
                        continue
                    out = pieces[0] if len(pieces) == 1 else pd.concat(pieces, ignore_index=True)
                    if len(out) != int(first) + int(n) - rows - 1:
                        raise RuntimeError(f"ray: chunk {chunk} came back with {len(out)} rows")
                    with atomic_path(part) as tmp:
                        out.to_parquet(tmp, index=False)
                    pieces = []
                n_chunk = int(first) + int(n) - rows - 1
                rows, chunks = rows + n_chunk, chunks + 1
                bar.update(n_chunk)
                if on_chunk is not None:
                    on_chunk(int(chunk))
    finally:
        bar.close()
    if chunks == 0:
        raise BatchInputError("no rows")
    return rows, chunks, reused


def original_error(exc: BaseException) -> BaseException | None:
    """The error that our code raised inside a Ray task or actor, when `exc` carries one of the kinds the
    command reports in one line (Ray wraps it in RayTaskError, whose text is a remote traceback)."""
    from .batch_files import OutputLockError, ResumeMismatchError
    from .model_folder import ModelFolderError
    from .onnx_predictor import ExportMissingError, StaleExportError

    reported = (BatchInputError, ResumeMismatchError, OutputLockError, ModelFolderError, StaleExportError,
                ExportMissingError, MissingInstallError, FileNotFoundError, ValueError)
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        cause = getattr(exc, "cause", None)
        if isinstance(cause, reported) and type(cause).__module__.split(".")[0] != "ray":
            if cause.args and isinstance(cause.args[0], str):     # Ray Data appends its retry advice
                cause.args = (cause.args[0].split("\nFailed to ")[0], *cause.args[1:])
            return cause
        exc = cause if isinstance(cause, BaseException) else (exc.__cause__ or exc.__context__)
    return None
