"""Preemptive replies on the real models: a reply started in a pause is thrown away when the user
goes on (never heard, not in the history), and used when the turn ends."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from Config import load_config
from Core.audio import STT_RATE, Audio
from Core.gpu import GpuStatus
from Orchestrator.preempt import PREEMPTIONS
from Orchestrator.turn import FileSink
from Orchestrator.voice_loop import VoiceLoop

pytestmark = pytest.mark.integration
FRAME = STT_RATE * 30 // 1000
HELD_WAIT_S = 2.5  # silence fed at most while waiting for the held reply (under vad.end_silence_ms)


def speak(text: str) -> Audio:
    from piper import PiperVoice

    from Core.audio import pcm16_to_float32
    from Core.models import resolve

    voice = PiperVoice.load(str(resolve("en_US-joe-medium", "piper").path))
    chunks = list(voice.synthesize(text))
    samples = np.concatenate([pcm16_to_float32(c.audio_int16_bytes) for c in chunks])
    return Audio(samples, chunks[0].sample_rate).to_rate(STT_RATE)


class PausingMicrophone:
    """Speech, then silence until the loop holds a preemptive reply with audio, then more speech.

    The pause is as long as the reply needs, so the test does not depend on the machine's speed.
    """

    def __init__(self, first: Audio, second: Audio | None) -> None:
        self.first, self.second = first.samples, second.samples if second is not None else None
        self.loop: VoiceLoop | None = None
        self.held_parts = 0

    def _held(self) -> int:
        tentative = self.loop.tentative if self.loop else None
        return len(tentative.sink._parts) if tentative is not None else 0

    async def frames(self, stop: asyncio.Event) -> AsyncIterator[np.ndarray]:
        silence = np.zeros(FRAME, np.float32)
        lead = np.zeros(STT_RATE // 2, np.float32)
        for samples in (lead, self.first):
            for i in range(0, len(samples) - FRAME + 1, FRAME):
                await asyncio.sleep(0.03)
                yield samples[i:i + FRAME]
        for _ in range(int(HELD_WAIT_S / 0.03)):
            if self.second is not None and (held := self._held()):
                self.held_parts = held
                break
            await asyncio.sleep(0.03)
            yield silence
        if self.second is not None:
            for i in range(0, len(self.second) - FRAME + 1, FRAME):
                await asyncio.sleep(0.03)
                yield self.second[i:i + FRAME]
        for _ in range(int(4.0 / 0.03)):  # past vad.end_silence_ms: the turn ends
            await asyncio.sleep(0)
            yield silence


@pytest.fixture(scope="module")
async def assistant():
    from Orchestrator.assistant import Assistant

    # a long end silence: the pause while the held reply is made must not end the turn
    config = load_config(overrides=["vad.preemptive_reply=true", "vad.end_silence_ms=3000", "vad.turn_model=null",
                                    "llm.max_tokens=24"],
                         environ={})
    assistant = Assistant(config, GpuStatus("cpu", 1))
    await assistant.start()
    yield assistant
    await assistant.close()


async def run_loop(assistant, mic: PausingMicrophone) -> tuple[VoiceLoop, FileSink]:
    sink = FileSink()
    loop = VoiceLoop(assistant, mic, sink, show=lambda s: None)
    mic.loop = loop
    await asyncio.wait_for(loop.run(asyncio.Event()), 120)
    return loop, sink


async def test_a_held_reply_never_reaches_the_speaker_when_the_user_goes_on(assistant):
    assistant.llm.conversation.clear()
    wasted = PREEMPTIONS.labels("wasted")._value.get()
    mic = PausingMicrophone(speak("Tell me a story."), speak("About a cat who flies."))
    loop, sink = await run_loop(assistant, mic)

    assert mic.held_parts >= 1, "the first half's reply was synthesised and held"
    assert PREEMPTIONS.labels("wasted")._value.get() > wasted
    assert len(loop.results) == 1
    result = loop.results[0]
    assert "cat" in result.transcript.lower() and "story" in result.transcript.lower()
    # the speaker got the answer to the whole question and nothing else
    assert sink.heard() == result.reply.strip() or sink.heard().split() == result.reply.split()
    users = [t.content for t in assistant.llm.conversation.turns if t.role == "user"]
    assert len(users) == 1 and "cat" in users[0].lower(), users
    assert len(assistant.llm.conversation.turns) == 2


async def test_a_held_reply_is_spoken_when_the_turn_ends(assistant):
    assistant.llm.conversation.clear()
    used = PREEMPTIONS.labels("used")._value.get()
    loop, sink = await run_loop(assistant, PausingMicrophone(speak("What is the capital of France?"), None))

    assert PREEMPTIONS.labels("used")._value.get() == used + 1
    assert len(loop.results) == 1 and loop.results[0].reply
    assert sink.audio().samples.size > 0
    timings = loop.results[0].timings_ms
    assert timings["llm_first_token"] < timings["endpoint"], "the LLM started before the endpoint"
    assert [t.role for t in assistant.llm.conversation.turns] == ["user", "assistant"]


async def test_a_command_waits_for_the_end_of_the_turn(assistant):
    timers = assistant.intents.timers
    before = len(timers.find())
    wasted = PREEMPTIONS.labels("wasted")._value.get()
    mic = PausingMicrophone(speak("Set a timer for five minutes."), speak("No, never mind."))
    await run_loop(assistant, mic)
    # the timer heard in the pause was never set: the user went on before the turn ended
    assert PREEMPTIONS.labels("wasted")._value.get() > wasted
    assert mic.held_parts == 0
    assert len(timers.find()) == before
