"""Durable, resumable output written in chunks.

While a run is going, finished rows live next to the output in
``OUTPUT.parts/``: one Parquet file per chunk (``part-000000.parquet`` ...)
and ``manifest.json``, which lists the chunks that are done, where in the input
each ends, and the settings of the run.  Every file is written under a
temporary name, fsynced, renamed into place, and the folder fsynced, so a
SIGKILL (or a power cut) at any moment leaves either the old or the new file,
never half of one.  A chunk counts as done only once the manifest names it; a
part written but not yet in the manifest is simply written again on resume.

At the end the chunks are assembled (again through a temporary name) into the
final OUTPUT, and only then is ``OUTPUT.parts/`` removed.  A run killed while
assembling or removing resumes by assembling again; the result is the same.

Resuming checks that the settings that shape the output (model, fields, chunk
size, batch size, generation options...) and the input file's size and
modification time are those of the checkpoint, and refuses otherwise.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

from ._files import atomic_path, fsync_dir

__all__ = ["Checkpoint", "CheckpointError", "atomic_path", "fsync_dir"]

MANIFEST = "manifest.json"
VERSION = 1


class CheckpointError(RuntimeError):
    """The output or checkpoint is in a state the options do not allow to go on from."""


def _write_json(dest: Path, data: Any) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")


class Checkpoint:
    """The chunks and manifest of one run writing ``output``.

    Args:
        output: the final output file.
        settings: everything that shapes the output; must match on resume.
        input_path: the input, whose size and mtime are recorded and checked.
        resume: go on from an existing checkpoint (or start if there is none).
        overwrite: discard an existing output and checkpoint.

    Raises:
        CheckpointError: the output or a checkpoint exists and neither
            ``resume`` nor ``overwrite`` is set; or the checkpoint was made with
            other settings or another input.
    """

    def __init__(self, output: str | os.PathLike[str], settings: dict[str, Any], *,
                 input_path: str | os.PathLike[str] | None = None,
                 resume: bool = False, overwrite: bool = False) -> None:
        if resume and overwrite:
            raise CheckpointError("--resume and --overwrite contradict each other: pass one")
        self.output = Path(output)
        self.parts_dir = self.output.with_name(self.output.name + ".parts")
        self.manifest_path = self.parts_dir / MANIFEST
        self.settings = json.loads(json.dumps(settings))  # as it will read back from JSON
        self.input_info = _file_info(input_path) if input_path is not None else None
        self.already_complete = False

        has_output = self.output.exists()
        has_parts = self.parts_dir.exists()
        if (has_output or has_parts) and not (resume or overwrite):
            what = f"{self.output}" if has_output else f"a checkpoint of {self.output} ({self.parts_dir})"
            raise CheckpointError(f"{what} exists: pass --resume to go on from it or --overwrite to replace it")
        if overwrite:
            self._remove_all()
            has_output = has_parts = False

        self.manifest: dict[str, Any]
        if has_parts and self.manifest_path.exists():
            self.manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
            self._check_compatible()
            # Writes cut short by a kill: chunks, and the final output while it was assembled.
            strays = [*self.parts_dir.glob(".*.tmp"), *self.output.parent.glob(f".{self.output.name}.*.tmp")]
            for stray in strays:
                stray.unlink(missing_ok=True)
        elif has_output:
            # The output exists and no checkpoint: it was completed by an earlier run.
            self.already_complete = True
            self.manifest = self._fresh_manifest()
        else:
            self.manifest = self._fresh_manifest()
            self.parts_dir.mkdir(parents=True, exist_ok=True)
            fsync_dir(self.parts_dir.parent)
            _write_json(self.manifest_path, self.manifest)

    # ------------------------------------------------------------ state
    @property
    def chunks(self) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = self.manifest["chunks"]
        return chunks

    @property
    def next_pos(self) -> int:
        """Input position (line or row index) where the next chunk begins."""
        return self.chunks[-1]["end"] if self.chunks else 0

    @property
    def rows_done(self) -> int:
        return sum(c["rows"] for c in self.chunks)

    @property
    def bad_done(self) -> int:
        return sum(c["bad"] for c in self.chunks)

    @property
    def input_done(self) -> bool:
        """True once the whole input has been read into chunks (only assembly is left)."""
        return bool(self.manifest.get("input_done"))

    def get(self, key: str, default: Any = None) -> Any:
        """A value recorded alongside the chunks (e.g. the id column's type)."""
        return self.manifest.get("extra", {}).get(key, default)

    def part_paths(self) -> list[Path]:
        return [self.parts_dir / c["file"] for c in self.chunks]

    # ------------------------------------------------------------ writing
    def add_chunk(self, write: Callable[[Path], None], *, rows: int, end: int, bad: int,
                  extra: dict[str, Any] | None = None) -> Path:
        """Writes the next chunk with ``write(tmp_path)`` and records it durably.

        ``end`` is the input position after the chunk's last record, ``bad``
        the count of records skipped inside it.
        """
        index = len(self.chunks)
        part = self.parts_dir / f"part-{index:06d}.parquet"
        with atomic_path(part) as tmp:
            write(tmp)
        self.chunks.append({"file": part.name, "rows": int(rows), "end": int(end), "bad": int(bad)})
        if extra:
            self.manifest.setdefault("extra", {}).update(extra)
        _write_json(self.manifest_path, self.manifest)
        return part

    def mark_input_done(self, end: int, bad: int) -> None:
        """Records that the input is exhausted (with bad records after the last chunk)."""
        self.manifest["input_done"] = True
        self.manifest["tail"] = {"end": int(end), "bad": int(bad)}
        _write_json(self.manifest_path, self.manifest)

    @property
    def tail_bad(self) -> int:
        return int(self.manifest.get("tail", {}).get("bad", 0)) if self.input_done else 0

    def finish(self, assemble: Callable[[Path], object] | None, *, sidecar: Path | None = None,
               assemble_sidecar: Callable[[Path, Path], object] | None = None) -> None:
        """Builds the final output from the chunks through a temporary name, then removes
        the checkpoint.  ``assemble(tmp)`` writes the output; with a sidecar,
        ``assemble_sidecar(tmp_output, tmp_sidecar)`` writes both at once (and
        ``assemble`` may be None)."""
        if sidecar is not None and assemble_sidecar is not None:
            with atomic_path(sidecar) as side_tmp, atomic_path(self.output) as tmp:
                assemble_sidecar(tmp, side_tmp)
        elif assemble is not None:
            with atomic_path(self.output) as tmp:
                assemble(tmp)
        else:
            raise ValueError("finish() needs assemble, or a sidecar and assemble_sidecar")
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        fsync_dir(self.output.parent)

    def discard_if_empty(self) -> None:
        """Removes a checkpoint that holds no chunk (a run that failed before its first
        checkpoint leaves nothing to resume, so nothing behind)."""
        if not self.chunks and not self.already_complete and self.parts_dir.exists():
            shutil.rmtree(self.parts_dir, ignore_errors=True)

    # ------------------------------------------------------------ helpers
    def _fresh_manifest(self) -> dict[str, Any]:
        return {"version": VERSION, "settings": self.settings, "input": self.input_info,
                "chunks": [], "input_done": False}

    def _check_compatible(self) -> None:
        m = self.manifest
        if m.get("version") != VERSION:
            raise CheckpointError(f"{self.manifest_path}: checkpoint format {m.get('version')} is not {VERSION}; "
                                  "pass --overwrite to start again")
        old = m.get("settings", {})
        diffs = [f"{k}: {old.get(k)!r} then, {self.settings.get(k)!r} now"
                 for k in sorted(set(old) | set(self.settings)) if old.get(k) != self.settings.get(k)]
        if diffs:
            raise CheckpointError("cannot resume: the checkpoint was made with other settings ("
                                  + "; ".join(diffs) + "); use the same options or pass --overwrite")
        if self.input_info is not None and m.get("input") and m["input"] != self.input_info:
            raise CheckpointError(f"cannot resume: the input changed since the checkpoint "
                                  f"({m['input']} then, {self.input_info} now); pass --overwrite to start again")

    def _remove_all(self) -> None:
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        self.output.unlink(missing_ok=True)


def _file_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    st = os.stat(path)
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
