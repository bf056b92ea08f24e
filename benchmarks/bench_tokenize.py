"""Tokenizing speed: llamabatch's WordPiece vs llama.cpp's own vs HF tokenizers.

The same texts, the same vocabulary (all-MiniLM-L6-v2), measured side by side in
one process, best of ``--repeats`` runs each:

    python benchmarks/bench_tokenize.py [--limit 2000] [--repeats 5]

Contenders (each on 1 thread, then on all threads where it has a choice):
  llamabatch          Model.tokenize_texts(texts, n_threads=T): BERT's rules in C++,
                      ids equal to the reference's (tests/test_wordpiece.py)
  llama.cpp           the same call with llama_cpp=True: llama.cpp's own WPM
                      tokenizer, same threading, ids that differ on some scripts
  HF tokenizers       the Rust tokenizer of the model's folder (what
                      sentence-transformers uses), encode_batch, RAYON_NUM_THREADS=T

Text sets: the 2,000-text benchmark set (benchmarks/texts.py) and the
multilingual corpus (tests/data/multilingual_corpus.json, 616 texts). Also
reports tokenizing's share of Embedder.encode's wall time on the benchmark set
(llamabatch, all threads). Writes benchmarks/results/tokenize.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import best_of, machine, table, versions, write_json  # noqa: E402
from texts import make_texts  # noqa: E402

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "multilingual_corpus.json"


def hf_seconds(folder: str, texts: list[str], threads: int, repeats: int) -> float:
    """HF tokenizers in a child process: RAYON_NUM_THREADS is read once per process."""
    code = (
        "import json,sys,time\n"
        "from tokenizers import Tokenizer\n"
        f"tok=Tokenizer.from_file({str(Path(folder, 'tokenizer.json'))!r}); tok.no_padding(); tok.no_truncation()\n"
        "texts=json.load(sys.stdin); best=1e9\n"
        f"for _ in range({repeats}):\n"
        "    t=time.perf_counter(); tok.encode_batch(texts); best=min(best,time.perf_counter()-t)\n"
        "print(best)\n"
    )
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="true")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(texts), capture_output=True, text=True,
                         env=env, check=True)
    return float(out.stdout.strip())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=2000, help="texts from the benchmark set")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    import llamabatch
    from llamabatch import models

    path = models.fetch(models.DEFAULT_EMBEDDING_MODEL)
    folder = str(models.source_folder(models.DEFAULT_EMBEDDING_MODEL))
    model = llamabatch.Model(str(path), n_gpu_layers=0)
    all_threads = os.cpu_count() or 1
    sets = {
        "benchmark": make_texts(args.limit),
        "multilingual": [row["text"] for row in json.loads(CORPUS.read_text(encoding="utf-8"))],
    }

    rows, results = [], {}
    for name, texts in sets.items():
        n_tokens = sum(len(t) for t in model.tokenize_texts(texts, parse_special=True))
        for threads in sorted({1, all_threads}):
            ours = best_of(lambda: model.tokenize_texts(texts, True, True, threads), args.repeats)
            llama = best_of(lambda: model.tokenize_texts(texts, True, True, threads, True), args.repeats)
            hf = hf_seconds(folder, texts, threads, args.repeats)
            key = f"{name}/{threads}t"
            results[key] = {
                "texts": len(texts), "tokens": n_tokens, "threads": threads,
                "llamabatch_s": ours, "llama_cpp_s": llama, "hf_tokenizers_s": hf,
                "llamabatch_over_llama_cpp": ours / llama, "llamabatch_over_hf": ours / hf,
            }
            rows.append([key, len(texts), f"{ours * 1e3:.1f}", f"{llama * 1e3:.1f}", f"{hf * 1e3:.1f}",
                         f"{ours / llama:.2f}", f"{ours / hf:.2f}"])

    # Share of encode's wall time (the embedder tokenizes inside encode).
    embedder = llamabatch.Embedder(str(path), n_gpu_layers=0)
    texts = sets["benchmark"]
    embedder.encode(texts[:64])  # warm
    encode_s = best_of(lambda: embedder.encode(texts), min(args.repeats, 2))
    tokenize_s = best_of(lambda: embedder.tokenize(texts), args.repeats)
    results["share_of_encode"] = {"encode_s": encode_s, "tokenize_s": tokenize_s, "share": tokenize_s / encode_s}

    print(table(rows, ["set/threads", "texts", "llamabatch ms", "llama.cpp ms", "HF tokenizers ms",
                       "vs llama.cpp", "vs HF"]))
    print(f"tokenizing is {100 * tokenize_s / encode_s:.2f}% of encode's wall time "
          f"({tokenize_s * 1e3:.1f} ms of {encode_s:.2f} s, {len(texts)} texts)")
    out = write_json("tokenize.json", {
        "machine": machine(), "versions": versions("llamabatch", "tokenizers", "transformers"),
        "model": str(path), "repeats": args.repeats, "results": results,
    })
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
