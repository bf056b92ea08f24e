"""Ctrl-C stops a long run between decodes, with a KeyboardInterrupt, not a crash."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

CHILD = r"""
import sys, time
from llamabatch import Embedder
emb = Embedder(sys.argv[1])
texts = ["a long caption about tea, coffee and cake " * 8] * 20000
print("READY", flush=True)
t0 = time.perf_counter()
try:
    emb.encode(texts)
    print("FINISHED", flush=True)
except KeyboardInterrupt:
    print(f"INTERRUPTED after {time.perf_counter() - t0:.2f}s", flush=True)
print("STILL USABLE", emb.encode(["after"]).shape, flush=True)
"""


def test_sigint_interrupts_encode_and_the_embedder_stays_usable(minilm_path):
    env = dict(os.environ, GGML_NO_BACKTRACE="1")
    p = subprocess.Popen([sys.executable, "-c", CHILD, minilm_path], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    assert p.stdout.readline().strip() == "READY"
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err[-2000:]
    assert "INTERRUPTED" in out and "FINISHED" not in out
    assert "STILL USABLE (1, 384)" in out
