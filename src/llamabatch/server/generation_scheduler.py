"""Generation across requests: one thread owns the Generator and runs its
continuous batch; a new request joins it at the next decode.

Requests only enqueue a :class:`GenerationStream` and read its events from an
asyncio queue. The thread submits new streams, cancels the ones whose client
has gone (their slots free at once), and calls ``Generator.step()`` (one
decode, GIL released) while anything runs. Waiting requests take free slots in
arrival order.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from ..generator import GenerationEvent, Generator, SamplingOptions
from .errors import APIError, bad_request, too_busy
from .metrics import Metrics
from .worker import ModelWorker, deliver

# What a stream's queue receives: ADMITTED once its request is in the
# Generator, then GenerationEvents, or an APIError.
ADMITTED = "admitted"


@dataclass(eq=False)
class GenerationStream:
    """One prompt of a request; ``index`` is its choice number."""

    prompt: np.ndarray
    options: SamplingOptions
    loop: asyncio.AbstractEventLoop
    queue: "asyncio.Queue[Any]"
    index: int = 0
    arrived: float = field(default_factory=time.perf_counter)
    core_id: Optional[int] = None
    cancelled: bool = False
    first_token_at: Optional[float] = None

    def post(self, item: Any) -> None:
        deliver(self.loop, self.queue.put_nowait, (self.index, item))


class GenerationScheduler(ModelWorker):
    """Owns one Generator; see the module docstring."""

    def __init__(self, generator: Generator, model_id: str, metrics: Metrics, max_queued_tokens: int) -> None:
        super().__init__(f"llamabatch-generate-{model_id}")
        self.generator = generator
        self.model_id = model_id
        self.metrics = metrics
        self.max_queued_tokens = max_queued_tokens
        self._inbox: List[GenerationStream] = []
        self._cancels: List[GenerationStream] = []
        self._active: Dict[int, GenerationStream] = {}
        self._waiting_tokens = 0  # prompt tokens not yet in the Generator's running batch
        metrics.queue_length.read_from(self.waiting_requests, model=model_id, kind="generation")
        metrics.running.read_from(self.running_requests, model=model_id)

    # The gauges read the scheduler's own view, never the Generator, which
    # only its thread may touch.
    def waiting_requests(self) -> int:
        """Streams with no token yet: queued, or their prompt still being read."""
        active = list(self._active.values())
        return len(self._inbox) + sum(1 for s in active if s.first_token_at is None)

    def running_requests(self) -> int:
        active = list(self._active.values())
        return sum(1 for s in active if s.first_token_at is not None)

    def submit(self, streams: List[GenerationStream]) -> None:
        """Queues a request's streams, or raises 429 when the queue is full."""
        tokens = sum(len(s.prompt) for s in streams)
        if tokens > self.max_queued_tokens:
            raise bad_request(f"the request has {tokens} prompt tokens, above this server's --max-queued-tokens "
                              f"{self.max_queued_tokens}")
        with self._cond:
            if self._stopping:
                raise APIError(503, "the server is shutting down", type="service_unavailable", code="shutting_down")
            if self._waiting_tokens + tokens > self.max_queued_tokens:
                raise too_busy(f"the generation queue is full ({self._waiting_tokens} prompt tokens waiting, limit "
                               f"{self.max_queued_tokens}); retry shortly")
            self._inbox.extend(streams)
            self._waiting_tokens += tokens
            self._cond.notify()

    def cancel(self, streams: List[GenerationStream]) -> None:
        """Ends streams whose client has gone: their slots free before the next decode."""
        with self._cond:
            for s in streams:
                if not s.cancelled:
                    s.cancelled = True
                    self._cancels.append(s)
            self._cond.notify()

    # ---------------------------------------------------------------- thread
    def _run(self) -> None:
        gen = self.generator
        while True:
            with self._cond:
                while not self._inbox and not self._cancels and gen.idle and not self._stopping:
                    self._cond.wait()
                if self._stopping and gen.idle and not self._inbox:
                    return
                new, self._inbox = self._inbox, []
                gone, self._cancels = self._cancels, []
            for s in new:
                if s.cancelled:
                    self._forget_waiting(len(s.prompt))
                    continue
                try:
                    s.core_id = gen.submit(s.prompt, s.options)
                except (ValueError, TypeError) as e:
                    self._forget_waiting(len(s.prompt))
                    s.post(bad_request(str(e)))
                    continue
                self._active[s.core_id] = s
                s.post(ADMITTED)
            for s in gone:
                if s.core_id is not None and self._active.pop(s.core_id, None) is not None:
                    if gen.cancel(s.core_id) and s.first_token_at is None:
                        self._forget_waiting(len(s.prompt))
            if self._stopping:  # every request still here had its time: end them
                for core_id, s in list(self._active.items()):
                    gen.cancel(core_id)
                    s.post(APIError(503, "the server shut down before this request finished",
                                    type="service_unavailable", code="shutting_down"))
                self._active.clear()
                continue
            if not gen.idle:
                self._step()

    def _forget_waiting(self, n_tokens: int) -> None:
        with self._cond:
            self._waiting_tokens -= n_tokens

    def _step(self) -> None:
        gen = self.generator
        decodes_before = gen.stats["decodes"]
        events: List[GenerationEvent] = gen.step()
        now = time.perf_counter()
        finished = 0
        for ev in events:
            s = self._active.get(ev.id)
            if s is None:
                continue
            if s.first_token_at is None and (ev.new_tokens > 0 or ev.finished):
                s.first_token_at = now
                self._forget_waiting(len(s.prompt))
                self.metrics.first_token.observe(now - s.arrived)
            self.metrics.tokens.inc(ev.new_tokens, model=self.model_id, kind="completion")
            if ev.finished:
                finished += 1
                del self._active[ev.id]
                if ev.completion is not None:
                    self.metrics.tokens.inc(ev.completion.prompt_tokens, model=self.model_id, kind="prompt")
                    self.metrics.tokens.inc(ev.completion.cached_tokens, model=self.model_id, kind="prompt_cached")
            s.post(ev)
        decodes = gen.stats["decodes"] - decodes_before
        if decodes:
            self.metrics.decodes.inc(decodes, model=self.model_id)
            self.metrics.sequences_per_decode.observe(gen.n_running + finished, model=self.model_id)
