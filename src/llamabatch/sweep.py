"""Batch-size sweeps: run one task at several batch sizes, compare, tabulate and plot.

For each batch size (texts per decode for embeddings, ``n_parallel`` for
generation) the task runs over the same samples; the run at the smallest batch
size (1 by default) is the baseline.  Recorded per batch size: total time,
samples/s, speed-up over the baseline, how similar the outputs are to the
baseline's (embeddings: min and mean cosine; text: exact-match rate and mean
word-level SequenceMatcher ratio), similarity to a reference field when given,
and samples per hour and per day.  :func:`write_results` writes
``results.csv``, ``results.json`` and ``sweep.png`` (matplotlib, Agg backend).

With no input the shipped sample is used: 300 food and drink captions, each
with the list of its items as the reference.
"""
from __future__ import annotations

import csv
import datetime as _dt
import functools
import json
import os
import platform
import time
from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import datasets
from .generator import fill_template

__all__ = ["DEFAULT_PROMPT", "SweepConfig", "cpu_name", "format_table", "plot", "run_sweep", "write_results"]

DEFAULT_PROMPT = "List the food and drink items in this caption, comma-separated: {prompt}"
SAMPLE_REFERENCE_FIELD = "items"


@dataclass
class SweepConfig:
    task: str = "embed"
    input: str | os.PathLike[str] | None = None
    batch_sizes: Sequence[int] = (1, 4, 8, 16, 32, 64)
    limit: int | None = None
    text_field: str = "text"
    reference_field: str | None = None
    fmt: str | None = None
    model: str | None = None
    threads: int | None = None
    repeats: int | None = None  # runs per batch size, best kept (default: 3 for embed, 1 for generate)
    generation: dict[str, Any] = field(default_factory=dict)
    prompt_template: str | None = None
    n_ctx: int | None = None
    progress: bool = True
    batch_invariant: bool = False  # Embedder/Generator(batch_invariant=True): 1.0 at every batch size


# --------------------------------------------------------------------------- similarity


def word_similarity(a: str, b: str) -> float:
    """Word-level :class:`difflib.SequenceMatcher` ratio, 0..1 (two empty texts: 1)."""
    wa, wb = a.split(), b.split()
    if not wa and not wb:
        return 1.0
    return SequenceMatcher(None, wa, wb).ratio()


def items_mentioned(text: str, items: Sequence[Any]) -> float:
    """Fraction of the reference items that appear (case-insensitively) in ``text``."""
    items = [str(i).strip().lower() for i in items if str(i).strip()]
    if not items:
        return 1.0
    low = text.lower()
    return sum(item in low for item in items) / len(items)


def reference_text(ref: Any) -> str:
    if isinstance(ref, (list, tuple)):
        return ", ".join(str(r) for r in ref)
    return "" if ref is None else str(ref)


def _row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    cos: np.ndarray = np.einsum("ij,ij->i", a, b) / np.maximum(na * nb, 1e-12)
    return cos


# --------------------------------------------------------------------------- machine


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (else what :mod:`platform` knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware", "cpu model") and value.strip():
                    return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _load_average() -> float | None:
    """The 1-minute load average (others' work skews timings), where the OS reports it."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # pragma: no cover - Windows
        return None


def _default_threads() -> int:
    return os.cpu_count() or 1  # what the C++ core uses when n_threads is not given


# --------------------------------------------------------------------------- running


def _load(config: SweepConfig) -> tuple[str, list[str], list[Any] | None, str | None]:
    path = config.input
    ref_field = config.reference_field
    if path is None:
        path = datasets.sample_dataset()
        ref_field = ref_field or SAMPLE_REFERENCE_FIELD
    extras = (ref_field,) if ref_field else ()
    rows = []
    for row in datasets.read_rows(path, text_field=config.text_field, id_field=None, extra_fields=extras,
                                  fmt=config.fmt):
        rows.append(row)
        if config.limit and len(rows) >= config.limit:
            break
    if not rows:
        raise ValueError(f"{path}: no rows to sweep over")
    refs = [r.extras.get(ref_field) for r in rows] if ref_field else None
    if refs is not None and all(r is None for r in refs):
        raise datasets.DataError(f"{path}: missing field {ref_field!r} (reference field) in every row read")
    return str(path), [r.text for r in rows], refs, ref_field


def run_sweep(config: SweepConfig) -> dict[str, Any]:
    """Runs the sweep; returns ``{"meta": {...}, "runs": [{...} per batch size]}``."""
    if config.task not in ("embed", "generate"):
        raise ValueError(f"task must be 'embed' or 'generate', got {config.task!r}")
    batch_sizes = list(dict.fromkeys(int(b) for b in config.batch_sizes))
    if not batch_sizes or min(batch_sizes) < 1:
        raise ValueError("batch sizes must be positive integers")
    if config.repeats is None:
        config = replace(config, repeats=3 if config.task == "embed" else 1)
    path, texts, refs, ref_field = _load(config)
    load_before = _load_average()
    if load_before is not None and load_before > 0.5 * _default_threads():
        _say(config, f"note: the machine is busy (load average {load_before:.1f} on {_default_threads()} CPUs); "
                     "timings will be noisy")
    runner = _embed_runs if config.task == "embed" else _generate_runs
    runs, model_path, extra_meta = runner(config, batch_sizes, texts, refs)

    base = min(batch_sizes)
    base_time = next(r["total_seconds"] for r in runs if r["batch_size"] == base)
    for r in runs:
        sps = len(texts) / r["total_seconds"] if r["total_seconds"] > 0 else float("inf")
        r["samples_per_second"] = sps
        r["speedup"] = base_time / r["total_seconds"] if r["total_seconds"] > 0 else float("inf")
        r["samples_per_hour"] = sps * 3600
        r["samples_per_day"] = sps * 86400
    meta = {
        "task": config.task,
        "model": Path(model_path).name,
        "model_path": str(model_path),
        "cpu": cpu_name(),
        "threads": config.threads or _default_threads(),
        "dataset": path,
        "samples": len(texts),
        "baseline_batch_size": base,
        "reference_field": ref_field,
        "repeats": config.repeats,
        "batch_invariant": config.batch_invariant,
        "load_average_before": load_before,
        "load_average_after": _load_average(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        **extra_meta,
    }
    return {"meta": meta, "runs": [_ordered(r, config.task, refs is not None) for r in runs]}


def _timed(fn: Callable[[], Any], repeats: int | None) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(max(1, repeats or 1)):
        t0 = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - t0
        if seconds < best:
            best, out = seconds, result
    return best, out


def _say(config: SweepConfig, msg: str) -> None:
    if config.progress:
        import sys

        print(msg, file=sys.stderr, flush=True)


def _embed_runs(config: SweepConfig, batch_sizes: list[int], texts: list[str],
                refs: list[Any] | None) -> tuple[list[dict[str, Any]], str, dict[str, Any]]:
    from .embedder import Embedder

    embedder = Embedder(config.model, n_threads=config.threads, n_seq_max=max(max(batch_sizes), 1),
                        batch_invariant=config.batch_invariant)
    embedder.encode(texts[:16], truncate=True)  # warm-up: first touch of the weights is not throughput
    outputs: dict[int, np.ndarray] = {}
    runs: list[dict[str, Any]] = []
    for bs in batch_sizes:
        _say(config, f"embed: batch size {bs} ...")
        seconds, out = _timed(functools.partial(embedder.encode, texts, batch_size=bs, truncate=True), config.repeats)
        outputs[bs] = out
        runs.append({"batch_size": bs, "samples": len(texts), "total_seconds": seconds})
    base = outputs[min(batch_sizes)]
    ref_vecs = None
    if refs is not None:
        ref_vecs = np.asarray(embedder.encode([reference_text(r) for r in refs], truncate=True))
    for r in runs:
        cos = _row_cosines(outputs[r["batch_size"]], base)
        r["cosine_min_vs_baseline"] = float(cos.min())
        r["cosine_mean_vs_baseline"] = float(cos.mean())
        if ref_vecs is not None:
            r["reference_similarity"] = float(_row_cosines(outputs[r["batch_size"]], ref_vecs).mean())
    meta = {"n_embd": embedder.n_embd, "similarity_to_reference": "mean cosine to the reference's embedding"}
    return runs, embedder.model.path, meta


def _generate_runs(config: SweepConfig, batch_sizes: list[int], texts: list[str],
                   refs: list[Any] | None) -> tuple[list[dict[str, Any]], str, dict[str, Any]]:
    import llamabatch

    template = config.prompt_template
    if template is None and config.input is None:
        template = DEFAULT_PROMPT
    prompts = fill_template(template, texts)
    options = {"max_new_tokens": 64, "chat": True, **{k: v for k, v in config.generation.items() if v is not None}}
    options.pop("show_progress", None)
    outputs: dict[int, list[Any]] = {}
    runs: list[dict[str, Any]] = []
    model_path = ""
    for bs in batch_sizes:
        _say(config, f"generate: n_parallel {bs} ...")
        gen = llamabatch.Generator(config.model, n_parallel=bs, n_ctx=config.n_ctx, n_threads=config.threads,
                                   batch_invariant=config.batch_invariant)
        model_path = gen.model.path
        gen.generate(prompts[:1], **{**options, "max_new_tokens": 2})  # warm-up
        seconds, out = _timed(functools.partial(gen.generate_details, prompts, **options), config.repeats)
        outputs[bs] = out
        tokens = int(sum(c.completion_tokens for c in out))
        runs.append({"batch_size": bs, "samples": len(texts), "total_seconds": seconds,
                     "completion_tokens": tokens, "tokens_per_second": tokens / seconds if seconds > 0 else 0.0})
        del gen
    base = [c.text for c in outputs[min(batch_sizes)]]
    for r in runs:
        got = [c.text for c in outputs[r["batch_size"]]]
        r["exact_match_vs_baseline"] = float(np.mean([a == b for a, b in zip(got, base)]))
        r["word_similarity_vs_baseline"] = float(np.mean([word_similarity(a, b) for a, b in zip(base, got)]))
        if refs is not None:
            r["reference_similarity"] = float(np.mean([
                items_mentioned(t, ref) if isinstance(ref, (list, tuple)) else word_similarity(reference_text(ref), t)
                for t, ref in zip(got, refs)
            ]))
    meta = {
        "prompt_template": template,
        "generation": {k: v for k, v in options.items()},
        "similarity_to_reference": "fraction of reference items mentioned (list) or word-level "
                                   "SequenceMatcher ratio (text)",
        "examples": [{"prompt": p, "output": o} for p, o in zip(prompts[:3], base[:3])],
    }
    return runs, model_path, meta


_COLUMNS = {
    "embed": ["batch_size", "samples", "total_seconds", "samples_per_second", "speedup",
              "cosine_min_vs_baseline", "cosine_mean_vs_baseline"],
    "generate": ["batch_size", "samples", "total_seconds", "samples_per_second", "speedup",
                 "exact_match_vs_baseline", "word_similarity_vs_baseline", "completion_tokens", "tokens_per_second"],
}


def columns(task: str, with_reference: bool) -> list[str]:
    """The results.csv columns for a task."""
    return _COLUMNS[task] + (["reference_similarity"] if with_reference else []) + ["samples_per_hour",
                                                                                    "samples_per_day"]


def _ordered(run: dict[str, Any], task: str, with_reference: bool) -> dict[str, Any]:
    return {k: run[k] for k in columns(task, with_reference)}


# --------------------------------------------------------------------------- writing


def write_results(result: dict[str, Any], out_dir: str | os.PathLike[str]) -> list[Path]:
    """Writes results.csv, results.json and sweep.png into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = result["runs"]
    csv_path = out / "results.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(runs[0]))
        writer.writeheader()
        for r in runs:
            writer.writerow({k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()})
    json_path = out / "results.json"
    json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    png_path = out / "sweep.png"
    plot(result, png_path)
    return [csv_path, json_path, png_path]


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table of the runs, for the terminal."""
    meta, runs = result["meta"], result["runs"]
    sim = ("cosine_min_vs_baseline", "cos min") if meta["task"] == "embed" else ("exact_match_vs_baseline", "exact")
    head = f"{'batch':>6} {'seconds':>9} {'samples/s':>10} {'speed-up':>9} {sim[1]:>9}"
    has_ref = "reference_similarity" in runs[0]
    head += f" {'vs ref':>7}" if has_ref else ""
    head += f" {'per day':>14}"
    mode = ", batch-invariant" if meta.get("batch_invariant") else ""
    lines = [f"{meta['task']} sweep{mode}: {meta['model']} on {meta['cpu']}, {_threads(meta['threads'])}, "
             f"{meta['samples']} samples", head]
    for r in runs:
        line = (f"{r['batch_size']:>6} {r['total_seconds']:>9.3f} {r['samples_per_second']:>10.1f} "
                f"{r['speedup']:>8.2f}x {r[sim[0]]:>9.4f}")
        line += f" {r['reference_similarity']:>7.3f}" if has_ref else ""
        line += f" {r['samples_per_day']:>14,.0f}"
        lines.append(line)
    return "\n".join(lines)


def _threads(n: int) -> str:
    return f"{n} thread" if n == 1 else f"{n} threads"


def _rate(rate: float) -> str:
    return f"{rate:.0f}" if rate >= 100 else f"{rate:.1f}" if rate >= 10 else f"{rate:.2f}"


def plot(result: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Two panels: total time by batch size; samples/s by batch size with the speed-up marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    meta, runs = result["meta"], result["runs"]
    labels = [str(r["batch_size"]) for r in runs]
    seconds = [r["total_seconds"] for r in runs]
    rates = [r["samples_per_second"] for r in runs]
    speedups = [r["speedup"] for r in runs]
    best = int(np.argmax(rates))
    what = "batch size (texts per decode)" if meta["task"] == "embed" else "batch size (n_parallel)"

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.4))
    bars = ax1.bar(labels, seconds, color="#8fb3d9", edgecolor="#3d6a99")
    ax1.set_title("Total time (lower is better)")
    ax1.set_xlabel(what)
    ax1.set_ylabel(f"seconds for {meta['samples']} samples")
    ax1.set_ylim(0, max(seconds) * 1.18)
    for bar, s in zip(bars, seconds):
        ax1.annotate(f"{s:.2f} s", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                     xytext=(0, 3), textcoords="offset points", ha="center", fontsize=9)

    colors = ["#f0a35e" if i == best else "#f5c89a" for i in range(len(runs))]
    bars = ax2.bar(labels, rates, color=colors, edgecolor="#b5651d")
    ax2.set_title("Throughput (higher is better), speed-up over batch size "
                  f"{meta['baseline_batch_size']} marked")
    ax2.set_xlabel(what)
    ax2.set_ylabel("samples / second")
    ax2.set_ylim(0, max(rates) * 1.22)
    for bar, rate, up in zip(bars, rates, speedups):
        ax2.annotate(f"{_rate(rate)}/s\n{up:.2f}x", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                     xytext=(0, 3), textcoords="offset points", ha="center", fontsize=9,
                     fontweight="bold" if bar is bars[best] else "normal")
    for ax in (ax1, ax2):
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)

    fig.suptitle(f"llamabatch {meta['task']} sweep: {meta['model']}\n"
                 f"{meta['cpu']}, {_threads(meta['threads'])}, {meta['samples']} samples"
                 + (f", best of {meta['repeats']} runs" if meta.get("repeats", 1) > 1 else ""),
                 fontsize=12)
    if meta["task"] == "embed":
        worst = min(r["cosine_min_vs_baseline"] for r in runs)
        note = f"outputs vs batch size {meta['baseline_batch_size']}: min cosine {worst:.7f}"
    else:
        worst = min(r["exact_match_vs_baseline"] for r in runs)
        note = f"outputs vs n_parallel {meta['baseline_batch_size']}: lowest exact-match rate {worst:.0%}"
    if "reference_similarity" in runs[0]:
        how = "mean cosine" if meta["task"] == "embed" else "items mentioned"
        note += (f"; similarity to the reference '{meta['reference_field']}' ({how}): "
                 f"{np.mean([r['reference_similarity'] for r in runs]):.3f}")
    fig.text(0.5, 0.01, note, ha="center", fontsize=9, color="#555555")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
