"""Preemptive replies: start answering in the end-of-turn silence, speak only once the turn is over.

When early STT has the transcript while the endpointer is still waiting for the turn to end, the
voice loop starts the reply at once (LLM, then the first chunk's synthesis) into a `HeldSink`.
If the endpoint confirms the turn, the held audio is released to the speaker and the reply goes
on as a normal turn, having saved the endpoint wait; if the user speaks again, the reply is
cancelled, its audio dropped, and the conversation put back as it was, so nothing of it reaches
the speaker, the history or the turn metrics. LiveKit Agents' `preemptive_generation` is the model.

A command's answer is never preempted: its handler acts on the world (a light, a timer), so it
waits for the confirmation (TurnRunner.respond's `confirmed`).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from Core import metrics
from Core.audio import Audio
from LLM.conversation import Conversation, Message

if TYPE_CHECKING:
    from Orchestrator.turn import Sink

PREEMPTIONS = metrics.counter("luxa_preemptive_replies_total",
                              "replies started in the end-of-turn silence, by outcome (used: the turn ended; "
                              "wasted: the user went on)", ("outcome",))


class HeldSink:
    """A sink that keeps what it is given until `release()`, then is the speaker itself.

    Until then nothing touches the speaker (not even begin(): a reply may still be playing in
    headset mode) and the reply counts as not heard.
    """

    held = True

    def __init__(self, speaker: Sink) -> None:
        self.speaker = speaker
        self._parts: list[tuple[Audio, str]] = []
        self._released = asyncio.Event()

    def release(self) -> None:
        """The turn is over: play what was held, and pass everything after it straight through."""
        if not self.held:
            return
        self.held = False
        self.speaker.begin()
        for audio, label in self._parts:
            self.speaker.play(audio, label)
        self._parts.clear()
        self._released.set()

    @property
    def gain(self) -> float:
        return self.speaker.gain

    @gain.setter
    def gain(self, value: float) -> None:
        self.speaker.gain = value

    @property
    def speaking(self) -> bool:
        return not self.held and bool(getattr(self.speaker, "speaking", False))

    def begin(self) -> None:
        if not self.held:
            self.speaker.begin()

    def play(self, audio: Audio, label: str) -> None:
        if self.held:
            self._parts.append((audio, label))
        else:
            self.speaker.play(audio, label)

    def first_sample_time(self) -> float | None:
        return None if self.held else self.speaker.first_sample_time()

    async def drain(self) -> None:
        await self._released.wait()  # the whole reply is ready: it waits for the endpoint here
        await self.speaker.drain()

    def stop(self) -> None:
        if self.held:
            self._parts.clear()
        else:
            self.speaker.stop()

    def heard(self) -> str:
        return "" if self.held else self.speaker.heard()


@dataclass
class Snapshot:
    """The conversation before a preemptive reply, to put back when that reply is thrown away."""

    turns: list[Message]
    last_reply: str

    @classmethod
    def of(cls, conversation: Conversation) -> Snapshot:
        return cls(list(conversation.turns), conversation.last_reply)

    def restore(self, conversation: Conversation) -> None:
        conversation.turns[:] = self.turns
        conversation.last_reply = self.last_reply
