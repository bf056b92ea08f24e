"""pytest-benchmark micro-benchmarks of llamabatch's hot paths.

    python -m pytest benchmarks/ --benchmark-only

Not part of the main test suite (pytest's testpaths is tests/). Skips cleanly
when pytest-benchmark is missing, and the model-backed ones when the default
GGUF cannot be had.
"""
from __future__ import annotations

import os

import pytest

pytest.importorskip("pytest_benchmark")

from llamabatch import Embedder, Engine  # noqa: E402
from texts import make_texts  # noqa: E402  (benchmarks/ is on sys.path: rootdir-less test module)

N_TEXTS = 2000


@pytest.fixture(scope="module")
def texts():
    return make_texts(N_TEXTS)


@pytest.fixture(scope="module")
def embedder():
    try:
        return Embedder(n_threads=os.cpu_count())
    except Exception as e:  # no model on this machine and no way to fetch it
        pytest.skip(f"default embedding model unavailable: {e}")


@pytest.fixture(scope="module")
def token_arrays(embedder, texts):
    return embedder.tokenize(texts)


def test_dry_run_packing(benchmark, token_arrays):
    """Engine(512, 256).run() over the 2,000 tokenized texts, no decoding."""
    engine = Engine(512, 256)
    placement = benchmark(engine.run, token_arrays)
    assert placement.shape == (len(token_arrays), 3)
    benchmark.extra_info["tokens"] = int(sum(len(t) for t in token_arrays))


def test_tokenize(benchmark, embedder, texts):
    """Embedder.tokenize() of the 2,000 texts (multi-threaded C++ tokenizer)."""
    out = benchmark(embedder.tokenize, texts)
    assert len(out) == len(texts)


def test_encode_64_short(benchmark, embedder):
    """Embedder.encode() of 64 short texts (10-25 words): one decode."""
    short = [t for t in make_texts(400, seed=7) if len(t.split()) <= 25][:64]
    assert len(short) == 64
    out = benchmark.pedantic(embedder.encode, args=(short,), rounds=5, iterations=1, warmup_rounds=1)
    assert out.shape == (64, embedder.n_embd)
