"""Ctrl-C stops a long run between decodes, with a KeyboardInterrupt, not a crash,
within about a second, and the object stays usable afterwards."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

# The child reports the wall-clock time at which KeyboardInterrupt reached Python,
# so the parent can measure the latency from its own kill().
CHILD = r"""
import signal, sys, time
import llamabatch
# A shell that starts the test suite in the background gives its children SIGINT
# ignored, and Python then leaves it ignored; restore what an interactive session has.
signal.signal(signal.SIGINT, signal.default_int_handler)
kind, path = sys.argv[1], sys.argv[2]
if kind == "encode":
    obj = llamabatch.Embedder(path)
    run = lambda: obj.encode(["a long caption about tea, coffee and cake " * 8] * 20000)
    after = lambda: obj.encode(["after"]).shape
else:
    obj = llamabatch.Generator(path, n_parallel=8, n_ctx=512)
    run = lambda: obj.generate(["1, 2, 3, 4, 5,"] * 64, max_new_tokens=400)  # counts on to the limit
    after = lambda: len(obj.generate(["1, 2, 3,"], max_new_tokens=3))
print("READY", flush=True)
try:
    run()
    print("FINISHED", flush=True)
except KeyboardInterrupt:
    print(f"INTERRUPTED {time.time():.6f}", flush=True)
print("STILL USABLE", after(), flush=True)
"""

MAX_LATENCY_S = 2.0


@pytest.mark.parametrize("kind", ["encode", "generate"])
def test_sigint_interrupts_and_the_object_stays_usable(kind, minilm_path, smollm_path):
    path = minilm_path if kind == "encode" else smollm_path
    p = subprocess.Popen([sys.executable, "-c", CHILD, kind, path], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "READY"
        time.sleep(1.5)
        sent = time.time()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:  # a failed test must not leave a child decoding for minutes
            p.kill()
            p.wait()
    assert p.returncode == 0, err[-2000:]
    assert "FINISHED" not in out, "the run ended before the signal: make it longer"
    line = next(x for x in out.splitlines() if x.startswith("INTERRUPTED"))
    latency = float(line.split()[1]) - sent
    print(f"{kind}: KeyboardInterrupt {latency:.3f}s after SIGINT")
    assert latency < MAX_LATENCY_S, f"{kind} took {latency:.2f}s to stop after SIGINT"
    expected = "(1, 384)" if kind == "encode" else "1"
    assert f"STILL USABLE {expected}" in out
