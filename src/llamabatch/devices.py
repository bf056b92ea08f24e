"""Where llamabatch runs: the build, the devices found, and the placement of a model.

>>> import llamabatch
>>> info = llamabatch.system_info()
>>> info["cuda"], [d["name"] for d in info["devices"]]
(False, ['cpu'])
"""
from __future__ import annotations

import functools
import logging
import os
import platform
from typing import Any

from . import _core
from ._loader import cpu_choice
from .weights import fastest_format

logger = logging.getLogger("llamabatch")


def cpu_features(llama_cpp_info: str) -> list[str]:
    """The CPU features llama.cpp's system info line reports as compiled in ("AVX2 = 1" -> "AVX2")."""
    features = []
    for part in llama_cpp_info.split("|"):
        name, sep, value = part.rpartition("=")
        name = name.split(":")[-1].strip()
        if sep and value.strip() == "1" and name:
            features.append(name)
    return features


def system_info() -> dict[str, Any]:
    """What this llamabatch was built with and what it can run on here.

    Returns a dict with: ``llamabatch`` (version), ``python``, ``cpu`` (the
    processor), ``cpu_features`` (those compiled in), ``cpu_variant`` (the
    module this CPU runs: "native" for a one-module build, else a portable
    build's variant such as "avx2"), ``cpu_variant_reason`` (why that one),
    ``cpu_variants`` (all the build has), ``llama_cpp`` (llama.cpp's
    own system info line), ``cuda`` (True when the CUDA backend is compiled in),
    ``cuda_version`` and ``cuda_architectures`` (None without CUDA),
    ``devices`` (one dict per device found: ``name`` such as "cpu" or "cuda:0",
    ``backend``, ``description``, ``kind``, ``memory_free``, ``memory_total`` in
    bytes), ``gpu`` (the name of the first GPU found, or None), and
    ``weights`` / ``weights_reason``: the weight format a catalogue embedding
    model runs in here by default, and why (:mod:`llamabatch.weights`), and
    ``modes``: the default mode (the fastest kernels) and how batch invariance
    is had here.
    """
    from . import __version__

    build = _core.build_info()
    devices = _core.devices()
    gpus = [d["name"] for d in devices if d["kind"] in ("gpu", "igpu")]
    choice = cpu_choice()
    features = cpu_features(str(build["llama_cpp"]))
    weights = fastest_format(features, on_gpu=bool(gpus))
    return {
        "llamabatch": __version__,
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpu_features": features,
        "cpu_variant": choice.variant,
        "cpu_variant_reason": choice.reason,
        "cpu_variants": list(choice.available),
        **build,
        "devices": devices,
        "gpu": gpus[0] if gpus else None,
        "weights": weights.format,
        "weights_reason": weights.reason,
        "modes": {
            "default": "the fastest kernels; a row's last bits depend on the rest of its batch",
            "batch_invariant": "built in (vendor patch 0003): Embedder/Generator(batch_invariant=True) or "
                               "--batch-invariant give the same bits whatever the batch, on the CPU",
        },
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_model(path: str | os.PathLike[str], n_gpu_layers: int | None, *,
               batch_invariant: bool = False) -> _core.Model:
    """Loads a model for an Embedder or a Generator and says, once, when a GPU was wanted but none is there.

    ``n_gpu_layers``: None puts every layer on the GPU when one is found (the
    CPU otherwise); -1 all layers, 0 none, N the last N layers.
    ``batch_invariant``: load it as batch invariance needs: on the CPU (when
    ``n_gpu_layers`` is None) and without repacked weights.
    """
    if n_gpu_layers is not None and (isinstance(n_gpu_layers, bool) or not isinstance(n_gpu_layers, int)):
        raise TypeError(f"n_gpu_layers must be an int or None, got {n_gpu_layers!r}")
    if not isinstance(batch_invariant, bool):
        raise TypeError(f"batch_invariant must be True or False, got {batch_invariant!r}")
    if batch_invariant:
        if n_gpu_layers is None:
            n_gpu_layers = 0  # it holds on the CPU only; a GPU asked for by name gets the core's error
        return _core.Model(str(path), n_gpu_layers=n_gpu_layers, repack=False)
    model = _core.Model(str(path), n_gpu_layers=n_gpu_layers)
    if model.device == "cpu" and n_gpu_layers != 0:
        _say_no_gpu(explicit=n_gpu_layers is not None)
    return model


@functools.lru_cache(maxsize=None)
def _say_no_gpu(explicit: bool) -> None:
    """One log line per process (and per kind of request) when a model runs on the CPU for want of a GPU."""
    build = _core.build_info()
    if build["cuda"]:
        logger.warning(
            "llamabatch: built with CUDA %s, but no CUDA device was found (no GPU, no NVIDIA driver, "
            "or CUDA_VISIBLE_DEVICES hides it); running on the CPU", build["cuda_version"])
    elif explicit:
        logger.warning(
            "llamabatch: this build has no GPU backend, so n_gpu_layers is ignored and everything runs on the "
            "CPU; reinstall with -C cmake.define.LLAMABATCH_CUDA=ON for NVIDIA GPUs (README: On NVIDIA GPUs)")
