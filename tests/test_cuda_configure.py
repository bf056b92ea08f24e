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


def _configure(build: Path, *defines: str, gpus: Path | None = None,
               env_extra: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
    """Configures `build`; `gpus`: a folder whose fake nvidia-smi goes first on PATH."""
    cmake, ninja = _cmake_tools()
    import nanobind

    env = {k: v for k, v in os.environ.items() if k not in ("CUDAARCHS", "LLAMABATCH_CUDA_ARCHS_AUTO")}
    env.update(env_extra or {})
    env["PATH"] = f"{Path(NVCC).parent}{os.pathsep}{env.get('PATH', '')}"
    if gpus is not None:
        env["PATH"] = f"{gpus}{os.pathsep}{env['PATH']}"
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


def _fake_nvidia_smi(folder: Path, stdout: str, exit_code: int = 0) -> Path:
    """A folder holding an `nvidia-smi` that prints `stdout` and exits with `exit_code`."""
    if sys.platform == "win32":
        pytest.skip("the fake nvidia-smi is a shell script")
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "nvidia-smi"
    script.write_text(f"#!/bin/sh\nprintf '%s' '{stdout}'\nexit {exit_code}\n")
    script.chmod(0o755)
    return folder


def _archs_line(out: str) -> str:
    lines = [ln for ln in out.splitlines() if ln.startswith("-- llamabatch: CUDA architectures ")]
    assert len(lines) == 1, out[-4000:]
    return lines[0]


PORTABLE = "75-real;80-real;86-real;89-real;90-real"  # the start of the portable list


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, str]]:
    # A GPU-less machine with a driver-less nvidia-smi (exit 1), so that the
    # default is the portable list here and on machines with a GPU alike.
    build = tmp_path_factory.mktemp("cuda-configure")
    failing = _fake_nvidia_smi(tmp_path_factory.mktemp("smi-fails"), "NVIDIA-SMI has failed\n", exit_code=1)
    out, cache = _configure(build, "-DLLAMABATCH_CUDA=ON", gpus=failing)
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


def test_a_failing_nvidia_smi_means_the_portable_list(configured) -> None:
    _, out, cache = configured
    line = _archs_line(out)
    assert "the portable list, as nvidia-smi failed (exit code 1: NVIDIA-SMI has failed)" in line, line
    assert cache["CMAKE_CUDA_ARCHITECTURES"].startswith(PORTABLE)


# The tests below reconfigure the shared build folder (1-2 s each here): -U drops
# whatever architectures the test before left, as a fresh build folder would.
@pytest.mark.parametrize(("smi_out", "archs", "caps"), [
    ("9.0\n", "90-real", "9.0"),
    ("9.0\n8.6\n9.0\n", "86-real;90-real", "9.0, 8.6, 9.0"),  # deduplicated, sorted
], ids=["one-gpu", "two-kinds-of-gpu"])
def test_the_gpus_found_at_configure_time_are_the_architectures(configured, tmp_path, smi_out, archs, caps) -> None:
    build, _, _ = configured
    out, cache = _configure(build, "-DLLAMABATCH_CUDA=ON", "-UCMAKE_CUDA_ARCHITECTURES",
                            gpus=_fake_nvidia_smi(tmp_path, smi_out))
    assert cache["CMAKE_CUDA_ARCHITECTURES"] == archs
    assert f"-- llamabatch: CUDA architectures {archs}, for this machine's GPUs (compute capability {caps}, " \
           "from nvidia-smi; " in _archs_line(out)
    assert f"Using CMAKE_CUDA_ARCHITECTURES={archs} " in out  # what ggml itself then uses


@pytest.mark.parametrize(("smi_out", "why"), [
    ("", "nvidia-smi found no GPU"),
    ("9.0\n[N/A]\n", 'nvidia-smi printed "9.0\\n[N/A]", not one compute capability per line'),
    ("1.0\n", "cannot compile for sm_10, found among this machine's GPUs (compute capability 1.0)"),
], ids=["empty", "not-a-compute-capability", "too-old-for-this-nvcc"])
def test_no_usable_answer_from_nvidia_smi_means_the_portable_list(configured, tmp_path, smi_out, why) -> None:
    build, _, _ = configured
    out, cache = _configure(build, "-DLLAMABATCH_CUDA=ON", "-UCMAKE_CUDA_ARCHITECTURES",
                            gpus=_fake_nvidia_smi(tmp_path, smi_out))
    assert cache["CMAKE_CUDA_ARCHITECTURES"].startswith(PORTABLE)
    assert why in _archs_line(out), _archs_line(out)


def test_without_nvidia_smi_the_portable_list(configured) -> None:
    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has an nvidia-smi on PATH")
    build, _, _ = configured
    out, cache = _configure(build, "-DLLAMABATCH_CUDA=ON", "-UCMAKE_CUDA_ARCHITECTURES")
    assert cache["CMAKE_CUDA_ARCHITECTURES"].startswith(PORTABLE)
    assert "the portable list, as there is no nvidia-smi on PATH" in _archs_line(out)


def test_archs_auto_off_builds_the_portable_list_on_a_gpu_machine(configured, tmp_path) -> None:
    build, _, _ = configured
    out, cache = _configure(build, "-DLLAMABATCH_CUDA=ON", "-UCMAKE_CUDA_ARCHITECTURES",
                            gpus=_fake_nvidia_smi(tmp_path, "9.0\n"), env_extra={"LLAMABATCH_CUDA_ARCHS_AUTO": "OFF"})
    assert cache["CMAKE_CUDA_ARCHITECTURES"].startswith(PORTABLE)
    assert "the portable list, as LLAMABATCH_CUDA_ARCHS_AUTO is OFF" in _archs_line(out)


def test_an_explicit_cmake_cuda_architectures_wins_over_the_gpus(configured, tmp_path) -> None:
    build, _, _ = configured
    gpu = _fake_nvidia_smi(tmp_path / "smi", "9.0\n")
    out, cache = _configure(build, "-DLLAMABATCH_CUDA=ON", "-DCMAKE_CUDA_ARCHITECTURES=80-real", gpus=gpu)
    assert cache["CMAKE_CUDA_ARCHITECTURES"] == "80-real"
    assert _archs_line(out) == ("-- llamabatch: CUDA architectures 80-real, as set by CMAKE_CUDA_ARCHITECTURES "
                                "(no GPU detection)")
    # scikit-build-core passes -C cmake.define.X=V as `set(X V CACHE STRING "" FORCE)` in an
    # initial cache; a value equal to what detection would choose is still the user's, and
    # stays so at the next configure (it is not chosen again, here to the portable list).
    init = tmp_path / "init.cmake"
    init.write_text('set(CMAKE_CUDA_ARCHITECTURES [===[90-real]===] CACHE STRING "" FORCE)\n')
    out, cache = _configure(build, "-DLLAMABATCH_CUDA=ON", "-C", str(init), gpus=gpu)
    assert cache["CMAKE_CUDA_ARCHITECTURES"] == "90-real" and "as set by CMAKE_CUDA_ARCHITECTURES" in _archs_line(out)
    out, cache = _configure(build, "-DLLAMABATCH_CUDA=ON", gpus=gpu, env_extra={"LLAMABATCH_CUDA_ARCHS_AUTO": "OFF"})
    assert cache["CMAKE_CUDA_ARCHITECTURES"] == "90-real" and "as set by CMAKE_CUDA_ARCHITECTURES" in _archs_line(out)
    # An empty value asks for a fresh choice.
    out, cache = _configure(build, "-DLLAMABATCH_CUDA=ON", "-DCMAKE_CUDA_ARCHITECTURES=", gpus=gpu)
    assert cache["CMAKE_CUDA_ARCHITECTURES"] == "90-real" and "for this machine's GPUs" in _archs_line(out)


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
