"""The ablation runs configurations on the demo data and compares them on the holdout."""

import pytest

from emotions.pipeline.ablation import CONFIGS, run_ablation
from emotions.core.paths import DEMO_DATA_DIR
from emotions.evaluation.plots import plot_ablation, plt


def test_ablation_on_demo_data(tmp_path):
    res = run_ablation(DEMO_DATA_DIR, ["train only", "+izard"], cache_dir=tmp_path, progress=lambda m: None)
    first, izard = res["results"]
    assert first["rows_train"] == res["split_sizes"]["train"]
    assert izard["rows_train"] > first["rows_train"]
    # the demo's ru-izard set holds deliberate copies/paraphrases of valid and test texts
    assert izard["leaked_rows_removed"]["izard"] + izard["exact_duplicates_removed"]["izard"] > 0
    lo, hi = izard["holdout_delta_vs_first"]["ci95"]
    assert lo <= izard["holdout_delta_vs_first"]["delta"] <= hi
    assert "| +izard |" in res["markdown"]
    plt.close(plot_ablation(res["results"]))


def test_unknown_configuration_is_named():
    with pytest.raises(ValueError, match="unknown ablation config"):
        run_ablation(DEMO_DATA_DIR, ["+nope"])
    assert "train only" in CONFIGS
