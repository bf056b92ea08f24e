"""Portable builds: one module per x86-64 level, the best one this CPU runs chosen at import.

The choice itself is tested on made-up CPUs; the real build is made once per
session (a manylinux wheel, repaired and checked by auditwheel), installed in
a folder of its own, and run in fresh interpreters: on this CPU with each
variant forced, and under qemu-user emulating a CPU without AVX.
"""
from __future__ import annotations

import json
import os
import platform
import re
import shutil
import site
import subprocess
import sys
import time
from pathlib import Path

import pytest

import llamabatch
from llamabatch import _build, _cpu_choice
from llamabatch._cpu_choice import check_native, choose_variant

REPO = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).with_name("portable_probe.py")
X86_LINUX = sys.platform == "linux" and platform.machine() in ("x86_64", "AMD64")
linux_x86 = pytest.mark.skipif(not X86_LINUX, reason="the portable build is for x86-64 Linux")

# A made-up build, for the choice alone.
VARIANTS = (("base", ("sse4_2",)), ("mid", ("sse4_2", "avx2")), ("top", ("sse4_2", "avx2", "avx512f")))


def cpu(*present: str) -> dict[str, bool]:
    return {name: name in present for name in ("sse4_2", "avx2", "avx512f", "avx512_bf16")}


def cpuinfo_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


# --- the choice ----------------------------------------------------------------

def test_the_best_variant_the_cpu_runs_is_chosen() -> None:
    choice = choose_variant(VARIANTS, cpu("sse4_2", "avx2"), None)
    assert choice.variant == "mid"
    assert choice.available == ("base", "mid", "top")
    assert choice.reason == "the best variant this CPU runs (2 of 3 do); top needs avx512f"
    assert choose_variant(VARIANTS, cpu("sse4_2", "avx2", "avx512f"), None).variant == "top"
    assert choose_variant(VARIANTS, cpu("sse4_2"), None).variant == "base"


def test_a_forced_variant_the_cpu_runs_is_used() -> None:
    choice = choose_variant(VARIANTS, cpu("sse4_2", "avx2", "avx512f"), "base")
    assert (choice.variant, choice.reason) == ("base", "forced by LLAMABATCH_CPU=base")


def test_a_forced_variant_the_cpu_cannot_run_is_refused() -> None:
    with pytest.raises(ImportError, match=r"LLAMABATCH_CPU=top: this CPU lacks avx512f.*SIGILL.*runs: base, mid"):
        choose_variant(VARIANTS, cpu("sse4_2", "avx2"), "top")


def test_an_unknown_forced_variant_names_the_choices() -> None:
    with pytest.raises(ImportError, match=r"'avx9' names no CPU variant.*base, mid, top.*unset LLAMABATCH_CPU"):
        choose_variant(VARIANTS, cpu("sse4_2"), "avx9")


def test_a_cpu_below_the_baseline_is_refused() -> None:
    with pytest.raises(ImportError, match=r"lacks sse4_2, which even the baseline variant \(base\) needs"):
        choose_variant(VARIANTS, cpu(), None)


def test_a_native_build_runs_where_its_build_machine_did() -> None:
    assert check_native(("sse4_2", "avx2", "amx_tile"), cpu("sse4_2", "avx2"), None).variant == "native"
    assert check_native((), cpu(), "native").variant == "native"


def test_a_native_build_refuses_a_cpu_without_what_it_was_compiled_for() -> None:
    # Copied from an AVX-512 machine to an AVX2 one: an error, not SIGILL at the first decode.
    with pytest.raises(ImportError, match=r"-march=native.*lacks avx512f.*--no-binary llamabatch.*portable"):
        check_native(("sse4_2", "avx2", "avx512f"), cpu("sse4_2", "avx2"), None)


def test_a_native_build_refuses_a_forced_variant() -> None:
    with pytest.raises(ImportError, match=r"LLAMABATCH_CPU='avx2'.*native build.*unset LLAMABATCH_CPU"):
        check_native((), cpu("sse4_2", "avx2"), "avx2")


# --- this CPU ------------------------------------------------------------------

@linux_x86
def test_cpuid_agrees_with_proc_cpuinfo() -> None:
    from llamabatch import _cpuid

    features = _cpuid.cpu_features()
    assert {"sse4_2", "avx2", "avx512f", "avx512_vnni", "avx512_bf16"} <= set(features)
    flags = cpuinfo_flags()
    assert {name: name in flags for name in features} == features


def test_choosing_is_cheap() -> None:
    start = time.perf_counter()
    for _ in range(100):
        _cpu_choice.choose(_build.CPU_VARIANTS, _build.CPU_BUILT_FOR)
    assert (time.perf_counter() - start) / 100 < 0.005


def test_system_info_names_the_variant_and_why() -> None:
    info = llamabatch.system_info()
    assert info["cpu_variant"] in info["cpu_variants"]
    assert info["cpu_variant_reason"]
    if _build.CPU_VARIANTS is None:
        assert info["cpu_variants"] == ["native"]


# --- the portable build --------------------------------------------------------

def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload, no-any-return]


@pytest.fixture(scope="session")
def portable_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The portable wheel, repaired to a manylinux tag by auditwheel (LLAMABATCH_PORTABLE_WHEEL names a ready one)."""
    if not X86_LINUX:
        pytest.skip("the portable build is for x86-64 Linux")
    if os.environ.get("LLAMABATCH_PORTABLE_WHEEL"):
        return Path(os.environ["LLAMABATCH_PORTABLE_WHEEL"])
    out = tmp_path_factory.mktemp("portable")
    # A build folder in the repository's build/, so that a second session rebuilds only what changed.
    built = _run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-w", str(out / "raw"),
                  "-C", f"build-dir={REPO / 'build' / 'portable'}", "-C", "cmake.define.LLAMABATCH_PORTABLE=ON"])
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    (raw,) = (out / "raw").glob("*.whl")
    repaired = _run([sys.executable, "-m", "auditwheel", "repair", "-w", str(out / "wheelhouse"), str(raw)])
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    (wheel,) = (out / "wheelhouse").glob("*.whl")
    return wheel


@pytest.fixture(scope="session")
def portable_site(portable_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("portable-site")
    installed = _run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(portable_wheel)])
    assert installed.returncode == 0, installed.stderr
    return target


def _env(portable_site: Path, **extra: str) -> dict[str, str]:
    # `python -S` skips site-packages' .pth files (an editable llamabatch's finder among them),
    # so the portable install comes first and numpy still comes from site-packages.
    paths = [str(portable_site), *site.getsitepackages(), site.getusersitepackages()]
    env = {k: v for k, v in os.environ.items() if k != "LLAMABATCH_CPU"}
    env.update(PYTHONPATH=os.pathsep.join(paths), GGML_NO_BACKTRACE="1", **extra)
    return env


def _probe(portable_site: Path, model: str, texts: int, prefix: tuple[str, ...] = (),
           **env: str) -> subprocess.CompletedProcess[str]:
    return _run([*prefix, sys.executable, "-S", str(PROBE), model, str(texts)], env=_env(portable_site, **env),
                timeout=600)


def _portable_variants(portable_site: Path) -> list[tuple[str, tuple[str, ...]]]:
    text = (portable_site / "llamabatch" / "_build.py").read_text()
    scope: dict[str, object] = {}
    exec(compile(text, "_build.py", "exec"), scope)
    return list(scope["CPU_VARIANTS"])  # type: ignore[call-overload]


@linux_x86
def test_the_wheel_is_manylinux(portable_wheel: Path) -> None:
    shown = _run([sys.executable, "-m", "auditwheel", "show", str(portable_wheel)])
    assert shown.returncode == 0, shown.stderr
    tag = portable_wheel.stem.split("-")[-1]
    assert tag.startswith("manylinux_2_") and tag.endswith("_x86_64"), portable_wheel.name
    # auditwheel wraps its report; what it says, in one line:
    assert f'is consistent with the following platform tag: "{tag}"' in " ".join(shown.stdout.split()), shown.stdout


@linux_x86
def test_import_picks_the_best_variant_proc_cpuinfo_lists(portable_site: Path, minilm_path: str) -> None:
    variants = _portable_variants(portable_site)
    assert [name for name, _ in variants] == ["x86-64-v2", "avx2", "avx512", "avx512-vnni", "avx512-bf16"]
    flags = cpuinfo_flags()
    expected = [name for name, needs in variants if set(needs) <= flags][-1]
    probe = _probe(portable_site, minilm_path, 8)
    assert probe.returncode == 0, probe.stderr[-3000:]
    result = json.loads(probe.stdout)
    assert result["cpu_variant"] == expected, result
    assert Path(result["module"]).parent.name == expected
    assert result["min_cos"] >= 0.9999


@linux_x86
@pytest.mark.parametrize("variant", ["x86-64-v2", "avx2", "avx512", "avx512-vnni", "avx512-bf16"])
def test_each_variant_matches_the_reference(portable_site: Path, minilm_path: str, variant: str) -> None:
    needs = dict(_portable_variants(portable_site))[variant]
    probe = _probe(portable_site, minilm_path, 10_000, LLAMABATCH_CPU=variant)
    missing = sorted(set(needs) - cpuinfo_flags())
    if missing:
        # A variant this CPU cannot run is refused with an error, not run into SIGILL.
        assert probe.returncode == 1, (probe.returncode, probe.stderr[-2000:])
        assert f"this CPU lacks {', '.join(missing)}" in probe.stderr
        return
    assert probe.returncode == 0, probe.stderr[-3000:]
    result = json.loads(probe.stdout)
    assert (result["cpu_variant"], result["cpu_variant_reason"]) == (variant, f"forced by LLAMABATCH_CPU={variant}")
    assert result["texts"] > 100
    assert result["min_cos"] >= 0.9999, result
    # The weight format follows the variant that runs, not the CPU underneath it.
    assert result["weights"] == ("bf16" if variant == "avx512-bf16" else "f32"), result
    if variant == "x86-64-v2":
        assert "AVX" not in result["compiled_features"] and "SSSE3" in result["compiled_features"]
    if variant == "avx512-bf16":
        assert {"AVX512", "AVX512_VNNI", "AVX512_BF16"} <= set(result["compiled_features"])
        assert "AMX_INT8" not in result["compiled_features"]


@linux_x86
@pytest.mark.skipif(shutil.which("nm") is None, reason="needs binutils' nm")
def test_no_module_exports_llama_cpp_symbols(portable_site: Path) -> None:
    # Each module links llama.cpp statically and exports none of it, so another llama.cpp
    # in the process (llama-cpp-python's shared libllama/libggml, say) can neither bind to ours nor we to it.
    from llamabatch import _core, _cpuid

    modules = [*portable_site.glob("llamabatch/_variants/*/_core*.so"), *portable_site.glob("llamabatch/_cpuid*.so"),
               Path(str(_core.__file__)), Path(str(_cpuid.__file__))]
    assert len(modules) == 8  # five variants and _cpuid, and the installed build's _core and _cpuid
    for module in modules:
        symbols = _run(["nm", "-D", "--defined-only", str(module)]).stdout.split()
        assert "PyInit__core" in symbols or "PyInit__cpuid" in symbols
        leaked = [s for s in symbols if re.match(r"(llama|ggml|gguf)_|_ZN10llamabatch", s)]
        assert not leaked, (module, leaked[:10])


QEMU = shutil.which("qemu-x86_64") or shutil.which("qemu-x86_64-static")


@linux_x86
@pytest.mark.skipif(QEMU is None, reason="needs qemu-user (Debian: apt-get install qemu-user)")
def test_an_old_cpu_under_qemu_gets_the_baseline(portable_site: Path, minilm_path: str) -> None:
    # Nehalem (2008): SSE4.2 and POPCNT, no AVX. Every CPU instruction the
    # interpreter, numpy and llamabatch run is emulated as that CPU's.
    assert QEMU is not None
    # numpy's bundled OpenBLAS picks its Haswell kernels under qemu's Nehalem model (scipy-openblas
    # in numpy 2.4, qemu 7.2: its cpuid says family 6 model 26, no AVX) and dies of SIGILL in
    # `import numpy`; OPENBLAS_CORETYPE holds it to the CPU being emulated. llamabatch's own
    # choice reads cpuid itself and is what this test checks.
    nehalem = {"OPENBLAS_CORETYPE": "Nehalem"}
    probe = _probe(portable_site, minilm_path, 4, prefix=(QEMU, "-cpu", "Nehalem"), **nehalem)
    assert probe.returncode == 0, (probe.returncode, probe.stderr[-3000:])
    result = json.loads(probe.stdout)
    assert result["cpu_variant"] == "x86-64-v2", result
    assert result["cpu_variant_reason"].endswith("; avx2 needs avx, avx2, bmi2, f16c, fma"), result
    assert result["min_cos"] >= 0.9999
    # Forcing a variant this CPU cannot run: an ImportError, not SIGILL.
    forced = _probe(portable_site, minilm_path, 1, prefix=(QEMU, "-cpu", "Nehalem"), LLAMABATCH_CPU="avx2", **nehalem)
    assert forced.returncode == 1, (forced.returncode, forced.stderr[-2000:])
    assert "LLAMABATCH_CPU=avx2: this CPU lacks avx, avx2, bmi2, f16c, fma" in forced.stderr


@linux_x86
@pytest.mark.skipif(QEMU is None, reason="needs qemu-user (Debian: apt-get install qemu-user)")
@pytest.mark.skipif(not _build.CPU_BUILT_FOR, reason="this llamabatch is not a -march=native build")
def test_a_native_build_on_an_old_cpu_refuses_to_load() -> None:
    # The installed native build, on a CPU without what it was compiled for: an ImportError that names the fix.
    assert QEMU is not None
    run = _run([QEMU, "-cpu", "Nehalem", sys.executable, "-c", "import llamabatch"], timeout=300,
               env={**os.environ, "GGML_NO_BACKTRACE": "1"})
    assert run.returncode == 1, (run.returncode, run.stderr[-2000:])
    assert "compiled for its build machine's CPU (-march=native), and this CPU lacks avx" in run.stderr
    assert "portable build" in run.stderr
