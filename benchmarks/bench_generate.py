"""Generation throughput at several n_parallel levels (continuous batching).

    python benchmarks/bench_generate.py [--model NAME] [--prompts 128] [--max-new-tokens 64]
                                        [--parallel 1,4,8,16,32,64] [--chat]

Prints generated tokens/s and prompts/s per level, the speed-up over
n_parallel=1, and token-exact greedy agreement with n_parallel=1; writes
benchmarks/results/generate.json.
"""
from __future__ import annotations

import argparse
import os
import time
from difflib import SequenceMatcher

from _common import machine, write_json  # noqa: E402

from llamabatch import Generator

DISHES = ["ramen", "paella", "tacos", "pho", "risotto", "curry", "falafel", "pierogi", "sushi", "goulash",
          "lasagne", "biryani", "ceviche", "moussaka", "dumplings", "shakshuka"]
ASKS = ["Describe {d} in one sentence.", "Give a short recipe for {d}.", "What country is {d} from?",
        "List three ingredients of {d}.", "Write a two-line poem about {d}.",
        "Suggest a drink to serve with {d}, and say why.", "Tell me a fun fact about {d}.",
        "How do you pronounce {d}? Answer briefly."]


def make_prompts(n: int) -> list[str]:
    out = [a.format(d=d) for a in ASKS for d in DISHES]
    while len(out) < n:
        out += out
    return out[:n]


def transformers_peer(model_path, prompts, batch_size: int, max_new_tokens: int, threads: int) -> dict:
    """The tutorial's method: transformers on the same GGUF (dequantized to f32), left padding,
    greedy, static batches of batch_size. Counts generated tokens up to each row's end of generation."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)
    folder, name = str(model_path.parent), model_path.name
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    generated = 0
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(prompts), batch_size):
            enc = tok(prompts[i:i + batch_size], return_tensors="pt", padding=True)
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
            for row in out[:, enc["input_ids"].shape[1]:].tolist():
                n = next((k for k, t in enumerate(row) if t == tok.eos_token_id), len(row))
                generated += n
    seconds = time.perf_counter() - t0
    return {"batch_size": batch_size, "seconds": round(seconds, 3), "generated_tokens": generated,
            "tokens_per_s": round(generated / seconds, 1), "prompts_per_s": round(len(prompts) / seconds, 2)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None)
    p.add_argument("--prompts", type=int, default=128)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--parallel", default="1,4,8,16,32,64")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--chat", action="store_true", help="apply the chat template (ragged, early-stopping outputs)")
    p.add_argument("--transformers", default="", metavar="BATCH_SIZES",
                   help="also run transformers generate() at these batch sizes, e.g. 8,16,32 (plain prompts only)")
    args = p.parse_args()

    prompts = make_prompts(args.prompts)
    levels = [int(x) for x in args.parallel.split(",")]
    rows, reference = [], None
    for n in levels:
        gen = Generator(args.model, n_parallel=n, n_threads=args.threads)
        gen.generate(prompts[:2], max_new_tokens=4, chat=args.chat)  # warm-up
        gen.reset_stats()
        t0 = time.perf_counter()
        out = gen.generate_details(prompts, max_new_tokens=args.max_new_tokens, chat=args.chat)
        seconds = time.perf_counter() - t0
        s = gen.stats
        if reference is None:
            reference = out
        same = sum(a.tokens.tolist() == b.tokens.tolist() for a, b in zip(out, reference)) / len(out)
        ratio = sum(SequenceMatcher(None, a.text.split(), b.text.split()).ratio()
                    for a, b in zip(out, reference)) / len(out)
        rows.append({
            "n_parallel": n, "seconds": round(seconds, 3),
            "generated_tokens": s["generated_tokens"], "prompt_tokens": s["prompt_tokens"],
            "tokens_per_s": round(s["generated_tokens"] / seconds, 1),
            "prompts_per_s": round(len(prompts) / seconds, 2),
            "decode_share": round(s["decode_seconds"] / seconds, 3),
            "token_identical_to_1": round(same, 4), "word_ratio_to_1": round(ratio, 4),
        })
        r = rows[-1]
        print(f"n_parallel {n:>3}: {r['tokens_per_s']:7.1f} tokens/s  {r['prompts_per_s']:6.2f} prompts/s  "
              f"x{r['tokens_per_s'] / rows[0]['tokens_per_s']:.2f}  identical to n=1: {100 * same:.1f}%  "
              f"word ratio {ratio:.4f}", flush=True)
        del gen
    peer = []
    if args.transformers:
        from llamabatch import models

        path = models.resolve(args.model, models.DEFAULT_GENERATION_MODEL)
        best = max(r["tokens_per_s"] for r in rows)
        for bs in [int(x) for x in args.transformers.split(",")]:
            r = transformers_peer(path, prompts, bs, args.max_new_tokens, args.threads)
            peer.append(r)
            print(f"transformers batch {bs:>3}: {r['tokens_per_s']:7.1f} tokens/s  {r['prompts_per_s']:6.2f} prompts/s"
                  f"  (llamabatch best is x{best / r['tokens_per_s']:.2f})", flush=True)
    write_json("generate.json", {"machine": machine(), "model": args.model or "smollm2-135m-instruct",
                                 "prompts": len(prompts), "max_new_tokens": args.max_new_tokens,
                                 "chat": args.chat, "threads": args.threads, "results": rows,
                                 "transformers": peer})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
