"""Engine: the streaming loop, with and without a real model."""
from __future__ import annotations

import numpy as np
import pytest

import llamabatch
from llamabatch import Context, Engine


def test_three_sequences_that_fit_take_one_decode():
    e = Engine(n_batch=64, n_seq_max=8)
    placement = e.run([np.arange(5), np.arange(7), np.arange(3)])
    assert e.stats["decodes"] == 1
    np.testing.assert_array_equal(placement[:, 0], [0, 0, 0])  # decode number
    np.testing.assert_array_equal(placement[:, 1], [0, 1, 2])  # seq id
    np.testing.assert_array_equal(placement[:, 2], [0, 5, 12])  # first token


def test_fifty_sequences_through_a_batch_of_four():
    e = Engine(n_batch=1000, n_seq_max=4)
    placement = e.run([np.arange(1, 4)] * 50)
    assert e.stats["decodes"] == 13  # ceil(50 / 4): the sequence limit triggers
    assert e.stats["sequences"] == 50 and e.stats["tokens"] == 150
    np.testing.assert_array_equal(placement[:, 0], np.arange(50) // 4)
    np.testing.assert_array_equal(placement[:, 1], np.arange(50) % 4)


def test_token_limit_triggers_a_flush():
    e = Engine(n_batch=10, n_seq_max=100)
    placement = e.run([np.ones(6, np.int32), np.ones(4, np.int32), np.ones(1, np.int32)])
    # 6 + 4 = 10 fits exactly; the third does not.
    np.testing.assert_array_equal(placement[:, 0], [0, 0, 1])
    assert e.stats["decodes"] == 2


def test_too_long_and_empty_sequences_are_errors_naming_the_index():
    e = Engine(n_batch=8, n_seq_max=2)
    with pytest.raises(ValueError, match="sequence 1 has 9 tokens, above the limit of 8"):
        e.run([np.arange(3), np.arange(9)])
    with pytest.raises(ValueError, match="sequence 0 is empty"):
        e.run([np.array([], dtype=np.int32)])
    assert e.stats["decodes"] == 0  # checked before anything is decoded


def test_real_decode_counts_and_order(minilm):
    ctx = Context(minilm, n_batch=64, embeddings=True)
    e = Engine(ctx)
    seqs = [minilm.tokenize(f"text number {i} " * (i % 5 + 1)) for i in range(30)]
    placement = e.run(seqs)
    total = sum(len(s) for s in seqs)
    assert e.stats["tokens"] == total
    assert e.stats["decodes"] == placement[-1, 0] + 1 > total // 64
    assert e.stats["decode_seconds"] > 0
    # Input order is kept: decode numbers never go down, first-token offsets restart per decode.
    assert np.all(np.diff(placement[:, 0]) >= 0)


def test_context_decode_rejects_bad_batches_without_aborting(minilm):
    ctx = Context(minilm, n_batch=32, n_seq_max=2, embeddings=True)
    b = llamabatch.Batch(32, n_seq_max=4)
    b.add_sequence([101, 999999, 102], seq_id=0)
    with pytest.raises(ValueError, match="id 999999, outside the model's vocabulary 0..30521"):
        ctx.decode(b)
    b.clear()
    b.add_sequence([101, 102], seq_id=3)
    with pytest.raises(ValueError, match="seq id 3, but this context holds seq ids 0..1"):
        ctx.decode(b)
    b.clear()
    b.add_sequence([101, 102], seq_id=0, pos0=600)
    with pytest.raises(ValueError, match="position 600, past the 512 positions"):
        ctx.decode(b)
    b.clear()
    b.add_sequence([101, 7592, 102], seq_id=0)
    b.seq_id[1, 0] = 7  # a bad write through a view is caught too
    with pytest.raises(ValueError, match="seq id 7"):
        ctx.decode(b)
    # Embeddings narrower than the model's input: llama.cpp would read
    # n_tokens x 384 floats from a buffer of n_tokens x 7.
    narrow = llamabatch.Batch(4, embd=7)
    narrow.n_tokens = 2
    narrow.n_seq_id[:2] = 1
    narrow.seq_id[:2, 0] = 0
    narrow.pos[:2] = [0, 1]
    with pytest.raises(ValueError, match="embeddings of width 7, but the model reads 384 floats per input"):
        ctx.decode(narrow)


def test_derived_settings_for_a_non_causal_model(minilm):
    ctx = Context(minilm, n_batch=1024, embeddings=True)
    assert ctx.n_ubatch == ctx.n_batch == 1024  # whole sequence in one micro-batch
    assert ctx.n_ctx == 512  # never past the trained context
    assert ctx.n_seq_max == llamabatch.max_parallel_sequences()
    with pytest.raises(ValueError, match="above the 512 tokens this model was trained on"):
        Context(minilm, n_ctx=1024, embeddings=True)
    with pytest.raises(ValueError, match="non-causal"):
        Context(minilm, n_batch=512, n_ubatch=128, embeddings=True)
    with pytest.raises(ValueError, match="above llama.cpp's limit"):
        Context(minilm, n_seq_max=100000, embeddings=True)


def test_run_packed_matches_run_and_checks_offsets():
    seqs = [np.arange(1, n + 1, dtype=np.int32) for n in (5, 1, 9, 3, 7) * 10]
    flat = np.concatenate(seqs)
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in seqs])]).astype(np.int64)
    a = Engine(n_batch=16, n_seq_max=3).run(seqs)
    b = Engine(n_batch=16, n_seq_max=3).run_packed(flat, offsets)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="must be non-decreasing"):
        Engine(16, 3).run_packed(flat, np.array([0, 5, 2], dtype=np.int64))
    with pytest.raises(TypeError, match="int32"):
        Engine(16, 3).run_packed(flat.astype(np.float32), offsets)
