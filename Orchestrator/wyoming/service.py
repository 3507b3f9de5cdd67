"""What every Wyoming connection shares: the models, the info answer, the queue, the conversations.

Home Assistant opens one connection per request, so anything that must outlive a request (the
conversation history behind a conversation id) lives here, not in the handler.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from wyoming.event import Event

from Config.schema import WyomingConfig
from Core.metrics import counter, gauge, histogram
from Orchestrator.api.sessions import SessionStore
from Orchestrator.wyoming.info import build_info

if TYPE_CHECKING:  # for mypy only: the daemon has loaded it
    from Orchestrator.assistant import Assistant

REQUESTS = counter("luxa_wyoming_requests_total", "Wyoming requests by type and outcome", ("type", "outcome"))
LATENCY = histogram("luxa_wyoming_latency_seconds",
                    "Wyoming: audio-stop -> transcript, request -> first audio, transcript -> first answer text",
                    ("type",))
CONNECTIONS = gauge("luxa_wyoming_connections", "Wyoming clients connected now")
LOCAL_WAITS = counter("luxa_wyoming_local_turn_waits_total", "Wyoming requests that waited for a local voice turn")
QUEUE_DEPTH = gauge("luxa_wyoming_queue_depth", "Wyoming requests running on the models or waiting for them")


class Busy(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"busy: {limit} Wyoming requests are already waiting for the models "
                         "(wyoming.queue_size); retry shortly")


class Gate:
    """At most `running` requests on the models, `waiting` more in FIFO order, the rest refused.

    `local_busy` says the local voice loop is in a turn: a request about to start waits for the
    turn to end (at most `yield_s`, so a stuck loop cannot starve Wyoming), a running one is not
    interrupted.
    """

    POLL_S = 0.05

    def __init__(self, running: int, waiting: int, local_busy: Callable[[], bool] | None = None,
                 yield_s: float = 30.0) -> None:
        self._semaphore = asyncio.Semaphore(running)  # FIFO: requests are served in arrival order
        self._limit = running + waiting
        self._waiting = waiting
        self._local_busy = local_busy
        self._yield_s = yield_s
        self.depth = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self.depth >= self._limit:
            raise Busy(self._waiting)
        self.depth += 1
        QUEUE_DEPTH.set(self.depth)
        try:
            async with self._semaphore:
                await self._after_local_turn()
                yield
        finally:
            self.depth -= 1
            QUEUE_DEPTH.set(self.depth)


    async def _after_local_turn(self) -> None:
        if self._local_busy is None or not self._local_busy():
            return
        deadline = time.monotonic() + self._yield_s
        while self._local_busy() and time.monotonic() < deadline:
            await asyncio.sleep(self.POLL_S)
        LOCAL_WAITS.inc()


class WyomingService:
    def __init__(self, assistant: Assistant, config: WyomingConfig, local_busy: Callable[[], bool] | None = None) -> None:
        self.assistant = assistant
        self.config = config
        self.gate = Gate(config.max_concurrent, config.queue_size, local_busy, config.request_timeout_s)
        self.conversations = SessionStore(config.max_conversations, assistant.llm.new_conversation)

    async def info_event(self) -> Event:
        """Built per describe, off the event loop: a voice cloned a minute ago is listed too."""
        info = await asyncio.to_thread(build_info, self.assistant, self.config.endpointing)
        return info.event()
