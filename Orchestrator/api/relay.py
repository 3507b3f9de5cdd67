"""Streamed answers run in a task of their own and hand their items over through a queue.

When a client hangs up, Starlette cancels the response through an anyio cancel scope, which
cancels again and again until the task ends; fed straight into the LLM's stream that breaks
its clean-up. Here the producing task gets one plain cancel(), as at a barge-in, and keeps the
inference slot until generation has really stopped.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

from Orchestrator.api.limits import Slot

T = TypeVar("T")
log = logging.getLogger(__name__)


class Relay(Generic[T]):
    def __init__(self, items: AsyncIterator[T], slot: Slot, name: str) -> None:
        self.queue: asyncio.Queue[T | None] = asyncio.Queue()
        self.complete = False  # every item was produced (not cut by a failure or a hang-up)
        self.started = time.perf_counter()
        self.first_s: float | None = None
        self.slot = slot
        self.name = name
        self.stopping = False
        self.task = asyncio.create_task(self._pump(items), name=name)
        self.task.add_done_callback(self._finished)

    async def _pump(self, items: AsyncIterator[T]) -> None:
        try:
            async for item in items:
                if self.first_s is None:
                    self.first_s = time.perf_counter() - self.started
                self.queue.put_nowait(item)
            self.complete = True
        finally:
            aclose = getattr(items, "aclose", None)
            if aclose is not None:
                await aclose()
            self.queue.put_nowait(None)

    def _finished(self, task: asyncio.Task) -> None:
        self.slot.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("control API: %s failed: %s", self.name, task.exception())

    def stop(self) -> None:
        """Cancel once: a second cancel() while the LLM unwinds hits the same clean-up failure."""
        if not self.stopping:
            self.stopping = True
            self.task.cancel()  # a no-op once the answer is complete

    async def items(self) -> AsyncIterator[T]:
        """The items as they come; the consumer calls stop() in its `finally` (a client gone)."""
        while (item := await self.queue.get()) is not None:
            yield item
