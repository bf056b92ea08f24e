"""Writing files so that a crash or a second process never sees half of one.

One helper for the dataset checkpoints and the model cache alike: write to a
fresh temporary name beside the target, fsync it, rename it over the target
(atomic on POSIX), then fsync the folder so the rename survives a power cut.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "fsync_dir"]


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Makes a rename or unlink in ``path`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fresh_temp(dest: Path) -> Path:
    """A new empty file beside ``dest``, unique to this call, so that processes
    writing the same target never share a temporary file. Not ``mkstemp``: its
    0600 mode would make a shared cache unreadable to other users;
    ``open(..., "xb")`` honours the umask instead."""
    while True:
        path = dest.with_name(f".{dest.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            open(path, "xb").close()
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue
        return path


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yields a temporary path beside ``dest``; when the block ends without an
    error, fsyncs it, renames it to ``dest`` and fsyncs the folder. On an error
    the temporary file is removed and ``dest`` is untouched."""
    dest = Path(dest)
    tmp = _fresh_temp(dest)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(dest.parent)


def atomic_write_bytes(dest: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
