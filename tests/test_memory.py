"""Leaks: resident memory stops growing over many calls and many create-and-drop cycles.

Each loop runs in a fresh process (so other tests' allocations do not blur the
figure), warms up first (allocator pools, lazily built caches), then measures
VmRSS before and after. The bound, 4 MB, is far below what a leak of even one
small buffer per call would show: 10,000 calls leaking 400 bytes each would
already exceed it, and a leaked context (over 100 MB of compute and cache
buffers) would exceed it on its first cycle.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

BOUND_MB = 4.0

CHILD = r"""
import ctypes, gc, json, sys
from llamabatch import Embedder, Generator, Model

# glibc keeps freed heap pages (a dropped context's ~30 MB of buffers among them)
# and hands them back to the OS only now and then, which moved VmRSS by +-30 MB
# from one cycle to the next with no leak at all. malloc_trim returns what is
# free, so what is left in VmRSS is memory still held: a leak is not trimmed away.
try:
    _trim = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):  # not glibc
    _trim = lambda pad: 0

def rss_mb():
    _trim(0)
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

def measure(step, warmup, n):
    for _ in range(warmup):
        step()
    gc.collect()
    before = rss_mb()
    for _ in range(n):
        step()
    gc.collect()
    return rss_mb() - before

kind, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
if kind == "encode":
    emb = Embedder(path, n_threads=1)
    texts = ["iced tea", "a bowl of ramen with a soft egg"]
    growth = measure(lambda: emb.encode(texts), 500, n)
elif kind == "embedder-cycles":
    growth = measure(lambda: Embedder(path, n_threads=1), 20, n)
elif kind == "model-cycles":
    growth = measure(lambda: Model(path), 20, n)
elif kind == "generate":
    gen = Generator(path, n_parallel=2, n_ctx=128, n_threads=1)
    growth = measure(lambda: gen.generate(["Tea is", "1, 2,"], max_new_tokens=4), 20, n)
elif kind == "generator-cycles":
    growth = measure(lambda: Generator(path, n_parallel=2, n_ctx=128, n_threads=1), 5, n)
print(json.dumps({"growth_mb": growth}))
"""


def _growth(kind: str, path: str, n: int) -> float:
    proc = subprocess.run([sys.executable, "-c", CHILD, kind, path, str(n)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])["growth_mb"]


@pytest.mark.parametrize(("kind", "n"), [("encode", 10_000), ("embedder-cycles", 1_000), ("model-cycles", 1_000)])
def test_embedding_memory_stays_flat(minilm_path, kind, n):
    growth = _growth(kind, minilm_path, n)
    assert growth < BOUND_MB, f"{kind} x{n}: resident memory grew by {growth:.1f} MB"


@pytest.mark.parametrize(("kind", "n"), [("generate", 200), ("generator-cycles", 100)])
def test_generation_memory_stays_flat(smollm_path, kind, n):
    growth = _growth(kind, smollm_path, n)
    assert growth < BOUND_MB, f"{kind} x{n}: resident memory grew by {growth:.1f} MB"
