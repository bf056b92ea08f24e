"""The test suite again, against an extension built with AddressSanitizer + UBSan.

scripts/sanitized_tests.sh builds the package with LLAMABATCH_SANITIZE=ON into
build/asan-site (its own build folder, build/asan, persistent), preloads the
ASan runtime and runs pytest with that build first on the path: every test but
Ray's (its daemons do not start under an ASan preload), the C++ package's
(sanitized there by its own target), the RSS bounds (ASan's shadow memory makes
them meaningless) and this file. Any sanitizer report aborts the run with exit
code 23, so a pass means no invalid access, no use-after-free and no undefined
behaviour in our C++ on every path those tests take. Only our code is
instrumented, so once built it takes about a minute (135 tests in 68 s here).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "sanitized_tests.sh"
SANITIZER_REPORT = 23  # ASAN_OPTIONS / UBSAN_OPTIONS exitcode in the script


def _has_asan() -> bool:
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        return False
    lib = subprocess.run([cxx, "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    return os.path.isabs(lib) and os.path.exists(lib)


def test_core_tests_pass_under_address_and_undefined_behaviour_sanitizers() -> None:
    if not _has_asan():
        pytest.skip("the C++ compiler has no AddressSanitizer runtime (libasan.so)")
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(SCRIPT)], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail = "\n".join(proc.stdout.splitlines()[-80:])
    assert proc.returncode != SANITIZER_REPORT, f"a sanitizer reported an error:\n{tail}"
    assert proc.returncode == 0, f"the sanitized run failed (exit {proc.returncode}):\n{tail}"
    assert "sanitized_tests: testing " in proc.stdout and "build/asan-site" in proc.stdout, tail
    assert " passed" in proc.stdout and " failed" not in proc.stdout, tail
    assert "AddressSanitizer" not in proc.stdout and "runtime error:" not in proc.stdout, tail
