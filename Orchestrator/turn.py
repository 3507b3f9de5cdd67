"""One reply: LLM tokens -> sentence chunks -> TTS -> a sink, the stages overlapping.

The LLM keeps writing while the first chunk is synthesised and played, so the time to the first
reply sample is (first short chunk of text) + (its synthesis), not the whole answer.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Protocol

import numpy as np

from Core import metrics
from Core.audio import Audio, resample
from Core.priority import VOICE, voice_work
from Core.sentences import SentenceChunker
from Orchestrator.preempt import HeldSink
from Orchestrator.reply import CommandAnswer

if TYPE_CHECKING:
    from Orchestrator.assistant import Assistant

log = logging.getLogger(__name__)

TURN_LATENCY = metrics.histogram("luxa_turn_latency_seconds", "end of user speech -> first reply audio")
TURNS = metrics.counter("luxa_turns_total", "turns by outcome", ("outcome",))


class Sink(Protocol):
    """Where reply audio goes: the speaker, or a file for `turn -o`."""

    def begin(self) -> None: ...
    def play(self, audio: Audio, label: str) -> None: ...
    def first_sample_time(self) -> float | None: ...
    async def drain(self) -> None: ...
    def stop(self) -> None: ...
    def heard(self) -> str: ...

    gain: float  # output volume, 0.0-1.0 ("louder", "volume 30 percent")


class SinkControls:
    """A sink as commands see it: its volume, and stop (what "stop" and "never mind" do)."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    @property
    def volume(self) -> float:
        return self._sink.gain

    @volume.setter
    def volume(self, value: float) -> None:
        self._sink.gain = value

    def stop(self) -> None:
        self._sink.stop()


@dataclass
class TurnResult:
    transcript: str
    language: str | None
    reply: str = ""
    heard: str = ""
    interrupted: bool = False
    backends: dict[str, str] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)


class Stopwatch:
    """Marks of one turn, in ms from the end of the user's speech (the moment the user waits from)."""

    def __init__(self, origin: float):
        self.origin = origin
        self.marks: dict[str, float] = {}

    def mark(self, name: str, at: float | None = None) -> None:
        if name not in self.marks:
            self.marks[name] = round(((at or time.perf_counter()) - self.origin) * 1000.0, 1)


class TurnRunner:
    def __init__(self, assistant: Assistant, on_text: Callable[[str], None] | None = None) -> None:
        self.assistant = assistant
        self.on_text = on_text or (lambda piece: None)

    async def respond(self, result: TurnResult, sink: Sink, watch: Stopwatch,
                      on_first_audio: Callable[[], None] | None = None,
                      confirmed: asyncio.Event | None = None) -> TurnResult:
        """Speak the reply to result.transcript; cancelling this coroutine is a barge-in.

        `confirmed`: the turn is not over yet (a preemptive reply into a HeldSink); a command's
        answer, which acts on the world, waits for it.
        """
        a = self.assistant
        chunks: asyncio.Queue[str | None] = asyncio.Queue()
        reply: list[str] = []
        sink.begin()
        stream = a.replies.stream(result.transcript, a.llm.conversation, result.language, SinkControls(sink))
        voice = a.tts.answer(language=result.language)  # one voice for the whole answer

        async def produce() -> None:
            if confirmed is not None and isinstance(stream, CommandAnswer):
                await confirmed.wait()
            chunker = SentenceChunker(a.config.tts.first_chunk_max_words)
            async for piece in stream:
                watch.mark("llm_first_token")
                reply.append(piece)
                self.on_text(piece)
                for chunk in chunker.feed(piece):
                    watch.mark("llm_first_sentence")
                    await chunks.put(chunk)
            for chunk in chunker.flush():
                watch.mark("llm_first_sentence")
                await chunks.put(chunk)
            await chunks.put(None)

        async def speak() -> None:
            nonlocal on_first_audio
            while (chunk := await chunks.get()) is not None:
                spoken = await voice.say(chunk)
                watch.mark("tts_first_audio")
                result.backends.setdefault("tts", spoken.backend)
                if spoken.audio is not None and spoken.audio.samples.size:
                    sink.play(spoken.audio, chunk)
                    if on_first_audio is not None and not (isinstance(sink, HeldSink) and sink.held):
                        on_first_audio()
                        on_first_audio = None

        # a voice turn until its reply is made: other LLM work (the API) steps aside meanwhile
        with voice_work():
            stages = [asyncio.ensure_future(produce()), asyncio.ensure_future(speak())]
        try:
            with VOICE.running():
                await asyncio.gather(*stages)
            await sink.drain()
            result.heard = sink.heard()
        except asyncio.CancelledError:
            sink.stop()
            if isinstance(sink, HeldSink) and sink.held:
                raise  # a preemptive reply thrown away: nobody heard it, it was no turn
            result.interrupted = True
            result.heard = sink.heard()
            a.llm.conversation.set_last_reply(result.heard)
            TURNS.labels("interrupted").inc()
            raise
        finally:
            for stage in stages:
                stage.cancel()
            # the producer must be out of the stream before it can be closed
            await asyncio.gather(*stages, return_exceptions=True)
            await stream.aclose()
            result.reply = "".join(reply).strip()
            first = sink.first_sample_time()
            if first is not None:
                watch.mark("first_audio", first)
            result.timings_ms.update(watch.marks)
            result.backends.setdefault("llm", stream.result.backend)
            if stream.result.intent:
                result.backends["intent"] = stream.result.intent
        watch.mark("total")
        result.timings_ms.update(watch.marks)
        if "first_audio" in watch.marks:
            TURN_LATENCY.observe(watch.marks["first_audio"] / 1000.0)
        TURNS.labels("answered").inc()
        return result


class FileSink:
    """Collects the reply for `turn -o`: 'played' means handed over, so first audio = ready time."""

    def __init__(self) -> None:
        self.parts: list[tuple[Audio, str]] = []
        self._first: float | None = None
        self.gain = 1.0

    def begin(self) -> None:
        self.parts.clear()
        self._first = None

    def play(self, audio: Audio, label: str) -> None:
        if self._first is None:
            self._first = time.perf_counter()
        self.parts.append((Audio(audio.samples * self.gain, audio.sample_rate), label))

    def first_sample_time(self) -> float | None:
        return self._first

    async def drain(self) -> None:
        return None

    def stop(self) -> None:
        return None

    speaking = False

    def heard(self) -> str:
        return " ".join(label for _, label in self.parts)

    def audio(self) -> Audio:
        """Every part at the first part's rate, joined."""
        if not self.parts:
            return Audio(np.zeros(0, np.float32), 16000)
        rate = self.parts[0][0].sample_rate
        joined = np.concatenate([resample(a.samples, a.sample_rate, rate) for a, _ in self.parts])
        return Audio(joined.astype(np.float32), rate)
