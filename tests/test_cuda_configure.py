"""The CUDA variant configures on a machine without a GPU (CMake only: seconds, no compile).

A full CUDA build takes tens of CPU-minutes, so CI checks what goes wrong first
and most often: the configure step with the options README documents, against
the nvcc installed here and cuBLAS from the toolkit or NVIDIA's wheel. Skipped,
with the reason, where there is no nvcc.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _nvcc() -> str | None:
    found = shutil.which("nvcc")
    if found:
        return found
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if home and (Path(home) / "bin" / "nvcc").is_file():
            return str(Path(home) / "bin" / "nvcc")
    return None


NVCC = _nvcc()
pytestmark = pytest.mark.skipif(NVCC is None, reason="no nvcc on this machine (CUDA toolkit not installed)")


def _cmake_tools() -> tuple[str, str]:
    cmake = shutil.which("cmake")
    ninja = shutil.which("ninja")
    if cmake is None or ninja is None:
        pytest.skip("cmake and ninja are needed to configure")
    return cmake, ninja


def _configure(build: Path, *defines: str) -> tuple[str, dict[str, str]]:
    cmake, ninja = _cmake_tools()
    import nanobind

    env = dict(os.environ)
    env["PATH"] = f"{Path(NVCC).parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = [cmake, "-S", str(ROOT), "-B", str(build), "-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}",
           "-DSKBUILD=ON", f"-DPython_EXECUTABLE={sys.executable}", f"-Dnanobind_DIR={nanobind.cmake_dir()}",
           "-DCMAKE_BUILD_TYPE=Release", *defines]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    cache = {}
    for line in (build / "CMakeCache.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z_0-9]+):[A-Z]+=(.*)$", line)
        if m:
            cache[m.group(1)] = m.group(2)
    return proc.stdout, cache


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, str]]:
    build = tmp_path_factory.mktemp("cuda-configure")
    out, cache = _configure(build, "-DLLAMABATCH_CUDA=ON")
    return build, out, cache


def test_default_architectures_cover_turing_to_blackwell_without_native(configured) -> None:
    _, out, cache = configured
    archs = cache["CMAKE_CUDA_ARCHITECTURES"].split(";")
    assert "native" not in archs
    for arch in ("75-real", "80-real", "86-real", "89-real", "90-real"):
        assert arch in archs
    assert any(a.endswith("-virtual") for a in archs), "no PTX for GPUs newer than the toolkit"


def test_no_driver_and_no_nccl_dependency(configured) -> None:
    build, _, cache = configured
    assert cache["GGML_CUDA"] == "ON" and cache["GGML_CUDA_NO_VMM"] == "ON" and cache["GGML_CUDA_NCCL"] == "OFF"
    link = _core_link_line(build)
    assert "libcublas.so" in link and "cudart" in link
    assert not re.search(r"libcuda\.so|-lcuda\b|libnccl", link), link


def test_cublas_is_found_without_paths_from_the_user(configured) -> None:
    _, out, cache = configured
    assert "llamabatch: cuBLAS from" in out
    assert Path(cache["CUDA_cublas_LIBRARY"]).is_file() and Path(cache["CUDA_cublasLt_LIBRARY"]).is_file()


def test_the_module_finds_cuda_through_its_rpath(configured) -> None:
    build, _, cache = configured
    link = _core_link_line(build)
    major = re.search(r"(\d+)", cache["CUDA_cublas_LIBRARY"].rsplit(".so.", 1)[1]).group(1)
    wheel_dir = f"$ORIGIN/../nvidia/cu{major}/lib" if int(major) >= 13 else "$ORIGIN/../nvidia/cublas/lib"
    assert wheel_dir in link.replace("\\$", "$"), link


def test_one_architecture_narrows_the_list_and_ggml_cuda_on_works_too(configured) -> None:
    # Last in this file: it reconfigures the shared build folder (seconds, as the
    # compiler checks are cached; a fresh folder would take minutes on 2 cores).
    build, _, _ = configured
    _, cache = _configure(build, "-DLLAMABATCH_CUDA=ON", "-DCMAKE_CUDA_ARCHITECTURES=90-real")
    assert cache["CMAKE_CUDA_ARCHITECTURES"] == "90-real"
    _, cache = _configure(build, "-DLLAMABATCH_CUDA=OFF", "-DGGML_CUDA=ON", "-DCMAKE_CUDA_ARCHITECTURES=80-real")
    assert cache["CMAKE_CUDA_ARCHITECTURES"] == "80-real"
    assert cache["GGML_CUDA_NO_VMM"] == "ON" and cache["GGML_CUDA_NCCL"] == "OFF"
    assert "libcuda.so" not in _core_link_line(build)


def _core_link_line(build: Path) -> str:
    ninja = (build / "build.ninja").read_text()
    blocks = [b for b in ninja.split("\nbuild ") if b.split(":", 1)[0].strip().startswith("_core.")]
    assert blocks, "no link step for the _core module in build.ninja"
    return blocks[0]
