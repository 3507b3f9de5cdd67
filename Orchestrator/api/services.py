"""What routes share: the daemon's Assistant, the inference gate, sessions, voice prompts, limits."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from Config.schema import ApiConfig
from Orchestrator.api.errors import ApiError
from Orchestrator.api.limits import InferenceGate, QueueFull, Slot
from Orchestrator.api.sessions import SessionStore
from Orchestrator.api.voices import Voices

if TYPE_CHECKING:  # for mypy only: importing it would load every manager here
    from Orchestrator.assistant import Assistant

QUEUE_RETRY_AFTER_S = "1"
# While the voice loop is in a turn, API work waits: the user in the room goes first. Polled,
# because the loop's state is a plain dict it updates; 50 ms is far below a turn's length.
VOICE_BUSY = frozenset({"thinking", "speaking"})
YIELD_POLL_S = 0.05


@dataclass
class Services:
    assistant: Assistant
    api: ApiConfig
    state: Callable[[], dict]  # the daemon's mode and state, for /health
    gate: InferenceGate = field(init=False)
    sessions: SessionStore = field(init=False)
    voices: Voices = field(init=False)

    def __post_init__(self) -> None:
        self.gate = InferenceGate(self.api.queue_size)
        self.sessions = SessionStore(self.api.max_sessions, self.assistant.llm.new_conversation)
        self.voices = Voices(self.assistant.tts)

    async def slot(self) -> Slot:
        """A place at the inference gate once the voice loop is between turns; 503 when the queue is full."""
        try:
            slot = await self.gate.acquire()
        except QueueFull as err:
            raise ApiError(503, "busy", str(err), {"Retry-After": QUEUE_RETRY_AFTER_S}) from None
        try:
            while self.state().get("state") in VOICE_BUSY:
                await asyncio.sleep(YIELD_POLL_S)
        except BaseException:
            slot.release()
            raise
        return slot

    @contextlib.asynccontextmanager
    async def inference(self) -> AsyncIterator[None]:
        async with await self.slot():
            yield

    def check_text(self, text: str, what: str = "text") -> None:
        limit = self.api.max_text_chars
        if len(text) > limit:
            raise ApiError(413, "too_large", f"{what} is {len(text)} characters long, above api.max_text_chars={limit}")


def services(request: Request) -> Services:
    return request.app.state.luxa
