"""Dataset-scale runs: stream an input through a task in chunks, checkpointing each.

:func:`run` is the loop behind ``llamabatch embed`` and ``llamabatch generate``:
read rows (:mod:`llamabatch.datasets`), gather ``checkpoint_every`` of them,
run the task over them, write the chunk durably (:mod:`llamabatch.checkpoint`),
and at the end assemble the output (:mod:`llamabatch.outputs`).

A chunk always holds the same rows in a resumed run as in an uninterrupted one
(chunks end after a fixed number of usable rows, counted from the start of the
input), and inside a chunk the task is called on the same fixed slices, so the
model sees the same batches and a resumed output equals an uninterrupted one.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from . import datasets, outputs
from ._core import InputError
from .checkpoint import Checkpoint
from .generator import fill_template

__all__ = ["EmbedTask", "GenerateTask", "RunSummary", "Task", "run"]

MAX_BAD_LOGGED = 20


class Task:
    """What is done to each chunk's texts; subclasses embed or generate."""

    #: texts handed to the model per call inside a chunk (progress moves between calls)
    slice_size: int = 256

    def process(self, texts: Sequence[str]) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def concat(self, results: list[Any]) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def table(self, id_name: str, ids: Any, result: Any) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def empty_table(self, id_name: str) -> Any:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass
class EmbedTask(Task):
    """Embeds texts with an :class:`~llamabatch.Embedder` (``encode`` arguments fixed here)."""

    embedder: Any
    batch_size: int | None = None
    truncate: bool = True
    slice_size: int = 256

    def process(self, texts: Sequence[str]) -> np.ndarray:
        rows: np.ndarray = self.embedder.encode(list(texts), batch_size=self.batch_size, truncate=self.truncate)
        return rows

    def concat(self, results: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(results, axis=0) if results else np.zeros((0, self.embedder.n_embd), np.float32)

    def table(self, id_name: str, ids: Any, result: np.ndarray) -> Any:
        return outputs.embedding_table(id_name, ids, result)

    def empty_table(self, id_name: str) -> Any:
        import pyarrow as pa

        return outputs.embedding_table(id_name, pa.array([], type=pa.string()),
                                       np.zeros((0, self.embedder.n_embd), np.float32))


@dataclass
class GenerateTask(Task):
    """Generates with a :class:`~llamabatch.Generator`; ``options`` go to ``generate_details``."""

    generator: Any
    options: dict[str, Any] = field(default_factory=dict)
    template: str | None = None
    slice_size: int = 128

    def process(self, texts: Sequence[str]) -> list[Any]:
        return list(self.generator.generate_details(fill_template(self.template, texts), **self.options))

    def concat(self, results: list[list[Any]]) -> list[Any]:
        return [c for r in results for c in r]

    def table(self, id_name: str, ids: Any, result: list[Any]) -> Any:
        return outputs.generation_table(id_name, ids, result)

    def empty_table(self, id_name: str) -> Any:
        import pyarrow as pa

        return outputs.generation_table(id_name, pa.array([], type=pa.string()), [])


@dataclass
class RunSummary:
    rows: int            # rows in the output
    rows_this_run: int   # rows computed by this invocation
    bad: int             # malformed records skipped (whole input)
    seconds: float       # wall time of this invocation
    resumed_from: int    # rows already done when this invocation started
    output: Path

    @property
    def rows_per_second(self) -> float:
        return self.rows_this_run / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        rate = self.rows_per_second
        out = [f"done: {self.rows} rows -> {self.output}"]
        if self.resumed_from:
            out.append(f"resumed: {self.resumed_from} rows were already done, {self.rows_this_run} computed now")
        out.append(f"time: {self.seconds:.2f} s, {rate:.1f} rows/s, {rate * 86400:,.0f} rows/day at this rate")
        out.append(f"skipped: {self.bad} bad lines")
        return out


def run(
    task: Task,
    input_path: str | Path,
    output: str | Path,
    checkpoint: Checkpoint,
    *,
    text_field: str,
    id_field: str | None,
    fmt: str | None = None,
    checkpoint_every: int = 10_000,
    skip_bad: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> RunSummary:
    """Runs ``task`` over the input, from the checkpoint's position on; see the module doc."""
    t0 = time.perf_counter()
    output = Path(output)
    log = log or (lambda msg: print(msg, file=sys.stderr))
    out_fmt = outputs.output_format(output)
    id_name = id_field or datasets.LINE_ID
    resumed_from = checkpoint.rows_done

    if checkpoint.already_complete:
        log(f"{output} is already complete; nothing to do")
        return RunSummary(_count_output(output, out_fmt), 0, 0, time.perf_counter() - t0, 0, output)

    bad_total = checkpoint.bad_done
    bad_in_chunk = 0
    rows_this_run = 0

    def on_bad(b: datasets.BadRow) -> None:
        nonlocal bad_in_chunk
        bad_in_chunk += 1
        if bad_total + bad_in_chunk <= MAX_BAD_LOGGED:
            log(f"skipped line {b.line}: {b.reason}")
        elif bad_total + bad_in_chunk == MAX_BAD_LOGGED + 1:
            log("skipping more bad lines without logging each")

    bar = _progress_bar(input_path, fmt, checkpoint.next_pos, progress)
    try:
        if not checkpoint.input_done:
            rows = datasets.read_rows(input_path, text_field=text_field, id_field=id_field, fmt=fmt,
                                      start=checkpoint.next_pos, skip_bad=skip_bad, on_bad=on_bad)
            for chunk in _chunks(rows, checkpoint_every):
                result = task.concat([_step(task, piece, bar) for piece in _slices(chunk, task.slice_size)])
                id_type = checkpoint.get("id_type")
                try:
                    ids = outputs.id_array([r.id for r in chunk], id_type)
                except ValueError as e:
                    raise datasets.DataError(f"{input_path}: lines {chunk[0].line}-{chunk[-1].line}: {e}") from None
                table = task.table(id_name, ids, result)
                checkpoint.add_chunk(lambda tmp: outputs.write_parquet(table, tmp), rows=len(chunk),
                                     end=chunk[-1].pos + 1, bad=bad_in_chunk,
                                     extra={"id_type": id_type or str(ids.type), "n_cols": _width(result)})
                bad_total += bad_in_chunk
                bad_in_chunk = 0
                rows_this_run += len(chunk)
            if not checkpoint.chunks:  # empty input: one empty chunk keeps the output's schema
                table = task.empty_table(id_name)
                checkpoint.add_chunk(lambda tmp: outputs.write_parquet(table, tmp), rows=0, end=0, bad=0,
                                     extra={"n_cols": _width(None, task)})
            checkpoint.mark_input_done(end=checkpoint.next_pos, bad=bad_in_chunk)
    finally:
        if bar is not None:
            bar.close()

    parts = checkpoint.part_paths()
    n_rows = checkpoint.rows_done
    if out_fmt == "parquet":
        checkpoint.finish(lambda tmp: outputs.concat_parquet(parts, tmp))
    else:
        n_embd = int(checkpoint.get("n_cols") or 0)
        checkpoint.finish(None, sidecar=outputs.ids_sidecar(output),
                          assemble_sidecar=lambda tmp, ids_tmp: outputs.write_npy(parts, tmp, ids_tmp, n_rows, n_embd))
    bad = checkpoint.bad_done + checkpoint.tail_bad
    return RunSummary(n_rows, rows_this_run, bad, time.perf_counter() - t0, resumed_from, output)


# --------------------------------------------------------------------------- helpers


def _chunks(rows: Iterable[datasets.Row], size: int) -> Iterable[list[datasets.Row]]:
    chunk: list[datasets.Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _slices(chunk: list[datasets.Row], size: int) -> Iterable[list[datasets.Row]]:
    for i in range(0, len(chunk), size):
        yield chunk[i:i + size]


def _step(task: Task, piece: list[datasets.Row], bar: Any) -> Any:
    try:
        result = task.process([r.text for r in piece])
    except InputError as e:  # e.g. an over-long text with --no-truncate: name its line
        index = int(getattr(e, "index", -1))  # set by the core on every InputError
        where = f"line {piece[index].line}" if 0 <= index < len(piece) else _lines(piece)
        raise datasets.DataError(f"{where}: {e}") from None
    except ValueError as e:
        raise datasets.DataError(f"{_lines(piece)}: {e}") from None
    if bar is not None:
        bar.update(piece[-1].pos + 1 - bar.n)
    return result


def _lines(piece: list[datasets.Row]) -> str:
    return f"lines {piece[0].line}-{piece[-1].line}"


def _width(result: Any, task: Task | None = None) -> int:
    if isinstance(result, np.ndarray):
        return int(result.shape[1])
    if isinstance(task, EmbedTask):
        return int(task.embedder.n_embd)
    return 0


def _progress_bar(input_path: str | os.PathLike[str], fmt: str | None, start: int, show: bool) -> Any:
    if not show:
        return None
    from tqdm.auto import tqdm

    total = datasets.count_records(input_path, fmt)
    if datasets.detect_format(input_path, fmt) == "csv" and total is not None:
        total += 1  # positions count the header line
    return tqdm(total=total, initial=start, unit="row", desc="rows", dynamic_ncols=True, smoothing=0.1)


def _count_output(output: Path, out_fmt: str) -> int:
    if out_fmt == "npy":
        return int(np.load(output, mmap_mode="r").shape[0])
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(output).metadata.num_rows)
