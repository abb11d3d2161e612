"""Compare experiments: `python -m emotions.runs` lists the run folders (runs/<id>/) side by side.

The table shows each run's id, task, profile, the config keys whose values differ between the listed runs
(params.yaml flattened to dotted keys), weighted F1 on tune / holdout / holdout_asr / holdout_utterances /
holdout_mixed (metrics.json), the train stage's seconds and the run's date; sorted by a metric (default:
holdout). A run without metrics.json is listed with blanks. `--diff A B` shows the two runs' config
differences, their metric deltas (B - A) and a paired-bootstrap 95% interval of the holdout weighted-F1
delta from their per-text predictions (predictions/holdout.csv), when both have the same texts in order.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
import yaml

from emotions.core.io import read_json
from emotions.core.paths import RUNS_DIR

METRICS: tuple[str, ...] = ("tune", "holdout", "holdout_asr", "holdout_utterances", "holdout_mixed")
DEFAULT_SORT = "holdout"
PREDICTIONS = Path("predictions") / "holdout.csv"


@dataclass
class Run:
    """What a run folder says about itself (missing files leave fields empty)."""

    id: str
    path: Path
    params: dict[str, Any] = field(default_factory=dict)     # params.yaml, flattened to dotted keys
    metrics: dict[str, Any] = field(default_factory=dict)    # metrics.json ({} when absent)
    train_seconds: float | None = None
    date: datetime | None = None

    @property
    def task(self) -> str:
        return str(self.params.get("common.task", ""))

    @property
    def profile(self) -> str:
        return str(self.params.get("common.profile", ""))

    def f1(self, section: str) -> float | None:
        """Weighted F1 of a metrics.json section (None when absent)."""
        value = (self.metrics.get(section) or {}).get("weighted_f1") if isinstance(self.metrics, dict) else None
        return float(value) if isinstance(value, (int, float)) else None


# --- reading run folders ---------------------------------------------------------------------------------
def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings to dotted keys ({'train': {'model': 'x'}} -> {'train.model': 'x'}); lists stay values."""
    if not isinstance(obj, Mapping):
        return {prefix: obj} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, name))   # an empty section ({}: all defaults) adds no key
        else:
            out[name] = value
    return out


def _read_json_or_none(path: Path) -> Any:
    """The parsed JSON file, or None when it is missing or unreadable."""
    try:
        return read_json(path) if path.is_file() else None
    except (OSError, ValueError):
        return None


def _train_seconds(run_dir: Path) -> float | None:
    """The train stage's `train_seconds` (else its manifest's stage seconds), if recorded."""
    for path in sorted((run_dir / "manifests").glob("*train*.json")):
        if path.name.endswith(".state.json"):
            continue
        manifest = _read_json_or_none(path) or {}
        value = (manifest.get("metrics") or {}).get("train_seconds", manifest.get("seconds"))
        if isinstance(value, (int, float)):
            return float(value)
    return None


def _run_date(run_dir: Path) -> datetime | None:
    """When the run last finished a stage (the runner's state files), else its newest metrics/params file."""
    finished = [s.get("finished") for p in (run_dir / "manifests").glob("*.state.json")
                if isinstance(s := _read_json_or_none(p), dict)]
    stamps = [float(f) for f in finished if isinstance(f, (int, float))]
    if not stamps:
        stamps = [p.stat().st_mtime for p in (run_dir / "metrics.json", run_dir / "params.yaml") if p.is_file()]
    return datetime.fromtimestamp(max(stamps)) if stamps else None


def load_run(run_dir: str | Path) -> Run:
    """Read one run folder; unreadable or missing files leave blanks, never raise."""
    run_dir = Path(run_dir)
    params: dict[str, Any] = {}
    try:
        params = flatten(yaml.safe_load((run_dir / "params.yaml").read_text(encoding="utf-8")) or {})
    except (OSError, yaml.YAMLError):
        pass
    metrics = _read_json_or_none(run_dir / "metrics.json")
    return Run(run_dir.name, run_dir, params, metrics if isinstance(metrics, dict) else {},
               _train_seconds(run_dir), _run_date(run_dir))


def is_run_dir(path: Path) -> bool:
    """A folder the pipeline ran in (it holds params.yaml, metrics.json or manifests/)."""
    return path.is_dir() and any((path / n).exists() for n in ("params.yaml", "metrics.json", "manifests"))


def discover_runs(runs_dir: str | Path, task: str | None = None) -> list[Run]:
    """Every run folder directly under `runs_dir` (optionally only those of `task`), by id."""
    runs_dir = Path(runs_dir)
    found = [load_run(p) for p in sorted(runs_dir.iterdir()) if is_run_dir(p)] if runs_dir.is_dir() else []
    return [r for r in found if task is None or r.task == task]


# --- the table --------------------------------------------------------------------------------------------
def _key(value: Any) -> str:
    """A comparable, printable form of a config value."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return "" if value is None else str(value)


def differing_keys(params: Sequence[Mapping[str, Any]]) -> list[str]:
    """Dotted keys whose values differ across the runs (a key missing from some run counts as differing)."""
    keys = sorted({k for p in params for k in p})
    missing = object()
    return [k for k in keys
            if len({_key(p[k]) if k in p else missing for p in params}) > 1]  # type: ignore[misc]


def runs_table(runs: Sequence[Run], sort: str = DEFAULT_SORT) -> pd.DataFrame:
    """One row per run: id, task, profile, differing config keys, weighted F1s, train_s, date.

    Metric columns appear where some run has them (plus `sort` if it names a metrics.json section). Sorted
    by `sort`: metrics best first, other columns ascending; blanks last.
    """
    diff = differing_keys([r.params for r in runs]) if len(runs) > 1 else []
    sections = list(METRICS) + ([sort] if sort not in METRICS and any(r.f1(sort) is not None for r in runs) else [])
    sections = [s for s in sections if any(r.f1(s) is not None for r in runs)]
    rows = [{"id": r.id, "task": r.task, "profile": r.profile,
             **{k: _key(r.params[k]) if k in r.params else "" for k in diff},
             **{s: r.f1(s) for s in sections}, "train_s": r.train_seconds,
             "date": r.date.strftime("%Y-%m-%d %H:%M") if r.date else ""} for r in runs]
    columns = ["id", "task", "profile", *diff, *sections, "train_s", "date"]
    table = pd.DataFrame(rows, columns=columns)
    if sort not in table.columns:
        if sort in METRICS or sort == DEFAULT_SORT:
            return table          # nobody has that metric: keep the id order
        raise ValueError(f"cannot sort by {sort!r}; columns: {', '.join(columns)}")
    numeric = sort in sections
    return table.sort_values(sort, ascending=not numeric, na_position="last", kind="stable").reset_index(drop=True)


def _cell(value: Any, column: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.1f}" if column == "train_s" else f"{value:.4f}" if column != "delta" else f"{value:+.4f}"
    return str(value)


def render(table: pd.DataFrame, fmt: str = "text") -> str:
    """The table as aligned text, a markdown table or CSV; blanks for missing values."""
    if fmt == "csv":
        return table.to_csv(index=False).rstrip("\n")
    cells = pd.DataFrame({c: [_cell(v, c) for v in table[c]] for c in table.columns}, columns=table.columns)
    if fmt == "markdown":
        def esc(s: Any) -> str:
            return str(s).replace("|", "\\|")
        lines = ["| " + " | ".join(esc(c) for c in cells.columns) + " |", "|" + "---|" * len(cells.columns)]
        lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in cells.itertuples(index=False)]
        return "\n".join(lines)
    if fmt != "text":
        raise ValueError(f"unknown format {fmt!r}; use text, markdown or csv")
    if cells.empty:
        return "  ".join(cells.columns)
    return cells.to_string(index=False)


# --- two runs --------------------------------------------------------------------------------------------
def config_diff(a: Run, b: Run) -> pd.DataFrame:
    """Config keys whose values differ between two runs: key, A, B (blank: not set in that run)."""
    keys = differing_keys([a.params, b.params])
    return pd.DataFrame({"key": keys, a.id: [_key(a.params[k]) if k in a.params else "" for k in keys],
                         b.id: [_key(b.params[k]) if k in b.params else "" for k in keys]},
                        columns=["key", a.id, b.id])


def metric_deltas(a: Run, b: Run) -> pd.DataFrame:
    """Weighted F1 per metrics section present in either run: metric, A, B, delta (B - A)."""
    sections = list(METRICS) + sorted((set(a.metrics) | set(b.metrics)) - set(METRICS))
    rows = []
    for s in sections:
        fa, fb = a.f1(s), b.f1(s)
        if fa is None and fb is None:
            continue
        rows.append({"metric": s, a.id: fa, b.id: fb,
                     "delta": fb - fa if fa is not None and fb is not None else None})
    return pd.DataFrame(rows, columns=["metric", a.id, b.id, "delta"])


def holdout_ci(a: Run, b: Run, n: int = 500, seed: int = 0) -> tuple[tuple[float, float, float] | None, str]:
    """((delta B - A, low, high), '') for the holdout weighted F1, or (None, why it cannot be computed)."""
    from emotions.data.labels import get_task
    from emotions.evaluation.errors import matrices, read_predictions

    paths = {r.id: r.path / PREDICTIONS for r in (a, b)}
    missing = [f"{rid} ({p})" for rid, p in paths.items() if not p.is_file()]
    if missing:
        return None, f"no CI: predictions file missing for {', '.join(missing)}"
    if a.task != b.task:
        return None, f"no CI: the runs are of different tasks ({a.task or '?'} vs {b.task or '?'})"
    try:
        labels = list(get_task(a.task).labels)
        pa, pb = read_predictions(paths[a.id]), read_predictions(paths[b.id])
        (ya, pred_a, _), (yb, pred_b, _) = matrices(pa, labels), matrices(pb, labels)
    except (ValueError, KeyError, OSError) as e:
        return None, f"no CI: cannot read the predictions ({e})"
    if len(pa) != len(pb) or not pa["text"].equals(pb["text"]):
        return None, (f"no CI: the holdout texts differ ({len(pa)} vs {len(pb)} rows, or another order); "
                      "a paired interval needs the same texts in the same order")
    if (ya != yb).any():
        return None, "no CI: the same texts carry different gold labels in the two predictions files"
    if len(pa) == 0:
        return None, "no CI: the predictions files are empty"
    from emotions.pipeline.ablation import paired_bootstrap

    return paired_bootstrap(ya, pred_b, pred_a, n=n, seed=seed), ""


def diff_report(a: Run, b: Run, fmt: str = "text", n: int = 500, seed: int = 0) -> str:
    """The config differences, metric deltas and holdout CI of two runs, as text."""
    config = config_diff(a, b)
    parts = [f"config differences ({a.id} vs {b.id}):",
             render(config, fmt) if len(config) else "  (none: the same config)", "",
             f"weighted F1 (delta = {b.id} - {a.id}):"]
    deltas = metric_deltas(a, b)
    parts.append(render(deltas, fmt) if len(deltas) else "  (neither run has metrics.json)")
    ci, why = holdout_ci(a, b, n=n, seed=seed)
    if ci is None:
        parts += ["", why]
    else:
        d, lo, hi = ci
        parts += ["", f"holdout weighted F1 delta {d:+.4f}, paired bootstrap 95% CI [{lo:+.4f}, {hi:+.4f}] "
                      f"({n} resamples, seed {seed})"]
    return "\n".join(parts)


# --- command line ----------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m emotions.runs`."""
    p = argparse.ArgumentParser(prog="python -m emotions.runs",
                                description="List the run folders with their differing config and scores, "
                                            "or compare two runs (--diff A B).")
    p.add_argument("--runs-dir", type=Path, default=RUNS_DIR, help="where the run folders are (default: runs/)")
    p.add_argument("--sort", default=DEFAULT_SORT,
                   help=f"column to sort by: a metric ({', '.join(METRICS)}; best first) or another column "
                        f"(default: {DEFAULT_SORT})")
    p.add_argument("--task", help="list only the runs of this task")
    p.add_argument("--diff", nargs=2, metavar=("A", "B"), help="compare two runs (ids under --runs-dir)")
    p.add_argument("--format", choices=["text", "markdown", "csv"], default="text", help="output (default: text)")
    p.add_argument("--resamples", type=int, default=500, help="bootstrap resamples for --diff (default: 500)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Print the runs table (or `--diff A B`); exit 1 when there is no run folder, 2 on a usage error."""
    args = build_parser().parse_args(argv)
    if args.diff:
        missing = [r for r in args.diff if not is_run_dir(args.runs_dir / r)]
        if missing:
            print(f"error: no run folder {', '.join(missing)} under {args.runs_dir}", file=sys.stderr)
            return 2
        a, b = (load_run(args.runs_dir / r) for r in args.diff)
        print(diff_report(a, b, args.format, n=args.resamples))
        return 0
    runs = discover_runs(args.runs_dir, args.task)
    if not runs:
        where = f" of task {args.task}" if args.task else ""
        print(f"no run folders{where} under {args.runs_dir}", file=sys.stderr)
        return 1
    try:
        table = runs_table(runs, args.sort)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(render(table, args.format))
    return 0


if __name__ == "__main__":
    sys.exit(main())
