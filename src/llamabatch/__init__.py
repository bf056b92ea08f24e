"""llamabatch: run GGUF models over many inputs at once, on llama.cpp.

>>> from llamabatch import Embedder
>>> emb = Embedder()                      # all-MiniLM-L6-v2, fetched once per machine
>>> emb.encode(["a cup of tea", "espresso"]).shape
(2, 384)
"""
from ._loader import import_core

import_core()  # a CUDA build may need its runtime libraries found first

from ._core import Batch, Context, Engine, InputError, Model, max_parallel_sequences, set_verbose  # noqa: E402
from .devices import system_info  # noqa: E402
from .embedder import Embedder  # noqa: E402
from .generator import Completion, Generator  # noqa: E402

__all__ = [
    "Batch",
    "Completion",
    "Context",
    "Embedder",
    "Engine",
    "Generator",
    "InputError",
    "Model",
    "max_parallel_sequences",
    "set_verbose",
    "system_info",
]
__version__ = "0.1.0"
