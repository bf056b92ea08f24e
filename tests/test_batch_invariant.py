"""Batch-invariant mode: an input's result is the same bits whatever else is in its batch.

Embedder(batch_invariant=True) and Generator(batch_invariant=True) run ggml's
one-path kernels (vendor patch 0003) and pool per sequence; these tests compare
bytes, not closeness.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llamabatch import Embedder, Generator, _core, cli

DATA = Path(__file__).parent / "data"
TOPICS = ["tea", "coffee", "bread", "rice", "apples", "cheese", "pasta", "soup", "tacos", "sushi"]


def _reference_texts() -> list[str]:
    texts = json.loads((DATA / "reference_texts.json").read_text(encoding="utf-8"))
    multilingual = json.loads((DATA / "multilingual_corpus.json").read_text(encoding="utf-8"))
    texts += [t if isinstance(t, str) else t["text"] for t in multilingual[::40]]
    # Long texts too: several 64-token attention tiles, and batches of one text.
    texts += [" ".join(texts[i:i + 5]) for i in range(0, 40, 5)]
    return texts


TEXTS = _reference_texts()


@pytest.fixture(scope="module")
def invariant(minilm_path) -> Embedder:
    return Embedder(minilm_path, n_threads=2, batch_invariant=True)


@pytest.fixture(scope="module")
def alone(invariant) -> np.ndarray:
    """Every reference text encoded by itself: the bytes every batch must give back."""
    return np.stack([invariant.encode([t])[0] for t in TEXTS])


def test_every_reference_text_alone_equals_all_texts_in_one_call(invariant, alone):
    assert invariant.batch_invariant and "batch_invariant=True" in repr(invariant)
    together = invariant.encode(TEXTS)
    assert np.abs(together - alone).max() == 0.0
    assert together.tobytes() == alone.tobytes()


@pytest.mark.parametrize("batch_size", [3, 31, 128])
def test_every_batch_size_gives_the_same_bits(invariant, alone, batch_size):
    assert invariant.encode(TEXTS, batch_size=batch_size).tobytes() == alone.tobytes()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.lists(st.integers(0, len(TEXTS) - 1), min_size=1, max_size=40),
       batch_size=st.one_of(st.none(), st.integers(1, 40)))
def test_any_batch_composition_and_position_gives_the_same_bits(invariant, alone, order, batch_size):
    got = invariant.encode([TEXTS[i] for i in order], batch_size=batch_size)
    assert got.tobytes() == alone[order].tobytes()


@pytest.mark.parametrize("options", [{"n_threads": 1}, {"n_batch": 2048}, {"n_batch": 256, "n_seq_max": 5}],
                         ids=["1-thread", "n_batch-2048", "n_batch-256"])
def test_threads_and_batch_capacity_do_not_change_the_bits(minilm_path, alone, options):
    other = Embedder(minilm_path, batch_invariant=True, **{"n_threads": 2, **options})
    shuffled = np.random.default_rng(0).permutation(len(TEXTS))
    got = other.encode([TEXTS[i] for i in shuffled], truncate=True)
    fits = [k for k, i in enumerate(shuffled) if len(other.tokenize([TEXTS[i]])[0]) <= other.n_ctx]
    assert len(fits) > len(TEXTS) * 0.9
    assert got[fits].tobytes() == alone[shuffled[fits]].tobytes()


@pytest.mark.parametrize("pooling", ["cls", "last", "none"])
def test_other_poolings_are_invariant_too(minilm_path, pooling):
    e = Embedder(minilm_path, n_threads=2, pooling=pooling, batch_invariant=True)
    tokens = [e.tokenize([t])[0] for t in TEXTS[:24]]
    batch = e.embed_tokens(tokens)[0] if pooling == "none" else e.encode(TEXTS[:24])
    single = [e.embed_tokens([t])[0] if pooling == "none" else e.encode([TEXTS[i]]) for i, t in enumerate(tokens)]
    assert np.concatenate(single).tobytes() == np.asarray(batch).tobytes()


def test_the_default_mode_is_not_invariant_and_stays_close(minilm_path, alone):
    """What the mode buys: the default's sums depend on the batch (by about 1e-4),
    and both modes embed alike."""
    default = Embedder(minilm_path, n_threads=2)
    together = default.encode(TEXTS)
    single = np.stack([default.encode([t])[0] for t in TEXTS[:40]])
    assert np.abs(together[:40] - single).max() > 0.0
    cos = np.sum(together * alone, axis=1)
    assert cos.min() > 0.9999


def test_batch_invariance_refuses_what_would_break_it(minilm_path):
    with pytest.raises(ValueError, match="needs flash attention"):
        Embedder(minilm_path, flash_attn=False, batch_invariant=True)
    repacked = _core.Model(minilm_path, n_gpu_layers=0)
    with pytest.raises(ValueError, match="repack=False"):
        _core.Embedder(repacked, batch_invariant=True)
    with pytest.raises(TypeError, match="batch_invariant must be True or False"):
        Embedder(minilm_path, batch_invariant="yes")  # type: ignore[arg-type]
    model = _core.Model(minilm_path, n_gpu_layers=0, repack=False)
    assert not model.repack and _core.Embedder(model, batch_invariant=True).batch_invariant


def _generation_prompts() -> list[str]:
    """The generation tests' prompts: ragged lengths, more prompts than slots."""
    prompts = [f"Write one sentence about {t}." for t in TOPICS]
    prompts += ["Tell me about " + ", ".join(TOPICS * (i + 1)) + "." for i in range(4)]
    prompts += [f"Give a short recipe with {a} and {b}." for a, b in zip(TOPICS, TOPICS[::-1])]
    return prompts


@pytest.fixture(scope="module")
def greedy_one(smollm_path) -> tuple[list[list[int]], list[list[int]]]:
    g = Generator(smollm_path, n_parallel=1, n_threads=1, batch_invariant=True)
    assert g.batch_invariant
    prompts = _generation_prompts()
    chat = [d.tokens.tolist() for d in g.generate_details(prompts, chat=True, max_new_tokens=24)]
    plain = [d.tokens.tolist() for d in g.generate_details(prompts, chat=False, max_new_tokens=24)]
    return chat, plain


@pytest.mark.parametrize("n_parallel,n_threads", [(4, 1), (16, 2), (64, 1)])
def test_greedy_outputs_are_identical_at_every_n_parallel(smollm_path, greedy_one, n_parallel, n_threads):
    g = Generator(smollm_path, n_parallel=n_parallel, n_threads=n_threads, batch_invariant=True)
    prompts = _generation_prompts()
    chat = [d.tokens.tolist() for d in g.generate_details(prompts, chat=True, max_new_tokens=24)]
    plain = [d.tokens.tolist() for d in g.generate_details(prompts, chat=False, max_new_tokens=24)]
    assert chat == greedy_one[0]
    assert plain == greedy_one[1]


def test_sweep_reports_exact_matches_at_every_batch_size(tmp_path):
    code = cli.main(["sweep", "--task", "generate", "--batch-invariant", "--batch-sizes", "1,8",
                                "--limit", "8", "--max-new-tokens", "24", "--threads", "2", "--repeats", "1",
                                "--no-progress", "--out", str(tmp_path)])
    assert code == 0
    result = json.loads((tmp_path / "results.json").read_text())
    assert result["meta"]["batch_invariant"] is True
    assert [r["exact_match_vs_baseline"] for r in result["runs"]] == [1.0, 1.0]


def test_a_batch_invariant_server_answers_each_request_as_if_alone(minilm_path, alone):
    """`llamabatch serve --batch-invariant`: 32 concurrent requests share decodes,
    and each gets the bytes its text gives alone (base64 carries them exactly)."""
    httpx = pytest.importorskip("httpx", reason="the server tests need the test extra")
    pytest.importorskip("fastapi", reason="the server needs the server extra")
    from concurrent.futures import ThreadPoolExecutor

    from server_process import ServerProcess

    server = ServerProcess("--embedding-model", minilm_path, "--batch-invariant", "--threads", "2").wait_ready()
    try:
        def one(i: int) -> bytes:
            with httpx.Client(timeout=120) as c:
                r = c.post(f"{server.url}/v1/embeddings", json={"input": TEXTS[i], "encoding_format": "base64"})
                r.raise_for_status()
                return base64.b64decode(r.json()["data"][0]["embedding"])

        with ThreadPoolExecutor(32) as pool:
            rows = list(pool.map(one, range(32)))
        model = httpx.get(f"{server.url}/v1/models").json()["data"][0]["id"]
        decodes = server.metric("llamabatch_decodes_total", model=model)
    finally:
        assert server.stop() == 0, server.log()[-3000:]
    assert 1 <= decodes < 32, f"{decodes} decodes for 32 requests: they did not share batches"
    assert rows == [alone[i].tobytes() for i in range(32)]
