#!/usr/bin/env bash
# The one-shot GPU check: build the CUDA module for this machine's GPU, run the
# GPU tests, measure, and write a JSON report and a short summary.
#
#   bash scripts/gpu_check.sh embed      # build + GPU tests + embedding report      (run 1)
#   bash scripts/gpu_check.sh receive    # nothing: a run that only brings a model piece
#   bash scripts/gpu_check.sh generate   # join SmolLM2, build llama-batched-bench, generation report
#   bash scripts/gpu_check.sh dry-run    # on a CPU machine: configure for a made-up GPU, report on the CPU
#
# Made for the lent GPU machine (NVIDIA H200, 16 cores, CUDA 13.0, Python 3.12 with
# torch, sentence-transformers, nanobind, scikit-build-core, CMake, ninja, the
# NVIDIA wheels; no network). What it needs travels under build/gpu-carry/
# (python scripts/gpu_pack.py makes it and prints the runs). Results go to $OUT
# when the runner sets it, else build/gpu-check/. GPU_ARCH overrides the
# architecture (default: native, the GPU present).
set -euo pipefail
cd "$(dirname "$0")/.."
stage=${1:-embed}
carry=build/gpu-carry
out=${OUT:-build/gpu-check}
tree=build/llama.cpp-gpu
build=build/gpu
mkdir -p "$out"
exec > >(tee -a "$out/gpu_check.log") 2>&1
say() { printf '[gpu_check %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

unpack_tree() {
  if [ ! -f "$tree/.llamabatch-pin" ]; then
    [ -f "$carry/llama.cpp.tar.gz" ] || { say "missing $carry/llama.cpp.tar.gz: run scripts/gpu_pack.py and carry it"; exit 2; }
    rm -rf "$tree" && mkdir -p build && tar xzf "$carry/llama.cpp.tar.gz" -C build && mv build/llama.cpp "$tree"
  fi
}

# One build folder for the module and llama-batched-bench, so ggml's CUDA code
# compiles once: the tools are configured too (not built until asked for).
build_module() {
  local arch=$1 extra=${2:-}
  say "building the CUDA module for CUDA architecture $arch"
  local start=$SECONDS
  python -m pip install --no-build-isolation --no-deps --no-index . -C build-dir=$build \
    -C cmake.define.LLAMABATCH_CUDA=ON -C cmake.define.CMAKE_CUDA_ARCHITECTURES="$arch" \
    -C cmake.define.LLAMABATCH_LLAMA_CPP_DIR="$PWD/$tree" -C cmake.define.LLAMABATCH_LLAMA_TOOLS=ON \
    -C cmake.define.LLAMA_USE_PREBUILT_UI=OFF $extra
  echo "{\"build_seconds\": $((SECONDS - start)), \"cuda_architectures\": \"$arch\"}" > "$out/build.json"
  say "module built in $((SECONDS - start)) s"
}

join_smollm() {
  read -r name sha size < "$carry/smollm.manifest"
  local dest=build/models/$name
  mkdir -p build/models
  cat "$carry"/smollm/part-* > "$dest.tmp"
  echo "$sha  $dest.tmp" | sha256sum -c --quiet || { say "SmolLM2 pieces do not join to the pinned file"; exit 2; }
  mv "$dest.tmp" "$dest"
  echo "$dest"
}

case "$stage" in
  embed)
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
    nvcc --version | tail -2
    unpack_tree
    build_module "${GPU_ARCH:-native}"
    minilm=$(ls $carry/minilm/*.gguf)
    say "GPU tests"
    LLAMABATCH_TEST_MINILM="$minilm" python -m pytest -m gpu tests/test_gpu.py -q -p no:cacheprovider -k "not generat" \
      --junitxml="$out/gpu_tests.xml" || say "GPU tests failed (see above); the report still runs"
    say "embedding report"
    python scripts/gpu_report.py embed --minilm "$minilm" --st-folder $carry/minilm/st --out "$out"
    ;;
  receive)
    say "received: $(ls $carry/smollm/ 2>/dev/null | tr '\n' ' ')"
    ;;
  generate)
    smollm=$(join_smollm)
    say "building llama-batched-bench in $build"
    cmake --build $build --target llama-batched-bench
    LLAMABATCH_TEST_MINILM=$(ls $carry/minilm/*.gguf) LLAMABATCH_TEST_SMOLLM="$smollm" \
      python -m pytest -m gpu tests/test_gpu.py -q -p no:cacheprovider -k generat \
      --junitxml="$out/gpu_tests_generate.xml" || say "GPU generation tests failed"
    python scripts/gpu_report.py generate --smollm "$smollm" --batched-bench $build/bin/llama-batched-bench --out "$out"
    ;;
  dry-run)
    # No GPU here: configure (not compile: tens of CPU-minutes) for a made-up
    # GPU, then run the report on the CPU build that is installed, small.
    unpack_tree
    say "configure only, CUDA architecture ${GPU_ARCH:-90-real}"
    python - "$tree" "${GPU_ARCH:-90-real}" "$build-dry" <<'EOF'
import subprocess, sys, nanobind
tree, arch, build = sys.argv[1:]
subprocess.run(["cmake", "-S", ".", "-B", build, "-G", "Ninja", "-DSKBUILD=ON", "-DCMAKE_BUILD_TYPE=Release",
                f"-DPython_EXECUTABLE={sys.executable}", f"-Dnanobind_DIR={nanobind.cmake_dir()}",
                "-DLLAMABATCH_CUDA=ON", f"-DCMAKE_CUDA_ARCHITECTURES={arch}", f"-DLLAMABATCH_LLAMA_CPP_DIR={tree}",
                "-DLLAMABATCH_LLAMA_TOOLS=ON", "-DLLAMA_USE_PREBUILT_UI=OFF"], check=True)
EOF
    python scripts/gpu_report.py embed --minilm "$(python -m llamabatch.models path all-minilm-l6-v2)" \
      --st-folder $carry/minilm/st --out "$out" --texts 300 --rounds 1 --batches 512,1024
    python scripts/gpu_report.py generate --smollm "$(python -m llamabatch.models path smollm2-135m-instruct)" \
      --out "$out" --npl 1,4 --npp 32 --ntg 16
    ;;
  *) echo "usage: $0 embed|receive|generate|dry-run" >&2; exit 2 ;;
esac
say "done; results in $out"
