"""The C++ package, end to end: llamabatch's core used from C++ with no Python.

A plain CMake build of the repository (not scikit-build) installs the static
core, its headers, llama.cpp's static libraries and the CMake package configs,
and registers ctest tests (examples/CMakeLists.txt, tests/cpp/CMakeLists.txt):
install into a prefix, build examples/ as a separate project with
find_package(llamabatch), run that example on a real model, and run
tests/cpp/core_check.cpp against the core, once plainly and once under
AddressSanitizer + UBSan with leak detection on (a sanitizer report fails it).  This test does exactly what a C++ user
(or CI) would: configure, build, ctest.

The build folder persists under build/cpp-package (git-ignored), so only the
first run pays for llama.cpp's build (a few minutes); later runs are
incremental.  No timeout is imposed: a clean build is slow on small machines.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llamabatch import models

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "build" / "cpp-package"
# The example's last line (examples/embed_texts.cpp): n_seq_max = 2, so the
# 5 texts stream through the engine in 3 decodes.
EXAMPLE_LINE = re.compile(r"embedded 5 texts in (\d+) decodes")


def _run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )


def _tail(text: str, n: int = 80) -> str:
    return "\n".join(text.splitlines()[-n:])


def _cache_value(cache: Path, key: str) -> str | None:
    for line in cache.read_text(errors="replace").splitlines():
        if line.startswith(key + ":"):
            return line.split("=", 1)[1]
    return None


def _drop_stale_build(generator: str | None) -> None:
    """A build folder made by another checkout or generator cannot be reused."""
    cache = BUILD / "CMakeCache.txt"
    if not cache.is_file():
        return
    home = _cache_value(cache, "CMAKE_HOME_DIRECTORY")
    used = _cache_value(cache, "CMAKE_GENERATOR")
    same_home = home is not None and Path(home).resolve() == REPO
    if generator is None:
        stale_generator = used == "Ninja"  # ninja has gone; CMake's default is not Ninja
    else:
        stale_generator = used != generator
    if not same_home or stale_generator:
        shutil.rmtree(BUILD)


def test_cpp_package_builds_installs_and_runs() -> None:
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake not found on PATH: the C++ package cannot be built")
    ctest = shutil.which("ctest", path=str(Path(cmake).parent)) or shutil.which("ctest")
    assert ctest is not None, f"cmake is at {cmake} but its ctest was not found"

    model = models.fetch("all-minilm-l6-v2", quiet=True)
    gen_model = models.fetch(models.DEFAULT_GENERATION_MODEL, quiet=True)
    generator = "Ninja" if shutil.which("ninja") else None
    _drop_stale_build(generator)

    configure = [cmake, "-S", str(REPO), "-B", str(BUILD), "-DCMAKE_BUILD_TYPE=Release"]
    configure.append(f"-DPython_EXECUTABLE={sys.executable}")
    if generator is not None:
        configure += ["-G", generator]
    result = _run(configure)
    assert result.returncode == 0, f"cmake configure failed:\n{_tail(result.stdout)}"

    jobs = str(os.cpu_count() or 2)
    result = _run([cmake, "--build", str(BUILD), "-j", jobs])
    assert result.returncode == 0, f"cmake --build failed:\n{_tail(result.stdout)}"

    # -V: ctest shows the passing tests' output too, the example's included.
    env = dict(os.environ, LLAMABATCH_TEST_MODEL=str(model), LLAMABATCH_TEST_GEN_MODEL=str(gen_model))
    result = _run([ctest, "--test-dir", str(BUILD), "--output-on-failure", "-V"], env=env)
    assert result.returncode == 0, f"ctest failed:\n{_tail(result.stdout, 200)}"
    assert "100% tests passed" in result.stdout, _tail(result.stdout)
    # core_check: the core from C++ (batches, engine, embeddings, generation, bad input);
    # core_check_sanitized: the same under AddressSanitizer + UBSan with leak detection;
    # ggml_patches_check: the kernels vendor/patches/ changes, against double-precision references.
    for name in ("package_install", "package_example_build", "package_example_run", "core_check",
                 "core_check_sanitized", "ggml_patches_check"):
        assert re.search(rf"Test\s+#\d+: {name} \.+\s+Passed", result.stdout), (
            f"ctest did not run {name}:\n{_tail(result.stdout)}"
        )

    match = EXAMPLE_LINE.search(result.stdout)
    assert match is not None, f"no 'embedded 5 texts in N decodes' line:\n{_tail(result.stdout)}"
    assert match.group(1) == "3", match.group(0)
