"""`Embedder`: embeddings of many texts, in input order, from a GGUF model."""
from __future__ import annotations

import os
from typing import Any, Sequence, Union

import numpy as np

from . import _core
from ._checks import check_positive_int
from .devices import load_model
from ._progress import progress_callback
from .weights import resolve_model

Normalize = Union[bool, str, int, None]

_NORMS = {"l2": 2, "euclidean": 2, "max-abs": 0, "maxabs": 0, "taxicab": 1, "l1": 1}


def _norm_code(normalize: Normalize) -> int:
    """Maps the user's choice to llama.cpp's numbering (-1 none, 0 max-abs, 1 taxicab, 2 L2, p>2 p-norm)."""
    if normalize is True:
        return 2
    if normalize is False or normalize is None:
        return -1
    if isinstance(normalize, str) and normalize.lower() in _NORMS:
        return _NORMS[normalize.lower()]
    if isinstance(normalize, (int, np.integer)) and not isinstance(normalize, bool) and normalize >= 1:
        return int(normalize)
    raise ValueError(
        f"normalize={normalize!r} is not one of True/'l2', False, 'max-abs', 'taxicab' or an int p >= 1 (p-norm)"
    )


def _as_text_list(texts: Any) -> list[str] | Sequence[str]:
    """Checks the container; the items are checked in C++ (each must be str)."""
    if texts is None:
        raise TypeError("texts is None: pass a str or a list of str")
    if isinstance(texts, (bytes, bytearray, memoryview)):
        raise TypeError("texts is bytes: decode it to str first (texts.decode('utf-8'))")
    if isinstance(texts, np.ndarray):
        if texts.ndim != 1:
            raise ValueError(f"texts must be 1-D, got an array of shape {texts.shape}")
        as_list: list[str] = texts.tolist()
        return as_list
    if isinstance(texts, (list, tuple)):
        return texts
    if isinstance(texts, Sequence):
        return list(texts)
    try:
        return list(texts)  # generators, dict views, pandas Series...
    except TypeError:
        raise TypeError(f"texts must be a str or a sequence of str, got {type(texts).__name__}") from None


class Embedder:
    """Embeds texts with a GGUF model, many at a time, through llama.cpp.

    Texts are tokenized in C++ on several threads, packed into a fixed batch and
    decoded whenever the next text does not fit, so any number of texts streams
    through; each text's pooled, normalised embedding is written straight into
    its row of the output.

    Args:
        model: a catalogue name (see ``python -m llamabatch.models list``), a path
            to a ``.gguf`` file, or None for the default (all-MiniLM-L6-v2).
        pooling: None for the model's own pooling, or "none", "mean", "cls",
            "last", "rank". A pooling the model cannot do raises ValueError here.
        normalize: default for :meth:`encode`: True/"l2", False, "max-abs",
            "taxicab", or an int p for the p-norm.
        n_ctx: the most tokens one text may have (default: the model's trained
            context, capped by n_batch).
        n_batch: tokens per decode (default: 512..2048 from the model's context).
            Non-causal (BERT-like) models decode a whole batch as one micro-batch.
        n_seq_max: texts per decode at most (default: as many as llama.cpp allows).
        n_threads: CPU threads (default: all).
        n_gpu_layers: layers on the GPU. None (default): every layer when a
            GPU is found (CUDA builds), else the CPU; 0: the CPU; -1: all.
            :attr:`device` says where it runs.
        weights: the weight format. None (default): a catalogue model in the
            fastest format for where it runs (f32 on AVX2 CPUs, bf16 with
            AVX-512 BF16, f16 on a GPU), a file of your own as it is;
            "fastest": your own float file too; "f32", "f16" or "bf16": that
            format. A file in another float format is converted once into the
            cache (:func:`llamabatch.weights.converted_copy`). :attr:`weights`
            and :attr:`weights_reason` say which runs and why.
        flash_attn: use flash attention (default True: faster for packed batches
            on the CPU). Try False if a model gives non-finite embeddings.
        parse_special: read a special token's text in a text ("[SEP]",
            "[MASK]") as that token, as sentence-transformers does (default
            True). False keeps it as plain text.
        batch_invariant: each text's embedding the same bits whatever else is in
            its batch, where it sits there, ``batch_size``, ``n_batch`` and
            ``n_threads`` (default False: the fastest kernels, whose sums depend
            on the batch by about 1e-4). Runs on the CPU only (the model is
            loaded there when ``n_gpu_layers`` is None) and costs some speed:
            see docs/reliability.md.
        verbose: show llama.cpp's log.

    Tokens: a BERT (WordPiece) model's texts are tokenized with BERT's own
    rules, giving the same ids as the model's Hugging Face tokenizer; other
    vocabularies use llama.cpp's tokenizer.

    Threads: one Embedder may be shared by several Python threads; their calls
    run one at a time (each waits for the one before it), with results equal to
    sequential calls. Separate Embedders in separate threads run in parallel:
    the GIL is released while llama.cpp works.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        pooling: str | None = None,
        normalize: Normalize = True,
        n_ctx: int | None = None,
        n_batch: int | None = None,
        n_seq_max: int | None = None,
        n_threads: int | None = None,
        n_gpu_layers: int | None = None,
        flash_attn: bool = True,
        parse_special: bool = True,
        weights: str | None = None,
        batch_invariant: bool = False,
        verbose: bool = False,
    ) -> None:
        self._norm = _norm_code(normalize)
        if verbose:
            _core.set_verbose(True)
        from . import models  # here, so `python -m llamabatch.models` runs without a double import

        self._resolved = resolve_model(model, models.DEFAULT_EMBEDDING_MODEL, weights, n_gpu_layers=n_gpu_layers)
        self.model = load_model(self._resolved.path, n_gpu_layers, batch_invariant=batch_invariant)
        self._core = _core.Embedder(
            self.model,
            n_ctx=n_ctx or 0,
            n_batch=n_batch or 0,
            n_seq_max=n_seq_max or 0,
            n_threads=n_threads or 0,
            pooling=pooling,
            flash_attn=flash_attn,
            parse_special=parse_special,
            batch_invariant=batch_invariant,
        )

    # ------------------------------------------------------------ properties
    @property
    def batch_invariant(self) -> bool:
        """Whether each text's embedding is the same bits whatever its batch (see the constructor)."""
        return bool(self._core.batch_invariant)

    @property
    def device(self) -> str:
        """Where the model runs: "cpu", "cuda:0", or "cuda:0+cpu" when only some layers are on the GPU."""
        return str(self.model.device)

    @property
    def weights(self) -> str:
        """The weight format that runs: "f32", "f16", "bf16", or a quantization such as "q8_0"."""
        return self._resolved.format

    @property
    def weights_reason(self) -> str:
        """Why :attr:`weights` is the format that runs."""
        return self._resolved.reason

    @property
    def parse_special(self) -> bool:
        """Whether a special token's text in a text is read as that token."""
        return bool(self._core.parse_special)

    @property
    def n_embd(self) -> int:
        """Width of one embedding."""
        return self._core.n_embd

    @property
    def pooling(self) -> str:
        """The pooling in use: "none", "mean", "cls", "last" or "rank"."""
        return self._core.pooling

    @property
    def n_ctx(self) -> int:
        """The most tokens one text may have; longer texts need ``truncate``."""
        return self._core.max_tokens

    @property
    def n_batch(self) -> int:
        """Tokens per decode."""
        return self._core.n_batch

    @property
    def n_seq_max(self) -> int:
        """Texts per decode at most."""
        return self._core.n_seq_max

    @property
    def stats(self) -> dict[str, float]:
        """Counters since creation (or :meth:`reset_stats`): decodes, tokens,
        sequences, decode_seconds (inside llama.cpp), total_seconds."""
        return self._core.stats

    def reset_stats(self) -> None:
        self._core.reset_stats()

    # ------------------------------------------------------------ work
    def tokenize(self, texts: str | Sequence[str]) -> list[np.ndarray]:
        """Token ids of each text (with the model's special tokens), as int32 arrays."""
        if isinstance(texts, str):
            texts = [texts]
        return self._core.tokenize(_as_text_list(texts))

    def encode(
        self,
        texts: str | Sequence[str],
        *,
        batch_size: int | None = None,
        truncate: bool | int = False,
        normalize: Normalize | str = "default",
        show_progress: bool = False,
    ) -> np.ndarray | list[np.ndarray]:
        """Embeds texts; rows are in input order whatever the packing.

        Args:
            texts: a str (gives a 1-D array) or a sequence of str.
            batch_size: texts per decode at most (default: as many as fit in
                n_batch tokens, up to n_seq_max).
            truncate: False: a text over :attr:`n_ctx` tokens raises ValueError
                naming it; True: cut to n_ctx tokens; N: cut to N tokens. A cut
                text keeps its closing special token ([SEP]/EOS).
            normalize: overrides the Embedder's default for this call.
            show_progress: a tqdm bar that moves as batches finish.

        Returns:
            float32, C-contiguous: ``(n_embd,)`` for a str, ``(len(texts), n_embd)``
            for a sequence (``(0, n_embd)`` when empty). With pooling "none", a
            list of ``(n_tokens_i, n_embd)`` arrays, views of one contiguous matrix.
            With pooling "rank", the scores.

        An empty string is valid for models that add special tokens (BERT-like
        models embed "[CLS] [SEP]"); for a model that adds none it is an error.
        A NaN or infinite value from llama.cpp raises RuntimeError naming the text.
        Ctrl-C stops the call between decodes with KeyboardInterrupt; the
        Embedder stays usable.
        """
        single = isinstance(texts, str)
        items: Sequence[str] = [texts] if isinstance(texts, str) else _as_text_list(texts)
        norm = self._norm_arg(normalize)
        trunc = self._truncate_arg(truncate)
        if batch_size is not None:
            check_positive_int("batch_size", batch_size)

        with progress_callback(len(items), show_progress, unit="text", desc="embedding") as progress:
            matrix, offsets = self._core.encode(items, truncate=trunc, norm=norm, batch_size=int(batch_size or 0),
                                                progress=progress)
        if offsets is None:
            return matrix[0] if single else matrix
        per_text = [matrix[offsets[i]:offsets[i + 1]] for i in range(len(items))]
        return per_text[0] if single else per_text

    def encode_tokens(
        self,
        tokens: Sequence[Sequence[int] | np.ndarray],
        *,
        truncate: bool | int = False,
        normalize: Normalize | str = "default",
    ) -> np.ndarray | list[np.ndarray]:
        """Embeds sequences of token ids, as :meth:`tokenize` gives them.

        Each sequence is used as it is: add the model's special tokens
        yourself (``tokenize`` does). ``truncate`` and ``normalize`` are as in
        :meth:`encode`. A token id outside the vocabulary raises
        :class:`llamabatch.InputError` naming the sequence.

        Returns:
            ``(len(tokens), n_embd)`` float32 rows in input order; with pooling
            "none", a list of ``(n_tokens_i, n_embd)`` arrays.
        """
        matrix, offsets, _ = self.embed_tokens(tokens, truncate=truncate, normalize=normalize)
        if offsets is None:
            return matrix
        return [matrix[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]

    def embed_tokens(
        self,
        tokens: Sequence[Sequence[int] | np.ndarray],
        *,
        truncate: bool | int = False,
        normalize: Normalize | str = "default",
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """:meth:`encode_tokens` with the raw layout: ``(matrix, offsets, lengths)``.

        ``offsets`` is None for pooled rows (else each sequence's first row,
        for pooling "none"); ``lengths`` holds each sequence's token count
        after truncation (int32), for counting what was embedded.
        """
        if isinstance(tokens, (str, bytes)):
            raise TypeError("tokens must be a list of token id sequences; use encode() for text")
        return self._core.embed_tokens(list(tokens), truncate=self._truncate_arg(truncate),
                                       norm=self._norm_arg(normalize))

    def rank(self, query: str, documents: Sequence[str]) -> np.ndarray:
        """Relevance scores of documents for a query, from a reranker model.

        Not supported yet: no reranker GGUF can be obtained offline to test it
        against, so this raises rather than return unverified scores.
        """
        raise NotImplementedError(
            "rank() is not supported yet: it needs a reranker GGUF (pooling 'rank'), and none is in the "
            "catalogue; use encode() and cosine similarity instead"
        )

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Cosine similarity matrix between two sets of embeddings (rows)."""
        a = np.atleast_2d(np.asarray(a, dtype=np.float32))
        b = np.atleast_2d(np.asarray(b, dtype=np.float32))
        a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        scores: np.ndarray = a @ b.T
        return scores

    # ------------------------------------------------------------ helpers
    def _norm_arg(self, normalize: Normalize | str) -> int:
        """A call's ``normalize``: "default" is the Embedder's own."""
        return self._norm if isinstance(normalize, str) and normalize == "default" else _norm_code(normalize)

    def _truncate_arg(self, truncate: bool | int) -> int:
        if truncate is False or truncate is None:
            return 0
        if truncate is True:
            return self.n_ctx
        if isinstance(truncate, (int, np.integer)) and truncate >= 1:
            return int(truncate)
        raise ValueError(f"truncate must be True, False or a positive token count, got {truncate!r}")

    def __repr__(self) -> str:
        invariant = ", batch_invariant=True" if self.batch_invariant else ""
        return (f"Embedder(model='{self.model.path}', weights='{self.weights}', pooling='{self.pooling}', "
                f"n_embd={self.n_embd}, n_ctx={self.n_ctx}, n_batch={self.n_batch}, device='{self.device}'"
                f"{invariant})")
