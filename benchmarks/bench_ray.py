"""Ray Data on one machine: rows/s with 1 worker x 2 threads against 2 workers x 1 thread.

    python benchmarks/bench_ray.py [--task embed|generate|both] [--texts 2000] [--prompts 128]
                                   [--max-new-tokens 32] [--rounds 2] [--cpus 2]

Embeds ``make_texts(N)`` (benchmarks/texts.py) with ``llamabatch.ray.embed_dataset`` and
generates for ``make_prompts(P)`` (bench_generate.py, chat, greedy) with
``generate_dataset`` on a local Ray instance of ``--cpus`` CPUs, at each layout
(workers x threads = the CPUs), and without Ray (one process, ``--cpus`` threads) as
the baseline. Each Ray time is the wall time of ``materialize()``: it includes starting
the actors and loading each worker's model; "start-up" is the same job on a handful of
rows, and "rows/s after start-up" divides by the difference. Layouts alternate, rounds
are rotated, the best round is kept. Prints a table; writes benchmarks/results/ray.json.
"""
from __future__ import annotations

import argparse
import os
import time

from _common import machine, table, versions, write_json  # noqa: E402


def load() -> float:
    return round(os.getloadavg()[0], 2)


def run_ray(task: str, rows: list[dict], workers: int, threads: int, batch: int, options: dict) -> float:
    import ray

    import llamabatch.ray as lray

    ds = ray.data.from_items(rows, override_num_blocks=max(1, len(rows) // batch))
    t0 = time.perf_counter()
    if task == "embed":
        out = lray.embed_dataset(ds, batch_size=batch, concurrency=workers, threads_per_worker=threads)
    else:
        out = lray.generate_dataset(ds, batch_size=batch, concurrency=workers, threads_per_worker=threads,
                                    **options)
    done = out.materialize()
    seconds = time.perf_counter() - t0
    assert done.count() == len(rows)
    return seconds


def run_local(task: str, texts: list[str], threads: int, options: dict) -> float:
    """No Ray: one process, model loading included (as in the Ray timings)."""
    import llamabatch

    t0 = time.perf_counter()
    if task == "embed":
        llamabatch.Embedder(n_threads=threads).encode(texts, truncate=True)
    else:
        n_parallel = options.pop("n_parallel")
        llamabatch.Generator(n_threads=threads, n_parallel=n_parallel).generate(texts, **options)
        options["n_parallel"] = n_parallel
    return time.perf_counter() - t0


def bench(task: str, texts: list[str], args, layouts) -> list[dict]:
    rows = [{"id": i, "text": t} for i, t in enumerate(texts)]
    options = ({} if task == "embed" else
               {"max_new_tokens": args.max_new_tokens, "chat": True, "temperature": 0.0, "n_parallel": 16})
    batch = 100 if task == "embed" else 32
    small = rows[:2 * (4 if task == "embed" else 2)]
    results = {f"{w}x{t}": {"workers": w, "threads": t, "seconds": [], "startup_s": [], "load": []}
               for w, t in layouts}
    results["local"] = {"workers": 1, "threads": args.cpus, "seconds": [], "startup_s": [], "load": []}
    names = list(results)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            res = results[name]
            res["load"].append(load())
            if name == "local":
                res["startup_s"].append(run_local(task, [s["text"] for s in small], args.cpus, options))
                res["seconds"].append(run_local(task, texts, args.cpus, options))
            else:
                w, t = res["workers"], res["threads"]
                res["startup_s"].append(run_ray(task, small, w, t, max(1, len(small) // w), options))
                res["seconds"].append(run_ray(task, rows, w, t, batch, options))
            print(f"  {task} round {r + 1} {name}: {res['seconds'][-1]:.2f} s "
                  f"(start-up {res['startup_s'][-1]:.2f} s, load {res['load'][-1]})", flush=True)
    out = []
    for name, res in results.items():
        best = min(res["seconds"])
        startup = min(res["startup_s"])
        out.append({"task": task, "layout": name, "rows": len(rows), **res, "best_s": best,
                    "rows_per_s": len(rows) / best,
                    "rows_per_s_after_startup": len(rows) / (best - startup) if best > startup else None})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=("embed", "generate", "both"), default="both")
    ap.add_argument("--texts", type=int, default=2000)
    ap.add_argument("--prompts", type=int, default=128)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cpus", type=int, default=2)
    args = ap.parse_args()

    import ray

    from bench_generate import make_prompts
    from texts import make_texts

    layouts = [(1, args.cpus), (args.cpus, 1)]
    info = machine()
    ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="warning")
    ray.data.DataContext.get_current().enable_progress_bars = False
    results = []
    try:
        if args.task in ("embed", "both"):
            results += bench("embed", make_texts(args.texts), args, layouts)
        if args.task in ("generate", "both"):
            results += bench("generate", make_prompts(args.prompts), args, layouts)
    finally:
        ray.shutdown()
    info["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]

    rows = [[r["task"], r["layout"] if r["layout"] != "local" else f"no Ray, 1 x {r['threads']}", str(r["rows"]),
             f"{r['best_s']:.2f}", f"{min(r['startup_s']):.2f}", f"{r['rows_per_s']:.1f}",
             "-" if r["rows_per_s_after_startup"] is None else f"{r['rows_per_s_after_startup']:.1f}",
             ",".join(map(str, r["load"]))] for r in results]
    print()
    print(table(rows, ["task", "workers x threads", "rows", "best s", "start-up s", "rows/s",
                       "rows/s after start-up", "load at start"]))
    path = write_json("ray.json", {"benchmark": "ray", "machine": info, "max_new_tokens": args.max_new_tokens,
                                   "versions": versions("ray", "pyarrow", "numpy"), "results": results})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
