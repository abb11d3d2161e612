"""Execute the pipeline's notebooks in order with papermill (the logic behind run_all.py)."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from .config import DEFAULT_PROFILE, available_profiles, load_config
from ..core.io import path_fingerprint, read_json, stable_hash, write_json_atomic, write_text_atomic
from ..data.labels import TASKS
from ..core.paths import DEMO_DATA_DIR, KAGGLE_COMPETITION, NOTEBOOKS_DIR, PROJECT_ROOT, RUNS_DIR, SUBMISSIONS_DIR
from .fingerprint import library_versions, package_source_hash, stage_fingerprint, what_changed
from .notebook import section_of
from .progress_echo import stream_progress
from .stage import archive_stage, manifest_path, read_manifest, restore_stage, state_path

log = logging.getLogger(__name__)

def notebook_parameters(nb_path: Path) -> set[str]:
    import papermill

    return set(papermill.inspect_notebook(str(nb_path)).keys())


def stage_parameters(cfg: dict, stage: str, declared: set[str], common: dict[str, Any]) -> dict[str, Any]:
    """What papermill injects: common values, the stage's section, and any top-level section the notebook names."""
    params = {k: v for k, v in common.items() if k in declared}
    section = cfg.get(section_of(stage), {}) or {}
    unknown = sorted(set(section) - declared)
    if unknown:
        raise ValueError(f"config section {section_of(stage)!r} has key(s) {unknown} that notebook {stage} "
                         f"does not take; its parameters are {sorted(declared)}")
    params.update(section)
    for name in declared - set(params):
        if name in cfg and name not in ("stages",):
            params[name] = cfg[name]
    return params


def is_up_to_date(run_dir: Path, stage: str, fingerprint: dict) -> tuple[bool, str]:
    """A stage is skipped when its parameters, notebook, package code, library versions, inputs and outputs
    match its last success; otherwise the reason says what changed (e.g. "code changed", "torch 2.1 → 2.2")."""
    state_file = state_path(run_dir, stage)
    manifest = read_manifest(run_dir, stage)
    if manifest is None or not state_file.is_file():
        return False, "never ran"
    state = read_json(state_file)
    changed = what_changed(state.get("fingerprint"), fingerprint)
    if changed:
        return False, changed
    for kind in ("inputs", "outputs"):
        for name, rec in manifest.get(kind, {}).items():
            if path_fingerprint(rec["path"]) != rec["sha256"]:
                return False, f"{kind[:-1]} {name!r} changed"
    return True, "unchanged"


def default_run_id(task: str, profile: str, data_dir: Path) -> str:
    """One run folder per task, profile and data root: a changed parameter re-runs only the
    stages it affects there (their earlier outputs move to history/); --run-id starts another."""
    name = "demo" if data_dir == DEMO_DATA_DIR.resolve() else data_dir.name
    return f"{task}-{profile}-{name}-{stable_hash(str(data_dir))[:6]}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_all.py",
        description="Run the pipeline's notebooks in order with papermill: EDA -> extend -> augment -> "
                    "train -> evaluate -> submission. Each run lives in runs/<run-id>/.")
    p.add_argument("--task", default="cryptonite", choices=sorted(TASKS), help="task (default: cryptonite)")
    p.add_argument("--profile", default=DEFAULT_PROFILE,
                   help=f"config profile: {', '.join(available_profiles())} (default: {DEFAULT_PROFILE}; quick: the "
                        "transformer sized for a CPU; full / gpu: the full recipe)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help=f"data root with the layout of ../shared/data (default: the demo set {DEMO_DATA_DIR.relative_to(PROJECT_ROOT)})")
    p.add_argument("--only", metavar="STAGE", help="run just this stage (e.g. 04_train or train)")
    p.add_argument("--from", dest="from_stage", metavar="STAGE", help="run from this stage on")
    p.add_argument("-p", "--param", dest="params", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. -p train.model=transformer -p seed=7 (repeatable)")
    p.add_argument("--run-id", help="run folder name under runs/ (default: derived from task, profile, config, data)")
    p.add_argument("--runs-dir", type=Path, default=RUNS_DIR, help="where run folders go (default: runs/)")
    p.add_argument("--submissions-dir", type=Path, default=SUBMISSIONS_DIR,
                   help="where submission.csv and per-run copies go (default: submissions/)")
    p.add_argument("--force", action="store_true", help="re-run stages even if nothing changed")
    p.add_argument("--submit", action="store_true",
                   help="after the run, upload this run's submission with the Kaggle CLI (exit 1 if nothing was uploaded)")
    p.add_argument("--publish-figures", action="store_true",
                   help="after the run, copy its figures (runs/<id>/img/) to the project's img/<task>/ gallery")
    p.add_argument("--verbose", action="store_true", help="show full tracebacks (e.g. on Ctrl-C)")
    p.add_argument("--list", action="store_true", help="print the stages and the merged config, then exit")
    return p


def _match_stage(name: str, stages: list[str]) -> str:
    for s in stages:
        if name in (s, section_of(s), s.split("_", 1)[0]):
            return s
    raise SystemExit(f"error: unknown stage {name!r}; stages: {', '.join(stages)}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    current: dict[str, Any] = {"stage": None, "moved": None}
    try:
        try:
            cfg = load_config(args.task, args.profile, args.params)
        except (ValueError, KeyError) as e:
            print(f"error: {e.args[0] if e.args else e}\n(every key, its type and default: configs/base.yaml and "
                  "emotions/pipeline/schema.py; the merged config: python run_all.py --list)", file=sys.stderr)
            return 2
        return _run(args, cfg, current)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # a second Ctrl-C must not break the restore
        if args.verbose:
            import traceback
            traceback.print_exc()
        if current.get("moved") is not None:
            current["restored"] = restore_stage(current["run_dir"], current["moved"], keep=(current["executed"],))
        stage, restored = current["stage"], current.get("restored")
        where = f"during {stage}" if stage else "before the first stage"
        kept = "; its previous outputs are back in place" if restored else ""
        print(f"interrupted {where}{kept}. Re-run the same command to resume.", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace, cfg: dict, current: dict) -> int:
    """The body of `main` once the config is valid; `current` tells the interrupt handler where it was."""
    data_dir = (args.data_dir or DEMO_DATA_DIR).resolve()
    if not data_dir.is_dir():
        print(f"error: data directory {data_dir} does not exist", file=sys.stderr)
        return 2
    stages = _selected_stages(args, list(cfg.get("stages", [])))
    run_id = args.run_id or default_run_id(args.task, args.profile, data_dir)
    run_dir = args.runs_dir.resolve() / run_id
    if args.list:
        print(f"run folder: {run_dir}\nstages: {', '.join(stages)}\n")
        print(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
        return 0
    _write_params(run_dir, cfg, data_dir)
    common = {"run_dir": str(run_dir), "data_dir": str(data_dir), "run_id": run_id,
              "submissions_dir": str(args.submissions_dir.resolve()), **cfg.get("common", {})}
    env_path = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    os.environ["PYTHONPATH"] = env_path  # the kernels import the package from this checkout
    os.environ.setdefault("MPLBACKEND", "Agg")
    print(f"run {run_id}: task {args.task}, profile {args.profile}, data {data_dir}")
    print(f"run folder: {run_dir}")
    run = _Run(args, cfg, common, run_dir, current, package_source_hash(), library_versions(), time.time())
    for i, stage in enumerate(stages, 1):
        code = run.stage(stage, f"[{i}/{len(stages)}] {stage}")
        if code:
            return code
    current["stage"] = None
    return _finish(args, cfg, run_dir, run_id, time.time() - run.started)


def _selected_stages(args: argparse.Namespace, stages: list[str]) -> list[str]:
    if args.only:
        return [_match_stage(args.only, stages)]
    if args.from_stage:
        return stages[stages.index(_match_stage(args.from_stage, stages)):]
    return stages


def _write_params(run_dir: Path, cfg: dict, data_dir: Path) -> None:
    """The run's merged config as params.yaml (a different earlier one moves to history/)."""
    for sub in ("notebooks", "logs"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    params_file = run_dir / "params.yaml"
    cfg_text = yaml.safe_dump({"data_dir": str(data_dir), **cfg}, sort_keys=False, allow_unicode=True)
    if params_file.exists() and params_file.read_text(encoding="utf-8") != cfg_text:
        old = run_dir / "history" / f"params-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S')}.yaml"
        old.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(params_file), old)
    write_text_atomic(params_file, cfg_text)


@dataclass
class _Run:
    """One run_all.py run: runs each stage's notebook unless it is up to date."""

    args: argparse.Namespace
    cfg: dict
    common: dict
    run_dir: Path
    current: dict
    code_hash: str
    libraries: dict
    started: float

    def stage(self, stage: str, prefix: str) -> int:
        """Run (or skip) one stage; 0, or the exit code to stop with."""
        nb, run_dir = NOTEBOOKS_DIR / f"{stage}.ipynb", self.run_dir
        if not nb.is_file():
            print(f"error: notebook {nb} not found", file=sys.stderr)
            return 2
        executed = run_dir / "notebooks" / nb.name
        try:
            params = stage_parameters(self.cfg, stage, notebook_parameters(nb), self.common)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        fingerprint = stage_fingerprint(params, nb, code=self.code_hash, libraries=self.libraries)
        up_to_date, why = is_up_to_date(run_dir, stage, fingerprint)
        if up_to_date and not self.args.force:
            print(f"{prefix}: skipped ({why} since its last success)")
            return 0
        moved = archive_stage(run_dir, stage, executed)
        self.current.update(stage=stage, moved=moved, restored=None, run_dir=run_dir, executed=executed)
        reason = "forced" if self.args.force and up_to_date else why
        print(f"{prefix}: running ({reason})" + (f"; earlier outputs kept in {moved.relative_to(run_dir)}"
                                                 if moved else ""), flush=True)
        t0 = time.time()
        ok = _execute(nb, executed, params, run_dir / "logs" / f"{stage}.log")
        if not ok or read_manifest(run_dir, stage) is None:
            return self.failed(stage, prefix, ok, executed, moved, t0)
        self.current["moved"] = None
        if moved is not None and (moved / "moved.json").is_file():
            (moved / "moved.json").unlink()
        write_json_atomic(state_path(run_dir, stage), {"fingerprint": fingerprint, "finished": time.time()})
        switched_off = (read_manifest(run_dir, stage) or {}).get("metrics", {}).get("off")
        state = f"off ({switched_off})" if switched_off else "done"
        print(f"{prefix}: {state} in {time.time() - t0:.1f}s (elapsed {time.time() - self.started:.1f}s)",
              flush=True)
        return 0

    def failed(self, stage: str, prefix: str, ok: bool, executed: Path, moved: Path | None, t0: float) -> int:
        """Put the stage's previous outputs back and say where the traceback is."""
        run_dir = self.run_dir
        why = (f" The notebook did not write its manifest ({manifest_path(run_dir, stage)})." if ok else
               f" The traceback is in the executed notebook {executed} (log: {run_dir / 'logs' / (stage + '.log')}).")
        restored = restore_stage(run_dir, moved, keep=(executed,))
        self.current["moved"] = None
        kept = f" Its previous outputs are back in place ({', '.join(_short(restored))})." if restored else ""
        if restored and moved.with_name(moved.name + "-failed").exists():
            kept += f" What this attempt left there is in {moved.relative_to(run_dir)}-failed/."
        print(f"{prefix}: FAILED after {time.time() - t0:.1f}s.{why}{kept}", file=sys.stderr)
        return 1


def _finish(args: argparse.Namespace, cfg: dict, run_dir: Path, run_id: str, seconds: float) -> int:
    """The summary, then what was asked for after the run: figures published, the submission uploaded."""
    own = _summary(run_dir, args, seconds, run_id)
    tracking = cfg.get("tracking", {}) or {}
    if tracking.get("enabled", True):
        from ..tracking import log_run

        log_run(run_dir, cfg, register=tracking.get("model_name"))   # one line; -p tracking.enabled=false: off
    if args.publish_figures:
        _publish_figures(run_dir, args.task)
    if args.submit:
        from .submission import kaggle_submit

        if own is None:
            print(f"error: nothing uploaded: run {run_id} has no submission ({run_dir / 'submission.csv'}); "
                  "run its submission stage first", file=sys.stderr)
            return 1
        if not kaggle_submit(own, f"emotions run {run_id}"):
            print(f"error: nothing was uploaded to Kaggle ({own})", file=sys.stderr)
            return 1
    return 0


def _execute(nb: Path, executed: Path, params: dict, log_file: Path) -> bool:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    try:
        # the stage's progress bars go to logs/<stage>.progress and are echoed here (not into the notebook)
        with open(log_file, "w", encoding="utf-8") as out, stream_progress(log_file.with_suffix(".progress")):
            papermill.execute_notebook(
                str(nb), str(executed), parameters=params, cwd=str(NOTEBOOKS_DIR), kernel_name="python3",
                progress_bar=False, stdout_file=out, stderr_file=out, log_output=False, coalesce_streams=True,
                # keep the kernel's own start-up chatter out of the run's output
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
        return True
    except PapermillExecutionError as e:
        if e.ename == "KeyboardInterrupt":
            raise KeyboardInterrupt from None
        print(f"  {e.ename}: {e.evalue}", file=sys.stderr)
        return False
    except Exception as e:  # kernel died, notebook unreadable, ...
        print(f"  {type(e).__name__}: {e}", file=sys.stderr)
        return False


def _short(paths: list[str], n: int = 4) -> list[str]:
    return paths[:n] + ([f"... {len(paths) - n} more"] if len(paths) > n else [])


def _summary(run_dir: Path, args: argparse.Namespace, seconds: float, run_id: str) -> Path | None:
    """Print the run's numbers and its own submission; return that submission's path (None: none)."""
    from .submission import describe_latest, run_submission

    print(f"finished in {seconds:.1f}s; run folder {run_dir}")
    metrics_file = run_dir / "metrics.json"
    if metrics_file.is_file():
        m = read_json(metrics_file)
        head = m.get("holdout", {})
        keys = [k for k in ("weighted_f1", "macro_f1", "micro_f1", "accuracy", "mean_roc_auc", "macro_roc_auc")
                if head.get(k) is not None]
        if keys:
            print("holdout: " + ", ".join(f"{k} {head[k]:.4f}" for k in keys))
    own = run_submission(run_dir, args.submissions_dir, run_id)
    if own is not None:
        print(f"submission: {own} (this run's)")
        print(f"latest: {describe_latest(args.submissions_dir, own)}")
    for line in next_commands(run_dir, own):
        print(line)
    return own


def next_commands(run_dir: Path, submission: Path | None) -> list[str]:
    """What a user can do with the run now: compare it, serve it, export it, upload its submission."""
    lines = ["next:", f"  compare runs:  python -m emotions.runs --runs-dir {run_dir.parent}"]
    if (run_dir / "model").is_dir():
        lines.append(f"  serve it:      python -m emotions.serve --run {run_dir}")
        kind = read_json(run_dir / "model" / "model_card.json").get("kind") \
            if (run_dir / "model" / "model_card.json").is_file() else None
        if kind == "transformer" and not (run_dir / "export").is_dir():
            lines.append(f"  ONNX + int8:   python -m emotions.export_onnx {run_dir}")
    if submission is not None:
        lines.append(f"  upload:        kaggle competitions submit {KAGGLE_COMPETITION} -f {submission} -m 'emotions'"
                     " (or re-run with --submit)")
    return lines


def _publish_figures(run_dir: Path, task: str) -> None:
    """Copy the run's figures to the project's img/<task>/ (the README's gallery), on request only."""
    from ..core.paths import IMG_DIR

    figures = sorted((run_dir / "img").glob("*.png"))
    dest = IMG_DIR / task
    dest.mkdir(parents=True, exist_ok=True)
    for f in figures:
        shutil.copyfile(f, dest / f.name)
    print(f"published {len(figures)} figure(s) to {dest}")
