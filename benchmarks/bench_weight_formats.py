"""Weight formats per CPU module: f16, bf16 and f32 files of the same weights, timed
under each CPU variant of a portable wheel (and the native build), each run in a
process of its own.

The rule in ``llamabatch.weights.fastest_format`` (bf16 where the module has
AVX512_BF16, f32 elsewhere on x86) is what this measures. The variants run on the
CPU underneath, so a variant below it (avx2 on an AVX-512 machine) runs its own
kernels on a faster core than a real AVX2 CPU has: compare formats within a
variant, never variants across machines.

    python benchmarks/bench_weight_formats.py --portable-site DIR [--rounds 3] [--threads 2]

``--portable-site``: a folder where a portable wheel was installed with
``pip install --no-deps --target DIR WHEEL`` (tests/test_portable.py and
bench_portable.py build one). Without it only the native build is timed.
Writes benchmarks/results/weight_formats.json.
"""
from __future__ import annotations

import argparse
import json
import os
import site
import statistics
import subprocess
import sys

import _common

FORMATS = {"f16": "all-minilm-l6-v2", "bf16": "all-minilm-l6-v2-bf16", "f32": "all-minilm-l6-v2-f32"}
VARIANTS = ["avx2", "avx512", "avx512-vnni", "avx512-bf16"]


def child(model: str, n_texts: int, threads: int) -> None:
    """In the measured process: the variant, the weight format llamabatch would choose, texts/s."""
    import time

    import numpy as np
    from texts import make_texts

    import llamabatch

    texts = make_texts(n_texts)
    emb = llamabatch.Embedder(model, n_threads=threads)
    emb.encode(texts[:64])
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        rows = emb.encode(texts)
        best = min(best, time.perf_counter() - t0)
    info = llamabatch.system_info()
    ref = llamabatch.Embedder(llamabatch.models.fetch("all-minilm-l6-v2-f32"), n_threads=threads).encode(texts[:200])
    print(json.dumps({"variant": info["cpu_variant"], "chosen": info["weights"], "texts_per_s": n_texts / best,
                      "tokens_per_s": sum(len(t) for t in emb.tokenize(texts)) / best,
                      "min_cos_to_f32": float(np.sum(rows[:200] * ref, axis=1).min())}))


def run_one(site_dir: str | None, variant: str | None, model: str, args: argparse.Namespace) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "LLAMABATCH_CPU"}
    python = [sys.executable]
    if site_dir:
        # `python -S` skips site-packages' .pth files (an editable llamabatch's finder among them),
        # so the portable install comes first and numpy still comes from site-packages.
        python.append("-S")
        env["PYTHONPATH"] = os.pathsep.join([site_dir, *site.getsitepackages(), str(_common.HERE)])
        env["LLAMABATCH_CPU"] = variant or ""
    else:
        env["PYTHONPATH"] = str(_common.HERE)
    out = subprocess.run([*python, __file__, "--child", model, str(args.texts), str(args.threads)],
                         capture_output=True, text=True, env=env, cwd="/")
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--portable-site", default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--texts", type=int, default=400)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--out", default="weight_formats.json", help="file name under benchmarks/results/")
    args = ap.parse_args()

    from llamabatch import models

    paths = {fmt: str(models.fetch(name, quiet=True)) for fmt, name in FORMATS.items()}
    modules: list[tuple[str, str | None, str | None]] = [("native", None, None)]
    if args.portable_site:
        modules += [(v, args.portable_site, v) for v in args.variants.split(",")]
    runs: dict[str, dict[str, list[dict]]] = {m: {f: [] for f in FORMATS} for m, _, _ in modules}
    for r in range(args.rounds):
        order = list(FORMATS)[r % 3:] + list(FORMATS)[:r % 3]  # rotate the formats' order each round
        for name, site_dir, variant in modules:
            for fmt in order:
                runs[name][fmt].append(run_one(site_dir, variant, paths[fmt], args))
                print(name, fmt, runs[name][fmt][-1], flush=True)

    results: dict[str, dict] = {}
    for name, per_format in runs.items():
        row: dict = {}
        for fmt, rs in per_format.items():
            ok = [x for x in rs if "error" in x] or None
            if ok:
                row[fmt] = {"error": ok[0]["error"]}
                continue
            row[fmt] = {"texts_per_s": round(statistics.median(x["texts_per_s"] for x in rs), 1),
                        "tokens_per_s": round(statistics.median(x["tokens_per_s"] for x in rs)),
                        "min_cos_to_f32": min(x["min_cos_to_f32"] for x in rs),
                        "variant": rs[0]["variant"], "chosen": rs[0]["chosen"]}
        speeds = {f: v["texts_per_s"] for f, v in row.items() if "texts_per_s" in v}
        if speeds:
            fastest = max(speeds, key=lambda f: speeds[f])
            chosen = next(v["chosen"] for v in row.values() if "chosen" in v)
            row["fastest"] = fastest
            row["chosen"] = chosen
            row["chosen_vs_fastest"] = round(speeds[chosen] / speeds[fastest], 3)
            row["vs_f16"] = {f: round(s / speeds["f16"], 3) for f, s in speeds.items()} if "f16" in speeds else {}
        results[name] = row

    print(_common.table([[m, *[r.get(f, {}).get("texts_per_s", "-") for f in FORMATS], r.get("fastest"),
                          r.get("chosen")] for m, r in results.items()], ["module", *FORMATS, "fastest", "chosen"]))
    _common.write_json(args.out, {
        "benchmark": "weight formats per CPU module (all-minilm-l6-v2, benchmarks/texts.py)",
        "machine": _common.machine(), "versions": _common.versions("llamabatch"),
        "threads": args.threads, "texts": args.texts, "rounds": args.rounds, "results": results})


if __name__ == "__main__":
    main()
