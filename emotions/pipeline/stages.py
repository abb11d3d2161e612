"""One function per stage, in the style of a Kedro node: the run's merged config and named inputs in, named
outputs and a small report out.

The names are the catalog's (`emotions.pipeline.catalog.CATALOG`): a stage's inputs are its function's
keyword parameters (a default of None: optional), its outputs are declared with `@stage`. `run_stage`
loads the inputs from a catalog, calls the function and saves the outputs; the notebooks call it with the
run folder's catalog, `run_chain` (run_all's chain in memory: the ablation, benchmarks and sweeps) with a
memory catalog, so a fix here reaches every caller. A folder output (the model) is handed to the function as
the keyword `<name>_dir`. The functions only compose the steps of `emotions.pipeline.steps`.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd

from ..core.paths import CACHE_DIR
from .catalog import CATALOG, SPLITS, MemoryCatalog, dataset
from .schema import Config
from . import steps


@dataclass
class StageResult:
    """What a stage returns: `outputs` (catalog name -> value, saved by `run_stage`), `report` (the manifest's
    key numbers) and `views` (in-memory values a notebook shows but nothing stores)."""

    outputs: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    views: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StageSpec:
    name: str
    func: Callable[..., StageResult]
    outputs: tuple[str, ...]

    @property
    def inputs(self) -> dict[str, bool]:
        """Input name -> required: the keyword parameters named in the catalog (a default: optional)."""
        params = inspect.signature(self.func).parameters.values()
        return {p.name: p.default is inspect.Parameter.empty for p in params if p.name in CATALOG}


STAGES: dict[str, StageSpec] = {}


def stage(name: str, outputs: tuple[str, ...] = ()) -> Callable:
    """Register a stage function under its notebook's name (e.g. "04_train") with its output names."""
    def register(func: Callable[..., StageResult]) -> Callable[..., StageResult]:
        for out in outputs:
            dataset(out)
        STAGES[name] = StageSpec(name, func, outputs)
        return func
    return register


def as_config(cfg: Mapping | Config) -> Config:
    """The typed merged config (every default from the schema)."""
    return cfg if isinstance(cfg, Config) else Config.model_validate(dict(cfg))


def run_stage(name: str, cfg: Mapping | Config, catalog: MemoryCatalog, **given: Any) -> StageResult:
    """Load stage `name`'s inputs from `catalog`, run it with the typed config, save its outputs; `given`:
    arguments passed as they are (e.g. the extension's splits made already)."""
    spec = STAGES[name]
    kwargs = dict(given)
    for key, required in spec.inputs.items():
        if required or catalog.exists(key):
            kwargs[key] = catalog.load(key)
    params = inspect.signature(spec.func).parameters
    kwargs.update({f"{o}_dir": catalog.path(o) for o in spec.outputs if f"{o}_dir" in params})
    if "cache_dir" in params:   # where slow steps keep what they computed (back-translations)
        kwargs["cache_dir"] = catalog.cache_dir
    result = spec.func(as_config(cfg), **kwargs)
    unknown = set(result.outputs) - set(spec.outputs)
    if unknown:
        raise RuntimeError(f"stage {name} returned undeclared output(s) {sorted(unknown)}")
    for key, value in result.outputs.items():
        catalog.save(key, value)
    return result


def off(section: str, what: str) -> StageResult:
    """The result of a stage switched off: it says so, and how to switch it on."""
    how = f"-p {section}.enabled=true switches it on"
    print(f"{what} is off; {how}")
    return StageResult(report={"off": how})


@stage("01_eda", outputs=("test_populations",))
def eda_stage(cfg: Config, *, data_root: Path, utterances: Path | None = None) -> StageResult:
    """The task's files as they are, their class counts and (cryptonite) the test's two populations."""
    from ..data.labels import get_task
    from ..data.prepare import raw_frames
    from ..evaluation.plots import class_counts

    task, labels = cfg.common.task, list(get_task(cfg.common.task).labels)
    frames = raw_frames(task, data_root)
    counts = class_counts(frames, labels)
    outputs, views = {}, {"frames": frames, "counts": counts, "labels": labels}
    report: dict[str, Any] = {"rows": {k: len(v) for k, v in frames.items()}, "class_counts": counts.to_dict()}
    if task == "cryptonite" and {"valid", "test"} <= set(frames) and utterances is not None:
        from ..data.populations import population_view
        from ..data.utterances import load_utterances

        view = population_view(frames["test"]["text"], frames["valid"]["text"],
                               load_utterances("train", utterances)["text"], cfg.common.seed)
        outputs["test_populations"] = view.frame(frames["test"]["text"])
        views["populations"] = view.report
        report["test_populations"] = view.report["counts"]
    return StageResult(outputs=outputs, report=report, views=views)


@stage("02_extend", outputs=(*SPLITS, "extension_report"))
def extend_stage(cfg: Config, *, data_root: Path, utterances: Path | None = None,
                 parts: dict | None = None) -> StageResult:
    """Split the task's files (or take `parts`, splits made already), then add the enabled extension sources
    to train (leak-controlled against every other split). `utterances` (read through the data root) is an input
    so that a change of the written utterances re-runs this stage."""
    from ..data.labels import get_task
    from ..evaluation.plots import class_counts

    task, seed, ext = cfg.common.task, cfg.common.seed, cfg.extend
    notes: list[str] = []
    if parts is None:
        parts, notes = steps.split_data(task, data_root, seed, ext.splits.model_dump(exclude_none=True),
                                        cfg.common.expected_test_rows)
    labels = list(get_task(task).labels)
    before = class_counts(parts, labels)
    parts, report = steps.extend(parts, task, data_root, ext.sources.model_dump(), seed, ext.leak.model_dump())
    return StageResult(outputs={**parts, "extension_report": report},
                       report={"rows": {k: len(v) for k, v in parts.items()}, "notes": notes},
                       views={"before": before, "after": class_counts(parts, labels), "notes": notes})


@stage("03_augment", outputs=("train_aug", "augment_report"))
def augment_stage(cfg: Config, *, train, cache_dir: Path = CACHE_DIR) -> StageResult:
    """Augmented training rows (the rows unchanged when augmentation is off)."""
    aug = cfg.augment
    rows, report = steps.augment(train, cfg.common.task, aug.enabled, aug.methods.model_dump(), aug.budget,
                                 cfg.common.seed, cache_dir)
    if not aug.enabled:
        print("augmentation is off: the training split passes through (switch it on with -p augment.enabled=true)")
    from ..data.labels import get_task
    from ..evaluation.plots import class_counts

    labels = list(get_task(cfg.common.task).labels)
    return StageResult(outputs={"train_aug": rows, "augment_report": report},
                       report={"rows_before": len(train), "rows_after": len(rows)},
                       views={"before": class_counts({"train": train}, labels),
                              "after": class_counts({"train": rows}, labels)})


@stage("04_train", outputs=("model", "label_issues", "self_training"))
def train_stage(cfg: Config, *, train_aug, tune, model_dir: Path, tune_utterances=None, test=None) -> StageResult:
    """Clean likely label errors (if asked), train the configured model kind and tune its thresholds."""
    task, section, kind = cfg.common.task, cfg.train, cfg.train.model
    preprocess = cfg.preprocess.model_dump()
    rows, issues, issues_info = steps.clean_labels(train_aug, task, section.label_issues.model_dump(),
                                                   cfg.common.seed, preprocess, kind)
    others = {k: v for k, v in (("test", test), ("tune_utterances", tune_utterances)) if v is not None}
    model_seed = cfg.common.seed if section.model_seed is None else section.model_seed
    print(f"model {kind}: {len(rows)} training rows, {len(tune)} tune rows")
    t0 = time.time()
    predictor = steps.train(kind, rows, tune, task, getattr(section, kind).model_dump(exclude_unset=True),
                            preprocess, model_seed, model_dir, steps.vocab_texts(others), section.threshold_split,
                            steps.unlabelled_texts(others), section.self_training.model_dump(),
                            section.ensemble_size, tune_utterances, section.utterance_share)
    seconds = time.time() - t0
    outputs: dict[str, Any] = {"model": predictor}
    if issues is not None:   # cleanlab's suspects, worst first
        outputs["label_issues"] = issues[issues["issue"]]
    if predictor.self_training:
        outputs["self_training"] = predictor.self_training
    report = {"model": kind, "train_rows": len(rows), "train_seconds": round(seconds, 1),
              "threshold_split": section.threshold_split, "ensemble_size": section.ensemble_size,
              **{f"label_issues_{k}": v for k, v in issues_info.items()},
              **steps.self_training_summary(predictor.self_training)}
    return StageResult(outputs=outputs, report=report, views={"predictor": predictor, "issues": issues_info})


def as_predictor(model: Any):
    """A trained predictor from what a catalog holds: the object itself, or its folder."""
    from ..models import Predictor, load_predictor

    return model if isinstance(model, Predictor) else load_predictor(model)


@stage("05_evaluate", outputs=("metrics", "predictions_tune", "predictions_holdout"))
def evaluate_stage(cfg: Config, *, model, tune, holdout, tune_utterances=None,
                   holdout_utterances=None) -> StageResult:
    """Score every labelled split (and their ASR-style renderings) with the model's own thresholds."""
    predictor = as_predictor(model)
    frames = {k: v for k, v in (("tune", tune), ("holdout", holdout), ("tune_utterances", tune_utterances),
                                ("holdout_utterances", holdout_utterances)) if v is not None}
    if cfg.evaluate.asr:
        frames = steps.with_asr_splits(frames)   # + tune_asr, holdout_asr (fixed seed: the same rows every run)
    metrics, proba = steps.evaluate(predictor, frames, cfg.train.utterance_share)
    headline = steps.headline_metrics(predictor.multilabel)
    report = {**{f"holdout_{h}": metrics["holdout"].get(h) for h in headline},
              **{f"{k}_weighted_f1": metrics[k]["weighted_f1"] for k in metrics
                 if k.endswith("_asr") or k in ("holdout_utterances", "holdout_mixed")}}
    from ..evaluation.errors import predictions_frame

    outputs: dict[str, Any] = {"metrics": metrics}
    for name in ("tune", "holdout"):   # per text: gold, predicted labels, probabilities (the error analysis)
        outputs[f"predictions_{name}"] = predictions_frame(
            frames[name]["text"].tolist(), frames[name][predictor.labels].to_numpy(), proba[name],
            predictor.thresholds, predictor.labels, pred=predictor.decide(proba[name]))
    return StageResult(outputs=outputs, report=report,
                       views={"predictor": predictor, "frames": frames, "proba": proba, "headline": headline})


@stage("06_submission", outputs=("submission", "ensemble"))
def submission_stage(cfg: Config, *, model, test_file: Path, valid_file: Path, utterances: Path,
                     test_populations=None) -> StageResult:
    """The test file with its labels filled by this run's model (or its average with `ensemble_runs`), checked;
    the predicted label shares per test population against the training mixes."""
    from ..data.labels import get_task
    from ..data.populations import label_mix, mix_warnings, population_view, reference_mix
    from ..data.readers import load_labeled_csv
    from ..data.utterances import load_utterances
    from .submission import make_submission, validate_submission

    labels = list(get_task(cfg.common.task).labels)
    template = load_labeled_csv(test_file, labels, expected_rows=cfg.common.expected_test_rows)
    predictor, outputs = as_predictor(model), {}
    if cfg.submission.ensemble_runs:   # this run's model averaged with other runs'; thresholds re-tuned on tune
        from .combine_runs import combine_runs

        run_dir = Path(model).parent
        predictor, outputs["ensemble"] = combine_runs(run_dir, cfg.submission.ensemble_runs, runs_dir=run_dir.parent)
    decisions = predictor.predict(template["text"].tolist())
    submission = make_submission(template, decisions, labels)
    validate_submission(submission, template, labels)
    valid, written = load_labeled_csv(valid_file, labels), load_utterances("train", utterances, labels)
    if test_populations is not None and len(test_populations) == len(template):   # 01_eda's view of the test
        population = test_populations["population"].to_numpy()
    else:
        population = population_view(template["text"], valid["text"], written["text"], cfg.common.seed).population
    mix = label_mix(decisions, population, labels)
    references = {"comments (valid)": reference_mix(valid, labels), "utterances (written)": reference_mix(written, labels)}
    warnings = mix_warnings(mix, references, labels)
    shown = pd.concat([mix, pd.DataFrame(references).T.assign(rows=[len(valid), len(written)])])
    counts = {p: int((population == p).sum()) for p in dict.fromkeys(population)}
    report = {"rows": len(submission), "labels_per_text": float(submission[labels].sum(axis=1).mean()),
              "ensemble_runs": len(cfg.submission.ensemble_runs) + 1 if cfg.submission.ensemble_runs else 0,
              "population_rows": counts, "population_warnings": len(warnings),
              **{f"predicted_share_{p}": mix.loc[p, labels].round(3).to_dict() for p in counts if p in mix.index}}
    return StageResult(outputs={"submission": submission, **outputs}, report=report,
                       views={"template": template, "label_mix": shown, "warnings": warnings, "labels": labels,
                              "ensemble": outputs.get("ensemble")})


@stage("07_export", outputs=("export",))
def export_stage(cfg: Config, *, model, holdout, export_dir: Path) -> StageResult:
    """ONNX fp32 + int8 export of a transformer run, with its parity report (off by default)."""
    if not cfg.export.enabled:
        return off("export", "the ONNX export")
    from ..models import read_model_card

    model_dir = Path(model)
    kind = read_model_card(model_dir)["kind"]
    if kind != "transformer":
        print(f"export applies to transformer models; this run's model is {kind!r}: skipped")
        return StageResult(report={"off": f"model kind {kind} (export needs train.model=transformer)"})
    from ..serving.export import export_onnx

    holdout_csv = model_dir.parent / dataset("holdout").path
    parity = export_onnx(model_dir.parent, force=cfg.export.force, reuse=not cfg.export.force, frame=holdout_csv,
                         n=cfg.export.n_parity)
    return StageResult(outputs={"export": export_dir}, report={"exported": True},
                       views={"parity": parity})


@stage("08_ablation", outputs=("ablation",))
def ablation_stage(cfg: Config, *, data_root: Path) -> StageResult:
    """The run's own config with each extension source and augmentation method on and off (off by default)."""
    if not cfg.ablation.enabled:
        return off("ablation", "the ablation")
    if cfg.common.task != "cryptonite":
        print("the ablation is defined for the cryptonite task: skipped")
        return StageResult(report={"off": "task is not cryptonite"})
    from .ablation import run_ablation

    section = cfg.ablation
    result = run_ablation(data_root, section.configs or None, seed=cfg.common.seed, model=section.model,
                          model_params=section.model_params, base=cfg.model_dump())
    return StageResult(outputs={"ablation": result}, report={"configurations": len(result["results"])},
                       views={"result": result})


CHAIN = ("02_extend", "03_augment", "04_train", "05_evaluate")


def run_chain(cfg: Mapping | Config, data_dir: str | Path, out_dir: str | Path, *, parts: dict | None = None,
              cache_dir: Path = CACHE_DIR) -> dict:
    """The chain run_all.py runs (extend -> augment -> train -> evaluate), in memory, through the same stage
    functions; `parts`: splits made already (the extension then starts from them). Returns the parts, reports,
    predictor, metrics and probabilities."""
    cfg = as_config(cfg)
    catalog = MemoryCatalog(data_dir, out_dir, cache_dir=cache_dir)
    results = {name: run_stage(name, cfg, catalog, **({"parts": dict(parts)} if parts and name == CHAIN[0] else {}))
               for name in CHAIN}
    values = catalog.values
    evaluated = results["05_evaluate"].views
    return {"parts": {**{k: values[k] for k in SPLITS if k in values}, "train": values["train_aug"]},
            "extension_report": values["extension_report"], "augment_report": values["augment_report"],
            "predictor": evaluated["predictor"], "metrics": values["metrics"], "proba": evaluated["proba"],
            "self_training": values.get("self_training")}
