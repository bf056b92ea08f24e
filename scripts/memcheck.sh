#!/usr/bin/env bash
# valgrind memcheck on the C++ example (examples/embed_texts.cpp) and the core
# checks under ASan + UBSan with leak detection, from a plain CMake build.
#
#   bash scripts/memcheck.sh
#
# valgrind 3.19 cannot decode AVX-512, so this build is made with
# GGML_NATIVE=OFF (AVX2) in its own folder, build/memcheck. Definite leaks and
# invalid reads or writes fail the run (tests/cpp/run_check.cmake).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python}"
BUILD=build/memcheck
export LLAMABATCH_TEST_MODEL="$("$PYTHON" -m llamabatch.models path all-minilm-l6-v2)"
export LLAMABATCH_TEST_GEN_MODEL="$("$PYTHON" -m llamabatch.models path smollm2-135m-instruct)"

cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGGML_NATIVE=OFF \
  -DPython_EXECUTABLE="$(command -v "$PYTHON")" $(command -v ninja >/dev/null && echo -G Ninja)
cmake --build "$BUILD" -j "$(nproc)" --target embed_texts core_check_sanitized
ctest --test-dir "$BUILD" -R 'example_valgrind|core_check_sanitized' --output-on-failure -V
