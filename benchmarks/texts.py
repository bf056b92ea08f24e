"""Deterministic benchmark corpus: English-like texts of 10-120 words, no downloads.

>>> from benchmarks.texts import make_texts
>>> texts = make_texts(2000)          # the same list on every machine and run

Texts are seeded random sentences over a food / travel / tech vocabulary. Lengths
are mixed: most texts are short (like queries and titles), some are paragraphs,
so the packer sees the spread a real embedding workload has. Every text stays
well under 256 tokens (sentence-transformers' limit for all-MiniLM-L6-v2), so all
contenders embed exactly the same tokens.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

DEFAULT_N = 2000
DEFAULT_SEED = 1234

_SUBJECTS = [
    "the chef", "our guide", "a traveller", "the developer", "my neighbour", "the barista",
    "a small startup", "the night train", "this laptop", "the hotel", "a street vendor",
    "the engineer", "the team", "her grandmother", "the pilot", "a food critic", "the server",
    "the museum", "an old ferry", "the compiler", "the tour bus", "the bakery", "a student",
]
_VERBS = [
    "prepared", "recommended", "booked", "debugged", "tasted", "visited", "compiled", "shipped",
    "reviewed", "packed", "roasted", "deployed", "photographed", "ordered", "crossed", "cached",
    "simmered", "explored", "benchmarked", "served", "rebuilt", "described", "missed", "found",
]
_ADJECTIVES = [
    "spicy", "crowded", "quiet", "fast", "fragile", "fresh", "ancient", "remote", "cheap",
    "expensive", "crispy", "sunny", "noisy", "efficient", "slow", "delicious", "rainy", "modern",
    "tiny", "enormous", "bitter", "sweet", "reliable", "broken", "colourful", "distributed",
]
_OBJECTS = [
    "noodle soup", "mountain village", "database server", "sourdough bread", "airport lounge",
    "espresso", "train ticket", "graphics card", "street market", "seafood paella",
    "hiking trail", "web browser", "cheese platter", "harbour", "smartphone", "curry",
    "city map", "neural network", "chocolate cake", "beach hut", "keyboard", "green tea",
    "passport", "cloud cluster", "olive oil", "ski resort", "source code", "dumplings",
    "railway station", "battery pack", "fruit salad", "night market", "operating system",
]
_PLACES = [
    "in Lisbon", "near the old port", "at the conference", "before sunrise", "in the kitchen",
    "on the ferry", "after the update", "in a tiny cafe", "during the storm", "at the border",
    "in the data centre", "on a rainy Sunday", "by the river", "in Kyoto", "at midnight",
    "during the holidays", "in the mountains", "on the train to Vienna", "at the food court",
]
_CONNECTORS = ["and", "but", "because", "while", "although", "so", "after", "when"]
_OPENERS = ["Honestly,", "Later,", "Surprisingly,", "In the end,", "Meanwhile,", "Once again,", "Yesterday,"]


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_SUBJECTS), rng.choice(_VERBS), "a" if rng.random() < 0.5 else "the",
             rng.choice(_ADJECTIVES), rng.choice(_OBJECTS)]
    if rng.random() < 0.6:
        words.append(rng.choice(_PLACES))
    if rng.random() < 0.4:
        words += [rng.choice(_CONNECTORS), rng.choice(_SUBJECTS), rng.choice(_VERBS), "the",
                  rng.choice(_OBJECTS)]
    if rng.random() < 0.2:
        words.insert(0, rng.choice(_OPENERS))
    s = " ".join(words)
    return s[0].upper() + s[1:] + rng.choice([".", ".", ".", "!", "?"])


def _length(rng: random.Random) -> int:
    """Target word count: mostly short texts, a tail of paragraphs (10-120 words)."""
    u = rng.random()
    if u < 0.5:
        return rng.randint(10, 25)
    if u < 0.8:
        return rng.randint(26, 60)
    return rng.randint(61, 120)


def make_text(rng: random.Random, n_words: int) -> str:
    words: list[str] = []
    while len(words) < n_words:
        words += _sentence(rng).split()
    words = words[:n_words]
    text = " ".join(words)
    if text[-1] not in ".!?":
        text += "."
    return text


def make_texts(n: int = DEFAULT_N, seed: int = DEFAULT_SEED) -> list[str]:
    """n texts of 10-120 words; the same list for the same (n, seed)."""
    rng = random.Random(seed)
    return [make_text(rng, _length(rng)) for _ in range(n)]


if __name__ == "__main__":
    import statistics

    texts = make_texts()
    counts = [len(t.split()) for t in texts]
    print(f"{len(texts)} texts, words min {min(counts)} median {statistics.median(counts)} "
          f"mean {statistics.mean(counts):.1f} max {max(counts)}")
    for t in texts[:3]:
        print("-", t)


# Chat prompt pieces shared by the generation benchmarks: ASKS[i].format(d=DISHES[j]).
DISHES = ["ramen", "paella", "tacos", "pho", "risotto", "curry", "falafel", "pierogi", "sushi", "goulash",
          "lasagne", "biryani", "ceviche", "moussaka", "dumplings", "shakshuka"]
ASKS = ["Describe {d} in one sentence.", "Give a short recipe for {d}.", "What country is {d} from?",
        "List three ingredients of {d}.", "Write a two-line poem about {d}.",
        "Suggest a drink to serve with {d}, and say why.", "Tell me a fun fact about {d}.",
        "How do you pronounce {d}? Answer briefly."]


# Fixed-length regimes for side-by-side embedding benchmarks (bench_embed_peers.py).
# Word ranges give about 16 / 63 / 180 all-MiniLM-L6-v2 tokens per text (with [CLS]
# and [SEP]); "long" stays well under the 256 tokens at which sentence-transformers
# truncates that model, so every contender embeds the same tokens.
REGIME_WORDS = {"short": (9, 15), "medium": (46, 56), "long": (140, 160)}
REGIMES = (*REGIME_WORDS, "multilingual")
MULTILINGUAL_CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "multilingual_corpus.json"


def multilingual_texts() -> list[str]:
    """The texts of tests/data/multilingual_corpus.json, in file order."""
    return [row["text"] for row in json.loads(MULTILINGUAL_CORPUS.read_text(encoding="utf-8"))]


def make_regime_texts(regime: str, n: int, seed: int = DEFAULT_SEED) -> list[str]:
    """n texts of one length regime; the same list for the same (regime, n, seed).

    "short", "medium", "long": English sentences (the generator above) cut to a word
    count drawn uniformly from REGIME_WORDS[regime]. "multilingual": the shipped
    multilingual corpus repeated (and cut) to n texts; seed is unused there.
    """
    if regime == "multilingual":
        base = multilingual_texts()
        return [base[i % len(base)] for i in range(n)]
    if regime not in REGIME_WORDS:
        raise ValueError(f"unknown regime {regime!r}; expected one of {', '.join(REGIMES)}")
    lo, hi = REGIME_WORDS[regime]
    rng = random.Random(f"{regime}-{seed}")
    return [make_text(rng, rng.randint(lo, hi)) for _ in range(n)]
