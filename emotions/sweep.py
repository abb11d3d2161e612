"""Hyper-parameter sweeps with Optuna over the in-memory pipeline chain: `python -m emotions.sweep`.

    python -m emotions.sweep --profile baseline --space configs/sweeps/baseline.yaml --trials 20

A space file maps dotted config keys to distributions (the option names: emotions/models/kind_options.py):

    train.baseline.C: {type: float, low: 0.1, high: 10, log: true}      # also `step: 0.5`
    train.baseline.word_ngram_max: {type: int, low: 1, high: 3}
    train.baseline.class_weight: {type: categorical, choices: [balanced, null]}

Each trial: the sampled values become `-p` overrides (after the command's own `-p`) -> `load_config` (the
schema checks them) -> the chain run_all.py runs (split, extend, augment, train, evaluate) in memory ->
objective = the tune split's weighted F1. The chain scores the holdout too: it is recorded on each trial
(user attribute `holdout_weighted_f1`) and printed once for the best trial, and never used for a choice.

Storage: an Optuna RDB URL (default `sqlite:///<project root>/optuna.db`); study name default
`<task>-<profile>-<space file name>`. An existing study is resumed: `--trials N` adds N trials to it.
Several workers (processes, or machines) running the same command against one storage URL share the study:
Optuna's distributed optimisation; SQLite suits a few processes on one machine (a local disk), PostgreSQL
or MySQL more (`--storage postgresql://user@host/db`). Give each worker its own `--seed`.

At the end the best trial becomes `configs/profiles/<study>.yaml`: the chosen profile's YAML (its `extends`
chain merged) plus every value where the best trial's config differs from the profile's, so
`python run_all.py --profile <study>` reproduces it. Printed: best tune score, its holdout, trials per minute.
MLflow (when installed and `--no-tracking` not given): a parent run per study and one child run per trial.

Pruning: none. The baseline (TF-IDF + logistic regression) has no epochs to prune on; the transformer's and
CNN's trainer keeps per-epoch tune scores only until training ends (model history, recorded on the trial as
intermediate values), so a pruner (optuna.pruners.MedianPruner) would need a per-epoch callback there.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import math
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

from .core.paths import CONFIGS_DIR, DEMO_DATA_DIR, PROJECT_ROOT
from .pipeline.config import deep_merge, load_config, set_path
from .tracking import default_tracking_uri, flatten, sweep_tracker

TYPES = ("float", "int", "categorical")
MARK = "# written by emotions.sweep"
IGNORED_KEYS = ("common.profile", "common.task")   # set by load_config itself


def default_storage() -> str:
    return f"sqlite:///{PROJECT_ROOT / 'optuna.db'}"


def chain_runner() -> Callable[..., dict]:
    """The in-memory chain every trial runs: the stage functions run_all.py's notebooks call."""
    from .pipeline import stages

    return stages.run_chain


def load_space(path: str | Path) -> dict[str, dict]:
    """The space file, checked: each key's type, bounds and choices (ValueError naming the key)."""
    space = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(space, dict) or not space:
        raise ValueError(f"{path}: expected a mapping of dotted config keys to distributions")
    for key, spec in space.items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind not in TYPES:
            raise ValueError(f"{path}: {key}: `type` must be one of {', '.join(TYPES)}, got {spec!r}")
        if kind == "categorical":
            if not isinstance(spec.get("choices"), list) or not spec["choices"]:
                raise ValueError(f"{path}: {key}: a categorical needs a non-empty `choices` list")
        elif not all(isinstance(spec.get(b), (int, float)) for b in ("low", "high")) or spec["low"] > spec["high"]:
            raise ValueError(f"{path}: {key}: needs numbers `low` <= `high`, got {spec!r}")
        unknown = set(spec) - {"type", "low", "high", "log", "step", "choices"}
        if unknown:
            raise ValueError(f"{path}: {key}: unknown field(s) {sorted(unknown)}")
    return space


def suggest(trial: Any, key: str, spec: Mapping) -> Any:
    """One value of `key` from its distribution."""
    if spec["type"] == "categorical":
        return trial.suggest_categorical(key, list(spec["choices"]))
    kw = {"log": bool(spec.get("log", False))}
    if spec.get("step") is not None:
        kw["step"] = spec["step"]
    if spec["type"] == "int":
        return trial.suggest_int(key, int(spec["low"]), int(spec["high"]), **kw)
    return trial.suggest_float(key, float(spec["low"]), float(spec["high"]), **kw)


def override(key: str, value: Any) -> str:
    """A `-p` override whose YAML reads back as `value` (1e-05 -> '1.0e-05', 'no' quoted)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).removesuffix("...\n").strip()
    return f"{key}={text}"


def overrides_of(params: Mapping[str, Any], base: Sequence[str] = ()) -> list[str]:
    return [*base, *(override(k, v) for k, v in params.items())]


def check_space(task: str, profile: str, space: Mapping, base: Sequence[str], configs_dir: Path) -> None:
    """Every key and both ends of every range pass the config schema, before any trial runs."""
    for end in (0, -1):
        probe = {k: s["choices"][end] if s["type"] == "categorical" else s["low" if end == 0 else "high"]
                 for k, s in space.items()}
        load_config(task, profile, overrides_of(probe, base), configs_dir=configs_dir)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class Objective:
    """The Optuna objective: config from the trial's values, the chain, the tune split's weighted F1."""

    def __init__(self, args: argparse.Namespace, space: Mapping, runner: Callable[..., dict], tracker: Any,
                 best: float | None = None):
        self.args, self.space, self.runner, self.tracker = args, space, runner, tracker
        self.best = best       # the study's best so far (a new one is marked *)
        self.shown = False     # the chain's own output shown once

    def __call__(self, trial: Any) -> float:
        params = {k: suggest(trial, k, s) for k, s in self.space.items()}
        overrides = overrides_of(params, self.args.params)
        trial.set_user_attr("overrides", overrides)
        t0, score = time.perf_counter(), None
        try:
            cfg = load_config(self.args.task, self.args.profile, overrides, configs_dir=self.args.configs_dir)
            metrics, predictor = self.run(cfg, trial.number)
            score = float(metrics["tune"]["weighted_f1"])          # the objective: tune, never the holdout
        except Exception as e:
            seconds = time.perf_counter() - t0
            print(f"trial {trial.number}: FAILED after {seconds:.1f}s ({type(e).__name__}: {e})", flush=True)
            if self.tracker:
                self.tracker.log_trial(trial.number, params, None, seconds, self.args.study, failed=True)
            raise
        seconds = time.perf_counter() - t0
        trial.set_user_attr("seconds", seconds)
        trial.set_user_attr("tune_weighted_f1", score)
        for split in ("holdout", "holdout_mixed"):                # recorded, reported for the best only
            value = (metrics.get(split) or {}).get("weighted_f1")
            if value is not None:
                trial.set_user_attr(f"{split}_weighted_f1", float(value))
        for entry in (getattr(predictor, "history", None) or {}).get("epochs", []) or []:
            if isinstance(entry, dict) and entry.get("tune_metric") is not None:
                trial.report(float(entry["tune_metric"]), step=int(entry.get("epoch", 0)))
        new_best = self.best is None or score > self.best
        self.best = score if new_best else self.best
        shown = " ".join(f"{k}={_fmt(v)}" for k, v in params.items())
        print(f"trial {trial.number}: tune weighted F1 {score:.4f}{' *' if new_best else ''} "
              f"({seconds:.1f}s) {shown}", flush=True)
        if self.tracker:
            self.tracker.log_trial(trial.number, params, score, seconds, self.args.study)
        return score

    def run(self, cfg: dict, number: int) -> tuple[dict, Any]:
        """The chain in the trial's model folder (kept under --keep-models, else a temporary one). What the
        chain prints is shown for the session's first trial, a failed one, or all with --verbose."""
        out, ok = io.StringIO(), False
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                if self.args.keep_models:
                    result = self.runner(cfg, self.args.data_dir, Path(self.args.keep_models) / f"trial-{number}")
                else:
                    with tempfile.TemporaryDirectory(prefix=f"sweep-trial-{number}-") as tmp:
                        result = self.runner(cfg, self.args.data_dir, Path(tmp) / "model")
            ok = True
        finally:
            if self.args.verbose or not self.shown or not ok:
                print(out.getvalue(), end="", flush=True)
            self.shown = True
        return result["metrics"], result.get("predictor")


def profile_layers(profile: str, configs_dir: Path) -> dict:
    """The profile's own YAML with its `extends` chain merged in (base.yaml and the task left out)."""
    chain: list[dict] = []
    name: str | None = profile
    while name is not None:
        path = configs_dir / "profiles" / f"{name}.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        name = data.pop("extends", None)
        chain.append(data)
        if len(chain) > 20:
            raise ValueError(f"profile {profile!r}: `extends` loops")
    merged: dict = {}
    for layer in reversed(chain):
        merged = deep_merge(merged, layer)
    return merged


def differences(cfg: Mapping, base: Mapping) -> dict[str, Any]:
    """Dotted keys whose value in `cfg` differs from `base` (what the best trial changed)."""
    flat, ref = flatten(dict(cfg)), flatten(dict(base))
    return {k: v for k, v in flat.items() if k not in IGNORED_KEYS and (k not in ref or ref[k] != v)}


def profile_path(study: str, configs_dir: Path) -> Path:
    return configs_dir / "profiles" / f"{re.sub(r'[^A-Za-z0-9_.-]', '-', study)}.yaml"


def check_profile_target(path: Path) -> None:
    """Refuse to overwrite a hand-written profile (one without the sweep's mark)."""
    if path.is_file() and not path.read_text(encoding="utf-8").startswith(MARK):
        raise ValueError(f"{path} exists and was not written by a sweep; choose another --study name")


def write_profile(args: argparse.Namespace, best: Any, n_trials: int) -> Path:
    """configs/profiles/<study>.yaml: the profile's merged YAML + the best trial's differences; checked by
    loading it back (a warning names any key the task's config overrides again)."""
    configs_dir, path = args.configs_dir, profile_path(args.study, args.configs_dir)
    check_profile_target(path)
    best_cfg = load_config(args.task, args.profile, best.user_attrs["overrides"], configs_dir=configs_dir)
    changed = differences(best_cfg, load_config(args.task, args.profile, configs_dir=configs_dir))
    data = copy.deepcopy(profile_layers(args.profile, configs_dir))
    for key, value in changed.items():
        set_path(data, key.split("."), value)
    holdout = best.user_attrs.get("holdout_weighted_f1")
    header = [f"{MARK}: study {args.study!r}, best of {n_trials} trials (trial {best.number}; {args.storage})",
              f"# tune weighted F1 {best.value:.4f} (the objective); holdout {_fmt(holdout)} (reported, not used)",
              f"# = profile {args.profile!r} merged + " + (", ".join(f"{k}={_fmt(v)}" for k, v in changed.items())
                                                         or "nothing changed"),
              f"# run it: python run_all.py --task {args.task} --profile {path.stem}"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(header) + "\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
                    encoding="utf-8")
    again = differences(load_config(args.task, path.stem, configs_dir=configs_dir), best_cfg)
    if again:
        print(f"warning: {path.name} does not reproduce the best config for {', '.join(sorted(again))} "
              f"(the task's config sets them after the profile)")
    return path


def open_study(args: argparse.Namespace) -> Any:
    """The study (created or resumed), its sampler seeded by --seed and the number of trials it holds."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=args.storage, study_name=args.study, direction="maximize",
                                load_if_exists=True)
    study.sampler = optuna.samplers.TPESampler(seed=args.seed + len(study.trials))   # no repeats on resume
    return study


def best_value(study: Any) -> float | None:
    try:
        return float(study.best_value)
    except ValueError:      # no complete trial yet
        return None


def summary(study: Any, session: int, seconds: float) -> tuple[Any, dict[str, float | None]] | None:
    """Print the best trial's tune score and its holdout (once), and the throughput; None: nothing complete."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    per_min = session / (seconds / 60) if seconds > 0 else math.nan
    print(f"trials: {session} this session in {seconds / 60:.1f} min ({per_min:.2f} trials/min); "
          f"{len(study.trials)} in study {study.study_name!r}, {len(complete)} complete")
    if not complete:
        print("no complete trial: nothing to report")
        return None
    best = study.best_trial
    holdout, mixed = (best.user_attrs.get(f"{s}_weighted_f1") for s in ("holdout", "holdout_mixed"))
    print(f"best: trial {best.number}, tune weighted F1 {best.value:.4f} (the objective)")
    print(f"its holdout weighted F1 {_fmt(holdout)}" + (f", holdout_mixed {_fmt(mixed)}" if mixed is not None else "")
          + " (scored once by the same run; not used for the choice)")
    print("best values: " + " ".join(f"{k}={_fmt(v)}" for k, v in best.params.items()))
    return best, {"best.tune.weighted_f1": best.value, "best.holdout.weighted_f1": holdout,
                  "best.holdout_mixed.weighted_f1": mixed, "trials_per_minute": per_min}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m emotions.sweep", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", required=True, help="config profile the sweep starts from (configs/profiles/)")
    p.add_argument("--space", required=True, type=Path, help="search space YAML (configs/sweeps/)")
    p.add_argument("--trials", type=int, default=20, help="trials to add in this session (default: 20)")
    p.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    p.add_argument("--task", default="cryptonite", help="task (default: cryptonite)")
    p.add_argument("--data-dir", type=Path, default=DEMO_DATA_DIR, help="data root (default: the demo data)")
    p.add_argument("--storage", default=None, help="Optuna storage URL (default: sqlite:///<project>/optuna.db)")
    p.add_argument("--study", help="study name (default: <task>-<profile>-<space name>); resumed when it exists")
    p.add_argument("-p", "--param", dest="params", action="append", default=[], metavar="KEY=VALUE",
                   help="fixed override for every trial, e.g. -p train.transformer.max_train_rows=2000")
    p.add_argument("--seed", type=int, default=0, help="sampler seed (offset by the study's trial count)")
    p.add_argument("--configs-dir", type=Path, default=CONFIGS_DIR, help="configs folder (profiles are written here)")
    p.add_argument("--keep-models", type=Path, help="keep each trial's model folder under DIR/trial-<n>/")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or mlruns.db)")
    p.add_argument("--no-tracking", action="store_true", help="no MLflow runs")
    p.add_argument("--verbose", action="store_true", help="show what the chain prints in every trial")
    return p


def main(argv: list[str] | None = None, runner: Callable[..., dict] | None = None) -> int:
    """The command; `runner` replaces the pipeline chain (tests)."""
    args = build_parser().parse_args(argv)
    args.storage = args.storage or default_storage()
    args.study = args.study or f"{args.task}-{args.profile}-{args.space.stem}"
    try:
        space = load_space(args.space)
        check_space(args.task, args.profile, space, args.params, args.configs_dir)
        check_profile_target(profile_path(args.study, args.configs_dir))
        if not args.data_dir.is_dir():
            raise ValueError(f"data directory {args.data_dir} does not exist")
    except (ValueError, KeyError, OSError) as e:
        print(f"error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    study = open_study(args)
    tracker = None
    if not args.no_tracking:
        settings = {"task": args.task, "profile": args.profile, "space": str(args.space), "storage": args.storage,
                    "data_dir": str(args.data_dir), "fixed": args.params, **{f"space.{k}": v for k, v in space.items()}}
        uri, parents = args.tracking_uri or default_tracking_uri(), study.user_attrs.get("mlflow_parent_runs", {})
        tracker = sweep_tracker(args.task, args.study, settings, tracking_uri=uri, parent_run_id=parents.get(uri))
        if tracker:
            study.set_user_attr("mlflow_parent_runs", {**parents, uri: tracker.parent_id})
    print(f"study {args.study!r} ({args.storage}): {len(study.trials)} trial(s) so far; adding up to {args.trials}, "
          f"profile {args.profile!r}, data {args.data_dir}", flush=True)
    before, t0, interrupted = len(study.trials), time.perf_counter(), False
    try:
        objective = Objective(args, space, runner or chain_runner(), tracker, best_value(study))
        study.optimize(objective, n_trials=args.trials, timeout=args.timeout, catch=(Exception,))
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: the finished trials are in the study; the same command resumes it", file=sys.stderr)
    result = summary(study, len(study.trials) - before, time.perf_counter() - t0)
    if result is None:
        return 1
    best, figures = result
    path = write_profile(args, best, len(study.trials))
    print(f"profile: {path} (python run_all.py --task {args.task} --profile {path.stem})")
    if tracker:
        tracker.finish(figures, best.params)
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
