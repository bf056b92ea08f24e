"""Does it matter which Python thread calls llama.cpp? Main thread against a second thread.

A server's model work runs on its own thread, not the main one; so do thread
pools. This times the same calls from the main thread and from a second thread,
in one process, pinned to the same cores:

- ``encode`` of 600 benchmark texts (best of 3);
- one text per ``encode`` call (p50 of 64);
- ``generate`` for 1 and 8 prompts, 48 new tokens each, end of generation ignored (best of 2).

Run it once per build to compare builds: the JSON records whether the build uses
OpenMP (``llamabatch.system_info()``). llamabatch builds ggml without OpenMP since
this was measured (``results/threads_openmp.json`` against ``results/threads_no_openmp.json``).

    python benchmarks/bench_threads.py --threads 2 --out threads_no_openmp.json
"""
from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from typing import Callable

import _common
from texts import make_texts

import llamabatch


def on_other_thread(fn: Callable[[], float]) -> float:
    result: list[float] = []
    t = threading.Thread(target=lambda: result.append(fn()))
    t.start()
    t.join()
    return result[0]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cpus", default=None, help="pin to these cpus, e.g. 0-1 (default: the first --threads cpus)")
    p.add_argument("--out", default="threads.json")
    args = p.parse_args()
    cpus = range(args.threads) if args.cpus is None else range(int(args.cpus.split("-")[0]),
                                                                 int(args.cpus.split("-")[-1]) + 1)
    os.sched_setaffinity(0, set(cpus))

    texts = make_texts(600)
    embedder = llamabatch.Embedder(n_threads=args.threads)
    embedder.encode(texts[:50])
    generator = llamabatch.Generator(n_threads=args.threads, n_parallel=8)
    prompts = [f"Write a sentence about the number {i}." for i in range(8)]
    generator.generate(prompts[:1], max_new_tokens=4)

    def one_text_p50() -> float:
        times = []
        for t in texts[:64]:
            t0 = time.perf_counter()
            embedder.encode([t])
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    work: dict[str, Callable[[], float]] = {
        "encode 600 texts": lambda: _common.best_of(lambda: embedder.encode(texts), 3),
        "encode 1 text (p50)": one_text_p50,
        "generate 1 x 48 tokens": lambda: _common.best_of(
            lambda: generator.generate(prompts[:1], max_new_tokens=48, ignore_eos=True), 2),
        "generate 8 x 48 tokens": lambda: _common.best_of(
            lambda: generator.generate(prompts, max_new_tokens=48, ignore_eos=True), 2),
    }
    rows, results = [], {}
    for name, fn in work.items():
        main_s = fn()
        other_s = on_other_thread(fn)
        results[name] = {"main_thread_ms": round(1000 * main_s, 2), "other_thread_ms": round(1000 * other_s, 2),
                         "other_over_main": round(other_s / main_s, 3)}
        rows.append([name, f"{1000 * main_s:.1f}", f"{1000 * other_s:.1f}", f"{other_s / main_s:.2f}"])
    info = llamabatch.system_info()
    print(f"build: OpenMP {'on' if 'OPENMP' in info['cpu_features'] else 'off'}; {args.threads} threads on cpus "
          f"{sorted(os.sched_getaffinity(0))}")
    print(_common.table(rows, ["work", "main thread ms", "second thread ms", "second / main"]))
    path = _common.write_json(args.out, {
        "machine": _common.machine(),
        "versions": _common.versions("llamabatch"),
        "openmp": "OPENMP" in info["cpu_features"],
        "llama_cpp_system_info": info["llama_cpp"],
        "threads": args.threads,
        "cpus": sorted(os.sched_getaffinity(0)),
        "results": results,
    })
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
