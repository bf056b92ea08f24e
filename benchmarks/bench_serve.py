"""Serving over HTTP: `llamabatch serve` against llama.cpp's llama-server (and infinity-emb).

Every contender is a real server that this script starts as a subprocess on a free
loopback port (127.0.0.1 only, never another host), pinned with
`taskset -c SERVER_CPUS`, waits for until GET /health answers 200, loads with the
workloads below from an asyncio + httpx load generator in this process (pinned to
CLIENT_CPUS; one shared connection pool with one keep-alive connection per simulated
client), and stops with SIGTERM. One server runs at a time; every contender gets the
same texts, prompts, thread count and cores.

    python benchmarks/bench_serve.py [--quick] [--only NAME] [--skip NAME] [--rounds R]
        [--server-cpus 0-1] [--client-cpus 1] [--threads T]
        [--llama-server PATH | --build-llama-server] [--infinity PYTHON] [--shared-system] [--out serve.json]

Contenders (NAME for --only / --skip)
  llamabatch     python -m llamabatch.server (= llamabatch serve) --embedding-model E --model G
                 --host 127.0.0.1 --port P --threads T --n-parallel 32: one server for both
                 tasks (llamabatch_command())
  llama-server   llama.cpp's own server, built from the same pinned llama.cpp tree with
                 ggml configured as for the extension (--build-llama-server does it into
                 build/llama-server/; benchmarks/README.md, "Serving peers"); two
                 instances, one after the other (llama_server_commands()):
                   embeddings  -m E --embeddings -t T -np 8 -c 4096 -b 512 -ub 512 -fa on
                   chat        -m G -t T -np 32 -c 65536 --no-kv-unified -fa on
  infinity       infinity-emb's torch engine on the sentence-transformers folder that E is
                 converted from (float32, its default batch size 32), embeddings only, run by
                 the Python of its own virtual environment (--infinity PYTHON;
                 infinity_command())

Workloads. Each simulated client sends its requests one after another; a workload ends
when every client is done, and clients stop starting requests after --time-cap seconds.
  embed  POST /v1/embeddings {"model", "input": [texts]} (benchmarks/texts.py make_texts):
         1, 8, 32 and 128 clients with 1 text per request (max(8, 512 / clients) requests
         each), and 8 clients with 64 texts per request (8 requests each)
  chat   POST /v1/chat/completions {"messages": [one user message], "max_tokens": 32,
         "temperature": 0, "stream": true, "stream_options": {"include_usage": true}},
         SSE read line by line up to `data: [DONE]`: 1, 8 and 32 clients
         (max(4, 64 / clients) requests each); every request of a contender's run has its
         own prompt, the same prompts for every contender; with --shared-system every
         request's messages start with the same ~100-token system message (SHARED_SYSTEM)
Warm-up requests (not timed) before each server's first workload.

Reported per contender and workload: requests/s, texts/s (embed) or completion tokens/s
(chat: the server's usage.completion_tokens, else the number of content chunks), latency
p50/p99 (linear interpolation between order statistics), chat time to first content
chunk p50/p99, and the client's CPU seconds (to see whether the load generator limited it).

In-process reference, measured first with no server loaded and this process pinned to
SERVER_CPUS: llamabatch.Embedder(E, n_threads=T).encode(texts) of the 32-client
workload's texts in one call (texts/s), and encode([text]) of the 1-client workload's
texts one per call (p50 latency). Ratios from the same run:
  batching efficiency   server texts/s at 32 clients / in-process texts/s
  HTTP overhead         single-client p50 - in-process one-text p50
  llamabatch / llama-server (and / infinity) throughput at 32 clients (embed texts/s,
                        chat tokens/s)
  p99 / p50 for every contender and workload
Also: max |cos - 1| of each server's embeddings of the warm-up texts against the
in-process ones, and the share of 1-client chat completions identical to llamabatch's.

Cores. The server and the load generator should not share cores. The defaults
(--server-cpus 0-1 --client-cpus 1) are for the 2-core development machine, where they
DO share core 1: the client's Python takes part of a core from the server (and
llama.cpp's busy-waiting threads from the client), so such figures prove the machinery,
not the servers. On a bigger idle machine give the client its own cores, e.g.
--server-cpus 0-7 --client-cpus 8-9. --threads defaults to the number of server cpus.

--quick shrinks everything (1 and 8 clients, a few requests, 8 new tokens) to a
smoke test of well under a minute per contender.

Writes benchmarks/results/serve.json (machine facts, versions, date, the exact command,
every server's command line and log file).
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, table, versions, write_json  # noqa: E402
from texts import ASKS, DISHES, make_texts  # noqa: E402

HOST = "127.0.0.1"  # loopback only: this benchmark never sends a request anywhere else
ROOT = Path(__file__).resolve().parents[1]

LB = "llamabatch"
LS = "llama-server"
INF = "infinity"
CONTENDERS = (LB, LS, INF)

# --build-llama-server builds into the git-ignored build/llama-server/ (see build_llama_server()).
BUILT_LLAMA_SERVER = ROOT / "build" / "llama-server" / "bin" / "llama-server"
DEFAULT_LLAMA_SERVER = os.environ.get("LLAMA_SERVER") or next(
    (str(p) for p in (BUILT_LLAMA_SERVER, Path("/work/llama-server-build/bin/llama-server")) if p.exists()),
    str(BUILT_LLAMA_SERVER))
DEFAULT_INFINITY_PYTHON = os.environ.get("INFINITY_PYTHON", "/work/infinity-venv/bin/python")

# Chat prompts: bench_generate.py's asks and dishes, times a context, so that every
# request of a run has its own prompt (no contender gets a repeated prompt from a cache).
CONTEXTS = ["", "I am cooking for friends tonight. ", "For a school project: ", "Quick question. ",
            "I am on a budget. ", "My grandmother loves {d}. ", "We are travelling next week. ",
            "I have never tried {d}. "]


def make_prompts(n: int) -> list[str]:
    base = [(c + a).format(d=d) for c in CONTEXTS for a in ASKS for d in DISHES]  # 1,024 distinct
    return [base[i % len(base)] for i in range(n)]


# --shared-system: one system message, about 100 tokens, before every chat request's
# own user message: the case prompt-prefix reuse is for (llama-server's cache_prompt
# is on by default; llamabatch's prefix cache too).
SHARED_SYSTEM = (
    "You are the assistant of a cooking website. Answer questions about food, recipes, ingredients, "
    "kitchen tools and drinks. Be friendly and practical, prefer everyday ingredients that are easy to "
    "find, give quantities in grams and millilitres, mention common allergens when a dish contains them, "
    "and keep every answer short: a few sentences, or a short list of steps. If a question is not about "
    "food or cooking, say politely that you only help with cooking."
)


def chat_messages(prompt: str | list[dict[str, str]]) -> list[dict[str, str]]:
    return prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]


# --------------------------------------------------------------------------
# Contenders: the command lines, one function each, to adjust in one place
# --------------------------------------------------------------------------

@dataclass
class Phase:
    """One server process of a contender and what it is measured on."""
    contender: str
    label: str
    argv: list[str]
    tasks: tuple[str, ...]          # "embed", "chat"
    port: int
    env: dict[str, str] = field(default_factory=dict)
    embed_model: str | None = None  # the "model" field of the requests
    chat_model: str | None = None


def llamabatch_command(args, port: int) -> list[str]:
    """`llamabatch serve` (as `python -m llamabatch.server`, which needs no console
    script) with both models, T threads per model, and --n-parallel = llama-server's
    chat slots (--chat-parallel, default 32; its own default is 16) so that 32
    streaming clients all decode at once on both servers; the rest at its defaults
    (at most 2,048 tokens per sequence, access log on). --llamabatch-args appends more."""
    return [sys.executable, "-m", "llamabatch.server",
            "--embedding-model", args.embedding_path, "--model", args.generation_path,
            "--host", HOST, "--port", str(port), "--threads", str(args.threads),
            "--n-parallel", str(args.chat_parallel)] + shlex.split(args.llamabatch_args)


def llama_server_commands(args, port: int) -> dict[str, list[str]]:
    """llama-server's settings, chosen for it:

    embeddings: --embeddings, -np N slots (--ls-embed-parallel, default 8) with -c N*512 so
      every slot has the model's whole 512-token window; -b = -ub = 512 because an encoder
      (non-causal) sequence must fit in one micro-batch, and 8 slots of this corpus (49
      tokens a text on average) fill about 400 of those 512 tokens per step, where CPU
      throughput per token is already flat. Flash attention on, as llamabatch's Embedder
      (2.6x on this model, benchmarks/README.md).
    chat: -np 32 slots (--chat-parallel, llamabatch gets --n-parallel 32) so that 32
      streaming clients all decode at once, -c 32*2048 with --no-kv-unified: a private
      2,048-token KV cache per slot, the layout and size llamabatch's Generator uses
      (n_ctx 2048 per sequence, per-sequence KV); flash attention on; the rest (-b 2048
      -ub 512, continuous batching, prompt cache) at llama-server's defaults. Its prompt
      cache matters: a slot keeps the previous request's tokens and a new request
      decodes only what differs, so the chat template's shared start (~20 of SmolLM2's
      ~33 prompt tokens, its default system prompt) is decoded once per slot;
      --llama-server-args=--no-cache-prompt measures it without.
    Threads: -t T for both (-tb follows -t)."""
    T = str(args.threads)
    ne, nc = args.ls_embed_parallel, args.chat_parallel
    common = ["--host", HOST, "--port", str(port), "-t", T, "-fa", "on"]
    extra = shlex.split(args.llama_server_args)
    return {
        "embed": [args.llama_server, "-m", args.embedding_path, "--embeddings", "-np", str(ne),
                  "-c", str(ne * 512), "-b", "512", "-ub", "512"] + common + extra,
        "chat": [args.llama_server, "-m", args.generation_path, "-np", str(nc), "-c", str(nc * 2048),
                 "--no-kv-unified"] + common + extra,
    }


def infinity_command(args, port: int) -> tuple[list[str], dict[str, str]]:
    """infinity-emb v2, torch engine on CPU, the sentence-transformers folder of the same
    model, served as /v1/embeddings (--url-prefix /v1; /health stays at the root). Its
    result cache is off (--no-vector-disk-cache, also its default) and so is anything that
    could reach a hub (offline variables); torch gets T threads through OMP_NUM_THREADS."""
    argv = [args.infinity, "-m", "infinity_emb.cli", "v2", "--model-id", args.st_folder,
            "--served-model-name", args.embedding_name, "--engine", "torch", "--device", "cpu",
            "--no-vector-disk-cache", "--url-prefix", "/v1", "--host", HOST, "--port", str(port),
            "--log-level", "warning"] + shlex.split(args.infinity_args)
    env = {"INFINITY_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": str(args.threads),
           "MKL_NUM_THREADS": str(args.threads)}
    return argv, env


def phases_of(name: str, args) -> list[Phase]:
    """The server processes of contender `name`, each on its own free port."""
    if name == LB:
        port = free_port()
        return [Phase(LB, LB, llamabatch_command(args, port), ("embed", "chat"), port,
                      embed_model=args.embedding_name, chat_model=args.generation_name)]
    if name == LS:
        pe, pc = free_port(), free_port()
        return [Phase(LS, f"{LS} (embeddings)", llama_server_commands(args, pe)["embed"], ("embed",), pe,
                      embed_model=args.embedding_name),
                Phase(LS, f"{LS} (chat)", llama_server_commands(args, pc)["chat"], ("chat",), pc,
                      chat_model=args.generation_name)]
    if name == INF:
        port = free_port()
        argv, env = infinity_command(args, port)
        return [Phase(INF, INF, argv, ("embed",), port, env=env, embed_model=args.embedding_name)]
    raise ValueError(name)


# The llama-server peer: llama.cpp's tools/server from the pinned tree, with ggml
# configured as for the extension (our CMakeLists.txt): Release, static, GGML_NATIVE,
# AMX kernels off. Our CMakeLists.txt forces LLAMA_BUILD_SERVER off, hence this small
# project of its own around the same tree.
LLAMA_SERVER_CMAKELISTS = """\
cmake_minimum_required(VERSION 3.18)
project(llama_server_peer C CXX)
set(BUILD_SHARED_LIBS OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_COMMON ON CACHE BOOL "" FORCE)
set(LLAMA_BUILD_TOOLS ON CACHE BOOL "" FORCE)
set(LLAMA_BUILD_SERVER ON CACHE BOOL "" FORCE)
set(LLAMA_BUILD_TESTS OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_EXAMPLES OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_APP OFF CACHE BOOL "" FORCE)
set(LLAMA_OPENSSL OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_UI OFF CACHE BOOL "" FORCE)         # no npm
set(LLAMA_USE_PREBUILT_UI OFF CACHE BOOL "" FORCE)  # no download: the server runs without its web UI
add_subdirectory("@TREE@" llama.cpp)
include(CheckCXXCompilerFlag)
check_cxx_compiler_flag(-mno-amx-int8 HAS_MNO_AMX)
if(HAS_MNO_AMX AND TARGET ggml-cpu)
  target_compile_options(ggml-cpu PRIVATE $<$<COMPILE_LANGUAGE:C,CXX>:-mno-amx-tile -mno-amx-int8 -mno-amx-bf16>)
endif()
"""


def build_llama_server(build: Path = BUILT_LLAMA_SERVER.parents[1], jobs: int | None = None) -> Path:
    """Extract the whole pinned tree into build/llama.cpp-full/ (once; shared with
    bench_batched_bench.py) and build llama-server in `build` (incrementally, niced,
    through ccache when there is one). About 20-30 minutes on 2 cores from scratch."""
    import shutil

    sys.path.insert(0, str(ROOT / "vendor"))
    import fetch_llama_cpp  # the pin, the cached download and its sha256 check

    tree = ROOT / "build" / "llama.cpp-full"
    pin = fetch_llama_cpp.read_pin()
    if not fetch_llama_cpp.is_current(tree, pin):
        sdist = fetch_llama_cpp.download_sdist(pin)
        tree.parent.mkdir(parents=True, exist_ok=True)
        fetch_llama_cpp.extract(sdist, tree, pin, keep=lambda rel: True)
    src = build / "project"
    src.mkdir(parents=True, exist_ok=True)
    text = LLAMA_SERVER_CMAKELISTS.replace("@TREE@", tree.as_posix())
    if not (src / "CMakeLists.txt").exists() or (src / "CMakeLists.txt").read_text() != text:
        (src / "CMakeLists.txt").write_text(text)
    if not (build / "CMakeCache.txt").exists():
        launcher = ["-DCMAKE_C_COMPILER_LAUNCHER=ccache", "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"] \
            if shutil.which("ccache") else []
        subprocess.run(["cmake", "-S", str(src), "-B", str(build), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                        "-DGGML_NATIVE=ON"] + launcher, check=True)
    subprocess.run(["nice", "-n", "19", "cmake", "--build", str(build), "--target", "llama-server",
                    "-j", str(jobs or os.cpu_count() or 2)], check=True)
    exe = build / "bin" / "llama-server"
    if not exe.exists():
        raise SystemExit(f"build finished but {exe} is missing")
    return exe


# --------------------------------------------------------------------------
# Server processes
# --------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def parse_cpus(spec: str) -> list[int]:
    """"0-3,6" -> [0, 1, 2, 3, 6]."""
    out: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            out += range(int(a), int(b) + 1)
        else:
            out.append(int(part))
    if not out:
        raise ValueError(f"no cpus in {spec!r}")
    return sorted(set(out))


class ServerProcess:
    """A server started under taskset in its own session; stop() sends SIGTERM to that
    session's process group only (the server and anything it started)."""

    def __init__(self, phase: Phase, port: int, cpus: str, log_dir: Path, round_no: int):
        self.phase, self.port, self.cpus = phase, port, cpus
        safe = phase.label.replace(" ", "_").replace("(", "").replace(")", "")
        self.log_path = log_dir / f"{safe}.round{round_no}.log"
        self.argv = ["taskset", "-c", cpus] + phase.argv
        self.proc: subprocess.Popen | None = None
        self.startup_s: float | None = None

    def start(self, timeout: float) -> None:
        import httpx

        env = dict(os.environ)
        env.update(self.phase.env)
        self._log = open(self.log_path, "wb")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        url = f"http://{HOST}:{self.port}/health"
        last = "no answer"
        with httpx.Client(trust_env=False, timeout=5.0) as c:
            while time.perf_counter() - t0 < timeout:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"exited with code {self.proc.returncode} before it was healthy; "
                                       f"log {self.log_path}:\n{self.log_tail()}")
                try:
                    r = c.get(url)
                    if r.status_code == 200:
                        self.startup_s = time.perf_counter() - t0
                        return
                    last = f"HTTP {r.status_code}"
                except httpx.HTTPError as e:
                    last = type(e).__name__
                time.sleep(0.2)
        raise RuntimeError(f"not healthy after {timeout:.0f} s (last: {last}); log {self.log_path}:\n{self.log_tail()}")

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                print(f"  {self.phase.label}: no exit 30 s after SIGTERM; SIGKILL", file=sys.stderr)
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode

    def log_tail(self, n: int = 25) -> str:
        try:
            self._log.flush()
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


# --------------------------------------------------------------------------
# Load generator
# --------------------------------------------------------------------------

def percentile(values, q: float) -> float | None:
    """The q-th percentile (0-100), linear interpolation between order statistics
    (numpy's default method); None for no values."""
    v = sorted(values)
    if not v:
        return None
    pos = (len(v) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


@dataclass
class Workload:
    kind: str        # "embed" or "chat"
    clients: int
    per_client: int  # requests per client
    texts: int = 1   # texts per request (embed)

    @property
    def key(self) -> str:
        return f"embed c{self.clients} x{self.texts}" if self.kind == "embed" else f"chat c{self.clients}"


@dataclass
class Rec:
    latency: float
    n: int                     # texts (embed) or completion tokens (chat)
    ttft: float | None = None
    chunks: int = 0
    token_source: str = ""
    index: int = -1            # prompt index (chat)
    text: str = ""             # completion (chat)


class Counter:
    def __init__(self):
        self.i = 0

    def take(self, n: int) -> int:
        i, self.i = self.i, self.i + n
        return i


async def _embed_client(client, model, pool, counter, w: Workload, deadline, recs, errors, vectors_out=None):
    for _ in range(w.per_client):
        if time.perf_counter() >= deadline:
            return
        start = counter.take(w.texts)
        batch = [pool[(start + k) % len(pool)] for k in range(w.texts)]
        t0 = time.perf_counter()
        try:
            r = await client.post("/v1/embeddings", json={"model": model, "input": batch})
            dt = time.perf_counter() - t0
            if r.status_code != 200:
                errors.append(f"HTTP {r.status_code}: {r.text[:300]}")
                continue
            data = r.json().get("data") or []
            if len(data) != len(batch):
                errors.append(f"{len(data)} embeddings for {len(batch)} texts")
                continue
            if vectors_out is not None:
                for d in sorted(data, key=lambda d: d.get("index", 0)):
                    vectors_out.append(d["embedding"])
            recs.append(Rec(dt, len(batch)))
        except Exception as e:  # noqa: BLE001 - a failed request is counted, the run goes on
            errors.append(f"{type(e).__name__}: {e}"[:300])


async def _chat_client(client, model, prompts, counter, w: Workload, max_tokens, deadline, recs, errors):
    for _ in range(w.per_client):
        if time.perf_counter() >= deadline:
            return
        i = counter.take(1)
        body = {"model": model, "messages": chat_messages(prompts[i % len(prompts)]),
                "max_tokens": max_tokens, "temperature": 0, "stream": True,
                "stream_options": {"include_usage": True}}
        t0 = time.perf_counter()
        ttft, chunks, usage, parts, done, err = None, 0, None, [], False, None
        try:
            async with client.stream("POST", "/v1/chat/completions", json=body) as r:
                if r.status_code != 200:
                    err = f"HTTP {r.status_code}: {(await r.aread())[:300]!r}"
                else:
                    async for line in r.aiter_lines():
                        if not line.startswith("data:"):
                            continue
                        payload = line[5:].strip()
                        if payload == "[DONE]":
                            done = True
                            break
                        obj = json.loads(payload)
                        if obj.get("error"):
                            err = f"error event: {json.dumps(obj['error'])[:300]}"
                            break
                        for ch in obj.get("choices") or []:
                            c = (ch.get("delta") or {}).get("content")
                            if c:
                                chunks += 1
                                parts.append(c)
                                if ttft is None:
                                    ttft = time.perf_counter() - t0
                        if obj.get("usage"):
                            usage = obj["usage"]
            dt = time.perf_counter() - t0
        except Exception as e:  # noqa: BLE001
            errors.append(f"{type(e).__name__}: {e}"[:300])
            continue
        if err is None and not done:
            err = "stream ended without data: [DONE]"
        if err is not None:
            errors.append(err)
            continue
        ct = usage.get("completion_tokens") if isinstance(usage, dict) else None
        if isinstance(ct, int):
            recs.append(Rec(dt, ct, ttft, chunks, "usage", i, "".join(parts)))
        else:
            recs.append(Rec(dt, chunks, ttft, chunks, "chunks", i, "".join(parts)))


async def run_workload(base_url: str, w: Workload, model: str, pool, time_cap: float, request_timeout: float,
                       max_tokens: int, vectors_out=None) -> tuple[list[Rec], list[str], float, float]:
    """Runs w: w.clients concurrent clients over one httpx pool (one keep-alive
    connection each). Returns (records, errors, wall seconds, client CPU seconds)."""
    import httpx

    limits = httpx.Limits(max_connections=w.clients, max_keepalive_connections=w.clients)
    recs: list[Rec] = []
    errors: list[str] = []
    counter = Counter()
    async with httpx.AsyncClient(base_url=base_url, limits=limits, trust_env=False,
                                 timeout=httpx.Timeout(request_timeout)) as client:
        cpu0, t0 = time.process_time(), time.perf_counter()
        deadline = t0 + time_cap
        if w.kind == "embed":
            tasks = [_embed_client(client, model, pool, counter, w, deadline, recs, errors, vectors_out)
                     for _ in range(w.clients)]
        else:
            tasks = [_chat_client(client, model, pool, counter, w, max_tokens, deadline, recs, errors)
                     for _ in range(w.clients)]
        await asyncio.gather(*tasks)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return recs, errors, wall, cpu


def ms(x: float | None) -> float | None:
    return None if x is None else round(x * 1000.0, 2)


def summarize(w: Workload, recs: list[Rec], errors: list[str], wall: float, cpu: float, planned: int) -> dict:
    lat = [r.latency for r in recs]
    out = {
        "kind": w.kind, "clients": w.clients, "texts_per_request": w.texts if w.kind == "embed" else None,
        "requests_planned": planned, "requests": len(recs), "errors": len(errors), "first_errors": errors[:3],
        "wall_s": round(wall, 3), "requests_per_s": len(recs) / wall if wall > 0 else None,
        "latency_ms_p50": ms(percentile(lat, 50)), "latency_ms_p99": ms(percentile(lat, 99)),
        "latency_ms_mean": ms(statistics.fmean(lat)) if lat else None, "latency_ms_max": ms(max(lat, default=None)),
        "client_cpu_s": round(cpu, 3),
    }
    p50, p99 = out["latency_ms_p50"], out["latency_ms_p99"]
    out["p99_over_p50"] = p99 / p50 if p50 else None
    n = sum(r.n for r in recs)
    if w.kind == "embed":
        out["texts"] = n
        out["texts_per_s"] = n / wall if wall > 0 else None
    else:
        ttft = [r.ttft for r in recs if r.ttft is not None]
        # time per output token after the first: (latency - ttft) / (tokens - 1)
        tpot = [(r.latency - r.ttft) / (r.n - 1) for r in recs if r.ttft is not None and r.n > 1]
        out.update({
            "completion_tokens": n, "tokens_per_s": n / wall if wall > 0 else None,
            "content_chunks": sum(r.chunks for r in recs),
            "token_count_source": {s: sum(r.token_source == s for r in recs) for s in ("usage", "chunks")},
            "ttft_ms_p50": ms(percentile(ttft, 50)), "ttft_ms_p99": ms(percentile(ttft, 99)),
            "tpot_ms_p50": ms(percentile(tpot, 50)),
        })
    return out


def median_of(rounds: list[dict]) -> dict:
    """Field-wise median over rounds of the numeric fields; the rest from the first round."""
    if len(rounds) == 1:
        return dict(rounds[0])
    out = dict(rounds[0])
    for k, v in rounds[0].items():
        vals = [r.get(k) for r in rounds]
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in vals):
            out[k] = statistics.median(vals)
    out["errors"] = sum(r["errors"] for r in rounds)
    return out


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------

def build_workloads(args) -> list[Workload]:
    ws = []
    for c in args.embed_clients:
        ws.append(Workload("embed", c, max(args.min_per_client, args.embed_requests // c), 1))
    bc, bt = args.embed_batch
    if bc > 0:
        ws.append(Workload("embed", bc, max(max(2, args.min_per_client // 4), args.embed_batch_texts // (bc * bt)), bt))
    for c in args.chat_clients:
        ws.append(Workload("chat", c, max(max(2, args.min_per_client // 2), args.chat_requests // c)))
    return ws


def in_process_reference(args, pool: list[str], batch_n: int, single_n: int, check: list[str], cpus: list[int]) -> dict:
    """llamabatch.Embedder in this process, pinned to the server cpus, nothing else loaded."""
    import numpy as np
    from llamabatch import Embedder

    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        emb = Embedder(args.embedding_path, n_threads=args.threads)
        texts = pool[:batch_n]
        emb.encode(texts[:64])  # warm-up: page in weights, start the thread pool
        batch_s = []
        for _ in range(args.rounds):
            gc.collect()
            t0 = time.perf_counter()
            emb.encode(texts)
            batch_s.append(time.perf_counter() - t0)
        single = pool[:single_n]
        for t in single[:8]:
            emb.encode([t])
        lat = []
        for t in single:
            t0 = time.perf_counter()
            emb.encode([t])
            lat.append(time.perf_counter() - t0)
        ref = np.asarray(emb.encode(check), dtype=np.float64)
        del emb
        gc.collect()
    finally:
        os.sched_setaffinity(0, before)
    med = statistics.median(batch_s)
    return {
        "texts": len(texts), "seconds_all": [round(s, 4) for s in batch_s], "seconds_median": round(med, 4),
        "texts_per_s": len(texts) / med,
        "single_texts": len(single), "single_ms_p50": ms(percentile(lat, 50)), "single_ms_p99": ms(percentile(lat, 99)),
        "_ref": ref,
    }


def max_cos_dev(a, b) -> float:
    import numpy as np

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b /= np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return float(np.max(np.abs(np.sum(a * b, axis=1) - 1.0)))


def pick_model(base_url: str, wanted: str | None, path: str | None = None) -> tuple[str | None, list[str]]:
    """The "model" to send: `wanted` if the server lists it (or lists nothing we can
    read), else the only model it lists, else the one whose id contains `wanted` or
    the GGUF's file name."""
    import httpx

    ids: list[str] = []
    try:
        with httpx.Client(base_url=base_url, trust_env=False, timeout=10.0) as c:
            r = c.get("/v1/models")
            if r.status_code == 200:
                ids = [m.get("id") for m in (r.json().get("data") or []) if isinstance(m, dict)]
    except Exception:  # noqa: BLE001 - optional endpoint
        pass
    if wanted in ids or not ids:
        return wanted, ids
    if len(ids) == 1:
        return ids[0], ids
    keys = [k.lower() for k in (wanted, Path(path).stem if path else None) if k]
    close = [i for i in ids if isinstance(i, str) and any(k in i.lower() for k in keys)]
    return (close[0] if len(close) == 1 else wanted), ids


def run_phase(phase: Phase, args, workloads, pool, prompts, log_dir, round_no, check_texts) -> dict:
    port = phase.port
    server = ServerProcess(phase, port, args.server_cpus, log_dir, round_no)
    info = {"command": " ".join(shlex.quote(a) for a in server.argv), "log": str(server.log_path), "port": port}
    results, vectors = {}, []
    print(f"  {phase.label}: starting on port {port}", flush=True)
    try:
        server.start(args.startup_timeout)
        info["startup_s"] = round(server.startup_s, 2)
        base = f"http://{HOST}:{port}"
        print(f"  {phase.label}: healthy after {server.startup_s:.1f} s", flush=True)
        models = {}
        for task, wanted, path in (("embed", phase.embed_model, args.embedding_path),
                                   ("chat", phase.chat_model, args.generation_path)):
            if task in phase.tasks:
                models[task], info["v1_models"] = pick_model(base, wanted, path)
        info["request_model"] = models
        # warm-up, not timed: the check texts (one request, vectors kept), a few single texts, one chat
        if "embed" in phase.tasks:
            w = Workload("embed", 1, 1, len(check_texts))
            recs, errs, _, _ = asyncio.run(run_workload(base, w, models["embed"], check_texts, 60, args.request_timeout,
                                                        0, vectors))
            asyncio.run(run_workload(base, Workload("embed", 2, 2, 1), models["embed"], pool[-64:], 60,
                                     args.request_timeout, 0))
            if errs:
                info["warmup_errors"] = errs[:3]
        if "chat" in phase.tasks:
            recs, errs, _, _ = asyncio.run(run_workload(base, Workload("chat", 1, 1), models["chat"],
                                                        ["Say hello."], 60, args.request_timeout, args.max_tokens))
            if errs:
                info["warmup_errors"] = info.get("warmup_errors", []) + errs[:3]
        prompt_offset = 0
        for w in workloads:
            if w.kind not in phase.tasks:
                continue
            if w.kind == "embed":
                src = pool
            else:  # own prompts for every chat request of this server's run
                src = prompts[prompt_offset:prompt_offset + w.clients * w.per_client]
                prompt_offset += w.clients * w.per_client
            gc.collect()
            recs, errs, wall, cpu = asyncio.run(run_workload(base, w, models[w.kind], src, args.time_cap,
                                                             args.request_timeout, args.max_tokens))
            s = summarize(w, recs, errs, wall, cpu, w.clients * w.per_client)
            if w.kind == "chat" and w.clients == 1:
                s["_completions"] = {r.index: r.text for r in recs}
            results[w.key] = s
            rate = (f"{s['texts_per_s']:.1f} texts/s" if w.kind == "embed"
                    else f"{s['tokens_per_s']:.1f} tok/s, TTFT p50 {s['ttft_ms_p50']} ms")
            print(f"    {w.key:<16} {s['requests']:>5} req in {wall:6.2f} s: {s['requests_per_s']:.1f} req/s, {rate}, "
                  f"p50 {s['latency_ms_p50']} ms, p99 {s['latency_ms_p99']} ms"
                  + (f", {s['errors']} errors (first: {s['first_errors'][0]})" if s["errors"] else ""), flush=True)
            time.sleep(args.pause)
    except Exception as e:  # noqa: BLE001 - one contender failing must not lose the others' figures
        info["error"] = str(e)
        print(f"  {phase.label}: FAILED: {e}", file=sys.stderr, flush=True)
    finally:
        info["exit_code"] = server.stop()
    return {"info": info, "results": results, "vectors": vectors}


def tool_versions(args, names) -> dict:
    out = versions("llamabatch", "httpx", "fastapi", "uvicorn", "numpy")
    if LS in names:
        try:
            p = subprocess.run([args.llama_server, "--version"], capture_output=True, text=True, timeout=30)
            out["llama-server"] = " ".join((p.stdout + p.stderr).split())[:300]
        except (OSError, subprocess.SubprocessError) as e:
            out["llama-server"] = f"unavailable: {e}"
    if INF in names:
        code = ("import importlib.metadata as m\n"
                "for n in ('infinity-emb', 'torch', 'sentence-transformers', 'transformers', 'numpy',\n"
                "          'fastapi', 'uvicorn'):\n"
                "    print(n, m.version(n))")
        try:
            p = subprocess.run([args.infinity, "-c", code], capture_output=True, text=True, timeout=60)
            out["infinity"] = dict(line.split(" ", 1) for line in p.stdout.split("\n") if " " in line)
        except (OSError, subprocess.SubprocessError) as e:
            out["infinity"] = f"unavailable: {e}"
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke test: 1 and 8 clients, a few requests, 8 new tokens")
    ap.add_argument("--only", action="append", default=[], choices=CONTENDERS, help="run only this contender (repeatable)")
    ap.add_argument("--skip", action="append", default=[], choices=CONTENDERS + ("in-process",),
                    help="leave out a contender, or the in-process reference (repeatable)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="rounds of every contender, in rotated order, each with fresh servers; medians (default 1)")
    ap.add_argument("--server-cpus", default="0-1", help="taskset cpu list for every server (default 0-1)")
    ap.add_argument("--client-cpus", default="1",
                    help="cpus for this process's load generator (default 1; shares a core with the default servers)")
    ap.add_argument("--threads", type=int, default=None, help="threads for every server (default: number of server cpus)")
    ap.add_argument("--embedding-model", default="all-minilm-l6-v2", help="catalogue name or GGUF path (default all-minilm-l6-v2)")
    ap.add_argument("--generation-model", default="smollm2-135m-instruct",
                    help="catalogue name or GGUF path (default smollm2-135m-instruct)")
    ap.add_argument("--llama-server", default=DEFAULT_LLAMA_SERVER,
                    help=f"llama-server binary (default $LLAMA_SERVER, else {DEFAULT_LLAMA_SERVER})")
    ap.add_argument("--build-llama-server", action="store_true",
                    help="first build llama-server from the pinned tree into build/llama-server/ and use it")
    ap.add_argument("--build-only", action="store_true", help="with --build-llama-server: build, then exit")
    ap.add_argument("--infinity", default=DEFAULT_INFINITY_PYTHON,
                    help=f"Python of a virtual environment with infinity-emb (default $INFINITY_PYTHON, else "
                         f"{DEFAULT_INFINITY_PYTHON}); skipped when missing")
    ap.add_argument("--st-folder", default=None,
                    help="sentence-transformers folder for infinity (default: the catalogue's all-MiniLM-L6-v2 source)")
    ap.add_argument("--ls-embed-parallel", type=int, default=8, help="llama-server -np for embeddings (default 8)")
    ap.add_argument("--chat-parallel", type=int, default=32,
                    help="generation slots: llama-server -np and llamabatch --n-parallel (default 32)")
    ap.add_argument("--llamabatch-args", default="", help="extra arguments for llamabatch serve (one shell-quoted string)")
    ap.add_argument("--llama-server-args", default="", help="extra arguments for both llama-server instances")
    ap.add_argument("--infinity-args", default="", help="extra arguments for infinity_emb v2")
    ap.add_argument("--embed-clients", default="1,8,32,128", help="concurrent clients, 1 text per request (default 1,8,32,128)")
    ap.add_argument("--embed-requests", type=int, default=512,
                    help="requests per 1-text workload: each client sends max(8, N / clients) (default 512)")
    ap.add_argument("--embed-batch", default="8x64", help="CLIENTSxTEXTS for the many-texts workload (default 8x64; 0x0: none)")
    ap.add_argument("--embed-batch-texts", type=int, default=4096,
                    help="texts in the many-texts workload: each client sends max(2, N / (clients*texts)) requests (default 4096)")
    ap.add_argument("--chat-clients", default="1,8,32", help="concurrent streaming chat clients (default 1,8,32)")
    ap.add_argument("--chat-requests", type=int, default=64,
                    help="requests per chat workload: each client sends max(4, N / clients) (default 64)")
    ap.add_argument("--max-tokens", type=int, default=32, help="max_tokens of every chat request (default 32)")
    ap.add_argument("--shared-system", action="store_true",
                    help="every chat request starts with the same ~100-token system message (prompt-prefix reuse)")
    ap.add_argument("--time-cap", type=float, default=120.0,
                    help="seconds after which a workload's clients start no new request (default 120)")
    ap.add_argument("--request-timeout", type=float, default=300.0, help="seconds per request (default 300)")
    ap.add_argument("--startup-timeout", type=float, default=300.0, help="seconds for a server to become healthy (default 300)")
    ap.add_argument("--pause", type=float, default=1.0, help="seconds of rest between workloads (default 1)")
    ap.add_argument("--log-dir", default=None, help="server logs (default: a new folder under the temp dir)")
    ap.add_argument("--out", default="serve.json", help="file name under benchmarks/results (default serve.json)")
    args = ap.parse_args(argv)

    if args.build_llama_server:
        args.llama_server = str(build_llama_server())
        print(f"llama-server: {args.llama_server}", flush=True)
        if args.build_only:
            return 0

    args.min_per_client = 8
    if args.quick:
        args.embed_clients, args.embed_requests, args.embed_batch = "1,8", 16, "2x16"
        args.embed_batch_texts, args.chat_clients, args.chat_requests = 64, "1,4", 8
        args.max_tokens, args.time_cap, args.min_per_client = 8, 20.0, 2
    args.embed_clients = [int(x) for x in str(args.embed_clients).split(",") if x.strip()]
    args.chat_clients = [int(x) for x in str(args.chat_clients).split(",") if x.strip()]
    try:
        bc, bt = (int(x) for x in args.embed_batch.lower().split("x"))
    except ValueError:
        ap.error(f"--embed-batch {args.embed_batch!r}: want CLIENTSxTEXTS, e.g. 8x64")
    args.embed_batch = (bc, bt)
    server_cpus, client_cpus = parse_cpus(args.server_cpus), parse_cpus(args.client_cpus)
    args.threads = args.threads or len(server_cpus)
    shared = sorted(set(server_cpus) & set(client_cpus))
    if shared:
        print(f"note: server cpus {args.server_cpus} and client cpus {args.client_cpus} share {shared}: "
              "the load generator takes cpu time from the servers (fine for a smoke test)", file=sys.stderr)

    names = [n for n in (args.only or CONTENDERS) if n not in args.skip]
    if LS in names and not os.access(args.llama_server, os.X_OK):
        print(f"no llama-server at {args.llama_server} (--llama-server PATH); skipping it", file=sys.stderr)
        names.remove(LS)
    if INF in names and not (args.infinity and os.access(args.infinity, os.X_OK)):
        print(f"no infinity Python at {args.infinity} (--infinity PYTHON); skipping it", file=sys.stderr)
        names.remove(INF)

    load_start = [round(x, 2) for x in os.getloadavg()]
    from llamabatch import models

    args.embedding_path = str(models.resolve(args.embedding_model, models.DEFAULT_EMBEDDING_MODEL))
    args.generation_path = str(models.resolve(args.generation_model, models.DEFAULT_GENERATION_MODEL))
    args.embedding_name = args.embedding_model if args.embedding_model in models.CATALOGUE else Path(args.embedding_path).stem
    args.generation_name = (args.generation_model if args.generation_model in models.CATALOGUE
                            else Path(args.generation_path).stem)
    if INF in names and not args.st_folder:
        try:
            args.st_folder = str(models.source_folder(args.embedding_model))
        except Exception as e:  # noqa: BLE001
            print(f"no sentence-transformers folder for infinity ({e}); skipping it", file=sys.stderr)
            names.remove(INF)

    workloads = build_workloads(args)
    n_pool = max([w.clients * w.per_client * w.texts for w in workloads if w.kind == "embed"] + [64])
    pool = make_texts(n_pool + 64)
    n_prompts = sum(w.clients * w.per_client for w in workloads if w.kind == "chat")
    prompts: list = make_prompts(max(n_prompts, 1))
    if args.shared_system:
        prompts = [[{"role": "system", "content": SHARED_SYSTEM}, {"role": "user", "content": p}] for p in prompts]
    if n_prompts > 1024:
        print(f"note: {n_prompts} chat requests > 1,024 distinct prompts; some repeat", file=sys.stderr)
    check_texts = pool[:8]
    log_dir = Path(args.log_dir) if args.log_dir else Path(tempfile.mkdtemp(prefix="bench_serve-"))
    log_dir.mkdir(parents=True, exist_ok=True)

    singles = [w for w in workloads if w.kind == "embed" and w.texts == 1]
    ref_w = next((w for w in singles if w.clients == 32), singles[-1] if singles else None)
    one_w = next((w for w in singles if w.clients == 1), None)
    print(f"contenders: {', '.join(names) or 'none'}; threads {args.threads}, server cpus {args.server_cpus}, "
          f"client cpus {args.client_cpus}, rounds {args.rounds}; logs in {log_dir}", flush=True)
    print("workloads: " + ", ".join(f"{w.key} ({w.per_client} req each)" for w in workloads), flush=True)

    ref = None
    if "in-process" not in args.skip and ref_w is not None:
        print(f"in-process reference ({ref_w.clients * ref_w.per_client} texts in one call, "
              f"{one_w.per_client if one_w else 64} one by one) ...", flush=True)
        ref = in_process_reference(args, pool, ref_w.clients * ref_w.per_client,
                                   one_w.per_client if one_w else 64, check_texts, server_cpus)
        print(f"  {ref['texts_per_s']:.1f} texts/s in one call; one text per call p50 {ref['single_ms_p50']} ms",
              flush=True)

    os.sched_setaffinity(0, client_cpus)  # the load generator's cores from here on
    per_round: dict[str, list[dict]] = {}
    infos: dict[str, list[dict]] = {}
    vectors: dict[str, list] = {}
    completions: dict[str, dict] = {}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)] if names else []
        print(f"round {r + 1}/{args.rounds}: {', '.join(order)}", flush=True)
        for name in order:
            for phase in phases_of(name, args):
                out = run_phase(phase, args, workloads, pool, prompts, log_dir, r + 1, check_texts)
                infos.setdefault(phase.label, []).append(out["info"])
                if out["vectors"]:
                    vectors.setdefault(name, out["vectors"])
                for key, s in out["results"].items():
                    if "_completions" in s:
                        completions.setdefault(name, s.pop("_completions"))
                    per_round.setdefault(f"{name}|{key}", []).append(s)

    results: dict[str, dict] = {}
    for k, rounds in per_round.items():
        name, key = k.split("|", 1)
        entry = median_of(rounds)
        if len(rounds) > 1:
            entry["rounds"] = rounds
        results.setdefault(name, {})[key] = entry

    # ratios from this run
    ratios: dict[str, object] = {}
    rate = lambda n, key, f: (results.get(n, {}).get(key) or {}).get(f)  # noqa: E731
    emb32 = f"embed c{ref_w.clients} x1" if ref_w else None
    chat32 = f"chat c{max(args.chat_clients)}" if args.chat_clients else None
    for other in (LS, INF):
        for key, f in ((emb32, "texts_per_s"), (chat32, "tokens_per_s")):
            if key and rate(LB, key, f) and rate(other, key, f):
                ratios[f"llamabatch / {other} {f.replace('_per_s', '/s')}, {key}"] = rate(LB, key, f) / rate(other, key, f)
    if ref:
        for name in results:
            if emb32 and rate(name, emb32, "texts_per_s"):
                ratios[f"batching efficiency {name} ({emb32} / in-process)"] = \
                    rate(name, emb32, "texts_per_s") / ref["texts_per_s"]
            if rate(name, "embed c1 x1", "latency_ms_p50") is not None and ref["single_ms_p50"] is not None:
                ratios[f"HTTP overhead ms {name} (embed c1 p50 - in-process p50)"] = \
                    rate(name, "embed c1 x1", "latency_ms_p50") - ref["single_ms_p50"]
    p99_p50 = {name: {key: s.get("p99_over_p50") for key, s in res.items()} for name, res in results.items()}
    cos = {}
    if ref is not None:
        for name, v in vectors.items():
            if len(v) == len(check_texts):
                cos[name] = max_cos_dev(v, ref["_ref"])
    agreement = {}
    if LB in completions:
        for name, comp in completions.items():
            if name != LB:
                common = sorted(set(comp) & set(completions[LB]))
                if common:
                    agreement[name] = sum(comp[i] == completions[LB][i] for i in common) / len(common)

    # printed table
    rows = []
    for name, res in results.items():
        for key, s in res.items():
            rate_s = (f"{s['texts_per_s']:.1f} texts/s" if s["kind"] == "embed" else f"{s['tokens_per_s']:.1f} tok/s")
            ttft = (f"{s['ttft_ms_p50']:.1f} / {s['ttft_ms_p99']:.1f}" if s.get("ttft_ms_p50") is not None else "-")
            rows.append([name, key, str(s["requests"]), f"{s['requests_per_s']:.1f}", rate_s,
                         f"{s['latency_ms_p50']:.1f}" if s["latency_ms_p50"] is not None else "-",
                         f"{s['latency_ms_p99']:.1f}" if s["latency_ms_p99"] is not None else "-",
                         f"{s['p99_over_p50']:.2f}" if s["p99_over_p50"] else "-", ttft, str(s["errors"])])
    print()
    if rows:
        print(table(rows, ["contender", "workload", "requests", "req/s", "throughput", "p50 ms", "p99 ms",
                           "p99/p50", "TTFT p50 / p99 ms", "errors"]))
    if ref:
        print(f"in-process Embedder: {ref['texts_per_s']:.1f} texts/s ({ref['texts']} texts in one call), "
              f"one text per call p50 {ref['single_ms_p50']} ms")
    for k, v in ratios.items():
        print(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}")
    for name, d in cos.items():
        print(f"max |cos - 1| {name} vs in-process Embedder: {d:.2e}")
    for name, a in agreement.items():
        print(f"1-client chat completions identical to llamabatch's: {name} {a * 100:.0f} %")
    failed = {label: [i["error"] for i in lst if "error" in i] for label, lst in infos.items()}
    failed = {k: v for k, v in failed.items() if v}
    for label, errs in failed.items():
        print(f"{label} failed: {errs[0].splitlines()[0]}")

    if ref:
        ref.pop("_ref", None)
    out = {
        "benchmark": "serve",
        "machine": machine(),
        "versions": tool_versions(args, names),
        "models": {"embedding": args.embedding_path, "generation": args.generation_path,
                   "st_folder": args.st_folder if INF in names else None},
        "settings": {"quick": args.quick, "threads": args.threads, "server_cpus": args.server_cpus,
                     "client_cpus": args.client_cpus, "cpus_shared": shared, "rounds": args.rounds,
                     "max_tokens": args.max_tokens, "time_cap_s": args.time_cap,
                     "shared_system": SHARED_SYSTEM if args.shared_system else None,
                     "workloads": [{"key": w.key, "kind": w.kind, "clients": w.clients, "requests_per_client": w.per_client,
                                    "texts_per_request": w.texts} for w in workloads],
                     "ls_embed_parallel": args.ls_embed_parallel, "chat_parallel": args.chat_parallel},
        "servers": infos,
        "in_process": ref,
        "results": results,
        "ratios": ratios,
        "p99_over_p50": p99_p50,
        "max_abs_cos_minus_1_vs_in_process": cos,
        "chat_c1_identical_to_llamabatch": agreement,
        "failed": failed,
        "log_dir": str(log_dir),
        "loadavg_start": load_start,
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    print("wrote", write_json(args.out, out))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
