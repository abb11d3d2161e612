"""Precision / recall of the near-copy rule of emotions.data.leaks, measured on the real data.

Setting: every ru-izard-emotions row (24,891) against every cryptonite valid + test text (14,168);
a row is a *leak* when it translates the same Reddit comment as some protected text.

Sample: ru-izard rows are drawn at random, stratified by the similarity of their nearest protected
text under the plain rule (cosine only, no length gate), several draws (`sample` column) unioned.
For every sampled row the nearest protected text under each evaluated rule (min_length_ratio in
RATIOS) is judged by hand: `same` = 1 when both texts are the same comment (same content and
details; wording, truncation, ASR errors may differ; identical short phrases count as the same),
0 when they are different comments (short generic phrase vs a different or longer comment, one
shared sentence inside otherwise different comments). Judgements: benchmarks/leak_pairs_labelled.tsv
(one line per judged pair, texts named by a sha1 prefix so that no data-set text is committed; a
row may have two pairs when the rules pick different neighbours).

Estimates: Horvitz-Thompson with the stratified design: a sampled row of plain band b stands for
N_b / n_b rows. A row is a leak when any judged pair of it is `same`. For a rule and threshold t,
TP = weighted rows flagged (score >= t) whose flagged pair is `same`; FP = the other flagged rows;
recall = TP / weighted leaks. Leaks below the lowest band edge are assumed absent (that band is
sampled too, and none was found).

    python benchmarks/leak_threshold.py --sample --seed 0                                # first draw (111 rows)
    python benchmarks/leak_threshold.py --sample --seed 1 --per-band 0,0,5,10,10,10,5,0   # second draw (40 rows)
        # --sample appends rows and the pairs every rule picks for them, with an empty `same` to fill
    python benchmarks/leak_threshold.py --add-missing   # add unjudged pairs of the evaluated rules
    python benchmarks/leak_threshold.py                  # print precision / recall tables
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from emotions.data.readers import load_cryptonite, load_izard
from emotions.data.leaks import (DEFAULT_MIN_LENGTH_RATIO, DEFAULT_NEAR_COPY_THRESHOLD,
                            match_key, nearest_protected)

PAIRS_FILE = Path(__file__).with_name("leak_pairs_labelled.tsv")
BAND_EDGES = [0.0, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80, 0.90, 1.01]
FIRST_DRAW = [6, 10, 15, 20, 20, 20, 10, 10]          # rows per band of the seed-0 draw
RATIOS = [0.0, 0.5, 0.6, 0.7]                          # min_length_ratio of the evaluated rules
THRESHOLDS = [0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90]
COLUMNS = ["sample", "izard_text", "part", "protected_text", "similarity", "length_ratio", "same"]


def bands(sim: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(BAND_EDGES, sim, side="right") - 1, 0, len(BAND_EDGES) - 2)


def length_ratio(a: str, b: str) -> float:
    la, lb = max(len(match_key(a)), 1), max(len(match_key(b)), 1)
    return min(la, lb) / max(la, lb)


def compute_matches(data_root: Path) -> tuple[pd.DataFrame, dict[float, pd.DataFrame]]:
    """ru-izard rows and, per rule, each row's nearest protected text and similarity."""
    izard = load_izard(data_root)
    _, valid, test = load_cryptonite(data_root)
    protected = pd.concat([valid.assign(part="valid"), test.assign(part="test")], ignore_index=True)
    texts, ptexts = izard["text"].tolist(), protected["text"].tolist()
    out = {}
    for r in RATIOS:
        t0 = time.perf_counter()
        m = nearest_protected(texts, ptexts, min_length_ratio=r)
        j = np.maximum(m.index, 0)
        out[r] = pd.DataFrame({"izard_text": texts, "similarity": m.similarity,
                               "part": protected["part"].to_numpy()[j],
                               "protected_text": np.where(m.index >= 0, protected["text"].to_numpy()[j], "")})
        print(f"min_length_ratio={r}: nearest protected text of {len(texts)} rows vs {len(ptexts)} "
              f"in {time.perf_counter() - t0:.1f}s")
    return izard, out


FILE_COLUMNS = ["sample", "izard_key", "part", "protected_key", "similarity", "length_ratio", "same"]


def text_key(text: str) -> str:
    """The judgement file names texts by a hash, so no text of the data sets is committed."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def read_pairs(path: Path, matches: dict[float, pd.DataFrame]) -> pd.DataFrame:
    """Judged pairs with their texts looked up (by hash) in the data root's matches."""
    if not path.exists():
        return pd.DataFrame(columns=COLUMNS)
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    lookup = {text_key(t): t for m in matches.values() for col in ("izard_text", "protected_text") for t in m[col]}
    df["izard_text"], df["protected_text"] = df["izard_key"].map(lookup), df["protected_key"].map(lookup)
    unknown = df["izard_text"].isna() | df["protected_text"].isna()
    if unknown.any():
        raise SystemExit(f"{path}: {int(unknown.sum())} pair(s) name texts that are not in this data root")
    return df[COLUMNS]


def write_pairs(df: pd.DataFrame, path: Path) -> None:
    out = df.assign(izard_key=df["izard_text"].map(text_key), protected_key=df["protected_text"].map(text_key))
    out[FILE_COLUMNS].to_csv(path, sep="\t", index=False, quoting=csv.QUOTE_MINIMAL)


def pair_row(sample: str, izard_text: str, m: pd.Series) -> dict:
    return {"sample": sample, "izard_text": izard_text, "part": m["part"], "protected_text": m["protected_text"],
            "similarity": f"{m['similarity']:.4f}", "length_ratio": f"{length_ratio(izard_text, m['protected_text']):.2f}",
            "same": ""}


def draw(matches: dict[float, pd.DataFrame], pairs: pd.DataFrame, seed: int, per_band: list[int]) -> pd.DataFrame:
    """Add `per_band` new random rows per plain band (rows not sampled before)."""
    plain = matches[0.0]
    b = bands(plain["similarity"].to_numpy())
    taken = set(pairs["izard_text"])
    rng = np.random.default_rng(seed)
    new = []
    for k, n in enumerate(per_band):
        idx = [i for i in np.flatnonzero(b == k) if plain["izard_text"].iat[i] not in taken]
        for i in rng.choice(idx, size=min(n, len(idx)), replace=False):
            new.append(pair_row(f"s{seed}", plain["izard_text"].iat[i], plain.iloc[i]))
    return pd.concat([pairs, pd.DataFrame(new, columns=COLUMNS)], ignore_index=True)


def add_missing(matches: dict[float, pd.DataFrame], pairs: pd.DataFrame) -> pd.DataFrame:
    """For every sampled row, add the pair each rule picks when it is not judged yet."""
    known = set(zip(pairs["izard_text"], pairs["protected_text"]))
    sample_of = dict(zip(pairs["izard_text"], pairs["sample"]))
    first_index = {t: i for i, t in reversed(list(enumerate(matches[0.0]["izard_text"])))}
    new = []
    for text in dict.fromkeys(pairs["izard_text"]):
        i = first_index[text]
        for r, m in matches.items():
            row = m.iloc[i]
            if row["protected_text"] and (text, row["protected_text"]) not in known:
                known.add((text, row["protected_text"]))
                new.append(pair_row(sample_of[text], text, row))
    print(f"added {len(new)} pair(s) to judge")
    return pd.concat([pairs, pd.DataFrame(new, columns=COLUMNS)], ignore_index=True)


def evaluate(matches: dict[float, pd.DataFrame], pairs: pd.DataFrame) -> dict[float, pd.DataFrame]:
    plain = matches[0.0]
    first_index = {t: i for i, t in reversed(list(enumerate(plain["izard_text"])))}
    population = np.bincount(bands(plain["similarity"].to_numpy()), minlength=len(BAND_EDGES) - 1)
    rows = list(dict.fromkeys(pairs["izard_text"]))
    idx = np.array([first_index[t] for t in rows])
    row_band = bands(plain["similarity"].to_numpy()[idx])
    n_band = np.bincount(row_band, minlength=len(population))
    weight = population[row_band] / n_band[row_band]
    judged = {(a, b): s for a, b, s in zip(pairs["izard_text"], pairs["protected_text"], pairs["same"])}
    is_leak = np.array([any(judged.get((t, p)) == "1" for (t2, p) in judged if t2 == t) for t in rows])
    leaks = float((weight * is_leak).sum())
    print(f"sampled rows: {len(rows)} ({int(is_leak.sum())} leaks); judged pairs: "
          f"{sum(v in ('0', '1') for v in judged.values())}; estimated leaks in ru-izard: {leaks:.0f} "
          f"of {len(plain)} rows")
    print("plain-band population / sampled / leaks: " + ", ".join(
        f"[{BAND_EDGES[k]:.1f},{min(BAND_EDGES[k + 1], 1):.1f}) {population[k]}/{n_band[k]}/"
        f"{int(is_leak[row_band == k].sum())}" for k in range(len(population))))
    tables = {}
    for r, m in matches.items():
        sim = m["similarity"].to_numpy()[idx]
        label = np.array([judged.get((t, p), "") for t, p in zip(rows, m["protected_text"].to_numpy()[idx])])
        out = []
        for t in THRESHOLDS:
            flagged = sim >= t
            unjudged = int((flagged & ~np.isin(label, ["0", "1"])).sum())
            tp = float((weight * (flagged & (label == "1"))).sum())
            fp = float((weight * (flagged & (label == "0"))).sum())
            out.append({"threshold": t, "precision": round(tp / (tp + fp), 3) if tp + fp else float("nan"),
                        "recall": round(tp / leaks, 3) if leaks else float("nan"),
                        "rows_flagged": int((m["similarity"].to_numpy() >= t).sum()),
                        "est_true": round(tp), "est_false": round(fp), "unjudged": unjudged})
        tables[r] = pd.DataFrame(out)
    return tables


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--pairs", type=Path, default=PAIRS_FILE)
    ap.add_argument("--sample", action="store_true", help="draw more rows (appends to --pairs)")
    ap.add_argument("--per-band", default=",".join(map(str, FIRST_DRAW)))
    ap.add_argument("--add-missing", action="store_true", help="add the unjudged pairs of every rule")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    _, matches = compute_matches(args.data_root)
    pairs = read_pairs(args.pairs, matches)
    if args.sample or args.add_missing:
        if args.sample:
            pairs = draw(matches, pairs, args.seed, [int(x) for x in args.per_band.split(",")])
        pairs = add_missing(matches, pairs)
        write_pairs(pairs, args.pairs)
        print(f"{args.pairs}: {len(pairs)} pairs, {int((pairs['same'] == '').sum())} to judge")
        return
    for r, table in evaluate(matches, pairs).items():
        print(f"\n### min_length_ratio = {r}" + ("  (default)" if r == DEFAULT_MIN_LENGTH_RATIO else ""))
        print(table.to_string(index=False))
    print(f"\ndefaults in emotions/data/leaks.py: threshold {DEFAULT_NEAR_COPY_THRESHOLD}, "
          f"min_length_ratio {DEFAULT_MIN_LENGTH_RATIO}")


if __name__ == "__main__":
    main()
