"""What every stage notebook does first and last: resolve its folders and start the stage; show a summary table.

`start()` turns the `parameters` cell's literals into folders (`emotions.core.locations.resolve`: the
project root's `runs/manual` and `data/demo` by default, the Kaggle layout when there is one), keeps
known noise out of the executed notebook (tqdm's "IProgress not found" warning; progress bars are plain
text, see `emotions.core.progress`) and returns the `Stage`. `summary()` is the notebook's last output:
a short table of key numbers, outputs and figures, instead of the manifest's full dict.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from ..core.locations import Locations, resolve
from .catalog import RunCatalog
from .stage import Stage


def quiet() -> None:
    """Silence warnings that say nothing about the results (tqdm asking for ipywidgets, MarianMT's
    tokenizer recommending sacremoses, which it does not use for Russian or English)."""
    from tqdm import TqdmWarning

    warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)
    warnings.filterwarnings("ignore", message="Recommended: pip install sacremoses")


def start(name: str, run_dir: str | Path | None, data_dir: str | Path | None, task: str,
          submissions_dir: str | Path | None = None) -> tuple[Stage, Locations]:
    """(the stage, its resolved folders); prints where it reads and writes."""
    quiet()
    where = resolve(run_dir, data_dir, task, submissions_dir)
    stage = Stage(name, where.run_dir, task=task)
    print(f"{name}: data {where.data_dir} -> run folder {where.run_dir}" + (" (Kaggle)" if where.kaggle else ""))
    return stage, where


def section_of(stage: str) -> str:
    """'04_train' -> 'train' (the config section holding that stage's parameters)."""
    return stage.split("_", 1)[1] if "_" in stage and stage.split("_", 1)[0].isdigit() else stage


def stage_config(name: str, namespace: Mapping[str, Any]) -> dict:
    """The run's config as stage `name`'s parameters cell holds it (run_all.py injects the merged values): the
    common keys, the stage's own section and any whole section the cell names; the schema fills the rest."""
    from .schema import Common, Config, validate_config

    section = section_of(name)
    keys = Config.model_fields[section].annotation.model_fields if section in Config.model_fields else {}
    cfg: dict[str, Any] = {"common": {k: namespace[k] for k in Common.model_fields if k in namespace},
                           section: {k: namespace[k] for k in keys if k in namespace}}
    cfg.update({k: namespace[k] for k in Config.model_fields
                if k not in (section, "common") and isinstance(namespace.get(k), dict)})
    return validate_config(cfg)


@dataclass
class NotebookStage:
    """A notebook's stage: its manifest (`stage`), typed config, run-folder catalog and folders."""

    stage: Stage
    cfg: Any
    catalog: RunCatalog
    where: Locations

    def run(self, **given: Any):
        """Run the stage function (emotions.pipeline.stages) on the run folder's files."""
        from .stages import run_stage

        return run_stage(self.stage.name, self.cfg, self.catalog, **given)

    def finish(self, result, **extra: Any) -> pd.DataFrame:
        """Write the manifest with the result's report (+ `extra`) and return the summary table."""
        return summary(self.stage.finish(**result.report, **extra))


def begin(name: str, namespace: Mapping[str, Any]) -> NotebookStage:
    """What a stage notebook does first: resolve its folders from the parameters cell, build its config."""
    from .stages import as_config

    stage, where = start(name, namespace.get("run_dir"), namespace.get("data_dir"), namespace["task"],
                         namespace.get("submissions_dir"))
    return NotebookStage(stage, as_config(stage_config(name, namespace)), RunCatalog(stage, where.data_dir), where)


def _short(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, (dict, list, tuple)):
        text = ", ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else \
            ", ".join(map(str, value))
        return text if len(text) <= 120 else text[:117] + "..."
    return value


def summary(manifest: dict) -> pd.DataFrame:
    """The stage's key numbers, outputs, figures and time as a two-column table."""
    rows = [(k, _short(v)) for k, v in manifest.get("metrics", {}).items()]
    if manifest.get("outputs"):
        rows.append(("outputs", ", ".join(manifest["outputs"])))
    if manifest.get("figures"):
        rows.append(("figures", ", ".join(Path(f).name for f in manifest["figures"])))
    rows.append(("seconds", manifest.get("seconds")))
    table = pd.DataFrame(rows, columns=["", manifest.get("stage", "stage")]).set_index("")
    table.index.name = None
    return table


def show(path: str | Path) -> None:
    """Display a saved figure once, whatever the matplotlib backend (open pyplot figures are closed, so
    the inline backend does not draw them a second time)."""
    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    plt.close("all")
    display(Image(filename=str(path)))
