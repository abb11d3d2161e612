"""Ablation of extension sources and augmentation methods (emotions.pipeline.ablation), from the command line.

    python benchmarks/ablation.py --out runs/ablation.json [--data-root ../shared/data] [--only a,b]
        [--model baseline|transformer|cnn] [--model-params '{"epochs": 3}']
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from emotions.pipeline.ablation import CONFIGS, run_ablation
from emotions.core.io import write_json_atomic
from emotions.core.paths import CACHE_DIR


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--out", type=Path, required=True, help="JSON file for the results")
    ap.add_argument("--seed", type=int, default=42, help="split and training seed (default 42, as configs/base.yaml)")
    ap.add_argument("--only", default="", help=f"comma-separated config names (default: all of {list(CONFIGS)})")
    ap.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    ap.add_argument("--model", default="baseline")
    ap.add_argument("--model-params", default="{}", help="JSON options of the model kind")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("emotions.data.readers").setLevel(logging.ERROR)   # duplicate-text warnings of the raw sets
    names = [n.strip() for n in args.only.split(",") if n.strip()] or None
    try:
        result = run_ablation(args.data_root, names, seed=args.seed, cache_dir=args.cache_dir, model=args.model,
                              model_params=json.loads(args.model_params))
    except ValueError as e:
        sys.exit(f"error: {e}")
    print()
    print(result["markdown"])
    write_json_atomic(args.out, result)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
