#!/usr/bin/env python
"""Generate the synthetic demo data root (`data/demo/` by default).

The demo root mirrors the layout and formats of the real data root
(`../shared/data/`, see its README) with small, hand-written data, so that the
project's default run works without any real data. Every sentence comes from the
data files in `scripts/demo_sentences/` (written for this project; formats in its
README): one TSV of hand-written sentences per data set, plus `templates.json`,
whose slot-filling templates are expanded to reach the row counts. Output is
deterministic (fixed seeds, file order, no hash-order dependence): running the
script twice gives byte-identical files.

Usage:
    python scripts/make_demo_data.py [--out DIR]    # default DIR: data/demo
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
from pathlib import Path

import pandas as pd

SEED = 20240219
PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = PROJECT_ROOT / "data" / "demo"
SOURCE_DIR = Path(__file__).resolve().parent / "demo_sentences"

# label lists and mappings: the project's one place for them
from emotions.data.labels import (CEDR_IDS as CEDR_NAMES, CRYPTONITE_LABELS,
                             GOEMOTIONS_EKMAN_LABELS as EKMAN_LABELS, GOEMOTIONS_LABELS,
                             GOEMOTIONS_TO_EKMAN as EKMAN_OF, IZARD_LABELS)

EMOTIONS_EN_COUNTS = {"happy": 80, "sadness": 70, "anger": 40, "fear": 40, "love": 35, "surprise": 35}

# cryptonite rows per label combination: (train, valid, test)
CRYPTONITE_PLAN: dict[tuple[str, ...], tuple[int, int, int]] = {
    ("neutral",): (85, 55, 40),
    ("joy",): (70, 45, 35),
    ("anger",): (28, 18, 14),
    ("surprise",): (25, 17, 13),
    ("sadness",): (25, 17, 13),
    ("fear",): (12, 9, 7),
    ("disgust",): (10, 9, 7),
    ("anger", "disgust"): (11, 7, 5),
    ("joy", "surprise"): (14, 8, 6),
    ("fear", "sadness"): (9, 6, 4),
    ("anger", "surprise"): (5, 4, 3),
    ("anger", "sadness"): (5, 5, 3),
}
SPLITS = ("train", "valid", "test")


def rng_for(name: str) -> random.Random:
    return random.Random(f"{SEED}:{name}")  # str seeds are hashed with sha512: stable across runs


# ---------------------------------------------------------------------------
# source data (scripts/demo_sentences/): rows are kept in file order
# ---------------------------------------------------------------------------

def read_tsv(name: str) -> list[dict[str, str]]:
    """Rows of a UTF-8 tab-separated file with a header line; no quoting, no comments."""
    path = SOURCE_DIR / name
    header, *lines = path.read_text(encoding="utf-8").removesuffix("\n").split("\n")
    columns = header.split("\t")
    rows = []
    for i, line in enumerate(lines, 2):
        cells = line.split("\t")
        if len(cells) != len(columns) or any(c != c.strip() or not c for c in cells):
            raise SystemExit(f"{path}:{i}: expected {len(columns)} non-empty tab-separated cells")
        rows.append(dict(zip(columns, cells)))
    return rows


def labels_of(cell: str) -> tuple[str, ...]:
    """`joy` -> ("joy",); `anger+disgust` -> ("anger", "disgust")."""
    return tuple(cell.split("+"))


def cedr_ids_of(cell: str) -> tuple[int, ...]:
    """`[]` -> (); `[0 2]` -> (0, 2)."""
    return tuple(int(x) for x in cell.strip("[]").split())


def load_templates() -> dict:
    """`templates.json`: slot-filling templates per data set (JSON keeps key and list order)."""
    with open(SOURCE_DIR / "templates.json", encoding="utf-8") as f:
        return json.load(f)


# ---------------------------------------------------------------------------
# templates
# ---------------------------------------------------------------------------

_SLOT_RE = re.compile(r"\{(\w+)(\|cap)?\}")


def expand(template: str, slots: dict[str, list[str]]) -> list[str]:
    """All fillings of `template` (cross product, in a fixed order)."""
    names = list(dict.fromkeys(m.group(1) for m in _SLOT_RE.finditer(template)))
    out = []
    for combo in itertools.product(*(slots[n] for n in names)):
        values = dict(zip(names, combo))

        def sub(m: re.Match) -> str:
            v = values[m.group(1)]
            return v[:1].upper() + v[1:] if m.group(2) else v

        out.append(_SLOT_RE.sub(sub, template))
    return out


def norm_key(text: str) -> str:
    """Comparison key: lowercase, ё→е, letters/digits only (emoji and punctuation dropped)."""
    t = text.replace("[NAME]", " ").lower().replace("ё", "е")
    return " ".join(re.sub(r"[^а-яa-z0-9]+", " ", t).split())


def dedupe(items: list[str]) -> list[str]:
    """Drop items whose `norm_key` was seen before (keeps the first)."""
    seen: dict[str, str] = {}
    for t in items:
        seen.setdefault(norm_key(t), t)
    return list(seen.values())


# ---------------------------------------------------------------------------
# ASR-style text (cryptonite test)
# ---------------------------------------------------------------------------

_UNITS = ["ноль", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять",
          "десять", "одиннадцать", "двенадцать", "тринадцать", "четырнадцать", "пятнадцать",
          "шестнадцать", "семнадцать", "восемнадцать", "девятнадцать"]
_TENS = ["", "", "двадцать", "тридцать", "сорок", "пятьдесят", "шестьдесят", "семьдесят",
         "восемьдесят", "девяносто"]
_HUNDREDS = ["", "сто", "двести", "триста", "четыреста", "пятьсот", "шестьсот", "семьсот",
             "восемьсот", "девятьсот"]


def number_words(n: int) -> str:
    """Russian cardinal (nominative) for 0 <= n < 1000."""
    if n < 20:
        return _UNITS[n]
    parts = []
    if n >= 100:
        parts.append(_HUNDREDS[n // 100])
        n %= 100
    if n >= 20:
        parts.append(_TENS[n // 10])
        n %= 10
        if n:
            parts.append(_UNITS[n])
    elif n:
        parts.append(_UNITS[n])
    return " ".join(parts)


_HOMOPHONES = {"тоже": "то же", "чтобы": "что бы", "также": "так же", "сейчас": "щас",
               "наконец": "на конец", "конечно": "конешно", "ничего": "ничо", "вообще": "вообщем"}
_MERGE_FIRST = {"не", "в", "на", "по", "за", "и", "с", "что"}
_KEEP = {"не", "ни", "да", "я", "ты", "мы", "вы", "он"}  # never dropped: would change the meaning
_SPLIT_PREFIXES = ("пере", "при", "под", "рас", "на", "за", "вы", "от")
_CONSONANTS = set("бвгджзклмнпрстфхцчшщ")


def _splittable(w: str) -> bool:
    """A long word starting with a common prefix followed by a consonant (наконец → на конец)."""
    return len(w) >= 8 and any(w.startswith(p) and w[len(p)] in _CONSONANTS and len(w) - len(p) >= 5
                               for p in _SPLIT_PREFIXES)


def asr_clean(text: str, rng: random.Random, names: list[str]) -> str:
    """Lowercase, no punctuation/emoji, ё→е, [NAME] → one of `names`, numbers often as words."""
    t = text.replace("[NAME]", rng.choice(names)).lower().replace("ё", "е")
    t = re.sub(r"[^а-яa-z0-9]+", " ", t)
    words = []
    for w in t.split():
        if w.isdigit():
            if w == "00":
                w = "ноль ноль"
            elif len(w) <= 3 and rng.random() < 0.75:
                w = number_words(int(w))
        words.append(w)
    return " ".join(words)


def asr_noise(text: str, rng: random.Random) -> str:
    """One plausible transcription error, where one applies."""
    words = text.split()
    ops = []
    if "это" in words:
        ops.append("eto")
    if "уже" in words:
        ops.append("uzhe")
    if any(w in _HOMOPHONES for w in words):
        ops += ["homophone", "homophone"]
    if any(w in _MERGE_FIRST for w in words[:-1]):
        ops += ["merge", "merge"]
    if any(_splittable(w) for w in words):
        ops.append("split")
    if len(words) > 4 and any(len(w) <= 2 and w not in _KEEP for w in words):
        ops.append("drop")
    if any(w.endswith(("ться", "тся")) for w in words):
        ops.append("tsya")
    if not ops:
        return text
    op = rng.choice(ops)
    if op == "eto":
        i = rng.choice([i for i, w in enumerate(words) if w == "это"])
        words[i] = "ыетс"
    elif op == "uzhe":
        i = words.index("уже")
        words[i] = "уже ж"
    elif op == "homophone":
        i = rng.choice([i for i, w in enumerate(words) if w in _HOMOPHONES])
        words[i] = _HOMOPHONES[words[i]]
    elif op == "merge":
        i = rng.choice([i for i, w in enumerate(words[:-1]) if w in _MERGE_FIRST])
        words[i:i + 2] = [words[i] + words[i + 1]]
    elif op == "split":
        i = rng.choice([i for i, w in enumerate(words) if _splittable(w)])
        prefix = next(p for p in _SPLIT_PREFIXES
                      if words[i].startswith(p) and words[i][len(p)] in _CONSONANTS)
        words[i] = prefix + " " + words[i][len(prefix):]
    elif op == "drop":
        i = rng.choice([i for i, w in enumerate(words) if len(w) <= 2 and w not in _KEEP])
        del words[i]
    elif op == "tsya":
        i = rng.choice([i for i, w in enumerate(words) if w.endswith(("ться", "тся"))])
        w = words[i]
        words[i] = w[:-4] + "тся" if w.endswith("ться") else w[:-3] + "ться"
    return " ".join(words)


def to_asr(text: str, rng: random.Random, names: list[str], noisy: bool = True) -> str:
    t = asr_clean(text, rng, names)
    if noisy and rng.random() < 0.35:
        t = asr_noise(t, rng)
    return t


# ---------------------------------------------------------------------------
# builders
# ---------------------------------------------------------------------------

def build_cryptonite() -> dict[str, pd.DataFrame]:
    rng = rng_for("cryptonite")
    forced = {r["cryptonite_text"]: r["cryptonite_split"] for r in read_tsv("leaks.tsv")}
    sentences = [(labels_of(r["labels"]), r["text"]) for r in read_tsv("cryptonite.tsv")]
    templates = load_templates()
    asr_names = templates["cryptonite_asr_names"]
    rows: dict[str, list[tuple[str, tuple[str, ...], bool]]] = {s: [] for s in SPLITS}
    for cat, counts in CRYPTONITE_PLAN.items():
        hand = [t for labels, t in sentences if labels == cat]
        tpl = []
        for entry in templates["cryptonite"]:
            if tuple(entry["labels"]) == cat:
                tpl += expand(entry["template"], entry["slots"])
        hand_keys = {norm_key(t) for t in hand}
        tpl = [t for t in dedupe(tpl) if norm_key(t) not in hand_keys]
        rng.shuffle(hand)
        rng.shuffle(tpl)
        need = sum(counts)
        pool = dedupe(hand + tpl)
        if len(pool) < need:
            raise SystemExit(f"cryptonite {cat}: {len(pool)} sentences for {need} rows")
        leaks = [t for t in pool if t in forced]
        rest = [t for t in pool if t not in forced][: need - len(leaks)]
        rng.shuffle(rest)
        quota = dict(zip(SPLITS, counts))
        for t in leaks:
            rows[forced[t]].append((t, cat, True))
            quota[forced[t]] -= 1
        start = 0
        for split in SPLITS:
            for t in rest[start:start + quota[split]]:
                rows[split].append((t, cat, False))
            start += quota[split]
    keys = [norm_key(r[0]) for s in SPLITS for r in rows[s]]
    if len(set(keys)) != len(keys):
        raise SystemExit("cryptonite: the same sentence is used twice")
    missing = [t for t in forced if not any(t == r[0] for s in SPLITS for r in rows[s])]
    if missing:
        raise SystemExit(f"leak sources not in the cryptonite lists: {missing}")

    out = {}
    for split in SPLITS:
        items = rows[split]
        rng.shuffle(items)
        records = []
        for text, cat, is_leak in items:
            if split == "test":
                text = to_asr(text, rng, asr_names, noisy=not is_leak)
                labels = dict.fromkeys(CRYPTONITE_LABELS, 0)
            else:
                labels = {lab: int(lab in cat) for lab in CRYPTONITE_LABELS}
            records.append({"text": text, **labels})
        out[split] = pd.DataFrame(records, columns=["text", *CRYPTONITE_LABELS])
    return out


def build_izard() -> dict[str, pd.DataFrame]:
    rng = rng_for("izard")
    items = [(labels_of(r["labels"]), r["text"]) for r in read_tsv("ru-izard-emotions.tsv")]
    for entry in load_templates()["ru-izard-emotions"]:
        filled = expand(entry["template"], entry["slots"])
        rng.shuffle(filled)
        items += [(tuple(entry["labels"]), t) for t in filled[:entry["take"]]]
    texts = [t for _, t in items]
    if len(set(texts)) != len(texts):
        raise SystemExit("duplicate ru-izard texts")
    rng.shuffle(items)
    split_rows = {"val": items[:29], "test": items[29:58], "train": items[58:]}
    for r in read_tsv("leaks.tsv"):
        split_rows[r["izard_split"]].append((labels_of(r["izard_labels"]), r["izard_text"]))
    out = {}
    for split in ("train", "val", "test"):
        rows = split_rows[split]
        rng.shuffle(rows)
        records = [{"text": t, **{lab: int(lab in labels) for lab in IZARD_LABELS}} for labels, t in rows]
        out[split] = pd.DataFrame(records, columns=["text", *IZARD_LABELS])
    return out


def cedr_label_str(ids: tuple[int, ...]) -> str:
    return "[" + " ".join(str(i) for i in sorted(ids)) + "]"


def build_cedr() -> dict[str, pd.DataFrame]:
    rng = rng_for("cedr")
    items = [(cedr_ids_of(r["labels"]), r["source"], r["text"]) for r in read_tsv("cedr.tsv")]
    for entry in load_templates()["cedr"]:
        filled = expand(entry["template"], entry["slots"])
        rng.shuffle(filled)
        items += [(tuple(entry["labels"]), entry["source"], t) for t in filled[:entry["take"]]]
    texts = [t for *_, t in items]
    if len(set(texts)) != len(texts):
        raise SystemExit("duplicate CEDR texts")
    groups: dict[tuple[int, ...], list] = {}
    for it in items:
        groups.setdefault(tuple(sorted(it[0])), []).append(it)
    train, test = [], []
    for key in sorted(groups):
        g = groups[key]
        rng.shuffle(g)
        k = round(len(g) * 0.25) if len(key) <= 1 else 0
        test += g[:k]
        train += g[k:]
    out = {}
    for split, rows in (("train", train), ("test", test)):
        rng.shuffle(rows)
        out[split] = pd.DataFrame(
            [{"text": t, "labels": cedr_label_str(ids), "source": src} for ids, src, t in rows],
            columns=["text", "labels", "source"])
    return out


def build_goemotions() -> tuple[str, str]:
    rng = rng_for("goemotions")
    items = [(labels_of(r["labels"]), r["text"]) for r in read_tsv("goemotions-en.tsv")]
    rng.shuffle(items)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    used: set[str] = set()
    ekman_lines, original_lines = [], []
    for labels, text in items:
        if "\t" in text or "\n" in text or '"' in text:
            raise SystemExit(f"bad GoEmotions text {text!r}")
        while True:
            rid = rng.choice("de") + "".join(rng.choice(alphabet) for _ in range(6))
            if rid not in used:
                used.add(rid)
                break
        orig = sorted(GOEMOTIONS_LABELS.index(lab) for lab in labels)
        ekman = sorted({EKMAN_LABELS.index(EKMAN_OF[lab]) for lab in labels})
        original_lines.append(f"{text}\t{','.join(map(str, orig))}\t{rid}\n")
        ekman_lines.append(f"{text}\t{','.join(map(str, ekman))}\t{rid}\n")
    return "".join(ekman_lines), "".join(original_lines)


def build_emotions_en() -> pd.DataFrame:
    rng = rng_for("emotions-en")
    sentences = read_tsv("emotions-en.tsv")
    slots = load_templates()["emotions-en"]
    rows = []
    for emotion, n in EMOTIONS_EN_COUNTS.items():
        hand = [r["text"] for r in sentences if r["label"] == emotion]
        combos = [f"{o} {w} {c}" for o in slots["openers"] for w in slots["words"][emotion]
                  for c in slots["contexts"]]
        tpl = rng.sample(combos, n - len(hand))
        rows += [(t, emotion) for t in hand + tpl]
    rng.shuffle(rows)
    return pd.DataFrame(rows, columns=["Text", "Emotion"])


# ---------------------------------------------------------------------------
# README
# ---------------------------------------------------------------------------

def label_counts(df: pd.DataFrame, labels: list[str]) -> str:
    return ", ".join(f"{lab} {int(df[lab].sum())}" for lab in labels)


def readme(cry, izard, cedr, ekman_tsv, emo) -> str:
    leak_lines = []
    for r in read_tsv("leaks.tsv"):
        what = "exact copy of" if r["kind"] == "exact" else "near-paraphrase of"
        src_split = r["cryptonite_split"]
        leak_lines.append(f"- `ru-izard-emotions/{r['izard_split']}.csv`: «{r['izard_text']}» "
                          f"({r['izard_labels']}) — {what} cryptonite `{src_split}` «{r['cryptonite_text']}»"
                          + (" (there in ASR form)" if src_split == "test" else ""))
    cedr_counts = []
    for split, df in cedr.items():
        ids = [i for v in df["labels"] for i in map(int, v.strip("[]").split())]
        per = ", ".join(f"{CEDR_NAMES[i]} {ids.count(i)}" for i in range(5))
        cedr_counts.append(f"  - `{split}.csv`: {len(df)} rows; `[]` {int((df['labels'] == '[]').sum())}, {per}")
    n_ge = ekman_tsv.count("\n")
    emo_counts = ", ".join(f"{k} {v}" for k, v in emo["Emotion"].value_counts().sort_index().items())
    return f"""# Demo data root (synthetic)

**Synthetic demo data written for this project.** Every sentence here was written by
hand for the project (some expanded with slot-filling templates); none is taken from
the real data sets. It mirrors the file layout and formats of the real data root
(`../shared/data/`, see its README) at a tiny size, so that the project's default run,
the tests and CI work without any real data. Scores on it mean nothing.

Generated by (deterministic, seeded; stdlib + pandas):

    python scripts/make_demo_data.py --out data/demo

Sentences and templates: `scripts/demo_sentences/`. Re-running reproduces these files
byte for byte (`tests/test_demo_data.py` checks this). All files are UTF-8; CSVs are
written by pandas `to_csv(index=False)`.

## Files and formats

- `cryptonite/train.csv` ({len(cry['train'])} rows), `cryptonite/valid.csv` ({len(cry['valid'])} rows):
  `text,anger,disgust,fear,joy,sadness,surprise,neutral` (0/1), cased, punctuated
  Russian in Reddit-comment style (`[NAME]` placeholders, emoji, ё). Multilabel:
  most rows have one label, about 15% two.
  - train: {label_counts(cry['train'], CRYPTONITE_LABELS)}
  - valid: {label_counts(cry['valid'], CRYPTONITE_LABELS)}
- `cryptonite/test_without_answers.csv` ({len(cry['test'])} rows): same columns, labels all 0;
  texts in ASR style (lowercase, no punctuation, ё→е, numbers often as words,
  some transcription errors such as merged/split words). Sentences distinct from
  train/valid, in the same emotional styles.
- `ru-izard-emotions/train.csv` ({len(izard['train'])}), `val.csv` ({len(izard['val'])}), `test.csv` ({len(izard['test'])}):
  `text,neutral,joy,sadness,anger,enthusiasm,surprise,disgust,fear,guilt,shame` (0/1).
  - all splits: {label_counts(pd.concat(list(izard.values())), IZARD_LABELS)}
- `cedr/train.csv`, `cedr/test.csv`: `text,labels,source`; `labels` like `[]`, `[2]`,
  `[1 4]` (0 joy, 1 sadness, 2 surprise, 3 fear, 4 anger); `source` lj / lenta / twitter.
{chr(10).join(cedr_counts)}
- `goemotions-en/ekman_train.tsv`, `goemotions-en/original_train.tsv` ({n_ge} rows each, same rows):
  tab-separated, no header, `text<TAB>label ids<TAB>id`; ids comma-separated
  (e.g. `3` or `3,5`). Ekman ids index `anger, disgust, fear, joy, neutral, sadness,
  surprise`; original ids index the 28 GoEmotions labels. English Reddit style.
- `emotions-en/emotions.csv` ({len(emo)} rows): `Text,Emotion`, lowercase English tweets;
  Emotion in sadness, happy (= joy), love, anger, fear, surprise: {emo_counts}.
- `utterances/train/*.csv`, `utterances/eval/*.csv`: every {UTTERANCE_STEP["train"]}th / {UTTERANCE_STEP["eval"]}th row of
  the project's written spoken-style utterances (`data/utterances/`, their README), the cryptonite format. A data
  root with an `utterances/` folder uses it instead of the project's (so demo runs stay small).

## Deliberate leaks (test the cross-set leak filter)

These ru-izard rows copy or closely paraphrase cryptonite valid/test sentences on
purpose; a correct leak filter removes them from the extension data:

{chr(10).join(leak_lines)}
"""


# every STEP-th row of each file of the project's written utterances (data/utterances/: written for the project)
UTTERANCE_STEP = {"train": 40, "eval": 10}


def build_utterances() -> dict[str, pd.DataFrame]:
    """A small deterministic sample of data/utterances/ (kind/file stem -> rows), so demo runs stay fast."""
    out = {}
    for kind, step in UTTERANCE_STEP.items():
        for path in sorted((PROJECT_ROOT / "data" / "utterances" / kind).glob("*.csv")):
            out[f"{kind}/{path.stem}"] = pd.read_csv(path, keep_default_na=False).iloc[::step].reset_index(drop=True)
    return out


# ---------------------------------------------------------------------------

def write_csv(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")


def write_text(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output data root (default: data/demo)")
    args = ap.parse_args(argv)
    out: Path = args.out

    cry = build_cryptonite()
    izard = build_izard()
    cedr = build_cedr()
    ekman_tsv, original_tsv = build_goemotions()
    emo = build_emotions_en()

    write_csv(cry["train"], out / "cryptonite" / "train.csv")
    write_csv(cry["valid"], out / "cryptonite" / "valid.csv")
    write_csv(cry["test"], out / "cryptonite" / "test_without_answers.csv")
    write_text("# Row counts that loading checks (common.expected_test_rows: auto)\n"
               f"rows:\n  test_without_answers.csv: {len(cry['test'])}\n", out / "cryptonite" / "dataset.yaml")
    for split, df in izard.items():
        write_csv(df, out / "ru-izard-emotions" / f"{split}.csv")
    for split, df in cedr.items():
        write_csv(df, out / "cedr" / f"{split}.csv")
    write_text(ekman_tsv, out / "goemotions-en" / "ekman_train.tsv")
    write_text(original_tsv, out / "goemotions-en" / "original_train.tsv")
    write_csv(emo, out / "emotions-en" / "emotions.csv")
    for name, df in build_utterances().items():
        write_csv(df, out / "utterances" / f"{name}.csv")
    write_text(readme(cry, izard, cedr, ekman_tsv, emo), out / "README.md")
    print(f"demo data written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
