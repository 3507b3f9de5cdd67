"""Every error leaves the API as JSON {"error": {"message", "type", "param", "code"}} with one line, never a
traceback: OpenAI's error shape, which the control API's own {"code", "message"} is a part of."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from Core.errors import AudioInputError, BackendError, ConfigError, LuxaError, TextInputError
from LLM.errors import LlmInputError

log = logging.getLogger(__name__)

# HTTP reasons turned into stable, machine-readable codes (Starlette raises these for routing)
_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
               413: "too_large", 415: "unsupported_media_type", 422: "invalid_request",
               429: "rate_limited", 501: "not_implemented", 503: "busy"}
# OpenAI's error types, which its clients show; anything else below 500 is the caller's request
_TYPES = {401: "authentication_error", 429: "rate_limit_error"}


class ApiError(Exception):
    """Raised by routes for an answer other than 200; `headers` go out with it (Retry-After...)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
                 param: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers, self.param = status, code, message, headers or {}, param


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None,
                   param: str | None = None) -> JSONResponse:
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status, headers=headers)


def from_luxa(err: LuxaError) -> ApiError:
    """A manager's one-line error as the status a client can act on."""
    if isinstance(err, BackendError):
        return ApiError(409, "backend_unavailable", str(err))
    if isinstance(err, (AudioInputError, ConfigError, LlmInputError, TextInputError)):
        return ApiError(422, "invalid_input", str(err))
    return ApiError(500, "internal", str(err))


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, err: ApiError) -> JSONResponse:
        return error_response(err.status, err.code, err.message, err.headers, err.param)

    @app.exception_handler(LuxaError)
    async def luxa_error(_: Request, err: LuxaError) -> JSONResponse:
        mapped = from_luxa(err)
        return error_response(mapped.status, mapped.code, mapped.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        return error_response(err.status_code, _HTTP_CODES.get(err.status_code, "error"), str(err.detail),
                              getattr(err, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", one_line(err.errors()))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> JSONResponse:
        log.exception("control API: %s %s failed", request.method, request.url.path)
        return error_response(500, "internal", f"internal error ({type(err).__name__}); the daemon log has the details")


def one_line(errors: Sequence[Any]) -> str:
    """Pydantic's first error as 'body.text: Field required' (the rest usually follow from it)."""
    if not errors:
        return "invalid request"
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"
