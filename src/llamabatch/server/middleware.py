"""What every request goes through before a route: the API key, the body size
limit, the cap on requests in flight, and afterwards the access log and the
request metrics. Plain ASGI, so streams pass through untouched.
"""
from __future__ import annotations

import hmac
import json
import logging
import time
from typing import Any, Awaitable, Callable, Dict, MutableMapping

from .errors import APIError, too_busy
from .metrics import Metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("llamabatch.server.access")

OPEN_PATHS = frozenset({"/health"})  # answered without the API key
# Paths that queue work for a model, and so count towards --max-concurrent-requests.
MODEL_PATHS = frozenset({"/v1/embeddings", "/v1/completions", "/v1/chat/completions", "/tokenize"})

# Methods whose body is never read, so neither is its Content-Length checked (/openapi.json gives GETs no 413).
BODYLESS = frozenset({"GET", "HEAD"})

# Where a route leaves what the access log reports: tokens, queue and compute seconds.
LOG_KEY = "llamabatch.log"


async def _send_error(send: Send, error: APIError) -> None:
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Gatekeeper:
    """See the module docstring."""

    def __init__(self, app: ASGIApp, *, api_key: str | None, max_request_bytes: int,
                 max_concurrent_requests: int, metrics: Metrics, access_log: bool) -> None:
        self.app = app
        self.expected_auth = f"Bearer {api_key}".encode() if api_key else None
        self.max_request_bytes = max_request_bytes
        self.max_concurrent = max_concurrent_requests
        self.metrics = metrics
        self.access_log = access_log
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        path: str = scope.get("path", "")
        facts: Dict[str, Any] = {}
        scope[LOG_KEY] = facts
        status = {"code": 0}

        async def send_recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        counted = False
        try:
            error = self._refusal(scope, path)
            if error is None and path in MODEL_PATHS:
                if self.in_flight >= self.max_concurrent:
                    error = too_busy(f"{self.in_flight} requests are in flight, this server's "
                                     f"--max-concurrent-requests; retry shortly")
                else:
                    self.in_flight += 1
                    counted = True
            body = b""
            if error is None:
                read = await self._read_body(scope, receive)
                if isinstance(read, APIError):
                    error = read
                else:
                    body = read
            if error is not None:
                await _send_error(send_recording, error)
                return
            await self.app(scope, self._replay(body, receive), send_recording)
        finally:
            if counted:
                self.in_flight -= 1
            seconds = time.perf_counter() - t0
            route = path if path in MODEL_PATHS or path.startswith("/v1/") or path in OPEN_PATHS else "other"
            self.metrics.requests.inc(endpoint=route, status=str(status["code"]))
            if path in MODEL_PATHS:
                self.metrics.latency.observe(seconds, endpoint=path)
            if self.access_log:
                client = scope.get("client") or ("-", 0)
                extra = " ".join(f"{k}={v}" for k, v in facts.items())
                log.info('%s "%s %s" %s %.1fms%s', client[0], scope.get("method", "-"), path, status["code"],
                         1000 * seconds, f" {extra}" if extra else "")

    def _refusal(self, scope: Scope, path: str) -> APIError | None:
        headers = dict(scope.get("headers") or [])
        if self.expected_auth is not None and path not in OPEN_PATHS:
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected_auth):
                return APIError(401, "a valid API key is required: send 'Authorization: Bearer <key>'",
                                type="invalid_request_error", code="invalid_api_key",
                                headers={"WWW-Authenticate": "Bearer"})
        length = headers.get(b"content-length")
        if length is not None and scope.get("method") not in BODYLESS:
            try:
                n = int(length)
            except ValueError:
                return APIError(400, "the Content-Length header is not a number")
            if n > self.max_request_bytes:
                return self._too_large(n)
        return None

    def _too_large(self, n: int | None) -> APIError:
        size = f"{n} bytes" if n is not None else "the body"
        return APIError(413, f"{size} is over this server's --max-request-bytes {self.max_request_bytes}; "
                             f"send fewer or shorter inputs per request", code="request_too_large")

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | APIError:
        """Reads the whole body (a chunked one too), refusing it once over the limit."""
        if scope.get("method") in BODYLESS:
            return b""
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_request_bytes:
                return self._too_large(None)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    @staticmethod
    def _replay(body: bytes, receive: Receive) -> Receive:
        """Hands the app the body read above, then the client's later messages (its disconnect)."""
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()
        return replay
