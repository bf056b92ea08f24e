"""Errors as OpenAI's API gives them: a status code and
``{"error": {"message", "type", "param", "code"}}``.

Anything a client sent that cannot be served is an :class:`APIError` with a 4xx
status; a 500 means a fault of ours, never of the request.
"""
from __future__ import annotations

from typing import Any, Optional

from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse


class APIError(Exception):
    """A refusal with its HTTP status, in OpenAI's shape."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: Optional[str] = None, code: Optional[str] = None,
                 headers: Optional[dict[str, str]] = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def bad_request(message: str, param: Optional[str] = None, code: Optional[str] = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def model_not_found(message: str) -> APIError:
    """404, as OpenAI answers a model that does not exist or cannot serve the endpoint."""
    return APIError(404, message, param="model", code="model_not_found")


def too_busy(message: str, retry_after: int = 1) -> APIError:
    return APIError(429, message, type="rate_limit_error", code="queue_full",
                    headers={"Retry-After": str(retry_after)})


def not_ready() -> APIError:
    return APIError(503, "the model is still loading; retry shortly (GET /health says when it is ready)",
                    type="service_unavailable", code="loading", headers={"Retry-After": "1"})


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) if parts else "body"


def validation_message(exc: RequestValidationError) -> tuple[str, Optional[str]]:
    """One readable sentence for the first problem pydantic found, and its field."""
    errors = exc.errors()
    if not errors:
        return "the request body is not valid", None
    first = errors[0]
    loc = tuple(first.get("loc", ()))
    field = _field(loc)
    kind = first.get("type", "")
    if kind == "extra_forbidden":
        return (f"'{field}' is not supported by this server (llamabatch refuses fields it would otherwise ignore); "
                f"remove it", field)
    if kind == "json_invalid":
        return f"the body is not valid JSON: {first.get('msg', '')}", None
    if kind == "missing":
        return f"'{field}' is required", field
    message = f"'{field}': {first.get('msg', 'is not valid')}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return message, field


async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    message, field = validation_message(exc)
    return bad_request(message, param=field).response()


async def on_api_error(request: Request, exc: APIError) -> JSONResponse:
    return exc.response()
