"""The cache folder: where models live, the lock that serialises fetches, the
stamps that say a file is verified, and small file helpers."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from .._files import atomic_write_bytes
from .catalogue import ModelEntry

try:  # POSIX only; on other systems concurrent fetches simply are not locked.
    import fcntl
except ImportError:  # pragma: no cover - not reached on Linux/macOS
    fcntl = None  # type: ignore[assignment]

_CHUNK = 1 << 20


def cache_dir() -> Path:
    """Where models and downloaded wheels live.

    ``$LLAMABATCH_CACHE`` wins so tests and shared machines can point
    elsewhere; otherwise the XDG convention, ``~/.cache/llamabatch``.
    """
    env = os.environ.get("LLAMABATCH_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "llamabatch"


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(f"llamabatch: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive flock so concurrent fetches (xdist, two users) queue.

    The lock file is never deleted: removing it would let a third process
    lock a fresh inode while the second still holds the old one.
    """
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _stamp_ok(target: Path, entry: ModelEntry) -> bool:
    """True when the stamp vouches for ``target`` without re-hashing it.

    Re-hashing 100+ MB on every call would make ``resolve()`` slow, so a file
    whose size and mtime still match the ones recorded when it was hashed is
    trusted.
    """
    try:
        stat = target.stat()
        stamp = json.loads(_stamp_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(stamp, dict)
        and stamp.get("sha256") == entry.sha256
        and stamp.get("size") == stat.st_size == entry.size
        and stamp.get("mtime_ns") == stat.st_mtime_ns
    )


def _write_stamp(target: Path, digest: str) -> None:
    stat = target.stat()
    data = {"sha256": digest, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    atomic_write_bytes(_stamp_path(target), (json.dumps(data) + "\n").encode())


def _cached_ok(target: Path, entry: ModelEntry, quiet: bool) -> bool:
    """Check a cached GGUF fully; delete it (and its stamp) if it is bad."""
    if _stamp_ok(target, entry):
        return True
    if not target.exists():
        return False
    size = target.stat().st_size
    digest = _sha256_file(target) if size == entry.size else None
    if digest == entry.sha256:
        _write_stamp(target, digest)
        return True
    _say(quiet, f"cached {target} is corrupt (size {size}, sha256 {digest}); rebuilding")
    _unlink(target)
    _unlink(_stamp_path(target))
    return False


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
