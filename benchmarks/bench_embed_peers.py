"""CPU embeddings side by side: llamabatch against what a user would pick instead, each in its own process.

    python benchmarks/bench_embed_peers.py [--threads 1,2] [--rounds 3] [--scale 1.0]
        [--corpora short,medium,long,multilingual] [--only NAME[,NAME]] [--out embed_peers.json]

The real run (idle cores, about 75 minutes with the defaults; ~30 with --threads 2):

    python benchmarks/bench_embed_peers.py

As on an AVX2 CPU, on a machine that has AVX-512 (benchmarks/README.md, "AVX2 on an AVX-512
machine", says how to make the build):

    python benchmarks/bench_embed_peers.py --isa avx2 --llamabatch-build DIR --out embed_peers_avx2.json

--llamabatch-build DIR: every llamabatch worker imports the package from DIR (a `pip install
--target DIR` of a build) in a `python -S` process, this interpreter's site-packages appended.
--isa avx2: torch (ATEN_CPU_CAPABILITY), oneDNN (ONEDNN_MAX_CPU_ISA) and MKL
(MKL_ENABLE_INSTRUCTIONS) are held to AVX2; ONNX Runtime has no such switch and keeps its own
choice (recorded as such). The results record both.

Model: all-MiniLM-L6-v2 from the same weights for everyone (the catalogue's GGUFs are
converted from `llamabatch.models.source_folder("all-minilm-l6-v2")`, the folder that
sentence-transformers loads and that the ONNX files are exported from).

Contenders (T = the thread count of the cell)
  llamabatch              Embedder(n_threads=T).encode(texts): the default model in whatever
                          weight format the package picks for this CPU (recorded: repr, .weights)
  llamabatch-f16/-f32/-bf16
                          Embedder(models.fetch("all-minilm-l6-v2"[-f32|-bf16]), n_threads=T);
                          skipped, with a note, where the catalogue has no such entry
  llama-cpp-python        Llama(f16 gguf, embedding=True, n_threads=T, n_threads_batch=T,
                          flash_attn=True, n_batch=512, n_ubatch=512, n_ctx=512).embed(texts),
                          rows normalised here (its best settings; NOTES.md)
  st-torch                torch.set_num_threads(T); SentenceTransformer(folder, device="cpu")
                          .encode(texts, batch_size=32, normalize_embeddings=True)
  st-onnx-fp32/-o3/-int8  the same with backend="onnx" (ONNX Runtime, CPUExecutionProvider),
                          model_kwargs={"provider": ..., "session_options": so, "file_name": F}
                          where so.intra_op_num_threads = T, so.inter_op_num_threads = 1 (and
                          torch.set_num_threads(T) for the pooling). F: onnx/model.onnx,
                          onnx/model_O3.onnx (export_optimized_onnx_model(m, "O3", dir)),
                          onnx/model_qint8_<cfg>.onnx (export_dynamic_quantized_onnx_model(m,
                          cfg, dir), cfg "avx512_vnni" where /proc/cpuinfo has it, else "avx2").
                          Exported once, before any timing, into a copy of the source folder
                          under `llamabatch.models.cache_dir() / "bench-onnx"`.
  llamabatch-after-torch  one process: st-torch encodes the corpus once, then the default
                          llamabatch Embedder is warmed up and timed as `llamabatch` is; its
                          ratio to `llamabatch` shows whether torch loaded and run first slows it.

Corpora (benchmarks/texts.py make_regime_texts): English `short` (9-15 words, ~16 tokens),
`medium` (46-56 words, ~63 tokens), `long` (140-160 words, ~178 tokens; all under the 256
tokens at which sentence-transformers truncates this model) and `multilingual` (the texts of
tests/data/multilingual_corpus.json, repeated). Default counts (DEFAULT_COUNTS, times --scale)
make one pass of one contender about 3-6 s at 2 threads.

Method: each (round, corpus, thread count, contender) is a fresh subprocess of this script
(`--worker NAME --corpus C --threads T --scale S --out FILE`), so no two libraries' thread
pools share a process. A worker loads its model (untimed), runs one untimed warm-up pass
over the whole corpus, then `--passes` timed passes (default 1); it records wall time,
process CPU time (cpu/wall shows how many cores it really kept busy), its OS thread count and
the load average. RAYON_NUM_THREADS=T caps the Hugging Face tokenizer's pool too. Rounds
(`--rounds`) rotate the contender order; the report gives medians over rounds of texts/s and
tokens/s (tokens = llamabatch's `Embedder.tokenize` count, [CLS] and [SEP] included; the same
WordPiece ids as Hugging Face's). Each worker of the first round saves its embeddings (.npy,
temp dir); the driver reports each contender's minimum per-text cosine to st-torch's on the
same corpus and thread count. No taskset pinning; the load average before and after is
recorded. Run it on idle cores.

`goals` (2 threads, per English regime): llamabatch / st-torch texts/s >= 1.5; llamabatch /
max(st-onnx-fp32, st-onnx-o3) >= 1.3; llamabatch tokens/s on short >= 5500; min cosine of
llamabatch to st-torch >= 0.9999.

Writes benchmarks/results/embed_peers.json (`--out NAME` or an absolute path) and prints a
markdown table (texts/s) and the goals.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, versions, write_json  # noqa: E402
from texts import REGIME_WORDS, REGIMES, make_regime_texts  # noqa: E402

LB = "llamabatch"
LB_F16, LB_F32, LB_BF16 = "llamabatch-f16", "llamabatch-f32", "llamabatch-bf16"
LCP = "llama-cpp-python"
ST = "st-torch"
ONNX_FP32, ONNX_O3, ONNX_INT8 = "st-onnx-fp32", "st-onnx-o3", "st-onnx-int8"
LB_AFTER_TORCH = "llamabatch-after-torch"
CONTENDERS = (LB, LB_F16, LB_F32, LB_BF16, LCP, ST, ONNX_FP32, ONNX_O3, ONNX_INT8, LB_AFTER_TORCH)
ONNX = (ONNX_FP32, ONNX_O3, ONNX_INT8)
CATALOGUE_OF = {LB_F16: "all-minilm-l6-v2", LB_F32: "all-minilm-l6-v2-f32", LB_BF16: "all-minilm-l6-v2-bf16"}
BASE_MODEL = "all-minilm-l6-v2"  # the f16 GGUF (llama-cpp-python) and the source folder (sentence-transformers)

# texts per corpus at --scale 1: one pass of 3-6 s at 2 threads (measured on an idle Zen 4, 2 threads:
# llamabatch bf16 ~270 short / ~90 medium / ~25 long / ~280 multilingual texts/s, st-torch ~240 / ~64 /
# ~22 / ~135); multilingual: 840 = 1.36 copies of the 616 texts of its file
DEFAULT_COUNTS = {"short": 1100, "medium": 300, "long": 100, "multilingual": 840}
ST_MAX_TOKENS = 256
CPU_FLAGS = ("avx", "avx2", "f16c", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
             "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")
GOAL_VS_ST, GOAL_VS_ONNX, GOAL_TOKENS_SHORT, GOAL_COS = 1.5, 1.3, 5500.0, 0.9999
ONNX_EXPORT_VERSION = 1  # bump to re-export the cached files


def cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [fl for fl in CPU_FLAGS if fl in have]
    except OSError:
        pass
    return []


def int8_config() -> str:
    return "avx512_vnni" if "avx512_vnni" in cpu_flags() else "avx2"


def onnx_dir() -> Path:
    from llamabatch import models

    return models.cache_dir() / "bench-onnx" / BASE_MODEL


def onnx_file(name: str) -> str:
    return {ONNX_FP32: "onnx/model.onnx", ONNX_O3: "onnx/model_O3.onnx",
            ONNX_INT8: f"onnx/model_qint8_{int8_config()}.onnx"}[name]


def corpus_texts(corpus: str, scale: float) -> list[str]:
    return make_regime_texts(corpus, max(1, round(DEFAULT_COUNTS[corpus] * scale)))


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ---------------------------------------------------------------- worker side (one contender, one process)

def _st_folder() -> str:
    from llamabatch import models

    return str(models.source_folder(BASE_MODEL))


def _make_llamabatch(model: str | None, T: int):
    from llamabatch import Embedder

    emb = Embedder(n_threads=T) if model is None else Embedder(model, n_threads=T)
    info = {"repr": repr(emb)}
    for attr in ("weights", "weights_reason"):
        if hasattr(emb, attr):
            info[attr] = getattr(emb, attr)
    return (lambda texts: emb.encode(texts)), info


def _make_st_torch(T: int):
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(T)
    folder = _st_folder()
    model = SentenceTransformer(folder, device="cpu")

    def run(texts):
        return model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True,
                            show_progress_bar=False)

    return run, {"folder": folder, "torch_threads": torch.get_num_threads(), "max_seq_length": model.max_seq_length}


def _make_st_onnx(name: str, T: int, folder: str):
    import onnxruntime as ort
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(T)  # pooling and normalisation run in torch
    so = ort.SessionOptions()
    so.intra_op_num_threads = T
    so.inter_op_num_threads = 1
    file_name = onnx_file(name)
    model = SentenceTransformer(folder, device="cpu", backend="onnx",
                                model_kwargs={"provider": "CPUExecutionProvider", "session_options": so,
                                              "file_name": file_name})
    session = model.transformers_model.session
    opts = session.get_session_options()

    def run(texts):
        return model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True,
                            show_progress_bar=False)

    return run, {"folder": folder, "file_name": file_name, "providers": session.get_providers(),
                 "intra_op_num_threads": opts.intra_op_num_threads,
                 "inter_op_num_threads": opts.inter_op_num_threads, "torch_threads": torch.get_num_threads()}


def _make_llama_cpp_python(T: int):
    import numpy as np
    from llama_cpp import Llama
    from llamabatch import models

    path = str(models.fetch(BASE_MODEL))
    llm = Llama(path, embedding=True, n_threads=T, n_threads_batch=T, flash_attn=True, n_batch=512, n_ubatch=512,
                n_ctx=512, verbose=False)

    def run(texts):
        e = np.asarray(llm.embed(texts), dtype=np.float32)
        return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)

    import llama_cpp

    return run, {"model": path, "flash_attn_type": int(llm.context_params.flash_attn_type),
                 "n_batch": llm.context_params.n_batch, "n_ubatch": llm.context_params.n_ubatch,
                 "n_threads": llm.context_params.n_threads, "n_threads_batch": llm.context_params.n_threads_batch,
                 "system_info": llama_cpp.llama_print_system_info().decode()}


def _cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _os_threads() -> int | None:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


def run_worker(args) -> int:
    import numpy as np

    name, T = args.worker, int(args.threads)
    texts = corpus_texts(args.corpora, args.scale)
    out: dict = {"name": name, "corpus": args.corpora, "threads": T, "n_texts": len(texts),
                 "loadavg_start": loadavg(), "pid": os.getpid()}
    t0 = time.perf_counter()
    if name == LB:
        run, info = _make_llamabatch(None, T)
    elif name in CATALOGUE_OF:
        from llamabatch import models

        run, info = _make_llamabatch(str(models.fetch(CATALOGUE_OF[name])), T)
        info["catalogue"] = CATALOGUE_OF[name]
    elif name == LCP:
        run, info = _make_llama_cpp_python(T)
    elif name == ST:
        run, info = _make_st_torch(T)
    elif name in ONNX:
        run, info = _make_st_onnx(name, T, args.onnx_dir)
    elif name == LB_AFTER_TORCH:
        st_run, st_info = _make_st_torch(T)
        t1 = time.perf_counter()
        st_run(texts)  # torch loaded *and run* first, in this process
        st_seconds = time.perf_counter() - t1
        run, info = _make_llamabatch(None, T)
        info.update(torch_first={"st_torch_pass_seconds": st_seconds, **st_info})
    else:
        raise SystemExit(f"unknown contender {name!r}")
    out["load_seconds"] = time.perf_counter() - t0
    out["info"] = info
    out["os_threads_after_load"] = _os_threads()

    t0 = time.perf_counter()
    run(texts)  # warm-up: page in weights, allocate buffers, start thread pools
    out["warmup_seconds"] = time.perf_counter() - t0

    seconds, cpu, emb = [], [], None
    for _ in range(args.passes):
        c0, t0 = _cpu_seconds(), time.perf_counter()
        emb = run(texts)
        seconds.append(time.perf_counter() - t0)
        cpu.append(_cpu_seconds() - c0)
    out["seconds"] = seconds
    out["cpu_seconds"] = cpu
    out["cpu_per_wall"] = [c / s for c, s in zip(cpu, seconds)]
    out["os_threads"] = _os_threads()
    out["loadavg_end"] = loadavg()
    if args.emb:
        np.save(args.emb, np.asarray(emb, dtype=np.float32))
    Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


def run_setup(args) -> int:
    """Untimed, in its own process: catalogue, the default Embedder (converting its weights once,
    if the package does that), token counts of each corpus, system_info()."""
    import llamabatch
    from llamabatch import Embedder, models

    out: dict = {"catalogue": sorted(models.CATALOGUE), "default_model": getattr(models, "DEFAULT_EMBEDDING_MODEL", None)}
    t0 = time.perf_counter()
    emb = Embedder(n_threads=1)
    out["default_embedder"] = {"repr": repr(emb), "construct_seconds": time.perf_counter() - t0}
    for attr in ("weights", "weights_reason"):
        if hasattr(emb, attr):
            out["default_embedder"][attr] = getattr(emb, attr)
    out["f16_gguf"] = str(models.fetch(BASE_MODEL))
    out["onnx_dir"] = str(onnx_dir())
    for name, entry in CATALOGUE_OF.items():
        if entry in models.CATALOGUE:
            models.fetch(entry)  # download/convert now, not in a worker's load
    try:
        out["st_folder"] = _st_folder()
    except Exception as e:  # noqa: BLE001 - no source folder: the sentence-transformers contenders are skipped
        out["st_folder"] = None
        out["st_folder_error"] = f"{type(e).__name__}: {e}"
    out["corpora"] = {}
    for c in _split(args.corpora):
        texts = corpus_texts(c, args.scale)
        n = [len(t) for t in emb.tokenize(texts)]
        words = [len(t.split()) for t in texts]
        out["corpora"][c] = {"n_texts": len(texts), "n_tokens": int(sum(n)), "tokens_mean": sum(n) / len(n),
                             "tokens_min": min(n), "tokens_max": max(n), "words_mean": sum(words) / len(words),
                             "words_range": list(REGIME_WORDS.get(c, (min(words), max(words))))}
    si = llamabatch.system_info()
    out["system_info"] = si
    Path(args.out).write_text(json.dumps(out, indent=1, default=str))
    return 0


def run_export_onnx(args) -> int:
    """Exports the three ONNX files once (untimed), into a copy of the source folder."""
    from sentence_transformers import (SentenceTransformer, export_dynamic_quantized_onnx_model,
                                       export_optimized_onnx_model)

    src = Path(_st_folder())
    dst = Path(args.onnx_dir)
    marker = dst / "bench_export.json"
    want = {"export_version": ONNX_EXPORT_VERSION, "source": str(src), "int8_config": int8_config(),
            "versions": versions("sentence-transformers", "optimum", "optimum-onnx", "onnxruntime", "onnx",
                                 "torch", "transformers")}
    files = [onnx_file(n) for n in ONNX]
    if marker.is_file() and json.loads(marker.read_text()).get("settings") == want and all(
            (dst / f).is_file() for f in files):
        Path(args.out).write_text(json.dumps({"dir": str(dst), "files": files, "exported": False, **want}))
        return 0
    if dst.exists():
        shutil.rmtree(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dst)  # never write into the source folder
    t0 = time.perf_counter()
    model = SentenceTransformer(str(dst), device="cpu", backend="onnx",
                                model_kwargs={"provider": "CPUExecutionProvider"})
    model.save_pretrained(str(dst))  # writes onnx/model.onnx
    export_optimized_onnx_model(model, "O3", str(dst))
    export_dynamic_quantized_onnx_model(model, int8_config(), str(dst))
    missing = [f for f in files if not (dst / f).is_file()]
    if missing:
        raise SystemExit(f"ONNX export wrote no {missing} under {dst}")
    marker.write_text(json.dumps({"settings": want, "files": files}, indent=1))
    Path(args.out).write_text(json.dumps({"dir": str(dst), "files": files, "exported": True,
                                          "export_seconds": time.perf_counter() - t0, **want}))
    return 0


# ---------------------------------------------------------------- driver side

# A worker that imports llamabatch from --llamabatch-build: `python -S` (no site hooks, so an
# editable install cannot take precedence), the build first, this interpreter's site-packages last.
_FROM_BUILD = """import runpy, sys
build, site, script = sys.argv[1:4]
sys.argv = [script] + sys.argv[4:]
sys.path[:0] = [build]
sys.path.append(site)
runpy.run_path(script, run_name="__main__")
"""
LB_WORKERS = ("setup", LB, LB_F16, LB_F32, LB_BF16, LB_AFTER_TORCH)
# --isa avx2: the switches that hold each peer's own kernels to AVX2 (ONNX Runtime has none)
ISA_ENV = {"avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2",
                    "MKL_ENABLE_INSTRUCTIONS": "AVX2"}}


def spawn(worker: str, out: Path, *, corpus: str, threads: int, scale: float, timeout: float,
          passes: int = 1, emb: Path | None = None, onnx: Path | None = None, lb_build: Path | None = None,
          isa: str | None = None) -> tuple[dict | None, str | None]:
    """Runs one worker subprocess; (its JSON, None) or (None, the error)."""
    script = str(Path(__file__).resolve())
    worker_args = ["--worker", worker, "--corpus", corpus, "--threads", str(threads), "--scale", repr(scale),
                   "--passes", str(passes), "--out", str(out)]
    if emb is not None:
        worker_args += ["--emb", str(emb)]
    if onnx is not None:
        worker_args += ["--onnx-dir", str(onnx)]
    if lb_build is not None and worker in LB_WORKERS:
        cmd = [sys.executable, "-S", "-c", _FROM_BUILD, str(lb_build), sysconfig.get_paths()["purelib"], script,
               *worker_args]
    else:
        cmd = [sys.executable, script, *worker_args]
    env = dict(os.environ, GGML_NO_BACKTRACE="1", RAYON_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="true",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1", **ISA_ENV.get(isa or "", {}))
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s"
    if proc.returncode != 0 or not out.is_file():
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-6:]
        return None, f"exit {proc.returncode}: " + " | ".join(tail)
    return json.loads(out.read_text()), None


def min_cos(a, b) -> float:
    import numpy as np

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b /= np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return float(np.min(np.sum(a * b, axis=1)))


def _split(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def _goal(value, goal: float, kind: str, **extra) -> dict:
    met = None if value is None else bool(value >= goal)
    return {kind: value, "goal": goal, "met": met, **extra}


def compute_goals(results: dict, corpora: list[str], threads: list[int]) -> dict:
    t = 2 if 2 in threads else max(threads)
    key = f"t{t}"
    goals: dict = {"threads": t}
    if t != 2:
        goals["note"] = "2 threads not measured; goals computed at the largest thread count run"
    for c in corpora:
        if c not in REGIME_WORDS:
            continue
        cell = results.get(c, {}).get(key, {})

        def tps(name, field="texts_per_s"):
            return cell.get(name, {}).get(field)

        lb = tps(LB)
        g: dict = {}
        st = tps(ST)
        g["llamabatch_vs_st_torch"] = _goal(lb / st if lb and st else None, GOAL_VS_ST, "ratio",
                                            llamabatch_texts_per_s=lb, st_torch_texts_per_s=st)
        onnx = {n: tps(n) for n in (ONNX_FP32, ONNX_O3) if tps(n)}
        best = max(onnx, key=onnx.get) if onnx else None
        g["llamabatch_vs_best_st_onnx"] = _goal(lb / onnx[best] if lb and best else None, GOAL_VS_ONNX, "ratio",
                                                best=best, best_texts_per_s=onnx.get(best) if best else None)
        if c == "short":
            g["llamabatch_tokens_per_s"] = _goal(tps(LB, "tokens_per_s"), GOAL_TOKENS_SHORT, "value")
        g["llamabatch_min_cos_vs_st_torch"] = _goal(cell.get(LB, {}).get("min_cos_vs_st_torch"), GOAL_COS, "value")
        goals[c] = g
    return goals


def markdown(results: dict, corpora: list[str], threads: list[int], names: list[str]) -> str:
    lines = []
    for t in threads:
        lines.append(f"\n**texts/s, {t} thread{'s' if t > 1 else ''}** (median of rounds; min cos to st-torch)\n")
        lines.append("| contender | " + " | ".join(corpora) + " |")
        lines.append("| --- |" + " ---: |" * len(corpora))
        for n in names:
            cells = []
            for c in corpora:
                r = results.get(c, {}).get(f"t{t}", {}).get(n)
                if not r or r.get("texts_per_s") is None:
                    cells.append("-")
                    continue
                cos = r.get("min_cos_vs_st_torch")
                cells.append(f"{r['texts_per_s']:.1f}" + (f" ({cos:.5f})" if cos is not None and n != ST else ""))
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def print_goals(goals: dict) -> None:
    print(f"\n**goals** ({goals['threads']} threads)\n")
    for c, g in goals.items():
        if not isinstance(g, dict):
            continue
        for k, v in g.items():
            val = v.get("ratio", v.get("value"))
            shown = "n/a" if val is None else (f"{val:.6f}" if "cos" in k else f"{val:.3f}")
            mark = {True: "met", False: "NOT met", None: "not measured"}[v["met"]]
            print(f"- {c}: {k} = {shown} (goal >= {v['goal']}): {mark}")


def driver(args) -> int:
    t_start = time.perf_counter()
    load_start = loadavg()
    corpora = _split(args.corpora)
    for c in corpora:
        if c not in REGIMES:
            raise SystemExit(f"--corpora: {c!r} is not one of {', '.join(REGIMES)}")
    threads = [int(x) for x in _split(args.threads)]
    names = list(CONTENDERS) if not args.only else _split(args.only)
    for n in names:
        if n not in CONTENDERS:
            raise SystemExit(f"--only: {n!r} is not one of {', '.join(CONTENDERS)}")
    tmp = Path(tempfile.mkdtemp(prefix="bench_embed_peers-"))
    skipped: dict[str, str] = {}
    try:
        builds = {"lb_build": args.llamabatch_build, "isa": args.isa}
        setup, err = spawn("setup", tmp / "setup.json", corpus=",".join(corpora), threads=1, scale=args.scale,
                           **builds,
                           timeout=args.worker_timeout)
        if setup is None:
            raise SystemExit(f"setup failed: {err}")
        for n, entry in CATALOGUE_OF.items():
            if n in names and entry not in setup["catalogue"]:
                skipped[n] = f"no catalogue entry {entry!r} in llamabatch.models.CATALOGUE"
        if LCP in names and importlib.util.find_spec("llama_cpp") is None:
            skipped[LCP] = "llama_cpp not importable (pip install llama-cpp-python==0.3.36)"
        st_needed = [n for n in names if n in (ST, LB_AFTER_TORCH, *ONNX)]
        if st_needed and (importlib.util.find_spec("sentence_transformers") is None or not setup.get("st_folder")):
            why = ("sentence_transformers not importable" if importlib.util.find_spec("sentence_transformers") is None
                   else f"no source folder ({setup.get('st_folder_error')})")
            for n in st_needed:
                skipped[n] = why
        args.onnx_dir = args.onnx_dir or setup["onnx_dir"]
        export = None
        onnx_wanted = [n for n in names if n in ONNX and n not in skipped]
        if onnx_wanted:
            if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("optimum") is None:
                for n in onnx_wanted:
                    skipped[n] = 'onnxruntime/optimum not importable (pip install "sentence-transformers[onnx]")'
            else:
                print("exporting ONNX (once; cached) ...", flush=True)
                export, err = spawn("export-onnx", tmp / "export.json", corpus="short", threads=1, scale=args.scale,
                                    timeout=max(args.worker_timeout, 1800), onnx=Path(args.onnx_dir))
                if export is None:
                    for n in onnx_wanted:
                        skipped[n] = f"ONNX export failed: {err}"
        run_names = [n for n in names if n not in skipped]
        for n, why in skipped.items():
            print(f"skipping {n}: {why}", flush=True)
        ds = setup["default_embedder"]
        print(f"default: {ds['repr']}", flush=True)
        print("corpora: " + ", ".join(f"{c} {v['n_texts']} texts / {v['n_tokens']} tokens (max {v['tokens_max']})"
                                      for c, v in setup["corpora"].items()), flush=True)
        for c, v in setup["corpora"].items():
            if v["tokens_max"] > ST_MAX_TOKENS:
                print(f"warning: {c} has a text of {v['tokens_max']} tokens > {ST_MAX_TOKENS}: "
                      "sentence-transformers truncates it", file=sys.stderr)

        runs: dict = {c: {f"t{t}": {n: [] for n in run_names} for t in threads} for c in corpora}
        errors: list[dict] = []
        for r in range(args.rounds):
            k = r % len(run_names) if run_names else 0
            order = run_names[k:] + run_names[:k]  # rotate: nobody always goes first
            for c in corpora:
                for t in threads:
                    line = []
                    for n in order:
                        res, err = spawn(n, tmp / f"{n}-{c}-t{t}-r{r}.json", corpus=c, threads=t, scale=args.scale,
                                         **builds,
                                         passes=args.passes, timeout=args.worker_timeout,
                                         emb=tmp / f"{n}-{c}-t{t}.npy" if r == 0 else None, onnx=Path(args.onnx_dir))
                        if res is None:
                            errors.append({"contender": n, "corpus": c, "threads": t, "round": r, "error": err})
                            line.append(f"{n} ERROR")
                            print(f"    {n} {c} t{t}: {err}", file=sys.stderr, flush=True)
                            continue
                        res["round"] = r
                        runs[c][f"t{t}"][n].append(res)
                        line.append(f"{n} {res['n_texts'] / statistics.median(res['seconds']):.1f}")
                    print(f"  round {r + 1} {c} t{t}: " + ", ".join(line) + " texts/s", flush=True)

        import numpy as np

        results: dict = {}
        for c in corpora:
            n_tok = setup["corpora"][c]["n_tokens"]
            n_txt = setup["corpora"][c]["n_texts"]
            results[c] = {}
            for t in threads:
                key = f"t{t}"
                cell: dict = {}
                ref = tmp / f"{ST}-{c}-{key}.npy"
                ref_e = np.load(ref) if ref.is_file() else None
                for n in run_names:
                    rs = runs[c][key][n]
                    entry: dict = {"n_ok": len(rs)}
                    if rs:
                        per_round = [statistics.median(x["seconds"]) for x in rs]
                        med = statistics.median(per_round)
                        entry.update(seconds_median=med, seconds_all=per_round, texts_per_s=n_txt / med,
                                     tokens_per_s=n_tok / med, texts_per_s_all=[n_txt / s for s in per_round],
                                     cpu_per_wall_median=statistics.median(
                                         statistics.median(x["cpu_per_wall"]) for x in rs),
                                     os_threads=rs[0]["os_threads"], load_seconds_median=statistics.median(
                                         x["load_seconds"] for x in rs),
                                     loadavg_start_each=[x["loadavg_start"][0] for x in rs], info=rs[0]["info"])
                    e_path = tmp / f"{n}-{c}-{key}.npy"
                    if ref_e is not None and e_path.is_file():
                        entry["min_cos_vs_st_torch"] = min_cos(np.load(e_path), ref_e)
                    cell[n] = entry
                results[c][key] = cell

        after_torch = {}
        for c in corpora:
            for t in threads:
                cell = results[c][f"t{t}"]
                a, b = cell.get(LB_AFTER_TORCH, {}).get("texts_per_s"), cell.get(LB, {}).get("texts_per_s")
                if a and b:
                    after_torch.setdefault(c, {})[f"t{t}"] = {"ratio": a / b, "after_torch_texts_per_s": a,
                                                              "llamabatch_texts_per_s": b}
        goals = compute_goals(results, corpora, threads)

        m = machine()
        m["cpu_flags"] = cpu_flags()
        si = setup["system_info"]
        out = {
            "benchmark": "embed_peers",
            "method": ("each (round, corpus, threads, contender) a fresh subprocess; model load and one warm-up pass "
                       "untimed, then timed passes; rounds rotate the order; medians over rounds; tokens = llamabatch "
                       "Embedder.tokenize counts; min cosine per text to st-torch's embeddings (first round)"),
            "machine": m,
            "isa": args.isa or "native",
            "isa_env": ISA_ENV.get(args.isa or "", {}),
            "llamabatch_build": str(args.llamabatch_build) if args.llamabatch_build else None,
            "versions": versions("llamabatch", "llama_cpp_python", "sentence-transformers", "torch", "transformers",
                                 "onnxruntime", "optimum", "optimum-onnx", "onnx", "tokenizers", "numpy"),
            "system_info": si,
            "cpu_features": si.get("cpu_features"),
            "cpu_variant": si.get("cpu_variant"),
            "weight_format_fields": {k: v for k, v in si.items() if "weight" in k},
            "default_embedder": ds,
            "model": {"f16_gguf": setup["f16_gguf"], "st_folder": setup.get("st_folder"), "onnx": export},
            "corpora": setup["corpora"],
            "threads": threads,
            "rounds": args.rounds,
            "passes": args.passes,
            "scale": args.scale,
            "contenders": run_names,
            "skipped": skipped,
            "results": results,
            "after_torch_vs_llamabatch": after_torch,
            "goals": goals,
            "errors": errors,
            "loadavg_start": load_start,
            "loadavg_end": loadavg(),
            "wall_seconds": time.perf_counter() - t_start,
        }
        print(markdown(results, corpora, threads, run_names))
        if after_torch:
            print("\n**llamabatch-after-torch / llamabatch**: " + ", ".join(
                f"{c} t{t[1:]} {v['ratio']:.3f}" for c, d in after_torch.items() for t, v in d.items()))
        print_goals(goals)
        if skipped:
            print("\nskipped: " + "; ".join(f"{n} ({why})" for n, why in skipped.items()))
        if errors:
            print(f"\n{len(errors)} worker error(s); see 'errors' in the JSON")
        print(f"\nload average {load_start} -> {out['loadavg_end']}; {out['wall_seconds']:.0f} s")
        print("wrote", write_json(args.out, out))
    finally:
        if not args.keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("kept", tmp)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help=f"comma-separated contenders (default all: {', '.join(CONTENDERS)})")
    ap.add_argument("--corpora", "--corpus", dest="corpora", default=",".join(REGIMES),
                    help=f"comma-separated, from {', '.join(REGIMES)} (default all)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds, each a fresh process per cell (default 3)")
    ap.add_argument("--passes", type=int, default=1, help="timed passes per worker after its warm-up (default 1)")
    ap.add_argument("--scale", type=float, default=1.0, help=f"times the default text counts {DEFAULT_COUNTS}")
    ap.add_argument("--out", default="embed_peers.json",
                    help="file name under benchmarks/results, or an absolute path (default embed_peers.json)")
    ap.add_argument("--onnx-dir", default=None,
                    help="where the ONNX exports are cached (default: llamabatch cache dir / bench-onnx / model)")
    ap.add_argument("--worker-timeout", type=float, default=900.0, help="seconds before a worker is killed")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (worker JSON and .npy embeddings)")
    ap.add_argument("--llamabatch-build", type=Path, default=None,
                    help="import llamabatch from this folder (a `pip install --target` of a build), not the installed one")
    ap.add_argument("--isa", choices=sorted(ISA_ENV), default=None,
                    help="hold the peers' kernels to this instruction set (torch, oneDNN, MKL; ONNX Runtime has no "
                         "switch); pair it with a --llamabatch-build made for it")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--emb", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is None:
        return driver(args)
    if args.worker == "setup":
        return run_setup(args)
    if args.worker == "export-onnx":
        return run_export_onnx(args)
    return run_worker(args)


if __name__ == "__main__":
    sys.exit(main())
