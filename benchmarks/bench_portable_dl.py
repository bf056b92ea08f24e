"""The design not taken, measured: ggml's dynamically loaded CPU backends (GGML_BACKEND_DL).

Builds the pinned llama.cpp tree the way llama.cpp's releases do (shared
libllama/libggml-base/libggml, one ``libggml-cpu-<variant>.so`` per CPU level,
``ggml_backend_load_best`` choosing at run time) from scratch with ccache off.
ggml's CMake builds all 14 x86 levels with it (they cannot be picked without
editing it), so besides the wall time of that, the compile seconds of the
shared libraries and of the five levels the portable build has are summed from
ninja's log; over 2 cores, half of that is what a five-level build would take.
Sizes: the stripped libraries a wheel would carry for those five, and zipped.
Compare with the portable build's figures in results/portable.json
(bench_portable.py).

    python benchmarks/bench_portable_dl.py --out portable_dl.json
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import _common

REPO = _common.HERE.parent
# ggml's names for the portable build's x86-64-v2, avx2, avx512, avx512-vnni and avx512-bf16
# (GGML_CPU_ALL_VARIANTS in ggml/src/CMakeLists.txt lists the same options for them).
FIVE = ["ggml-cpu-sse42", "ggml-cpu-haswell", "ggml-cpu-skylakex", "ggml-cpu-cascadelake", "ggml-cpu-zen4"]
SHARED = ["llama", "ggml", "ggml-base"]


def compile_seconds(build_dir: Path) -> dict[str, float]:
    """Seconds of compiling and linking per target, from ninja's log (start and end in ms)."""
    per_target: dict[str, float] = {}
    for line in (build_dir / ".ninja_log").read_text().splitlines()[1:]:
        start, end, _, output, _ = line.split("\t")
        target = output.split("CMakeFiles/")[1].split(".dir/")[0] if "CMakeFiles/" in output else Path(output).name
        per_target[target] = per_target.get(target, 0.0) + (int(end) - int(start)) / 1000
    return per_target


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="portable_dl.json")
    args = p.parse_args()
    tree = REPO / "vendor" / "llama.cpp"
    if not (tree / "CMakeLists.txt").is_file():
        sys.exit("vendor/llama.cpp is missing: build llamabatch once (it fetches the pinned tree)")
    work = Path(tempfile.mkdtemp(prefix="bench-dl-"))
    env = {**os.environ, "CCACHE_DISABLE": "1"}
    t0 = time.perf_counter()
    subprocess.run(["cmake", "-S", str(tree), "-B", str(work), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                    "-DBUILD_SHARED_LIBS=ON", "-DGGML_BACKEND_DL=ON", "-DGGML_CPU_ALL_VARIANTS=ON",
                    "-DGGML_NATIVE=OFF", "-DGGML_OPENMP=OFF", "-DLLAMA_BUILD_COMMON=OFF", "-DLLAMA_BUILD_TESTS=OFF",
                    "-DLLAMA_BUILD_TOOLS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=OFF",
                    "-DLLAMA_OPENSSL=OFF", "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_APP=OFF"],
                   check=True, env=env, capture_output=True)
    subprocess.run(["cmake", "--build", str(work), "--target", "llama"], check=True, env=env, capture_output=True)
    seconds = time.perf_counter() - t0
    per_target = compile_seconds(work)
    five_seconds = sum(v for k, v in per_target.items()
                       if k in SHARED + FIVE or any(k.startswith(f"lib{t}.so") for t in SHARED + FIVE))

    wanted = [f"lib{t}.so" for t in SHARED + FIVE]
    libs = sorted(p for p in work.rglob("*.so*") if p.is_file() and not p.is_symlink()
                  and any(p.name.startswith(w) for w in wanted))
    files = {}
    zipped = work / "libs.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as z:
        for lib in libs:
            stripped = work / "stripped" / lib.name
            stripped.parent.mkdir(exist_ok=True)
            shutil.copy2(lib, stripped)
            subprocess.run(["strip", "--strip-unneeded", str(stripped)], check=True)
            files[lib.name] = stripped.stat().st_size
            z.write(stripped, lib.name)
    data = {
        "machine": _common.machine(),
        "what": "llama.cpp built with GGML_BACKEND_DL for the portable build's five CPU levels; "
                "llamabatch's own bindings and core (about 0.6 MB) not included",
        "build_wall_s_all_14_levels": round(seconds, 1),
        "compile_s_by_target": {k: round(v, 1) for k, v in sorted(per_target.items())},
        "compile_s_shared_and_five_levels": round(five_seconds, 1),
        "estimated_wall_s_five_levels_2_cores": round(five_seconds / 2, 1),
        "stripped_bytes": files,
        "stripped_total_bytes": sum(files.values()),
        "zipped_bytes": zipped.stat().st_size,
    }
    print(f"built 14 levels in {seconds:.0f} s; shared libraries and five levels: {five_seconds:.0f} compile-s; "
          f"{sum(files.values()) / 1e6:.1f} MB stripped, "
          f"{zipped.stat().st_size / 1e6:.1f} MB zipped")
    print(f"wrote {_common.write_json(args.out, data)}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
