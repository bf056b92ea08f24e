"""Prompt-prefix reuse (Generator(prefix_cache=True), the default): a prompt starts
from the longest prefix it shares with what a slot last ran, and decodes the rest.

The exactness checks run batch-invariant, where a prefix decoded in an earlier
batch has the same bits as one decoded now, so a completion must not change by
a single token whether its prefix came from memory or not."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from llamabatch import Generator
from llamabatch.generator import SamplingOptions

SYSTEM_A = ("You read a photo caption and list every food and drink in it as JSON with the keys "
            "food and drink, each a list of lowercase names. Say nothing else.")
SYSTEM_B = "You are a poet. Answer every message with a two-line rhyme about it."
CAPTIONS = ["A plate of pasta with tomato sauce and a glass of red wine.", "Two slices of pizza and a cola.",
            "A bowl of ramen with a soft egg.", "Pancakes with maple syrup and black coffee.",
            "A green salad with grilled chicken.", "Sushi rolls and a cup of green tea.",
            "A burger with fries and a milkshake.", "Three tacos and a lemonade."]


@pytest.fixture(scope="module")
def cached(smollm_path) -> Generator:
    return Generator(smollm_path, n_parallel=4, n_threads=2, batch_invariant=True)


@pytest.fixture(scope="module")
def uncached(smollm_path) -> Generator:
    return Generator(smollm_path, n_parallel=4, n_threads=2, batch_invariant=True, prefix_cache=False)


def tokens_of(completions):
    return [c.tokens.tolist() for c in completions]


def test_a_shared_system_prompt_is_decoded_once_per_slot_with_the_same_completions(cached, uncached):
    prompts = CAPTIONS * 2
    cached.reset_stats()
    uncached.reset_stats()
    first = cached.generate_details(prompts, chat=True, system=SYSTEM_A, max_new_tokens=12)
    plain = uncached.generate_details(prompts, chat=True, system=SYSTEM_A, max_new_tokens=12)
    assert tokens_of(first) == tokens_of(plain)
    assert [c.text for c in first] == [c.text for c in plain]

    n_system = len(cached.prompt_tokens("", chat=True, system=SYSTEM_A)) - 8  # the part before any caption
    assert cached.prefix_cache and not uncached.prefix_cache
    assert all(c.cached_tokens == 0 for c in plain)
    assert uncached.stats["cached_tokens"] == 0
    # Slots start empty, once each; every later prompt finds the system prompt in its slot.
    assert sum(c.cached_tokens == 0 for c in first[:4]) >= 1
    assert all(c.cached_tokens >= n_system for c in first[4:])
    stats = cached.stats
    assert stats["cached_tokens"] == sum(c.cached_tokens for c in first)
    assert stats["batch_tokens"] + stats["cached_tokens"] == uncached.stats["batch_tokens"]
    assert stats["prompt_tokens"] == uncached.stats["prompt_tokens"]


def test_a_repeated_prompt_decodes_only_its_last_token(cached, uncached):
    prompt = cached.prompt_tokens("Name three fruits.", chat=True)
    first = cached.generate_details([prompt], max_new_tokens=8)[0]
    again = cached.generate_details([prompt], max_new_tokens=8)[0]
    assert again.cached_tokens == len(prompt) - 1  # its logits give the first new token
    assert again.tokens.tolist() == first.tokens.tolist()
    assert uncached.generate_details([prompt], max_new_tokens=8)[0].tokens.tolist() == first.tokens.tolist()


def test_a_conversation_that_goes_on_decodes_only_its_new_turn(smollm_path):
    gen = Generator(smollm_path, n_parallel=1, n_threads=2, batch_invariant=True)
    fresh = Generator(smollm_path, n_parallel=1, n_threads=2, batch_invariant=True, prefix_cache=False)
    turn1 = gen.prompt_tokens("Tell me about tea.", chat=True)
    reply = gen.generate_details([turn1], max_new_tokens=10)[0]
    assert reply.finish_reason == "length"
    turn2 = np.concatenate([turn1, reply.tokens, gen.prompt_tokens("And coffee?")]).astype(np.int32)
    second = gen.generate_details([turn2], max_new_tokens=10)[0]
    # All of turn 1 and the reply but its last token (sampled, never fed back) are in memory.
    assert second.cached_tokens == len(turn1) + len(reply.tokens) - 1
    assert second.tokens.tolist() == fresh.generate_details([turn2], max_new_tokens=10)[0].tokens.tolist()


def test_each_prompt_takes_the_slot_that_holds_its_prefix(smollm_path):
    gen = Generator(smollm_path, n_parallel=2, n_threads=2, batch_invariant=True)
    a = gen.prompt_tokens(CAPTIONS[0], chat=True, system=SYSTEM_A)
    b = gen.prompt_tokens(CAPTIONS[0], chat=True, system=SYSTEM_B)
    gen.generate_details([a, b], max_new_tokens=4)  # slot 0 holds A's system prompt, slot 1 B's
    for system in (SYSTEM_B, SYSTEM_A, SYSTEM_B):
        prompt = gen.prompt_tokens(CAPTIONS[1], chat=True, system=system)
        n_shared = len(gen.prompt_tokens("", chat=True, system=system)) - 8
        assert gen.generate_details([prompt], max_new_tokens=4)[0].cached_tokens >= n_shared


def test_a_burst_of_prompts_copies_the_prefix_one_slot_holds(smollm_path, uncached):
    gen = Generator(smollm_path, n_parallel=4, n_threads=2, batch_invariant=True)
    n_system = len(gen.prompt_tokens("", chat=True, system=SYSTEM_A)) - 8
    gen.generate_details(CAPTIONS[:1], chat=True, system=SYSTEM_A, max_new_tokens=4)  # slot 0 holds it
    gen.reset_stats()
    burst = gen.generate_details(CAPTIONS[1:5], chat=True, system=SYSTEM_A, max_new_tokens=8)
    # One prompt takes slot 0; the other three take copies of its memory.
    assert all(c.cached_tokens >= n_system for c in burst), [c.cached_tokens for c in burst]
    assert gen.stats["prefix_copies"] == 3
    want = uncached.generate_details(CAPTIONS[1:5], chat=True, system=SYSTEM_A, max_new_tokens=8)
    assert tokens_of(burst) == tokens_of(want)
    # A copy made while its source is running: the source goes on undisturbed.
    eight = SamplingOptions(max_new_tokens=8)
    ids = [gen.submit(gen.prompt_tokens(CAPTIONS[6], chat=True, system=SYSTEM_B), eight)]
    gen.step()
    ids.append(gen.submit(gen.prompt_tokens(CAPTIONS[7], chat=True, system=SYSTEM_B), eight))
    done = {}
    while not gen.idle:
        done.update({ev.id: ev.completion for ev in gen.step() if ev.finished})
    for i, caption in zip(ids, CAPTIONS[6:8]):
        fresh = uncached.generate_details([caption], chat=True, system=SYSTEM_B, max_new_tokens=8)[0]
        assert done[i].tokens.tolist() == fresh.tokens.tolist()
    assert done[ids[1]].cached_tokens >= len(gen.prompt_tokens("", chat=True, system=SYSTEM_B)) - 8


def test_submitted_requests_and_cancelled_ones_keep_the_memory_right(cached, uncached):
    prompts = [cached.prompt_tokens(c, chat=True, system=SYSTEM_B) for c in CAPTIONS[:6]]
    ids = [cached.submit(p) for p in prompts]
    cached.step()
    cached.step()
    assert cached.cancel(ids[1]) and cached.cancel(ids[5])  # one running (maybe mid-prompt), one queued
    done = {}
    while not cached.idle:
        for ev in cached.step():
            if ev.finished:
                done[ev.id] = ev.completion
    assert sorted(done) == [ids[0], ids[2], ids[3], ids[4]]
    # After the cancels, what each slot holds is still what its tokens say.
    for prompt in prompts:
        want = uncached.generate_details([prompt], max_new_tokens=8)[0]
        got = cached.generate_details([prompt], max_new_tokens=8)[0]
        assert got.tokens.tolist() == want.tokens.tolist()


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(picks=st.lists(st.tuples(st.integers(0, 2), st.integers(0, len(CAPTIONS) - 1), st.integers(1, 12)),
                      min_size=1, max_size=7))
def test_any_mix_of_shared_prefixes_gives_the_completions_of_a_fresh_decode(cached, uncached, picks):
    """Prompts sharing none, some or all of a prefix, cut at any token, in any order."""
    systems = [SYSTEM_A, SYSTEM_B, None]
    prompts = []
    for system, caption, cut in picks:
        full = cached.prompt_tokens(CAPTIONS[caption], chat=True, system=systems[system])
        prompts.append(full[:max(1, len(full) - cut)])
    got = cached.generate_details(prompts, max_new_tokens=5)
    want = uncached.generate_details(prompts, max_new_tokens=5)
    assert tokens_of(got) == tokens_of(want)
    assert [c.prompt_tokens for c in got] == [len(p) for p in prompts]
    assert all(0 <= c.cached_tokens < c.prompt_tokens for c in got)


def test_the_default_mode_reuses_prefixes_too(smollm_path):
    gen = Generator(smollm_path, n_parallel=2, n_threads=2)
    out = gen.generate_details(CAPTIONS[:4], chat=True, system=SYSTEM_A, max_new_tokens=4)
    assert [c.cached_tokens > 0 for c in out] == [False, False, True, True]
    assert not Generator(smollm_path, n_parallel=2, n_threads=2, prefix_cache=False).prefix_cache
