"""Output tables and files: Arrow tables for a chunk of results, and the final
Parquet or .npy file assembled from a run's chunks.

A chunk is always stored as a Parquet file (see :mod:`llamabatch.checkpoint`);
the final output is either Parquet (the chunks' tables, concatenated) or, for
embeddings, a ``.npy`` matrix plus ``<name>.ids.jsonl`` with one id per row (a
``.npy`` file cannot hold ids of any type).

pyarrow is imported inside the functions, so ``import llamabatch`` does not need it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

__all__ = [
    "EMBEDDING_COLUMN",
    "GENERATION_COLUMNS",
    "OUTPUT_FORMATS",
    "embedding_table",
    "generation_table",
    "id_array",
    "ids_sidecar",
    "output_format",
    "write_npy",
    "write_parquet",
]

EMBEDDING_COLUMN = "embedding"
GENERATION_COLUMNS = ("generated_text", "finish_reason", "prompt_tokens", "completion_tokens")
OUTPUT_FORMATS = ("parquet", "npy")


def output_format(path: str | os.PathLike[str]) -> str:
    """"npy" for a ``.npy`` path, "parquet" for ``.parquet``/``.pq``; anything else is an error."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        return "npy"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise ValueError(f"output {os.fspath(path)!r}: use a .parquet or .npy file name")


def ids_sidecar(path: str | os.PathLike[str]) -> Path:
    """Where the ids of a ``.npy`` output go: ``name.npy`` -> ``name.ids.jsonl``."""
    p = Path(path)
    return p.with_name(p.stem + ".ids.jsonl")


def id_array(ids: Sequence[Any], id_type: str | None = None) -> Any:  # a pyarrow.Array
    """An Arrow array of ids, cast to ``id_type`` (a string from a previous chunk) when given.

    Raises ValueError when the ids mix types (e.g. ints and strings).
    """
    import pyarrow as pa

    try:
        arr = pa.array(list(ids))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise ValueError(f"ids of mixed types cannot be stored in one column ({e})") from None
    if id_type is not None and str(arr.type) != id_type:
        if len(arr) and arr.null_count == len(arr):
            return arr.cast(_type_from_str(id_type))
        raise ValueError(f"ids are {arr.type} here but {id_type} in earlier rows")
    return arr


def _type_from_str(name: str) -> Any:  # a pyarrow.DataType
    import pyarrow as pa

    return {"int64": pa.int64(), "string": pa.string(), "double": pa.float64(), "bool": pa.bool_(),
            "large_string": pa.large_string()}.get(name, pa.string())


def embedding_table(id_name: str, ids: Any, matrix: np.ndarray) -> Any:  # a pyarrow.Table
    """Table ``(id_name, embedding: fixed_size_list<float32, n_embd>)``."""
    import pyarrow as pa

    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    values = pa.array(matrix.reshape(-1), type=pa.float32())
    vectors = pa.FixedSizeListArray.from_arrays(values, matrix.shape[1])
    return pa.table({id_name: ids, EMBEDDING_COLUMN: vectors})


def generation_table(id_name: str, ids: Any, completions: Sequence[Any]) -> Any:  # a pyarrow.Table
    """Table ``(id_name, generated_text, finish_reason, prompt_tokens, completion_tokens)``."""
    import pyarrow as pa

    return pa.table({
        id_name: ids,
        "generated_text": pa.array([c.text for c in completions], type=pa.string()),
        "finish_reason": pa.array([c.finish_reason for c in completions], type=pa.string()),
        "prompt_tokens": pa.array([int(c.prompt_tokens) for c in completions], type=pa.int32()),
        "completion_tokens": pa.array([int(c.completion_tokens) for c in completions], type=pa.int32()),
    })


def write_parquet(table: Any, path: str | os.PathLike[str]) -> None:
    """Writes one table to ``path`` (not atomic: callers write to a temporary name)."""
    import pyarrow.parquet as pq

    pq.write_table(table, path, compression="zstd")


def concat_parquet(parts: Sequence[Path], dest: Path, *, on_part: Callable[[], None] | None = None) -> int:
    """Streams the parts, in order, into one Parquet file; returns the row count."""
    import pyarrow.parquet as pq

    writer = None
    rows = 0
    try:
        for part in parts:
            table = pq.read_table(part)
            if writer is None:
                writer = pq.ParquetWriter(dest, table.schema, compression="zstd")
            writer.write_table(table)
            rows += table.num_rows
            if on_part:
                on_part()
        if writer is None:  # no rows at all: still write a valid, empty file
            return 0
    finally:
        if writer is not None:
            writer.close()
    return rows


def write_npy(parts: Sequence[Path], dest: Path, ids_dest: Path, n_rows: int, n_embd: int) -> None:
    """Streams the parts' embeddings into one ``(n_rows, n_embd)`` float32 .npy, and their ids
    (one JSON value a line) into ``ids_dest``.  The .npy is filled through a memory map, so
    the matrix is never held in memory whole."""
    import pyarrow.parquet as pq

    matrix = np.lib.format.open_memmap(dest, mode="w+", dtype=np.float32, shape=(n_rows, n_embd))
    row = 0
    with open(ids_dest, "w", encoding="utf-8") as ids_file:
        for part in parts:
            table = pq.read_table(part)
            vectors = table.column(EMBEDDING_COLUMN).combine_chunks()
            block = vectors.values.to_numpy(zero_copy_only=False).reshape(-1, n_embd)
            matrix[row:row + len(block)] = block
            row += len(block)
            for ident in table.column(0).to_pylist():
                ids_file.write(json.dumps(ident, ensure_ascii=False) + "\n")
        ids_file.flush()
        os.fsync(ids_file.fileno())
    if row != n_rows:
        raise RuntimeError(f"the chunks hold {row} rows, the manifest says {n_rows}")
    matrix.flush()
    del matrix
