"""Weight formats: the fastest lossless one for where a model runs, and cached copies in it.

What runs fastest is a property of the CPU, not of the model. Without a native
half-precision dot product (AVX2, AVX-512 without BF16) ggml multiplies in f32:
f16 weights are converted as they are used (once per packed block in a batch's
products, at every load in small ones), so there an f32 file loses nothing and
is at least as fast as the f16 one it was made from; a CPU with AVX-512 BF16
multiplies bf16 natively, and there bf16 is fastest. docs/benchmarks.md has the
measurements, each format beside the peers.

The choice is made once, when a model is chosen, never per call:

- a catalogue model (``Embedder()``, ``Embedder("all-minilm-l6-v2")``) runs in
  the fastest format for this CPU, converted from the original weights the
  first time it is needed;
- a user's own GGUF runs as given, unless ``weights`` asks for a format: then a
  copy in that format is written once into the cache (:func:`converted_copy`)
  and used from then on.

>>> from llamabatch import weights
>>> weights.fastest_format(["AVX2", "F16C", "FMA"], on_gpu=False, machine="x86_64").format
'f32'
"""
from __future__ import annotations

import hashlib
import os
import platform
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from . import _core
from ._files import atomic_path

FORMATS = ("f32", "f16", "bf16")
#: What ``weights=`` takes: None (catalogue models in the fastest format, a file as given),
#: "fastest" (files too) or one of :data:`FORMATS`.
CHOICES = (None, "fastest", *FORMATS)

_X86 = ("x86_64", "amd64", "i386", "i686")
_WHY = "docs/benchmarks.md: each format against the peers"


@dataclass(frozen=True)
class WeightChoice:
    """A weight format and why it was chosen."""

    format: str
    reason: str


@dataclass(frozen=True)
class ResolvedModel:
    """The GGUF file a model argument comes to, the weight format it holds, and why that one."""

    path: Path
    format: str
    reason: str


def fastest_format(cpu_features: Collection[str], *, on_gpu: bool, machine: str | None = None) -> WeightChoice:
    """The fastest lossless weight format for a float model running here.

    ``cpu_features`` are the ones the loaded module was compiled with (for a
    portable build, its variant's), as :func:`llamabatch.system_info` lists
    them; ``on_gpu`` says whether the model's layers go to a GPU; ``machine`` is
    ``platform.machine()`` (the default).
    """
    machine = (machine or platform.machine()).lower()
    if on_gpu:
        return WeightChoice("f16", "the model runs on a GPU, where f16 is the format the CUDA kernels take "
                                   "(formats on GPUs are not measured yet)")
    if machine not in _X86:
        return WeightChoice("f16", f"on {machine} the formats are not measured yet, so f16, as the catalogue "
                                   "has always shipped it")
    if "AVX512_BF16" in cpu_features:
        return WeightChoice("bf16", "this CPU module multiplies bf16 natively (AVX512_BF16), the fastest "
                                    f"format there ({_WHY})")
    return WeightChoice("f32", "this CPU module has no native half-precision dot product (no AVX512_BF16), so "
                               "ggml multiplies in f32 and converts f16 weights as it uses them; f32 weights "
                               f"lose nothing and skip that ({_WHY})")


def fastest_format_here(n_gpu_layers: int | None = None) -> WeightChoice:
    """:func:`fastest_format` for this process's module, CPU and devices, for a model loaded with ``n_gpu_layers``."""
    from .devices import cpu_features

    features = cpu_features(str(_core.build_info()["llama_cpp"]))
    has_gpu = any(d["kind"] in ("gpu", "igpu") for d in _core.devices())
    return fastest_format(features, on_gpu=has_gpu and n_gpu_layers != 0)


def check_choice(weights: str | None) -> None:
    """ValueError unless ``weights`` is one of :data:`CHOICES`."""
    if weights not in CHOICES:
        raise ValueError(f"weights={weights!r} is not one of None (catalogue models in the fastest format, "
                         f"your own files as given), 'fastest' (your files too), {', '.join(map(repr, FORMATS))}")


def resolve_model(model: str | os.PathLike[str] | None, default: str, weights: str | None = None, *,
                  n_gpu_layers: int | None = None, quiet: bool = False) -> ResolvedModel:
    """The GGUF to load for ``model`` (None: the catalogue model ``default``), in the format ``weights`` asks for.

    A catalogue model that comes in several formats runs in the fastest one for
    here unless ``weights`` names one; an entry whose name pins a format
    ("all-minilm-l6-v2-f32") and a user's file run as they are unless
    ``weights`` is given, and then a file in another float format is
    converted once into the cache. Quantized files always run as given.
    """
    from . import models

    check_choice(weights)
    name = default if model is None else model
    family = models.WEIGHT_FORMATS.get(name) if isinstance(name, str) else None
    if family is None and isinstance(name, str) and weights is not None:
        family = next((f for f in models.WEIGHT_FORMATS.values() if name in f.values()), None)
    if family is not None:
        choice = _wanted(weights, n_gpu_layers)
        if choice.format in family:
            return ResolvedModel(models.fetch(family[choice.format], quiet=quiet), choice.format, choice.reason)
    path = models.resolve(name, default)
    if weights is None:
        # Only reported: a file that is no GGUF fails where it is loaded, with the loader's error.
        try:
            have = _core.weight_format_of_file(str(path))
        except ValueError:
            have = "unknown"
        return ResolvedModel(path, have, "the file's own format, as given")
    have = _core.weight_format_of_file(str(path))
    choice = _wanted(weights, n_gpu_layers)
    if have == choice.format:
        return ResolvedModel(path, have, choice.reason)
    if have not in FORMATS:
        if weights == "fastest":
            return ResolvedModel(path, have, f"{have} weights run as given (a float copy would be larger and no "
                                             "more exact than they are)")
        raise ValueError(f"{path} holds {have} weights, which cannot be turned into {weights}: quantizing lost "
                         "what a float copy would need; convert the original weights instead, or run this file as it is")
    return ResolvedModel(converted_copy(path, choice.format, quiet=quiet), choice.format,
                         f"{choice.reason}; a cached {choice.format} copy of {path.name} ({have})")


def _wanted(weights: str | None, n_gpu_layers: int | None) -> WeightChoice:
    if weights in (None, "fastest"):
        return fastest_format_here(n_gpu_layers)
    return WeightChoice(str(weights), f"weights={weights!r} was asked for")


def converted_copy(path: str | os.PathLike[str], weight_format: str, *, quiet: bool = False) -> Path:
    """A copy of the float GGUF ``path`` with its weights in ``weight_format``, written once into the cache.

    The copy lives under ``<cache>/converted/`` and is keyed by the source's
    absolute path, size and modification time, so a changed source makes a new
    copy. f16 to f32 is exact; to bf16 rounds each weight to 8 mantissa bits.
    Also ``python -m llamabatch.models convert PATH --to FORMAT``.
    """
    from .models import cache_dir
    from .models.store import _locked, _say

    if weight_format not in FORMATS:
        raise ValueError(f"weight format {weight_format!r} is not one of {', '.join(FORMATS)}")
    src = Path(path).expanduser().resolve()
    if not src.is_file():
        raise FileNotFoundError(f"model file {str(src)!r} does not exist")
    stat = src.stat()
    key = hashlib.sha256(f"{src}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    stem = src.name[:-5] if src.name.endswith(".gguf") else src.name
    target = cache_dir() / "converted" / f"{stem}.{key}.{weight_format}.gguf"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.with_name(target.name + ".lock")):
        if not target.is_file():
            _say(quiet, f"writing a {weight_format} copy of {src} to {target} (once)")
            with atomic_path(target) as tmp:
                _core.convert_weights(str(src), str(tmp), weight_format)
    return target
