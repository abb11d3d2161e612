"""MLflow tracking: one MLflow run per pipeline run folder (runs/<id>/), and the sweeps' parent / child runs.

`log_run(run_dir, cfg)` logs
- params: the merged config, flattened to dotted keys (`train.baseline.C`); values over 500 characters are
  cut (the full config is the params.yaml artifact); sent in batches of 100;
- metrics: per split of metrics.json (tune, holdout, holdout_asr, holdout_utterances, holdout_mixed, ...)
  `<split>.weighted_f1` / macro_f1 / micro_f1 / mean_roc_auc (...) and per class `<split>.f1.<label>`,
  `<split>.roc_auc.<label>`; the model's per-epoch history.json as `epoch.<key>` (train_loss, tune_loss,
  tune_weighted_f1, ...) with the epoch as step;
- tags: task, profile, model, git commit and package hash (as the run's manifests recorded them, else
  `git rev-parse HEAD`), data root, run folder;
- artifacts: img/*.png, metrics.json, params.yaml, executed notebooks, model card + history, submission.csv.
The MLflow run id is kept in `<run_dir>/tracking.json` (per tracking URI): logging the folder again updates
that run (only what changed), or does nothing when nothing changed; a changed config starts a new MLflow run
(params are immutable there) and tags the old one `emotions.superseded_by`.

Where: `$MLFLOW_TRACKING_URI`, else `sqlite:///<project root>/mlruns.db`; a SQLite store keeps the artifacts
in `mlartifacts/` beside the database. Experiment = the task. Browse (offline):
`mlflow server --backend-store-uri sqlite:///mlruns.db --default-artifact-root ./mlartifacts --port 5000`
(the web pages ship only with the full `mlflow` package; `mlflow-skinny` serves the REST API).
Without MLflow each entry prints one line and returns None. `python -m emotions.tracking RUN_DIR...` logs folders.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from .core.io import file_sha256, path_fingerprint, read_json, stable_hash, write_json_atomic
from .core.paths import PROJECT_ROOT

TRACKING_FILE = "tracking.json"
PARAM_VALUE_LIMIT = 500      # MLflow's long-standing limit (new servers take 6000; 500 is safe everywhere)
KEY_LIMIT = 250
BATCH_PARAMS, BATCH_METRICS = 100, 1000     # per log_batch request (params and tags; metrics)
SPLIT_SCORES = ("weighted_f1", "macro_f1", "micro_f1", "mean_roc_auc", "macro_roc_auc", "accuracy",
                "mean_precision", "mean_recall")
ARTIFACTS = (("img/*.png", "img"), ("metrics.json", ""), ("params.yaml", ""), ("notebooks/*.ipynb", "notebooks"),
             ("model/model_card.json", "model"), ("model/history.json", "model"), ("submission.csv", ""))


def mlflow_client_class() -> type | None:
    """MlflowClient, or None (with one line saying so) when MLflow is not installed. MLflow's usage telemetry
    is off unless MLFLOW_DISABLE_TELEMETRY says otherwise (the project runs offline)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        print("tracking: MLflow is not installed (pip install -r requirements.txt); nothing logged")
        return None
    return MlflowClient


def default_tracking_uri() -> str:
    """$MLFLOW_TRACKING_URI, else the project's SQLite store."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{PROJECT_ROOT / 'mlruns.db'}"


def artifact_root(uri: str) -> str | None:
    """Artifact location of a new experiment: mlartifacts/ beside a SQLite database; None: the store decides."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).resolve().parent / "mlartifacts").as_uri()
    return None


def ensure_experiment(client: Any, name: str, uri: str) -> str:
    """The id of experiment `name`, created when missing (a parallel worker creating it first is fine)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    root = artifact_root(uri)
    try:
        return client.create_experiment(name, artifact_location=root and f"{root}/{clean_key(name)}")
    except Exception:   # another worker won the race: RESOURCE_ALREADY_EXISTS
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def clean_key(key: str) -> str:
    """A name MLflow accepts (letters, digits, _ - . / and spaces; at most 250 characters)."""
    return re.sub(r"[^\w\-. /]", "_", key)[:KEY_LIMIT]


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """{'train': {'baseline': {'C': 4}}} -> {'train.baseline.C': 4}; empty mappings and lists stay values."""
    if isinstance(obj, Mapping) and obj:
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj} if prefix else {}


def param_value(value: Any) -> str:
    """A param value as text, cut to MLflow's limit with a note of the full length."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if len(text) <= PARAM_VALUE_LIMIT:
        return text
    note = f"...[{len(text)} chars]"
    return text[: PARAM_VALUE_LIMIT - len(note)] + note


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def split_metrics(metrics: Mapping) -> dict[str, float]:
    """metrics.json -> {'holdout.weighted_f1': ..., 'holdout.f1.anger': ..., ...} (finite numbers only)."""
    out: dict[str, float] = {}
    for split, report in metrics.items():
        if split == "model" or not isinstance(report, Mapping):
            continue
        named = {f"{split}.{k}": report.get(k) for k in SPLIT_SCORES}
        for label, scores in (report.get("per_class") or {}).items():
            if isinstance(scores, Mapping):
                named.update({f"{split}.{k}.{label}": scores.get(k) for k in ("f1", "roc_auc")})
        named.update({f"{split}.f1.{label}": f for label, f in (report.get("per_class_f1") or {}).items()})
        out.update({clean_key(k): v for k, v in ((k, _number(v)) for k, v in named.items()) if v is not None})
    return out


def epoch_metrics(history: Any) -> list[tuple[str, float, int]]:
    """history.json (`{"epochs": [{epoch, train_loss, tune_loss, ...}]}` or a bare list) -> (key, value, step)."""
    epochs = history.get("epochs") if isinstance(history, Mapping) else history
    out: list[tuple[str, float, int]] = []
    for i, entry in enumerate(epochs if isinstance(epochs, list) else [], 1):
        if not isinstance(entry, Mapping):
            continue
        step = int(entry.get("epoch", i))
        out += [(clean_key(f"epoch.{k}"), v, step) for k, v in ((k, _number(v)) for k, v in entry.items())
                if k != "epoch" and v is not None]
    return out


def git_commit(root: Path = PROJECT_ROOT) -> str | None:
    """`git rev-parse HEAD` of the checkout, or None (no git, not a checkout)."""
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def recorded_code(run_dir: Path) -> dict[str, Any]:
    """The code version the run's stage manifests recorded (git commit, package hash); {} when none."""
    for path in sorted((run_dir / "manifests").glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            code = (read_json(path).get("provenance") or {}).get("code") or {}
        except (OSError, ValueError, AttributeError):
            continue
        if code:
            return code
    return {}


def run_tags(run_dir: Path, cfg: Mapping) -> dict[str, str]:
    """Tags of a run folder's MLflow run: task, profile, model, code version, data root, folder."""
    common = cfg.get("common") or {}
    code = recorded_code(run_dir)
    commit = code.get("git_commit") or git_commit()
    tags = {"task": common.get("task"), "profile": common.get("profile"),
            "model": (cfg.get("train") or {}).get("model"), "data_dir": cfg.get("data_dir"),
            "git_commit": commit, "mlflow.source.git.commit": commit, "git_dirty": code.get("git_dirty"),
            "package_sha256": code.get("package_sha256"), "emotions.run_dir": str(run_dir),
            "emotions.run_id": run_dir.name}
    return {k: str(v) for k, v in tags.items() if v is not None}


def artifact_files(run_dir: Path) -> dict[str, tuple[Path, str]]:
    """{relative name: (file, artifact folder)} of what a run folder shows in MLflow."""
    out: dict[str, tuple[Path, str]] = {}
    for pattern, folder in ARTIFACTS:
        for f in sorted(run_dir.glob(pattern)):
            if f.is_file():
                out[f.relative_to(run_dir).as_posix()] = (f, folder)
    return out


def read_params(run_dir: Path) -> dict:
    """The run folder's params.yaml (what run_all.py wrote: data_dir + the merged config); {} when missing."""
    path = run_dir / "params.yaml"
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}


def _batches(items: list, size: int) -> Iterable[list]:
    yield from (items[i:i + size] for i in range(0, len(items), size))


def log_batch(client: Any, run_id: str, params: Mapping[str, str] | None = None,
              metrics: Iterable[tuple[str, float, int]] = (), tags: Mapping[str, str] | None = None) -> None:
    """Params, metrics (key, value, step) and tags in batches within MLflow's per-request limits."""
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    for chunk in _batches([Param(k, v) for k, v in (params or {}).items()], BATCH_PARAMS):
        client.log_batch(run_id, params=chunk)
    for chunk in _batches([Metric(k, v, now, step) for k, v, step in metrics], BATCH_METRICS):
        client.log_batch(run_id, metrics=chunk)
    for chunk in _batches([RunTag(k, v) for k, v in (tags or {}).items()], BATCH_PARAMS):
        client.log_batch(run_id, tags=chunk)


def live_run(client: Any, run_id: str | None) -> str | None:
    """`run_id` when that run still exists (not deleted) in the store, else None."""
    if not run_id:
        return None
    try:
        run = client.get_run(run_id)
    except Exception:   # deleted for good, or another store
        return None
    return run_id if run.info.lifecycle_stage == "active" else None


def collect(run_dir: Path, cfg: Mapping) -> dict[str, Any]:
    """Everything `log_run` sends, with digests to tell what changed since the last time."""
    params = {clean_key(k): param_value(v) for k, v in flatten(dict(cfg)).items()}
    metrics_file, history_file = run_dir / "metrics.json", run_dir / "model" / "history.json"
    scores = split_metrics(read_json(metrics_file)) if metrics_file.is_file() else {}
    epochs = epoch_metrics(read_json(history_file)) if history_file.is_file() else []
    files = artifact_files(run_dir)
    return {"params": params, "scores": scores, "epochs": epochs, "files": files,
            "params_digest": stable_hash(params), "epochs_digest": stable_hash(epochs),
            "file_digests": {name: file_sha256(f) for name, (f, _) in files.items()}}


def log_run(run_dir: str | Path, cfg: Mapping | None = None, *, tracking_uri: str | None = None,
            run_name: str | None = None, register: str | None = None, strict: bool = False) -> str | None:
    """Log a pipeline run folder as one MLflow run (updated in place on later calls); returns its run id.

    `cfg`: the merged config (default: the folder's params.yaml). `register`: also log the model folder and
    register it as a version of that model name. MLflow errors print one line and return None unless `strict`.
    """
    client_class = mlflow_client_class()
    if client_class is None:
        return None
    run_dir = Path(run_dir).resolve()
    cfg = dict(cfg) if cfg is not None else read_params(run_dir)
    uri = tracking_uri or default_tracking_uri()
    try:
        return _log_run(client_class(tracking_uri=uri), uri, run_dir, cfg, run_name, register)
    except Exception as e:  # noqa: BLE001 - tracking must not break a run unless asked to
        if strict:
            raise
        print(f"tracking: could not log {run_dir.name} to {uri}: {type(e).__name__}: {e}")
        return None


def _mlflow_run(client: Any, uri: str, run_dir: Path, cfg: Mapping, record: dict, params: dict,
                run_name: str | None) -> tuple[str, dict]:
    """(run id, what was logged to it): the recorded run while it exists and its config is the same; else a
    new run with the params (an old one gets `emotions.superseded_by`, MLflow params being immutable)."""
    run_id = live_run(client, record.get("run_id"))
    if run_id and record.get("params_digest") == stable_hash(params):
        return run_id, record
    experiment = ensure_experiment(client, str((cfg.get("common") or {}).get("task") or "emotions"), uri)
    new_id = client.create_run(experiment, run_name=run_name or run_dir.name).info.run_id
    log_batch(client, new_id, params=params)
    if run_id:
        client.set_tag(run_id, "emotions.superseded_by", new_id)
    return new_id, {}


def _log_run(client: Any, uri: str, run_dir: Path, cfg: Mapping, run_name: str | None,
             register: str | None) -> str:
    path = run_dir / TRACKING_FILE
    book = read_json(path) if path.is_file() else {}
    now = collect(run_dir, cfg)
    run_id, record = _mlflow_run(client, uri, run_dir, cfg, book.get(uri) or {}, now["params"], run_name)
    logged = record.get("scores") or {}
    changed = [(k, v, 0) for k, v in now["scores"].items() if logged.get(k) != v]
    if record.get("epochs_digest") != now["epochs_digest"]:
        changed += now["epochs"]
    before, digests = record.get("files") or {}, now["file_digests"]
    files = [(f, folder) for name, (f, folder) in now["files"].items() if before.get(name) != digests[name]]
    model_digest = path_fingerprint(run_dir / "model") if register else None
    same_model = register and (record.get("registered_as"), record.get("model_digest")) == (register, model_digest)
    version = record.get("model_version") if same_model else None
    if not changed and not files and record and (version or not register):
        print(f"tracking: {run_dir.name} unchanged since it was logged (MLflow run {run_id})")
        return run_id
    log_batch(client, run_id, metrics=changed, tags=run_tags(run_dir, cfg))
    for f, folder in files:
        client.log_artifact(run_id, str(f), folder or None)
    if register and version is None:
        version = register_model(client, run_id, run_dir / "model", register)
    client.set_terminated(run_id, "FINISHED")
    book[uri] = {"run_id": run_id, "params_digest": now["params_digest"], "epochs_digest": now["epochs_digest"],
                 "scores": now["scores"], "files": digests, "registered_as": register if version else None,
                 "model_version": version, "model_digest": model_digest, "logged_at": time.strftime("%FT%T%z")}
    write_json_atomic(path, book)
    print(f"tracking: {run_dir.name} -> MLflow run {run_id} ({len(changed)} metric values, {len(files)} "
          f"artifact(s){', model version ' + str(version) if version else ''}; {uri})")
    return run_id


def register_model(client: Any, run_id: str, model_dir: Path, name: str) -> str | None:
    """Log the model folder as artifact `model` and register it as a new version of `name`."""
    if not model_dir.is_dir():
        print(f"tracking: no model folder {model_dir}; nothing registered")
        return None
    client.log_artifacts(run_id, str(model_dir), "model")
    try:
        client.create_registered_model(name)
    except Exception:   # it exists already
        pass
    source = f"{client.get_run(run_id).info.artifact_uri}/model"
    return str(client.create_model_version(name, source, run_id=run_id).version)


class SweepTracker:
    """A sweep's MLflow parent run and one child run per trial; after the first MLflow error it says so
    once and stops tracking (the sweep goes on)."""

    def __init__(self, client: Any, experiment_id: str, parent_id: str, uri: str):
        self.client, self.experiment_id, self.parent_id, self.uri = client, experiment_id, parent_id, uri
        self.on = True

    def _safely(self, what: str, fn: Any, *args: Any) -> Any:
        if not self.on:
            return None
        try:
            return fn(*args)
        except Exception as e:  # noqa: BLE001
            self.on = False
            print(f"tracking: {what} failed ({type(e).__name__}: {e}); MLflow tracking off for this sweep")
            return None

    def log_trial(self, number: int, params: Mapping[str, Any], tune_score: float | None, seconds: float,
                  study: str, failed: bool = False) -> None:
        """One child run: the trial's sampled params and its tune score (the objective)."""
        def go() -> None:
            tags = {"mlflow.parentRunId": self.parent_id, "optuna.study": study, "optuna.trial": str(number)}
            run_id = self.client.create_run(self.experiment_id, run_name=f"trial-{number}", tags=tags).info.run_id
            scores = [(k, v, 0) for k, v in (("tune.weighted_f1", tune_score), ("seconds", seconds)) if v is not None]
            log_batch(self.client, run_id, {clean_key(k): param_value(v) for k, v in params.items()}, scores)
            self.client.set_terminated(run_id, "FAILED" if failed else "FINISHED")
        self._safely(f"logging trial {number}", go)

    def finish(self, metrics: Mapping[str, float | None], params: Mapping[str, Any]) -> None:
        """The parent's summary: best tune score, its holdout, throughput; the best trial's params as tags."""
        def go() -> None:
            scores = [(k, float(v), 0) for k, v in metrics.items() if _number(v) is not None]
            log_batch(self.client, self.parent_id, metrics=scores,
                      tags={clean_key(f"best.{k}"): param_value(v) for k, v in params.items()})
            self.client.set_terminated(self.parent_id, "FINISHED")
        self._safely("closing the sweep run", go)


def sweep_tracker(task: str, study: str, settings: Mapping[str, Any], *, parent_run_id: str | None = None,
                  tracking_uri: str | None = None) -> SweepTracker | None:
    """The sweep's tracker: resumes parent run `parent_run_id` when it exists, else starts one (`settings`
    become its params). None when MLflow is missing or unreachable."""
    client_class = mlflow_client_class()
    if client_class is None:
        return None
    uri = tracking_uri or default_tracking_uri()
    try:
        client = client_class(tracking_uri=uri)
        experiment = ensure_experiment(client, task, uri)
        parent = live_run(client, parent_run_id)
        if parent is None:
            parent = client.create_run(experiment, run_name=f"sweep {study}",
                                       tags={"optuna.study": study, "emotions.kind": "sweep"}).info.run_id
            log_batch(client, parent, params={clean_key(k): param_value(v) for k, v in settings.items()})
        else:
            client.update_run(parent, "RUNNING")
    except Exception as e:  # noqa: BLE001
        print(f"tracking: MLflow at {uri} unavailable ({type(e).__name__}: {e}); the sweep runs untracked")
        return None
    return SweepTracker(client, experiment, parent, uri)


def main(argv: list[str] | None = None) -> int:
    """`python -m emotions.tracking RUN_DIR...`: log (or update) run folders in MLflow."""
    p = argparse.ArgumentParser(prog="python -m emotions.tracking", description=__doc__.split("\n")[0])
    p.add_argument("run_dirs", nargs="+", type=Path, help="run folders (runs/<id>/)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or mlruns.db)")
    p.add_argument("--register", metavar="NAME", help="also register each run's model folder under NAME")
    args = p.parse_args(argv)
    ids = [log_run(d, tracking_uri=args.tracking_uri, register=args.register) for d in args.run_dirs]
    return 0 if all(ids) else 1


if __name__ == "__main__":
    sys.exit(main())
