#!/usr/bin/env bash
# The Python test suite against an extension whose core and bindings are built
# with AddressSanitizer + UndefinedBehaviorSanitizer (LLAMABATCH_SANITIZE=ON).
#
#   bash scripts/sanitized_tests.sh                 # the default subset (below)
#   bash scripts/sanitized_tests.sh tests/test_batch.py -k view
#
# The sanitized package is installed into build/asan-site (not over the normal
# install) from its own build folder, build/asan; Python loads it first through
# PYTHONPATH. llama.cpp itself is not instrumented: a memory error in our calls
# into it still shows, its own are upstream's. The ASan runtime must be the first
# library in the process, hence LD_PRELOAD. Leak detection is off here because
# CPython frees little at exit by design; leaks in the core are checked by the C++
# run instead (tests/cpp: core_check_sanitized, leak detection on).
#
# Any ASan or UBSan report aborts the test process (halt_on_error), so a clean
# run is exactly a passing pytest run.
set -euo pipefail
cd "$(dirname "$0")/.."

SITE="$PWD/build/asan-site"
PYTHON="${PYTHON:-python}"

# Left out by default: the Ray tests (Ray starts its own C++ daemons, which do
# not run under an ASan preload), the C++ package build (it has its own
# sanitized target) and the resident-memory bounds (ASan's shadow memory and
# quarantine make RSS meaningless), the CUDA configure check (CMake and
# nvcc run there, none of our code) and the portable build's tests (they build
# and run their own, unsanitized wheel, and ASan's shadow memory cannot be
# mapped under qemu-user). Everything else runs.
DEFAULT_TESTS=(tests
  --ignore=tests/test_ray.py
  --ignore=tests/test_cuda_configure.py
  --ignore=tests/test_cpp_package.py
  --ignore=tests/test_memory.py
  --ignore=tests/test_portable.py
  --ignore=tests/test_sanitized.py)

"$PYTHON" -m pip install . --no-deps --upgrade --quiet --target "$SITE" \
  -C build-dir=build/asan \
  -C cmake.define.LLAMABATCH_SANITIZE=ON

LIBASAN="$(${CXX:-g++} -print-file-name=libasan.so)"
if [[ ! -e "$LIBASAN" ]]; then
  echo "sanitized_tests: the compiler has no ASan runtime (libasan.so); install it (gcc's libasan)" >&2
  exit 2
fi

export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
# libstdc++ too: ASan resolves the real __cxa_throw when it starts, and python
# itself does not link libstdc++, so without it the first C++ exception thrown
# in the extension stops the process ("CHECK failed ... real___cxa_throw").
LIBSTDCXX="$(${CXX:-g++} -print-file-name=libstdc++.so)"
export LD_PRELOAD="$LIBASAN $LIBSTDCXX"
# exitcode 23: a report is told apart from an ordinary test failure.
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=23:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=23"
export GGML_NO_BACKTRACE=1

# Proof that the sanitized build is the one being tested.
"$PYTHON" - <<'EOF'
import llamabatch._core as core, os, sys
site = os.environ["PYTHONPATH"].split(":")[0]
if not core.__file__.startswith(site):
    sys.exit(f"sanitized_tests: llamabatch._core came from {core.__file__}, not from {site}")
with open(core.__file__, "rb") as f:
    if b"__asan_report" not in f.read():
        sys.exit(f"sanitized_tests: {core.__file__} is not built with AddressSanitizer")
print(f"sanitized_tests: testing {core.__file__}")
EOF

if [[ $# -eq 0 ]]; then
  set -- "${DEFAULT_TESTS[@]}"
fi
exec "$PYTHON" -m pytest -p no:cacheprovider -q "$@"
