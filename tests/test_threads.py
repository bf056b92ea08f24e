"""Threads: one object shared by several threads is safe (calls take turns and
give the results of sequential calls); separate objects run in parallel because
the GIL is released while llama.cpp works."""
from __future__ import annotations

import threading

import numpy as np

import llamabatch
from llamabatch import Embedder, Engine, Generator

TEXTS = [f"caption {i}: " + "iced tea with lemon and mint " * (1 + i % 7) for i in range(120)]


def _in_threads(fn, n: int) -> list:
    """Runs fn(i) in n threads started together; returns results in thread order, re-raising errors."""
    results: list = [None] * n
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def work(i: int) -> None:
        try:
            start.wait()
            results[i] = fn(i)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    if errors:
        raise errors[0]
    return results


def test_one_embedder_shared_by_threads_equals_sequential_calls(minilm_path):
    emb = Embedder(minilm_path, n_threads=1)
    slices = [TEXTS[i::4] for i in range(4)]
    expected = [emb.encode(s, batch_size=8) for s in slices]
    for _ in range(3):
        got = _in_threads(lambda i: emb.encode(slices[i], batch_size=8), 4)
        for g, e in zip(got, expected):
            np.testing.assert_array_equal(g, e)


def test_one_generator_shared_by_threads_equals_sequential_calls(smollm_path):
    gen = Generator(smollm_path, n_parallel=4, n_ctx=256, n_threads=1)
    prompts = [["The capital of France is", "1, 2, 3,"], ["Tea is", "Once upon a time"]]
    expected = [gen.generate(p, max_new_tokens=8) for p in prompts]
    got = _in_threads(lambda i: gen.generate(prompts[i], max_new_tokens=8), 2)
    assert got == expected


def test_one_dry_run_engine_shared_by_threads():
    engine = Engine(n_batch=64, n_seq_max=8)
    seqs = [np.arange(1, 2 + i % 30, dtype=np.int32) for i in range(500)]
    expected = Engine(n_batch=64, n_seq_max=8).run(seqs)
    for got in _in_threads(lambda i: engine.run(seqs), 4):
        np.testing.assert_array_equal(got, expected)


def test_the_gil_is_released_during_encode(minilm_path):
    emb = Embedder(minilm_path, n_threads=1)
    done = threading.Event()
    ticks = 0

    def encode() -> None:
        try:
            emb.encode(TEXTS * 3, batch_size=4)
        finally:
            done.set()

    worker = threading.Thread(target=encode)
    worker.start()
    # Python code keeps running on this thread while the other one is inside llama.cpp.
    while not done.is_set():
        ticks += 1
        done.wait(0.001)
    worker.join()
    assert ticks > 20, f"only {ticks} ticks of Python ran during encode: was the GIL held?"


def test_separate_embedders_in_separate_threads_overlap(minilm_path):
    embedders = [Embedder(minilm_path, n_threads=1) for _ in range(2)]
    events: list[int] = []
    lock = threading.Lock()

    def run(i: int) -> np.ndarray:
        def progress(_n_done: int) -> None:
            with lock:
                events.append(i)
        # 30 decodes each: progress is reported after every decode.
        return embedders[i]._core.encode(TEXTS, batch_size=4, progress=progress)[0]

    a, b = _in_threads(run, 2)
    np.testing.assert_array_equal(a, b)
    # Each thread's decodes happened while the other was between its first and last one.
    first_1, last_1 = events.index(1), len(events) - 1 - events[::-1].index(1)
    first_0, last_0 = events.index(0), len(events) - 1 - events[::-1].index(0)
    assert first_1 < last_0 and first_0 < last_1, f"the two runs did not overlap: {events}"
    switches = sum(1 for x, y in zip(events, events[1:]) if x != y)
    assert switches >= 4, f"the two runs took turns only {switches} times: {events}"


def test_context_decode_from_threads_takes_turns(minilm):
    ctx = llamabatch.Context(minilm, n_batch=64, n_seq_max=4, embeddings=True)
    batches = []
    for i in range(4):
        b = llamabatch.Batch(64, n_seq_max=4)
        b.add_sequence([101, 7592 + i, 2088, 102], seq_id=0)
        batches.append(b)

    def decode(i: int) -> None:
        for _ in range(25):
            ctx.decode(batches[i])
            ctx.clear_memory()

    _in_threads(decode, 4)  # no crash, no error: decodes were serialised
