#!/usr/bin/env python3
"""Put the pinned llama.cpp tree into vendor/llama.cpp/.

The tree comes from a registry source distribution (see llama_cpp.pin): it is
downloaded once per machine with ``pip download``, checked against the pinned
sha256, and only the parts that the build and the model converter need are
extracted.  The build runs this script by itself when the tree is missing, so a
plain ``pip install .`` needs no other step.

The patches in vendor/patches/ (unified diffs against the pinned tree, applied in
name order) are applied as the tree is extracted; each says in its own comments
what it changes and why, and vendor/patches/README.md lists them with the tests
that prove them. The stamp file names the pin and every patch's sha256, so editing
a patch re-extracts the tree at the next build. A patch that no longer applies
stops the build with the file and line of the hunk that failed.

Usage: python vendor/fetch_llama_cpp.py [--dest DIR] [--sdist FILE]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Callable, Sequence

HERE = Path(__file__).resolve().parent
PIN_FILE = HERE / "llama_cpp.pin"
PATCH_DIR = HERE / "patches"
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


def our_patches() -> list[Path]:
    """vendor/patches/*.patch in the order they apply."""
    return sorted(PATCH_DIR.glob("*.patch"))


def stamp_text(pin: dict[str, str], patches: Sequence[Path] = ()) -> str:
    lines = [f"{pin['package']}=={pin['version']} {pin['sha256']}"]
    lines += [f"patch {p.name} {sha256_of(p)}" for p in patches]
    return "\n".join(lines) + "\n"


_HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def apply_patch(tree: Path, patch: Path) -> None:
    """Apply a unified diff (paths as a/FILE, b/FILE under ``tree``) exactly: every
    hunk's context must match the file at the line the hunk names, or SystemExit."""
    lines = patch.read_text(encoding="utf-8").splitlines(keepends=True)
    i = 0
    while i < len(lines):
        if not (lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ ")):
            i += 1
            continue
        name = lines[i + 1][4:].split("\t")[0].strip()
        name = name[2:] if name.startswith("b/") else name
        target = tree / name
        if not target.is_file():
            raise SystemExit(f"{patch.name}: {name} is not in the pinned tree")
        with open(target, encoding="utf-8", newline="") as f:
            source = f.read().splitlines(keepends=True)
        out: list[str] = []
        done = 0  # lines of source already copied or replaced
        i += 2
        while i < len(lines) and lines[i].startswith("@@"):
            m = _HUNK.match(lines[i])
            if not m:
                raise SystemExit(f"{patch.name}: cannot read the hunk header {lines[i].strip()!r}")
            old_count = 1 if m.group(2) is None else int(m.group(2))
            new_count = 1 if m.group(4) is None else int(m.group(4))
            start = int(m.group(1)) - (1 if old_count else 0)
            old: list[str] = []
            new: list[str] = []
            i += 1
            # The header's counts say where the hunk ends: a next file's "--- a/..."
            # line would otherwise read as a removed line.
            while i < len(lines) and (len(old) < old_count or len(new) < new_count or lines[i].startswith("\\")):
                tag, text = lines[i][0], lines[i][1:]
                if tag not in " -+\\":
                    raise SystemExit(f"{patch.name}: the hunk at line {start + 1} of {name} ends early")
                if tag in " -":
                    old.append(text)
                if tag in " +":
                    new.append(text)
                i += 1
            if start < done or source[start:start + len(old)] != old:
                raise SystemExit(f"{patch.name}: the hunk at line {start + 1} of {name} does not match the "
                                 "pinned tree (was the pin changed? update the patch with it)")
            out += source[done:start] + new
            done = start + len(old)
        out += source[done:]
        with open(target, "w", encoding="utf-8", newline="") as f:
            f.write("".join(out))


def extract(sdist: Path, dest: Path, pin: dict[str, str], keep: Callable[[str], bool] = wanted,
            patches: Sequence[Path] = ()) -> None:
    """Extract the files of the sdist's llama.cpp tree that ``keep`` accepts (by path in the tree),
    then apply ``patches`` in order."""
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
        for patch in patches:
            apply_patch(staging, patch)
        (staging / STAMP_NAME).write_text(stamp_text(pin, patches))
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(staging, dest)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def is_current(dest: Path, pin: dict[str, str], patches: Sequence[Path] = ()) -> bool:
    """Whether ``dest`` holds the pinned tree with exactly ``patches`` applied."""
    stamp = dest / STAMP_NAME
    return stamp.exists() and stamp.read_text() == stamp_text(pin, patches)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=HERE / "llama.cpp")
    parser.add_argument("--sdist", type=Path, help="use this downloaded sdist instead of pip")
    args = parser.parse_args(argv)
    pin = read_pin()
    dest = args.dest.resolve()
    patches = our_patches()
    if is_current(dest, pin, patches):
        return 0
    if args.sdist:
        sdist = args.sdist
        if sha256_of(sdist) != pin["sha256"]:
            raise SystemExit(f"{sdist}: sha256 does not match the pin {pin['sha256']}")
    else:
        sdist = download_sdist(pin)
    dest.parent.mkdir(parents=True, exist_ok=True)
    extract(sdist, dest, pin, patches=patches)
    applied = f", with {', '.join(p.name for p in patches)}" if patches else ""
    print(f"llamabatch: llama.cpp from {sdist.name} in {dest}{applied}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
