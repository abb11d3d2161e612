"""What every stage notebook does first and last: resolve its folders and start the stage; show a summary table.

`start()` turns the `parameters` cell's literals into folders (`emotions.core.locations.resolve`: the
project root's `runs/manual` and `data/demo` by default, the Kaggle layout when there is one), keeps
known noise out of the executed notebook (tqdm's "IProgress not found" warning; progress bars are plain
text, see `emotions.core.progress`) and returns the `Stage`. `summary()` is the notebook's last output:
a short table of key numbers, outputs and figures, instead of the manifest's full dict.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.locations import Locations, resolve
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
