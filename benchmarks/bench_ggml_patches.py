"""The ggml patches of vendor/patches/, measured: the same embeddings, and how much faster.

    python benchmarks/bench_ggml_patches.py --unpatched DIR --patched DIR [--rounds 3]
        [--threads 2] [--corpora short,medium,long] [--formats f32,bf16,f16] [--out ggml_patches.json]

DIR is a folder holding a `llamabatch` package built without (--unpatched) or with
(--patched) the patches: the Python sources plus the built _core/_cpuid modules and
_build.py, copied from an install (benchmarks/README.md, "ggml patches", says how).
Every (round, corpus, format, build) runs in a fresh `python -S` process that sees only
that folder and the site-packages of this interpreter, so the two builds never share a
process; rounds alternate the order of the builds. A worker loads the catalogue model in
the format asked, encodes the corpus once untimed, then once timed (2 threads by default).

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
t0 = time.perf_counter()
out = e.encode(texts)
dt = time.perf_counter() - t0
np.save({npy!r}, out)
import llamabatch
print(json.dumps({{"texts_per_s": len(texts) / dt, "seconds": dt, "weights": e.weights,
                  "module": e.__class__.__module__, "llama_cpp": llamabatch.system_info()["llama_cpp"]}}))
"""


def run_worker(build: Path, corpus: str, fmt: str, threads: int, npy: Path) -> dict:
    code = WORKER.format(build=str(build), bench=str(Path(__file__).resolve().parent),
                         site=sysconfig.get_paths()["purelib"], corpus=corpus, n=COUNTS[corpus],
                         model=MODEL_OF_FORMAT[fmt], threads=threads, npy=str(npy))
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    p = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit(f"worker failed ({build}, {corpus}, {fmt}):\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--unpatched", type=Path, required=True)
    ap.add_argument("--patched", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--corpora", default="short,medium,long")
    ap.add_argument("--formats", default="f32,bf16,f16")
    ap.add_argument("--out", default="ggml_patches.json")
    args = ap.parse_args(argv)
    import numpy as np

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
                    for name in order:
                        npy = Path(tmp) / f"{name}.{corpus}.{fmt}.npy"
                        got = run_worker(builds[name], corpus, fmt, args.threads, npy)
                        speeds.setdefault(f"{corpus}/{fmt}/{name}", []).append(got["texts_per_s"])
                        built_for[name] = got["llama_cpp"]
                        print(f"round {r + 1} {corpus:6} {fmt:4} {name:9} {got['texts_per_s']:8.1f} texts/s",
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
