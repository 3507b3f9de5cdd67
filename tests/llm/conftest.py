"""LLM test fixtures: the real default model loaded once per session, and fake backends."""
from __future__ import annotations

import asyncio
from typing import AsyncIterator, Sequence

import pytest

from Config import LuxaConfig
from LLM import EnhancedLLMManager
from LLM.backends.base import GenerationRequest, GenerationStats
from tests.fakes import CPU


@pytest.fixture(scope="session")
def llm_config(default_config: LuxaConfig) -> LuxaConfig:
    """The shipped config, greedy (the factual answer is reproducible) and single-threaded:
    on 2 shared cores llama.cpp's spinning threads run about 5x slower than one thread."""
    config = default_config.model_copy(deep=True)
    config.llm.temperature = 0.0
    config.llm.threads = 1
    return config


@pytest.fixture(scope="session")
async def real_manager(llm_config: LuxaConfig) -> AsyncIterator[EnhancedLLMManager]:
    """SmolLM2-135M-Instruct from its package (Core.models.resolve), loaded once."""
    manager = EnhancedLLMManager(llm_config, CPU)
    await manager.start()
    assert manager.backends[0].loaded is not None, manager.health()
    yield manager
    await manager.close()


class FakeBackend:
    """A scripted backend for the chain logic: answers, raises, stalls, or breaks mid-answer."""

    kind = "fake"

    def __init__(self, name: str, pieces: Sequence[str] = ("Hello", " there."), error: Exception | None = None,
                 stall: bool = False, fail_after: int | None = None, start_error: Exception | None = None,
                 stall_after: int | None = None, script: Sequence[Sequence[str]] = ()):
        """`script`: the pieces of each successive answer (then `pieces` for any answer after them)."""
        self.name, self.model = name, f"fake-{name}"
        self.pieces, self.error, self.stall = list(pieces), error, stall
        self.fail_after, self.stall_after, self.start_error = fail_after, stall_after, start_error
        self.requests: list[GenerationRequest] = []
        self.closed = False
        self.finished_streams = 0
        self.script = [list(answer) for answer in script]

    @property
    def calls(self) -> int:
        return len(self.requests)

    async def start(self) -> None:
        if self.start_error:
            raise self.start_error

    async def stream(self, request: GenerationRequest, stats: GenerationStats) -> AsyncIterator[str]:
        self.requests.append(request)
        try:
            if self.stall:
                await asyncio.sleep(3600)
            if self.error:
                raise self.error
            pieces = self.script[len(self.requests) - 1] if len(self.requests) <= len(self.script) else self.pieces
            for index, piece in enumerate(pieces):
                if index == self.fail_after:
                    raise RuntimeError("broke mid-answer")
                if index == self.stall_after:
                    await asyncio.sleep(3600)
                stats.tokens_out += 1
                yield piece
                await asyncio.sleep(0)
        finally:
            self.finished_streams += 1

    def health(self) -> dict:
        return {"kind": self.kind, "model": self.model, "loaded": True, "error": None}

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_config(default_config: LuxaConfig) -> LuxaConfig:
    """Short timeouts so stalls fail fast; the breaker opens after two failures."""
    config = default_config.model_copy(deep=True)
    config.llm.first_token_timeout_s = 0.3
    config.llm.total_timeout_s = 5.0
    config.circuit_breaker.failure_threshold = 2
    config.circuit_breaker.cooldown_s = 30.0
    return config


