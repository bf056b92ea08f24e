"""Portable wheel against native wheel: build time, wheel size, and encode speed side by side.

Builds both wheels from this checkout with ccache off and fresh build folders
(or takes ready ones), installs each in a folder of its own, and times
``Embedder.encode`` of the benchmark texts in fresh interpreters, alternating
native, portable (its own choice) and each portable variant forced with
LLAMABATCH_CPU: native and portable for ``--rounds`` rounds, each forced variant
(``--variants``) in the first ``--variant-rounds`` only (the baseline is slow);
the medians go in the JSON.

    python benchmarks/bench_portable.py --threads 2 --out portable.json
    python benchmarks/bench_portable.py --native-wheel N.whl --portable-wheel P.whl   # no builds
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import site
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

REPO = _common.HERE.parent
VARIANTS = ["x86-64-v2", "avx2", "avx512", "avx512-vnni", "avx512-bf16"]


def child(model: str, n_texts: int, threads: int, repeats: int) -> None:
    """Runs in the measured interpreter: prints the chosen variant and the best encode time."""
    from texts import make_texts

    import llamabatch

    texts = make_texts(n_texts)
    embedder = llamabatch.Embedder(model, n_threads=threads)
    embedder.encode(texts[:50])
    seconds = _common.best_of(lambda: embedder.encode(texts), repeats)
    info = llamabatch.system_info()
    print(json.dumps({"cpu_variant": info["cpu_variant"], "texts_per_s": n_texts / seconds,
                      "tokens": int(sum(len(t) for t in embedder.tokenize(texts)))}))


def build(kind: str, out: Path) -> tuple[Path, float]:
    """Builds a wheel from scratch (no ccache); returns it and the wall seconds."""
    build_dir = out / f"build-{kind}"
    shutil.rmtree(build_dir, ignore_errors=True)
    cmd = [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
           "-w", str(out / kind), "-C", f"build-dir={build_dir}"]
    if kind == "portable":
        cmd += ["-C", "cmake.define.LLAMABATCH_PORTABLE=ON"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, "CCACHE_DISABLE": "1"}, capture_output=True)
    seconds = time.perf_counter() - t0
    (wheel,) = (out / kind).glob("*.whl")
    return wheel, seconds


def install(wheel: Path, target: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True)
    return target


def measure(target: Path, args: argparse.Namespace, variant: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "LLAMABATCH_CPU"}
    # -S: site-packages' .pth files (an editable llamabatch) stay out; numpy comes from site-packages.
    env["PYTHONPATH"] = os.pathsep.join([str(target), str(_common.HERE), *site.getsitepackages()])
    if variant:
        env["LLAMABATCH_CPU"] = variant
    cmd = ["taskset", "-c", args.cpus, sys.executable, "-S", __file__, "--child", args.model,
           str(args.texts), str(args.threads), "3"]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--native-wheel", type=Path)
    p.add_argument("--portable-wheel", type=Path)
    p.add_argument("--model", default=None, help="embedding GGUF (default: the catalogue's all-MiniLM-L6-v2)")
    p.add_argument("--texts", type=int, default=600)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cpus", default=None, help="taskset cpu list (default: 0-THREADS-1)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--variants", default=",".join(VARIANTS), help="the variants to force, comma-separated")
    p.add_argument("--variant-rounds", type=int, default=1)
    p.add_argument("--out", default="portable.json")
    args = p.parse_args()
    args.cpus = args.cpus or f"0-{args.threads - 1}"
    if args.model is None:
        from llamabatch import models
        args.model = str(models.fetch(models.DEFAULT_EMBEDDING_MODEL))

    work = Path(tempfile.mkdtemp(prefix="bench-portable-"))
    builds: dict[str, dict] = {}
    wheels: dict[str, Path] = {}
    for kind in ("native", "portable"):
        given = getattr(args, f"{kind}_wheel")
        if given:
            wheels[kind] = given
            builds[kind] = {"wheel": given.name, "built_here": False}  # no build time: see its own record
        else:
            wheels[kind], seconds = build(kind, work)
            builds[kind] = {"wheel": wheels[kind].name, "built_here": True, "build_wall_s": round(seconds, 1)}
            print(f"{kind}: built in {seconds:.0f} s", flush=True)
        builds[kind]["wheel_bytes"] = wheels[kind].stat().st_size
    native_site = install(wheels["native"], work / "site-native")
    portable_site = install(wheels["portable"], work / "site-portable")

    configs = [("native", native_site, None), ("portable", portable_site, None)]
    configs += [(f"portable:{v}", portable_site, v) for v in args.variants.split(",")]
    samples: dict[str, list[float]] = {name: [] for name, _, _ in configs}
    chosen: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for r in range(args.rounds):
        for name, target, variant in configs:
            if name in skipped or (variant and r >= args.variant_rounds):
                continue
            try:
                result = measure(target, args, variant)
            except subprocess.CalledProcessError as e:
                skipped[name] = e.stderr.strip().splitlines()[-1]  # a variant this CPU cannot run
                continue
            samples[name].append(result["texts_per_s"])
            chosen[name] = result["cpu_variant"]
            print(f"round {r + 1} {name:24s} {result['cpu_variant']:12s} {result['texts_per_s']:7.1f} texts/s",
                  flush=True)

    medians = {name: statistics.median(v) for name, v in samples.items() if v}
    rows = [[name, chosen[name], f"{medians[name]:.1f}", f"{medians[name] / medians['native']:.3f}"]
            for name in medians]
    print(_common.table(rows, ["build", "variant", "texts/s", "vs native"]))
    data = {
        "machine": _common.machine(),
        "versions": _common.versions("llamabatch", "numpy"),
        "settings": {"texts": args.texts, "threads": args.threads, "cpus": args.cpus, "rounds": args.rounds,
                     "variant_rounds": args.variant_rounds,
                     "model": Path(args.model).name, "timing": "best of 3 encodes per run; median of rounds"},
        "builds": builds,
        "texts_per_s_median": medians,
        "texts_per_s_samples": samples,
        "variant_chosen": chosen,
        "refused": skipped,
        "portable_vs_native": medians["portable"] / medians["native"],
    }
    print(f"wrote {_common.write_json(args.out, data)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
