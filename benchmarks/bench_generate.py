"""Generation throughput at several n_parallel levels (continuous batching).

    python benchmarks/bench_generate.py [--model NAME] [--prompts 128] [--max-new-tokens 64]
                                        [--parallel 1,4,8,16,32,64] [--chat] [--transformers 8,16,32]
                                        [--lock /tmp/llamabatch-bench.lock]

Prints generated tokens/s and prompts/s per level, the speed-up over
n_parallel=1, and token-exact greedy agreement with n_parallel=1; writes
benchmarks/results/generate.json.
"""
from __future__ import annotations

import argparse
import os
import time
from difflib import SequenceMatcher

from _common import held, machine, write_json  # noqa: E402
from texts import ASKS, DISHES  # noqa: E402

from llamabatch import Generator



def make_prompts(n: int) -> list[str]:
    out = [a.format(d=d) for a in ASKS for d in DISHES]
    while len(out) < n:
        out += out
    return out[:n]


def transformers_peer(model_path, prompts, batch_size: int, max_new_tokens: int, threads: int) -> dict:
    """The tutorial's method: transformers on the same GGUF (dequantized to f32), left padding,
    greedy, static batches of batch_size. Both sides see the same prompt token ids and stop at
    the same tokens: the prompts are tokenized by llama.cpp (as Generator does), and rows stop
    at, and are counted up to, the first of llama.cpp's end-of-generation tokens. transformers'
    own tokenizer for this GGUF prepends <|im_start|> as a BOS that llama.cpp does not add
    (the GGUF says add_bos_token false) and names <|im_start|> as eos, which the model never
    emits at the end of an answer, so rows ran on to max_new_tokens."""
    import torch
    from transformers import AutoModelForCausalLM

    from llamabatch import _core

    torch.set_num_threads(threads)
    lc = _core.Model(str(model_path))
    eog = lc.declared_end_tokens.tolist()
    pad = eog[0]
    folder, name = str(model_path.parent), model_path.name
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    generated, completions = 0, []
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(prompts), batch_size):
            ids = [lc.tokenize(p).tolist() for p in prompts[i:i + batch_size]]
            width = max(len(x) for x in ids)
            input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids])  # left padding
            mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids])
            out = model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                 do_sample=False, pad_token_id=pad, eos_token_id=eog)
            for row in out[:, width:].tolist():
                n = next((k for k, t in enumerate(row) if t in eog), len(row))
                generated += n
                completions.append(row[:n])
    seconds = time.perf_counter() - t0
    return {"batch_size": batch_size, "seconds": round(seconds, 3), "generated_tokens": generated,
            "tokens_per_s": round(generated / seconds, 1), "prompts_per_s": round(len(prompts) / seconds, 2),
            "completions": completions}


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
    p.add_argument("--lock", default=None, metavar="FILE", help="take this flock around each level's run")
    args = p.parse_args()

    prompts = make_prompts(args.prompts)
    levels = [int(x) for x in args.parallel.split(",")]
    rows, reference = [], None
    for n in levels:
        with held(args.lock):
            load = [round(x, 2) for x in os.getloadavg()]
            # Every prompt decoded in full, as transformers' generate() does
            # (bench_prefix_cache.py measures the reuse).
            gen = Generator(args.model, n_parallel=n, n_threads=args.threads, prefix_cache=False)
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
            "decodes": s["decodes"], "loadavg_1_5_15": load,
        })
        r = rows[-1]
        print(f"n_parallel {n:>3}: {r['tokens_per_s']:7.1f} tokens/s  {r['prompts_per_s']:6.2f} prompts/s  "
              f"x{r['tokens_per_s'] / rows[0]['tokens_per_s']:.2f}  identical to n=1: {100 * same:.1f}%  "
              f"word ratio {ratio:.4f}  (load {load[0]})", flush=True)
        del gen
    peer = []
    if args.transformers:
        from llamabatch import models

        path = models.resolve(args.model, models.DEFAULT_GENERATION_MODEL)
        best = max(r["tokens_per_s"] for r in rows)
        best_prompts = max(r["prompts_per_s"] for r in rows)
        for bs in [int(x) for x in args.transformers.split(",")]:
            with held(args.lock):
                load = [round(x, 2) for x in os.getloadavg()]
                r = transformers_peer(path, prompts, bs, args.max_new_tokens, args.threads)
            r["loadavg_1_5_15"] = load
            # Same prompts, same stop tokens: f32 (transformers) and Q4_1 (llama.cpp) arithmetic
            # still differ, so some greedy completions diverge.
            same = sum(c == a.tokens.tolist() for c, a in zip(r.pop("completions"), reference)) / len(prompts)
            r["token_identical_to_llamabatch"] = round(same, 4)
            peer.append(r)
            print(f"transformers batch {bs:>3}: {r['tokens_per_s']:7.1f} tokens/s  {r['prompts_per_s']:6.2f} prompts/s"
                  f"  (llamabatch best is x{best / r['tokens_per_s']:.2f} in tokens/s, "
                  f"x{best_prompts / r['prompts_per_s']:.2f} in prompts/s; identical completions "
                  f"{100 * same:.1f}%, load {load[0]})", flush=True)
    write_json("generate.json", {"machine": machine(), "model": args.model or "smollm2-135m-instruct",
                                 "prompts": len(prompts), "max_new_tokens": args.max_new_tokens,
                                 "chat": args.chat, "threads": args.threads, "results": rows,
                                 "transformers": peer})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
