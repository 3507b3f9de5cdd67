"""An OpenAI-compatible chat server (llama.cpp server, vLLM, Ollama) streamed over SSE.

Off by default: it is the optional fallback for users who run a bigger model elsewhere on the
machine or the LAN. Every failure (refused connection, HTTP error, malformed event) raises so
the fallback chain can count it against this backend's breaker.
"""
from __future__ import annotations

import json
import os
from typing import AsyncGenerator, AsyncIterator

import httpx

from Config.schema import LlmBackendConfig
from Core.errors import BackendError, ConfigError
from LLM.backends.base import GenerationRequest, GenerationStats

DONE = "[DONE]"


class OpenAIBackend:
    kind = "openai"

    def __init__(self, name: str, backend: LlmBackendConfig, timeout_s: float):
        if not backend.url:
            raise ConfigError(f"llm.backends.{name}.url is required for kind openai (e.g. http://127.0.0.1:8080/v1)")
        self.name = name
        self.model = backend.model
        self.url = backend.url.rstrip("/") + "/chat/completions"
        self._key_env = backend.api_key_env
        self._timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None
        self._error: str | None = None

    async def start(self) -> None:
        # No request here: a server that is down at start-up is the breaker's business, not a crash.
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout_s)

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self._key_env) if self._key_env else None
        return {"Authorization": f"Bearer {key}"} if key else {}

    async def stream(self, request: GenerationRequest, stats: GenerationStats) -> AsyncGenerator[str, None]:
        await self.start()
        assert self._client is not None  # start() made it
        body = {
            "model": self.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "stop": request.stop,
            "stream": True,
        }
        try:
            async with self._client.stream("POST", self.url, json=body, headers=self._headers()) as response:
                if response.status_code != 200:
                    detail = (await response.aread()).decode("utf-8", "replace").strip()[:200]
                    raise BackendError(f"HTTP {response.status_code} from {self.url}: {detail}")
                async for text in _sse_texts(response.aiter_lines()):
                    stats.tokens_out += 1
                    yield text
        except httpx.HTTPError as err:
            self._error = f"{type(err).__name__}: {err}"
            raise BackendError(f"{self.url}: {self._error}") from err
        except BackendError as err:
            self._error = str(err)
            raise
        self._error = None

    def health(self) -> dict:
        return {"kind": self.kind, "model": self.model, "url": self.url, "loaded": True, "error": self._error}

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


async def _sse_texts(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The content deltas of an OpenAI chat-completions event stream."""
    async for line in lines:
        if not line.startswith("data:"):
            continue  # blank separators, comments and event names carry no text
        data = line[5:].strip()
        if data == DONE:
            return
        try:
            choices = json.loads(data).get("choices") or [{}]
            text = (choices[0].get("delta") or {}).get("content")
        except (ValueError, AttributeError) as err:
            raise BackendError(f"malformed event from the server: {data[:80]!r}") from err
        if text:
            yield text
