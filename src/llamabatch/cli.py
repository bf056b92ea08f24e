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
import time
from pathlib import Path
from typing import Sequence

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
    e.set_defaults(func=_cmd_embed)

    g = sub.add_parser("generate", help="generate a completion for every prompt of a dataset",
                       description="Generate a completion for every prompt of INPUT into OUTPUT (Parquet), "
                                   "with checkpoints.")
    _io_args(g, field_flag="--prompt-field")
    _generation_args(g)
    g.add_argument("--chat", action="store_true", help="wrap each prompt in the model's chat template")
    g.add_argument("--n-parallel", type=_positive, default=16, metavar="N", help="sequences decoding together (default 16)")
    g.add_argument("--n-ctx", type=_positive, default=None, help="context tokens (default: from the model)")
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


def _settings(args: argparse.Namespace, task: str, model_path: Path, id_field: str | None) -> dict:
    return {"task": task, "model": str(model_path), "text_field": args.text_field, "id_field": id_field,
            "format": args.format, "checkpoint_every": args.checkpoint_every}


def _prepare(args: argparse.Namespace, task: str, default_model: str, extra: dict):
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
    model_path = models.resolve(args.model, default_model)
    settings = {**_settings(args, task, model_path, id_field), **extra}
    ckpt = Checkpoint(args.output, settings, input_path=args.input, resume=args.resume, overwrite=args.overwrite)
    if args.overwrite and out_fmt == "npy":
        outputs.ids_sidecar(args.output).unlink(missing_ok=True)
    return ckpt, model_path, id_field


def _finish(args: argparse.Namespace, task, ckpt, id_field) -> int:
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

    extra = {"batch_size": args.batch_size, "truncate": args.truncate}
    ckpt, model_path, id_field = _prepare(args, "embed", models.DEFAULT_EMBEDDING_MODEL, extra)
    if ckpt.already_complete:
        print(f"{args.output} is already complete; nothing to do")
        return 0
    from .embedder import Embedder

    embedder = Embedder(str(model_path), n_threads=args.threads)
    task = EmbedTask(embedder, batch_size=args.batch_size, truncate=args.truncate,
                     slice_size=max(256, args.batch_size or 0))
    return _finish(args, task, ckpt, id_field)


def _generation_options(args: argparse.Namespace) -> dict:
    return {"max_new_tokens": args.max_new_tokens, "temperature": args.temperature, "top_k": args.top_k,
            "top_p": args.top_p, "min_p": args.min_p, "seed": args.seed, "stop": args.stop,
            "chat": args.chat, "system": args.system}


def _generator_class():
    import llamabatch

    cls = getattr(llamabatch, "Generator", None)
    if cls is None:
        raise ValueError("this build of llamabatch has no Generator; generation is not available")
    return cls


def _cmd_generate(args: argparse.Namespace) -> int:
    if args.ray:
        return _ray_job(args, "generate")
    _local_args(args)
    from . import models
    from .runner import GenerateTask

    options = _generation_options(args)
    extra = {**options, "prompt_template": args.prompt_template, "n_parallel": args.n_parallel,
             "n_ctx": args.n_ctx}
    ckpt, model_path, id_field = _prepare(args, "generate", models.DEFAULT_GENERATION_MODEL, extra)
    if ckpt.already_complete:
        print(f"{args.output} is already complete; nothing to do")
        return 0
    generator = _generator_class()(str(model_path), n_parallel=args.n_parallel, n_ctx=args.n_ctx,
                                   n_threads=args.threads)
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
        progress=args.progress,
    )
    if args.task == "generate":
        _generator_class()
    result = sweep.run_sweep(config)
    files = sweep.write_results(result, args.out)
    print(sweep.format_table(result))
    for f in files:
        print(f"wrote {f}")
    return 0


# --------------------------------------------------------------------------- --ray


def _ray_job(args: argparse.Namespace, task: str) -> int:
    """Runs embed/generate with Ray Data: read INPUT, map on a pool of workers, write OUTPUT/."""
    fmt = _ray_check_args(args)
    try:
        import ray
        import ray.data

        from . import ray as lray
    except ImportError:
        raise ValueError('--ray needs Ray Data: pip install "llamabatch[ray]"') from None
    from .outputs import EMBEDDING_COLUMN, GENERATION_COLUMNS

    t0 = time.perf_counter()
    try:
        ray.init(address=args.address, logging_level="warning" if args.progress else "error")
    except ConnectionError as e:
        where = args.address or "$RAY_ADDRESS or the cluster last started with `ray start` here"
        raise RayJobError(f"cannot connect to the Ray cluster at {where} ({e}): check that it runs (`ray status`); "
                          "with token authentication (Ray's default) set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN "
                          "to the head node's `ray get-auth-token`; --address local starts a new local instance"
                          ) from None
    try:
        ray.data.DataContext.get_current().enable_progress_bars = args.progress
        ds = _ray_read(ray, args.input, fmt)
        id_field = _ray_id_field(ds.schema().names, args)
        ds = ds.select_columns(list(dict.fromkeys([id_field, args.text_field])))
        threads = args.threads or 1
        workers = _ray_workers(int(ray.cluster_resources().get("CPU", 0)), args.workers, threads)
        if task == "embed":
            options = {"n_seq_max": args.batch_size} if args.batch_size else {}
            out = lray.embed_dataset(ds, model=args.model, text_column=args.text_field, batch_size=256,
                                     concurrency=workers, threads_per_worker=threads, truncate=args.truncate,
                                     **options)
            columns = [id_field, EMBEDDING_COLUMN]
        else:
            out = lray.generate_dataset(ds, model=args.model, prompt_column=args.text_field,
                                        batch_size=max(64, 8 * args.n_parallel), concurrency=workers,
                                        threads_per_worker=threads, n_parallel=args.n_parallel,
                                        prompt_template=args.prompt_template, n_ctx=args.n_ctx,
                                        **_generation_options(args))
            columns = [id_field, *GENERATION_COLUMNS]
        # An existing directory here is empty or --overwrite was given (checked above).
        replace = args.overwrite or ("://" not in str(args.output) and Path(args.output).is_dir())
        mode = ray.data.SaveMode.OVERWRITE if replace else ray.data.SaveMode.CREATE
        out.select_columns(columns).write_parquet(args.output, mode=mode)
    except ray.exceptions.RayError as e:
        raise RayJobError(f"a Ray worker failed: {_worker_error(e)}") from None
    finally:
        ray.shutdown()
    seconds = time.perf_counter() - t0
    import pyarrow.dataset

    rows = pyarrow.dataset.dataset(args.output, format="parquet").count_rows()
    rate = rows / seconds if seconds > 0 else 0.0
    print(f"done: {rows} rows -> {args.output} (a directory of Parquet files; rows in no fixed order)")
    print(f"time: {seconds:.2f} s with Ray start-up, {rate:.1f} rows/s, {workers} worker(s) x {threads} thread(s)")
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


def _ray_workers(cpus: int, workers: int | None, threads: int) -> int:
    """Workers to start: as many as fit while one CPU stays free. Ray Data's read and
    write tasks need a CPU each; with every CPU held by a worker they never start and
    the job waits forever (seen with Ray 2.60)."""
    fit = (cpus - 1) // threads
    if workers is None and fit >= 1:
        return fit
    if workers is not None and workers <= fit:
        return workers
    if fit >= 1:
        fix = f"use --workers {fit} or fewer"
    elif cpus >= 2:
        fix = f"use --threads {cpus - 1} or fewer"
    else:
        fix = "give the cluster at least 2 CPUs (ray start --num-cpus 2)"
    asked = f"{workers if workers is not None else 1} worker(s) x {threads} thread(s)"
    raise ValueError(f"{asked} would take all {cpus} CPU(s) of the Ray cluster and leave none for Ray's read and "
                     f"write tasks, so the job would never finish: {fix}")


def _ray_read(ray, path: str, fmt: str):
    """A Dataset over INPUT, with Ray's own readers."""
    if fmt == "parquet":
        return ray.data.read_parquet(path)
    if fmt == "jsonl":
        return ray.data.read_json(path, lines=True)
    import pyarrow.csv

    delimiter = "\t" if str(path).lower().endswith(".tsv") else ","
    return ray.data.read_csv(path, parse_options=pyarrow.csv.ParseOptions(delimiter=delimiter))


def _ray_id_field(names: Sequence[str], args: argparse.Namespace) -> str:
    """The id column: --id-field, else 'id'; Ray reads in parallel, so there are no line numbers to fall back on."""
    if args.text_field not in names:
        raise ValueError(f"input {args.input!r} has no field {args.text_field!r} (columns: {', '.join(names)})")
    id_field = args.id_field or "id"
    if id_field not in names:
        raise ValueError(f"input {args.input!r} has no id field {id_field!r} (columns: {', '.join(names)}); "
                         "with --ray every row needs an id: pass --id-field FIELD")
    return id_field


def _worker_error(error: BaseException) -> str:
    """The worker's own exception line out of Ray's long report (a traceback per hop)."""
    import re

    lines = [ln.strip() for ln in str(error).splitlines()]
    ours = [ln for ln in lines if re.match(r"^[A-Za-z_.]*(Error|Exception): ", ln)
            and not ln.startswith(("ray.exceptions.", "UserCodeException"))]
    return ours[-1] if ours else (lines[0] if lines else type(error).__name__)


if __name__ == "__main__":
    raise SystemExit(main())
