"""Prompt-prefix reuse in a dataset run: 1,000 prompts sharing one ~100-token instruction.

    python benchmarks/bench_prefix_cache.py [--rows 1000] [--rounds 2] [--threads 2]
        [--n-parallel 16] [--max-new-tokens 16] [--out prefix_cache.json]

What a user runs, timed from outside: `llamabatch generate INPUT -o OUT --chat
--prompt-template "INSTRUCTION {prompt}"` over JSONL rows of short English texts
(benchmarks/texts.py, about 16 tokens each), once as it is (a prompt starts from the longest prefix it
shares with what its slot last ran) and once with --no-prefix-cache. Each run is
its own process, on a fresh output; rounds alternate which mode goes first.
Reported: rows/s per mode (medians over rounds; the wall time includes loading
the model, about a second), the speed-up, and the share of rows whose completion
is the same text in both modes (greedy; the default mode is not batch-invariant,
so a near-tie may go the other way when a prefix comes from memory).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, versions, write_json  # noqa: E402
from texts import make_regime_texts  # noqa: E402

# The tutorial's FoodExtract task: one instruction shared by every row.
INSTRUCTION = (
    "You are given a short text, usually a photo caption or a line from a menu or a review. Extract every "
    "food and every drink it names, including dishes, ingredients and beverages. Answer with one line of JSON "
    'and nothing else, of the form {"food": [...], "drink": [...]}, with lowercase singular names in the '
    "order the text names them, and an empty list when it names none. Do not guess. The text:\n{prompt}"
)


def run_mode(input_path: Path, cache: bool, args, work: Path) -> dict:
    out = work / f"out-{'cache' if cache else 'nocache'}-{time.monotonic_ns()}.parquet"
    cmd = [sys.executable, "-m", "llamabatch.cli", "generate", str(input_path), "-o", str(out), "--chat",
           "--prompt-template", INSTRUCTION,
           "--max-new-tokens", str(args.max_new_tokens), "--threads", str(args.threads),
           "--n-parallel", str(args.n_parallel), "--no-progress"] + ([] if cache else ["--no-prefix-cache"])
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    return {"seconds": wall, "rows_per_s": table.num_rows / wall, "texts": table.column("generated_text").to_pylist(),
            "completion_tokens": int(sum(table.column("completion_tokens").to_pylist())),
            "prompt_tokens": int(sum(table.column("prompt_tokens").to_pylist()))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-parallel", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--out", default="prefix_cache.json")
    args = ap.parse_args(argv)

    from llamabatch import Generator

    gen = Generator(n_parallel=1, n_threads=1)
    shared = len(gen.prompt_tokens(INSTRUCTION.replace("{prompt}", ""), chat=True)) - 6  # less the template's end
    del gen
    texts = make_regime_texts("short", args.rows)
    runs: dict[str, list[dict]] = {"prefix cache": [], "no prefix cache": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        input_path = work / "rows.jsonl"
        input_path.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))
        for r in range(args.rounds):
            order = [True, False] if r % 2 == 0 else [False, True]
            for cache in order:
                res = run_mode(input_path, cache, args, work)
                runs["prefix cache" if cache else "no prefix cache"].append(res)
                print(f"round {r + 1}: {'prefix cache' if cache else 'no prefix cache':16s} "
                      f"{res['rows_per_s']:7.2f} rows/s ({res['seconds']:.1f} s)", flush=True)

    cached, plain = runs["prefix cache"][0]["texts"], runs["no prefix cache"][0]["texts"]
    same = sum(a == b for a, b in zip(cached, plain)) / len(plain)
    results = {name: {"rows_per_s": statistics.median(x["rows_per_s"] for x in rs),
                      "seconds": statistics.median(x["seconds"] for x in rs),
                      "rounds_rows_per_s": [x["rows_per_s"] for x in rs],
                      "prompt_tokens": rs[0]["prompt_tokens"], "completion_tokens": rs[0]["completion_tokens"]}
               for name, rs in runs.items()}
    speedup = results["prefix cache"]["rows_per_s"] / results["no prefix cache"]["rows_per_s"]
    data = {
        "benchmark": "prefix_cache", "machine": machine(), "versions": versions("llamabatch", "numpy"),
        "settings": {"rows": args.rows, "rounds": args.rounds, "threads": args.threads,
                     "n_parallel": args.n_parallel, "max_new_tokens": args.max_new_tokens,
                     "shared_instruction_tokens": shared, "model": "smollm2-135m-instruct (catalogue default)",
                     "command": "llamabatch generate rows.jsonl -o out.parquet --chat --prompt-template INSTRUCTION "
                                "[--no-prefix-cache]"},
        "results": results, "speedup": speedup, "same_text_share": same,
    }
    path = write_json(args.out, data)
    print(f"prefix cache / no prefix cache: {speedup:.2f}x rows/s; same completion text on {same * 100:.1f} % "
          f"of rows; shared instruction {shared} tokens -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
