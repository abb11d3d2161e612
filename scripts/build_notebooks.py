#!/usr/bin/env python
"""Write the pipeline notebooks (notebooks/*.ipynb) from the cell sources below.

The notebooks are the source users open; this script keeps them consistent and
reviewable as plain Python. Re-run after editing: `python scripts/build_notebooks.py`.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

SETUP = """\
import json
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from emotions.pipeline.stage import Stage
"""


def params_cell(src: str):
    cell = new_code_cell(src.strip())
    cell.metadata["tags"] = ["parameters"]
    return cell


def nb(cells: list, name: str) -> nbformat.NotebookNode:
    for i, cell in enumerate(cells):
        cell.id = f"{name}-{i:02d}"   # stable ids: rebuilding leaves unchanged notebooks byte-identical
    book = new_notebook(cells=cells)
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    book.metadata["language_info"] = {"name": "python"}
    return book


COMMON_PARAMS = '''\
# Parameters: papermill (run_all.py) replaces this cell's values; see configs/*.yaml.
run_dir = "../runs/manual"          # run folder: every output of this stage goes here
data_dir = "../data/demo"           # data root (layout of ../shared/data)
task = "cryptonite"                 # cryptonite | cedr | emotions-en
seed = 42
'''

NOTEBOOK_SOURCES = {
    "01_eda": [
        new_markdown_cell("# 01 · Exploratory data analysis\n\n"
                          "What the task's files hold: label balance, label pairs, labels per text, text length and "
                          "alphabet per split (the cryptonite test set is speech-recognition output: lowercase, no "
                          "punctuation), and examples. Figures go to the run folder and to `img/<task>/`."),
        params_cell(COMMON_PARAMS + 'n_examples = 5                      # example texts shown per label\n'),
        new_code_cell(SETUP + """
from emotions.evaluation import plots
from emotions.data.labels import get_task
from emotions.data.prepare import raw_frames

stage = Stage("01_eda", run_dir, task=task)
spec = get_task(task)
labels = list(spec.labels)
frames = raw_frames(task, data_dir)
stage.input("data_root", Path(data_dir).resolve())
{name: len(df) for name, df in frames.items()}"""),
        new_markdown_cell("## Labels per split"),
        new_code_cell("""counts = plots.class_counts(frames, labels)
display(counts)
stage.figure(plots.plot_class_histogram(frames, labels), "eda_class_histogram")"""),
        new_markdown_cell("## Which labels come together"),
        new_code_cell("""labelled = {k: v for k, v in frames.items() if v[labels].to_numpy().any()}
first = next(iter(labelled))
display(plots.label_pairs(labelled[first], labels))
stage.figure(plots.plot_cooccurrence(labelled[first], labels, f"Label co-occurrence ({first})"), "eda_cooccurrence")
stage.figure(plots.plot_labels_per_text(frames, labels), "eda_labels_per_text")"""),
        new_markdown_cell("## Text length and alphabet per split\n\n"
                          "Training text should look like the test's: the alphabet table shows capitals, punctuation "
                          "and emoji that preprocessing removes or rewrites (emoji become Russian words)."),
        new_code_cell("""display(plots.length_stats(frames).round(1))
stage.figure(plots.plot_text_length(frames), "eda_text_length")
alphabet = plots.alphabet_table(frames)
display((alphabet * 100).round(2))
stage.figure(plots.plot_alphabet(frames), "eda_alphabet")"""),
        new_markdown_cell("## Examples"),
        new_code_cell("""df = labelled[first]
rows = []
for label in labels:
    sample = df[df[label] == 1].sample(min(n_examples, int(df[label].sum())), random_state=seed)
    rows += [{"label": label, "text": t} for t in sample["text"]]
with pd.option_context("display.max_colwidth", 120):
    display(pd.DataFrame(rows))
if "test" in frames:
    display(frames["test"][["text"]].head(n_examples))"""),
        new_code_cell("""manifest = stage.finish(rows={k: len(v) for k, v in frames.items()},
                        class_counts=counts.to_dict())
print(f"EDA done: {len(manifest['figures'])} figures")"""),
    ],
    "02_extend": [
        new_markdown_cell("# 02 · Splits and dataset extension\n\n"
                          "Builds the named splits every later stage uses: **train** (what the model learns from), "
                          "**tune** (early stopping and per-class thresholds), **holdout** (the honest score, never "
                          "used for a choice) and, for cryptonite, **test** (what we submit).\n\n"
                          "Without the competition's `train.csv` the recipe trains on part of `valid.csv` "
                          "(optionally with English GoEmotions mapped to the 7 labels, useful only to a multilingual "
                          "encoder). Extension sources (ru-izard-emotions, CEDR, GoEmotions, your CSVs) are mapped to "
                          "the task's labels; exact duplicates and near copies of tune/holdout/test texts are dropped."),
        params_cell(COMMON_PARAMS + '''splits = {}                         # split options, e.g. {"valid_train_frac": 0.5, "valid_tune_frac": 0.25}
expected_test_rows = None           # cryptonite: fail if the test file has another row count
sources = {}                        # extension sources (see configs/base.yaml, section extend.sources)
leak = {"enabled": True}            # leak control options
'''),
        new_code_cell(SETUP + """
from emotions.data.labels import get_task
from emotions.data.prepare import build_splits
from emotions.evaluation.plots import class_counts

stage = Stage("02_extend", run_dir, task=task)
labels = list(get_task(task).labels)
options = dict(splits)
if task == "cryptonite":
    options["expected_test_rows"] = expected_test_rows
parts, notes = build_splits(task, data_dir, seed=seed, **options)
stage.inputs["data_root"] = str(Path(data_dir).resolve())
for note in notes:
    print(note)
before = class_counts(parts, labels)"""),
        new_markdown_cell("## Extension (leak-controlled)"),
        new_code_cell("""enabled = {k: v for k, v in sources.items() if (v.get("enabled", True) if isinstance(v, dict) else v)}
report = {"sources": {}, "note": "no extension source enabled"}
if enabled:
    from emotions.data.extend import extend_training_set
    protect = {k: parts[k]["text"].tolist() for k in ("tune", "holdout", "test") if k in parts}
    parts["train"], report = extend_training_set(parts["train"], data_root=Path(data_dir), sources=sources,
                                                 protect=protect, labels=labels, seed=seed, leak=leak)
stage.write_json("extension_report", "extension_report.json", report)
if report.get("sources"):
    display(pd.DataFrame(report["sources"]).T)"""),
        new_code_cell("""after = class_counts(parts, labels)
display(pd.concat({"before": before, "after": after}, axis=1))
sizes = {}
for name, df in parts.items():
    stage.write_csv(name, f"data/{name}.csv", df)
    sizes[name] = len(df)
stage.finish(rows=sizes, notes=notes)
sizes"""),
    ],
    "03_augment": [
        new_markdown_cell("# 03 · Augmentation\n\n"
                          "Adds rows to the training split only: back-translation (cached), synonym replacement and "
                          "ASR-noise simulation, with a budget per class so rare classes are oversampled. "
                          "With `enabled = False` the training split passes through unchanged."),
        params_cell(COMMON_PARAMS + '''enabled = False
methods = {}                        # per-method options (see configs/base.yaml, section augment.methods)
budget = {}                         # rows to add per class, or {"auto": {...}}
'''),
        new_code_cell(SETUP + """
from emotions.data.labels import get_task
from emotions.core.paths import CACHE_DIR
from emotions.evaluation.plots import class_counts

stage = Stage("03_augment", run_dir, task=task)
labels = list(get_task(task).labels)
train = stage.read_csv("train", "data/train.csv")
report = {"enabled": enabled}
if enabled:
    from emotions.augment import augment_training_set
    train_aug, report = augment_training_set(train, labels=labels, params={"methods": methods, "budget": budget},
                                             seed=seed, cache_dir=CACHE_DIR)
else:
    train_aug = train
    print("augmentation disabled: training split passes through")
display(pd.concat({"before": class_counts({"train": train}, labels),
                   "after": class_counts({"train": train_aug}, labels)}, axis=1))"""),
        new_code_cell("""stage.write_csv("train_aug", "data/train_aug.csv", train_aug)
stage.write_json("augment_report", "augment_report.json", report)
stage.finish(rows_before=len(train), rows_after=len(train_aug))"""),
    ],
    "04_train": [
        new_markdown_cell("# 04 · Training\n\n"
                          "Trains the chosen model on the (extended, augmented) training split; early stopping and "
                          "per-class decision thresholds use the **tune** split only. The model folder is "
                          "self-contained (weights, tokenizer, labels, thresholds, preprocessing), so the submission "
                          "stage and the service load it without this notebook."),
        params_cell(COMMON_PARAMS + '''model = "baseline"                  # baseline | transformer | cnn
baseline = {}                       # options of each model kind (see configs/base.yaml, section train)
transformer = {}
cnn = {}
preprocess = {}                     # text preprocessing, stored with the model
'''),
        new_code_cell(SETUP + """
import time

from emotions.data.labels import get_task
from emotions.models import train_model

stage = Stage("04_train", run_dir, task=task)
spec = get_task(task)
train = stage.read_csv("train", "data/train_aug.csv")
tune = stage.read_csv("tune", "data/tune.csv")
options = {"baseline": baseline, "transformer": transformer, "cnn": cnn}[model]
params = {**options, "preprocess": preprocess, "seed": seed}
if model == "transformer":
    # a vocabulary-pruned encoder keeps the word pieces of every text it will see (texts only, no labels)
    params["vocab_texts"] = [t for name in ("holdout", "test") if (Path(run_dir) / f"data/{name}.csv").is_file()
                             for t in stage.read_csv(name, f"data/{name}.csv")["text"]]
print(f"model {model}: {len(train)} training rows, {len(tune)} tune rows")
t0 = time.time()
predictor = train_model(model, train, tune, spec, params, stage.output("model", "model"))
train_seconds = time.time() - t0
print(f"trained in {train_seconds:.1f}s")
pd.Series(dict(zip(predictor.labels, predictor.thresholds)), name="threshold").round(2).to_frame().T"""),
        new_code_cell("""history_file = Path(run_dir) / "model" / "history.json"
if history_file.is_file():  # neural models: loss and tune score per epoch
    from IPython.display import Image
    from emotions.evaluation.plots import plot_learning_curves
    curves = plot_learning_curves(history_file, stage.path("img/learning_curves.png"), title=f"{model}: learning curves")
    display(Image(filename=str(stage.figure(curves, "learning_curves"))))
stage.finish(model=model, train_rows=len(train), train_seconds=round(train_seconds, 1))"""),
    ],
    "05_evaluate": [
        new_markdown_cell("# 05 · Evaluation\n\n"
                          "Scores the trained model on **tune** (where its thresholds were chosen, so optimistic) and "
                          "on **holdout** (never used for any choice: the honest number). Writes `metrics.json` in the "
                          "run folder."),
        params_cell(COMMON_PARAMS),
        new_code_cell(SETUP + """
from emotions.evaluation.report import evaluate_model
from emotions.data.labels import get_task
from emotions.models import load_predictor
from emotions.evaluation.plots import plot_per_class_scores

stage = Stage("05_evaluate", run_dir, task=task)
spec = get_task(task)
predictor = load_predictor(stage.input("model", "model"))
frames = {name: stage.read_csv(name, f"data/{name}.csv") for name in ("tune", "holdout")}
metrics, proba = evaluate_model(predictor, frames)
headline = ["weighted_f1", "macro_f1", "micro_f1", "mean_roc_auc"] if spec.multilabel else \\
           ["accuracy", "macro_f1", "weighted_f1", "macro_roc_auc"]
display(pd.DataFrame({k: {h: metrics[k].get(h) for h in headline} for k in frames}).T.round(4))"""),
        new_markdown_cell("## Per class (holdout)"),
        new_code_cell("""display(pd.DataFrame(metrics["holdout"]["per_class"]).T.round(3))
stage.figure(plot_per_class_scores(metrics["holdout"], "Holdout: per-class precision, recall, F1"), "per_class_scores")"""),
        new_markdown_cell("## Precision-recall and threshold curves (holdout)\n\n"
                          "Dots and dashed lines mark the thresholds tuned on the tune split."),
        new_code_cell("""from IPython.display import Image
from emotions.evaluation.report import evaluation_figures
for name, path in evaluation_figures(predictor, frames["holdout"], proba["holdout"], stage.path("img")).items():
    display(Image(filename=str(stage.figure(path, name))))"""),
        new_code_cell("""stage.write_json("metrics", "metrics.json", metrics)
stage.finish(**{f"holdout_{h}": metrics["holdout"].get(h) for h in headline})"""),
    ],
    "06_submission": [
        new_markdown_cell("# 06 · Submission\n\n"
                          "Predicts the test file with the trained model and its tuned thresholds, checks the result "
                          "against the test file (same rows, order and text; 0/1 integer labels) and only then writes "
                          "`submissions/submission.csv` (atomically), a per-run copy `submissions/submission-<run>.csv` "
                          "and a copy in the run folder. Upload `submissions/submission.csv` to Kaggle "
                          "(`python run_all.py --submit` does it when the Kaggle CLI has credentials)."),
        params_cell(COMMON_PARAMS + '''run_id = "manual"
expected_test_rows = None           # fail if the test file has another row count
submissions_dir = "../submissions"
'''),
        new_code_cell(SETUP + """
from emotions.data.readers import load_labeled_csv
from emotions.data.labels import get_task
from emotions.models import load_predictor
from emotions.core.paths import CRYPTONITE_TEST
from emotions.pipeline.submission import make_submission, validate_submission_file, write_submission

stage = Stage("06_submission", run_dir, task=task)
labels = list(get_task(task).labels)
test_path = stage.input("test_file", Path(data_dir) / CRYPTONITE_TEST)
template = load_labeled_csv(test_path, labels, expected_rows=expected_test_rows)
predictor = load_predictor(stage.input("model", "model"))
decisions = predictor.predict(template["text"].tolist())
submission = make_submission(template, decisions, labels)
submission[labels].mean().round(3).rename("share predicted").to_frame().T"""),
        new_code_cell("""written = write_submission(submission, template, labels, run_dir=run_dir,
                           submissions_dir=submissions_dir, run_id=run_id)
validate_submission_file(written["latest"], test_path, labels)
stage.outputs["submission"] = str(written["run_copy"])
for k, p in written.items():
    print(f"{k}: {p}")
stage.finish(rows=len(submission), labels_per_text=float(submission[labels].sum(axis=1).mean()))"""),
    ],
    "07_export": [
        new_markdown_cell("# 07 · Export: ONNX and int8\n\n"
                          "Exports a trained transformer to ONNX (dynamic batch and sequence axes) and an int8 "
                          "dynamically quantised copy (onnxruntime), then checks parity against torch on holdout "
                          "texts: probability differences, label-decision agreement and weighted F1. "
                          "Serve the run with `python -m emotions.serving.service --run <run folder> --backend onnx-int8`. "
                          "Off by default (`-p export.enabled=true`); other model kinds are skipped."),
        params_cell(COMMON_PARAMS + '''enabled = False
force = False                       # replace an existing export
n_parity = 1000                     # holdout texts used for the parity check
'''),
        new_code_cell(SETUP + """
from emotions.models import read_model_card

stage = Stage("07_export", run_dir, task=task)
model_dir = stage.input("model", "model")
kind = read_model_card(model_dir)["kind"]
parity = None
if not enabled:
    print("export disabled (set export.enabled=true)")
elif kind != "transformer":
    print(f"export applies to transformer models; this run's model is {kind!r}: skipped")
else:
    from emotions.serving.export import export_onnx
    holdout = stage.input("holdout", "data/holdout.csv")
    parity = export_onnx(run_dir, force=force, reuse=not force, frame=holdout, n=n_parity)
    for name in ("model.onnx", "model.int8.onnx", "parity.json"):
        stage.outputs[name] = str(Path(run_dir) / "export" / name)
    display(pd.json_normalize(parity, sep=".").T.rename(columns={0: "value"}))"""),
        new_code_cell("""stage.finish(exported=parity is not None)"""),
    ],
    "08_ablation": [
        new_markdown_cell("# 08 · Ablation: extension and augmentation on and off\n\n"
                          "Trains the same model with each extension source and augmentation method switched on "
                          "and off (configurations in `emotions/pipeline/ablation.py`), thresholds tuned on the tune part and "
                          "weighted F1 measured on the disjoint holdout part of `valid.csv`, with a 95% paired "
                          "bootstrap interval against the first configuration. Off by default (`-p ablation.enabled=true`); "
                          "with the baseline model it takes about 10 minutes on 2 cores for all configurations."),
        params_cell(COMMON_PARAMS + '''enabled = False
configs = []                        # names from emotions.pipeline.ablation.CONFIGS (empty: all of them)
model = "baseline"                  # the model kind trained for every configuration
model_params = {}
'''),
        new_code_cell(SETUP + """
from emotions.pipeline.ablation import CONFIGS, run_ablation
from emotions.evaluation.plots import plot_ablation

stage = Stage("08_ablation", run_dir, task=task)
result = None
if not enabled:
    print(f"ablation disabled (set ablation.enabled=true); configurations: {list(CONFIGS)}")
elif task != "cryptonite":
    print("the ablation is defined for the cryptonite task: skipped")
else:
    stage.input("data_root", Path(data_dir).resolve())
    result = run_ablation(data_dir, configs or None, seed=seed, model=model, model_params=model_params)
    display(Markdown(result["markdown"]))
    stage.figure(plot_ablation(result["results"]), "ablation")
    stage.write_json("ablation", "ablation.json", result)"""),
        new_code_cell("""stage.finish(configurations=len(result["results"]) if result else 0)"""),
    ],
}


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Write the pipeline notebooks from this script's cell sources.")
    ap.add_argument("--out", type=Path, default=NOTEBOOKS, help="folder (default: notebooks/)")
    out = ap.parse_args(argv).out
    out.mkdir(parents=True, exist_ok=True)
    for name, cells in NOTEBOOK_SOURCES.items():
        path = out / f"{name}.ipynb"
        nbformat.write(nb(cells, name), path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
