"""The server's settings, and the command line that sets them."""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..weights import CHOICES


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``llamabatch serve`` can be told; see :func:`add_arguments`."""

    model: Optional[str] = None  # generation model: catalogue name or .gguf path
    embedding_model: Optional[str] = None
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: Optional[str] = None
    max_queued_tokens: int = 262_144
    max_concurrent_requests: int = 512
    max_request_bytes: int = 4 * 1024 * 1024
    truncate: bool = False
    shutdown_timeout: float = 30.0
    threads: Optional[int] = None
    n_parallel: int = 16
    n_ctx: Optional[int] = None
    n_gpu_layers: Optional[int] = None
    weights: Optional[str] = None  # the embedding model's weight format (llamabatch.weights)
    chat_template: Optional[str] = None  # Jinja text, a GGUF template's name or a file (Generator's chat_template)
    batch_invariant: bool = False  # a request's answer the same bits whatever others run beside it
    prefix_cache: bool = True  # a prompt starts from the prefix it shares with a slot's memory (Generator's)
    access_log: bool = True

    @property
    def serves_both_defaults(self) -> bool:
        return self.model is None and self.embedding_model is None


def model_id(name: str) -> str:
    """The id a client names a model by: its catalogue name, or its file's name without ``.gguf``."""
    path = Path(name)
    if path.suffix == ".gguf":
        return path.stem
    return name


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = ServerConfig()
    p.add_argument("--model", default=None, metavar="M",
                   help="generation model (catalogue name or .gguf path) for /v1/completions and "
                        "/v1/chat/completions")
    p.add_argument("--embedding-model", default=None, metavar="E",
                   help="embedding model for /v1/embeddings. With neither flag, both catalogue defaults "
                        "are served (all-minilm-l6-v2 and smollm2-135m-instruct)")
    p.add_argument("--host", default=d.host, help=f"address to listen on (default {d.host})")
    p.add_argument("--port", type=int, default=d.port, help=f"port (default {d.port})")
    p.add_argument("--api-key", default=os.environ.get("LLAMABATCH_API_KEY"),
                   help="require 'Authorization: Bearer KEY' on every endpoint but /health "
                        "(default: $LLAMABATCH_API_KEY, else no key)")
    p.add_argument("--max-queued-tokens", type=_positive, default=d.max_queued_tokens, metavar="N",
                   help=f"tokens waiting per model before new requests get 429 (default {d.max_queued_tokens})")
    p.add_argument("--max-concurrent-requests", type=_positive, default=d.max_concurrent_requests, metavar="N",
                   help=f"requests in flight before new ones get 429 (default {d.max_concurrent_requests})")
    p.add_argument("--max-request-bytes", type=_positive, default=d.max_request_bytes, metavar="N",
                   help=f"largest request body; larger ones get 413 (default {d.max_request_bytes})")
    p.add_argument("--truncate", action="store_true",
                   help="cut embedding inputs over the model's limit instead of answering 400 "
                        "(a request's own 'truncate' field overrides this)")
    p.add_argument("--shutdown-timeout", type=float, default=d.shutdown_timeout, metavar="S",
                   help=f"on SIGTERM/SIGINT, seconds to finish requests in flight (default {d.shutdown_timeout:g})")
    p.add_argument("--threads", type=_positive, default=None, help="CPU threads per model (default: all)")
    p.add_argument("--n-parallel", type=_positive, default=d.n_parallel, metavar="N",
                   help=f"generation sequences decoding together (default {d.n_parallel})")
    p.add_argument("--n-ctx", type=_positive, default=None, metavar="N",
                   help="most tokens (prompt + completion) per generation (default: the model's, at most 2048)")
    p.add_argument("--batch-invariant", action="store_true",
                   help="a request's embeddings and greedy completion the same bits whatever other requests share "
                        "its batch (CPU only; slower: docs/reliability.md)")
    p.add_argument("--no-prefix-cache", dest="prefix_cache", action="store_false",
                   help="decode every generation prompt in full (default: a prompt starts from the longest prefix "
                        "it shares with what a slot last ran, as llama-server's prompt cache)")
    p.add_argument("--n-gpu-layers", type=int, default=None, metavar="N",
                   help="layers on the GPU (CUDA builds; default: all when a GPU is found)")
    p.add_argument("--weights", choices=[c for c in CHOICES if c], default=None,
                   help="the embedding model's weight format (default: a catalogue model in the fastest format "
                        "for this CPU, a file as it is; 'fastest' converts a float file too, once, into the cache)")
    p.add_argument("--chat-template", default=None, metavar="T",
                   help="for /v1/chat/completions: a Jinja chat template, the name of one the GGUF stores "
                        "(tokenizer.chat_template.NAME) or a file holding one (default: the GGUF's own)")
    p.add_argument("--no-access-log", dest="access_log", action="store_false",
                   help="do not log a line per request")


def from_arguments(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(
        model=args.model,
        embedding_model=args.embedding_model,
        host=args.host,
        port=args.port,
        api_key=args.api_key or None,
        max_queued_tokens=args.max_queued_tokens,
        max_concurrent_requests=args.max_concurrent_requests,
        max_request_bytes=args.max_request_bytes,
        truncate=args.truncate,
        shutdown_timeout=args.shutdown_timeout,
        threads=args.threads,
        n_parallel=args.n_parallel,
        n_ctx=args.n_ctx,
        n_gpu_layers=args.n_gpu_layers,
        weights=args.weights,
        chat_template=args.chat_template,
        batch_invariant=args.batch_invariant,
        prefix_cache=args.prefix_cache,
        access_log=args.access_log,
    )
