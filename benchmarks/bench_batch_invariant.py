"""What batch invariance costs: the default mode against batch_invariant=True.

    python benchmarks/bench_batch_invariant.py [--rounds 3] [--threads 2] [--out batch_invariant.json]

Embeddings: the default embedding model on the short, medium and long English
texts. Generation: SmolLM2 greedy completions of 48 chat prompts (64 new tokens
at most) at n_parallel 16. Every (round, workload, mode) runs in its own fresh
process, and rounds alternate which mode goes first. A worker warms up once
untimed, then times one run. Reported: texts/s or tokens/s per mode (median over
rounds), and invariant time / default time, against the goals of at most 1.3x
(embeddings) and 1.5x (generation).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, versions, write_json  # noqa: E402

COUNTS = {"short": 2000, "medium": 600, "long": 240}
GOALS = {"embed": 1.3, "generate": 1.5}

EMBED_WORKER = r"""
import json, sys, time
sys.path.insert(0, {bench!r})
from texts import make_regime_texts
from llamabatch import Embedder
texts = make_regime_texts({corpus!r}, {n})
e = Embedder(n_threads={threads}, batch_invariant={invariant})
e.encode(texts[:200])
t0 = time.perf_counter()
e.encode(texts)
dt = time.perf_counter() - t0
print(json.dumps({{"rate": len(texts) / dt, "seconds": dt, "weights": e.weights}}))
"""

GENERATE_WORKER = r"""
import json, time
from llamabatch import Generator
topics = ["tea", "coffee", "bread", "rice", "apples", "cheese", "pasta", "soup", "tacos", "sushi", "figs", "oats"]
prompts = [f"Write two sentences about {{t}}." for t in topics] + [f"Give a short recipe with {{a}} and {{b}}."
           for a in topics[:6] for b in topics[6:]]
g = Generator(n_parallel=16, n_threads={threads}, batch_invariant={invariant})
g.generate(prompts[:2], chat=True, max_new_tokens=4)
t0 = time.perf_counter()
out = g.generate_details(prompts, chat=True, max_new_tokens=64)
dt = time.perf_counter() - t0
n = sum(c.completion_tokens for c in out)
print(json.dumps({{"rate": n / dt, "seconds": dt, "tokens": n}}))
"""


def run_worker(workload: str, invariant: bool, threads: int) -> dict:
    if workload == "generate":
        code = GENERATE_WORKER.format(threads=threads, invariant=invariant)
    else:
        code = EMBED_WORKER.format(bench=str(Path(__file__).resolve().parent), corpus=workload,
                                   n=COUNTS[workload], threads=threads, invariant=invariant)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"worker failed ({workload}, invariant={invariant}):\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workloads", default="short,medium,long,generate")
    ap.add_argument("--out", default="batch_invariant.json")
    args = ap.parse_args(argv)
    workloads = args.workloads.split(",")
    rates: dict[str, dict[str, list[float]]] = {w: {"default": [], "invariant": []} for w in workloads}
    for r in range(args.rounds):
        for w in workloads:
            order = (False, True) if r % 2 == 0 else (True, False)
            for invariant in order:
                got = run_worker(w, invariant, args.threads)
                rates[w]["invariant" if invariant else "default"].append(got["rate"])
                print(f"round {r + 1} {w:8s} {'invariant' if invariant else 'default  '} {got['rate']:9.1f}/s",
                      flush=True)
    results = []
    for w in workloads:
        d, i = statistics.median(rates[w]["default"]), statistics.median(rates[w]["invariant"])
        kind = "generate" if w == "generate" else "embed"
        cost = d / i  # invariant time / default time
        results.append({"workload": w, "unit": "tokens/s" if kind == "generate" else "texts/s",
                        "default": d, "invariant": i, "time_ratio": cost, "goal_max": GOALS[kind],
                        "goal_met": cost <= GOALS[kind], "rounds": rates[w]})
        print(f"{w:8s} default {d:9.1f}  invariant {i:9.1f}  time x{cost:.2f} (goal <= {GOALS[kind]}x: "
              f"{'met' if cost <= GOALS[kind] else 'NOT met'})")
    path = write_json(args.out, {"machine": machine(), "versions": versions("llamabatch"), "threads": args.threads,
                                 "rounds": args.rounds, "results": results})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
