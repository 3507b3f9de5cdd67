"""Per-client rate limiting and the bounded queue in front of inference.

The gate lets one API inference run at a time and a bounded number wait: the models are shared
with the voice loop, and on a small CPU a pile of API requests would otherwise starve the
user's own turn. Past the bound a request is refused at once (503) instead of waiting unseen.
"""
from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from Core.metrics import counter, gauge

QUEUE_DEPTH = gauge("luxa_api_queue_depth", "control API inference requests running or waiting")
REJECTED = counter("luxa_api_rejected_total", "control API requests refused before any work", ("reason",))

# Bucket table bound: an address that stopped calling is forgotten after the LRU passes it.
MAX_TRACKED_CLIENTS = 4096


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token bucket per client address: `per_minute` requests, bursts up to the same number."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.capacity = float(per_minute)
        self.refill_per_s = per_minute / 60.0
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def check(self, client: str) -> float | None:
        """None when the request may go on, else the seconds until the next one would."""
        now = self.clock()
        bucket = self._buckets.pop(client, None) or _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.refill_per_s)
        bucket.updated = now
        self._buckets[client] = bucket
        while len(self._buckets) > MAX_TRACKED_CLIENTS:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self.refill_per_s


class QueueFull(Exception):
    def __init__(self, limit: int):
        super().__init__(f"busy: {limit} requests are already waiting for the models (api.queue_size); retry shortly")


class InferenceGate:
    """One inference at a time, at most `queue_size` waiting; `slot()` raises QueueFull beyond."""

    def __init__(self, queue_size: int):
        self.queue_size = queue_size
        self._admitted = 0
        self._lock = asyncio.Lock()

    async def acquire(self) -> "Slot":
        if self._admitted >= self.queue_size + 1:
            REJECTED.labels("queue_full").inc()
            raise QueueFull(self.queue_size)
        self._admitted += 1
        QUEUE_DEPTH.set(self._admitted)
        try:
            await self._lock.acquire()
        except BaseException:  # cancelled while waiting (the client went away)
            self._leave()
            raise
        return Slot(self)

    @property
    def depth(self) -> int:
        """Requests running or waiting."""
        return self._admitted

    def _leave(self) -> None:
        self._admitted -= 1
        QUEUE_DEPTH.set(self._admitted)

    def _release(self) -> None:
        self._lock.release()
        self._leave()


class Slot:
    """A held place at the gate; release() is idempotent so every exit path may call it."""

    def __init__(self, gate: InferenceGate):
        self._gate: InferenceGate | None = gate

    def release(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate._release()

    async def __aenter__(self) -> "Slot":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
