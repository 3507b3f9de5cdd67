"""Voice loop logic with fake managers (real VAD on real speech): a failing turn never ends the loop."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np
import pytest

from Config import load_config
from Core.audio import STT_RATE, Audio, load_audio
from Orchestrator.audio_io import FileMicrophone
from Orchestrator.turn import FileSink
from Orchestrator.voice_loop import VoiceLoop


class FlakySTT:
    """Raises on the first call (a bug or a crash outside the fallback chain), then hears fine."""

    def __init__(self):
        self.calls = 0

    async def transcribe(self, audio, language=None):
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("boom")
        return SimpleNamespace(text="turn on the lamp", language="en", backend="fake")


class EchoLLM:
    def __init__(self):
        self.conversation = SimpleNamespace(set_last_reply=lambda heard: None)

    def stream(self, text, conversation=None, language=None, controls=None):
        return EchoAnswer()


class EchoAnswer:
    """The shape of LLM.AnswerStream: pieces, then the answer's own result."""

    result = SimpleNamespace(backend="echo", intent=None)

    def __init__(self):
        self._pieces = iter(("Okay, ", "the lamp is on."))

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            return next(self._pieces)
        except StopIteration:
            raise StopAsyncIteration from None

    async def aclose(self):
        return None


class ToneTTS:
    def answer(self, language=None, **_):
        return self

    async def say(self, text):
        tone = (0.1 * np.sin(np.arange(2205) / 5)).astype(np.float32)
        return SimpleNamespace(audio=Audio(tone, 22050), backend="fake")


@pytest.mark.integration  # a recording through the real VAD (Silero)
async def test_a_turn_that_raises_is_logged_and_the_next_question_is_answered(corpus_dir, caplog):
    question = load_audio(corpus_dir / "commands" / "turn_on_the_living_room_lamp.wav").to_rate(STT_RATE)
    gap = np.zeros(STT_RATE * 2, np.float32)
    two_questions = Audio(np.concatenate([question.samples, gap, question.samples]), STT_RATE)
    config = load_config(overrides=["vad.early_stt=false"], environ={})
    llm = EchoLLM()
    assistant = SimpleNamespace(config=config, stt=FlakySTT(), llm=llm, replies=llm, tts=ToneTTS())
    sink = FileSink()
    mic = FileMicrophone(two_questions, 30, config.vad.longest_end_silence_ms + 300, realtime=False)
    loop = VoiceLoop(assistant, mic, sink, show=lambda s: None)
    await asyncio.wait_for(loop.run(asyncio.Event()), 60)
    assert assistant.stt.calls == 2
    assert "turn failed: RuntimeError: boom" in caplog.text
    assert [r.reply for r in loop.results] == ["Okay, the lamp is on."]
    assert sink.audio().samples.size > 0
