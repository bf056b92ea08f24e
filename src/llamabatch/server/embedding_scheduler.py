"""Embeddings across requests: one thread owns the Embedder and packs the
inputs of every waiting request into each decode.

Requests are served first come, first served. Each decode takes inputs in
arrival order while they fit, by the same rule as ``Embedder.encode`` (tokens
within ``n_batch``, sequences within ``n_seq_max``), so one decode can hold the
last inputs of one request and the first of the next. A request with many
inputs is spread over several decodes; its rows are written to their places,
so they come back in input order.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Deque, Optional

import numpy as np

from ..embedder import Embedder
from .errors import APIError, bad_request, too_busy
from .metrics import Metrics
from .worker import ModelWorker, deliver


@dataclass(eq=False)
class EmbeddingJob:
    """One request's inputs, as token ids, and where its rows go."""

    inputs: list[np.ndarray]
    loop: asyncio.AbstractEventLoop
    future: "asyncio.Future[None]"
    width: int
    n_ctx: int
    arrived: float = field(default_factory=time.perf_counter)
    started: Optional[float] = None  # when its first input was decoded
    next: int = 0  # inputs handed to a decode so far
    finished_inputs: int = 0
    rows: np.ndarray = field(init=False)
    lengths: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.rows = np.empty((len(self.inputs), self.width), dtype=np.float32)
        self.lengths = np.zeros(len(self.inputs), dtype=np.int32)

    def cost(self, i: int) -> int:
        """Tokens input i takes in a batch (after truncation)."""
        return min(len(self.inputs[i]), self.n_ctx)

    @property
    def tokens_left(self) -> int:
        return sum(self.cost(i) for i in range(self.next, len(self.inputs)))

    def settle(self, error: Optional[BaseException] = None) -> None:
        """Resolves the future from the scheduler thread."""
        def resolve() -> None:
            if self.future.done():
                return
            if error is None:
                self.future.set_result(None)
            else:
                self.future.set_exception(error)
        deliver(self.loop, resolve)


class EmbeddingScheduler(ModelWorker):
    """Owns one Embedder; see the module docstring."""

    def __init__(self, embedder: Embedder, model_id: str, metrics: Metrics, max_queued_tokens: int) -> None:
        super().__init__(f"llamabatch-embed-{model_id}")
        self.embedder = embedder
        self.model_id = model_id
        self.metrics = metrics
        self.max_queued_tokens = max_queued_tokens
        self._queue: Deque[EmbeddingJob] = deque()
        self._queued_tokens = 0
        metrics.queue_length.read_from(self.queued_inputs, model=model_id, kind="embeddings")

    def queued_inputs(self) -> int:
        with self._cond:
            return sum(len(j.inputs) - j.next for j in self._queue)

    def submit(self, job: EmbeddingJob) -> None:
        """Queues a job, or raises 429 when the queue is full (a request that
        alone is over the limit gets 400: waiting would not help)."""
        tokens = job.tokens_left
        if tokens > self.max_queued_tokens:
            raise bad_request(f"the request has {tokens} tokens, above this server's --max-queued-tokens "
                              f"{self.max_queued_tokens}; send fewer inputs per request", param="input")
        with self._cond:
            if self._stopping:
                raise APIError(503, "the server is shutting down", type="service_unavailable", code="shutting_down")
            if self._queued_tokens + tokens > self.max_queued_tokens:
                raise too_busy(f"the embedding queue is full ({self._queued_tokens} tokens waiting, limit "
                               f"{self.max_queued_tokens}); retry shortly")
            self._queue.append(job)
            self._queued_tokens += tokens
            self._cond.notify()

    def cancel(self, job: EmbeddingJob) -> None:
        """Forgets a job whose client has gone; inputs already in a decode finish there."""
        with self._cond:
            if job in self._queue:
                self._queue.remove(job)
                self._queued_tokens -= job.tokens_left
                job.next = len(job.inputs)

    # ---------------------------------------------------------------- thread
    def _take_one_decode(self) -> list[tuple[EmbeddingJob, int, int]]:
        """Inputs for the next decode, in arrival order, while they fit. Call with the lock held."""
        max_tokens = self.embedder.n_batch
        max_seqs = self.embedder.n_seq_max
        picks: list[tuple[EmbeddingJob, int, int]] = []
        tokens = 0
        count = 0
        full = False
        for job in self._queue:
            start = job.next
            while job.next < len(job.inputs):
                n = job.cost(job.next)
                if count + 1 > max_seqs or tokens + n > max_tokens:
                    full = True
                    break
                tokens += n
                count += 1
                job.next += 1
            if job.next > start:
                picks.append((job, start, job.next))
            if full:
                break
        while self._queue and self._queue[0].next >= len(self._queue[0].inputs):
            self._queue.popleft()
        self._queued_tokens -= tokens
        return picks

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return
                picks = self._take_one_decode()
            if picks:
                self._decode(picks)

    def _decode(self, picks: list[tuple[EmbeddingJob, int, int]]) -> None:
        now = time.perf_counter()
        for job, start, _ in picks:
            if job.started is None:
                job.started = now
                self.metrics.queue_time.observe(now - job.arrived, endpoint="/v1/embeddings")
        sequences = [seq for job, start, end in picks for seq in job.inputs[start:end]]
        decodes_before = self.embedder.stats["decodes"]
        try:
            matrix, _, lengths = self.embedder.embed_tokens(sequences, truncate=True)
        except ValueError as e:  # one input is bad (checked before queueing, so rare): fail its request only
            self._fail_one_and_retry(picks, e)
            return
        except Exception as e:  # noqa: BLE001 - a fault of ours: every request in the decode gets a 500
            for job, _, _ in picks:
                job.settle(APIError(500, f"embedding failed: {e}", type="server_error"))
            return
        self.metrics.decodes.inc(self.embedder.stats["decodes"] - decodes_before, model=self.model_id)
        self.metrics.sequences_per_decode.observe(len(sequences), model=self.model_id)
        self.metrics.tokens.inc(float(lengths.sum()), model=self.model_id, kind="embedding")
        offset = 0
        for job, start, end in picks:
            n = end - start
            job.rows[start:end] = matrix[offset:offset + n]
            job.lengths[start:end] = lengths[offset:offset + n]
            offset += n
            job.finished_inputs += n
            if job.finished_inputs == len(job.inputs):
                job.settle()

    def _fail_one_and_retry(self, picks: list[tuple[EmbeddingJob, int, int]], error: ValueError) -> None:
        index = getattr(error, "index", None)
        offset = 0
        bad: Optional[EmbeddingJob] = None
        for job, start, end in picks:
            if index is not None and offset <= index < offset + (end - start):
                bad = job
                job.settle(bad_request(str(error).replace(f"text {index}", f"input[{start + index - offset}]"),
                                       param="input"))
            offset += end - start
        with self._cond:
            for job, start, _ in reversed(picks):
                if job is bad or (bad is None and job is picks[0][0]):
                    if bad is None:  # no index: fail the first request rather than loop forever
                        job.settle(bad_request(str(error), param="input"))
                    if job in self._queue:
                        self._queue.remove(job)
                        self._queued_tokens -= job.tokens_left
                    continue
                if job not in self._queue:
                    self._queue.appendleft(job)
                self._queued_tokens += sum(job.cost(i) for i in range(start, job.next))
                job.next = start
            self._cond.notify()
