"""What every Wyoming connection shares: the models, the info answer, the queue, the conversations.

Home Assistant opens one connection per request, so anything that must outlive a request (the
conversation history behind a conversation id) lives here, not in the handler.
"""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from Config.schema import WyomingConfig
from Core.metrics import counter, gauge, histogram
from Orchestrator.api.sessions import SessionStore
from Orchestrator.wyoming.info import build_info

REQUESTS = counter("luxa_wyoming_requests_total", "Wyoming requests by type and outcome", ("type", "outcome"))
LATENCY = histogram("luxa_wyoming_latency_seconds",
                    "Wyoming: audio-stop -> transcript, request -> first audio, transcript -> first answer text",
                    ("type",))
CONNECTIONS = gauge("luxa_wyoming_connections", "Wyoming clients connected now")
QUEUE_DEPTH = gauge("luxa_wyoming_queue_depth", "Wyoming requests running on the models or waiting for them")


class Busy(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"busy: {limit} Wyoming requests are already waiting for the models "
                         "(wyoming.queue_size); retry shortly")


class Gate:
    """At most `running` requests on the models, `waiting` more in FIFO order, the rest refused."""

    def __init__(self, running: int, waiting: int) -> None:
        self._semaphore = asyncio.Semaphore(running)  # FIFO: requests are served in arrival order
        self._limit = running + waiting
        self._waiting = waiting
        self.depth = 0

    @asynccontextmanager
    async def slot(self):
        if self.depth >= self._limit:
            raise Busy(self._waiting)
        self.depth += 1
        QUEUE_DEPTH.set(self.depth)
        try:
            async with self._semaphore:
                yield
        finally:
            self.depth -= 1
            QUEUE_DEPTH.set(self.depth)


class WyomingService:
    def __init__(self, assistant, config: WyomingConfig) -> None:
        self.assistant = assistant
        self.config = config
        self.gate = Gate(config.max_concurrent, config.queue_size)
        self.conversations = SessionStore(config.max_conversations, assistant.llm.new_conversation)

    async def info_event(self):
        """Built per describe, off the event loop: a voice cloned a minute ago is listed too."""
        info = await asyncio.to_thread(build_info, self.assistant, self.config.endpointing)
        return info.event()
