"""llamabatch: run GGUF models over many inputs at once, on llama.cpp.

>>> from llamabatch import Embedder
>>> emb = Embedder()                      # all-MiniLM-L6-v2, fetched once per machine
>>> emb.encode(["a cup of tea", "espresso"]).shape
(2, 384)
"""
from ._core import Batch, Context, Engine, Model, max_parallel_sequences, set_verbose, system_info
from .embedder import Embedder
from .generator import Completion, Generator

__all__ = [
    "Batch",
    "Completion",
    "Context",
    "Embedder",
    "Engine",
    "Generator",
    "Model",
    "max_parallel_sequences",
    "set_verbose",
    "system_info",
]
__version__ = "0.1.0"
