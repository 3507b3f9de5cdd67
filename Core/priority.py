"""The local voice loop comes first: while it is in a turn, other model work steps aside.

On two cores a control-API chat (or a satellite room's answer) generating beside a voice turn
doubles the voice turn's wait (they share the CPU, and with llm.contexts=1 the model's one
context). A voice turn counts in `VOICE.running()`
while it makes its reply; code that serves other callers checks `VOICE.busy` before it starts and
between tokens, stops there, and carries on when the turn is over (LLM/backends/gguf.py resumes
where it stopped). Tasks a voice turn starts inside `voice_work()` are its own work
(`is_voice()`), so they never wait for themselves.
"""
from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager

IDLE_POLL_S = 0.02  # how often waiting work looks again: well under one LLM token on 2 cores

_in_voice_turn: contextvars.ContextVar[bool] = contextvars.ContextVar("luxa_voice_turn", default=False)


class VoiceActivity:
    """How many voice turns are making their reply; thread-safe, read by worker threads every token."""

    def __init__(self) -> None:
        self._turns = 0
        self._lock = threading.Lock()

    @property
    def busy(self) -> bool:
        return self._turns > 0

    @contextmanager
    def running(self) -> Iterator[None]:
        """While one voice turn makes its reply (not while it is only being heard)."""
        with self._lock:
            self._turns += 1
        try:
            yield
        finally:
            with self._lock:
                self._turns -= 1

    def should_yield(self) -> bool:
        """For work that is not a voice turn's own: a voice turn is running, step aside."""
        return self.busy and not _in_voice_turn.get()

    async def wait_turn_over(self) -> None:
        """Until no voice turn runs (returns at once inside one)."""
        while self.should_yield():
            await asyncio.sleep(IDLE_POLL_S)


VOICE = VoiceActivity()


@contextmanager
def voice_work() -> Iterator[None]:
    """Tasks started inside are a voice turn's own work: they never wait for voice turns."""
    token = _in_voice_turn.set(True)
    try:
        yield
    finally:
        _in_voice_turn.reset(token)


def is_voice() -> bool:
    return _in_voice_turn.get()
