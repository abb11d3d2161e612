"""The written utterances in numbers: rows per label and writer, and their near copies under leak control's rule.

    python benchmarks/utterance_data.py --data-dir ../shared/data --out benchmarks/results/utterance_data.md

Near copies are counted with leak control's own rule and defaults (emotions.data.leaks: character n-gram cosine
>= 0.50 and length ratio >= 0.6), each written row against the competition's test texts, the valid texts and the
other part (training writers vs evaluation writers). The pipeline drops every such row from training (02_extend's
report: `dropped_near_copies_by_part`); this script shows how many and a few examples, so the rule's cost on
short generic phrases is visible. Its threshold is never loosened to keep more. Last, the population rule
(emotions.data.populations) on the test file, and its recall on the evaluation writers' utterances.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from emotions.core import paths
from emotions.core.io import write_text_atomic
from emotions.data.labels import CRYPTONITE_LABELS
from emotions.data.leaks import LEAK_DEFAULTS, near_copy_mask
from emotions.data.populations import population_view
from emotions.data.utterances import WRITER_COLUMN, load_utterances
from emotions.evaluation.report import markdown_table


def per_label(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows and label counts per writer file, plus a total row."""
    table = frame.groupby(WRITER_COLUMN)[CRYPTONITE_LABELS].sum()
    table.insert(0, "rows", frame.groupby(WRITER_COLUMN).size())
    table.loc["all"] = table.sum()
    table["two labels"] = frame.assign(n=frame[CRYPTONITE_LABELS].sum(axis=1) > 1).groupby(WRITER_COLUMN)["n"].sum()
    table.loc["all", "two labels"] = int((frame[CRYPTONITE_LABELS].sum(axis=1) > 1).sum())
    return table.astype(int)


def near_copies(texts: list[str], protected: list[str]) -> tuple[int, list[tuple[str, str, float]]]:
    """(rows of `texts` that leak control would drop against `protected`, up to 5 examples)."""
    mask, match = near_copy_mask(texts, protected, float(LEAK_DEFAULTS["threshold"]),
                                 min_length_ratio=float(LEAK_DEFAULTS["min_length_ratio"]),
                                 ngram_range=tuple(LEAK_DEFAULTS["ngram_range"]))
    hits = [i for i in range(len(texts)) if mask[i]]
    return len(hits), [(texts[i], protected[match.index[i]], round(float(match.similarity[i]), 3)) for i in hits[:5]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data"), help="data root with cryptonite/")
    ap.add_argument("--out", type=Path, help="also write the report here (markdown)")
    args = ap.parse_args(argv)
    train, evaluation = load_utterances("train"), load_utterances("eval")
    test = pd.read_csv(args.data_dir / paths.CRYPTONITE_TEST, keep_default_na=False)["text"].tolist()
    valid = pd.read_csv(args.data_dir / paths.CRYPTONITE_VALID, keep_default_na=False)["text"].tolist()
    lines = ["# The written utterances (data/utterances/)", "", "## Rows per label and writer", ""]
    for name, frame in (("training writers (train/)", train), ("evaluation writers (eval/)", evaluation)):
        lines += [f"### {name}", "", markdown_table(per_label(frame), index=True), ""]
    lines += ["## Near copies under leak control's rule (threshold "
              f"{LEAK_DEFAULTS['threshold']}, length ratio >= {LEAK_DEFAULTS['min_length_ratio']})", "",
              "| written rows | against | near copies | share | examples (written / protected / cosine) |",
              "|---|---|---|---|---|"]
    for name, texts in (("train", train["text"].tolist()), ("eval", evaluation["text"].tolist())):
        against = {"test texts": test, "valid texts": valid,
                   "the other part": evaluation["text"].tolist() if name == "train" else train["text"].tolist()}
        for what, protected in against.items():
            n, examples = near_copies(texts, protected)
            shown = "; ".join(f"«{a}» / «{b}» / {s}" for a, b, s in examples[:3])
            lines.append(f"| {name} ({len(texts)}) | {what} | {n} | {n / len(texts):.1%} | {shown} |")
    view = population_view(test, valid, train["text"], seed=42, check_texts=evaluation["text"])
    r = view.report
    lines += ["", "## The population rule on the test file (emotions.data.populations, seed 42)", "",
              f"- {r['rule']}: {r['counts']['comment']} comment rows, {r['counts']['utterance']} utterance rows "
              f"({r['shares']['utterance']:.1%} of {r['rows']}); {r['seeds']} seeds from step 1",
              f"- valid rows it calls utterances (out of fold): {r['comment_false_positive_rate']:.1%}",
              f"- evaluation utterances (eval/, never seen by the rule) it calls utterances: "
              f"{r['check_utterance_share']:.1%}"]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        write_text_atomic(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
