"""The HTTP application: OpenAI's endpoints over the schedulers, plus
``/health``, ``/metrics`` and ``/tokenize``."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
import uuid
from typing import Any, AsyncIterator, Callable, Optional, Union

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from ..generator import Completion, GenerationEvent, SamplingOptions
from .config import ServerConfig
from .embedding_scheduler import EmbeddingJob, EmbeddingScheduler
from .errors import APIError, bad_request, on_api_error, on_validation_error
from .generation_scheduler import ADMITTED, GenerationScheduler, GenerationStream
from .metrics import Metrics
from .middleware import LOG_KEY, OPEN_PATHS, Gatekeeper
from .models import ServedModels
from .openapi import (HEALTH_RESPONSES, MODEL_ROUTE_ERRORS, ChatCompletion, ChatCompletionChunk, CompletionChunk,
                      EmbeddingList, ModelList, TextCompletion, Tokens, documenter, responses, text_responses)
from .schemas import (MAX_STOP, ChatRequest, CompletionRequest, EmbeddingRequest, TokenizeRequest,
                      text_or_token_inputs)

log = logging.getLogger("llamabatch.server")

# Texts longer than this (in all) are tokenized on a worker thread, off the event loop.
INLINE_TOKENIZE_CHARS = 4096
CLIENT_GONE = 499  # nginx's "client closed request", for the access log
FLOAT32_TINY = float(np.finfo(np.float32).tiny)


class PrometheusText(PlainTextResponse):
    media_type = "text/plain; version=0.0.4"


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _unless_gone(request: Request, waiting: "asyncio.Future[Any]", on_gone: Callable[[], None]) -> Any:
    """Awaits ``waiting``; if the client disconnects first, calls on_gone and raises ClientGone."""
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({waiting, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if waiting not in done:
        on_gone()
        waiting.cancel()
        raise ClientGone()
    return waiting.result()


def _facts(request: Request) -> dict[str, Any]:
    facts: dict[str, Any] = request.scope.setdefault(LOG_KEY, {})
    return facts


def create_app(config: ServerConfig, served: Optional[ServedModels] = None,
               metrics: Optional[Metrics] = None, on_load_failure: Callable[[], None] = lambda: None) -> Any:
    """The ASGI application (FastAPI inside the request gatekeeper)."""
    metrics = metrics or Metrics()
    served = served or ServedModels(config, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        served.load_in_background(on_load_failure)
        yield
        served.stop()

    app = FastAPI(title="llamabatch", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_exception_handler(APIError, on_api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, on_validation_error)  # type: ignore[arg-type]

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        # Starlette's 405 carries the Allow header that RFC 9110 asks for; keep it.
        return APIError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", code=code,
                        headers=dict(exc.headers or {})).response()

    @app.exception_handler(Exception)
    async def on_fault(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return APIError(500, f"internal error: {type(exc).__name__}: {exc}", type="server_error").response()

    # ------------------------------------------------------------ plumbing
    @app.get("/health", responses=HEALTH_RESPONSES)
    async def health() -> JSONResponse:
        if served.failure is not None:
            return JSONResponse({"status": "failed", "error": served.failure}, status_code=503)
        if not served.ready.is_set():
            return JSONResponse({"status": "loading"}, status_code=503, headers={"Retry-After": "1"})
        return JSONResponse({"status": "ok", "models": served.ids})

    @app.get("/metrics", response_class=PrometheusText,
             responses=text_responses(PrometheusText.media_type, "Prometheus' text exposition format"))
    async def prometheus() -> PrometheusText:
        return PrometheusText(metrics.render())

    @app.get("/v1/models", responses=responses(ModelList, 500))
    async def list_models() -> JSONResponse:
        created = int(time.time())
        return JSONResponse({"object": "list", "data": [
            {"id": i, "object": "model", "created": created, "owned_by": "llamabatch"} for i in served.ids]})

    @app.post("/tokenize", responses=responses(Tokens, *MODEL_ROUTE_ERRORS))
    async def tokenize(body: TokenizeRequest) -> JSONResponse:
        if body.model is None and served.generation_id is None or body.model == served.embedding_id:
            embedder = served.embeddings_for(body.model, "/tokenize").embedder
            tokens = embedder.model.tokenize(body.content, add_special=body.add_special,
                                             parse_special=embedder.parse_special)
            name = served.embedding_id
        else:
            generator = served.generation_for(body.model, "/tokenize").generator
            tokens = generator.model.tokenize(body.content, add_special=body.add_special, parse_special=False)
            name = served.generation_id
        return JSONResponse({"model": name, "tokens": tokens.tolist()})

    # ------------------------------------------------------------ embeddings
    @app.post("/v1/embeddings", responses=responses(EmbeddingList, *MODEL_ROUTE_ERRORS))
    async def embeddings(body: EmbeddingRequest, request: Request) -> Response:
        scheduler = served.embeddings_for(body.model)
        embedder = scheduler.embedder
        items = text_or_token_inputs(body.input, "input")
        if body.dimensions is not None and body.dimensions != embedder.n_embd:
            raise bad_request(f"'dimensions' {body.dimensions} is not possible: this model gives {embedder.n_embd} "
                              f"dimensions and cannot shorten them; leave 'dimensions' out", param="dimensions")
        truncate = config.truncate if body.truncate is None else body.truncate
        tokens = await _embedding_tokens(scheduler, items, truncate)
        loop = asyncio.get_running_loop()
        job = EmbeddingJob(tokens, loop, loop.create_future(), embedder.n_embd, embedder.n_ctx)
        scheduler.submit(job)
        try:
            await _unless_gone(request, job.future, lambda: scheduler.cancel(job))
        except ClientGone:
            return Response(status_code=CLIENT_GONE)
        n_tokens = int(job.lengths.sum())
        facts = _facts(request)
        facts.update(inputs=len(tokens), tokens=n_tokens)
        if job.started is not None:
            facts.update(queue_ms=f"{1000 * (job.started - job.arrived):.1f}",
                         compute_ms=f"{1000 * (time.perf_counter() - job.started):.1f}")
        if body.encoding_format == "base64":
            vectors: list[Any] = [base64.b64encode(row.astype("<f4").tobytes()).decode("ascii") for row in job.rows]
        else:
            vectors = list(job.rows)  # float32 rows, written by _json as the shortest text that reads back the same
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        return _json({"object": "list", "data": data, "model": scheduler.model_id,
                      "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens}})

    # ------------------------------------------------------------ generation
    @app.post("/v1/completions", responses=responses(TextCompletion, *MODEL_ROUTE_ERRORS, stream=CompletionChunk))
    async def completions(body: CompletionRequest, request: Request) -> Response:
        scheduler = served.generation_for(body.model, "/v1/completions")
        items = text_or_token_inputs(body.prompt, "prompt")
        generator = scheduler.generator

        def prompt_tokens() -> list[np.ndarray]:
            return [generator.prompt_tokens(x) if isinstance(x, str) else x for x in items]
        prompts = await _off_loop_if_long(prompt_tokens, sum(len(x) for x in items if isinstance(x, str)))
        return await _generate(request, scheduler, body, prompts, body.max_tokens, chat=False)

    @app.post("/v1/chat/completions", responses=responses(ChatCompletion, *MODEL_ROUTE_ERRORS,
                                                                   stream=ChatCompletionChunk))
    async def chat_completions(body: ChatRequest, request: Request) -> Response:
        scheduler = served.generation_for(body.model, "/v1/chat/completions")
        messages = []
        for m in body.messages:
            content = m.content if isinstance(m.content, str) else "".join(part.text for part in m.content)
            messages.append({"role": "system" if m.role == "developer" else m.role, "content": content})
        generator = scheduler.generator
        try:
            prompt = await _off_loop_if_long(lambda: generator.prompt_tokens(messages),
                                             sum(len(m["content"]) for m in messages))
        except ValueError as e:  # no chat template (a base model), or the template refused the messages
            raise bad_request(str(e), param="messages") from None
        if body.max_tokens is not None and body.max_completion_tokens is not None:
            raise bad_request("give 'max_completion_tokens' or 'max_tokens', not both", param="max_tokens")
        return await _generate(request, scheduler, body, [prompt], body.max_completion_tokens or body.max_tokens,
                               chat=True)

    async def _generate(request: Request, scheduler: GenerationScheduler, body: Union[CompletionRequest, ChatRequest],
                        prompts: list[np.ndarray], max_tokens: Optional[int], *, chat: bool) -> Response:
        if body.n != 1:
            raise bad_request(f"'n' {body.n} is not supported: this server gives one choice per prompt (n=1)",
                              param="n")
        generator = scheduler.generator
        n_ctx = generator.n_ctx
        for i, p in enumerate(prompts):
            where = "messages" if chat else (f"prompt[{i}]" if len(prompts) > 1 else "prompt")
            if len(p) == 0:
                raise bad_request(f"'{where}' gives no tokens: give it some text", param=where)
            if len(p) >= n_ctx:
                raise bad_request(f"'{where}' has {len(p)} tokens; this model's context is {n_ctx} tokens per "
                                  f"sequence, prompt and completion together: shorten it", param=where,
                                  code="context_length_exceeded")
            if int(p.max()) >= generator.model.n_vocab:
                raise bad_request(f"'{where}' has token id {int(p.max())}, outside the vocabulary "
                                  f"0..{generator.model.n_vocab - 1}", param=where)
        stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
        if len(stop) > MAX_STOP or any(not s for s in stop):
            raise bad_request(f"'stop' takes up to {MAX_STOP} non-empty strings", param="stop")
        # The core samples in float32: a top_p under its smallest normal value (5e-324 is valid JSON)
        # would round to 0, which it refuses; any such top_p keeps just the most likely token.
        top_p = None if body.top_p >= 1.0 else max(body.top_p, FLOAT32_TINY)
        options = SamplingOptions(max_new_tokens=min(max_tokens or n_ctx, n_ctx), temperature=body.temperature,
                                  top_p=top_p, seed=body.seed, stop=stop)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        streams = [GenerationStream(p, options, loop, queue, index=i) for i, p in enumerate(prompts)]
        scheduler.submit(streams)
        early = await _admitted(request, scheduler, streams, queue)
        if early is None:
            return Response(status_code=CLIENT_GONE)
        reply = _Reply(chat=chat, model=scheduler.model_id, n_prompts=len(prompts))
        facts = _facts(request)
        if body.stream:
            include_usage = body.stream_options is not None and body.stream_options.include_usage
            return StreamingResponse(_sse(reply, scheduler, streams, queue, early, include_usage, facts),
                                     media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        completions: dict[int, Completion] = {}
        pending = list(early)
        while len(completions) < len(streams):
            if pending:
                index, event = pending.pop(0)
            else:
                try:
                    index, event = await _unless_gone(request, asyncio.ensure_future(queue.get()),
                                                      lambda: scheduler.cancel(streams))
                except ClientGone:
                    return Response(status_code=CLIENT_GONE)
            if isinstance(event, APIError):
                scheduler.cancel(streams)
                raise event
            if isinstance(event, GenerationEvent) and event.finished:
                if event.error is not None or event.completion is None:
                    scheduler.cancel(streams)
                    raise APIError(500, f"generation failed: {event.error}", type="server_error")
                completions[index] = event.completion
        _log_generation(facts, streams, completions.values())
        return _json(reply.whole([completions[i] for i in range(len(streams))]))

    async def _admitted(request: Request, scheduler: GenerationScheduler, streams: list[GenerationStream],
                        queue: "asyncio.Queue[Any]") -> Optional[list[tuple[int, Any]]]:
        """Waits until every stream is in the Generator (so that a refusal is still
        an HTTP error); returns the events that came meanwhile, or None if the client left."""
        admitted = 0
        early: list[tuple[int, Any]] = []
        while admitted < len(streams):
            try:
                index, item = await _unless_gone(request, asyncio.ensure_future(queue.get()),
                                                 lambda: scheduler.cancel(streams))
            except ClientGone:
                return None
            if isinstance(item, APIError):
                scheduler.cancel(streams)
                raise item
            if item == ADMITTED:
                admitted += 1
            else:
                early.append((index, item))
        return early

    app.openapi = documenter(app.openapi, config, served, OPEN_PATHS)  # type: ignore[method-assign]
    return Gatekeeper(app, api_key=config.api_key, max_request_bytes=config.max_request_bytes,
                      max_concurrent_requests=config.max_concurrent_requests, metrics=metrics,
                      access_log=config.access_log)


# ---------------------------------------------------------------- helpers
def _json_bytes(payload: dict[str, Any]) -> bytes:
    """Compact JSON; numpy float32 arrays become the shortest decimals that read
    back as the same float32 (orjson: ~25x faster than json.dumps of tolist(),
    and about half the bytes of a float64 repr of each value)."""
    return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)


def _json(payload: dict[str, Any]) -> Response:
    return Response(_json_bytes(payload), media_type="application/json")


async def _off_loop_if_long(work: Callable[[], Any], n_chars: int) -> Any:
    if n_chars <= INLINE_TOKENIZE_CHARS:
        return work()
    return await asyncio.to_thread(work)


async def _embedding_tokens(scheduler: EmbeddingScheduler, items: list[Union[str, np.ndarray]],
                            truncate: bool) -> list[np.ndarray]:
    """Token ids of every input (texts tokenized as the model reads them), checked
    against the model's limits so that nothing bad reaches a shared decode."""
    embedder = scheduler.embedder
    texts = [x for x in items if isinstance(x, str)]
    n_chars = sum(len(t) for t in texts)
    tokenized = iter(await _off_loop_if_long(lambda: embedder.tokenize(texts), n_chars) if texts else [])
    out = [next(tokenized) if isinstance(x, str) else x for x in items]
    n_vocab = embedder.model.n_vocab
    for i, t in enumerate(out):
        if len(t) == 0:
            raise bad_request(f"input[{i}] gives no tokens (this model adds no special tokens to an empty text): "
                              f"give it some text", param="input")
        if len(t) > embedder.n_ctx and not truncate:
            raise bad_request(f"input[{i}] has {len(t)} tokens, above this model's limit of {embedder.n_ctx}; "
                              f"shorten it, or send \"truncate\": true (the server's --truncate sets that for "
                              f"every request)", param="input", code="context_length_exceeded")
        if int(t.max()) >= n_vocab:
            raise bad_request(f"input[{i}] has token id {int(t.max())}, outside the vocabulary 0..{n_vocab - 1}",
                              param="input")
    return out


def _log_generation(facts: dict[str, Any], streams: list[GenerationStream], completions: Any) -> None:
    completions = list(completions)
    facts["tokens"] = sum(c.prompt_tokens + c.completion_tokens for c in completions)
    first = [s.first_token_at for s in streams if s.first_token_at is not None]
    if first:
        start = min(s.arrived for s in streams)
        facts["first_token_ms"] = f"{1000 * (min(first) - start):.1f}"
        facts["compute_ms"] = f"{1000 * (time.perf_counter() - min(first)):.1f}"


class _Reply:
    """OpenAI's response shapes for completions and chat completions."""

    def __init__(self, *, chat: bool, model: str, n_prompts: int) -> None:
        self.chat = chat
        self.model = model
        self.id = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]
        self.created = int(time.time())
        self.n_prompts = n_prompts

    def _envelope(self, chunk: bool) -> dict[str, Any]:
        if self.chat:
            kind = "chat.completion.chunk" if chunk else "chat.completion"
        else:
            kind = "text_completion"
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model,
                "system_fingerprint": None}

    @staticmethod
    def usage(completions: list[Completion]) -> dict[str, Any]:
        prompt = sum(c.prompt_tokens for c in completions)
        cached = sum(c.cached_tokens for c in completions)
        completion = sum(c.completion_tokens for c in completions)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": cached}}

    def whole(self, completions: list[Completion]) -> dict[str, Any]:
        choices = []
        for i, c in enumerate(completions):
            if self.chat:
                choices.append({"index": i, "message": {"role": "assistant", "content": c.text, "refusal": None},
                                "logprobs": None, "finish_reason": c.finish_reason})
            else:
                choices.append({"index": i, "text": c.text, "logprobs": None, "finish_reason": c.finish_reason})
        return {**self._envelope(False), "choices": choices, "usage": self.usage(completions)}

    def chunk(self, index: int, text: Optional[str], finish: Optional[str] = None, *, first: bool = False,
              with_usage: bool = False) -> dict[str, Any]:
        if self.chat:
            delta: dict[str, Any] = {}
            if first:
                delta["role"] = "assistant"
            if text is not None:
                delta["content"] = text
            choice: dict[str, Any] = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        else:
            choice = {"index": index, "text": text or "", "logprobs": None, "finish_reason": finish}
        out = {**self._envelope(True), "choices": [choice]}
        if with_usage:
            out["usage"] = None
        return out

    def usage_chunk(self, completions: list[Completion]) -> dict[str, Any]:
        return {**self._envelope(True), "choices": [], "usage": self.usage(completions)}


def _sse_line(payload: dict[str, Any]) -> bytes:
    return b"data: " + _json_bytes(payload) + b"\n\n"


async def _sse(reply: _Reply, scheduler: GenerationScheduler, streams: list[GenerationStream],
               queue: "asyncio.Queue[Any]", early: list[tuple[int, Any]], include_usage: bool,
               facts: dict[str, Any]) -> AsyncIterator[bytes]:
    """Server-sent events: a chunk per piece of text, a last chunk with the
    finish reason per prompt, the usage if asked for, then ``[DONE]``. If the
    client goes away, the stream is cancelled and its slots freed."""
    finished: dict[int, Completion] = {}
    pending = list(early)
    try:
        if reply.chat:
            for s in streams:
                yield _sse_line(reply.chunk(s.index, "", first=True, with_usage=include_usage))
        while len(finished) < len(streams):
            index, event = pending.pop(0) if pending else await queue.get()
            if isinstance(event, APIError) or (isinstance(event, GenerationEvent) and event.finished
                                               and (event.error is not None or event.completion is None)):
                message = event.message if isinstance(event, APIError) else f"generation failed: {event.error}"
                yield _sse_line({"error": {"message": message, "type": "server_error", "param": None, "code": None}})
                return
            if not isinstance(event, GenerationEvent):
                continue
            if event.text:
                yield _sse_line(reply.chunk(index, event.text, with_usage=include_usage))
            if event.finished and event.completion is not None:
                finished[index] = event.completion
                yield _sse_line(reply.chunk(index, None if reply.chat else "", event.completion.finish_reason,
                                            with_usage=include_usage))
        if include_usage:
            yield _sse_line(reply.usage_chunk([finished[i] for i in range(len(streams))]))
        yield b"data: [DONE]\n\n"
        _log_generation(facts, streams, finished.values())
    finally:
        if len(finished) < len(streams):
            scheduler.cancel([s for s in streams if s.index not in finished])
