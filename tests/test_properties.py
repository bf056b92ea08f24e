"""Property-based tests: random operations and inputs never crash and match a plain model."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llamabatch import Batch

CAPACITY, N_SEQ_MAX = 24, 3


class BatchModel:
    """What a Batch should hold, in plain Python."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, int, tuple[int, ...], int]] = []  # token, pos, seq ids, output

    def fits(self, n: int, n_seqs: int = 1) -> bool:
        used = {s for _, _, ids, _ in self.rows for s in ids}
        return len(self.rows) + n <= CAPACITY and len(used) + n_seqs <= N_SEQ_MAX


ops = st.one_of(
    st.tuples(st.just("add"), st.integers(-5, 50), st.integers(-2, 40),
              st.lists(st.integers(-1, N_SEQ_MAX), min_size=0, max_size=N_SEQ_MAX + 1), st.booleans()),
    st.tuples(st.just("add_sequence"), st.lists(st.integers(0, 100), max_size=12), st.integers(-1, N_SEQ_MAX),
              st.integers(-1, 5), st.sampled_from(["all", "last", "none", "bad"])),
    st.tuples(st.just("clear")),
    st.tuples(st.just("write"), st.integers(0, CAPACITY - 1), st.integers(0, 1000)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(ops, max_size=30))
def test_random_batch_operations_match_a_plain_model(operations):
    b, model = Batch(CAPACITY, n_seq_max=N_SEQ_MAX), BatchModel()
    token_view = b.token  # one view taken up front must see every change
    for op in operations:
        if op[0] == "add":
            _, token, pos, ids, out = op
            valid = 1 <= len(ids) <= N_SEQ_MAX and pos >= 0 and all(0 <= s < N_SEQ_MAX for s in ids) \
                and len(model.rows) < CAPACITY
            if valid:
                b.add(token, pos, ids, output=out)
                model.rows.append((token, pos, tuple(ids), int(out)))
            else:
                with pytest.raises(ValueError):
                    b.add(token, pos, ids, output=out)
        elif op[0] == "add_sequence":
            _, tokens, seq, pos0, output = op
            valid = 0 <= seq < N_SEQ_MAX and pos0 >= 0 and output != "bad" and len(model.rows) + len(tokens) <= CAPACITY
            if valid:
                b.add_sequence(np.array(tokens, dtype=np.int32), seq, pos0=pos0, output=output)
                for k, t in enumerate(tokens):
                    flag = output == "all" or (output == "last" and k == len(tokens) - 1)
                    model.rows.append((t, pos0 + k, (seq,), int(flag)))
            else:
                with pytest.raises(ValueError):
                    b.add_sequence(np.array(tokens, dtype=np.int32), seq, pos0=pos0, output=output)
        elif op[0] == "clear":
            b.clear()
            model.rows.clear()
        else:
            _, i, value = op
            token_view[i] = value
            if i < len(model.rows):
                t, p, ids, o = model.rows[i]
                model.rows[i] = (value, p, ids, o)
        n = len(model.rows)
        assert b.n_tokens == len(b) == n
        assert list(b.token[:n]) == [r[0] for r in model.rows] == list(token_view[:n])
        assert list(b.pos[:n]) == [r[1] for r in model.rows]
        assert list(b.n_seq_id[:n]) == [len(r[2]) for r in model.rows]
        assert [tuple(b.seq_id[i, : len(r[2])]) for i, r in enumerate(model.rows)] == [r[2] for r in model.rows]
        assert list(b.logits[:n]) == [r[3] for r in model.rows]
        for k in (0, 1, 5):
            assert b.fits(k) == model.fits(k)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(max_size=200), min_size=1, max_size=6))
def test_random_unicode_through_tokenize_and_encode(embedder, texts):
    tokens = embedder.tokenize(texts)
    assert len(tokens) == len(texts) and all(t.dtype == np.int32 for t in tokens)
    out = embedder.encode(texts, truncate=True)
    assert out.shape == (len(texts), embedder.n_embd) and np.isfinite(out).all()
    again = embedder.encode(texts, truncate=True)
    np.testing.assert_allclose(out, again, atol=1e-6)  # deterministic


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(max_size=64).map(lambda b: b.decode("utf-8", errors="surrogateescape")), min_size=1,
                max_size=4))
def test_binaryish_strings_raise_or_embed_never_crash(embedder, texts):
    try:
        out = embedder.encode(texts, truncate=True)
    except (UnicodeEncodeError, ValueError):
        return  # lone surrogates cannot be UTF-8: a clean Python error
    assert np.isfinite(out).all()


@pytest.fixture(scope="module")
def embedding_context(minilm):
    from llamabatch import Context

    return Context(minilm, n_batch=32, embeddings=True)


@settings(max_examples=40, deadline=None)
@given(width=st.integers(1, 2048).filter(lambda w: w != 384), n=st.integers(1, 8))
def test_embedding_batches_of_another_width_are_refused(embedding_context, width, n):
    """A Batch of input embeddings is decoded only at the model's own width:
    any other would let llama.cpp read n x 384 floats from n x width."""
    b = Batch(8, embd=width)
    b.n_tokens = n
    b.n_seq_id[:n] = 1
    b.seq_id[:n, 0] = 0
    b.pos[:n] = np.arange(n)
    with pytest.raises(ValueError, match=f"embeddings of width {width}, but the model reads 384"):
        embedding_context.decode(b)


FLIP_CHILD = r"""
import random, sys, llamabatch
src, dst, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = bytearray(open(src, "rb").read(400_000))  # header, metadata and the first tensors
rng = random.Random(seed)
for _ in range(rng.randint(1, 8)):
    data[rng.randrange(8, 60_000)] = rng.randrange(256)  # flips in the header and metadata
cut = rng.choice([len(data), rng.randrange(4, len(data))])
open(dst, "wb").write(bytes(data[:cut]))
try:
    llamabatch.Model(dst)
except ValueError:
    pass
print("OK")
"""


@pytest.mark.parametrize("seed", range(8))
def test_byte_flipped_and_truncated_gguf_never_aborts(minilm_path, tmp_path, seed):
    env = dict(os.environ, GGML_NO_BACKTRACE="1")
    r = subprocess.run([sys.executable, "-c", FLIP_CHILD, minilm_path, str(tmp_path / "bad.gguf"), str(seed)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and "OK" in r.stdout, (r.returncode, r.stderr[-2000:])
