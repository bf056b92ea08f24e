"""Streaming readers for JSONL, CSV, Parquet and plain text, with line numbers.

Every reader yields :class:`Row` objects one at a time, so a file of any size is
read in constant memory.  Each row carries its *position* (the index of the
physical line for JSONL/CSV/text, of the data row for Parquet), which is what
:mod:`llamabatch.checkpoint` records to resume, and its *line* (1-based, for
messages).

Parquet is read with :mod:`pyarrow` (``ParquetFile.iter_batches``).  JSONL, CSV
and text are read with the standard library because pyarrow's streaming
readers cannot say on which line a bad record sits (``InvalidRow.number`` is
None when streaming) nor skip one malformed JSON line and go on; exact line
numbers and ``--skip-bad`` are part of the contract here.

pyarrow is imported inside the functions that need it, so ``import llamabatch``
does not require it.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

__all__ = [
    "FORMATS",
    "BadRow",
    "DataError",
    "Row",
    "count_records",
    "detect_format",
    "has_field",
    "read_rows",
    "sample_dataset",
]

FORMATS = ("jsonl", "csv", "parquet", "text")
_SUFFIXES = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
    ".csv": "csv", ".tsv": "csv",
    ".parquet": "parquet", ".pq": "parquet",
    ".txt": "text", ".text": "text",
}
LINE_ID = "line"  # name of the id column when the input has no id field


class DataError(ValueError):
    """Bad input: the message names the file, the line and, where relevant, the field."""


@dataclass(frozen=True)
class Row:
    """One usable input record."""

    pos: int                 # 0-based position of the record's source unit (line or Parquet row)
    line: int                # 1-based line (or row) number, for messages
    id: Any                  # the id field's value, or the line number when there is no id field
    text: str                # the text field's value
    extras: dict[str, Any] = field(default_factory=dict)  # further fields asked for (e.g. a reference)


@dataclass(frozen=True)
class BadRow:
    """A record that could not be used (reported to ``on_bad`` under ``skip_bad``)."""

    pos: int
    line: int
    reason: str


def detect_format(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """The input format: ``fmt`` when given, else from the file name (unknown: plain text)."""
    if fmt:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        return fmt
    return _SUFFIXES.get(Path(path).suffix.lower(), "text")


def count_records(path: str | os.PathLike[str], fmt: str | None = None) -> int | None:
    """A cheap upper bound on the number of records, for progress bars.

    Counts newlines in 1 MiB blocks (never the whole file in memory) for line
    formats, reads the row count from Parquet metadata.  None if unknown.
    """
    fmt = detect_format(path, fmt)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        n, last = 0, b"\n"
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                n += block.count(b"\n")
                last = block[-1:]
        n += last != b"\n"
        return max(0, n - 1) if fmt == "csv" else n
    except OSError:
        return None


def read_rows(
    path: str | os.PathLike[str],
    *,
    text_field: str = "text",
    id_field: str | None = "id",
    extra_fields: Sequence[str] = (),
    fmt: str | None = None,
    start: int = 0,
    skip_bad: bool = False,
    on_bad: Callable[[BadRow], None] | None = None,
) -> Iterator[Row]:
    """Yields the usable rows of ``path`` in file order, streaming.

    Args:
        text_field: the field holding the text (ignored for plain text, where a
            line is the text).
        id_field: the field holding the id, or None to use the line number.
            A field that is missing raises :class:`DataError` naming the field
            and the line (a missing field is never skipped: it is usually a
            typo in the field name).
        extra_fields: further fields to carry in ``Row.extras`` (missing: None).
        fmt: "jsonl", "csv", "parquet" or "text" (default: from the suffix).
        start: skip the first ``start`` source units (lines, or Parquet rows)
            without parsing them: where a resumed run goes on.
        skip_bad: a malformed record (unparseable JSON, not an object, wrong
            column count, a text that is not a string) is passed to ``on_bad``
            and skipped instead of raising :class:`DataError`.

    Blank lines in JSONL and text files are not records and are passed over.
    """
    fmt = detect_format(path, fmt)
    reader = {"jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet, "text": _read_text}[fmt]
    name = os.fspath(path)

    def bad(pos: int, line: int, reason: str) -> None:
        if not skip_bad:
            raise DataError(f"{name}: line {line}: {reason} (pass --skip-bad to skip such lines)")
        if on_bad is not None:
            on_bad(BadRow(pos, line, reason))

    yield from reader(name, text_field, id_field, tuple(extra_fields), start, bad)


# --------------------------------------------------------------------------- line formats

# Reports a malformed record: (source position, line number, reason).
BadFn = Callable[[int, int, str], None]


def _read_text(path: str, text_field: str, id_field: str | None, extra_fields: tuple[str, ...], start: int, bad: BadFn) -> Iterator[Row]:
    extras = dict.fromkeys(extra_fields)
    with open(path, "rb") as f:
        for pos, raw in enumerate(f):
            if pos < start:
                continue
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                bad(pos, pos + 1, f"not UTF-8 ({e})")
                continue
            if line.strip():
                yield Row(pos, pos + 1, pos + 1, line, dict(extras))


def _read_jsonl(path: str, text_field: str, id_field: str | None, extra_fields: tuple[str, ...], start: int, bad: BadFn) -> Iterator[Row]:
    with open(path, "rb") as f:
        for pos, raw in enumerate(f):
            if pos < start or not raw.strip():
                continue
            line = pos + 1
            try:
                record = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as e:
                bad(pos, line, f"malformed JSON ({e})")
                continue
            if not isinstance(record, dict):
                bad(pos, line, f"expected a JSON object, got {type(record).__name__}")
                continue
            row = _make_row(path, pos, line, record, text_field, id_field, extra_fields, bad)
            if row is not None:
                yield row


def _read_csv(path: str, text_field: str, id_field: str | None, extra_fields: tuple[str, ...], start: int, bad: BadFn) -> Iterator[Row]:
    delimiter = "\t" if path.lower().endswith(".tsv") else ","
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter=delimiter, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise DataError(f"{path}: line 1: malformed CSV header ({e})") from None
        columns = {name: i for i, name in enumerate(header)}
        for name in (text_field,) + ((id_field,) if id_field else ()):
            if name not in columns:
                raise DataError(f"{path}: line 1: missing field {name!r} in the CSV header "
                                f"(columns: {', '.join(header)})")
        prev = reader.line_num  # physical line of the header's end
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as e:  # cannot resynchronise inside a text stream
                raise DataError(f"{path}: line {prev + 1}: not UTF-8 ({e})") from None
            except csv.Error as e:
                line = prev + 1
                prev = reader.line_num
                bad(line - 1, line, f"malformed CSV ({e})")
                continue
            line, prev = prev + 1, reader.line_num
            pos = line - 1
            if pos < start or not values:
                continue
            if len(values) != len(header):
                bad(pos, line, f"expected {len(header)} columns, got {len(values)}")
                continue
            record = dict(zip(header, values))
            row = _make_row(path, pos, line, record, text_field, id_field, extra_fields, bad)
            if row is not None:
                yield row


def _make_row(path: str, pos: int, line: int, record: dict[str, Any], text_field: str, id_field: str | None,
              extra_fields: tuple[str, ...], bad: BadFn) -> Row | None:
    if text_field not in record:
        raise DataError(f"{path}: line {line}: missing field {text_field!r}")
    text = record[text_field]
    if not isinstance(text, str):
        bad(pos, line, f"field {text_field!r} is {type(text).__name__}, not a string")
        return None
    if id_field is None:
        ident = line
    elif id_field in record:
        ident = record[id_field]
    else:
        raise DataError(f"{path}: line {line}: missing field {id_field!r}")
    return Row(pos, line, ident, text, {k: record.get(k) for k in extra_fields})


# --------------------------------------------------------------------------- Parquet


def _read_parquet(path: str, text_field: str, id_field: str | None, extra_fields: tuple[str, ...], start: int, bad: BadFn) -> Iterator[Row]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    names = pf.schema_arrow.names
    for name in (text_field,) + ((id_field,) if id_field else ()):
        if name not in names:
            raise DataError(f"{path}: missing field {name!r} (columns: {', '.join(names)})")
    wanted = [text_field] + ([id_field] if id_field else []) + [c for c in extra_fields if c in names]
    columns = list(dict.fromkeys(wanted))
    pos = 0
    for group in range(pf.num_row_groups):
        group_rows = pf.metadata.row_group(group).num_rows
        if pos + group_rows <= start:  # resuming: whole row groups are skipped unread
            pos += group_rows
            continue
        for batch in pf.iter_batches(batch_size=4096, row_groups=[group], columns=columns):
            data = batch.to_pydict()
            for i in range(batch.num_rows):
                p = pos + i
                if p < start:
                    continue
                text = data[text_field][i]
                if not isinstance(text, str):
                    bad(p, p + 1, f"field {text_field!r} is {type(text).__name__}, not a string")
                    continue
                ident = data[id_field][i] if id_field else p + 1
                if id_field and ident is None:
                    bad(p, p + 1, f"field {id_field!r} is null")
                    continue
                extras = {k: (data[k][i] if k in data else None) for k in extra_fields}
                yield Row(p, p + 1, ident, text, extras)
            pos += batch.num_rows


# --------------------------------------------------------------------------- ids


def has_field(path: str | os.PathLike[str], name: str, fmt: str | None = None) -> bool:
    """Whether the first record (or the header/schema) has field ``name``."""
    fmt = detect_format(path, fmt)
    if fmt == "text":
        return False
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return name in pq.ParquetFile(path).schema_arrow.names
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        if fmt == "csv":
            delimiter = "\t" if os.fspath(path).lower().endswith(".tsv") else ","
            header = next(csv.reader(f, delimiter=delimiter), [])
            return name in header
        for raw in f:
            if raw.strip():
                try:
                    record = json.loads(raw)
                except ValueError:
                    return False
                return isinstance(record, dict) and name in record
    return False


def sample_dataset() -> Path:
    """Path of the shipped sample: 300 food and drink captions (fields id, text, items)."""
    from importlib import resources

    return Path(str(resources.files("llamabatch.data").joinpath("captions.jsonl")))
