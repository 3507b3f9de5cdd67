"""The FastAPI application: routes, error format, guard (rate, key, size) and optional CORS."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from Config.schema import ApiConfig
from Orchestrator.api import openai_audio, openai_chat, routes_chat, routes_speech, routes_system, routes_voices
from Orchestrator.api.errors import install_handlers
from Orchestrator.api.guard import Guard
from Orchestrator.api.limits import RateLimiter
from Orchestrator.api.services import Services

if TYPE_CHECKING:
    from Orchestrator.assistant import Assistant

# Room for JSON quoting (a character may take 6 bytes as \uXXXX) and the other fields.
JSON_BYTES_PER_CHAR = 6
BODY_OVERHEAD_BYTES = 16 * 1024


def create_app(assistant: Assistant, api: ApiConfig, key: str, state: Callable[[], dict], version: str = "0") -> FastAPI:
    app = FastAPI(title="LUXA control API", version=version, docs_url=None, redoc_url=None,
                  description="Local control of the running LUXA assistant. Every route needs the API key "
                              "in 'Authorization: Bearer KEY' or 'X-API-Key: KEY'.")
    app.state.luxa = Services(assistant, api, state)
    openai = (openai_audio, openai_chat) if assistant.config.openai.enabled else ()
    for module in (routes_speech, routes_chat, routes_voices, routes_system, *openai):
        app.include_router(module.router)
    install_handlers(app)
    app.add_middleware(Guard, key=key, limiter=RateLimiter(api.rate_limit_per_minute),
                       text_body_bytes=api.max_text_chars * JSON_BYTES_PER_CHAR + BODY_OVERHEAD_BYTES,
                       upload_body_bytes=api.max_audio_bytes + BODY_OVERHEAD_BYTES)
    if api.cors_origins:  # added last = outermost: a browser's preflight carries no key
        app.add_middleware(CORSMiddleware, allow_origins=api.cors_origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type"],
                           expose_headers=["X-Luxa-Backend", "X-Luxa-Latency-Ms", "X-Luxa-Cached"])
    _declare_key(app)
    return app


def _declare_key(app: FastAPI) -> None:
    """Put the key in the OpenAPI description, so clients and fuzzers know to send it."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = app.openapi_schema
        if schema is None:
            schema = build()  # FastAPI caches it in app.openapi_schema
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            }
            schema["security"] = [{"bearer": []}, {"apiKey": []}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema
