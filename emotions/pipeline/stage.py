"""The stage contract, used from inside notebooks.

A stage reads only named inputs, writes only into the run folder, and ends by writing a
manifest (`manifests/<stage>.json`: inputs and outputs with sha256, figures, key numbers).
`run_all.py` uses the manifest to skip a stage whose inputs and parameters are unchanged.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.io import path_fingerprint, read_json, write_csv_atomic, write_json_atomic
from .fingerprint import provenance

MANIFESTS = "manifests"


def setup_logging(level: int = logging.INFO) -> None:
    """Show the package's log lines in notebooks and scripts (one line each, no timestamps noise)."""
    root = logging.getLogger("emotions")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def manifest_path(run_dir: str | Path, stage: str) -> Path:
    return Path(run_dir) / MANIFESTS / f"{stage}.json"


class Stage:
    """Records what a notebook stage reads and writes; `finish()` writes its manifest."""

    def __init__(self, name: str, run_dir: str | Path, task: str = ""):
        self.name, self.task = name, task
        self.run_dir = Path(run_dir).resolve()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.inputs: dict[str, str] = {}
        self.outputs: dict[str, str] = {}
        self.figures: list[str] = []
        self.metrics: dict[str, Any] = {}
        self.started = time.time()
        setup_logging()

    # --- paths ------------------------------------------------------------------------------
    def path(self, rel: str) -> Path:
        """A path inside the run folder."""
        p = self.run_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def input(self, name: str, path: str | Path) -> Path:
        """Declare an input (an earlier stage's output or a user file); raises if it is missing."""
        p = Path(path)
        if not p.is_absolute() and not p.exists():
            p = self.run_dir / p
        if not p.exists():
            raise FileNotFoundError(f"stage {self.name}: input {name!r} not found at {p}; "
                                    "run the earlier stages first (python run_all.py --from ...)")
        self.inputs[name] = str(p.resolve())
        return p

    def output(self, name: str, rel: str) -> Path:
        """Declare an output inside the run folder and return its path."""
        p = self.path(rel)
        self.outputs[name] = str(p)
        return p

    # --- convenience I/O ----------------------------------------------------------------------
    def read_csv(self, name: str, path: str | Path) -> pd.DataFrame:
        return pd.read_csv(self.input(name, path), keep_default_na=False)

    def write_csv(self, name: str, rel: str, df: pd.DataFrame) -> Path:
        return write_csv_atomic(self.output(name, rel), df)

    def write_json(self, name: str, rel: str, obj: Any) -> Path:
        return write_json_atomic(self.output(name, rel), obj)

    def figure(self, fig, name: str, dpi: int = 110) -> Path:
        """Save a matplotlib figure (or take a PNG already written) in the run folder's img/ (only there:
        `run_all.py --publish-figures` copies a run's figures to the project's img/<task>/)."""
        p = self.path(f"img/{name}.png")
        if isinstance(fig, (str, Path)):
            if Path(fig).resolve() != p.resolve():
                shutil.copyfile(fig, p)
        else:
            fig.savefig(p, dpi=dpi, bbox_inches="tight")
        self.figures.append(str(p))
        return p

    def finish(self, **metrics: Any) -> dict:
        """Write the manifest (with hashes of every input and output) and return it."""
        self.metrics.update(metrics)
        manifest = {
            "stage": self.name, "task": self.task,
            "inputs": {k: {"path": v, "sha256": path_fingerprint(v)} for k, v in self.inputs.items()},
            "outputs": {k: {"path": v, "sha256": path_fingerprint(v)} for k, v in self.outputs.items()},
            "figures": self.figures, "metrics": self.metrics,
            "seconds": round(time.time() - self.started, 2),
            "provenance": provenance(),   # code version, library versions, Python, device, threads
        }
        missing = [k for k, v in manifest["outputs"].items() if v["sha256"] is None]
        if missing:
            raise RuntimeError(f"stage {self.name}: declared output(s) {missing} were not written")
        write_json_atomic(manifest_path(self.run_dir, self.name), manifest)
        return manifest


def read_manifest(run_dir: str | Path, stage: str) -> dict | None:
    p = manifest_path(run_dir, stage)
    return read_json(p) if p.is_file() else None


# --- staging: a re-run stage's earlier outputs are set aside, and put back if it fails ------------
MOVED_LIST = "moved.json"


def state_path(run_dir: str | Path, stage: str) -> Path:
    """The runner's record of a stage's last success (its fingerprint)."""
    return manifest_path(run_dir, stage).with_suffix(".state.json")


def archive_stage(run_dir: Path, stage: str, executed_nb: Path) -> Path | None:
    """Move a stage's earlier outputs, figures, executed notebook, manifest and state to
    `history/<time>-<stage>/` (nothing is overwritten); `restore_stage` puts them back."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir, stage)
    items = [Path(r["path"]) for r in (manifest or {}).get("outputs", {}).values()]
    items += [Path(f) for f in (manifest or {}).get("figures", [])]
    items += [executed_nb, manifest_path(run_dir, stage), state_path(run_dir, stage)]
    items = [p for p in dict.fromkeys(items) if p.exists()]
    if not items:
        return None
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    dest_root = run_dir / "history" / f"{stamp}-{stage}"
    moved = []
    for p in items:
        try:
            rel = p.resolve().relative_to(run_dir.resolve())
        except ValueError:
            continue  # never move anything outside the run folder
        if any(Path(m) in rel.parents for m in moved):
            continue  # inside a folder already moved
        dest = dest_root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(p), str(dest))
        moved.append(str(rel))
    dest_root.mkdir(parents=True, exist_ok=True)
    (dest_root / MOVED_LIST).write_text(json.dumps(moved, indent=1), encoding="utf-8")
    return dest_root


def restore_stage(run_dir: Path, moved_root: Path | None, keep: tuple[Path, ...] = ()) -> list[str]:
    """After a failed or interrupted re-run: move what it left at the earlier outputs' paths to
    `<moved_root>-failed/`, then put the earlier outputs back. Paths in `keep` (the failed executed
    notebook, which holds the traceback) stay where they are. Returns the restored paths."""
    if moved_root is None or not (moved_root / MOVED_LIST).is_file():
        return []
    run_dir = Path(run_dir)
    failed_root = moved_root.with_name(moved_root.name + "-failed")
    keep_rel = {str(Path(k).resolve().relative_to(run_dir.resolve())) for k in keep if Path(k).exists()}
    restored = []
    for rel in json.loads((moved_root / MOVED_LIST).read_text(encoding="utf-8")):
        if rel in keep_rel:
            continue
        target, saved = run_dir / rel, moved_root / rel
        if not saved.exists():
            continue
        if target.exists() or target.is_symlink():
            aside = failed_root / rel
            aside.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(target), str(aside))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(saved), str(target))
        restored.append(rel)
    (moved_root / MOVED_LIST).unlink()
    for d in sorted((p for p in moved_root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) + [moved_root]:
        if not any(d.iterdir()):
            d.rmdir()
    return restored
