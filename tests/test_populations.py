"""The test file's population view: the two-step label-free rule, label mixes per population and their warnings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emotions.data.populations import label_mix, mix_warnings, population_view, reference_mix
from emotions.models.nn.accelerator import mixed_precision_for

LABELS = ["fear", "joy", "neutral"]
TOPICS = ["налоги", "футбол", "выборы", "погода", "игры", "кино", "рынок", "наука", "музыка", "город"]


def comments(n: int, offset: int = 0) -> list[str]:
    """Long written comments about a topic."""
    return [f"По-моему, статья про {TOPICS[i % 10]} номер {i + offset} вполне разумна, хотя автор спорит "
            f"с комментаторами о деталях." for i in range(n)]


def utterances(n: int, offset: int = 0) -> list[str]:
    """Short first-person spoken utterances."""
    feelings = ["мне так страшно", "ой мамочки боюсь", "ура я так рада", "блин как жутко"]
    return [f"{feelings[i % 4]} слушай {i + offset}" for i in range(n)]


def test_the_rule_finds_the_utterance_population():
    test = comments(60, 1000) + utterances(40)
    view = population_view(test, comments(120), utterances(80, 500), seed=0,
                           check_texts=utterances(10, 900) + comments(10, 900))
    got = view.population
    assert view.report["check_utterance_share"] == pytest.approx(0.5, abs=0.1)
    assert (got[:60] == "comment").mean() >= 0.9 and (got[60:] == "utterance").mean() >= 0.9
    assert view.report["counts"]["comment"] + view.report["counts"]["utterance"] == 100
    assert 0 <= view.report["comment_false_positive_rate"] <= 0.1
    frame = view.frame(test)
    assert list(frame.columns) == ["text", "population", "utterance_score"] and len(frame) == 100


def test_too_few_texts_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 2 texts"):
        population_view(["один"], ["комментарий"], [], seed=0)


def test_label_mix_and_a_warning_for_a_population_far_from_every_training_mix():
    decisions = np.array([[0, 0, 1]] * 6 + [[1, 0, 0]] * 2 + [[0, 1, 0]] * 2)
    population = ["utterance"] * 6 + ["comment"] * 4
    mix = label_mix(decisions, population, LABELS)
    assert mix.loc["utterance", "neutral"] == 1.0 and mix.loc["comment", "fear"] == 0.5
    assert mix.loc["all", "rows"] == 10 and mix.loc["utterance", "rows"] == 6
    refs = {"comments": pd.Series({"fear": 0.4, "joy": 0.5, "neutral": 0.2}),
            "utterances": pd.Series({"fear": 0.5, "joy": 0.4, "neutral": 0.05})}
    lines = mix_warnings(mix, refs, LABELS)
    assert len(lines) == 1 and lines[0].startswith("utterance rows (6): predicted 'neutral' on 100%")
    assert reference_mix(pd.DataFrame(decisions, columns=LABELS), LABELS)["neutral"] == 0.6


def test_auto_precision_is_bf16_on_a_cpu_that_has_it(monkeypatch):
    import emotions.models.nn.accelerator as T

    monkeypatch.setattr(T.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(T, "cpu_bf16_supported", lambda: True)
    assert mixed_precision_for("auto") == "bf16" and mixed_precision_for("no") == "no"
    monkeypatch.setattr(T, "cpu_bf16_supported", lambda: False)
    assert mixed_precision_for("auto") == "no"
