"""Scaling: texts/s and peak memory for 1k, 10k and 100k short texts.

    python benchmarks/bench_scaling.py [--counts 1000,10000,100000] [--model NAME]

Each count runs in a fresh process, so peak RSS (ru_maxrss) belongs to that run
alone. "Extra" is the peak minus the process's RSS after loading the model and
minus the output matrix itself: what llamabatch needs to stream the texts.
It should stay flat as the count grows. Writes benchmarks/results/scaling.json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

from _common import machine, table, write_json  # noqa: E402

CHILD = r"""
import json, resource, sys, time
from importlib import resources
from llamabatch import Embedder
n, model = int(sys.argv[1]), (sys.argv[2] or None)
base = resources.files("llamabatch.data").joinpath("captions.txt").read_text(encoding="utf-8").splitlines()
texts = [f"{base[i % len(base)]} (#{i})" for i in range(n)]
emb = Embedder(model)
emb.encode(texts[:16])
def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
before = rss_kb()
t0 = time.perf_counter()
out = emb.encode(texts)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"n": n, "seconds": seconds, "tokens": emb.stats["tokens"], "rss_before_kb": before,
                  "peak_kb": peak, "output_kb": out.nbytes // 1024}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", default="1000,10000,100000")
    ap.add_argument("--model", default="")
    args = ap.parse_args()
    rows, results = [], []
    for n in [int(c) for c in args.counts.split(",")]:
        r = subprocess.run([sys.executable, "-c", CHILD, str(n), args.model], capture_output=True, text=True, check=True)
        d = json.loads(r.stdout.strip().splitlines()[-1])
        # Peak may be set by model loading/warm-up rather than encode: count only growth past the load.
        d["extra_mb"] = max(0, d["peak_kb"] - d["rss_before_kb"] - d["output_kb"]) / 1024
        d["texts_per_s"] = n / d["seconds"]
        results.append(d)
        rows.append([f"{n:,}", f"{d['texts_per_s']:.0f}", f"{d['tokens'] / d['seconds']:.0f}",
                     f"{d['peak_kb'] / 1024:.0f}", f"{d['output_kb'] / 1024:.1f}", f"{d['extra_mb']:.1f}"])
        print(table(rows[-1:], ["texts", "texts/s", "tokens/s", "peak RSS MB", "output MB", "extra MB"]), flush=True)
    print()
    print(table(rows, ["texts", "texts/s", "tokens/s", "peak RSS MB", "output MB", "extra MB"]))
    write_json("scaling.json", {"benchmark": "scaling", "machine": machine(), "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
