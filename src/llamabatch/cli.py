"""The llamabatch command: dataset-scale embedding and generation, and batch-size sweeps.

    llamabatch embed INPUT -o OUTPUT [--model M] [--text-field text] [--id-field id]
                   [--batch-size N] [--checkpoint-every 10000] [--resume | --overwrite]
    llamabatch generate INPUT -o OUTPUT [--model M] [--prompt-field text] [--chat]
                   [--max-new-tokens N] [--n-parallel N] [--resume | --overwrite]
    llamabatch sweep [INPUT] --task embed|generate --batch-sizes 1,4,8,16,32,64
                   [--limit N] [--reference-field F] --out DIR
    llamabatch embed|generate INPUT -o OUTDIR --ray [--address ADDR] [--workers N] [--threads T]
    llamabatch info
    llamabatch serve [--model M] [--embedding-model E] [--host 127.0.0.1] [--port 8000]

INPUT is JSONL, CSV, Parquet or plain text (one item a line), read as a stream.
OUTPUT is Parquet, or .npy for embeddings (ids then go to NAME.ids.jsonl).
Finished rows are checkpointed in OUTPUT.parts/ every --checkpoint-every rows;
a run killed at any moment goes on with --resume and gives the same output.

With --ray the same job runs on a Ray cluster (pip install "llamabatch[ray]"):
Ray's readers read INPUT (JSONL, CSV or Parquet, a file, a directory or a URI
such as s3://...), N workers with T threads each embed or generate, and Ray's
writer writes OUTDIR, a directory of Parquet files (rows in no fixed order;
sort by id). Failed tasks are retried by Ray, so --resume does not apply.

serve runs an OpenAI-compatible HTTP server (pip install "llamabatch[server]")
that packs the inputs of concurrent requests into shared decodes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:  # for annotations only: the CLI imports these late, so --help stays fast
    from .checkpoint import Checkpoint
    from .runner import Task

__all__ = ["main"]

EXIT_ERROR = 1
DEFAULT_CHECKPOINT_EVERY = 10_000


class RayJobError(RuntimeError):
    """A Ray worker failed; the message is the worker's own error."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    from .checkpoint import CheckpointError
    from .datasets import DataError

    try:
        return int(args.func(args) or 0)
    except (DataError, CheckpointError, RayJobError, ValueError, FileNotFoundError, IsADirectoryError) as e:
        print(f"llamabatch {args.command}: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"\nllamabatch {args.command}: interrupted; finished chunks are kept, "
              "run again with --resume to go on", file=sys.stderr)
        return 130


# --------------------------------------------------------------------------- parser


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llamabatch", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]))
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    e = sub.add_parser("embed", help="embed every text of a dataset",
                       description="Embed every text of INPUT into OUTPUT (Parquet or .npy), with checkpoints.")
    _io_args(e, field_flag="--text-field")
    e.add_argument("--batch-size", type=_positive, default=None, metavar="N",
                   help="texts per decode at most (default: as many as fit in the model's batch)")
    e.add_argument("--no-truncate", dest="truncate", action="store_false",
                   help="fail on a text longer than the model's context instead of cutting it")
    _weights_arg(e)
    e.set_defaults(func=_cmd_embed)

    g = sub.add_parser("generate", help="generate a completion for every prompt of a dataset",
                       description="Generate a completion for every prompt of INPUT into OUTPUT (Parquet), "
                                   "with checkpoints.")
    _io_args(g, field_flag="--prompt-field")
    _generation_args(g)
    g.add_argument("--chat", action="store_true", help="wrap each prompt in the model's chat template")
    g.add_argument("--chat-template", default=None, metavar="T",
                   help="with --chat: a Jinja chat template, the name of one the GGUF stores "
                        "(tokenizer.chat_template.NAME) or a file holding one (default: the GGUF's own)")
    g.add_argument("--n-parallel", type=_positive, default=16, metavar="N", help="sequences decoding together (default 16)")
    g.add_argument("--n-ctx", type=_positive, default=None, help="context tokens (default: from the model)")
    _prefix_cache_arg(g)
    g.set_defaults(func=_cmd_generate)

    s = sub.add_parser("sweep", help="time a task at several batch sizes; write results and a plot",
                       description="Run a task at each batch size (n_parallel for generation), compare outputs "
                                   "with batch size 1 and with a reference field, and write DIR/results.csv, "
                                   "DIR/results.json and DIR/sweep.png.")
    s.add_argument("input", nargs="?", default=None,
                   help="dataset (default: the 300 shipped food and drink captions)")
    s.add_argument("--task", choices=("embed", "generate"), default="embed")
    s.add_argument("--batch-sizes", type=_int_list, default=[1, 4, 8, 16, 32, 64], metavar="N,N,...",
                   help="comma-separated (default 1,4,8,16,32,64)")
    s.add_argument("--limit", type=_positive, default=None, metavar="N", help="use the first N rows only")
    s.add_argument("--text-field", default="text", metavar="FIELD", help="field of the text or prompt (default text)")
    s.add_argument("--reference-field", default=None, metavar="FIELD",
                   help="field to compare outputs with (default: 'items' for the shipped captions)")
    s.add_argument("--format", choices=("jsonl", "csv", "parquet", "text"), default=None)
    s.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for results.csv, results.json, sweep.png")
    s.add_argument("--model", default=None, metavar="M", help="catalogue name or .gguf path")
    s.add_argument("--threads", type=_positive, default=None, metavar="N", help="CPU threads (default: all)")
    s.add_argument("--repeats", type=_positive, default=None,
                   help="time each batch size N times and keep the best (default: 3 for embed, 1 for generate)")
    _generation_args(s, max_new_tokens=64)
    s.add_argument("--no-chat", dest="chat", action="store_false",
                   help="generate: do not wrap prompts in the chat template")
    s.add_argument("--n-ctx", type=_positive, default=None, help="generate: context tokens")
    s.add_argument("--no-progress", dest="progress", action="store_false")
    _batch_invariant_arg(s)
    s.set_defaults(func=_cmd_sweep)

    i = sub.add_parser("info", help="print the build (CPU features, CUDA) and the devices found, as JSON",
                       description="Print llamabatch.system_info() as JSON: what this build holds and the "
                                   "devices (CPU, GPUs) it can run on here.")
    i.set_defaults(func=_cmd_info)

    from .server.config import add_arguments as add_server_arguments

    v = sub.add_parser("serve", help="an OpenAI-compatible HTTP server that batches across requests",
                       description="Serve /v1/embeddings, /v1/completions and /v1/chat/completions (OpenAI's "
                                   "schemas), /v1/models, /health, /metrics and /tokenize. Inputs of concurrent "
                                   "requests share decodes. Needs: pip install \"llamabatch[server]\".")
    add_server_arguments(v)
    v.set_defaults(func=_cmd_serve)
    return p


def _cmd_serve(args: argparse.Namespace) -> int:
    from .server import from_arguments, serve

    return serve(from_arguments(args))


def _cmd_info(args: argparse.Namespace) -> int:
    import json

    from .devices import system_info

    print(json.dumps(system_info(), indent=2))
    return 0


def _io_args(p: argparse.ArgumentParser, *, field_flag: str) -> None:
    # str, not Path: with --ray these may be URIs (s3://...), which Path would mangle.
    p.add_argument("input", help="JSONL, CSV, Parquet or text file (one item a line)")
    p.add_argument("-o", "--output", required=True,
                   help="output .parquet (or .npy for embeddings); with --ray a directory")
    p.add_argument("--model", default=None, metavar="M", help="catalogue name or .gguf path")
    p.add_argument(field_flag, dest="text_field", default="text", metavar="FIELD", help="field of the text (default text)")
    p.add_argument("--id-field", default=None, metavar="FIELD",
                   help="field of the id, kept in the output (default: 'id' if the input has it, "
                        "else the line number, in a column 'line')")
    p.add_argument("--format", choices=("jsonl", "csv", "parquet", "text"), default=None,
                   help="input format (default: from the file name; unknown suffixes are text)")
    p.add_argument("--checkpoint-every", type=_positive, default=None, metavar="N",
                   help=f"rows per durable chunk (default {DEFAULT_CHECKPOINT_EVERY})")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="go on from the checkpoint of an earlier run")
    mode.add_argument("--overwrite", action="store_true", help="replace an existing output and checkpoint")
    p.add_argument("--skip-bad", action="store_true",
                   help="log, skip and count malformed lines instead of stopping at the first")
    p.add_argument("--threads", type=_positive, default=None, metavar="N",
                   help="CPU threads (default: all; with --ray: per worker, default 1)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    _batch_invariant_arg(p)
    r = p.add_argument_group("Ray", 'run the job on a Ray cluster (pip install "llamabatch[ray]")')
    r.add_argument("--ray", action="store_true",
                   help="read INPUT with Ray's readers, run on a pool of Ray workers (each loads the model once), "
                        "write OUTPUT as a directory of Parquet files")
    r.add_argument("--address", default=None, metavar="ADDR",
                   help="Ray cluster to join, e.g. 10.0.0.1:6379, or 'local' for a new local instance (default, "
                        "as ray.init(): $RAY_ADDRESS, else a cluster started with `ray start` on this machine, "
                        "else a new local instance)")
    r.add_argument("--workers", type=_positive, default=None, metavar="N",
                   help="Ray workers, each with its own model (default: (the cluster's CPUs - 1) // --threads, "
                        "leaving one CPU for Ray's read and write tasks)")


def _batch_invariant_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-invariant", action="store_true",
                   help="each row's result the same bits whatever else is in its batch and whatever the batch "
                        "size or threads (CPU only; slower: docs/reliability.md)")


def _prefix_cache_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-prefix-cache", dest="prefix_cache", action="store_false",
                   help="decode every prompt in full (default: a prompt starts from the longest prefix it shares "
                        "with what a slot last ran, so a shared instruction or system prompt is decoded once per "
                        "slot)")


def _weights_arg(p: argparse.ArgumentParser) -> None:
    from .weights import CHOICES

    p.add_argument("--weights", choices=[c for c in CHOICES if c], default=None,
                   help="weight format (default: catalogue models in the fastest format for this CPU, your own "
                        "file as it is; 'fastest' converts your float file too, once, into the cache)")


def _generation_args(p: argparse.ArgumentParser, *, max_new_tokens: int = 256) -> None:
    p.add_argument("--max-new-tokens", type=_positive, default=max_new_tokens, metavar="N",
                   help=f"tokens to generate at most (default {max_new_tokens})")
    p.add_argument("--prompt-template", default=None,
                   help="prompt with {prompt} where the field's text goes, e.g. 'Summarise: {prompt}'")
    p.add_argument("--system", default=None, help="system message (with chat)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 for greedy (default)")
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--min-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--stop", action="append", default=None, help="stop string (repeatable)")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not positive")
    return value


def _int_list(text: str) -> list[int]:
    values = [_positive(t.strip()) for t in text.split(",") if t.strip()]
    if not values:
        raise argparse.ArgumentTypeError("give at least one batch size, e.g. 1,4,8")
    return values


# --------------------------------------------------------------------------- commands


def _local_args(args: argparse.Namespace) -> None:
    """The one-process run: Ray-only flags are errors; paths become Paths."""
    for flag, value in (("--address", args.address), ("--workers", args.workers)):
        if value is not None:
            raise ValueError(f"{flag} is for Ray runs: add --ray, or leave {flag} out")
    args.input, args.output = Path(args.input), Path(args.output)
    if args.checkpoint_every is None:
        args.checkpoint_every = DEFAULT_CHECKPOINT_EVERY


def _settings(args: argparse.Namespace, task: str, model_path: Path, id_field: str | None) -> dict[str, Any]:
    return {"task": task, "model": str(model_path), "text_field": args.text_field, "id_field": id_field,
            "format": args.format, "checkpoint_every": args.checkpoint_every}


def _prepare(args: argparse.Namespace, task: str, default_model: str,
             extra: dict[str, Any]) -> tuple[Checkpoint, Path, str | None]:
    """Checks INPUT/OUTPUT, resolves the model and the id field, opens the checkpoint."""
    from . import datasets, models, outputs
    from .checkpoint import Checkpoint

    if not args.input.is_file():
        raise FileNotFoundError(f"input {str(args.input)!r} does not exist or is not a file")
    out_fmt = outputs.output_format(args.output)
    if out_fmt == "npy" and task != "embed":
        raise ValueError("a .npy output holds embeddings only; write generations to a .parquet file")
    id_field = args.id_field
    if id_field is None and datasets.has_field(args.input, "id", args.format):
        id_field = "id"
    if task == "embed":
        from .weights import resolve_model

        model_path = resolve_model(args.model, default_model, args.weights).path
    else:
        model_path = models.resolve(args.model, default_model)
    settings = {**_settings(args, task, model_path, id_field), **extra}
    ckpt = Checkpoint(args.output, settings, input_path=args.input, resume=args.resume, overwrite=args.overwrite)
    if args.overwrite and out_fmt == "npy":
        outputs.ids_sidecar(args.output).unlink(missing_ok=True)
    return ckpt, model_path, id_field


def _finish(args: argparse.Namespace, task: Task, ckpt: Checkpoint, id_field: str | None) -> int:
    from .runner import run

    try:
        summary = run(task, args.input, args.output, ckpt, text_field=args.text_field, id_field=id_field,
                      fmt=args.format, checkpoint_every=args.checkpoint_every, skip_bad=args.skip_bad,
                      progress=args.progress)
    except BaseException:
        ckpt.discard_if_empty()
        raise
    for line in summary.lines():
        print(line)
    return 0


def _cmd_embed(args: argparse.Namespace) -> int:
    if args.ray:
        return _ray_job(args, "embed")
    _local_args(args)
    from . import models
    from .runner import EmbedTask

    extra = {"batch_size": args.batch_size, "truncate": args.truncate,
             **({"batch_invariant": True} if args.batch_invariant else {})}
    ckpt, model_path, id_field = _prepare(args, "embed", models.DEFAULT_EMBEDDING_MODEL, extra)
    if ckpt.already_complete:
        print(f"{args.output} is already complete; nothing to do")
        return 0
    from .embedder import Embedder

    embedder = Embedder(str(model_path), n_threads=args.threads, batch_invariant=args.batch_invariant)
    task = EmbedTask(embedder, batch_size=args.batch_size, truncate=args.truncate,
                     slice_size=max(256, args.batch_size or 0))
    return _finish(args, task, ckpt, id_field)


def _generation_options(args: argparse.Namespace) -> dict[str, Any]:
    """generate_details' keyword arguments, checked (SamplingOptions) before any model loads."""
    from .generator import SamplingOptions

    sampling = SamplingOptions(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                               top_p=args.top_p, min_p=args.min_p, seed=args.seed, stop=args.stop or ())
    return {**sampling.as_kwargs(), "chat": args.chat, "system": args.system}


def _chat_template(args: argparse.Namespace) -> str | None:
    """--chat-template as Generator takes it; a file is read here, so that the checkpoint
    records the template itself and Ray workers need not see the file."""
    value: str | None = getattr(args, "chat_template", None)
    if value and "{" not in value and Path(value).is_file():
        return Path(value).read_text(encoding="utf-8")
    return value


def _cmd_generate(args: argparse.Namespace) -> int:
    if args.ray:
        return _ray_job(args, "generate")
    _local_args(args)
    from . import models
    from .generator import Generator
    from .runner import GenerateTask

    options = _generation_options(args)
    chat_template = _chat_template(args)
    extra = {**options, "prompt_template": args.prompt_template, "n_parallel": args.n_parallel,
             "n_ctx": args.n_ctx, **({"chat_template": chat_template} if chat_template is not None else {}),
             **({"batch_invariant": True} if args.batch_invariant else {})}
    ckpt, model_path, id_field = _prepare(args, "generate", models.DEFAULT_GENERATION_MODEL, extra)
    if ckpt.already_complete:
        print(f"{args.output} is already complete; nothing to do")
        return 0
    generator = Generator(str(model_path), n_parallel=args.n_parallel, n_ctx=args.n_ctx, n_threads=args.threads,
                          chat_template=chat_template, batch_invariant=args.batch_invariant,
                          prefix_cache=args.prefix_cache)
    task = GenerateTask(generator, options=options, template=args.prompt_template,
                        slice_size=max(64, 8 * args.n_parallel))
    return _finish(args, task, ckpt, id_field)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from . import sweep

    config = sweep.SweepConfig(
        task=args.task, input=args.input, batch_sizes=args.batch_sizes, limit=args.limit,
        text_field=args.text_field, reference_field=args.reference_field, fmt=args.format,
        model=args.model, threads=args.threads, repeats=args.repeats,
        generation=_generation_options(args), prompt_template=args.prompt_template, n_ctx=args.n_ctx,
        progress=args.progress, batch_invariant=args.batch_invariant,
    )
    result = sweep.run_sweep(config)
    files = sweep.write_results(result, args.out)
    print(sweep.format_table(result))
    for f in files:
        print(f"wrote {f}")
    return 0


# --------------------------------------------------------------------------- --ray


def _ray_job(args: argparse.Namespace, task: str) -> int:
    """Runs embed/generate with Ray Data (llamabatch.ray.run_file_job): read INPUT,
    map on a pool of workers, write OUTPUT/."""
    fmt = _ray_check_args(args)
    try:
        from . import ray as lray
    except ImportError:
        raise ValueError('--ray needs Ray Data: pip install "llamabatch[ray]"') from None

    if task == "embed":
        options = {"truncate": args.truncate, **({"n_seq_max": args.batch_size} if args.batch_size else {})}
    else:
        chat_template = _chat_template(args)
        options = {"n_parallel": args.n_parallel, "prompt_template": args.prompt_template, "n_ctx": args.n_ctx,
                   **_generation_options(args), **({"chat_template": chat_template} if chat_template else {})}
    if args.batch_invariant:
        options["batch_invariant"] = True  # an Embedder or Generator argument on each worker
    if task == "generate" and not args.prefix_cache:
        options["prefix_cache"] = False
    try:
        done = lray.run_file_job(task, args.input, args.output, fmt=fmt, text_field=args.text_field,
                                 id_field=args.id_field, model=args.model, threads=args.threads or 1,
                                 workers=args.workers, address=args.address, progress=args.progress,
                                 overwrite=args.overwrite, options=options)
    except lray.RayJobError as e:
        raise RayJobError(str(e)) from None
    print(f"done: {done.rows} rows -> {args.output} (a directory of Parquet files; rows in no fixed order)")
    print(f"time: {done.seconds:.2f} s with Ray start-up, {done.rows_per_second:.1f} rows/s, "
          f"{done.workers} worker(s) x {done.threads} thread(s)")
    return 0


def _ray_check_args(args: argparse.Namespace) -> str:
    """Refuses flags that make no sense with --ray, before Ray starts; returns the input format."""
    from . import datasets

    refused = {
        "--resume": (args.resume, "Ray retries failed tasks itself and writes OUTPUT at the end; "
                                  "a stopped run starts again (add --overwrite)"),
        "--checkpoint-every": (args.checkpoint_every is not None, "Ray writes OUTPUT in one pass, without checkpoints"),
        "--skip-bad": (args.skip_bad, "Ray's readers cannot skip single malformed lines; fix or drop them first, "
                                      "or run without --ray"),
    }
    for flag, (given, why) in refused.items():
        if given:
            raise ValueError(f"{flag} does not apply with --ray: {why}")
    if str(args.output).lower().endswith(".npy"):
        raise ValueError("with --ray the output is a directory of Parquet files, not .npy: "
                         "pass a directory name such as out.parquet/")
    fmt = datasets.detect_format(args.input, args.format)
    if fmt == "text":
        raise ValueError(f"input {args.input!r}: with --ray the input must be JSONL, CSV or Parquet with an id "
                         "field (plain text has no ids to match rows to inputs); pass --format for a directory")
    local = "://" not in str(args.input)
    if local and not Path(args.input).exists():
        raise FileNotFoundError(f"input {args.input!r} does not exist")
    out = Path(args.output)
    if "://" not in str(args.output) and out.exists():
        if not out.is_dir():
            raise ValueError(f"output {args.output!r} is a file; with --ray the output is a directory: "
                             "pick another name or remove the file")
        if not args.overwrite and any(out.iterdir()):
            raise ValueError(f"output {args.output!r} already exists; pass --overwrite to replace its contents")
    return fmt



if __name__ == "__main__":
    raise SystemExit(main())
