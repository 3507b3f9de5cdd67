"""Run a blocking token generator in a worker thread and consume it as an async iterator.

llama.cpp blocks for every token, so it cannot run on the event loop. The worker checks a
threading.Event before each token: when the consumer stops listening (barge-in, timeout), the
worker returns after at most one more token, and the iterator waits for it so the model is free
again by the time aclose() returns.
"""
from __future__ import annotations

import asyncio
import threading
from typing import AsyncGenerator, Callable, Iterator, TypeVar

T = TypeVar("T")
_DONE = object()


async def iterate_in_thread(produce: Callable[[threading.Event], Iterator[T]]) -> AsyncGenerator[T, None]:
    """Yield what `produce(stop)` yields; `produce` should also watch `stop` where it blocks long."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()

    def send(item: object, error: BaseException | None = None) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(queue.put_nowait, (item, error))

    def work() -> None:
        items = produce(stop)
        try:
            for item in items:
                if stop.is_set():
                    break
                send(item)
        except BaseException as err:  # handed to the consumer, which raises it on its side
            send(_DONE, err)
            return
        finally:
            close = getattr(items, "close", None)
            if close:
                close()
        send(_DONE)

    worker = loop.run_in_executor(None, work)
    try:
        while True:
            item, error = await queue.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        # Shielded: even a cancelled consumer must not leave the model busy behind its back.
        await asyncio.shield(worker)
