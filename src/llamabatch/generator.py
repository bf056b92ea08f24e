"""`Generator`: batched text generation with continuous batching."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional, Sequence, Union, cast

import numpy as np

from . import _core
from ._checks import check_positive_int
from .chat_template import ChatPrompter
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
    # Of prompt_tokens, those found in the slot's memory from an earlier prompt
    # that began the same way (not decoded again; see Generator's prefix_cache).
    cached_tokens: int = 0


PROMPT_PLACEHOLDER = "{prompt}"


def fill_template(template: str | None, prompts: Sequence[str]) -> list[str]:
    """Each prompt put where ``{prompt}`` is in ``template`` (other braces stay as
    they are), or the prompts unchanged when there is no template. A template
    without ``{prompt}`` would give every row the same prompt: ValueError."""
    if not template:
        return list(prompts)
    if PROMPT_PLACEHOLDER not in template:
        raise ValueError(f"prompt template {template!r} has no {PROMPT_PLACEHOLDER} where each prompt should go")
    return [template.replace(PROMPT_PLACEHOLDER, p) for p in prompts]


@dataclass(frozen=True)
class SamplingOptions:
    """How one completion is sampled and when it ends; checked when made.

    Attributes:
        max_new_tokens: most tokens generated.
        temperature: 0 is greedy; otherwise top_k, top_p, min_p then temperature.
        top_k, top_p, min_p: None leaves that filter off.
        seed: makes a sample reproducible whatever n_parallel or slot.
        stop: strings that end a completion (not included in its text).
        ignore_eos: never sample an end-of-generation token (see
            :meth:`Generator.generate_details`).
    """

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_k: Optional[int] = None
    top_p: Optional[float] = None
    min_p: Optional[float] = None
    seed: Optional[int] = None
    stop: Sequence[str] = field(default_factory=tuple)
    ignore_eos: bool = False

    def __post_init__(self) -> None:
        check_positive_int("max_new_tokens", self.max_new_tokens)
        if self.top_k is not None:
            check_positive_int("top_k", self.top_k)
        for name in ("temperature", "top_p", "min_p"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, np.number))):
                raise TypeError(f"{name} must be a number or None, got {value!r}")
        if self.temperature is None or self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature!r}")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1] or None, got {self.top_p!r}")
        if self.min_p is not None and not 0.0 <= self.min_p <= 1.0:
            raise ValueError(f"min_p must be in [0, 1] or None, got {self.min_p!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer))
                                      or not 0 <= self.seed < 2**32 - 1):
            raise ValueError(f"seed must be an int in 0..{2**32 - 2} or None, got {self.seed!r}")
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or ())
        if not all(isinstance(x, str) for x in stop):
            raise TypeError(f"stop must be a str or a list of str, got {self.stop!r}")
        object.__setattr__(self, "stop", tuple(stop))

    def as_kwargs(self) -> dict[str, Any]:
        """The fields as keyword arguments of :meth:`Generator.generate_details` (same names)."""
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"stop": list(self.stop)}

    def core_arguments(self) -> dict[str, Any]:
        """The keyword arguments of the C++ Generator's generate() and submit()."""
        return {
            "max_new_tokens": int(self.max_new_tokens),
            "temperature": float(self.temperature),
            "top_k": int(self.top_k or 0),
            "top_p": 1.0 if self.top_p is None else float(self.top_p),
            "min_p": 0.0 if self.min_p is None else float(self.min_p),
            "seed": -1 if self.seed is None else int(self.seed),
            "stop": list(self.stop),
            "ignore_eos": bool(self.ignore_eos),
        }


@dataclass(frozen=True)
class GenerationEvent:
    """What one :meth:`Generator.step` did for one submitted request."""

    id: int
    text: str  # text that became final in this step (never a part of a stop string)
    new_tokens: int  # tokens generated in this step
    finished: bool
    completion: Optional[Completion] = None  # the whole result, once finished
    error: Optional[str] = None  # why the request failed (finish_reason "error")


def _input_error(i: int, message: str) -> _core.InputError:
    """llamabatch.InputError (a ValueError) naming prompt i, as the core raises it."""
    error = _core.InputError(message)
    setattr(error, "index", i)  # as the bindings set it (the stub's InputError declares no fields)
    return error


def _message(i: int, message: Any) -> Message:
    """A message of prompt i, checked: a mapping with str 'role' and 'content'."""
    for key in ("role", "content"):
        try:
            value = message[key]
        except (KeyError, TypeError, IndexError):
            raise _input_error(i, f"prompt {i}: each message needs '{key}' (a dict with 'role' and 'content')") \
                from None
        if not isinstance(value, str):
            raise TypeError(f"prompt {i}: message '{key}' must be a str")
    return dict(message)


def _completion(tokens: np.ndarray, text: bytes, finish: str, n_prompt: int, n_cached: int) -> Completion:
    return Completion(text=text.decode("utf-8", errors="replace"), tokens=tokens, finish_reason=finish,
                      prompt_tokens=int(n_prompt), completion_tokens=len(tokens), cached_tokens=int(n_cached))


def end_tokens(model: _core.Model, prompter: ChatPrompter | None) -> list[int]:
    """What ends a completion on ``model``: the GGUF's declared end tokens and the
    end-of-turn token of ``prompter``'s template (see :attr:`Generator.end_tokens`)."""
    tokens = [int(t) for t in model.declared_end_tokens]
    turn_end = prompter.end_of_turn_token() if prompter is not None else None
    if turn_end is not None and turn_end not in tokens:
        tokens.append(turn_end)
    return tokens


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
        chat_template: how chat prompts are rendered (see :meth:`generate_details`):
            None for the GGUF's own template, a Jinja template (a str), the name
            of a template the GGUF stores (``tokenizer.chat_template.<name>``) or
            the path of a file holding one.
        batch_invariant: a prompt's greedy completion the same whatever else
            runs beside it and whatever ``n_parallel``, ``n_batch`` and
            ``n_threads`` (default False: the fastest kernels, where a near-tie
            can go either way). Runs on the CPU only (the model is loaded there
            when ``n_gpu_layers`` is None) and costs some speed: see
            docs/reliability.md.
        prefix_cache: keep each slot's tokens in memory after its completion
            ends, and start the next prompt from the longest prefix it shares
            with them, as llama-server's prompt cache does (default True);
            when another slot holds a much longer prefix, a copy of its memory
            is taken first. A shared system prompt or instruction is decoded
            once, not once per prompt, and a conversation that goes on decodes
            only its new turn. :attr:`Completion.cached_tokens` and ``stats["cached_tokens"]``
            count what was reused. In the default mode a reused prefix may
            differ from a fresh decode in the last bits (as a different
            ``n_batch`` would); with ``batch_invariant`` it is the same bits.
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
        chat_template: str | os.PathLike[str] | None = None,
        batch_invariant: bool = False,
        prefix_cache: bool = True,
        verbose: bool = False,
    ) -> None:
        if verbose:
            _core.set_verbose(True)
        from . import models  # here, so `python -m llamabatch.models` runs without a double import

        path = models.resolve(model, models.DEFAULT_GENERATION_MODEL)
        self.model = load_model(path, n_gpu_layers, batch_invariant=batch_invariant)
        # A template given must work; a model without one of its own still generates plain prompts.
        self._chat_template = chat_template
        self._prompter = ChatPrompter(self.model, chat_template) if chat_template is not None else None
        if self._prompter is None and self.model.chat_template:
            try:
                self._prompter = ChatPrompter(self.model)
            except ValueError:
                pass  # a GGUF template that does not compile: chat prompts say so when asked for
        self._core = _core.Generator(
            self.model, n_parallel=n_parallel, n_ctx=n_ctx or 0, n_batch=n_batch or 0, n_threads=n_threads or 0,
            end_tokens=end_tokens(self.model, self._prompter), batch_invariant=batch_invariant,
            prefix_cache=prefix_cache,
        )

    @property
    def chat_prompter(self) -> ChatPrompter:
        """What renders and tokenizes chat prompts (ValueError for a model without a template)."""
        if self._prompter is None:
            self._prompter = ChatPrompter(self.model, self._chat_template)
        return self._prompter

    @property
    def end_tokens(self) -> list[int]:
        """The token ids that end a completion: the ones the GGUF declares (eos, and
        eot and eom when it names them) and the end-of-turn token of the chat template.
        Tokens llama.cpp would take as ends by their text alone (Gemma 3's ``</s>``) are not."""
        return [int(t) for t in self._core.end_tokens]

    @property
    def batch_invariant(self) -> bool:
        """Whether greedy completions are independent of the batch (see the constructor)."""
        return bool(self._core.batch_invariant)

    @property
    def prefix_cache(self) -> bool:
        """Whether prompts reuse the prefix they share with a slot's memory (see the constructor)."""
        return bool(self._core.prefix_cache)

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
        """decodes, batch_tokens, prompt_tokens, cached_tokens (of prompt_tokens, those reused from a
        slot's memory), prefix_copies (prefixes copied from another slot's memory), generated_tokens,
        sequences, decode_seconds, total_seconds."""
        return self._core.stats

    def reset_stats(self) -> None:
        self._core.reset_stats()

    def generate(self, prompts: Prompt | Sequence[Prompt], **kwargs: Any) -> list[str] | str:
        """Completions of the prompts, in prompt order (a str for a single str prompt).

        Keyword arguments are those of :meth:`generate_details`.
        """
        if isinstance(prompts, str):
            return self.generate_details([prompts], **kwargs)[0].text
        return [d.text for d in self.generate_details(cast(Sequence[Prompt], prompts), **kwargs)]

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
            prompts: str prompts, lists of ``{"role", "content"}`` messages
                (always rendered with the chat template), or arrays of token ids.
                A chat prompt is the model's Jinja template rendered as
                transformers renders it (:mod:`llamabatch.chat_template`); special-
                token text inside a message stays text.
            max_new_tokens: most tokens generated per prompt.
            temperature: 0 is greedy; otherwise top_k, top_p, min_p then temperature.
            seed: makes each prompt's sample reproducible whatever n_parallel or slot.
            stop: strings that end a completion (not included in its text).
            ignore_eos: never sample an end-of-generation token, so every
                completion runs to ``max_new_tokens`` (unless a stop string or
                ``n_ctx`` ends it first); llama.cpp server's option of the same
                name. For fixed-length benchmarks: the text past the model's own
                end is usually rambling.
            chat: apply the chat template to str prompts (a user message, after
                ``system`` if given). A model without a template (a base model)
                raises ValueError, as does a template that refuses the messages
                (its ``raise_exception``).
            show_progress: a tqdm bar that moves as prompts finish.
        """
        if isinstance(prompts, (str, bytes)) or prompts is None:
            raise TypeError("prompts must be a list of prompts; use generate() for a single str")
        prompts = list(prompts)
        options = SamplingOptions(max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                                  min_p=min_p, seed=seed, stop=stop or (), ignore_eos=ignore_eos)
        inputs = [self._core_prompt(i, p, chat, system) for i, p in enumerate(prompts)]
        with progress_callback(len(prompts), show_progress, unit="prompt", desc="generating") as progress:
            raw = self._core.generate(inputs, progress=progress, **options.core_arguments())
        return [_completion(*result) for result in raw]

    # ------------------------------------------------------------ one decode at a time
    def prompt_tokens(self, prompt: Prompt, *, chat: bool = False, system: str | None = None) -> np.ndarray:
        """The token ids a prompt becomes, as :meth:`generate_details` builds them."""
        core = self._core_prompt(0, prompt, chat, system)
        return self.model.prompt_tokens(core) if isinstance(core, str) else np.asarray(core)

    def _core_prompt(self, i: int, prompt: Any, chat: bool, system: str | None) -> Any:
        """What the core's generate() takes for a prompt: a plain str as it is, a chat
        prompt as token ids; anything else as it is, for the core to refuse."""
        if system is not None and not isinstance(system, str):
            raise TypeError("system must be a str or None")
        if isinstance(prompt, str):
            if not chat:
                return prompt
            messages: list[Message] = [{"role": "user", "content": prompt}]
        elif isinstance(prompt, (list, tuple)):
            if not prompt:
                raise _input_error(i, f"prompt {i} is an empty list of messages")
            messages = [_message(i, m) for m in prompt]
        else:
            return prompt
        if system is not None:
            messages.insert(0, {"role": "system", "content": system})
        try:
            return self.chat_prompter.tokens(messages)
        except ValueError as e:
            raise _input_error(i, f"prompt {i}: {e}") from None

    def submit(self, prompt: Prompt | np.ndarray, options: SamplingOptions | None = None, *, chat: bool = False,
               system: str | None = None) -> int:
        """Queues one prompt for :meth:`step`; returns its id.

        The prompt is a str, a list of messages (see :meth:`generate_details`)
        or an array of token ids. It joins the running batch at the next step,
        in submission order. Raises ValueError for a prompt that cannot run
        (empty, or longer than :attr:`n_ctx`).
        """
        if isinstance(prompt, np.ndarray):
            tokens = prompt
        else:
            tokens = self.prompt_tokens(prompt, chat=chat, system=system)
        return int(self._core.submit(tokens, **(options or SamplingOptions()).core_arguments()))

    def step(self) -> list[GenerationEvent]:
        """One decode for the submitted prompts: returns an event for each that
        got text or finished. Does nothing when :attr:`idle`.

        Every running prompt advances by one token (or a chunk of its prompt);
        queued prompts take the slots that free up. A request's events' texts
        joined are its completion's text.
        """
        events = []
        for id_, text, new_tokens, result, error in self._core.step():
            events.append(GenerationEvent(id=int(id_), text=text.decode("utf-8", errors="replace"),
                                          new_tokens=int(new_tokens), finished=result is not None,
                                          completion=None if result is None else _completion(*result), error=error))
        return events

    def cancel(self, request_id: int) -> bool:
        """Drops a queued prompt or ends a running one, freeing its slot at once.
        False if the id is unknown or already finished."""
        return bool(self._core.cancel(int(request_id)))

    @property
    def idle(self) -> bool:
        """True when no submitted prompt is queued or running."""
        return bool(self._core.idle)

    @property
    def n_queued(self) -> int:
        return int(self._core.n_queued)

    @property
    def n_running(self) -> int:
        return int(self._core.n_running)

    def __repr__(self) -> str:
        return f"Generator(model='{self.model.path}', n_parallel={self.n_parallel}, n_ctx={self.n_ctx})"

