"""Greedy chat outputs: llamabatch's Generator against llama.cpp's `llama-server --jinja -np 1`.

    python benchmarks/bench_chat_parity.py [--n 64] [--max-tokens 32] [--threads 2]
        [--llama-server PATH | --build-llama-server] [--out chat_parity.json]

Both run the catalogue's SmolLM2-135M-Instruct from the same pinned llama.cpp tree (the
server built by bench_serve.py's --build-llama-server) on the serving benchmark's chat
prompts (bench_serve.make_prompts: one user message each), greedy, `max_tokens` new tokens,
one sequence at a time (the server with -np 1, the Generator with n_parallel=1), flash
attention on both. The server runs first, alone, on loopback (127.0.0.1 only); then the
Generator runs in this process with the server stopped.

For every prompt the script compares
  - the rendered prompt: llama-server's POST /apply-template against
    Generator.chat_prompter.text() (transformers' rendering, issue 25);
  - the prompt's token count: the server's usage.prompt_tokens against the Generator's;
  - the completion text, and its finish reason ("stop" or "length").
It reports the share of identical completions (the goal: >= 95%) and lists the first
prompts that differ, with both texts, so a difference can be read rather than guessed at.

Writes benchmarks/results/chat_parity.json.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_serve  # noqa: E402  (the llama-server build, its process handling, the prompts)
from _common import machine, versions, write_json  # noqa: E402

GOAL = 0.95


def server_outputs(exe: str, model: str, prompts: list[str], max_tokens: int, threads: int,
                   log_dir: Path) -> list[dict]:
    import httpx

    port = bench_serve.free_port()
    argv = [exe, "-m", model, "--host", bench_serve.HOST, "--port", str(port), "-t", str(threads),
            "-tb", str(threads), "-np", "1", "-c", "4096", "--jinja", "-fa", "on", "--no-warmup"]
    phase = bench_serve.Phase(bench_serve.LS, "llama-server chat parity", argv, ("chat",), port)
    server = bench_serve.ServerProcess(phase, port, f"0-{max(threads - 1, 0)}", log_dir, 0)
    server.start(timeout=120)
    out = []
    try:
        base = f"http://{bench_serve.HOST}:{port}"
        with httpx.Client(base_url=base, trust_env=False, timeout=120) as c:
            for p in prompts:
                messages = [{"role": "user", "content": p}]
                rendered = c.post("/apply-template", json={"messages": messages})
                rendered.raise_for_status()
                r = c.post("/v1/chat/completions", json={"messages": messages, "max_tokens": max_tokens,
                                                         "temperature": 0, "stream": False})
                r.raise_for_status()
                body = r.json()
                out.append({"prompt_text": rendered.json()["prompt"],
                            "text": body["choices"][0]["message"]["content"],
                            "finish": body["choices"][0]["finish_reason"],
                            "prompt_tokens": body["usage"]["prompt_tokens"]})
    finally:
        server.stop()
    return out


def generator_outputs(model: str, prompts: list[str], max_tokens: int, threads: int) -> list[dict]:
    from llamabatch import Generator

    g = Generator(model, n_parallel=1, n_threads=threads)
    details = g.generate_details(prompts, chat=True, max_new_tokens=max_tokens)
    return [{"prompt_text": g.chat_prompter.text([{"role": "user", "content": p}]),
             "text": d.text, "finish": d.finish_reason, "prompt_tokens": d.prompt_tokens}
            for p, d in zip(prompts, details)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=64, help="prompts (default 64, the 1-client chat workload's)")
    ap.add_argument("--max-tokens", type=int, default=32, help="new tokens per prompt (default 32, as bench_serve)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--llama-server", default=bench_serve.DEFAULT_LLAMA_SERVER)
    ap.add_argument("--build-llama-server", action="store_true")
    ap.add_argument("--out", default="chat_parity.json")
    args = ap.parse_args(argv)

    from llamabatch import models

    exe = str(bench_serve.build_llama_server()) if args.build_llama_server else args.llama_server
    if not Path(exe).exists():
        raise SystemExit(f"no llama-server at {exe}: pass --build-llama-server (or --llama-server PATH)")
    model = str(models.fetch("smollm2-135m-instruct"))
    prompts = bench_serve.make_prompts(args.n)
    log_dir = Path(bench_serve.ROOT / "build" / "chat-parity-logs")
    log_dir.mkdir(parents=True, exist_ok=True)

    theirs = server_outputs(exe, model, prompts, args.max_tokens, args.threads, log_dir)
    ours = generator_outputs(model, prompts, args.max_tokens, args.threads)

    same_text = [a["text"] == b["text"] for a, b in zip(ours, theirs)]
    same_prompt = [a["prompt_text"] == b["prompt_text"] for a, b in zip(ours, theirs)]
    same_tokens = [a["prompt_tokens"] == b["prompt_tokens"] for a, b in zip(ours, theirs)]
    differing = [{"prompt": p, "llamabatch": a, "llama-server": b}
                 for p, a, b, same in zip(prompts, ours, theirs, same_text) if not same]
    share = sum(same_text) / len(prompts)
    result = {
        "machine": machine(),
        "versions": versions("llamabatch"),
        "settings": {"model": Path(model).name, "prompts": len(prompts), "max_tokens": args.max_tokens,
                     "threads": args.threads, "llama_server": exe,
                     "llama_server_args": "-np 1 -c 4096 --jinja -fa on", "generator": "n_parallel=1"},
        "identical_completions": sum(same_text),
        "identical_share": round(share, 4),
        "identical_rendered_prompts": sum(same_prompt),
        "identical_prompt_token_counts": sum(same_tokens),
        "goal": {"identical_share_at_least": GOAL, "met": share >= GOAL},
        "first_differences": differing[:8],
    }
    path = write_json(args.out, result)
    print(f"identical completions: {sum(same_text)}/{len(prompts)} ({share:.1%}; goal {GOAL:.0%}), "
          f"rendered prompts {sum(same_prompt)}/{len(prompts)}, prompt token counts "
          f"{sum(same_tokens)}/{len(prompts)}")
    for d in differing[:3]:
        print(f"  {d['prompt']!r}\n    llamabatch:   {d['llamabatch']['text']!r}\n"
              f"    llama-server: {d['llama-server']['text']!r}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
