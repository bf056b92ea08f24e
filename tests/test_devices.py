"""Where llamabatch runs: system_info(), device placement and the GPU defaults, on whatever this machine has.

On a machine without a GPU (CI) every model runs on the CPU, whether the
module was built with CUDA or not; tests/test_gpu.py covers a GPU (-m gpu).
"""
from __future__ import annotations

import subprocess
import sys

import pytest

import llamabatch
from llamabatch import _build
from llamabatch.devices import cpu_features

INFO = llamabatch.system_info()
NO_GPU = pytest.mark.skipif(INFO["gpu"] is not None, reason="a GPU is present: tests/test_gpu.py covers it")


def test_system_info_reports_the_build_and_the_devices() -> None:
    assert INFO["llamabatch"] == llamabatch.__version__
    assert INFO["cuda"] is (_build.CUDA_MAJOR is not None)
    if INFO["cuda"]:
        assert INFO["cuda_version"].split(".")[0] == str(_build.CUDA_MAJOR)
        assert INFO["cuda_architectures"]
    else:
        assert INFO["cuda_version"] is None and INFO["cuda_architectures"] is None
    cpus = [d for d in INFO["devices"] if d["kind"] == "cpu"]
    assert [d["name"] for d in cpus] == ["cpu"]
    assert cpus[0]["memory_total"] > 0 and cpus[0]["backend"] == "CPU"
    gpus = [d["name"] for d in INFO["devices"] if d["kind"] in ("gpu", "igpu")]
    assert INFO["gpu"] == (gpus[0] if gpus else None)


def test_cpu_features_are_those_of_this_cpu() -> None:
    # A native build compiles in what /proc/cpuinfo lists, and nothing it lacks.
    flags = set(open("/proc/cpuinfo").read().split("flags")[1].split("\n")[0].split())
    features = set(INFO["cpu_features"])
    assert features, INFO["llama_cpp"]
    for feature, flag in (("AVX2", "avx2"), ("AVX512", "avx512f"), ("FMA", "fma"), ("F16C", "f16c")):
        if feature in features:
            assert flag in flags, f"{feature} compiled in but this CPU lacks {flag}"
    assert ("AVX2" in features) == ("avx2" in flags)


def test_cpu_features_parses_llama_cpps_line() -> None:
    line = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 0 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | "
    assert cpu_features(line) == ["SSE3", "AVX", "LLAMAFILE", "OPENMP", "REPACK"]


@NO_GPU
def test_without_a_gpu_models_run_on_the_cpu(minilm_path: str) -> None:
    emb = llamabatch.Embedder(minilm_path)
    assert emb.device == "cpu" and emb.model.n_gpu_layers == 0
    # The CPU defaults stay as they were: 512 tokens per decode for MiniLM.
    assert emb.n_batch == 512
    assert llamabatch.Embedder(minilm_path, n_gpu_layers=0).device == "cpu"


@NO_GPU
def test_asking_for_a_gpu_without_one_runs_on_the_cpu_with_one_log_line(minilm_path: str) -> None:
    # A fresh process, so that the once-per-process line is not spent by another test.
    code = (
        "import llamabatch, numpy as np\n"
        f"a = llamabatch.Embedder({minilm_path!r}, n_gpu_layers=-1)\n"
        f"b = llamabatch.Embedder({minilm_path!r}, n_gpu_layers=-1)\n"
        "v = a.encode(['a cup of tea', 'espresso'])\n"
        "print(a.device, b.device, v.shape, float(np.linalg.norm(v[0])))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:2] == ["cpu", "cpu"]
    assert abs(float(out.stdout.split()[-1]) - 1.0) < 1e-5
    lines = [line for line in out.stderr.splitlines() if line.startswith("llamabatch:")]
    assert len(lines) == 1, out.stderr
    assert ("no CUDA device" in lines[0]) if INFO["cuda"] else ("no GPU backend" in lines[0])
    assert "CPU" in lines[0]


@NO_GPU
def test_the_default_placement_says_nothing_in_a_cpu_build(minilm_path: str) -> None:
    code = f"import llamabatch\nprint(llamabatch.Embedder({minilm_path!r}).device)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "cpu", out.stderr
    if not INFO["cuda"]:
        assert "llamabatch:" not in out.stderr


def test_bad_n_gpu_layers_is_refused(minilm_path: str) -> None:
    with pytest.raises(ValueError, match="n_gpu_layers -2"):
        llamabatch.Embedder(minilm_path, n_gpu_layers=-2)
    with pytest.raises(TypeError, match="n_gpu_layers"):
        llamabatch.Embedder(minilm_path, n_gpu_layers="all")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="n_gpu_layers"):
        llamabatch.Generator(minilm_path, n_gpu_layers=True)  # type: ignore[arg-type]


def test_llamabatch_info_prints_system_info_as_json() -> None:
    import json

    out = subprocess.run([sys.executable, "-m", "llamabatch.cli", "info"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["cuda"] == INFO["cuda"] and [d["name"] for d in info["devices"]] == [d["name"] for d in INFO["devices"]]
