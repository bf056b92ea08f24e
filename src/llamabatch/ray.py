"""Embedding and generation over a Ray Data dataset, on one machine or many.

    pip install "llamabatch[ray]"

    import ray, llamabatch.ray
    ds = ray.data.read_parquet("s3://bucket/texts/")            # columns id, text, ...
    out = llamabatch.ray.embed_dataset(ds, concurrency=8, threads_per_worker=2)
    out.write_parquet("s3://bucket/embeddings/")                # id, text, ..., embedding

Both functions are lazy: they add one ``map_batches`` stage with a callable
class (:class:`EmbedWorker`, :class:`GenerateWorker`) on a fixed pool of
``concurrency`` actors. Each actor reserves ``threads_per_worker`` CPUs, loads
its model once in ``__init__`` (llama.cpp with ``n_threads=threads_per_worker``)
and keeps it for every batch it is given.

Batches are Arrow tables from end to end (``batch_format="pyarrow"``): the text
column is read out of the table, and the result is appended as new column(s),
so every input column (ids included) stays on its row. Ray Data does not keep
row order across blocks by default: sort by id, or set
``ray.data.DataContext.get_current().execution_options.preserve_order = True``.

The embedding column is an Arrow ``fixed_size_list<float32>[n_embd]``, built
over the Embedder's float32 matrix without a copy. It is what the single-machine
``llamabatch embed`` writes too, and any Parquet reader reads it as a list
column. For a matrix, take the column's values:
``col.combine_chunks().values.to_numpy().reshape(-1, n_embd)`` (no copy); Ray's
``batch_format="numpy"`` gives an object array of rows instead (``np.stack`` it).
Ray's tensor extension type would give numpy batches directly, but it is stored
in Parquet as a Ray-specific extension type that plain pyarrow, pandas or DuckDB
read as opaque data.

CPUs: each actor holds ``threads_per_worker`` CPUs for the whole job, and Ray
Data's read and write tasks (``read_parquet``, ``write_parquet``) need a CPU of
their own. If ``concurrency * threads_per_worker`` takes every CPU of the
cluster, those tasks never start and the job waits forever (Ray 2.60): keep at
least one CPU free when the pipeline reads or writes files.

Models on many machines: ``model`` is resolved on each worker with
:func:`llamabatch.models.resolve`. A catalogue name (or None, the default
model) is fetched by the first worker on each node into that node's cache
(``~/.cache/llamabatch`` or ``$LLAMABATCH_CACHE``; workers of a node share it
under a file lock) and reused afterwards, so every node needs PyPI access (and
``llamabatch[convert]`` for models built by conversion, such as the default
embedder) unless its cache is already filled. A path is used as given on every
node: put the GGUF on storage that every node mounts at the same path (NFS,
a shared volume), or copy it to the same path on each node. A relative path
is made absolute on the driver.

Fault tolerance is Ray Data's: actors run with ``max_restarts=-1`` and
``max_task_retries=-1`` (Ray Data's defaults for actor pools), so a worker
process that dies mid-batch is restarted (reloading its model) and its batch is
run again; every row still comes out exactly once (tests/test_ray.py).
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ._checks import check_positive_int
from .generator import SamplingOptions, fill_template

# `import ray` here is the top-level Ray package (absolute imports), not this module.
try:
    import ray
    import ray.data
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError('llamabatch.ray needs Ray Data: pip install "llamabatch[ray]"') from e

__all__ = ["EMBEDDING_COLUMN", "GENERATION_COLUMNS", "EmbedWorker", "FileJobResult", "GenerateWorker",
           "RayJobError", "embed_dataset", "generate_dataset", "run_file_job"]

EMBEDDING_COLUMN = "embedding"
GENERATION_COLUMNS = ("generated_text", "finish_reason", "prompt_tokens", "completion_tokens")


# --------------------------------------------------------------------------- workers


class EmbedWorker:
    """Ray Data callable class: ``pyarrow.Table`` batch in, the same table plus an
    embedding column (``fixed_size_list<float32>[n_embd]``) out.

    Args:
        model: catalogue name, GGUF path or None (resolved here, on the worker).
        text_column: column holding the texts (str).
        output_column: name of the new column.
        threads: llama.cpp threads (``n_threads``).
        truncate, normalize: as in :meth:`llamabatch.Embedder.encode`.
        embedder_options: further :class:`llamabatch.Embedder` arguments.
    """

    def __init__(self, model: str | None = None, *, text_column: str = "text",
                 output_column: str = EMBEDDING_COLUMN, threads: int = 1, truncate: bool | int = True,
                 normalize: Any = True, embedder_options: dict[str, Any] | None = None) -> None:
        from .embedder import Embedder

        self.embedder = Embedder(model, n_threads=threads, normalize=normalize, **(embedder_options or {}))
        self.text_column = text_column
        self.output_column = output_column
        self.truncate = truncate

    def __call__(self, batch: Any) -> Any:  # a pyarrow.Table in, one out
        import pyarrow as pa

        texts = _texts(batch, self.text_column, self.output_column)
        n_embd = self.embedder.n_embd
        if texts:
            matrix = self.embedder.encode(texts, truncate=self.truncate)
        else:
            matrix = np.zeros((0, n_embd), np.float32)
        # pa.array over a contiguous float32 array wraps its buffer (no copy); the
        # fixed-size list is a view over those values, n_embd per row.
        values = pa.array(np.ascontiguousarray(matrix, dtype=np.float32).reshape(-1), type=pa.float32())
        return batch.append_column(self.output_column, pa.FixedSizeListArray.from_arrays(values, n_embd))


class GenerateWorker:
    """Ray Data callable class: ``pyarrow.Table`` batch in, the same table plus the
    columns ``generated_text`` (str), ``finish_reason`` (str), ``prompt_tokens`` and
    ``completion_tokens`` (int32) out.

    Args:
        model: catalogue name, GGUF path or None (resolved here, on the worker).
        prompt_column: column holding the prompts (str).
        threads: llama.cpp threads (``n_threads``).
        n_parallel: sequences decoding together inside the worker.
        prompt_template: a str with ``{prompt}`` where each prompt goes.
        generate_options: :meth:`llamabatch.Generator.generate_details` arguments.
        generator_options: further :class:`llamabatch.Generator` arguments.
    """

    def __init__(self, model: str | None = None, *, prompt_column: str = "text", threads: int = 1,
                 n_parallel: int = 16, prompt_template: str | None = None,
                 generate_options: dict[str, Any] | None = None,
                 generator_options: dict[str, Any] | None = None) -> None:
        from .generator import Generator

        self.generator = Generator(model, n_threads=threads, n_parallel=n_parallel, **(generator_options or {}))
        self.prompt_column = prompt_column
        self.prompt_template = prompt_template
        self.options = dict(generate_options or {})

    def __call__(self, batch: Any) -> Any:  # a pyarrow.Table in, one out
        import pyarrow as pa

        prompts = _texts(batch, self.prompt_column, *GENERATION_COLUMNS)
        prompts = fill_template(self.prompt_template, prompts)
        done = self.generator.generate_details(prompts, **self.options) if prompts else []
        columns = {
            "generated_text": pa.array([c.text for c in done], type=pa.string()),
            "finish_reason": pa.array([c.finish_reason for c in done], type=pa.string()),
            "prompt_tokens": pa.array([c.prompt_tokens for c in done], type=pa.int32()),
            "completion_tokens": pa.array([c.completion_tokens for c in done], type=pa.int32()),
        }
        for name, column in columns.items():
            batch = batch.append_column(name, column)
        return batch


def _texts(batch: Any, column: str, *new_columns: str) -> list[str]:
    """The batch's texts as a list of str; names the fix for a missing or clashing column."""
    names = batch.column_names
    if column not in names:
        raise ValueError(f"the dataset has no column {column!r} (columns: {', '.join(names)}); "
                         "pass text_column=/prompt_column= with the right name")
    for name in new_columns:
        if name in names:
            raise ValueError(f"the dataset already has a column {name!r}; drop or rename it first "
                             "(ds.drop_columns / ds.rename_columns), or pick another output_column")
    texts: list[str] = batch.column(column).to_pylist()
    return texts


# --------------------------------------------------------------------------- datasets


def embed_dataset(
    ds: "ray.data.Dataset",
    *,
    model: str | os.PathLike[str] | None = None,
    text_column: str = "text",
    output_column: str = EMBEDDING_COLUMN,
    batch_size: int = 256,
    concurrency: int = 1,
    threads_per_worker: int = 1,
    truncate: bool | int = True,
    normalize: Any = True,
    **embedder_options: Any,
) -> "ray.data.Dataset":
    """Adds an embedding column to every row of ``ds`` (lazy; nothing runs until consumed).

    Args:
        ds: rows with a str column ``text_column``; every column is kept.
        model: catalogue name (fetched once per node), a GGUF path every node can
            read, or None for the default embedder (all-MiniLM-L6-v2).
        output_column: the new column: ``fixed_size_list<float32>[n_embd]``.
        batch_size: rows per ``map_batches`` call (one :meth:`Embedder.encode` call).
        concurrency: actors (workers), each with its own model.
        threads_per_worker: CPUs reserved per actor and llama.cpp threads.
        truncate, normalize: as in :meth:`llamabatch.Embedder.encode` (default:
            over-long texts are cut to the model's context; L2-normalised).
        embedder_options: further :class:`llamabatch.Embedder` arguments
            (``pooling``, ``n_ctx``, ``n_batch``, ``n_seq_max``, ``n_gpu_layers``, ...).

    Returns:
        a Dataset with the input's columns plus ``output_column``; rows are not
        in input order unless ``preserve_order`` is set (see the module doc).
    """
    kwargs = {"text_column": text_column, "output_column": output_column, "threads": threads_per_worker,
              "truncate": truncate, "normalize": normalize, "embedder_options": embedder_options}
    return _map(ds, EmbedWorker, model, kwargs, batch_size=batch_size, concurrency=concurrency,
                threads_per_worker=threads_per_worker)


def generate_dataset(
    ds: "ray.data.Dataset",
    *,
    model: str | os.PathLike[str] | None = None,
    prompt_column: str = "text",
    batch_size: int = 64,
    concurrency: int = 1,
    threads_per_worker: int = 1,
    n_parallel: int = 16,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    seed: int | None = None,
    stop: str | Sequence[str] | None = None,
    ignore_eos: bool = False,
    chat: bool = False,
    system: str | None = None,
    prompt_template: str | None = None,
    **generator_options: Any,
) -> "ray.data.Dataset":
    """Adds a completion to every row of ``ds`` (lazy; nothing runs until consumed).

    Args:
        ds: rows with a str column ``prompt_column``; every column is kept.
        model: catalogue name (fetched once per node), a GGUF path every node can
            read, or None for the default generator (SmolLM2-135M-Instruct).
        batch_size: rows per ``map_batches`` call (one ``generate_details`` call,
            continuously batched ``n_parallel`` at a time inside the worker).
        concurrency: actors (workers), each with its own model.
        threads_per_worker: CPUs reserved per actor and llama.cpp threads.
        max_new_tokens ... system: as in :meth:`llamabatch.Generator.generate_details`.
            With a ``seed`` each row's sample is reproducible whatever worker runs it.
        prompt_template: a str with ``{prompt}`` where each row's prompt goes.
        generator_options: further :class:`llamabatch.Generator` arguments
            (``n_ctx``, ``n_batch``, ``n_gpu_layers``, ``chat_template``).

    Returns:
        a Dataset with the input's columns plus ``generated_text`` (str),
        ``finish_reason`` (str), ``prompt_tokens`` and ``completion_tokens`` (int32).
    """
    # Checked here, on the driver, before any worker starts.
    sampling = SamplingOptions(max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                               min_p=min_p, seed=seed, stop=stop or (), ignore_eos=ignore_eos)
    options = {**sampling.as_kwargs(), "chat": chat, "system": system}
    kwargs = {"prompt_column": prompt_column, "threads": threads_per_worker, "n_parallel": n_parallel,
              "prompt_template": prompt_template, "generate_options": options,
              "generator_options": generator_options}
    return _map(ds, GenerateWorker, model, kwargs, batch_size=batch_size, concurrency=concurrency,
                threads_per_worker=threads_per_worker)


def _map(ds: ray.data.Dataset, worker: type, model: str | os.PathLike[str] | None, kwargs: dict[str, Any], *,
         batch_size: int, concurrency: int, threads_per_worker: int) -> ray.data.Dataset:
    """The one ``map_batches`` both functions use: a fixed pool of ``concurrency``
    actors of class ``worker``, each reserving ``threads_per_worker`` CPUs."""
    for name, value in (("batch_size", batch_size), ("concurrency", concurrency),
                        ("threads_per_worker", threads_per_worker)):
        check_positive_int(name, value)
    if not isinstance(ds, ray.data.Dataset):
        raise TypeError(f"expected a ray.data.Dataset, got {type(ds).__name__}; "
                        "wrap rows with ray.data.from_items(...) or read them with ray.data.read_parquet(...)")
    mapped: ray.data.Dataset = ds.map_batches(
        worker,
        fn_constructor_args=(_model_arg(model),),
        fn_constructor_kwargs=kwargs,
        batch_size=int(batch_size),
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=int(concurrency)),
        num_cpus=int(threads_per_worker),
        udf_modifying_row_count=False,
    )
    return mapped


def _model_arg(model: str | os.PathLike[str] | None) -> str | None:
    """What each worker resolves: None or a catalogue name as given; a path made absolute
    here, since a worker's working directory is not the driver's."""
    if model is None:
        return None
    from . import models

    if isinstance(model, str) and model in models.CATALOGUE:
        return model
    return os.path.abspath(os.path.expanduser(os.fspath(model)))


# --------------------------------------------------------------------------- a whole job over files


class RayJobError(RuntimeError):
    """A Ray job failed; the message is the worker's own error, or how to reach the cluster."""


@dataclass(frozen=True)
class FileJobResult:
    rows: int
    seconds: float  # with Ray's start-up
    workers: int
    threads: int

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def run_file_job(task: str, input: str, output: str, *, fmt: str, text_field: str, id_field: str | None,
                 model: str | None, threads: int, workers: int | None, address: str | None, progress: bool,
                 overwrite: bool, options: dict[str, Any]) -> FileJobResult:
    """``llamabatch embed|generate --ray``: reads ``input`` with Ray's readers, embeds
    or generates on a pool of workers, writes ``output`` as a directory of Parquet
    files (the id and the result columns; rows in no fixed order).

    ``options`` go to :func:`embed_dataset` or :func:`generate_dataset`. Raises
    :class:`RayJobError` when the cluster cannot be reached or a worker fails,
    ValueError for an input or a worker count that cannot work.
    """
    from .outputs import EMBEDDING_COLUMN, GENERATION_COLUMNS

    if task not in ("embed", "generate"):
        raise ValueError(f"task must be 'embed' or 'generate', got {task!r}")
    t0 = time.perf_counter()
    try:
        ray.init(address=address, logging_level=logging.WARNING if progress else logging.ERROR)
    except ConnectionError as e:
        where = address or "$RAY_ADDRESS or the cluster last started with `ray start` here"
        raise RayJobError(f"cannot connect to the Ray cluster at {where} ({e}): check that it runs (`ray status`); "
                          "with token authentication (Ray's default) set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN "
                          "to the head node's `ray get-auth-token`; --address local starts a new local instance"
                          ) from None
    try:
        ray.data.DataContext.get_current().enable_progress_bars = progress
        ds = _read(input, fmt)
        id_column = _id_column(ds.schema().names, input, text_field, id_field)
        ds = ds.select_columns(list(dict.fromkeys([id_column, text_field])))
        cpus = ray.cluster_resources().get("CPU", 0)  # type: ignore[no-untyped-call]  # untyped in Ray
        n_workers = workers_for(int(cpus), workers, threads)
        if task == "embed":
            out = embed_dataset(ds, model=model, text_column=text_field, batch_size=256, concurrency=n_workers,
                                threads_per_worker=threads, **options)
            columns = [id_column, EMBEDDING_COLUMN]
        else:
            n_parallel = int(options.get("n_parallel", 16))
            out = generate_dataset(ds, model=model, prompt_column=text_field, batch_size=max(64, 8 * n_parallel),
                                   concurrency=n_workers, threads_per_worker=threads, **options)
            columns = [id_column, *GENERATION_COLUMNS]
        # An existing directory here is empty or overwrite was asked for (the CLI checks).
        replace = overwrite or ("://" not in str(output) and Path(output).is_dir())
        mode = ray.data.SaveMode.OVERWRITE if replace else ray.data.SaveMode.CREATE
        out.select_columns(columns).write_parquet(output, mode=mode)
    except ray.exceptions.RayError as e:
        raise RayJobError(f"a Ray worker failed: {worker_error(e)}") from None
    finally:
        ray.shutdown()
    seconds = time.perf_counter() - t0
    import pyarrow.dataset

    rows = pyarrow.dataset.dataset(output, format="parquet").count_rows()
    return FileJobResult(rows=rows, seconds=seconds, workers=n_workers, threads=threads)


def workers_for(cpus: int, workers: int | None, threads: int) -> int:
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


def _read(path: str, fmt: str) -> ray.data.Dataset:
    """A Dataset over INPUT, with Ray's own readers."""
    if fmt == "parquet":
        return ray.data.read_parquet(path)
    if fmt == "jsonl":
        return ray.data.read_json(path, lines=True)
    import pyarrow.csv

    delimiter = "\t" if str(path).lower().endswith(".tsv") else ","
    return ray.data.read_csv(path, parse_options=pyarrow.csv.ParseOptions(delimiter=delimiter))


def _id_column(names: Sequence[str], input: str, text_field: str, id_field: str | None) -> str:
    """The id column: id_field, else 'id'; Ray reads in parallel, so there are no line numbers to fall back on."""
    if text_field not in names:
        raise ValueError(f"input {input!r} has no field {text_field!r} (columns: {', '.join(names)})")
    id_column = id_field or "id"
    if id_column not in names:
        raise ValueError(f"input {input!r} has no id field {id_column!r} (columns: {', '.join(names)}); "
                         "with --ray every row needs an id: pass --id-field FIELD")
    return id_column


def worker_error(error: BaseException) -> str:
    """The worker's own exception line out of Ray's long report (a traceback per hop)."""
    import re

    lines = [ln.strip() for ln in str(error).splitlines()]
    ours = [ln for ln in lines if re.match(r"^[A-Za-z_.]*(Error|Exception): ", ln)
            and not ln.startswith(("ray.exceptions.", "UserCodeException"))]
    return ours[-1] if ours else (lines[0] if lines else type(error).__name__)
