"""A few llama.cpp contexts of one model, lent to one generation each, so answers run side by side.

llama.cpp keeps one KV cache per context: two answers interleaving on one context would corrupt
each other, and with a single context a second room's question waits for the first room's whole
answer. With N contexts (llm.contexts), N answers generate at once (their threads interleave on
the CPU), and each keeps its own conversation's prefix in its cache: a generation takes the free
context whose cached tokens share the longest prefix with its prompt (the least recently used on a
tie), and waits only when every context is busy, first come first served.

Waiting is asynchronous (no worker thread blocks on a busy pool) and works from any event loop:
a released context is handed straight to the oldest waiter through its loop.
"""
from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from LLM.backends import prompt_cache


class ContextPool:
    """`contexts` are llama_cpp.Llama instances of the same model file; thread-safe."""

    def __init__(self, contexts: Sequence[Any]) -> None:
        if not contexts:
            raise ValueError("a context pool needs at least one context")
        self.contexts = list(contexts)
        self._free = list(contexts)  # least recently released first
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = deque()
        self._lock = threading.Lock()
        self._released = threading.Condition(self._lock)

    @property
    def in_use(self) -> int:
        return len(self.contexts) - len(self._free)

    def _pick(self, tokens: Sequence[int] | None) -> Any:
        """Under the lock, with a free context: the best one for `tokens`, taken out of the free list."""
        best = 0
        if tokens is not None and len(self._free) > 1:
            # most of the prompt served; on a tie (a new conversation: only the system prompt in
            # common) the least recently used, so the conversations that spoke last keep their caches
            reuse = [prompt_cache.plan(c.input_ids[: c.n_tokens], tokens).reused for c in self._free]
            best = max(range(len(reuse)), key=lambda i: (reuse[i], -i))
        return self._free.pop(best)

    async def take(self, tokens: Sequence[int] | None = None) -> Any:
        """A free context, the one whose cache serves most of `tokens`; waits while all are busy."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._free and not self._waiters:
                return self._pick(tokens)
            waiter = loop.create_future()
            self._waiters.append((loop, waiter))
        try:
            return await waiter
        except asyncio.CancelledError:
            with self._lock:
                if (loop, waiter) in self._waiters:
                    self._waiters.remove((loop, waiter))
            if waiter.done() and not waiter.cancelled():  # handed over just as the waiter was cancelled
                self.release(waiter.result())
            raise

    @contextmanager
    def hold(self) -> Iterator[Any]:
        """Blocking form for scripts and benches outside the event loop: a context, any one."""
        with self._lock:
            self._released.wait_for(lambda: bool(self._free) and not self._waiters)
            context = self._pick(None)
        try:
            yield context
        finally:
            self.release(context)

    def release(self, context: Any) -> None:
        """Give `context` back: to the oldest waiter if any, else to the free list. From any thread."""
        with self._lock:
            while self._waiters:
                loop, waiter = self._waiters.popleft()
                if waiter.done():
                    continue
                try:
                    loop.call_soon_threadsafe(self._hand, waiter, context)
                except RuntimeError:  # that loop was closed: its waiter will never run
                    continue
                return
            self._free.append(context)
            self._released.notify_all()

    def _hand(self, waiter: asyncio.Future, context: Any) -> None:
        """On the waiter's loop: it was cancelled in the meantime -> the context goes to the next one."""
        if waiter.done():
            self.release(context)
        else:
            waiter.set_result(context)

    def wait_all_free(self) -> None:
        """Blocking: until no context is lent (the model can then be freed)."""
        with self._lock:
            self._released.wait_for(lambda: len(self._free) == len(self.contexts))


class Lease:
    """One context lent to one generation: taken on the event loop, used and given back by the worker
    thread. Whichever side ends first without the other having started gives it back, exactly once
    (a consumer cancelled before its worker ran must not leak the context, nor free it under a
    worker that did start)."""

    def __init__(self, pool: ContextPool, context: Any) -> None:
        self.pool = pool
        self.context = context
        self._lock = threading.Lock()
        self._running = False
        self._returned = False

    def begin(self) -> bool:
        """The worker starts using the context; False when it was already given back."""
        with self._lock:
            if self._returned:
                return False
            self._running = True
            return True

    def end(self) -> None:
        """The worker is done with the context."""
        with self._lock:
            self._running = False
            give_back, self._returned = not self._returned, True
        if give_back:
            self.pool.release(self.context)

    def drop(self) -> None:
        """The consumer is done: gives the context back unless a worker still uses it (it will)."""
        with self._lock:
            if self._running or self._returned:
                return
            self._returned = True
        self.pool.release(self.context)
