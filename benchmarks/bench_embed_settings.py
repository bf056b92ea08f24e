"""Embedder settings sweep: which n_batch / n_seq_max / flash_attn / threads / order is fastest.

    python benchmarks/bench_embed_settings.py [--limit 1000] [--rounds 3] [--model NAME]
        --config "n_batch=512" --config "n_batch=1024,flash_attn=0" --config "sort=1" ...

Each --config is comma-separated key=value pairs: Embedder keywords (n_batch,
n_seq_max, n_threads, flash_attn) plus `sort=1`, which encodes the texts in
order of token count and puts the rows back in input order (length-sorted
packing, tried from the outside). Every config gets its own Embedder; rounds
rotate the configs and report medians of wall time and of the time inside
llama_decode. Prints one table and the load averages; writes
benchmarks/results/<--out> (default embed_settings.json).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, table, write_json  # noqa: E402
from texts import make_texts  # noqa: E402

INT_KEYS = {"n_batch", "n_seq_max", "n_threads", "sort", "flash_attn"}


def parse_config(text: str) -> dict[str, int]:
    out = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        if key not in INT_KEYS:
            raise SystemExit(f"--config {text!r}: {key!r} is not one of {sorted(INT_KEYS)}")
        out[key] = int(value)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model", default="all-minilm-l6-v2")
    ap.add_argument("--config", action="append", default=[], help="key=value,... (repeatable)")
    ap.add_argument("--out", default="embed_settings.json")
    args = ap.parse_args(argv)
    configs = args.config or [""]

    from llamabatch import Embedder

    load_start = [round(x, 2) for x in os.getloadavg()]
    texts = make_texts(args.limit)
    runners = {}
    for c in configs:
        kw = parse_config(c)
        sort = kw.pop("sort", 0)
        if "flash_attn" in kw:
            kw["flash_attn"] = bool(kw["flash_attn"])
        kw.setdefault("n_threads", os.cpu_count())
        emb = Embedder(args.model, **kw)
        order = None
        if sort:
            lengths = [len(t) for t in emb.tokenize(texts)]
            order = np.argsort(lengths, kind="stable")

        def run(emb=emb, order=order):
            emb.reset_stats()
            if order is None:
                out = emb.encode(texts)
            else:
                out = np.empty((len(texts), emb.n_embd), dtype=np.float32)
                out[order] = emb.encode([texts[i] for i in order])
            return out, emb.stats

        run_name = c or "defaults"
        runners[run_name] = run
        run()  # warm-up: allocations, page-in, thread pools

    names = list(runners)
    wall = {n: [] for n in names}
    decode = {n: [] for n in names}
    n_tokens = 0
    first = {}
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            out, stats = runners[name]()
            wall[name].append(time.perf_counter() - t0)
            decode[name].append(stats["decode_seconds"])
            n_tokens = stats["tokens"]
            first.setdefault(name, out)
        print(f"  round {r + 1}: " + ", ".join(f"{n} {wall[n][-1]:.2f} s" for n in names), flush=True)

    base = names[0]
    rows, results = [], {}
    for n in names:
        w, d = statistics.median(wall[n]), statistics.median(decode[n])
        cos = float(np.min(np.sum(first[n] * first[base], axis=1)))
        results[n] = {"seconds_median": w, "seconds_all": wall[n], "decode_seconds_median": d,
                      "texts_per_s": len(texts) / w, "tokens_per_s": n_tokens / w, "min_cos_vs_first": cos}
        rows.append([n, f"{w:.2f}", f"{d:.2f}", f"{len(texts) / w:.0f}", f"{n_tokens / w:.0f}",
                     f"{statistics.median(wall[base]) / w:.2f}x", f"{cos:.6f}"])
    print()
    print(table(rows, ["config", "s", "decode s", "texts/s", "tokens/s", f"vs {base}", "min cos"]))
    load_end = [round(x, 2) for x in os.getloadavg()]
    print(f"model {args.model}, {len(texts)} texts, {n_tokens} tokens; load avg start {load_start}, end {load_end}")
    write_json(args.out, {"benchmark": "embed_settings", "machine": machine(), "model": args.model,
                          "n_texts": len(texts), "n_tokens": n_tokens, "rounds": args.rounds,
                          "loadavg_start": load_start, "loadavg_end": load_end, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
