"""Shared fixtures: real models from the catalogue, fetched once per machine."""
from __future__ import annotations

import os
import sys
from types import ModuleType

import pytest

import llamabatch
from llamabatch import models


# On a machine without network (the GPU check), the models arrive as files:
# LLAMABATCH_TEST_MINILM / LLAMABATCH_TEST_SMOLLM name them instead of the catalogue.
@pytest.fixture(scope="session")
def minilm_path() -> str:
    return os.environ.get("LLAMABATCH_TEST_MINILM") or str(models.fetch(models.DEFAULT_EMBEDDING_MODEL))


@pytest.fixture(scope="session")
def smollm_path() -> str:
    return os.environ.get("LLAMABATCH_TEST_SMOLLM") or str(models.fetch(models.DEFAULT_GENERATION_MODEL))


@pytest.fixture(scope="session")
def minilm(minilm_path: str) -> llamabatch.Model:
    return llamabatch.Model(minilm_path)


@pytest.fixture(scope="session")
def smollm(smollm_path: str) -> llamabatch.Model:
    return llamabatch.Model(smollm_path)


@pytest.fixture(scope="session")
def embedder(minilm_path: str) -> llamabatch.Embedder:
    return llamabatch.Embedder(minilm_path)


@pytest.fixture(scope="session")
def gguf_module() -> ModuleType:
    """The ``gguf`` package, to read and edit GGUF files: the PyPI one when installed,
    else the copy in llama.cpp's tree that llamabatch carries."""
    try:
        import gguf
    except ImportError:
        sys.path.insert(0, str(models._llama_cpp_dir() / "gguf-py"))
        import gguf
    return gguf
