"""Request bodies, after OpenAI's schemas, and the JSON schema each one has in
``/openapi.json``.

The schema is exactly what the server takes: fields this server does not
implement are refused by name (``extra="forbid"``), never silently ignored;
types are strict (no ``"1"`` for 1, no ``true`` for 1), and an integer is what
JSON schema calls one (``512.0`` too). Inputs that may be text
or token ids are read by :func:`text_or_token_inputs`, which names what is wrong
with them; :func:`text_or_tokens_schema` says the same in JSON schema.
tests/test_openapi_schemathesis.py checks that the two agree.
"""
from __future__ import annotations

from typing import Any, List, Literal, Optional, Union

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from typing_extensions import Annotated

from .errors import bad_request

MAX_TOKEN_ID = 2**31 - 1  # int32; /openapi.json narrows it to the served model's vocabulary
MAX_STOP = 4


def _is_integer(value: Any) -> bool:
    """JSON schema's integer: an int, or a float with no fraction (``512.0``); never a bool."""
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float)
                                                                        and value.is_integer())


def _integral(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# The bounds come before the validator, or pydantic's JSON schema says "ge" instead of "minimum".
_INTEGRAL = BeforeValidator(_integral)
Integer = Annotated[int, _INTEGRAL]
PositiveInteger = Annotated[int, Field(ge=1), _INTEGRAL]
Seed = Annotated[int, Field(ge=0, le=2**32 - 2), _INTEGRAL]


def text_or_tokens_schema(max_token_id: int = MAX_TOKEN_ID, min_text_length: int = 0) -> dict[str, Any]:
    """What :func:`text_or_token_inputs` takes, as JSON schema. ``min_text_length`` is 1
    for a model that makes no tokens of an empty text (the route refuses it)."""
    text: dict[str, Any] = {"type": "string", **({"minLength": min_text_length} if min_text_length else {})}
    tokens = {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": max_token_id}, "minItems": 1}
    return {"anyOf": [text, {"type": "array", "items": text, "minItems": 1},
                      tokens, {"type": "array", "items": tokens, "minItems": 1}],
            "description": "a text, a list of texts, a list of token ids, or a list of lists of token ids"}


TextOrTokens = Annotated[Any, WithJsonSchema(text_or_tokens_schema())]
# Pydantic checks the types; the route checks the count and the empty strings, naming them.
_STOP_TEXT = {"type": "string", "minLength": 1}
Stop = Annotated[Union[str, List[str], None],
                 WithJsonSchema({"anyOf": [_STOP_TEXT, {"type": "array", "items": _STOP_TEXT, "maxItems": MAX_STOP},
                                           {"type": "null"}]})]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Body(_Strict):
    model: Optional[str] = None
    # An end user's id, for the caller's own abuse tracking: it changes nothing.
    user: Optional[str] = None


class EmbeddingRequest(_Body):
    input: TextOrTokens
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Optional[Integer] = None
    # llamabatch's own: cut inputs over the model's limit instead of refusing them.
    truncate: Optional[bool] = None


class StreamOptions(_Strict):
    include_usage: bool = False


class _Sampling(_Body):
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: Optional[Seed] = None
    stop: Stop = None
    stream: bool = False
    # Taken without "stream" too: a whole reply always carries its usage.
    stream_options: Optional[StreamOptions] = None
    n: Annotated[Integer, WithJsonSchema({"type": "integer", "const": 1, "default": 1})] = 1


class CompletionRequest(_Sampling):
    prompt: TextOrTokens
    max_tokens: Optional[PositiveInteger] = 16


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant"]
    content: Union[str, List["ContentPart"]]
    name: Optional[str] = None


class ContentPart(_Strict):
    type: Literal["text"]
    text: str


ChatMessage.model_rebuild()


class ChatRequest(_Sampling):
    # Both limits at once are refused (the route says so).
    model_config = ConfigDict(json_schema_extra={"not": {
        "required": ["max_tokens", "max_completion_tokens"],
        "properties": {"max_tokens": {"type": "integer"}, "max_completion_tokens": {"type": "integer"}}}})

    messages: List[ChatMessage] = Field(min_length=1)
    max_tokens: Optional[PositiveInteger] = None
    max_completion_tokens: Optional[PositiveInteger] = None


class TokenizeRequest(_Body):
    content: str
    add_special: bool = True


def text_or_token_inputs(value: Any, field: str) -> list[Union[str, np.ndarray]]:
    """OpenAI's ``input``/``prompt``: a str, a list of str, a list of token ids,
    or a list of lists of token ids (:func:`text_or_tokens_schema`). Returns a
    list of str and int32 arrays; the route checks them against its model."""
    def tokens(seq: list[Any], where: str) -> np.ndarray:
        if not seq:
            raise bad_request(f"'{where}' is an empty list of token ids", param=field)
        if not all(_is_integer(t) for t in seq):
            raise bad_request(f"'{where}' must hold only integer token ids", param=field)
        if any(t < 0 or t > MAX_TOKEN_ID for t in seq):
            raise bad_request(f"'{where}' has a token id outside 0..{MAX_TOKEN_ID}", param=field)
        return np.asarray([int(t) for t in seq], dtype=np.int32)

    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise bad_request(f"'{field}' must be a string, a list of strings, a list of token ids or a list of "
                          f"lists of token ids; got {type(value).__name__}", param=field)
    if not value:
        raise bad_request(f"'{field}' is an empty list: give at least one input", param=field)
    if all(isinstance(v, str) for v in value):
        items: list[Union[str, np.ndarray]] = list(value)
    elif all(_is_integer(v) for v in value):
        items = [tokens(value, field)]
    elif all(isinstance(v, list) for v in value):
        items = [tokens(v, f"{field}[{i}]") for i, v in enumerate(value)]
    else:
        raise bad_request(f"'{field}' mixes kinds of items: give all strings, all token ids, or all lists of "
                          f"token ids", param=field)
    return items
