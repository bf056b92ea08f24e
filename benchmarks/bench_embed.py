"""End-to-end embeddings: llamabatch vs llama-cpp-python vs sentence-transformers.

Same texts (benchmarks/texts.py), same GGUF (all-MiniLM-L6-v2 f16), same thread
count for everyone, measured side by side in one process: every round runs each
contender once, in a rotated order, and the report gives medians over rounds.

    python benchmarks/bench_embed.py [--limit 2000] [--rounds 3] [--threads T]
                                     [--skip llama-cpp-python] [--skip sentence-transformers]

Contenders
  llamabatch                Embedder(gguf, n_threads=T).encode(texts), defaults
  llama-cpp-python          Llama(gguf, embedding=True, n_threads=T, n_threads_batch=T,
                            verbose=False).embed(texts), its defaults (flash_attn=False,
                            n_ctx=n_batch=n_ubatch=512)
  llama-cpp-python (best)   the same with flash_attn=True, n_batch=n_ubatch=512
  sentence-transformers     SentenceTransformer(folder, device="cpu").encode(texts,
                            batch_size=32), torch.set_num_threads(T)
  floor                     llamabatch's own stats["decode_seconds"]: time spent inside
                            llama_decode, i.e. what is left if packing, tokenizing and
                            pooling/copying cost nothing
  llamabatch <variant>      with --variant NAME (repeatable): the same Embedder on another
                            catalogue entry or GGUF path (e.g. all-minilm-l6-v2-bf16), with
                            its own floor; reduced-precision variants in the same table

tokens/s uses the llamabatch token count (same WordPiece vocabulary; every text is
under sentence-transformers' 256-token limit, so nobody truncates).
Also reports max |cos - 1| between llamabatch's and the peers' embeddings.
Writes benchmarks/results/embed.json.
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, table, versions, write_json  # noqa: E402
from texts import make_texts  # noqa: E402

LB = "llamabatch"
LCP = "llama-cpp-python"
LCP_BEST = "llama-cpp-python (best)"
ST = "sentence-transformers"
ST_MAX_TOKENS = 256


def default_st_folder() -> str | None:
    """$LLAMABATCH_ST_FOLDER, else the sentence-transformers folder of the default
    embedder (the one its GGUF is converted from, unpacked once from the
    catalogue's sha256-checked wheel). None if unavailable."""
    env = os.environ.get("LLAMABATCH_ST_FOLDER")
    if env:
        return env if Path(env, "config.json").is_file() else None
    from llamabatch import models

    try:
        return str(models.source_folder(models.DEFAULT_EMBEDDING_MODEL))
    except Exception as e:  # noqa: BLE001 - offline or no registry: the peer is skipped
        print(f"no sentence-transformers folder ({e})", file=sys.stderr)
        return None


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def max_cos_dev(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.sum(unit(a) * unit(b), axis=1) - 1.0)))


def build_contenders(args, path: str, skip: set[str]):
    """name -> callable(texts) -> (embeddings ndarray, floor_seconds or None)."""
    T = args.threads
    out = {}

    from llamabatch import Embedder

    def make_lb(model):
        emb = Embedder(model, n_threads=T)

        def run_lb(texts):
            emb.reset_stats()
            e = emb.encode(texts)
            return e, emb.stats["decode_seconds"]

        return emb, run_lb

    emb, out[LB] = make_lb(path)
    for v in args.variant:
        _, out[f"{LB} {Path(v).stem if v.endswith('.gguf') else v}"] = make_lb(v)

    if LCP not in skip or LCP_BEST not in skip:
        try:
            from llama_cpp import Llama
        except ImportError as e:
            print(f"llama-cpp-python not importable ({e}); skipping it", file=sys.stderr)
            skip |= {LCP, LCP_BEST}
        else:
            def make(**kw):
                llm = Llama(model_path=path, embedding=True, verbose=False, n_threads=T, n_threads_batch=T, **kw)
                return lambda texts: (np.asarray(llm.embed(texts), dtype=np.float32), None)

            if LCP not in skip:
                out[LCP] = make()
            if LCP_BEST not in skip:
                out[LCP_BEST] = make(flash_attn=True, n_batch=512, n_ubatch=512)

    if ST not in skip:
        folder = args.st_folder or default_st_folder()
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            print(f"sentence-transformers not importable ({e}); skipping it", file=sys.stderr)
        else:
            if folder is None:
                print("no sentence-transformers folder (pass --st-folder); skipping it", file=sys.stderr)
            else:
                torch.set_num_threads(T)
                st = SentenceTransformer(folder, device="cpu")

                def run_st(texts):
                    with torch.inference_mode():
                        e = st.encode(texts, batch_size=32, convert_to_numpy=True, show_progress_bar=False)
                    return e, None

                out[ST] = run_st
    return out, emb


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=2000, help="number of texts (default 2000)")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per contender (default 3)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for everyone (default: all)")
    ap.add_argument("--skip", action="append", default=[], metavar="PEER",
                    help=f"leave out a peer: '{LCP}' (both settings), '{LCP}-best', '{ST}' (repeatable)")
    ap.add_argument("--model", default=None, help="GGUF path (default: all-MiniLM-L6-v2 f16 from the catalogue)")
    ap.add_argument("--st-folder", default=None,
                    help="sentence-transformers folder of the same model (default: $LLAMABATCH_ST_FOLDER, else unpacked from the catalogue's all-MiniLM-L6-v2 wheel)")
    ap.add_argument("--warmup", type=int, default=64, help="texts in the untimed warm-up run (default 64)")
    ap.add_argument("--pause", type=float, default=0.5, help="seconds of rest between runs (default 0.5)")
    ap.add_argument("--variant", action="append", default=[], metavar="MODEL",
                    help="also time llamabatch on this catalogue name or GGUF path (repeatable)")
    ap.add_argument("--out", default="embed.json", help="file name under benchmarks/results (default embed.json)")
    args = ap.parse_args(argv)

    skip: set[str] = set()
    for s in args.skip:
        s = s.strip().lower()
        if s in ("llama-cpp-python", "llama_cpp", "llama-cpp", "lcp"):
            skip |= {LCP, LCP_BEST}
        elif s in ("llama-cpp-python-best", "llama-cpp-python (best)", "lcp-best"):
            skip.add(LCP_BEST)
        elif s in ("llama-cpp-python-default", "lcp-default"):
            skip.add(LCP)
        elif s in ("sentence-transformers", "sentence_transformers", "st"):
            skip.add(ST)
        else:
            ap.error(f"--skip {s!r}: not one of llama-cpp-python, llama-cpp-python-best, "
                     f"llama-cpp-python-default, sentence-transformers")

    load_start = [round(x, 2) for x in os.getloadavg()]
    from llamabatch import models

    path = str(args.model or models.fetch("all-minilm-l6-v2"))
    texts = make_texts(args.limit)
    contenders, emb = build_contenders(args, path, skip)

    n_tokens_each = [len(t) for t in emb.tokenize(texts)]
    n_tokens = int(sum(n_tokens_each))
    if max(n_tokens_each) > ST_MAX_TOKENS:
        print(f"warning: a text has {max(n_tokens_each)} tokens > {ST_MAX_TOKENS}; "
              "sentence-transformers truncates it", file=sys.stderr)

    print(f"{len(texts)} texts, {n_tokens} tokens, threads={args.threads}, rounds={args.rounds}, "
          f"load avg {os.getloadavg()[0]:.2f}", flush=True)

    # warm-up (page in weights, allocate buffers, spin up thread pools) on a slice of the texts
    names = list(contenders)
    for name in names:
        contenders[name](texts[: args.warmup])
    embeddings = {}  # from each contender's first timed run, for the cosine check

    times: dict[str, list[float]] = {n: [] for n in names}
    floors: dict[str, list[float]] = {n: [] for n in names if n.startswith(LB)}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]  # rotate: nobody always goes first
        for name in order:
            gc.collect()
            t0 = time.perf_counter()
            e, floor = contenders[name](texts)
            dt = time.perf_counter() - t0
            embeddings.setdefault(name, e)
            times[name].append(dt)
            if floor is not None:
                floors[name].append(floor)
            time.sleep(args.pause)
        print(f"  round {r + 1}: " + ", ".join(f"{n} {times[n][-1]:.2f} s" for n in names), flush=True)

    med = {n: statistics.median(v) for n, v in times.items()}
    lb = med[LB]

    def entry(seconds_all):
        m = statistics.median(seconds_all)
        return {"seconds_median": m, "seconds_all": seconds_all, "texts_per_s": len(texts) / m,
                "tokens_per_s": n_tokens / m, "llamabatch_speedup": m / lb}

    results = {name: entry(times[name]) for name in names}
    for name, f in floors.items():
        floor_name = "floor (llama_decode only)" if name == LB else f"floor of {name}"
        results[floor_name] = entry(f)
    floor = statistics.median(floors[LB])
    overhead_pct = (lb - floor) / floor * 100.0
    overhead_each = {n: (med[n] - statistics.median(f)) / statistics.median(f) * 100.0 for n, f in floors.items()}

    cos = {}
    for name in names:
        if name != LB:
            cos[name] = max_cos_dev(embeddings[LB], embeddings[name])
    # The quality bar for reduced-precision variants: agreement with the original model.
    cos_st = {}
    if ST in embeddings:
        cos_st = {n: max_cos_dev(embeddings[ST], embeddings[n]) for n in names if n.startswith(LB)}

    rows = [[n, f"{r['seconds_median']:.2f}", f"{r['texts_per_s']:.0f}", f"{r['tokens_per_s']:.0f}",
             "-" if n == LB else f"{r['llamabatch_speedup']:.2f}x"] for n, r in results.items()]
    print()
    print(table(rows, ["contender", "s (median)", "texts/s", "tokens/s", "llamabatch speed-up"]))
    print(f"llamabatch overhead above the llama_decode floor: {overhead_pct:.1f} %")
    for name, d in cos.items():
        print(f"max |cos - 1| llamabatch vs {name}: {d:.2e}")
    for name, d in cos_st.items():
        if name == LB:
            continue  # printed above
        print(f"max |cos - 1| {name} vs sentence-transformers: {d:.2e}")
    for name, d in overhead_each.items():
        print(f"{name}: overhead above its own llama_decode floor {d:.2f} %")
    if ST in med:
        for name in names:
            if name.startswith(LB):
                print(f"{name}: {med[ST] / med[name]:.2f}x sentence-transformers")

    out = {
        "benchmark": "embed",
        "machine": machine(),
        "versions": versions("llamabatch", "llama_cpp_python", "sentence-transformers", "torch", "transformers",
                             "numpy"),
        "model": path,
        "st_folder": args.st_folder or default_st_folder(),
        "n_texts": len(texts),
        "n_tokens": n_tokens,
        "threads": args.threads,
        "rounds": args.rounds,
        "results": results,
        "variants": args.variant,
        "llamabatch_overhead_above_floor_pct": overhead_pct,
        "overhead_above_own_floor_pct": overhead_each,
        "max_abs_cos_minus_1_vs_llamabatch": cos,
        "max_abs_cos_minus_1_vs_sentence_transformers": cos_st,
        "speed_vs_sentence_transformers": {n: med[ST] / med[n] for n in names if ST in med},
        "loadavg_start": load_start,
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    print("wrote", write_json(args.out, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
