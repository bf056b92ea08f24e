"""Every input that aborts inside llama.cpp (see the project notes) raises in Python first.

An abort would take the whole pytest process down, so each of these passing in
process is the proof; none of them needs a subprocess.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

import llamabatch
from llamabatch import Batch, Context, Embedder, Generator


def test_non_causal_sequence_longer_than_the_micro_batch(minilm, minilm_path):
    # llama.cpp: "encoder requires n_ubatch >= n_tokens", an abort.
    with pytest.raises(ValueError, match="above the limit of 32"):
        Embedder(minilm_path, n_batch=32).encode(["word " * 40])
    ctx = Context(minilm, n_batch=32, embeddings=True)
    b = Batch(64, n_seq_max=1)
    b.add_sequence(list(range(1000, 1040)), seq_id=0)
    with pytest.raises(ValueError, match="above this context's n_batch 32"):
        ctx.decode(b)


def test_sequence_past_the_trained_context_with_a_larger_micro_batch(minilm, minilm_path):
    # llama.cpp: a position-index assert, even when n_ubatch holds the sequence.
    with pytest.raises(ValueError, match="above the limit of 512"):
        Embedder(minilm_path, n_batch=2048).encode("word " * 800)
    ctx = Context(minilm, n_batch=1024, embeddings=True)
    b = Batch(1024, n_seq_max=1)
    b.add_sequence([1000] * 600, seq_id=0)
    with pytest.raises(ValueError, match="past the 512 positions"):
        ctx.decode(b)


def test_more_sequences_than_batch_tokens(minilm, minilm_path, smollm_path):
    # llama.cpp aborts creating a context with n_seq_max > n_batch; we cap it.
    ctx = Context(minilm, n_batch=8, n_seq_max=16, embeddings=True)
    assert ctx.n_seq_max == 8
    assert Embedder(minilm_path, n_batch=8, n_seq_max=16).n_seq_max == 8
    with pytest.raises(ValueError, match="n_batch 4 is below n_parallel 16"):
        Generator(smollm_path, n_parallel=16, n_batch=4, n_ctx=64)


def test_more_sequences_than_llama_cpp_allows(minilm, smollm_path):
    limit = llamabatch.max_parallel_sequences()
    with pytest.raises(ValueError, match=f"above llama.cpp's limit of {limit}"):
        Context(minilm, n_seq_max=limit + 1, embeddings=True)
    with pytest.raises(ValueError, match=f"must be in 1..{limit}"):
        Generator(smollm_path, n_parallel=limit + 1, n_ctx=64)


def test_prompt_longer_than_the_generation_context(smollm_path):
    gen = Generator(smollm_path, n_parallel=2, n_ctx=64, n_threads=1)
    with pytest.raises(ValueError, match="prompt 1 has 201 tokens, above the limit of 64"):
        gen.generate(["short", "word " * 200])
    assert gen.generate(["1, 2, 3,"], max_new_tokens=2)  # still usable


def test_importing_llamabatch_turns_off_ggmls_debugger_backtrace():
    # A stray abort must not start gdb; children (and ggml's getenv) see the setting.
    code = ("import subprocess, llamabatch; "
            "print(subprocess.check_output(['sh', '-c', 'echo $GGML_NO_BACKTRACE'], text=True).strip())")
    env = {k: v for k, v in __import__("os").environ.items() if k != "GGML_NO_BACKTRACE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "1"
