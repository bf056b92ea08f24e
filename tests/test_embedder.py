"""Embedder.encode: correct embeddings, in input order, and clear errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import llamabatch
from llamabatch import Embedder

DATA = Path(__file__).parent / "data"

# Batched against one-at-a-time: llama.cpp's CPU kernels are not batch-invariant
# (the same row gives results that differ in the 4th decimal when decoded among
# other sequences, in f16 and f32 GGUFs alike, with flash attention on or off),
# so the bound is 3e-4 per component rather than 1e-4; cosines stay >= 0.99999.
BATCH_ATOL = 3e-4


def assert_same_embeddings(actual: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_allclose(actual, expected, atol=BATCH_ATOL)
    assert np.sum(actual * expected, axis=-1).min() >= 0.99999
REFERENCE_TEXTS = json.loads((DATA / "reference_texts.json").read_text(encoding="utf-8"))
REFERENCE = np.load(DATA / "reference_minilm.npy")
REFERENCE_META = json.loads((DATA / "reference_minilm.json").read_text(encoding="utf-8"))

@pytest.fixture(scope="module")
def reference_embeddings(embedder):
    return embedder.encode(REFERENCE_TEXTS)


def test_shapes_and_dtypes(embedder):
    one = embedder.encode("a bowl of ramen")
    assert one.shape == (384,) and one.dtype == np.float32
    many = embedder.encode(["a", "b c", "d e f"])
    assert many.shape == (3, 384) and many.flags.c_contiguous and many.dtype == np.float32
    empty = embedder.encode([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(many, axis=1), 1.0, atol=1e-5)


def test_matches_sentence_transformers_reference(embedder, reference_embeddings):
    # Every text, Korean and special-token text included: the tokens are the reference's.
    assert [len(t) for t in embedder.tokenize(REFERENCE_TEXTS)] == REFERENCE_META["token_counts"]
    cos = np.sum(reference_embeddings * REFERENCE, axis=1)
    assert cos.min() >= 0.9999, [(int(i), float(cos[i])) for i in np.argsort(cos)[:5]]


def test_batched_equals_one_at_a_time(embedder, reference_embeddings):
    singles = np.stack([embedder.encode(t) for t in REFERENCE_TEXTS[:60]])
    assert_same_embeddings(singles, reference_embeddings[:60])


def test_order_survives_shuffling(embedder, reference_embeddings):
    perm = np.random.default_rng(0).permutation(len(REFERENCE_TEXTS))
    shuffled = embedder.encode([REFERENCE_TEXTS[i] for i in perm])
    assert_same_embeddings(shuffled, reference_embeddings[perm])


@pytest.mark.parametrize("batch_size", [1, 7, 64, None])
def test_batch_sizes_agree(embedder, reference_embeddings, batch_size):
    texts = REFERENCE_TEXTS[:80]
    embedder.reset_stats()
    out = embedder.encode(texts, batch_size=batch_size)
    assert_same_embeddings(out, reference_embeddings[:80])
    if batch_size == 1:
        assert embedder.stats["decodes"] == 80


def test_streaming_through_a_small_batch(minilm_path):
    small = Embedder(minilm_path, n_batch=128, n_seq_max=4)
    texts = [f"caption {i}: " + "tea and biscuits " * (i % 7) for i in range(50)]
    out = small.encode(texts)
    stats = small.stats
    assert stats["sequences"] == 50
    assert stats["tokens"] > 128  # more tokens than one batch holds
    assert stats["decodes"] >= 13  # at most 4 texts per decode
    big = Embedder(minilm_path).encode(texts)
    assert_same_embeddings(out, big)


def test_progress_bar_moves(embedder, capsys):
    seen = []
    texts = ["x " * 200] * 10  # ~200 tokens each: several decodes of 512 tokens
    embedder._core.encode(texts, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 10 and len(seen) > 1
    embedder.encode(texts, show_progress=True)
    assert "10/10" in capsys.readouterr().err


def test_long_text_needs_truncate(embedder):
    long_text = "word " * 1000
    with pytest.raises(llamabatch.InputError, match=r"text 1 has 1002 tokens, above the limit of 512 .*truncate=True") as bad:
        embedder.encode(["short", long_text])
    assert bad.value.index == 1 and isinstance(bad.value, ValueError)
    cut = embedder.encode(long_text, truncate=True)
    assert cut.shape == (384,) and np.isfinite(cut).all()
    ids = embedder.tokenize(long_text)[0]
    np.testing.assert_allclose(cut, embedder.encode(long_text, truncate=512), atol=1e-6)
    # truncate=N keeps N tokens including the closing [SEP], as sentence-transformers
    # does: [CLS] + 254 x "word" + [SEP] is exactly the tokens of "word " * 254.
    assert ids[0] == 101 and ids[-1] == 102 and len(ids) == 1002
    short = embedder.encode(long_text, truncate=256)
    assert len(embedder.tokenize("word " * 254)[0]) == 256
    np.testing.assert_allclose(short, embedder.encode("word " * 254), atol=1e-6)
    # Per token: 256 rows.
    rows = Embedder(embedder.model.path, pooling="none", normalize=False).encode(long_text, truncate=256)
    assert rows.shape == (256, 384)


def test_long_text_with_n_batch_above_the_trained_context_raises(minilm_path):
    # llama-cpp-python aborts the process here; we must raise.
    e = Embedder(minilm_path, n_batch=2048)
    assert e.n_ctx == 512
    with pytest.raises(ValueError, match="above the limit of 512"):
        e.encode("word " * 800)


def test_rows_keep_their_order_across_tokenizer_chunks(embedder):
    # encode() tokenizes 4,096 texts at a time as the engine needs them, so that
    # memory does not grow with the number of texts; rows at and around the
    # chunk boundaries must be the embeddings of their own texts.
    texts = [f"order {i}" for i in range(9000)]
    out = embedder.encode(texts)
    assert out.shape == (9000, 384)
    picks = [0, 4095, 4096, 4097, 8191, 8192, 8999]
    alone = np.stack([embedder.encode(texts[i]) for i in picks])
    assert_same_embeddings(out[picks], alone)
    # Neighbours differ ("order 4095" is not "order 4096"): a shifted row would fail above.
    assert float(out[4095] @ out[4096]) < 0.9999


def test_a_bad_text_in_a_later_chunk_raises_before_any_decode(minilm_path):
    e = Embedder(minilm_path)
    texts = ["short"] * 5000 + ["word " * 1000] + ["short"] * 10
    with pytest.raises(ValueError, match=r"text 5000 has 1002 tokens, above the limit of 512"):
        e.encode(texts)
    assert e.stats["decodes"] == 0  # every text is checked before the first decode
    cut = e.encode(texts, truncate=True)
    assert cut.shape == (5011, 384) and np.isfinite(cut).all()
    np.testing.assert_allclose(cut[5000], e.encode("word " * 1000, truncate=True), atol=BATCH_ATOL)


def test_n_batch_smaller_than_the_longest_text(minilm_path):
    e = Embedder(minilm_path, n_batch=32)
    with pytest.raises(ValueError, match="text 0 has .* tokens, above the limit of 32"):
        e.encode(["word " * 40])


def test_empty_string_embeds_the_special_tokens(embedder):
    v = embedder.encode("")
    assert v.shape == (384,) and np.isfinite(v).all()
    assert list(embedder.tokenize("")[0]) == [101, 102]


@pytest.mark.parametrize(
    "bad, exc, match",
    [
        (None, TypeError, "texts is None"),
        ([1, 2], TypeError, r"texts\[0\] is int, not str"),
        (["ok", None], TypeError, r"texts\[1\] is NoneType, not str"),
        (b"bytes", TypeError, "is bytes: decode it"),
        (np.array(["ok", 3], dtype=object), TypeError, r"texts\[1\] is int"),
        (42, TypeError, "must be a str or a sequence of str"),
    ],
)
def test_bad_input_raises(embedder, bad, exc, match):
    with pytest.raises(exc, match=match):
        embedder.encode(bad)


def test_string_arrays_are_accepted(embedder):
    out = embedder.encode(np.array(["tea", "coffee"]))
    np.testing.assert_allclose(out, embedder.encode(["tea", "coffee"]), atol=1e-6)


def test_normalize_options(embedder):
    raw = embedder.encode("green tea", normalize=False)
    l2 = embedder.encode("green tea")
    np.testing.assert_allclose(raw / np.linalg.norm(raw), l2, atol=1e-5)
    taxicab = embedder.encode("green tea", normalize="taxicab")
    assert abs(np.abs(taxicab).sum() - 1.0) < 1e-4
    maxabs = embedder.encode("green tea", normalize="max-abs")
    assert abs(np.abs(maxabs).max() - 32760.0) < 0.5
    p3 = embedder.encode("green tea", normalize=3)
    assert abs((np.abs(p3) ** 3).sum() - 1.0) < 1e-4
    with pytest.raises(ValueError, match="normalize='l7'"):
        embedder.encode("x", normalize="l7")


def test_pooling_none_gives_per_token_rows(minilm_path, embedder):
    tok = Embedder(minilm_path, pooling="none", normalize=False)
    texts = ["hot chocolate", "a slice of cheesecake with berries"]
    rows = tok.encode(texts)
    lengths = [len(t) for t in tok.tokenize(texts)]
    assert [r.shape for r in rows] == [(n, 384) for n in lengths]
    # Mean of the token rows is the mean-pooled embedding.
    pooled = embedder.encode(texts, normalize=False)
    np.testing.assert_allclose(np.stack([r.mean(axis=0) for r in rows]), pooled, atol=1e-4)
    # The rows are views into one matrix of every token row, not copies.
    matrix = rows[0].base
    assert isinstance(matrix, np.ndarray) and matrix.shape == (sum(lengths), 384)
    assert all(r.base is matrix and not r.flags.owndata for r in rows)
    assert np.shares_memory(rows[1], matrix[lengths[0]:])


def test_other_poolings_and_rank(minilm_path):
    cls = Embedder(minilm_path, pooling="cls")
    assert cls.pooling == "cls" and cls.encode("tea").shape == (384,)
    with pytest.raises(ValueError, match="reranker"):
        Embedder(minilm_path, pooling="rank")
    with pytest.raises(ValueError, match="pooling 'max'"):
        Embedder(minilm_path, pooling="max")
    with pytest.raises(NotImplementedError, match="not supported"):
        cls.rank("tea", ["coffee"])


def test_causal_model_embeddings(smollm_path):
    e = Embedder(smollm_path, pooling="mean")
    out = e.encode(["a cup of tea", "a mug of coffee", "a slice of pizza"])
    assert out.shape == (3, 576) and np.isfinite(out).all()
    single = e.encode("a mug of coffee")
    np.testing.assert_allclose(single, out[1], atol=1e-3)


def test_missing_model_path():
    with pytest.raises(FileNotFoundError, match="nope.gguf"):
        Embedder("/nonexistent/nope.gguf")


def test_properties(embedder):
    assert embedder.n_embd == 384
    assert embedder.pooling == "mean"
    assert embedder.n_ctx == 512
    assert set(embedder.stats) >= {"decodes", "tokens", "decode_seconds"}
    assert "all-MiniLM" in repr(embedder) or "minilm" in repr(embedder).lower()


def test_an_error_in_the_progress_callback_stops_the_run_cleanly(embedder):
    def boom(n_done: int) -> None:
        raise KeyboardInterrupt("stop")

    texts = ["x " * 200, "y " * 150] * 5
    before = embedder.encode(texts[:2])
    with pytest.raises(KeyboardInterrupt, match="stop"):
        embedder._core.encode(texts, progress=boom)
    # The embedder is still usable afterwards, and gives the answer it gave before.
    np.testing.assert_allclose(embedder.encode(texts[:2]), before, atol=1e-6)
