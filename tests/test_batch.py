"""Batch: the buffers of a llama_batch, seen from numpy without copies."""
from __future__ import annotations

import gc

import numpy as np
import pytest

from llamabatch import Batch


def test_views_are_zero_copy_and_stable():
    b = Batch(16, n_seq_max=4)
    tok, tok_again = b.token, b.token
    assert tok.dtype == np.int32 and tok.shape == (16,)
    assert np.shares_memory(tok, tok_again)
    assert tok.ctypes.data == tok_again.ctypes.data
    assert b.seq_id.shape == (16, 4) and b.seq_id.dtype == np.int32
    assert b.logits.dtype == np.int8
    # The seq-id block is one contiguous capacity x n_seq_max array.
    assert b.seq_id.flags.c_contiguous


def test_add_sequence_fills_arrays_and_positions_restart_per_sequence():
    b = Batch(32, n_seq_max=3)
    b.add_sequence(np.array([5, 6, 7], dtype=np.int32), seq_id=0)
    b.add_sequence(np.array([8, 9], dtype=np.int64), seq_id=1, output="last")
    b.add_sequence([10, 11, 12, 13], seq_id=2, pos0=4, output="none")
    assert len(b) == b.n_tokens == 9
    assert b.n_seqs == 3
    np.testing.assert_array_equal(b.token[:9], [5, 6, 7, 8, 9, 10, 11, 12, 13])
    np.testing.assert_array_equal(b.pos[:9], [0, 1, 2, 0, 1, 4, 5, 6, 7])
    np.testing.assert_array_equal(b.seq_id[:9, 0], [0, 0, 0, 1, 1, 2, 2, 2, 2])
    np.testing.assert_array_equal(b.n_seq_id[:9], [1] * 9)
    np.testing.assert_array_equal(b.logits[:9], [1, 1, 1, 0, 1, 0, 0, 0, 0])


def test_add_token_with_several_sequences():
    b = Batch(4, n_seq_max=3)
    b.add(42, 0, [0, 2], output=True)
    b.add(43, 1, 1)
    assert b.n_seq_id[0] == 2 and list(b.seq_id[0, :2]) == [0, 2]
    assert b.n_seqs == 3
    assert list(b.logits[:2]) == [1, 0]


def test_write_through_view_reaches_cpp():
    b = Batch(8)
    b.add_sequence(np.arange(4), seq_id=0)
    b.token[2] = 99
    fresh = b.token  # a new view reads the C++ memory again
    assert fresh[2] == 99
    b.pos[:4] = [3, 4, 5, 6]
    assert list(b.pos[:4]) == [3, 4, 5, 6]


def test_view_outlives_batch():
    b = Batch(1024, n_seq_max=2)
    b.add_sequence(np.arange(100, 110), seq_id=1)
    tok, seq = b.token, b.seq_id
    del b
    gc.collect()
    # Allocate to make reuse of freed memory likely if the views did not own it.
    junk = [np.full(1024, -1, dtype=np.int32) for _ in range(50)]
    assert list(tok[:10]) == list(range(100, 110))
    assert seq[5, 0] == 1
    del junk


def test_clear_keeps_storage():
    b = Batch(8, n_seq_max=2)
    ptr = b.token.ctypes.data
    b.add_sequence([1, 2, 3], seq_id=0)
    b.clear()
    assert b.n_tokens == 0 and b.n_seqs == 0
    assert b.token.ctypes.data == ptr


def test_fits_by_tokens_and_by_sequences():
    b = Batch(10, n_seq_max=2)
    assert b.fits(10) and not b.fits(11)
    b.add_sequence([1] * 6, seq_id=0)
    assert b.fits(4) and not b.fits(5)  # by tokens
    b.add_sequence([1], seq_id=1)
    assert not b.fits(1)  # by sequence count: both seq ids used
    assert b.fits(1, n_seqs=0)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda b: b.add_sequence([1] * 9, seq_id=0), "batch is full: 0 of 8"),
        (lambda b: b.add_sequence([1], seq_id=2), "seq id 2 is out of range.*0..1"),
        (lambda b: b.add_sequence([1], seq_id=-1), "seq id -1 is out of range"),
        (lambda b: b.add(1, 0, [0, 1, 1]), "1..2 sequences, got 3"),
        (lambda b: b.add(1, -3, 0), "position -3 is negative"),
        (lambda b: b.add_sequence([1], seq_id=0, pos0=-1), "pos0 -1 is negative"),
        (lambda b: b.add_sequence([1], seq_id=0, output="some"), "output 'some'"),
        (lambda b: b.add_sequence(np.ones((2, 2), dtype=np.int32), seq_id=0), "must be 1-D"),
        (lambda b: b.add_sequence([2**40], seq_id=0), "does not fit a 32-bit"),
        (lambda b: setattr(b, "n_tokens", 9), "outside 0..8"),
    ],
)
def test_bad_input_raises_value_error(call, match):
    b = Batch(8, n_seq_max=2)
    with pytest.raises(ValueError, match=match):
        call(b)
    assert b.n_tokens == 0  # nothing half-added


def test_non_integer_tokens_raise_type_error():
    b = Batch(8)
    with pytest.raises(TypeError, match="must hold integers, got dtype float64"):
        b.add_sequence(np.array([1.5, 2.0]), seq_id=0)
    with pytest.raises(TypeError, match="not text"):
        b.add_sequence("hello", seq_id=0)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="capacity must be at least 1"):
        Batch(0)
    with pytest.raises(ValueError, match="n_seq_max must be at least 1"):
        Batch(4, n_seq_max=0)


def test_embedding_batch():
    b = Batch(4, embd=3)
    assert b.embeddings.shape == (4, 3)
    with pytest.raises(ValueError, match="carries embeddings"):
        b.add_sequence([1], seq_id=0)
    with pytest.raises(ValueError, match="carries embeddings"):
        b.token
