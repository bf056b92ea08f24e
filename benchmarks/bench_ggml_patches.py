"""The ggml patches of vendor/patches/, measured: the same embeddings, and how much faster.

    python benchmarks/bench_ggml_patches.py --unpatched DIR --patched DIR [--rounds 3]
        [--threads 2 | --side-by-side] [--corpora short,medium,long] [--formats f32,bf16,f16]
        [--out ggml_patches.json]

DIR is a folder holding a `llamabatch` package built without (--unpatched) or with
(--patched) the patches: the Python sources plus the built _core/_cpuid modules and
_build.py, copied from an install (benchmarks/README.md, "ggml patches", says how).
Every (round, corpus, format, build) runs in a fresh `python -S` process that sees only
that folder and the site-packages of this interpreter, so the two builds never share a
process; rounds alternate the order of the builds. A worker loads the catalogue model in
the format asked, encodes the corpus once untimed, then once timed (2 threads by default).

--side-by-side runs the two builds' workers at the same time instead, one thread each,
each pinned to a core of its own (the cores swap every round), and starts their timed
passes together: what slows one machine down for a while (its neighbours, its clock)
slows both, so a gain of a few percent shows where runs made one after the other
scatter by ±30%. It measures one thread's work, not what a thread barrier costs.

Reported: texts/s per build (median over rounds), patched / unpatched, the largest
absolute difference between the two builds' embeddings of the same corpus and their
smallest cosine (0 and 1 for a patch that changes no arithmetic, such as 0001 and 0002).
Each build's ggml CPU features (`system_info()["llama_cpp"]`) are recorded too: a build
made with GGML_NATIVE=OFF and AVX2 alone runs AVX2 kernels on an AVX-512 machine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, write_json  # noqa: E402

COUNTS = {"short": 3000, "medium": 900, "long": 320}
MODEL_OF_FORMAT = {"f16": "all-minilm-l6-v2", "bf16": "all-minilm-l6-v2-bf16", "f32": "all-minilm-l6-v2-f32"}

WORKER = r"""
import json, sys, time
sys.path[:0] = [{build!r}, {bench!r}]
sys.path.append({site!r})
import numpy as np
from texts import make_regime_texts
from llamabatch import Embedder, models
texts = make_regime_texts({corpus!r}, {n})
e = Embedder(models.fetch({model!r}), n_threads={threads})
e.encode(texts)
if {wait}:
    print("ready", flush=True)
    sys.stdin.readline()  # the other build's worker is ready too
t0 = time.perf_counter()
out = e.encode(texts)
dt = time.perf_counter() - t0
np.save({npy!r}, out)
import llamabatch
print(json.dumps({{"texts_per_s": len(texts) / dt, "seconds": dt, "weights": e.weights,
                  "module": e.__class__.__module__, "llama_cpp": llamabatch.system_info()["llama_cpp"]}}))
"""


def start_worker(build: Path, corpus: str, fmt: str, threads: int, npy: Path,
                 cpu: int | None = None) -> subprocess.Popen:
    """A worker process; with a cpu, pinned to it and waiting, once warm, for a line on stdin."""
    code = WORKER.format(build=str(build), bench=str(Path(__file__).resolve().parent),
                         site=sysconfig.get_paths()["purelib"], corpus=corpus, n=COUNTS[corpus],
                         model=MODEL_OF_FORMAT[fmt], threads=threads, npy=str(npy), wait=cpu is not None)
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    pin = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
    return subprocess.Popen([sys.executable, "-S", "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, preexec_fn=pin)


def result_of(p: subprocess.Popen, what: str) -> dict:
    out, err = p.communicate()
    if p.returncode != 0:
        raise SystemExit(f"worker failed ({what}):\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def run_worker(build: Path, corpus: str, fmt: str, threads: int, npy: Path) -> dict:
    return result_of(start_worker(build, corpus, fmt, threads, npy), f"{build}, {corpus}, {fmt}")


def run_side_by_side(builds: dict[str, Path], corpus: str, fmt: str, npys: dict[str, Path],
                     cpus: dict[str, int]) -> dict[str, dict]:
    """Both builds' workers at once, one thread each on a core of its own, timed passes started together."""
    procs = {name: start_worker(builds[name], corpus, fmt, 1, npys[name], cpus[name]) for name in builds}
    for name, p in procs.items():
        if p.stdout.readline().strip() != "ready":
            raise SystemExit(f"worker failed ({name}, {corpus}, {fmt}):\n{p.communicate()[1][-3000:]}")
    for p in procs.values():
        p.stdin.write("go\n")
        p.stdin.flush()
    return {name: result_of(p, f"{name}, {corpus}, {fmt}") for name, p in procs.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--unpatched", type=Path, required=True)
    ap.add_argument("--patched", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--side-by-side", action="store_true",
                    help="run both builds at once, one thread each on cores of their own")
    ap.add_argument("--corpora", default="short,medium,long")
    ap.add_argument("--formats", default="f32,bf16,f16")
    ap.add_argument("--out", default="ggml_patches.json")
    args = ap.parse_args(argv)
    import numpy as np

    cpus = sorted(os.sched_getaffinity(0))
    if args.side_by_side:
        if len(cpus) < 2:
            raise SystemExit("--side-by-side needs two cores this process may run on")
        args.threads = 1

    builds = {"unpatched": args.unpatched.resolve(), "patched": args.patched.resolve()}
    corpora, formats = args.corpora.split(","), args.formats.split(",")
    speeds: dict[str, list[float]] = {}
    diffs: dict[str, float] = {}
    cosines: dict[str, float] = {}
    built_for: dict[str, str] = {}  # each build's ggml CPU features (system_info()["llama_cpp"])
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = list(builds) if r % 2 == 0 else list(reversed(builds))
            for corpus in corpora:
                for fmt in formats:
                    npys = {name: Path(tmp) / f"{name}.{corpus}.{fmt}.npy" for name in builds}
                    if args.side_by_side:
                        cores = dict(zip(order, cpus[:2]))  # the builds swap cores every round
                        results = run_side_by_side(builds, corpus, fmt, npys, cores)
                    else:
                        results = {name: run_worker(builds[name], corpus, fmt, args.threads, npys[name])
                                   for name in order}
                    for name in order:
                        got = results[name]
                        speeds.setdefault(f"{corpus}/{fmt}/{name}", []).append(got["texts_per_s"])
                        built_for[name] = got["llama_cpp"]
                        where = f" (core {cores[name]})" if args.side_by_side else ""
                        print(f"round {r + 1} {corpus:6} {fmt:4} {name:9} {got['texts_per_s']:8.1f} texts/s{where}",
                              flush=True)
                    a = np.load(Path(tmp) / f"unpatched.{corpus}.{fmt}.npy")
                    b = np.load(Path(tmp) / f"patched.{corpus}.{fmt}.npy")
                    diffs[f"{corpus}/{fmt}"] = max(diffs.get(f"{corpus}/{fmt}", 0.0), float(np.abs(a - b).max()))
                    cos = float(((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))).min())
                    cosines[f"{corpus}/{fmt}"] = min(cosines.get(f"{corpus}/{fmt}", 1.0), cos)
    cells = {}
    for corpus in corpora:
        for fmt in formats:
            u = statistics.median(speeds[f"{corpus}/{fmt}/unpatched"])
            p = statistics.median(speeds[f"{corpus}/{fmt}/patched"])
            cells[f"{corpus}/{fmt}"] = {"unpatched_texts_per_s": round(u, 1), "patched_texts_per_s": round(p, 1),
                                        "speedup": round(p / u, 3), "max_abs_diff": diffs[f"{corpus}/{fmt}"],
                                        "min_cosine": cosines[f"{corpus}/{fmt}"],
                                        "rounds_unpatched": [round(x, 1) for x in speeds[f"{corpus}/{fmt}/unpatched"]],
                                        "rounds_patched": [round(x, 1) for x in speeds[f"{corpus}/{fmt}/patched"]]}
    result = {"machine": machine(), "threads": args.threads, "rounds": args.rounds, "counts": COUNTS,
              "side_by_side": args.side_by_side,
              "patches": sorted(p.name for p in (Path(__file__).resolve().parents[1] / "vendor" / "patches")
                                .glob("*.patch")),
              "builds": {name: {"path": str(path), "llama_cpp": built_for[name]} for name, path in builds.items()},
              "cells": cells}
    path = write_json(args.out, result)
    print("| corpus/format | unpatched | patched | speedup | max abs diff | min cosine |\n|---|---|---|---|---|---|")
    for k, c in cells.items():
        print(f"| {k} | {c['unpatched_texts_per_s']} | {c['patched_texts_per_s']} | {c['speedup']} | "
              f"{c['max_abs_diff']:.2g} | {c['min_cosine']:.7f} |")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
