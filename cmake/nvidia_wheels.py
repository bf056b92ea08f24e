#!/usr/bin/env python3
"""Find cuBLAS for a CUDA build in NVIDIA's PyPI wheels, fetching the wheel when needed.

Not every CUDA toolkit carries cuBLAS (a bare nvcc install does not); NVIDIA's
wheels on PyPI do: ``nvidia-cublas`` for CUDA 13, ``nvidia-cublas-cu12`` for
CUDA 12. cmake/cuda.cmake runs this script when the toolkit has no cuBLAS. It
looks, in order, in

1. the Python environment running it (the ``cuda`` extra installs the wheel
   there; under ``--no-build-isolation`` that is the user's environment);
2. llamabatch's cache (``~/.cache/llamabatch/cuda``, or ``$LLAMABATCH_CACHE/cuda``),
   where an earlier build unpacked it;
3. PyPI: ``pip download`` the wheel matching the toolkit (same major.minor when
   one exists, else the same major) and unpack its headers and libraries into
   that cache, once per machine.

It prints CMake ``set()`` lines: the include folder and the two versioned
library files (the wheels ship no unversioned ``libcublas.so`` link).

Usage: python cmake/nvidia_wheels.py --cuda-version 13.0.88 [--cache DIR]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def layout(major: int) -> tuple[str, str]:
    """(PyPI package, folder of the library inside site-packages) for a CUDA major version."""
    if major >= 13:
        return "nvidia-cublas", f"nvidia/cu{major}"
    return f"nvidia-cublas-cu{major}", "nvidia/cublas"


def library_files(root: Path, major: int) -> dict[str, Path] | None:
    """The include folder and libraries under root (a site-packages folder or the cache), if complete."""
    _, sub = layout(major)
    base = root / sub
    found = {
        "include": base / "include",
        "cublas": base / "lib" / f"libcublas.so.{major}",
        "cublasLt": base / "lib" / f"libcublasLt.so.{major}",
    }
    if (found["include"] / "cublas_v2.h").is_file() and found["cublas"].is_file() and found["cublasLt"].is_file():
        return found
    return None


def cache_root(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    root = os.environ.get("LLAMABATCH_CACHE")
    if root:
        return Path(root).expanduser() / "cuda"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "llamabatch" / "cuda"


def download(major: int, minor: int, dest: Path) -> Path:
    """Downloads the cuBLAS wheel for this toolkit into dest; returns the wheel file."""
    package, _ = layout(major)
    # cuBLAS minor releases follow the toolkit's (12.4 -> 12.4.x); its headers
    # include the toolkit's, so prefer the same minor and fall back to the major.
    specs = [f"{package}=={major}.{minor}.*", f"{package}>={major},<{major + 1}"]
    errors = []
    for spec in specs:
        with tempfile.TemporaryDirectory(dir=dest) as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                   "--disable-pip-version-check", "-d", tmp, spec]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            wheels = sorted(Path(tmp).glob("*.whl"))
            if proc.returncode == 0 and wheels:
                target = dest / wheels[0].name
                shutil.move(str(wheels[0]), target)
                return target
            errors.append(f"{spec}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
    raise SystemExit("could not download cuBLAS from PyPI (" + "; ".join(errors) + "); install a CUDA toolkit "
                     "with cuBLAS, or `pip install " + package + "` and build with --no-build-isolation")


def unpack(wheel: Path, major: int, dest: Path) -> None:
    """Extracts only the headers and the libraries the build links."""
    _, sub = layout(major)
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.startswith(sub + "/include/") or name.startswith(sub + "/lib/libcublas"):
                zf.extract(name, dest)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cuda-version", required=True, help="the toolkit's version, e.g. 13.0.88")
    ap.add_argument("--cache", help="where to unpack the wheel (default: llamabatch's cache)")
    ap.add_argument("--no-download", action="store_true", help="only look, never fetch")
    args = ap.parse_args()
    parts = args.cuda_version.split(".")
    major, minor = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0

    found = None
    where = ""
    for entry in sys.path:
        if entry and Path(entry).is_dir():
            found = library_files(Path(entry), major)
            if found:
                where = f"installed wheel in {entry}"
                break
    if not found:
        unpacked = cache_root(args.cache) / f"cublas-cu{major}"
        found = library_files(unpacked, major)
        where = f"cached wheel in {unpacked}"
        if not found and not args.no_download:
            unpacked.mkdir(parents=True, exist_ok=True)
            wheel = download(major, minor, unpacked.parent)
            unpack(wheel, major, unpacked)
            wheel.unlink()
            found = library_files(unpacked, major)
            where = f"{wheel.name}, unpacked in {unpacked}"
    if not found:
        raise SystemExit(f"no cuBLAS for CUDA {major} found in this Python environment or in the cache")
    print(f'set(LLAMABATCH_CUBLAS_FROM "{where}")')
    print(f'set(LLAMABATCH_CUBLAS_INCLUDE_DIR "{found["include"].as_posix()}")')
    print(f'set(LLAMABATCH_CUBLAS_LIBRARY "{found["cublas"].as_posix()}")')
    print(f'set(LLAMABATCH_CUBLASLT_LIBRARY "{found["cublasLt"].as_posix()}")')


if __name__ == "__main__":
    main()
