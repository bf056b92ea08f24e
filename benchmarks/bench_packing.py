"""Packing overhead: llamabatch's C++ packer vs llama-cpp-python's LlamaBatch loop.

Both sides pack the same token arrays (tokenized once, by llamabatch) into a
512-token batch and "flush" when the next text does not fit; nothing is decoded,
so this measures only the cost of filling llama_batch, per token.

    python benchmarks/bench_packing.py [--n 2000] [--repeats 5]

(a) llamabatch: ``Engine(n_batch=512, n_seq_max=256).run(token_arrays)`` (dry run).
(b) llama-cpp-python 0.3.36: ``llama_cpp._internals.LlamaBatch(n_tokens=512, embd=0,
    n_seq_max=...)`` and the loop of ``Llama.embed()``: flush (``batch.reset()``) when
    ``n_tokens + len > n_batch`` or the sequence cap is reached, then
    ``batch.add_sequence(tokens, seq_id, logits_all=True)``. embed() also tokenizes
    each text into a Python list, so the loop is given Python lists (converted
    once, outside the timing); the cost of that conversion is reported separately.

Best of ``--repeats`` runs, time.perf_counter() around the packing only.
Writes benchmarks/results/packing.json.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import best_of, machine, table, versions, write_json  # noqa: E402
from texts import make_texts  # noqa: E402

N_BATCH = 512
N_SEQ_MAX = 256


def pack_llamabatch(token_arrays, repeats: int) -> dict:
    from llamabatch import Engine

    engine = Engine(N_BATCH, N_SEQ_MAX)
    placement = engine.run(token_arrays)  # warm-up, and the flush count
    n_decodes = int(placement[:, 0].max()) + 1
    seconds = best_of(lambda: engine.run(token_arrays), repeats)
    return {"seconds": seconds, "flushes": n_decodes}


def pack_llamabatch_packed(token_arrays, repeats: int) -> dict:
    """The same run on tokens stored back to back (what tokenizers produce): no per-sequence Python."""
    import numpy as np

    from llamabatch import Engine

    flat = np.ascontiguousarray(np.concatenate(token_arrays), dtype=np.int32)
    offsets = np.zeros(len(token_arrays) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(t) for t in token_arrays])
    engine = Engine(N_BATCH, N_SEQ_MAX)
    placement = engine.run_packed(flat, offsets)
    n_decodes = int(placement[:, 0].max()) + 1
    seconds = best_of(lambda: engine.run_packed(flat, offsets), repeats)
    return {"seconds": seconds, "flushes": n_decodes}


def pack_llama_cpp_python(token_lists, repeats: int) -> dict:
    from llama_cpp._internals import LlamaBatch

    batch = LlamaBatch(n_tokens=N_BATCH, embd=0, n_seq_max=N_SEQ_MAX, verbose=False)
    flushes = [0]

    def loop():
        # Llama.embed()'s accumulate/flush loop, minus tokenize and decode.
        batch.reset()
        t_batch = 0
        p_batch = 0
        n = 0
        for tokens in token_lists:
            n_tokens = len(tokens)
            if t_batch + n_tokens > N_BATCH or p_batch >= N_SEQ_MAX:
                batch.reset()  # decode_batch(): decode, then reset
                n += 1
                t_batch = 0
                p_batch = 0
            batch.add_sequence(tokens, p_batch, True)
            t_batch += n_tokens
            p_batch += 1
        batch.reset()
        flushes[0] = n + 1

    loop()
    seconds = best_of(loop, repeats)
    batch.close()
    return {"seconds": seconds, "flushes": flushes[0]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="number of texts (default 2000)")
    ap.add_argument("--repeats", type=int, default=5, help="best of this many runs (default 5)")
    ap.add_argument("--model", default=None, help="GGUF for the tokenizer (default: all-MiniLM-L6-v2)")
    args = ap.parse_args(argv)

    from llamabatch import Embedder

    texts = make_texts(args.n)
    emb = Embedder(args.model)
    token_arrays = emb.tokenize(texts)
    n_tokens = int(sum(len(t) for t in token_arrays))
    t0 = time.perf_counter()
    token_lists = [t.tolist() for t in token_arrays]
    tolist_s = time.perf_counter() - t0

    results = {
        "llamabatch": pack_llamabatch_packed(token_arrays, args.repeats),
        "llamabatch (list of arrays)": pack_llamabatch(token_arrays, args.repeats),
    }
    try:
        results["llama-cpp-python"] = pack_llama_cpp_python(token_lists, args.repeats)
    except ImportError as e:
        print(f"llama-cpp-python not importable ({e}); skipping it", file=sys.stderr)

    for r in results.values():
        r["ns_per_token"] = r["seconds"] / n_tokens * 1e9
    base = results["llamabatch"]["ns_per_token"]
    rows = []
    for name, r in results.items():
        r["ratio_vs_llamabatch"] = r["ns_per_token"] / base
        rows.append([name, f"{r['seconds'] * 1e3:.3f}", f"{r['ns_per_token']:.1f}", str(r["flushes"]),
                     f"{r['ratio_vs_llamabatch']:.1f}x"])

    print(f"{len(texts)} texts, {n_tokens} tokens, n_batch={N_BATCH}, n_seq_max={N_SEQ_MAX}, "
          f"best of {args.repeats}")
    print(table(rows, ["packer", "ms/run", "ns/token", "flushes", "vs llamabatch"]))
    print(f"(array -> list conversion for llama-cpp-python, not timed above: "
          f"{tolist_s / n_tokens * 1e9:.1f} ns/token)")

    out = {
        "benchmark": "packing",
        "machine": machine(),
        "versions": versions("llamabatch", "llama_cpp_python", "numpy"),
        "n_texts": len(texts),
        "n_tokens": n_tokens,
        "n_batch": N_BATCH,
        "n_seq_max": N_SEQ_MAX,
        "repeats": args.repeats,
        "tolist_ns_per_token": tolist_s / n_tokens * 1e9,
        "results": results,
    }
    print("wrote", write_json("packing.json", out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
