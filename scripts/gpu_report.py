#!/usr/bin/env python3
"""Measurements of the GPU check (scripts/gpu_check.sh runs this; it works on a CPU too).

    python scripts/gpu_report.py embed --minilm FILE.gguf [--st-folder DIR] --out DIR
    python scripts/gpu_report.py generate --smollm FILE.gguf [--batched-bench EXE] --out DIR

embed (writes DIR/gpu-embed.json):
- GPU against CPU embeddings of tests/data/reference_texts.json (cosine per text),
  and against sentence-transformers' reference embeddings of the same texts;
- ``encode`` texts/s and tokens/s with the defaults on the benchmark corpus
  (benchmarks/texts.py), and the share of that time the GPU was busy
  (nvidia-smi's utilization, sampled every 50 ms);
- llamabatch's own ``n_batch`` sweep (``n_ubatch`` follows it for this non-causal model);
- sentence-transformers fp32 and fp16 at batch sizes 32, 128 and 512 on the same
  texts and device. The GPU machine has no network, so its model is the same
  architecture and tokenizer (from --st-folder) with random weights: the same
  work, not the same numbers.

generate (writes DIR/gpu-generate.json): Generator tokens/s against llama.cpp's
llama-batched-bench, built from the same tree in the same build folder, at each
parallel level: NPP-token prompts, NTG new tokens each, all layers on the GPU.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import llamabatch  # noqa: E402
from texts import make_texts  # noqa: E402


class GpuBusy:
    """Samples nvidia-smi's GPU utilization while the block runs (None without nvidia-smi)."""

    def __enter__(self) -> "GpuBusy":
        self.samples: list[float] = []
        self.proc = None
        if shutil.which("nvidia-smi"):
            self.proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "50"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            out, _ = self.proc.communicate(timeout=10)
            self.samples = [float(x) for x in out.split() if x.strip().replace(".", "").isdigit()]

    @property
    def share(self) -> float | None:
        return round(statistics.mean(self.samples) / 100, 3) if self.samples else None


def timed_encode(emb: llamabatch.Embedder, texts: list[str], rounds: int) -> dict:
    emb.encode(texts[:64])  # warm-up: kernels load, memory pools fill
    runs = []
    for _ in range(rounds):
        emb.reset_stats()
        t0 = time.perf_counter()
        emb.encode(texts)
        seconds = time.perf_counter() - t0
        runs.append((seconds, emb.stats))
    seconds, stats = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
    return {"texts_per_s": round(len(texts) / seconds, 1), "tokens_per_s": round(stats["tokens"] / seconds, 1),
            "seconds": round(seconds, 3), "decodes": stats["decodes"],
            "decode_share": round(stats["decode_seconds"] / seconds, 3)}


def sentence_transformers_speed(st_folder: str, texts: list[str], batches: list[int], rounds: int) -> dict:
    try:
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers import AutoConfig, AutoModel
    except ImportError as e:
        return {"skipped": f"sentence-transformers not importable ({e})"}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(st_folder, tmp, dirs_exist_ok=True)
        torch.manual_seed(0)
        AutoModel.from_config(AutoConfig.from_pretrained(st_folder)).save_pretrained(tmp)
        model = SentenceTransformer(tmp, device=device)
    results: dict = {"device": device, "weights": "random (same architecture and tokenizer)",
                     "max_seq_length": model.max_seq_length}
    for dtype in ("fp32", "fp16") if device == "cuda" else ("fp32",):
        if dtype == "fp16":
            model = model.half()
        for bs in batches:
            model.encode(texts[: 2 * bs], batch_size=bs)  # warm-up
            times = []
            for _ in range(rounds):
                if device == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                model.encode(texts, batch_size=bs, normalize_embeddings=True)
                if device == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
            results[f"{dtype}_batch_{bs}_texts_per_s"] = round(len(texts) / statistics.median(times), 1)
    return results


def embed_report(args: argparse.Namespace) -> dict:
    info = llamabatch.system_info()
    ref_texts = json.loads((ROOT / "tests/data/reference_texts.json").read_text(encoding="utf-8"))
    reference = np.load(ROOT / "tests/data/reference_minilm.npy")
    gpu = llamabatch.Embedder(args.minilm)
    cpu = llamabatch.Embedder(args.minilm, n_gpu_layers=0)
    a, b = gpu.encode(ref_texts), cpu.encode(ref_texts)
    cos_cpu = np.sum(a * b, axis=1)
    comparable = [i for i in range(len(ref_texts)) if i not in (139, 144)]  # tokenized differently (README)
    cos_st = np.sum(a * reference, axis=1)[comparable]
    texts = make_texts(args.texts)
    report = {
        "system": info, "device": gpu.device, "n_batch_default": gpu.n_batch, "texts": len(texts),
        "cosine_gpu_vs_cpu": {"min": float(cos_cpu.min()), "mean": float(cos_cpu.mean()),
                              "goal": 0.9999, "met": bool(cos_cpu.min() >= 0.9999)},
        "cosine_gpu_vs_sentence_transformers": {"min": float(cos_st.min()), "mean": float(cos_st.mean())},
    }
    with GpuBusy() as busy:
        report["encode"] = timed_encode(gpu, texts, args.rounds)
    report["encode"]["gpu_busy_share"] = busy.share
    report["n_batch_sweep"] = {}
    for n_batch in args.batches:
        emb = llamabatch.Embedder(args.minilm, n_batch=n_batch)
        report["n_batch_sweep"][n_batch] = timed_encode(emb, texts, args.rounds)
        del emb
    report["sentence_transformers"] = (sentence_transformers_speed(args.st_folder, texts, [32, 128, 512], args.rounds)
                                       if args.st_folder else {"skipped": "no --st-folder"})
    st = report["sentence_transformers"]
    fp16 = [v for k, v in st.items() if k.startswith("fp16_batch_")]
    if fp16:
        ratio = report["encode"]["texts_per_s"] / max(fp16)
        report["goal_encode_vs_st_fp16"] = {"ratio": round(ratio, 2), "goal": 1.5, "met": ratio >= 1.5}
    return report


def generate_report(args: argparse.Namespace) -> dict:
    from bench_batched_bench import exact_prompts, run_batched_bench, run_ours

    model = llamabatch.Model(args.smollm, vocab_only=True)
    report: dict = {"system": llamabatch.system_info(), "npp": args.npp, "ntg": args.ntg, "levels": {}}
    for pl in args.npl:
        prompts = exact_prompts(model, pl, args.npp)
        row = {"llamabatch": run_ours(Path(args.smollm), prompts, args.ntg, pl, args.threads, args.npp + args.ntg)}
        if args.batched_bench:
            row["llama_batched_bench"] = run_batched_bench(Path(args.batched_bench), Path(args.smollm), args.npp,
                                                           args.ntg, pl, args.threads, extra=["-ngl", "99"])
            row["ratio"] = round(row["llamabatch"]["gen_tokens_per_s"] / row["llama_batched_bench"]["gen_tokens_per_s"], 3)
        report["levels"][pl] = row
        print(pl, json.dumps(row), flush=True)
    ratios = [r["ratio"] for r in report["levels"].values() if "ratio" in r]
    if ratios:
        report["goal_within_10_percent"] = {"min_ratio": min(ratios), "met": min(ratios) >= 0.9}
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=["embed", "generate"])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minilm")
    ap.add_argument("--st-folder")
    ap.add_argument("--texts", type=int, default=20000, help="benchmark corpus size (embed)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batches", type=lambda s: [int(x) for x in s.split(",")], default=[512, 1024, 2048, 4096, 8192])
    ap.add_argument("--smollm")
    ap.add_argument("--batched-bench")
    ap.add_argument("--npl", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16, 64, 256])
    ap.add_argument("--npp", type=int, default=128)
    ap.add_argument("--ntg", type=int, default=128)
    ap.add_argument("--threads", type=int, default=8)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    report = embed_report(args) if args.part == "embed" else generate_report(args)
    report["date"] = time.strftime("%Y-%m-%d %H:%M:%S")
    path = args.out / f"gpu-{args.part}.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    summary = {k: v for k, v in report.items() if k not in ("system", "levels")}
    with open(args.out / "summary.txt", "a") as f:
        f.write(f"== {args.part} on {report['system'].get('gpu') or 'cpu'} ==\n{json.dumps(summary, indent=1, default=str)}\n")
    print(json.dumps(summary, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
