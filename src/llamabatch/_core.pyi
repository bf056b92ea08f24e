"""
llamabatch's C++ core: Batch, Model, Context, Engine and Embedder over llama.cpp
"""

from collections.abc import Callable, Sequence
from typing import overload

import numpy
import numpy.typing


class InputError(ValueError):
    pass

def set_verbose(verbose: bool) -> None:
    """
    Show llama.cpp's log on stderr (True) or keep it silent (False, the default).
    """

def max_parallel_sequences() -> int:
    """The most sequences llama.cpp decodes in one batch."""

def weight_format_of_file(path: str) -> str:
    """
    The weight format a GGUF file declares ('f32', 'f16', 'bf16', 'q4_1', ..., 'unknown'), from its header.
    FileNotFoundError if it is missing, ValueError if it is not a GGUF.
    """

def convert_weights(src: str, dst: str, format: str, n_threads: int = 0) -> None:
    """
    Write dst, a copy of the float GGUF src with its 2-D weights in format ('f32', 'f16' or 'bf16').
    ValueError for another format or a quantized src; RuntimeError if dst cannot be written.
    """

def build_info() -> dict[str, object]:
    """
    What was compiled in: llama.cpp's system info line, and the CUDA toolkit and architectures.
    """

def devices() -> list[dict[str, object]]:
    """
    The devices llama.cpp can run on here (the CPU, and GPUs where a driver and a device are found).
    """

class Batch:
    """
    The buffers of one llama_batch, owned in C++.

    The arrays (token, pos, n_seq_id, seq_id, logits) are numpy views of that memory,
    never copies, and span the whole capacity; the first n_tokens entries are live.
    A view keeps the Batch alive, and a write through it is what llama_decode sees.
    """

    def __init__(self, capacity: int, n_seq_max: int = 1, embd: int = 0) -> None:
        """
        capacity: tokens it holds; n_seq_max: sequences it holds (seq ids 0..n_seq_max-1), also the
        most seq ids one token may carry; embd: width of input embeddings (0: token ids).
        """

    def add(self, token: int, pos: int, seq_ids: int | Sequence[int], output: bool = False) -> None:
        """
        Append one token at position pos, belonging to seq_ids (an int or a list of ints).
        """

    def add_sequence(self, tokens: numpy.typing.ArrayLike, seq_id: int, pos0: int = 0, output: str = 'all') -> None:
        """
        Append a whole sequence (a 1-D integer array) to seq_id at positions pos0, pos0+1, ...;
        output: 'all', 'last' or 'none' of its tokens ask for an output.
        """

    def clear(self) -> None:
        """Forget all tokens (storage is kept)."""

    def fits(self, n_tokens: int, n_seqs: int = 1) -> bool:
        """
        Whether n_tokens more tokens in n_seqs new sequences still fit, by tokens and by sequence count.
        """

    def __len__(self) -> int: ...

    @property
    def n_tokens(self) -> int:
        """
        Live tokens. Settable after filling the arrays directly; checked before decoding.
        """

    @n_tokens.setter
    def n_tokens(self, arg: int, /) -> None: ...

    @property
    def capacity(self) -> int: ...

    @property
    def n_seq_max(self) -> int: ...

    @property
    def n_seqs(self) -> int:
        """Distinct sequences among the live tokens."""

    @property
    def embd(self) -> int: ...

    @property
    def token(self, /) -> numpy.typing.NDArray[numpy.int32]:
        """int32 view, shape (capacity,)"""

    @property
    def pos(self, /) -> numpy.typing.NDArray[numpy.int32]:
        """int32 view, shape (capacity,)"""

    @property
    def n_seq_id(self, /) -> numpy.typing.NDArray[numpy.int32]:
        """int32 view, shape (capacity,)"""

    @property
    def seq_id(self, /) -> numpy.typing.NDArray[numpy.int32]:
        """int32 view, shape (capacity, n_seq_max): row i holds token i's seq ids"""

    @property
    def logits(self, /) -> numpy.typing.NDArray[numpy.int8]:
        """
        int8 view, shape (capacity,): output flags (1: this token gives logits/embeddings)
        """

    @property
    def embeddings(self, /) -> numpy.typing.NDArray[numpy.float32]:
        """float32 view, shape (capacity, embd), for batches made with embd > 0"""

    def __repr__(self) -> str: ...

class Model:
    """A GGUF model loaded by llama.cpp."""

    def __init__(self, path: str, n_gpu_layers: int | None = None, vocab_only: bool = False, repack: bool = True) -> None:
        """
        Load a GGUF file. FileNotFoundError if it is missing, ValueError if it is not a loadable model.
        n_gpu_layers: layers on the GPU (-1 all, 0 none; None: all when a GPU is present).
        repack: let the CPU backend repack quantized weights for its SIMD kernels (False for batch invariance).
        """

    @property
    def repack(self) -> bool:
        """Whether the CPU backend may repack quantized weights."""

    @property
    def device(self) -> str:
        """
        Where the weights are: 'cpu', 'cuda:0', or 'cuda:0+cpu' when only some layers are offloaded.
        """

    @property
    def n_gpu_layers(self) -> int:
        """The n_gpu_layers llama.cpp was given (-1: all)."""

    @property
    def n_layer(self) -> int: ...

    @property
    def path(self) -> str: ...

    @property
    def n_embd(self) -> int: ...

    @property
    def n_embd_out(self) -> int: ...

    @property
    def n_vocab(self) -> int: ...

    @property
    def n_ctx_train(self) -> int: ...

    @property
    def n_params(self) -> int: ...

    @property
    def architecture(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def causal(self) -> bool:
        """False for BERT-like models that attend over the whole sequence."""

    @property
    def pooling(self) -> str:
        """The pooling the GGUF asks for ('unspecified' when none)."""

    @property
    def chat_template(self) -> str:
        """
        The GGUF's default chat template (tokenizer.chat_template), '' when it has none.
        """

    def meta(self, key: str) -> str:
        """A metadata value as str ('' when absent)."""

    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> numpy.typing.NDArray[numpy.int32]:
        """Token ids of one text (int32 array)."""

    def tokenize_texts(self, texts: Sequence[str], add_special: bool = True, parse_special: bool = False, n_threads: int = 0, llama_cpp: bool = False) -> list[numpy.typing.NDArray[numpy.int32]]:
        """
        Token ids of many texts (a list of int32 arrays), on n_threads (0: picked from the work).
        llama_cpp=True: llama.cpp's own tokenizer even for a BERT vocabulary, whose ids then differ
        from the reference's (for comparisons).
        """

    def prompt_tokens(self, prompt: str | numpy.typing.NDArray[numpy.int32]) -> numpy.typing.NDArray[numpy.int32]:
        """
        Token ids of one prompt as Generator's generate() builds them: a str as a plain prompt (the
        model's BOS if it wants one, special-token text kept as text), token ids as they are.
        """

    def named_chat_template(self, name: str) -> str:
        """
        The GGUF's chat template called name (tokenizer.chat_template.<name>), '' when absent.
        """

    def token_text(self, token: int) -> bytes:
        """
        A token's text as the vocabulary stores it (UTF-8 bytes): for a special token, the text that
        tokenizing with parse_special reads as it, such as b'<|im_start|>'.
        """

    @property
    def control_tokens(self, /) -> numpy.typing.NDArray[numpy.int32]:
        """
        Ids of the control and unknown tokens (int32 array): those that tokenize() reads from
        their text only with parse_special=True.
        """

    @property
    def declared_end_tokens(self, /) -> numpy.typing.NDArray[numpy.int32]:
        """
        The end-of-generation token ids the GGUF declares (int32 array): its eos, and its eot and
        eom when it names them; not tokens llama.cpp takes as ends by their text.
        """

    def __repr__(self) -> str: ...

class Context:
    """
    A llama.cpp context over a Model, with settings derived so that no input reaches an assert.
    """

    def __init__(self, model: Model, n_ctx: int = 0, n_batch: int = 0, n_ubatch: int = 0, n_seq_max: int = 0, n_threads: int = 0, embeddings: bool = False, pooling: str | None = None, flash_attn: bool = True) -> None: ...

    def decode(self, batch: Batch) -> None:
        """
        Decode the batch's live tokens; ValueError for anything llama.cpp would abort on.
        """

    def clear_memory(self) -> None:
        """Forget every sequence in the context's memory."""

    def logits(self, i: int) -> numpy.typing.NDArray[numpy.float32]:
        """The logits of batch token i from the last decode (a float32 copy)."""

    @property
    def n_ctx(self) -> int: ...

    @property
    def n_batch(self) -> int: ...

    @property
    def n_ubatch(self) -> int: ...

    @property
    def n_seq_max(self) -> int: ...

    @property
    def n_threads(self) -> int: ...

    @property
    def pooling(self) -> str: ...

class Engine:
    """
    The streaming decode loop: packs sequences into a fixed batch in input order and decodes
    when the next one does not fit by tokens or by sequence count.
    """

    @overload
    def __init__(self, context: Context) -> None: ...

    @overload
    def __init__(self, n_batch: int, n_seq_max: int) -> None:
        """A dry run: packs and flushes exactly as a real run, without decoding."""

    def run(self, sequences: Sequence[numpy.typing.ArrayLike], progress: Callable[[int], object] | None = None) -> numpy.typing.NDArray[numpy.int64]:
        """
        Stream token sequences through the batch. Returns an int64 array (n, 3): for each input,
        the decode it went into, its seq id there and the batch index of its first token.
        """

    def run_packed(self, tokens: numpy.typing.NDArray[numpy.int32], offsets: numpy.typing.NDArray[numpy.int64], progress: Callable[[int], object] | None = None) -> numpy.typing.NDArray[numpy.int64]:
        """
        Like run(), for sequences stored back to back: sequence i is tokens[offsets[i]:offsets[i+1]]
        (int32 tokens, int64 offsets of length n+1). Nothing is copied.
        """

    def set_max_sequences(self, n_seqs: int) -> None:
        """Cap the sequences per decode (0: the batch's n_seq_max)."""

    @property
    def stats(self, /) -> dict[str, float]: ...

    def reset_stats(self) -> None: ...

    @property
    def n_batch(self) -> int: ...

    @property
    def n_seq_max(self) -> int: ...

class Embedder:
    """
    Embeds many texts through the streaming engine (see llamabatch.Embedder).
    """

    def __init__(self, model: Model, n_ctx: int = 0, n_batch: int = 0, n_seq_max: int = 0, n_threads: int = 0, pooling: str | None = None, flash_attn: bool = True, parse_special: bool = True, batch_invariant: bool = False) -> None: ...

    @property
    def batch_invariant(self) -> bool: ...

    @property
    def parse_special(self) -> bool: ...

    @property
    def n_embd(self) -> int: ...

    @property
    def pooling(self) -> str: ...

    @property
    def max_tokens(self) -> int: ...

    @property
    def n_batch(self) -> int: ...

    @property
    def n_ubatch(self) -> int: ...

    @property
    def n_seq_max(self) -> int: ...

    @property
    def n_threads(self) -> int: ...

    @property
    def stats(self, /) -> dict[str, float]: ...

    def reset_stats(self) -> None: ...

    def tokenize(self, texts: Sequence[str]) -> list[numpy.typing.NDArray[numpy.int32]]:
        """Token ids of each text, as a list of int32 arrays."""

    def embed_tokens(self, sequences: Sequence[numpy.typing.ArrayLike], truncate: int = 0, norm: int = 2, batch_size: int = 0, progress: Callable[[int], object] | None = None) -> tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.int64] | None, numpy.typing.NDArray[numpy.int32]]:
        """
        Embeds token id sequences. Returns (matrix, offsets, lengths): rows as encode() gives them,
        and the token count of each sequence after truncation (int32).
        """

    def encode(self, texts: Sequence[str], truncate: int = 0, norm: int = 2, batch_size: int = 0, progress: Callable[[int], object] | None = None) -> tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.int64] | None]:
        """
        Returns (matrix, offsets): pooled rows in input order and None, or for pooling 'none'
        one row per token and the int64 offsets of each text's rows.
        """

class Generator:
    """Continuous-batching generation (see llamabatch.Generator)."""

    def __init__(self, model: Model, n_parallel: int = 16, n_ctx: int = 0, n_batch: int = 0, n_threads: int = 0, flash_attn: bool = True, end_tokens: Sequence[int] = [], batch_invariant: bool = False, prefix_cache: bool = True) -> None: ...

    @property
    def batch_invariant(self) -> bool: ...

    @property
    def prefix_cache(self) -> bool: ...

    @property
    def end_tokens(self, /) -> numpy.typing.NDArray[numpy.int32]:
        """The token ids that end a sequence (int32 array); ignore_eos bans them."""

    @property
    def n_parallel(self) -> int: ...

    @property
    def n_ctx(self) -> int: ...

    @property
    def n_batch(self) -> int: ...

    @property
    def n_threads(self) -> int: ...

    @property
    def stats(self, /) -> dict[str, float]: ...

    def reset_stats(self) -> None: ...

    def generate(self, prompts: Sequence[str | numpy.typing.NDArray[numpy.int32]], max_new_tokens: int = 256, temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0, seed: int = -1, stop: Sequence[str] = [], ignore_eos: bool = False, progress: Callable[[int], object] | None = None) -> list[tuple[numpy.typing.NDArray[numpy.int32], bytes, str, int, int]]:
        """
        Returns a list of (tokens int32 array, text bytes, finish reason, prompt token count, cached prompt
        token count) in prompt order.
        """

    @property
    def idle(self) -> bool:
        """No submitted request is queued or running."""

    @property
    def n_queued(self) -> int: ...

    @property
    def n_running(self) -> int: ...

    def submit(self, prompt: numpy.typing.ArrayLike, max_new_tokens: int = 256, temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0, seed: int = -1, stop: Sequence[str] = [], ignore_eos: bool = False) -> int:
        """
        Queues a request (prompt token ids); returns its id. Raises ValueError for a bad request.
        """

    def step(self) -> list[tuple[int, bytes, int, tuple[numpy.typing.NDArray[numpy.int32], bytes, str, int, int] | None, str | None]]:
        """
        One decode. Returns (id, new text bytes, new token count, result, error) for each request that
        advanced; result is None, or (tokens, text, finish reason, prompt token count, cached prompt token
        count) once finished.
        """

    def cancel(self, id: int) -> bool:
        """
        Drops a queued request or ends a running one; False if unknown or done.
        """
