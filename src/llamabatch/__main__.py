"""`python -m llamabatch`: embed the shipped captions with the default model.

Prints the matrix shape, the speed, and the nearest neighbours of one caption:
the whole package in one command.
"""
from __future__ import annotations

import argparse
import time
from importlib import resources

import numpy as np

from . import Embedder


def sample_captions() -> list[str]:
    """The 300 food and drink captions shipped in llamabatch/data/captions.txt."""
    text = resources.files("llamabatch.data").joinpath("captions.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llamabatch", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="catalogue name or .gguf path (default: all-minilm-l6-v2)")
    parser.add_argument("--query", type=int, default=0, help="index of the caption whose neighbours to show")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)

    texts = sample_captions()
    embedder = Embedder(args.model, n_threads=args.threads)
    embedder.encode(texts[:8])  # warm-up: first-touch of the weights is not throughput
    embedder.reset_stats()
    t0 = time.perf_counter()
    vectors = np.asarray(embedder.encode(texts, show_progress=True))  # pooled: one row per text
    seconds = time.perf_counter() - t0
    stats = embedder.stats

    print(f"model:      {embedder.model.path} (on {embedder.device})")
    print(f"embeddings: {vectors.shape} {vectors.dtype}")
    print(f"speed:      {len(texts) / seconds:.0f} texts/s, {stats['tokens'] / seconds:.0f} tokens/s "
          f"({stats['decodes']} decodes, {100 * stats['decode_seconds'] / seconds:.0f}% of the time in llama.cpp)")
    q = args.query % len(texts)
    scores = vectors @ vectors[q]
    order = [i for i in np.argsort(-scores) if i != q][:3]
    print(f"\nnearest to [{q}] {texts[q]!r}:")
    for i in order:
        print(f"  {scores[i]:.3f}  [{i}] {texts[i]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
