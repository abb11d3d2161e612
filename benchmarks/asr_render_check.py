"""Check the ASR-style renderer against the real test transcripts: character and word statistics side by side.

    python benchmarks/asr_render_check.py [--data-dir ../shared/data] [--seed 0] [-p p_phonetic=0.03 ...]

Columns: the unlabelled test file (real ASR output), valid.csv only normalised (lowercase, no punctuation,
[ИМЯ] -> имя), valid.csv rendered by `render_asr` with the default (or given) parameters, the same with the
augmentation's much higher error rates (ASR_NOISE_DEFAULTS), and valid.csv as it is. The lexicon is
navec's 250k-word vocabulary (shipped with natasha): the share of Cyrillic words outside it is a proxy for
recognition errors. Record: benchmarks/results/asr_render_check.txt.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from emotions.augment.asr_noise import ASR_NOISE_DEFAULTS
from emotions.augment.asr_render import ASR_RENDER_DEFAULTS, ASR_RENDER_SEED, render_texts, text_style_stats
from emotions.core.paths import PROJECT_ROOT


def lexicon() -> set[str] | None:
    try:
        from emotions.data.word_vectors import load_navec

        return {w.replace("ё", "е") for w in load_navec().vocab.words}
    except Exception as e:  # natasha/navec missing: the table goes without that row
        print(f"(no lexicon: {e})", file=sys.stderr)
        return None


def parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=PROJECT_ROOT.parent / "shared" / "data")
    ap.add_argument("--seed", type=int, default=ASR_RENDER_SEED)
    ap.add_argument("-p", dest="params", action="append", default=[], metavar="KEY=VALUE",
                    help="a rendering parameter other than its default (repeatable)")
    args = ap.parse_args(argv)
    root = args.data_dir / "cryptonite"
    test = pd.read_csv(root / "test_without_answers.csv", keep_default_na=False)["text"].tolist()
    valid = pd.read_csv(root / "valid.csv", keep_default_na=False)["text"].tolist()
    params = {k: parse_value(v) for k, v in (p.split("=", 1) for p in args.params)}
    t0 = time.perf_counter()
    normalised = render_texts(valid, args.seed, {**{k: 0.0 for k in ASR_RENDER_DEFAULTS if k.startswith("p_")}})
    rendered = render_texts(valid, args.seed, params)
    heavy = render_texts(valid, args.seed, {k: v for k, v in ASR_NOISE_DEFAULTS.items() if k.startswith("p_")})
    seconds = time.perf_counter() - t0
    lex = lexicon()
    table = pd.DataFrame({"test (real ASR)": text_style_stats(test, lex),
                          "valid normalised": text_style_stats(normalised, lex),
                          "valid rendered": text_style_stats(rendered, lex),
                          "valid, augmentation rates": text_style_stats(heavy, lex),
                          "valid raw": text_style_stats(valid, lex)})
    used = {**ASR_RENDER_DEFAULTS, **params}
    print(f"ASR rendering check: seed {args.seed}, parameters "
          + ", ".join(f"{k}={v}" for k, v in used.items() if k != "dictionary_paths"))
    print(f"rendered {3 * len(valid)} texts in {seconds:.1f}s\n")
    with pd.option_context("display.width", 160, "display.max_columns", 10, "display.max_colwidth", 30):
        print(table.map(lambda v: f"{v:.0f}" if v >= 100 else f"{v:.3f}").to_string())
    changed = sum(a != b for a, b in zip(normalised, rendered)) / max(len(valid), 1)
    print(f"\nshare of valid texts the errors changed: {changed:.3f}")
    print("examples (normalised -> rendered):")
    shown = 0
    for a, b in zip(normalised, rendered):
        if a != b and 5 <= len(a.split()) <= 14:
            print(f"  {a}\n  -> {b}")
            shown += 1
            if shown == 6:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
