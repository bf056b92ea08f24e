"""Request bodies, after OpenAI's schemas.

Fields this server does not implement are refused by name (``extra="forbid"``),
never silently ignored. Inputs that may be text or token ids are read by
:func:`text_or_token_inputs`, which names what is wrong with them.
"""
from __future__ import annotations

from typing import Any, List, Literal, Optional, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .errors import bad_request


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: Optional[str] = None
    # An end user's id, for the caller's own abuse tracking: it changes nothing.
    user: Optional[str] = None


class EmbeddingRequest(_Body):
    input: Any
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Optional[int] = None
    # llamabatch's own: cut inputs over the model's limit instead of refusing them.
    truncate: Optional[bool] = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_usage: bool = False


class _Sampling(_Body):
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: Optional[int] = Field(None, ge=0, le=2**32 - 2)
    stop: Union[str, List[str], None] = None
    stream: bool = False
    stream_options: Optional[StreamOptions] = None
    n: int = 1


class CompletionRequest(_Sampling):
    prompt: Any
    max_tokens: Optional[int] = Field(16, ge=1)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "developer", "user", "assistant"]
    content: Union[str, List["ContentPart"]]
    name: Optional[str] = None


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]
    text: str


ChatMessage.model_rebuild()


class ChatRequest(_Sampling):
    messages: List[ChatMessage]
    max_tokens: Optional[int] = Field(None, ge=1)
    max_completion_tokens: Optional[int] = Field(None, ge=1)


class TokenizeRequest(_Body):
    content: str
    add_special: bool = True


def text_or_token_inputs(value: Any, field: str, *, allow_many: bool = True) -> list[Union[str, np.ndarray]]:
    """OpenAI's ``input``/``prompt``: a str, a list of str, a list of token ids,
    or a list of lists of token ids. Returns a list of str and int32 arrays."""
    def tokens(seq: list[Any], where: str) -> np.ndarray:
        if not seq:
            raise bad_request(f"'{where}' is an empty list of token ids", param=field)
        if not all(isinstance(t, int) and not isinstance(t, bool) for t in seq):
            raise bad_request(f"'{where}' must hold only integer token ids", param=field)
        if any(t < 0 or t > 2**31 - 1 for t in seq):
            raise bad_request(f"'{where}' has a token id outside 0..2147483647", param=field)
        return np.asarray(seq, dtype=np.int32)

    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise bad_request(f"'{field}' must be a string, a list of strings, a list of token ids or a list of "
                          f"lists of token ids; got {type(value).__name__}", param=field)
    if not value:
        raise bad_request(f"'{field}' is an empty list: give at least one input", param=field)
    if all(isinstance(v, str) for v in value):
        items: list[Union[str, np.ndarray]] = list(value)
    elif all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        items = [tokens(value, field)]
    elif all(isinstance(v, list) for v in value):
        items = [tokens(v, f"{field}[{i}]") for i, v in enumerate(value)]
    else:
        raise bad_request(f"'{field}' mixes kinds of items: give all strings, all token ids, or all lists of "
                          f"token ids", param=field)
    if not allow_many and len(items) > 1:
        raise bad_request(f"'{field}' holds {len(items)} inputs; this endpoint takes one", param=field)
    return items
