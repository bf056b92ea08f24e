"""``/openapi.json`` as this server answers: every status code each route can
give with OpenAI's error body, every content type, the response bodies, and the
facts of the served models that a request must respect (token ids within the
vocabulary, ``dimensions`` equal to the model's width, no empty text for a model
that makes no tokens of it) once they are loaded.

What no schema can say is documented in the 400's description: a prompt over
the model's context (``code`` ``context_length_exceeded``), an embedding input
over the model's limit without ``truncate``, a request alone over
``--max-queued-tokens``, a chat template's own refusal.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, List, Literal, Optional, Union

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .config import ServerConfig
from .models import ServedModels
from .schemas import text_or_tokens_schema


# ---------------------------------------------------------------- bodies, for the document only
class ErrorDetail(BaseModel):
    message: str
    type: str
    param: Optional[str]
    code: Optional[str]


class ErrorBody(BaseModel):
    """OpenAI's error shape."""

    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok", "loading", "failed"]
    models: Optional[List[str]] = None
    error: Optional[str] = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: List[ModelCard]


class Tokens(BaseModel):
    model: str
    tokens: List[int]


class Embedding(BaseModel):
    object: Literal["embedding"]
    index: int
    embedding: Union[List[float], str]  # floats, or base64 of little-endian float32


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"]
    data: List[Embedding]
    model: str
    usage: EmbeddingUsage


class PromptTokensDetails(BaseModel):
    cached_tokens: int  # prompt tokens reused from a slot's memory (prefix cache), not decoded again


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails


FinishReason = Literal["stop", "length"]


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: None
    finish_reason: FinishReason


class TextCompletion(BaseModel):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    system_fingerprint: None
    choices: List[CompletionChoice]
    usage: Usage


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: str
    refusal: None


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    logprobs: None
    finish_reason: FinishReason


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    system_fingerprint: None
    choices: List[ChatChoice]
    usage: Usage


class CompletionChunkChoice(BaseModel):
    index: int
    text: str
    logprobs: None
    finish_reason: Optional[FinishReason]


class CompletionChunk(BaseModel):
    """One server-sent event of a streamed completion; the last, with
    ``stream_options.include_usage``, has no choices and the usage."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    system_fingerprint: None
    choices: List[CompletionChunkChoice]
    usage: Optional[Usage] = None


class ChatDelta(BaseModel):
    role: Optional[Literal["assistant"]] = None
    content: Optional[str] = None


class ChatChunkChoice(BaseModel):
    index: int
    delta: ChatDelta
    logprobs: None
    finish_reason: Optional[FinishReason]


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed chat completion (see CompletionChunk)."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    system_fingerprint: None
    choices: List[ChatChunkChoice]
    usage: Optional[Usage] = None


_REF = "#/components/schemas/{model}"
# Models that no route names as a body, added to the document's components.
_EXTRA_MODELS = (CompletionChunk, ChatCompletionChunk)


def _event_schema(chunk: type[BaseModel]) -> dict[str, Any]:
    """One server-sent event, as Open API 3.1 describes each event of a stream: its
    data is a JSON chunk, OpenAI's error body, or the closing ``[DONE]``."""
    json_data = {"type": "string", "not": {"const": "[DONE]"}, "contentMediaType": "application/json",
                 "contentSchema": {"anyOf": [{"$ref": _REF.format(model=chunk.__name__)},
                                             {"$ref": _REF.format(model="ErrorBody")}]}}
    return {"type": "object", "required": ["data"],
            "properties": {"data": {"anyOf": [{"const": "[DONE]"}, json_data]}},
            "description": "'data: ' and a JSON chunk per event (an error as OpenAI's error body), "
                           "ending in 'data: [DONE]'"}


# ---------------------------------------------------------------- responses per route
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}}
_ERRORS: dict[int, dict[str, Any]] = {
    400: {"description": "the request is not valid: malformed JSON, a wrong type, an unknown field, a value out of "
                         "range (error.param names it); or, past what a schema can say, a prompt over the model's "
                         "context (code context_length_exceeded), an embedding input over the model's limit "
                         "without truncate, a request alone over --max-queued-tokens, the chat template's refusal"},
    404: {"description": "the model named is not served here, or cannot serve this endpoint (code model_not_found)"},
    413: {"description": "the body is over --max-request-bytes (code request_too_large)"},
    429: {"description": "the model's queue is full (--max-queued-tokens) or too many requests are in flight "
                         "(--max-concurrent-requests)", "headers": _RETRY_AFTER},
    500: {"description": "a fault of the server's, never of the request"},
    503: {"description": "the models are still loading (code loading) or failed to load (code load_failed)",
          "headers": _RETRY_AFTER},
}
_ERROR_JSON = {"application/json": {"schema": {"$ref": _REF.format(model="ErrorBody")}}}
_UNAUTHORIZED = {"description": "--api-key is set and the request does not carry it (code invalid_api_key)",
                 "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
                 "content": _ERROR_JSON}
MODEL_ROUTE_ERRORS = (400, 404, 413, 429, 500, 503)
HEALTH_RESPONSES: dict[Union[int, str], dict[str, Any]] = {
    200: {"model": Health, "description": "the models are loaded"},
    500: {"model": ErrorBody, **_ERRORS[500]},
    503: {"model": Health, "description": "loading (with Retry-After) or failed", "headers": _RETRY_AFTER},
}


def text_responses(media_type: str, description: str) -> dict[Union[int, str], dict[str, Any]]:
    """For a route whose answer is text (``/metrics``): its errors are still JSON."""
    return {200: {"description": description, "content": {media_type: {"schema": {"type": "string"}}}},
            500: {"content": _ERROR_JSON, **_ERRORS[500]}}


def responses(ok: type[BaseModel], *errors: int,
              stream: Optional[type[BaseModel]] = None) -> dict[Union[int, str], dict[str, Any]]:
    """FastAPI's ``responses=`` for a route: 200 with ``ok``'s body (and server-sent
    events of ``stream`` chunks), and each error status with OpenAI's error body."""
    out: dict[Union[int, str], dict[str, Any]] = {200: {"model": ok, "description": "the answer"}}
    if stream is not None:
        out[200]["description"] = 'the answer; with "stream": true, server-sent events instead'
        out[200]["content"] = {"text/event-stream": {"schema": _event_schema(stream)}}
    for status in errors:
        out[status] = {"model": ErrorBody, **_ERRORS[status]}
    return out


# ---------------------------------------------------------------- the document
def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}], "default": None}


def _with_model_facts(doc: dict[str, Any], served: ServedModels) -> None:
    schemas = doc["components"]["schemas"]
    for name in ("EmbeddingRequest", "CompletionRequest", "ChatRequest", "TokenizeRequest"):
        schemas[name]["properties"]["model"]["description"] = (
            "a model id of GET /v1/models (default: the one that serves this endpoint); served here: "
            + ", ".join(served.ids))
    if served.embeddings is not None:
        embedder = served.embeddings.embedder
        empty_gives_tokens = len(embedder.tokenize([""])[0]) > 0
        properties = schemas["EmbeddingRequest"]["properties"]
        properties["input"] = text_or_tokens_schema(embedder.model.n_vocab - 1, 0 if empty_gives_tokens else 1)
        properties["dimensions"] = _nullable({"type": "integer", "const": embedder.n_embd})
    if served.generation is not None:
        generator = served.generation.generator
        empty_gives_tokens = len(generator.prompt_tokens("")) > 0
        schemas["CompletionRequest"]["properties"]["prompt"] = text_or_tokens_schema(
            generator.model.n_vocab - 1, 0 if empty_gives_tokens else 1)


def _with_api_key(doc: dict[str, Any], open_paths: frozenset[str]) -> None:
    doc["components"]["securitySchemes"] = {"apiKey": {"type": "http", "scheme": "bearer"}}
    for path, operations in doc["paths"].items():
        if path in open_paths:
            continue
        for operation in operations.values():
            operation["security"] = [{"apiKey": []}]
            operation["responses"]["401"] = copy.deepcopy(_UNAUTHORIZED)


def _without_fastapi_422(doc: dict[str, Any]) -> None:
    """FastAPI documents a 422 for every body; this server answers validation errors with 400."""
    for operations in doc["paths"].values():
        for operation in operations.values():
            operation["responses"].pop("422", None)
    for name in ("HTTPValidationError", "ValidationError"):
        doc["components"]["schemas"].pop(name, None)


def documenter(generate: Callable[[], dict[str, Any]], config: ServerConfig, served: ServedModels,
               open_paths: frozenset[str]) -> Callable[[], dict[str, Any]]:
    """What replaces ``app.openapi``: FastAPI's document (``generate``) made true
    to this server; the models' facts are added once they are loaded, and that
    document is kept."""
    done: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if done:
            return done
        doc = copy.deepcopy(generate())
        _without_fastapi_422(doc)
        _, extra = models_json_schema([(m, "serialization") for m in _EXTRA_MODELS], ref_template=_REF)
        doc["components"]["schemas"].update(extra["$defs"])
        if config.api_key:
            _with_api_key(doc, open_paths)
        if not served.ready.is_set():
            return doc
        _with_model_facts(doc, served)
        done.update(doc)
        return done
    return openapi
