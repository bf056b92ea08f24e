"""`Generator`: batched text generation with continuous batching."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Union

import numpy as np

from . import _core
from .devices import load_model
from ._progress import progress_callback

Message = Dict[str, str]
Prompt = Union[str, List[Message]]


@dataclass(frozen=True)
class Completion:
    """One prompt's result."""

    text: str
    tokens: np.ndarray  # int32 ids of the generated tokens (no end-of-generation token)
    finish_reason: str  # "stop" (end of generation or a stop string) or "length"
    prompt_tokens: int
    completion_tokens: int


class Generator:
    """Generates text for many prompts at once on a GGUF model.

    Up to ``n_parallel`` sequences decode together in one batch; new prompts are
    prefilled in the same batches as the next tokens of running ones; a finished
    sequence frees its slot and the next prompt takes it at once. Sampling runs
    in C++ with llama.cpp's sampler chain, one per sequence.

    Args:
        model: a catalogue name, a ``.gguf`` path, or None for SmolLM2-135M-Instruct.
        n_parallel: sequences decoding together.
        n_ctx: most tokens (prompt + completion) per sequence (default: the
            model's trained context, at most 2048).
        n_batch: tokens per decode (default: max(512, n_parallel)).
        n_threads: CPU threads (default: all).
        n_gpu_layers: layers on the GPU. None (default): every layer when a
            GPU is found (CUDA builds), else the CPU; 0: the CPU; -1: all.
            :attr:`device` says where it runs.
        verbose: show llama.cpp's log.

    Threads: one Generator may be shared by several Python threads; their calls
    run one at a time, with results equal to sequential calls. Separate
    Generators in separate threads run in parallel (the GIL is released).
    Ctrl-C stops a call between decodes with KeyboardInterrupt.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        n_parallel: int = 16,
        n_ctx: int | None = None,
        n_batch: int | None = None,
        n_threads: int | None = None,
        n_gpu_layers: int | None = None,
        verbose: bool = False,
    ) -> None:
        if verbose:
            _core.set_verbose(True)
        from . import models  # here, so `python -m llamabatch.models` runs without a double import

        path = models.resolve(model, models.DEFAULT_GENERATION_MODEL)
        self.model = load_model(path, n_gpu_layers)
        self._core = _core.Generator(
            self.model, n_parallel=n_parallel, n_ctx=n_ctx or 0, n_batch=n_batch or 0, n_threads=n_threads or 0
        )

    @property
    def device(self) -> str:
        """Where the model runs: "cpu", "cuda:0", or "cuda:0+cpu" when only some layers are on the GPU."""
        return str(self.model.device)

    @property
    def n_parallel(self) -> int:
        return self._core.n_parallel

    @property
    def n_ctx(self) -> int:
        """Most tokens (prompt + completion) per sequence."""
        return self._core.n_ctx

    @property
    def stats(self) -> dict[str, float]:
        """decodes, batch_tokens, prompt_tokens, generated_tokens, sequences, decode_seconds, total_seconds."""
        return self._core.stats

    def reset_stats(self) -> None:
        self._core.reset_stats()

    def generate(self, prompts: Prompt | Sequence[Prompt], **kwargs: Any) -> list[str] | str:
        """Completions of the prompts, in prompt order (a str for a single str prompt).

        Keyword arguments are those of :meth:`generate_details`.
        """
        single = isinstance(prompts, str)
        details = self.generate_details([prompts] if single else prompts, **kwargs)
        texts = [d.text for d in details]
        return texts[0] if single else texts

    def generate_details(
        self,
        prompts: Sequence[Prompt],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_k: int | None = None,
        top_p: float | None = None,
        min_p: float | None = None,
        seed: int | None = None,
        stop: str | Sequence[str] | None = None,
        ignore_eos: bool = False,
        chat: bool = False,
        system: str | None = None,
        show_progress: bool = False,
    ) -> list[Completion]:
        """Completions with token ids, finish reasons and token counts.

        Args:
            prompts: str prompts, or lists of ``{"role", "content"}`` messages
                (always formatted with the model's chat template).
            max_new_tokens: most tokens generated per prompt.
            temperature: 0 is greedy; otherwise top_k, top_p, min_p then temperature.
            seed: makes each prompt's sample reproducible whatever n_parallel or slot.
            stop: strings that end a completion (not included in its text).
            ignore_eos: never sample an end-of-generation token, so every
                completion runs to ``max_new_tokens`` (unless a stop string or
                ``n_ctx`` ends it first); llama.cpp server's option of the same
                name. For fixed-length benchmarks: the text past the model's own
                end is usually rambling.
            chat: apply the model's own chat template to str prompts (a user
                message, after ``system`` if given). A model without a template
                (a base model) raises ValueError.
            show_progress: a tqdm bar that moves as prompts finish.
        """
        if isinstance(prompts, (str, bytes)) or prompts is None:
            raise TypeError("prompts must be a list of prompts; use generate() for a single str")
        prompts = list(prompts)
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be a positive int, got {max_new_tokens!r}")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
            raise ValueError(f"top_k must be a positive int or None, got {top_k!r}")
        if seed is not None and not 0 <= seed < 2**32 - 1:
            raise ValueError(f"seed must be in 0..{2**32 - 2} or None, got {seed!r}")
        if isinstance(stop, str):
            stop = [stop]
        if system is not None and not isinstance(system, str):
            raise TypeError("system must be a str or None")

        with progress_callback(len(prompts), show_progress, unit="prompt", desc="generating") as progress:
            raw = self._core.generate(
                prompts,
                chat=chat,
                system=system,
                max_new_tokens=int(max_new_tokens),
                temperature=float(temperature),
                top_k=int(top_k or 0),
                top_p=1.0 if top_p is None else float(top_p),
                min_p=0.0 if min_p is None else float(min_p),
                seed=-1 if seed is None else int(seed),
                stop=list(stop or []),
                ignore_eos=bool(ignore_eos),
                progress=progress,
            )
        return [
            Completion(
                text=text.decode("utf-8", errors="replace"),
                tokens=tokens,
                finish_reason=finish,
                prompt_tokens=n_prompt,
                completion_tokens=len(tokens),
            )
            for tokens, text, finish, n_prompt in raw
        ]

    def __repr__(self) -> str:
        return f"Generator(model='{self.model.path}', n_parallel={self.n_parallel}, n_ctx={self.n_ctx})"

