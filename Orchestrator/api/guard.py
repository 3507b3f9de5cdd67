"""The checks every request passes before any route runs: rate limit, API key, body size.

A plain ASGI middleware rather than route dependencies, so an unauthenticated or oversized
upload is refused before a byte of its body is parsed, and unknown paths need the key too
(nobody learns the route list without it).
"""
from __future__ import annotations

import time

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from Core.metrics import counter, histogram
from Orchestrator.api.errors import error_response
from Orchestrator.api.limits import REJECTED, RateLimiter, retry_after
from Orchestrator.api.security import key_matches, presented_key

REQUESTS = counter("luxa_api_requests_total", "control API requests by route and status", ("route", "status"))
LATENCY = histogram("luxa_api_request_seconds", "control API time to the end of the response", ("route",))


class Guard:
    def __init__(self, app: ASGIApp, key: str, limiter: RateLimiter, text_body_bytes: int, upload_body_bytes: int):
        self.app = app
        self.key = key
        self.limiter = limiter
        self.text_body_bytes = text_body_bytes
        self.upload_body_bytes = upload_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = {"code": 500}

        async def send_noting_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                REJECTED.labels(str(refusal.status_code)).inc()
                return await refusal(scope, receive, send_noting_status)
            limit = self._body_limit(Headers(scope=scope))
            await self.app(scope, _capped(receive, limit), send_noting_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(route, str(status["code"])).inc()
            LATENCY.labels(route).observe(time.perf_counter() - started)

    def _refusal(self, scope: Scope) -> JSONResponse | None:
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.limiter.check(client)
        if wait is not None:
            return error_response(429, "rate_limited", f"too many requests from {client}: "
                                  "api.rate_limit_per_minute reached", {"Retry-After": retry_after(wait)})
        headers = Headers(scope=scope)
        if not key_matches(presented_key(headers), self.key):
            reason = "missing" if presented_key(headers) is None else "wrong"
            return error_response(401, "unauthorized", f"API key {reason}: send 'Authorization: Bearer KEY' "
                                  "or 'X-API-Key: KEY' (run_assistant.py api-key shows it)",
                                  {"WWW-Authenticate": "Bearer"})
        declared = headers.get("content-length")
        limit = self._body_limit(headers)
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return error_response(413, "too_large", f"request body of {declared} bytes is above the limit of {limit}")
        return None

    def _body_limit(self, headers: Headers) -> int:
        """Uploads (multipart) get the audio limit; everything else is text."""
        is_upload = headers.get("content-type", "").lower().startswith("multipart/")
        return self.upload_body_bytes if is_upload else self.text_body_bytes


def _capped(receive: Receive, limit: int) -> Receive:
    """Counts a body sent without Content-Length (chunked) and stops it at the limit."""
    seen = 0

    async def capped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise HTTPException(413, f"request body is above the limit of {limit} bytes")
        return message

    return capped
