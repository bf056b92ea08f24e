"""Imports the compiled module: the CPU variant this machine runs, and the CUDA runtime where a CUDA build needs it.

A portable build holds one module per x86-64 level; ``_cpu_choice`` says which
one runs here, and it is loaded as ``llamabatch._core`` (the same module name,
types and stub as a native build's).

A CUDA build links libcudart.so.N and libcublas.so.N. Its RPATH looks in NVIDIA's
PyPI wheels beside llamabatch (``site-packages/nvidia/...``, the ``cuda`` extra)
and in the toolkit it was built with. Where neither reaches (a wheel installed
in another site-packages folder, a moved toolkit), the libraries are loaded here
from the wheels on ``sys.path`` or from ``$CUDA_HOME``, and the import is tried
once more.
"""
from __future__ import annotations

import ctypes
import functools
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from . import _build
from ._cpu_choice import CpuChoice, choose, variant_module

# In load order: cuBLAS needs cuBLASLt, and both find cudart once it is loaded.
_LIBRARIES = ("libcudart", "libcublasLt", "libcublas")


def _library_dirs(major: int) -> list[Path]:
    """Folders that may hold the CUDA runtime libraries of this major version."""
    subdirs = [f"nvidia/cu{major}/lib"] if major >= 13 else ["nvidia/cuda_runtime/lib", "nvidia/cublas/lib"]
    dirs = [Path(entry) / sub for entry in sys.path if entry for sub in subdirs]
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            dirs.append(Path(os.environ[var]) / "lib64")
    dirs.append(Path("/usr/local/cuda/lib64"))
    return [d for d in dirs if d.is_dir()]


def _preload(major: int) -> list[str]:
    """Loads each library (globally, so the module's NEEDED entries resolve to it); returns what it loaded."""
    loaded = []
    dirs = _library_dirs(major)
    for name in _LIBRARIES:
        for d in dirs:
            path = d / f"{name}.so.{major}"
            if path.is_file():
                ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
                loaded.append(str(path))
                break
    return loaded


@functools.lru_cache(maxsize=None)
def cpu_choice() -> CpuChoice:
    """The CPU variant this process runs (decided once, at the first import)."""
    return choose(_build.CPU_VARIANTS, _build.CPU_BUILT_FOR)


def _import_variant(variant: str) -> ModuleType:
    """Loads a portable build's variant module under the name ``llamabatch._core``."""
    path = variant_module(variant)
    spec = importlib.util.spec_from_file_location("llamabatch._core", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise ImportError(f"the CPU variant {variant} of this portable build is missing ({path}); reinstall llamabatch")
    module = importlib.util.module_from_spec(spec)
    sys.modules["llamabatch._core"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["llamabatch._core"]
        raise
    setattr(sys.modules["llamabatch"], "_core", module)
    return module


def import_core() -> ModuleType:
    """``llamabatch._core``: the CPU variant chosen for this machine, with the CUDA runtime preloaded when needed."""
    choice = cpu_choice()
    if _build.CPU_VARIANTS is not None:
        return _import_variant(choice.variant)
    try:
        return importlib.import_module("llamabatch._core")
    except ImportError as first:
        major = _build.CUDA_MAJOR
        if major is None:
            raise
        loaded = _preload(major)
        try:
            return importlib.import_module("llamabatch._core")
        except ImportError as second:
            cuda = "nvidia-cublas nvidia-cuda-runtime" if major >= 13 else (
                f"nvidia-cublas-cu{major} nvidia-cuda-runtime-cu{major}")
            raise ImportError(
                f"this llamabatch was built with CUDA {major} and cannot find its runtime libraries "
                f"({second}); install them with `pip install {cuda}` (the `cuda` extra: "
                f"pip install 'llamabatch[cuda]'), or put the CUDA {major} toolkit's lib64 on "
                f"LD_LIBRARY_PATH. Preloaded: {loaded or 'none found'}"
            ) from first
