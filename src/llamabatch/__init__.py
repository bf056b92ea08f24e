"""llamabatch: run GGUF models over many inputs at once, on llama.cpp."""
from ._core import Batch, Context, Engine, Model, set_verbose

__all__ = ["Batch", "Context", "Engine", "Model", "set_verbose"]
__version__ = "0.1.0"
